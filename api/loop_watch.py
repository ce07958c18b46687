"""The event loop's lag, watched, and the admission limits it decides (lakehouse/loop_pressure.py):
a timer asks to wake every `TICK_S`; how late it wakes is how long anything the loop was handed
waited before it was looked at. Every `WINDOW` ticks the worst lateness sets the capacity of
the writes in flight (the Tenant Node's admission) and of the queries running."""

from __future__ import annotations

import asyncio
import logging

from api.core import Core
from lakehouse.loop_pressure import Bounds, Limits, adjust

log = logging.getLogger(__name__)

TICK_S = 0.02
WINDOW = 5  # ticks: the limits move at most ten times a second


def bounds_of(core: Core) -> Bounds:
    """Each limit follows the lag down to its floor (INGEST_MIN_INFLIGHT, QUERY_MIN_CONCURRENT),
    which is also each tenant's least share of it (lakehouse/fair_share.py): a floor shared out
    between tenants would leave a light tenant one or two slots of it while another floods,
    too few for one whose answers the flood slows; as a least share it keeps its own room
    however low the limit goes."""
    registry = core.queries.registry if core.queries is not None else None
    return Bounds(core.write_slots.ceiling, registry.ceiling if registry is not None else 1,
                  core.settings.admission_target_lag_ms / 1000,
                  min_writes=core.write_slots.least,
                  min_queries=registry.least if registry is not None else 1)


def apply(core: Core, limits: Limits, lag_s: float) -> None:
    core.write_slots.capacity = limits.writes
    if core.queries is not None:
        core.queries.registry.capacity = limits.queries
    core.metrics.observe_admission(lag_s, limits.writes, limits.queries)


async def keep_limits(core: Core) -> None:
    """Runs until cancelled; with ADMISSION_TARGET_LAG_MS=0 the limits stay as configured."""
    bounds = bounds_of(core)
    limits = bounds.start()
    apply(core, limits, 0.0)
    if bounds.target_lag_s <= 0:
        return
    loop = asyncio.get_running_loop()
    while True:
        worst = 0.0
        for _ in range(WINDOW):
            before = loop.time()
            await asyncio.sleep(TICK_S)
            worst = max(worst, loop.time() - before - TICK_S)
        moved = adjust(limits, worst, bounds)
        if (moved.writes < bounds.writes) != (limits.writes < bounds.writes):
            # Into or out of shedding below the configured limits: once each way, not per move.
            log.info("admission limits follow the event loop's lag" if moved.writes
                     < bounds.writes else "admission limits back at their configured values",
                     extra={"lag_ms": round(worst * 1000, 1), "writes": moved.writes,
                            "queries": moved.queries})
        limits = moved
        apply(core, limits, worst)
