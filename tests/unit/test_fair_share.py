"""Who gets a slot under overload (`lakehouse.fair_share`), as a table of cases, and a simulated
flood: the flooding tenant is pushed down to its share and the newcomer always gets in."""

from __future__ import annotations

import threading

import pytest

from lakehouse.fair_share import (
    PRESSING_KEPT,
    LastTimes,
    Pace,
    Refused,
    Shed,
    Slots,
    decide,
    fair_share,
)

ADMIT = None


@pytest.mark.parametrize(
    ("held", "tenant", "capacity", "expected"),
    [
        ({}, "a", 4, ADMIT),  # an idle platform
        ({"a": 3}, "a", 4, ADMIT),  # alone, a tenant may use every slot
        ({"a": 4}, "a", 4, Shed(Refused.FULL, 4, 4, 4)),  # … but no more: the platform is full
        ({"a": 4}, "b", 4, ADMIT),  # full, yet a newcomer under its share (2) gets in
        ({"a": 4, "b": 1}, "b", 4, ADMIT),  # … up to its share
        ({"a": 4, "b": 2}, "b", 4, Shed(Refused.OVER_SHARE, 2, 2, 4)),  # … and no further
        ({"a": 4, "b": 1}, "a", 4, Shed(Refused.OVER_SHARE, 4, 2, 4)),  # the flooder waits
        ({"a": 1, "b": 1}, "a", 4, ADMIT),  # free slots go to whoever asks (work-conserving)
        ({"a": 2, "b": 2}, "b", 4, Shed(Refused.OVER_SHARE, 2, 2, 4)),  # full, shared evenly
        ({"a": 2, "b": 2, "c": 0}, "c", 4, ADMIT),  # a tenant at 0 counts as not holding
        ({"a": 4, "b": 3}, "c", 4, ADMIT),  # a third: share 1, and it holds none
        ({"a": 8}, "b", 4, Shed(Refused.FULL, 0, 2, 4)),  # the hard limit: twice the capacity
        ({"a": 1, "b": 1, "c": 1, "d": 1}, "e", 4, ADMIT),  # a share is at least one slot
        ({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}, "e", 4, Shed(Refused.OVER_SHARE, 1, 1, 4)),
    ],
)
def test_decide(held: dict[str, int], tenant: str, capacity: int,
                expected: Shed | None) -> None:
    assert decide(held, tenant, capacity) == expected


@pytest.mark.parametrize(
    ("held", "tenant", "capacity", "ceiling", "expected"),
    [
        # The limit in force shrank to 4 below the configured 16 (the event loop lags) while a
        # flood held 12: the flood is refused, a newcomer still gets in (the hard limit is twice
        # the ceiling, not twice what is in force) ...
        ({"a": 12}, "a", 4, 16, Shed(Refused.FULL, 12, 4, 4)),
        ({"a": 12}, "b", 4, 16, ADMIT),
        ({"a": 12, "b": 1}, "b", 4, 16, ADMIT),
        ({"a": 12, "b": 2}, "b", 4, 16, Shed(Refused.OVER_SHARE, 2, 2, 4)),  # … to its share
        ({"a": 30, "b": 1}, "b", 4, 16, ADMIT),
        ({"a": 32}, "b", 4, 16, Shed(Refused.FULL, 0, 2, 4)),  # twice the ceiling stays hard
        # Without a ceiling (or one at the capacity) the newcomer would wait for the flood.
        ({"a": 12}, "b", 4, None, Shed(Refused.FULL, 0, 2, 4)),
        ({"a": 12}, "b", 4, 4, Shed(Refused.FULL, 0, 2, 4)),
    ],
)
def test_decide_under_a_lowered_limit(held: dict[str, int], tenant: str, capacity: int,
                                      ceiling: int | None, expected: Shed | None) -> None:
    assert decide(held, tenant, capacity, ceiling) == expected


@pytest.mark.parametrize(
    ("held", "tenant", "capacity", "expected"),
    [
        # The writes limit in force is down at its floor of 8 (the configured 32), each
        # tenant's least share is 8 too: the flood alone holds the 8 ...
        ({"a": 7}, "a", 8, ADMIT),
        ({"a": 8}, "a", 8, Shed(Refused.FULL, 8, 8, 8)),
        # … a light tenant gets up to 8 of its own beside it, not half of 8 …
        ({"a": 8}, "b", 8, ADMIT),
        ({"a": 8, "b": 7}, "b", 8, ADMIT),
        ({"a": 8, "b": 8}, "b", 8, Shed(Refused.OVER_SHARE, 8, 8, 8)),
        # … and the flood, at its least share, is refused while the other holds some.
        ({"a": 8, "b": 1}, "a", 8, Shed(Refused.OVER_SHARE, 8, 8, 8)),
        # A lower share never wins: with the capacity back at 32, two tenants' shares are 16.
        ({"a": 20, "b": 15}, "b", 32, ADMIT),
        ({"a": 20, "b": 16}, "b", 32, Shed(Refused.OVER_SHARE, 16, 16, 32)),
        # Least shares count only below the configured limit (32): four tenants at theirs ...
        ({str(i): 8 for i in range(3)} | {"x": 7}, "x", 8, ADMIT),
        ({str(i): 8 for i in range(4)} | {"x": 1}, "x", 8, Shed(Refused.OVER_SHARE, 1, 1, 8)),
        # … and past it a newcomer gets its share of the capacity in force (8 among 5: 1).
        ({str(i): 8 for i in range(4)}, "x", 8, ADMIT),
        ({str(i): 8 for i in range(8)}, "x", 8, Shed(Refused.FULL, 0, 1, 8)),
    ],
)
def test_decide_with_a_least_share(held: dict[str, int], tenant: str, capacity: int,
                                   expected: Shed | None) -> None:
    assert decide(held, tenant, capacity, ceiling=32, least=8) == expected


@pytest.mark.parametrize(
    ("held", "tenant", "pressing", "expected"),
    [
        # The limit in force is down to 8 of the configured 32. Below the 32 in all, a tenant's
        # least share (8) counts whether it was refused lately or not ...
        ({"a": 8, "b": 7}, "b", False, ADMIT),
        ({"a": 8, "b": 7}, "b", True, ADMIT),
        ({"a": 8, "b": 8}, "b", False, Shed(Refused.OVER_SHARE, 8, 8, 8)),
        ({"b": 31}, "b", False, Shed(Refused.FULL, 31, 8, 8)),  # alone: the limit in force
        # … past them, as when a flood's first burst took the whole 32 before the limit came
        # down, only for one not refused lately, and up to the hard 64 ...
        ({"a": 32, "b": 7}, "b", False, ADMIT),
        ({"a": 32, "b": 8}, "b", False, Shed(Refused.OVER_SHARE, 8, 8, 8)),
        ({"a": 60, "b": 4}, "b", False, Shed(Refused.FULL, 4, 8, 8)),
        # … while one refused lately gets its share of the limit in force (8 between 2).
        ({"a": 32, "b": 3}, "b", True, ADMIT),
        ({"a": 32, "b": 4}, "b", True, Shed(Refused.OVER_SHARE, 4, 4, 8)),
    ],
)
def test_decide_for_a_tenant_refused_lately_or_not(held: dict[str, int], tenant: str,
                                                  pressing: bool,
                                                  expected: Shed | None) -> None:
    assert decide(held, tenant, 8, ceiling=32, least=8, pressing=pressing) == expected


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        # A tenant asking no faster than its least share a second is let in whatever it holds
        # (the limit in force 2) while all together hold less than the configured 8 ...
        ({"a": 2, "b": 2}, ADMIT),
        ({"a": 2, "b": 5}, ADMIT),
        # … and past it only by its least share (2), as anyone not refused lately.
        ({"a": 3, "b": 5}, Shed(Refused.OVER_SHARE, 5, 2, 2)),
        ({"a": 10, "b": 1}, ADMIT),
        ({"a": 10, "b": 2}, Shed(Refused.OVER_SHARE, 2, 2, 2)),
    ],
)
def test_decide_for_a_steady_tenant(held: dict[str, int], expected: Shed | None) -> None:
    assert decide(held, "b", 2, ceiling=8, least=2, pressing=False, steady=True) == expected


def test_a_steady_tenant_keeps_its_least_share_beside_a_flood_s_first_burst() -> None:
    """A flood takes the configured 32 before the limit in force comes down to 8; a steady
    tenant asking then still gets its least share (8). Once refused it is held to its share of
    the limit in force for 10 s, then has its least share again."""
    now = [0.0]
    slots = Slots(32, least=8, refusals=LastTimes(clock=lambda: now[0]))
    while slots.take("flood") is None:
        pass
    assert slots.held() == {"flood": 32}
    slots.capacity = 8
    assert [slots.take("steady") for _ in range(8)] == [None] * 8
    assert slots.take("steady") == Shed(Refused.OVER_SHARE, 8, 8, 8)
    slots.give_back("steady")
    assert slots.take("steady") == Shed(Refused.OVER_SHARE, 7, 4, 8)  # refused lately
    now[0] = 5.0
    assert slots.take("flood") == Shed(Refused.OVER_SHARE, 32, 4, 8)  # it keeps asking
    now[0] = 10.0
    assert slots.take("steady") is None  # not refused for 10 s: its least share again
    assert slots.take("flood") == Shed(Refused.OVER_SHARE, 32, 4, 8)


def test_refusals_forget_the_stale_past_their_bound() -> None:
    now = [0.0]
    refusals = LastTimes(window_s=10.0, clock=lambda: now[0])
    for tenant in range(PRESSING_KEPT):
        refusals.mark(str(tenant))
    now[0] = 11.0
    refusals.mark("late")
    assert refusals.within("late") and not refusals.within("0")
    assert len(refusals) == 1


def test_a_pace_allows_bursts_and_counts_the_average() -> None:
    """A query pool's asks, 2 a second with room for 20: a refresh of a few at once, or a client
    catching up on late answers, is not over the pace, and neither is asking once a second for
    ever; asking 3 a second is over it within 20 s, and under it again a second after."""
    now = [0.0]
    pace = Pace(per_s=2.0, room=20.0, clock=lambda: now[0])
    for _ in range(12):  # a client owing 12 queries sends them at once
        pace.mark("dashboard")
    assert not pace.over("dashboard")
    for _ in range(100):
        now[0] += 1.0
        pace.mark("dashboard")
        assert not pace.over("dashboard")
    seconds = 0.0
    while not pace.over("dashboard"):
        now[0] += 1 / 3
        seconds += 1 / 3
        pace.mark("dashboard")
    assert 18 <= seconds <= 21 and not pace.over("other")
    now[0] += 1.0
    assert not pace.over("dashboard")


def test_a_pace_forgets_the_emptied_past_its_bound() -> None:
    now = [0.0]
    pace = Pace(per_s=2.0, room=20.0, clock=lambda: now[0])
    for tenant in range(PRESSING_KEPT):
        for _ in range(30):
            pace.mark(str(tenant))
    assert pace.over("0")
    now[0] = 10.0  # the first buckets (21 at most) are not yet empty: none goes
    pace.mark("late")
    assert len(pace) == PRESSING_KEPT + 1
    now[0] = 11.0
    pace.mark("later")
    assert len(pace) == 2 and not pace.over("0")


def test_tenants_at_their_least_shares_stay_within_the_configured_limit() -> None:
    """Ten tenants each taking what they can while the limit in force is lowered to 8 (the
    configured 32, a least share of 8). Asking at once, before any was refused, they reach the
    hard limit (64); refused, they are pressing, and as their slots come back they hold the
    32 between them, not ten least shares."""
    slots = Slots(32, least=8)
    slots.capacity = 8
    tenants = [str(tenant) for tenant in range(10)]

    def take_all() -> None:
        taking = True
        while taking:
            taking = any([slots.take(tenant) is None for tenant in tenants])

    take_all()
    assert slots.in_use == 64 and max(slots.held().values()) <= 8
    assert all(slots.refusals.within(tenant) for tenant in tenants)
    for tenant, count in slots.held().items():
        for _ in range(count):
            slots.give_back(tenant)
    take_all()
    assert slots.in_use == 32 and max(slots.held().values()) <= 8


def test_the_least_share_is_never_over_the_capacity() -> None:
    slots = Slots(4, least=8)
    assert [slots.take("a") for _ in range(4)] == [None] * 4
    assert slots.take("a") == Shed(Refused.FULL, 4, 4, 4)


@pytest.mark.parametrize(
    ("held", "tenant", "share"),
    [({}, "a", 64), ({"a": 64}, "a", 64), ({"a": 64}, "b", 32), ({"a": 5, "b": 0}, "c", 32),
     ({str(i): 1 for i in range(100)}, "x", 1)],
)
def test_fair_share(held: dict[str, int], tenant: str, share: int) -> None:
    assert fair_share(held, tenant, 64) == share


def test_a_flood_is_pushed_down_to_its_share() -> None:
    """Tenant a keeps every slot it can busy; b asks for 8 at a time. Each round one request
    of each ends and both ask again, as their clients would: a settles at its share (32 of 64)
    and b gets all 8 it wants; the pool never passes twice its capacity."""
    slots = Slots(64)
    while slots.take("a") is None:
        pass
    assert slots.held() == {"a": 64}
    for _ in range(200):
        for tenant, wanted in (("a", 64), ("b", 8)):
            while slots.held().get(tenant, 0) < wanted and slots.take(tenant) is None:
                pass
        assert slots.in_use <= 128
        slots.give_back("a")
        if slots.held().get("b"):
            slots.give_back("b")
    held = slots.held()
    assert held["a"] <= 56 + 1 and held["b"] >= 7


def test_slots_are_given_back_and_counted_across_threads() -> None:
    slots = Slots(8)
    admitted: list[bool] = []
    barrier = threading.Barrier(16)

    def ask() -> None:
        barrier.wait()
        with slots.holding("a") as shed:
            admitted.append(shed is None)
            barrier.wait()

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert admitted.count(True) == 8
    assert slots.held() == {} and slots.in_use == 0
