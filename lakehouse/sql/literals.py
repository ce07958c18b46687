"""Whole-number literals larger than any result can carry, refused before anything plans them.

DuckDB reads a whole number that does not fit a HUGEINT (a signed 128-bit integer, up to
2^127 - 1) as a UHUGEINT or a BIGNUM. Neither survives the way back: Arrow has no type for them,
so a UHUGEINT comes back as a 128-bit decimal that overflows (2^127 answers -2^127) and a BIGNUM
as opaque bytes; and Python refuses to read a number of more than 4300 digits at all, which
pruning and time travel would have to. So such a literal is a `400 number_out_of_range`, the
answer DuckDB gives for a number that overflows its type. Decimal and exponent literals are not
affected: DuckDB reads those as DECIMAL or DOUBLE (1e400 is infinity).
"""

from __future__ import annotations

from sqlglot import exp

from lakehouse.sql.problems import Problem, problem_at

HUGEINT_MAX = 2**127 - 1
_HUGEINT_DIGITS = len(str(HUGEINT_MAX))  # 39; checked before int(), which has its own limit
_SHOWN = 20


def _digits(node: exp.Expr) -> str | None:
    """The digits of a whole-number literal, without leading zeros; None for any other node."""
    if not isinstance(node, exp.Literal) or node.is_string:
        return None
    text = str(node.this)
    if not (text.isascii() and text.isdigit()):
        return None  # a decimal, an exponent: DuckDB reads those as DECIMAL or DOUBLE
    return text.lstrip("0") or "0"


def whole_number(node: exp.Expr) -> int | None:
    """The value of a whole-number literal that fits a HUGEINT; None for any other node and for
    a larger number."""
    digits = _digits(node)
    if digits is None or len(digits) > _HUGEINT_DIGITS:
        return None
    value = int(digits)
    return value if value <= HUGEINT_MAX else None


def out_of_range(tree: exp.Expr) -> list[Problem]:
    """A problem for each whole-number literal in `tree` larger than HUGEINT_MAX."""
    problems = []
    for node in tree.find_all(exp.Literal):
        digits = _digits(node)
        if digits is not None and whole_number(node) is None:
            shown = (digits if len(digits) <= _SHOWN
                     else f"{digits[:_SHOWN]}… ({len(digits)} digits)")
            problems.append(problem_at(
                node, "number_out_of_range",
                f"the number {shown} is too large: whole numbers in a query are at most "
                "2^127 - 1 (DuckDB's HUGEINT); write a larger one as a DOUBLE (e.g. 1e40)"))
    return problems
