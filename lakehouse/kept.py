"""Values made once by key and kept at hand, up to a bound: past it they are made each time.

For hot paths that make the same few things again and again (a metric's series by its labels,
a shed request's answer by what was decided), where an unbounded cache would grow with whatever
keys a hostile caller can vary. Nothing is ever evicted, so a kept value stays the one `make`
gave first; keep only values that do not change for their key.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Kept(Generic[K, V]):
    """Thread-safe enough for its use: two threads making the same key at once each get a
    value from `make`, and the dict keeps one of them (callers make equal values)."""

    def __init__(self, most: int) -> None:
        self.most = most
        self._kept: dict[K, V] = {}

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: K, make: Callable[[], V]) -> V:
        value = self._kept.get(key)
        if value is None:
            value = make()
            if len(self._kept) < self.most:
                self._kept[key] = value
        return value
