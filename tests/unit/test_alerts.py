"""Alert rules, pure: expressions over samples, and the inactive → pending → firing → resolved
moves, as tables of cases."""

from __future__ import annotations

from typing import Any

import pytest

from lakehouse.errors import InvalidInput
from lakehouse.telemetry.alerts import (
    RESOLVED_KEPT_S,
    AlertBook,
    Labels,
    Rule,
    Samples,
    decide,
    parse_expression,
    parse_rules,
)

WORKERS = "lakehouse_dask_workers"
FAILED = "lakehouse_queries_total"
AGE = "lakehouse_unflushed_oldest_age_seconds"


def _samples(**series: Any) -> Samples:
    """name=value, or name=[(labels dict, value), …]."""
    out: dict[str, list[tuple[Labels, float]]] = {}
    for name, given in series.items():
        entries = given if isinstance(given, list) else [({}, given)]
        out[name] = [(tuple(sorted(labels.items())), float(v)) for labels, v in entries]
    return out


@pytest.mark.parametrize(("text", "samples", "expected"), [
    (f"{WORKERS} < 1", _samples(lakehouse_dask_workers=0), {(): 0.0}),
    (f"{WORKERS} < 1", _samples(lakehouse_dask_workers=2), {(): 2.0}),
    (f"{WORKERS} < 1", _samples(), {}),
    ('lakehouse_component_up{component="catalog"} == 0',
     _samples(lakehouse_component_up=[({"component": "catalog"}, 0),
                                      ({"component": "prefect"}, 1)]),
     {(("component", "catalog"),): 0.0}),
    ('lakehouse_component_up{component!="catalog"} == 0',
     _samples(lakehouse_component_up=[({"component": "catalog"}, 0),
                                      ({"component": "prefect"}, 1)]),
     {(("component", "prefect"),): 1.0}),
    (f"max({AGE}) > 120", _samples(
        lakehouse_unflushed_oldest_age_seconds=[({"t": "a"}, 5), ({"t": "b"}, 300)]),
     {(): 300.0}),
    (f"sum({AGE}) > 120", _samples(
        lakehouse_unflushed_oldest_age_seconds=[({"t": "a"}, 5), ({"t": "b"}, 300)]),
     {(): 305.0}),
    (f"min({AGE}) > 120", _samples(), {}),
    (f"count({AGE}) > 120", _samples(), {(): 0.0}),
])
def test_an_expression_has_a_value_per_series(text: str, samples: Samples,
                                              expected: dict[Labels, float]) -> None:
    assert parse_expression(text).values(samples) == expected


def _failed(value: float) -> Samples:
    return _samples(lakehouse_queries_total=[({"state": "failed"}, value),
                                             ({"state": "finished"}, 1000)])


@pytest.mark.parametrize(("text", "points", "expected"), [
    # (time, failed count) pairs; the newest is "now"
    ('increase(lakehouse_queries_total{state="failed"}[5m]) > 5',
     [(0, 1), (100, 4), (200, 9)], 8.0),
    ('increase(lakehouse_queries_total{state="failed"}[2m]) > 5',
     [(0, 1), (100, 4), (200, 9)], 5.0),  # only t >= 80 counts
    ('increase(lakehouse_queries_total{state="failed"}[5m]) > 5',
     [(0, 10), (100, 2), (200, 5)], 5.0),  # a restart: counted from 0
    ('increase(lakehouse_queries_total{state="failed"}[5m]) > 5', [(200, 9)], 0.0),
    ('rate(lakehouse_queries_total{state="failed"}[5m]) > 0',
     [(0, 0), (100, 50), (200, 100)], 0.5),
])
def test_windowed_functions_read_the_history(text: str, points: list[tuple[float, float]],
                                             expected: float) -> None:
    expression = parse_expression(text)
    past = [(float(t), expression.matched(_failed(v))) for t, v in points[:-1]]
    now, last = points[-1]
    assert expression.values(_failed(last), past, float(now)) == {
        (("state", "failed"),): expected}


def test_a_window_keeps_only_the_rounds_it_covers() -> None:
    [rule] = parse_rules({"rules": [{"name": "Failing", "for": "0s", "expr":
                                     'increase(lakehouse_queries_total{state="failed"}[1m]) > 2'}]})
    book = AlertBook()
    for at, failed in [(0, 0), (30, 1), (60, 2), (90, 5), (120, 6)]:
        book, _ = decide(book, [rule], _failed(failed), float(at))
    assert [p.at for p in book.windows["Failing"].points] == [60.0, 90.0, 120.0]
    assert [a.value for a in book.alerts.values()] == [4.0]


@pytest.mark.parametrize("text", [
    "", "lakehouse_x", "lakehouse_x >", "lakehouse_x > many", "sum(lakehouse_x > 1",
    "increase(lakehouse_x) > 1", "lakehouse_x[5m] > 1", "lakehouse_x{a=b} > 1",
    "avg(lakehouse_x) > 1", "lakehouse_x{a=\"b\"} > 1 or vector(1)", "x" * 600 + " > 1",
])
def test_what_is_not_an_expression_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_expression(text)
    assert refused.value.code == "invalid_alert_rule"


def _rule(for_s: str = "30s") -> Rule:
    [rule] = parse_rules({"rules": [{"name": "NoWorkers", "expr": f"{WORKERS} < 1",
                                     "for": for_s, "severity": "critical",
                                     "summary": "no Dask worker", "labels": {"team": "ops"}}]})
    return rule


# (seconds since start, workers) → the state after, and the moves notified
STEPS: list[tuple[str, list[tuple[float, int]], list[str | None], list[str]]] = [
    ("never holds", [(0, 2), (10, 2)], [None, None], []),
    ("holds shorter than for", [(0, 0), (10, 0), (20, 2)], ["pending", "pending", None], []),
    ("holds for long enough", [(0, 0), (10, 0), (30, 0), (40, 0)],
     ["pending", "pending", "firing", "firing"], ["pending→firing"]),
    ("fires and resolves", [(0, 0), (30, 0), (40, 2), (50, 2)],
     ["pending", "firing", "resolved", "resolved"], ["pending→firing", "firing→resolved"]),
    ("resolved, then holds again", [(0, 0), (30, 0), (40, 2), (50, 0), (80, 0)],
     ["pending", "firing", "resolved", "pending", "firing"],
     ["pending→firing", "firing→resolved", "pending→firing"]),
    ("the series vanishes while firing", [(0, 0), (30, 0), (40, -1)],
     ["pending", "firing", "resolved"], ["pending→firing", "firing→resolved"]),
]


@pytest.mark.parametrize(("case", "steps", "states", "moves"), STEPS, ids=[s[0] for s in STEPS])
def test_alerts_move_through_their_states(case: str, steps: list[tuple[float, int]],
                                          states: list[str | None], moves: list[str]) -> None:
    rule, book, seen, notified = _rule(), AlertBook(), [], []
    key = ("NoWorkers", (("team", "ops"),))
    for at, workers in steps:
        samples = _samples() if workers < 0 else _samples(lakehouse_dask_workers=workers)
        book, transitions = decide(book, [rule], samples, at)
        alert = book.alerts.get(key)
        seen.append(alert.state if alert else None)
        notified += [f"{t.previous}→{t.alert.state}" for t in transitions]
    assert seen == states
    assert notified == moves


def test_a_rule_without_for_fires_at_once_and_resolved_alerts_are_dropped_later() -> None:
    rule = _rule("0s")
    book, moves = decide(AlertBook(), [rule], _samples(lakehouse_dask_workers=0), 0.0)
    assert [(m.previous, m.alert.state) for m in moves] == [("inactive", "firing")]
    assert [(a.value, a.since) for a in book.alerts.values()] == [(0.0, 0.0)]
    book, _ = decide(book, [rule], _samples(lakehouse_dask_workers=1), 5.0)
    assert [a.state for a in book.alerts.values()] == ["resolved"]
    later = 5.0 + RESOLVED_KEPT_S + 1
    book, moves = decide(book, [rule], _samples(lakehouse_dask_workers=1), later)
    assert book.alerts == {} and moves == []


@pytest.mark.parametrize(("document", "problem"), [
    ({}, "holds `rules:`"),
    ({"rules": [{"expr": "x > 1"}]}, "with a `name`"),
    ({"rules": [{"name": "a", "expr": "x > 1"}, {"name": "a", "expr": "x > 1"}]}, "twice"),
    ({"rules": [{"name": "a", "expr": "x > 1", "severity": "page"}]}, "severity"),
    ({"rules": [{"name": "a", "expr": "x > 1", "for": "soon"}]}, "duration"),
    ({"rules": [{"name": "a", "expr": "x > 1", "labels": ["x"]}]}, "labels"),
    ({"rules": [{"name": "a", "expr": "x >"}]}, "cannot read"),
])
def test_a_bad_rules_file_is_refused_saying_what_is_wrong(document: Any, problem: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_rules(document)
    assert problem in refused.value.message
