"""A problem found in a query, with where it is, and the errors that carry problems to the edge.

`POST /validate/query` lists problems; every other entry point refuses the query with the first
problem's code, so the same query gets the same code whichever way it is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlglot import exp

from lakehouse.errors import Forbidden, InvalidInput, LakehouseError
from lakehouse.sql.scrub import scrub

log = logging.getLogger(__name__)

# Codes whose refusal is about what the query may do (403), not about it being malformed (400).
FORBIDDEN_CODES = frozenset({
    "forbidden_statement", "forbidden_function", "table_function", "file_access",
    "qualified_table", "multiple_statements",
})
# What is wrong only with how a query's names and types meet the tenant's tables as they are
# now: a query with only these still parses (`POST /parse/sql` lists them as warnings).
BINDING_CODES = frozenset({
    "unknown_table", "unknown_column", "ambiguous_column", "ambiguous_using",
    "ambiguous_order_names", "type_mismatch",
})


@dataclass(frozen=True, slots=True)
class Problem:
    code: str  # e.g. "unknown_column", "forbidden_function", "type_mismatch"
    message: str
    line: int | None = None  # 1-based, in the query text as sent
    column: int | None = None  # 1-based character position where the offending token starts

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "line": self.line,
                "column": self.column}


def position(node: exp.Expr | None) -> tuple[int | None, int | None]:
    """Line and column where the leftmost token under `node` starts (None if none was placed
    by the parser, e.g. in a tree built from the DSL)."""
    if node is None:
        return None, None
    best: tuple[int, int, int] | None = None  # (start offset, line, column)
    for sub in node.walk():
        meta = sub.meta if isinstance(sub, exp.Expr) else None
        if not meta or "line" not in meta:
            continue
        # sqlglot records where a token ends; its start is what an editor should point at.
        start, end = int(meta.get("start", 0)), int(meta.get("end", 0))
        found = (start, int(meta["line"]), max(1, int(meta["col"]) - max(0, end - start)))
        if best is None or found < best:
            best = found
    return (best[1], best[2]) if best is not None else (None, None)


def problem_at(node: exp.Expr | None, code: str, message: str) -> Problem:
    line, column = position(node)
    return Problem(code, message, line, column)


def refusal(problems: Sequence[Problem]) -> LakehouseError:
    """The error refusing a query with these problems (at least one): 403 if any is about what
    the query may do, else 400; the code is the first such problem's."""
    forbidden = [p for p in problems if p.code in FORBIDDEN_CODES]
    first = (forbidden or list(problems))[0]
    details = {"problems": [p.to_json() for p in problems]}
    if forbidden:
        return Forbidden(first.message, code=first.code, details=details)
    return InvalidInput(first.message, code=first.code, details=details)


# Local names under which sqlglot and our passes hold the node they work on, most telling first.
_NODE_NAMES = ("node", "expression", "projection", "select", "source", "column", "this", "e")
_SNIPPET = 60


def unsupported(exc: BaseException, stage: str, *, schemas: Iterable[str] = ()) -> Problem:
    """The problem reported for an error a planning stage did not expect (an assertion in
    sqlglot, a rule that meets a tree it was not written for): the caller's query is what the
    platform cannot plan, so it is a 400 naming the construct being worked on when it failed —
    found in the failing frames' locals, innermost first — never the exception's text. The
    exception itself goes to the log (the caller's `log.exception`)."""
    log.warning("a query's %s failed unexpectedly; refused as unsupported", stage,
                exc_info=exc)
    node = _failing_node(exc.__traceback__)
    if node is None:
        return Problem("unsupported_query", f"cannot {stage} this query: a construct in it is "
                                            "not supported")
    snippet = scrub(node.sql(dialect="duckdb"), schemas=schemas)
    if len(snippet) > _SNIPPET:
        snippet = snippet[:_SNIPPET - 1] + "…"
    kind = str(node.key).replace("_", " ")
    return problem_at(node, "unsupported_query", f"cannot {stage} this query: the {kind} "
                                                 f"{snippet!r} is not supported here")


@contextmanager
def planning(stage: str, *, schemas: Iterable[str] = ()) -> Iterator[None]:
    """Run a planning stage: a LakehouseError passes, any other error refuses the query with
    `unsupported` (a 400), so no query can make planning answer a 500. `schemas`: the internal
    schemas the stage's trees are bound to, kept out of the message."""
    try:
        yield
    except LakehouseError:
        raise
    except Exception as exc:
        raise refusal([unsupported(exc, stage, schemas=schemas)]) from exc


def _failing_node(trace: TracebackType | None) -> exp.Expr | None:
    frames = []
    while trace is not None:
        frames.append(trace.tb_frame)
        trace = trace.tb_next
    fallback: exp.Expr | None = None
    for frame in reversed(frames):
        found = dict(frame.f_locals)
        named: list[exp.Expr] = [found[n] for n in _NODE_NAMES
                                 if isinstance(found.get(n), exp.Expr)]
        others: list[exp.Expr] = [v for v in found.values() if isinstance(v, exp.Expr)]
        for node in [*named, *others]:
            if position(node) != (None, None):
                return node  # where the query text has it: the caller can find it
            fallback = fallback or node
    return fallback
