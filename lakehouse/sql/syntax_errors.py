"""sqlglot's parse errors, said in the words of the person who wrote the query.

sqlglot describes a syntax error as its parser sees it ("Required keyword: 'expression' missing
for <class 'sqlglot.expressions.core.Mul'>", "Expected table name but got <Token …>"). A caller
needs where (line, column, the token there) and what to change, never a Python class name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lakehouse.sql.problems import Problem

_SHOWN = 40  # a token or text echoed in a message is cut to this length
_REQUIRED = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]*?(\w+)'>")
_EXPECTED_GOT = re.compile(r"(Expected .+?) but got <Token token_type: TokenType\.(\w+), "
                           r"text: (.*?), line: ")
_CLASS = re.compile(r"<class '[\w.]*?(\w+)'>")
_TOKEN = re.compile(r"<Token token_type: [\w.]+, text: (.*?), line: .*?>")
# What an incomplete node was waiting for; anything else is "an expression".
_MISSING = {
    "Where": "a condition", "Having": "a condition", "Qualify": "a condition",
    "Join": "a table", "From": "a table", "Order": "what to sort by",
    "Group": "what to group by", "Limit": "a number", "Offset": "a number",
}


def syntax_problem(error: Mapping[str, Any]) -> Problem:
    """One of sqlglot's ParseError.errors as a problem: where, at which token, what to do."""
    line, end = error.get("line"), error.get("col")
    token = " ".join(str(error.get("highlight") or "").split())
    column = None
    if isinstance(end, int):  # sqlglot gives the column where the token ends
        column = max(1, end - len(str(error.get("highlight") or "")) + 1)
    at_end = not str(error.get("end_context") or "").strip()
    what = _plain(str(error.get("description") or "syntax error"), token[:_SHOWN], at_end)
    where = (f" near line {line}, column {column}" if line is not None and column is not None
             else "")
    return Problem("syntax_error", f"SQL syntax error{where}: {what}; correct the query there "
                   "and send it again", line, column)


def token_problem(text: str) -> Problem:
    """A TokenError: the text could not even be split into tokens (an unclosed quote)."""
    near = text.removeprefix("Error tokenizing ").strip("'")[-_SHOWN:]
    return Problem("syntax_error", f"SQL syntax error: the query cannot be read near {near!r}; "
                   "check for a quote (' or \") or comment that is never closed")


def _plain(description: str, token: str, at_end: bool) -> str:
    required = _REQUIRED.fullmatch(description)
    if required:  # a node the parser began and could not complete
        missing = _MISSING.get(required.group(1), "an expression")
        return (f"the query ends at {token!r} but {missing} must follow it" if at_end
                else f"{missing} is missing before {token!r}")
    expected = _EXPECTED_GOT.match(description)
    if expected:
        wanted = _lower_first(expected.group(1))
        return (f"{wanted} after {token!r}, but the query ends there"  # SENTINEL: the end
                if expected.group(2) == "SENTINEL"
                else f"{wanted} but found {expected.group(3)[:_SHOWN]!r}")
    if description == "Invalid expression / Unexpected token":
        return f"unexpected {token!r}"
    if description.startswith("Expecting "):
        return f"expected {description.removeprefix('Expecting ')!r} before {token!r}"
    plain = _TOKEN.sub(lambda m: repr(m.group(1)[:_SHOWN]), _CLASS.sub(r"\1", description))
    return f"{_lower_first(plain)[:200]} (at {token!r})"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
