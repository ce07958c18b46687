"""Fair shares of a limited number of slots between tenants: writes in flight, queries running.

Under overload a request is shed at once (429/503 with Retry-After) rather than queued, and
which request is shed is decided here, from the slots each tenant holds:

- While the platform has a free slot, anyone may take it: a tenant alone may use all of them.
- When it is full, a tenant holding less than its fair share (the capacity divided among the
  tenants holding slots, itself included; never under the pool's least share) is still let in,
  up to twice the configured capacity (the hard limit). So a flood never locks out a newcomer:
  the flooding tenant is refused until it holds no more than its share, and the newcomer gets
  the slots it gives back.
- The least share keeps a light tenant its room when the capacity in force is lowered to keep
  answers fast (lakehouse/loop_pressure.py): each tenant may hold that many whatever the
  capacity in force. A tenant refused within the last `PRESSING_S` seconds (pressing on the
  limit) keeps its least share only while all together hold less than the configured
  capacity, so tenants that keep asking cannot take more than it between them. One not refused
  lately keeps it up to the hard limit, whatever the others hold: a flood's first burst takes
  the whole configured capacity before the capacity in force comes down, and a steady tenant
  asking then must not be refused for a slowness the flood causes (what it holds is its rate
  times the platform's latency). A query pool also lets a steady tenant in below the configured
  capacity whatever the capacity in force: one that asks no faster than its least share a
  second on average (`Pace`: a few at once are a dashboard's refresh, or its client catching up
  on late answers) and did not meet its own limit lately. A dashboard asking once a second
  holds as many queries as seconds each takes, and that is the platform's slowness, not its
  asking. The price: a tenant that never asks for more than its own limit, and no faster than
  its least share a second, holds up to its own limit whatever the capacity in force (a client
  looping over as many connections as its limit, on queries slow enough); the configured
  capacity still bounds what such tenants hold between them. One that asks for more than its
  own limit stays unsteady while it keeps being refused.
- Everyone else is refused: 429 when it holds its share while others wait for theirs, 503 when
  the platform itself is full (or past the hard limit).

A pure decision, so it is tested with a table of cases; `Slots` keeps the counts, thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from lakehouse.errors import LakehouseError, RateLimited, Unavailable

PRESSING_S = 10.0  # a tenant refused this recently keeps its least share only below the ceiling
PRESSING_KEPT = 4096  # tenants remembered (LastTimes, Pace) before the stale ones are dropped
T = TypeVar("T")


class Refused(Enum):
    OVER_SHARE = "over_share"  # the tenant holds its share and others wait for theirs: 429
    FULL = "full"  # every slot is taken (or the hard limit reached): 503


@dataclass(frozen=True, slots=True)
class Shed:
    refused: Refused
    held: int  # slots the tenant holds
    share: int  # its fair share now
    capacity: int


def fair_share(held: Mapping[str, int], tenant: str, capacity: int) -> int:
    """The capacity divided among the tenants holding slots, `tenant` counted; at least 1."""
    others = sum(1 for name, count in held.items() if count > 0 and name != tenant)
    return max(1, capacity // (others + 1))


def decide(held: Mapping[str, int], tenant: str, capacity: int,
           ceiling: int | None = None, *, least: int = 1, pressing: bool = True,
           steady: bool = False) -> Shed | None:
    """None to admit `tenant`'s request, else why it is shed. `ceiling` is the configured limit
    when `capacity` is the one in force below it (lakehouse/loop_pressure.py): the hard limit
    for a tenant under its share stays twice the ceiling, so a limit that shrinks below what is
    already held does not lock newcomers out until the others finish. `least` is the share no
    tenant is refused below, however low the capacity in force: for a `pressing` tenant (one
    refused lately, `LastTimes`) only while everyone together holds less than the ceiling, so
    tenants that keep asking cannot take more than the configured limit between them; for
    one not pressing, up to the hard limit. A `steady` tenant (one asking no faster than its
    least share a second, lakehouse/executor/queries.py) is let in while everyone together holds
    less than the ceiling, whatever the capacity in force: what it holds is its rate times the
    platform's latency. The room past the ceiling stays for least shares."""
    own = held.get(tenant, 0)
    total = sum(held.values())
    limit = max(capacity, ceiling or capacity)
    share = fair_share(held, tenant, capacity)
    if total < limit or not pressing:
        share = max(share, least)
    hard = 2 * limit
    if total < capacity or (own < share and total < hard) or (steady and total < limit):
        return None
    alone = not any(count > 0 and name != tenant for name, count in held.items())
    full = own < share or alone  # under its share (so at the hard limit), or nobody else waits
    return Shed(Refused.FULL if full else Refused.OVER_SHARE, own, share, capacity)


def shed_error(shed: Shed, what: str) -> LakehouseError:
    """The answer to a shed request: `what` names the slots ("writes in flight")."""
    details = {"held": shed.held, "fair_share": shed.share, "capacity": shed.capacity}
    retry = {"Retry-After": "1"}
    if shed.refused is Refused.OVER_SHARE:
        return RateLimited(
            f"your tenant has {shed.held} {what}, its fair share while other tenants wait "
            f"for theirs ({shed.capacity} in all); retry after the Retry-After seconds, or "
            "send fewer at once", code="over_fair_share", details=details, headers=retry)
    return Unavailable(f"the platform has its most {what} ({shed.capacity}); retry after the "
                       "Retry-After seconds", code="overloaded", details=details, headers=retry)


def _remember(entries: dict[str, T], tenant: str, entry: T, *, now: float, stale_s: float,
              marked: Callable[[T], float]) -> None:
    """`entries[tenant] = entry` (`marked(entry)` is when: `now`). Past PRESSING_KEPT entries,
    those marked `stale_s` or longer ago are dropped."""
    entries.pop(tenant, None)  # the most recent last, so the stale ones come first
    entries[tenant] = entry
    if len(entries) <= PRESSING_KEPT:
        return
    while entries:  # every stale one goes, each once: no cost per mark in the long run
        name, kept = next(iter(entries.items()))  # the least recently marked
        if now - marked(kept) < stale_s:
            break  # the rest were marked since: as many as tenants marked within `stale_s`
        del entries[name]


def _itself(when: float) -> float:
    return when


def _second(entry: tuple[float, float]) -> float:
    return entry[1]


class LastTimes:
    """When each tenant last did something (was refused a slot, met its own limit): within
    `window_s` of it, `within` is true. Not thread-safe: its pool's lock guards it."""

    def __init__(self, window_s: float = PRESSING_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._last: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._last)

    def within(self, tenant: str) -> bool:
        last = self._last.get(tenant)
        return last is not None and self._clock() - last < self.window_s

    def mark(self, tenant: str) -> None:
        now = self._clock()
        _remember(self._last, tenant, now, now=now, stale_s=self.window_s, marked=_itself)


class Pace:
    """How fast each tenant asks, as a leaky bucket: each ask adds one, `per_s` leak out a
    second, and a tenant whose bucket holds more than `room` asks faster than `per_s` on
    average (`over`); bursts of up to `room` at once do not count. Two floats a tenant, at most
    `PRESSING_KEPT` tenants past those whose bucket is not yet empty. Not thread-safe: its
    pool's lock guards it."""

    def __init__(self, per_s: float, room: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_s = per_s
        self.room = room
        self._clock = clock
        self._level: dict[str, tuple[float, float]] = {}  # tenant: (level, when), by when

    def __len__(self) -> int:
        return len(self._level)

    def _now(self, tenant: str, now: float) -> float:
        level, when = self._level.get(tenant, (0.0, now))
        return max(0.0, level - (now - when) * self.per_s)

    def over(self, tenant: str) -> bool:
        return self._now(tenant, self._clock()) > self.room

    def mark(self, tenant: str) -> None:
        now = self._clock()
        # Never above room + 1, so every bucket empties within (room + 1) / per_s seconds.
        level = min(self.room + 1, self._now(tenant, now) + 1)
        _remember(self._level, tenant, (level, now), now=now,
                  stale_s=(self.room + 1) / self.per_s, marked=_second)


class Slots:
    """The slots each tenant holds of one pool; `take` admits or says why not. `capacity` may
    be lowered below the configured limit (`ceiling`) while the event loop lags; `least` is
    each tenant's least share, and `refusals` who has been refused lately (`decide`)."""

    def __init__(self, capacity: int, least: int = 1,
                 refusals: LastTimes | None = None) -> None:
        self.capacity = capacity
        self.ceiling = capacity
        self.least = min(least, capacity)
        self.refusals = refusals if refusals is not None else LastTimes()
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, tenant: str) -> Shed | None:
        with self._lock:
            shed = decide(self._held, tenant, self.capacity, self.ceiling, least=self.least,
                          pressing=self.refusals.within(tenant))
            if shed is None:
                self._held[tenant] = self._held.get(tenant, 0) + 1
            else:
                self.refusals.mark(tenant)
            return shed

    def give_back(self, tenant: str) -> None:
        with self._lock:
            left = self._held.get(tenant, 0) - 1
            if left > 0:
                self._held[tenant] = left
            else:
                self._held.pop(tenant, None)

    @contextmanager
    def holding(self, tenant: str) -> Iterator[Shed | None]:
        """Take a slot for the block (yielding None), or yield why not (holding nothing)."""
        shed = self.take(tenant)
        try:
            yield shed
        finally:
            if shed is None:
                self.give_back(tenant)

    def held(self) -> dict[str, int]:
        with self._lock:
            return dict(self._held)

    @property
    def in_use(self) -> int:
        with self._lock:
            return sum(self._held.values())
