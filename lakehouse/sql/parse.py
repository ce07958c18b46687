"""SQL text → exactly one statement tree, in a documented default dialect or any sqlglot reads.

DuckDB is the default because every fragment finally runs in DuckDB: a query written for it means
there what it says. Other dialects are read and transpiled; what they cannot express is refused
by the guard like anything else.
"""

from __future__ import annotations

import logging

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from lakehouse.errors import InvalidInput
from lakehouse.sql.problems import Problem, refusal
from lakehouse.sql.syntax_errors import syntax_problem, token_problem

DEFAULT_DIALECT = "duckdb"
MAX_QUERY_CHARS = 100_000  # a query, not a data load; longer texts are refused before parsing
# Brackets of any kind one inside another. sqlglot's parser spends about 20 Python frames on each
# level, so Python's stack runs out near 45 levels, fewer where the parse starts deeper (a flow
# run, a worker thread). A bound counted before parsing answers the same 400 wherever it runs.
MAX_NESTING = 32
_OPENING = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE})
_CLOSING = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE})

# sqlglot warns when it falls back to an opaque Command (LOAD, CALL, RESET, ...). Those are
# refused by the guard anyway; the warning would only let a caller fill the logs.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


def check_dialect(dialect: str | None) -> str:
    """The dialect name to read with; InvalidInput for one sqlglot does not know."""
    name = (dialect or DEFAULT_DIALECT).strip().lower()
    try:
        Dialect.get_or_raise(name)
    except ValueError as exc:
        raise InvalidInput(f"unknown SQL dialect {name[:40]!r}", code="unknown_dialect",
                           details={"dialect": name[:40],
                                    "known": sorted(d for d in _known_dialects())}) from exc
    return name


def known_dialects() -> list[str]:
    """The dialect names `check_dialect` takes, as the documents list them."""
    return sorted(_known_dialects())


def _known_dialects() -> list[str]:
    from sqlglot.dialects import DIALECTS

    return [d.lower() for d in DIALECTS]


def parse_statements(sql: str, dialect: str) -> list[exp.Expr]:
    """Every statement in `sql`, empty ones dropped; InvalidInput with line and column for text
    that is not SQL in `dialect`."""
    if len(sql) > MAX_QUERY_CHARS:
        raise InvalidInput(f"the query is longer than {MAX_QUERY_CHARS} characters",
                           code="query_too_long", details={"length": len(sql)})
    try:
        found = Dialect.get_or_raise(dialect)
        statements = found.parser().parse(read_tokens(sql, found), sql)
    except ParseError as exc:
        problems = [syntax_problem(e) for e in exc.errors] or [
            syntax_problem({"description": str(exc).splitlines()[0]})]
        raise refusal(problems) from exc
    except TokenError as exc:
        raise refusal([token_problem(str(exc)[:200])]) from exc
    except RecursionError as exc:  # nesting without brackets: NOT NOT NOT …
        raise too_deep("query") from exc
    # A comment after the last ';' comes back as a Semicolon node: an empty statement.
    return [s for s in statements if s is not None and not isinstance(s, exp.Semicolon)]


def parse_query(sql: str, dialect: str | None = None) -> tuple[exp.Expr, str]:
    """The one statement in `sql` and the dialect it was read in; several statements or none are
    refused (a second statement is how a read-only check is usually smuggled past)."""
    name = check_dialect(dialect)
    statements = parse_statements(sql, name)
    if not statements:
        raise InvalidInput("the query is empty", code="empty_query")
    if len(statements) > 1:
        raise refusal([Problem("multiple_statements",
                               f"send one statement at a time, not {len(statements)}")])
    return statements[0], name


def too_deep(subject: str, depth: int | None = None) -> InvalidInput:
    """The refusal of a `subject` ("query", "filter") nested deeper than can be parsed."""
    if depth is None:  # the parser ran out of stack
        return InvalidInput(f"the {subject} is nested too deeply to be read",
                            code=f"{subject}_too_deep")
    return InvalidInput(f"the {subject} nests brackets {depth} deep; at most {MAX_NESTING} "
                        "levels are read", code=f"{subject}_too_deep",
                        details={"depth": depth, "max_depth": MAX_NESTING})


def read_tokens(sql: str, dialect: Dialect, subject: str = "query") -> list[Token]:
    """`sql`'s tokens in `dialect`; refused when brackets nest more than MAX_NESTING deep.
    Counted on tokens, not characters: a bracket in a string or a comment nests nothing."""
    tokens = dialect.tokenize(sql)
    depth = deepest = 0
    for token in tokens:
        if token.token_type in _OPENING:
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type in _CLOSING:
            depth -= 1
    if deepest > MAX_NESTING:
        raise too_deep(subject, deepest)
    return tokens


def parse_condition(text: str) -> exp.Expr:
    """A boolean condition in sqlglot's own dialect (a filter, not a query), under the query's
    nesting bound. ParseError and TokenError reach the caller, which words them."""
    found = Dialect.get_or_raise(None)
    tokens = read_tokens(text, found, "filter")
    try:
        trees = found.parser().parse_into(exp.Condition, tokens, text)  # type: ignore[arg-type]
    except RecursionError as exc:
        raise too_deep("filter") from exc
    if len(trees) != 1 or trees[0] is None:
        raise ParseError("give one condition")
    return trees[0]
