"""The running sums of a windowed rule equal the sums taken afresh over the rounds the window
covers (series appearing, vanishing and restarting, rounds at uneven times), and a window that
was added to stays as it was."""

from __future__ import annotations

import random

import pytest

from lakehouse.telemetry.alert_windows import Labels, Window


def _afresh(rounds: list[tuple[float, dict[Labels, float]]], seconds: float, now: float,
            current: dict[Labels, float], function: str) -> dict[Labels, float]:
    """The definition: steps between consecutive points in [now - seconds, now]."""
    start = now - seconds
    first: dict[Labels, float] = {}
    last: dict[Labels, float] = {}
    total = dict.fromkeys(current, 0.0)
    for at, seen in rounds:
        if at < start:
            continue
        for labels, value in seen.items():
            if labels in last:
                total[labels] = total.get(labels, 0.0) + (
                    value - last[labels] if value >= last[labels] else value)
            else:
                first[labels] = at
            last[labels] = value
    if function == "rate":
        return {k: total[k] / (now - first[k]) if now > first[k] else 0.0 for k in current}
    return {k: total[k] for k in current}


@pytest.mark.parametrize("seed", range(12))
def test_running_sums_equal_the_sums_afresh(seed: int) -> None:
    rng = random.Random(seed)
    seconds = rng.choice([30.0, 60.0, 300.0])
    series = [(("s", str(n)),) for n in range(rng.randint(1, 6))]
    counters = dict.fromkeys(series, 0.0)
    window, rounds, at = Window(seconds), [], 0.0
    for _ in range(200):
        at += rng.choice([1.0, 5.0, 5.0, 15.0, 40.0])
        current = {}
        for labels in series:
            if rng.random() < 0.15:
                continue  # the series is missing this round
            counters[labels] = (0.0 if rng.random() < 0.05  # a restart
                                else counters[labels] + rng.randint(0, 9))
            current[labels] = counters[labels]
        rounds.append((at, current))
        window = window.added(at, current)
        for function in ("increase", "rate"):
            want = _afresh(rounds, seconds, at, current, function)
            got = window.values(current, at, function)
            assert got == pytest.approx(want), (seed, at, function)
        assert all(p.at >= at - seconds for p in window.points)


def test_a_window_added_to_stays_as_it_was() -> None:
    labels: Labels = (("s", "a"),)
    before = Window(10.0).added(0.0, {labels: 1.0}).added(5.0, {labels: 4.0})
    after = before.added(12.0, {labels: 10.0})
    assert before.values({labels: 4.0}, 5.0, "increase") == {labels: 3.0}
    assert after.values({labels: 10.0}, 12.0, "increase") == {labels: 6.0}
    assert [p.at for p in before.points] == [0.0, 5.0]
