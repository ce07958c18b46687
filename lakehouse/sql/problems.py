"""A problem found in a query, with where it is, and the errors that carry problems to the edge.

`POST /validate/query` lists problems; every other entry point refuses the query with the first
problem's code, so the same query gets the same code whichever way it is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from lakehouse.errors import Forbidden, InvalidInput, LakehouseError

# Codes whose refusal is about what the query may do (403), not about it being malformed (400).
FORBIDDEN_CODES = frozenset({
    "forbidden_statement", "forbidden_function", "table_function", "file_access",
    "qualified_table", "multiple_statements",
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
