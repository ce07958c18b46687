"""The nesting scan (lakehouse/json_nesting.py) finds the depth parsers would recurse to, fed
in any chunks: the depth of random JSON documents exactly (with strings full of brackets,
quotes and escapes), and of random bytes what a plain byte-by-byte reading of its rules finds
(fixed seeds)."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import orjson
import pytest

from lakehouse.errors import InvalidInput
from lakehouse.json_nesting import NestingScan, check_nesting

TRICKY = ['[', ']{', '"', '\\', '\\"', '"[', '\\\\"', '{"a": [', 'é', '\u2028', '\x1f', '']


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _document(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 12 or roll < 0.35:
        return rng.choice([None, 1, 2.5, True,
                           "".join(rng.choices(TRICKY, k=rng.randint(0, 6)))])
    if roll < 0.65:
        return [_document(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {"".join(rng.choices(TRICKY, k=rng.randint(0, 3))) + str(i): _document(rng, depth + 1)
            for i in range(rng.randint(0, 3))}


def _chunks(rng: random.Random, body: bytes) -> list[bytes]:
    cuts = sorted(rng.sample(range(len(body) + 1), k=min(len(body) + 1, rng.randint(0, 8))))
    if rng.random() < 0.2:
        cuts = list(range(len(body) + 1))  # a byte at a time: every state crosses a boundary
    edges = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)]


def _accepts(body: bytes, max_depth: int, chunks: list[bytes] | None = None) -> bool:
    scan = NestingScan(max_depth)
    try:
        for chunk in chunks if chunks is not None else [body]:
            scan.feed(chunk)
    except InvalidInput as refused:
        assert refused.code == "nesting_too_deep", refused.code
        return False
    return True


def _reference_depth(body: bytes) -> int:
    """The scan's rules, byte by byte: backslashes pair up from the left, an odd one escapes
    the next byte, and an escaped quote is no quote; brackets count outside strings; a string
    ends at its closing quote or at a control byte; closing brackets stop at zero. (Valid
    JSON has backslashes only inside strings; a parser stops at one outside.)"""
    depth = deepest = 0
    inside = escaping = False
    for byte in body:
        escaped, escaping = escaping, False
        if byte == ord("\\") and not escaped:
            escaping = True
        elif byte < 0x20:
            inside = False
        elif byte == ord('"') and not escaped:
            inside = not inside
        elif inside:
            pass
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth = max(depth - 1, 0)
    return deepest


@pytest.mark.parametrize("seed", range(6))
def test_the_depth_of_json_documents_is_found_exactly_in_any_chunks(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        document = _document(rng)
        depth = _depth(document)
        for body in (json.dumps(document).encode(), json.dumps(document, indent=1).encode(),
                     orjson.dumps(document)):
            chunks = _chunks(rng, body)
            assert _accepts(body, depth, chunks), body
            if depth:
                assert not _accepts(body, depth - 1, chunks), body


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes_are_read_by_the_rules_in_any_chunks(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = [b'"', b"\\", b"[", b"]", b"{", b"}", b"\n", b"\t", b"a", b" ", b"\xc3\xa9"]
    for _ in range(600):
        body = b"".join(rng.choices(alphabet, k=rng.randint(0, 60)))
        depth = _reference_depth(body)
        chunks = _chunks(rng, body)
        assert _accepts(body, depth, chunks), body
        if depth:
            assert not _accepts(body, depth - 1, chunks), body


def test_hostile_depth_is_refused_and_depth_inside_strings_is_not() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_nesting(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 64)
    assert refused.value.http_status == 400
    assert refused.value.details == {"max_depth": 64}
    assert "64 levels" in refused.value.message
    check_nesting(orjson.dumps({"text": "[" * 50_000 + "{" * 50_000}), 64)
    check_nesting(b"[" * 64 + b"]" * 64, 64)
    assert not _accepts(b"[" * 65 + b"]" * 65, 64)


@pytest.mark.parametrize("body", [
    # A string left open at the end of a line must not hide the next line from the count:
    # NDJSON readers parse every line on its own.
    b'{"a": "open\n' + b"[" * 100,
    b'{"a": "open\\\n' + b"[" * 100,
    # Stray closing brackets must not lower the count for what follows.
    b"]" * 100 + b"\n" + b"[" * 100,
    # An escaped quote does not end a string; an escaped backslash does not escape the quote.
    b'["\\\\", ' + b"[" * 100,
])
def test_what_would_hide_brackets_from_the_count_does_not(body: bytes) -> None:
    assert not _accepts(body, 64)
    assert not _accepts(body, 64, [body[i:i + 1] for i in range(len(body))])


def test_a_body_that_is_not_utf8_is_refused() -> None:
    # Python's json reads UTF-16 and UTF-32, whose bytes a UTF-8 scan cannot follow.
    with pytest.raises(InvalidInput) as refused:
        check_nesting(json.dumps({"a": [1]}).encode("utf-16"), 64)
    assert refused.value.code == "malformed_json"
