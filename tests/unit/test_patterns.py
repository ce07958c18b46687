"""`str_matches` patterns: RE2 in linear time, the meaning pandera's `re.match` gave them, and
what is refused at declaration."""

from __future__ import annotations

import time
from typing import Any

import pytest

from lakehouse.errors import InvalidInput
from lakehouse.schema.declared import parse_declaration
from lakehouse.schema.patterns import MAX_PATTERN_CHARS, check_pattern, matches_at_start
from lakehouse.schema.value_checks import failing_records

PATHOLOGICAL = "^(a+)+$"  # nested quantifiers: exponential in a backtracking engine


def declared(pattern: Any, *, stored: bool = False) -> Any:
    spec = {"table": "t", "columns": {"s": "string"},
            "checks": [{"column": "s", "check": "str_matches", "value": pattern}]}
    return parse_declaration(spec, stored=True) if stored else parse_declaration(spec)


@pytest.mark.parametrize(("pattern", "value", "matches"), [
    ("ab", "abc", True),  # at the start, not the whole value (re.match)
    ("ab", "xab", False),
    ("a|b", "bx", True),  # a top-level `|` stays inside the anchor
    ("x|ab", "zab", False),
    ("^a$", "a", True),
    ("^a$", "ab", False),
    ("a{2}", "aab", True),
    (r"\d+-\w+", "12-ab", True),
    ("(?i)abc", "ABCd", True),
    ("[[:alpha:]]+$", "abc1", False),
    ("é+", "éé", True),
    ("", "anything", True),
])
def test_patterns_match_at_the_start_as_re_match_did(pattern: str, value: str,
                                                     matches: bool) -> None:
    assert matches_at_start([value], pattern) == [matches]


def test_nulls_and_values_that_are_not_strings_pass() -> None:
    assert matches_at_start([None, 5, "b", 2.5], "a") == [True, True, False, True]


@pytest.mark.timeout(60)  # a backtracking engine would take ~10 s for the short value
def test_a_pathological_pattern_runs_in_linear_time() -> None:
    table = declared(PATHOLOGICAL)
    short, long_ = "a" * 28 + "!", "a" * 10_000 + "!"
    assert failing_records(table, [{"s": "a"}]) == {}  # warm-up: pandas, pandera's schema
    start = time.perf_counter()
    failing = failing_records(table, [{"s": short}, {"s": "a" * 10_000}, {"s": long_}])
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{elapsed:.1f} s"
    assert sorted(failing) == [0, 2]
    assert failing[0] == f"payload.s: {short!r} fails str_matches('{PATHOLOGICAL}')"


@pytest.mark.parametrize(("pattern", "words"), [
    (r"(a)\1", "backreferences"),
    (r"(?P<x>a)(?P=x)", "backreferences"),
    ("(?=a)b", "lookaround"),
    ("(?<!a)b", "lookaround"),
    ("a)|(b", "does not compile"),
    ("((a{100}){100}){100}", "does not compile"),
    ("a" * (MAX_PATTERN_CHARS + 1), f"at most {MAX_PATTERN_CHARS} characters"),
    (5, "a string"),
])
def test_patterns_re2_cannot_run_or_too_long_are_refused(pattern: Any, words: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        declared(pattern)
    assert refused.value.code == "invalid_declaration"
    assert words in refused.value.message
    assert refused.value.http_status == 400


def test_a_pattern_at_the_limit_is_taken() -> None:
    assert check_pattern("a" * MAX_PATTERN_CHARS) == "a" * MAX_PATTERN_CHARS


def test_a_stored_declaration_with_an_old_pattern_still_loads_and_fails_closed() -> None:
    """Declared before patterns were checked: the table still lists, and its records are
    refused rather than tested by a backtracking engine."""
    table = declared(r"(a)\1", stored=True)
    assert failing_records(table, [{"s": "aa"}, {"s": None}]) == {
        0: "payload.s: 'aa' fails str_matches('(a)\\1')"}
