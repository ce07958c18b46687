"""Payload identity: what makes a retry a duplicate and a changed payload a conflict."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
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


@pytest.mark.parametrize(("written", "flushed"), [
    ({"p": "1.50"}, {"p": Decimal("1.50")}),
    ({"p": 1.5}, {"p": Decimal("1.50")}),
    ({"t": "2026-01-02T10:00:00Z"}, {"t": dt.datetime(2026, 1, 2, 10, tzinfo=dt.UTC)}),
    ({"t": "2026-01-02T12:00:00+02:00"}, {"t": dt.datetime(2026, 1, 2, 10, tzinfo=dt.UTC)}),
    ({"t": "2026-01-02T10:00:00"}, {"t": dt.datetime(2026, 1, 2, 10)}),
    ({"d": "2026-01-02", "x": 1}, {"d": dt.date(2026, 1, 2), "x": 1.0}),
])
def test_a_record_equals_its_flushed_typed_version(written: dict[str, Any],
                                                   flushed: dict[str, Any]) -> None:
    """A flushed version is read back typed; the JSON it was written with is the same write
    (before, a Decimal made the comparison raise: a 500 on a retry or upsert)."""
    assert canonical(flushed) == canonical(written, like=flushed)


@pytest.mark.parametrize(("written", "flushed"), [
    ({"p": "1.51"}, {"p": Decimal("1.50")}),
    ({"t": "2026-01-02T10:00:01Z"}, {"t": dt.datetime(2026, 1, 2, 10, tzinfo=dt.UTC)}),
    ({"d": "not a date"}, {"d": dt.date(2026, 1, 2)}),
])
def test_a_changed_record_differs_from_its_flushed_version(written: dict[str, Any],
                                                           flushed: dict[str, Any]) -> None:
    assert canonical(flushed) != canonical(written, like=flushed)
