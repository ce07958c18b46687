"""Payload identity: what makes a retry a duplicate and a changed payload a conflict."""

from __future__ import annotations

from typing import Any

import pytest

from lakehouse.ingest.batch import canonical


@pytest.mark.parametrize(("a", "b"), [
    ({"x": 1, "y": None}, {"x": 1}),  # nulls dropped
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}),  # key order
    ({"x": 1}, {"x": 1.0}),  # a float64 column reads 1 back as 1.0
    ({"x": [1, {"y": 2}]}, {"x": [1.0, {"y": 2.0, "z": None}]}),
    ({"x": -0.0}, {"x": 0}),
])
def test_the_same_payload(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert canonical(a) == canonical(b)


@pytest.mark.parametrize(("a", "b"), [
    ({"x": 1}, {"x": 1.5}),
    ({"x": 1}, {"x": True}),  # a boolean is no number here
    ({"x": 0}, {"x": False}),
    ({"x": 1}, {"x": "1"}),
    ({"x": [1, None]}, {"x": [1]}),  # list items are kept, nulls too
    ({"x": 2**53 + 1}, {"x": float(2**53 + 1)}),  # past 2**53 a float is not that integer
])
def test_different_payloads(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert canonical(a) != canonical(b)
