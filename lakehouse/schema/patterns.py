"""The patterns of `str_matches` checks, run by RE2: time linear in the value, whatever the pattern.

Any writer declares a pattern, and every tenant's writes wait behind the checks (records are
checked under the ingest service's lock, and one process serves all the services). A
backtracking engine would let one declaration stall the platform: Python's `re` takes seconds
for `^(a+)+$` against 28 characters, twice as long for each one more. RE2, here through
`pyarrow.compute` (which drops the GIL while it matches), never backtracks; what would need it
(backreferences, lookaround) it cannot compile, and such patterns are refused at declaration
along with patterns over `MAX_PATTERN_CHARS`.

What a check means is what it meant when pandera ran it with `re.match`: the pattern must match
at the *start* of the value, not the whole of it (write `$` at the end for the whole value). Null
values, and values that are not strings, are not tested (pass). RE2's syntax differs from
Python's in corners: `\\d`, `\\w` and `\\s` are ASCII only; `$` matches only at the very end
(Python's also before a final newline); the end of text is `\\z`, not `\\Z`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from lakehouse.errors import InvalidInput

MAX_PATTERN_CHARS = 256  # a declaration is small; longer patterns only cost compile memory


def check_pattern(pattern: object) -> str:
    """`pattern` if RE2 runs it and it is at most MAX_PATTERN_CHARS long; else InvalidInput
    (400 invalid_declaration) saying which limit it is over or what RE2 cannot do."""
    if not isinstance(pattern, str):
        raise InvalidInput("str_matches takes a regular expression (a string)",
                           code="invalid_declaration")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise InvalidInput(f"str_matches patterns are at most {MAX_PATTERN_CHARS} characters",
                           code="invalid_declaration",
                           details={"limit": MAX_PATTERN_CHARS, "length": len(pattern)})
    problem = compile_problem(pattern)
    if problem is not None:
        raise InvalidInput(
            "str_matches patterns run on RE2, which matches in linear time and has no "
            "backreferences or lookaround; this one does not compile: " + problem,
            code="invalid_declaration", details={"pattern": pattern})
    return pattern


@functools.lru_cache(maxsize=256)
def compile_problem(pattern: object) -> str | None:
    """Why RE2 cannot compile `pattern`, or None if it can."""
    import pyarrow as pa  # heavy, and only declarations with patterns need it

    if not isinstance(pattern, str):
        return "not a string"
    try:
        # Compiled on its own first: wrapped, as `matches_at_start` runs it, an unbalanced
        # pattern such as `a)|(b` would compile into something else.
        for wrapped in (pattern, _anchored(pattern)):
            _match(pa.array([""], pa.string()), wrapped)
    except pa.ArrowInvalid as exc:
        return str(exc).removeprefix("Invalid regular expression: ")
    return None


def matches_at_start(values: Sequence[object], pattern: object) -> list[bool]:
    """Per value, whether `pattern` matches at its start (True for nulls and non-strings). A
    pattern RE2 cannot compile (only one stored before patterns were checked) matches nothing."""
    import pyarrow as pa

    if not isinstance(pattern, str) or compile_problem(pattern) is not None:
        return [not isinstance(v, str) for v in values]
    strings = pa.array([v if isinstance(v, str) else None for v in values], pa.string())
    matched = _match(strings, _anchored(pattern)).fill_null(True)
    return [bool(m) for m in matched.to_pylist()]


def _anchored(pattern: str) -> str:
    # Searching for `\A(?:p)` is `re.match(p)`; the group keeps a top-level `|` inside it.
    return r"\A(?:" + pattern + ")"


def _match(strings: Any, pattern: str) -> Any:
    import pyarrow.compute as pc

    return pc.match_substring_regex(strings, pattern)
