"""What a windowed alert rule (`increase`, `rate`) keeps of the rounds its window covers, with
running sums, so a round costs the series the rule matches, not those series times the rounds
in the window (pure and immutable: `added` makes the next window; the one before stays as it
was).

A series' increase is the sum of the steps between its consecutive points in the window, a
counter that went down (a restart) counting from 0; a point's step is kept on it, so when the
point before it leaves the window, its step leaves the sum too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Point:
    at: float
    values: Mapping[Labels, float]
    steps: Mapping[Labels, float]  # from each series' point before, where it has one


@dataclass(frozen=True, slots=True)
class Window:
    seconds: float
    points: tuple[Point, ...] = ()
    totals: Mapping[Labels, float] = field(default_factory=dict)
    last: Mapping[Labels, float] = field(default_factory=dict)
    first_at: Mapping[Labels, float] = field(default_factory=dict)
    counts: Mapping[Labels, int] = field(default_factory=dict)  # points per series

    def added(self, at: float, current: Mapping[Labels, float]) -> Window:
        """The window at `at`: the points older than `at - seconds` gone, `current` added."""
        totals, last = dict(self.totals), dict(self.last)
        first_at, counts = dict(self.first_at), dict(self.counts)
        points = list(self.points)
        start = at - self.seconds
        while points and points[0].at < start:
            gone = points.pop(0)
            rebased: dict[int, list[Labels]] = {}  # later point → series that lose a step
            for labels in gone.values:
                counts[labels] -= 1
                if counts[labels] == 0:
                    for kept in (totals, last, first_at, counts):
                        kept.pop(labels, None)
                    continue
                index = next(i for i, p in enumerate(points) if labels in p.values)
                rebased.setdefault(index, []).append(labels)
            for index, series in rebased.items():
                point, steps = points[index], dict(points[index].steps)
                for labels in series:
                    totals[labels] -= steps.pop(labels, 0.0)
                    first_at[labels] = point.at
                points[index] = replace(point, steps=steps)
        steps = {}
        for labels, value in current.items():
            before = last.get(labels)
            if before is None:
                first_at[labels], totals[labels] = at, 0.0
            else:
                steps[labels] = value - before if value >= before else value
                totals[labels] += steps[labels]
            last[labels] = value
            counts[labels] = counts.get(labels, 0) + 1
        points.append(Point(at, dict(current), steps))
        return Window(self.seconds, tuple(points), totals, last, first_at, counts)

    def values(self, current: Mapping[Labels, float], now: float,
               function: str) -> dict[Labels, float]:
        """`increase` (or `rate`, per second since the series' first point in the window) of
        each series matched now."""
        if function == "rate":
            return {labels: self.totals[labels] / (now - self.first_at[labels])
                    if now > self.first_at[labels] else 0.0 for labels in current}
        return {labels: self.totals[labels] for labels in current}
