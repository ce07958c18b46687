"""The admission limits follow the services' event loop (api/loop_watch.py): blocked, the loop
wakes its timer late and the writes and queries limits shrink; free again, they grow back to
the configured limits. With ADMISSION_TARGET_LAG_MS=0 they stay as configured."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from api.core import Core, build_core
from api.loop_watch import keep_limits
from lakehouse.config import Settings


def _limits(core: Core) -> tuple[int, int]:
    assert core.queries is not None
    return core.write_slots.capacity, core.queries.registry.capacity


def _gauge(core: Core, pool: str) -> float | None:
    return core.metrics.registry.get_sample_value("lakehouse_admission_limit", {"pool": pool})


def test_limits_shrink_while_the_loop_lags_and_grow_back(tmp_path: Path) -> None:
    core = build_core(Settings.for_tests(tmp_path, ingest_max_inflight=64,
                                         query_max_concurrent=8, admission_target_lag_ms=20))

    async def scenario() -> tuple[int, int]:
        watching = asyncio.create_task(keep_limits(core))
        try:
            await asyncio.sleep(0.05)
            assert _limits(core) == (64, 8) and _gauge(core, "writes") == 64
            for _ in range(3):
                time.sleep(0.2)  # the loop is held: whatever it was handed waits
                await asyncio.sleep(0.15)
            lowered = _limits(core)
            assert _gauge(core, "writes") == lowered[0]
            # The last window's worst lag (the loop has been free since the last block).
            assert core.metrics.registry.get_sample_value(
                "lakehouse_event_loop_lag_seconds") is not None
            deadline = time.monotonic() + 30
            while _limits(core) != (64, 8) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return lowered
        finally:
            watching.cancel()

    try:
        writes, queries = asyncio.run(scenario())
        assert 8 <= writes < 64 and 2 <= queries < 8  # down to the floors at most
        assert _limits(core) == (64, 8)  # back at the configured limits
    finally:
        core.close()


def test_limits_stay_fixed_when_turned_off(tmp_path: Path) -> None:
    core = build_core(Settings.for_tests(tmp_path, ingest_max_inflight=10,
                                         query_max_concurrent=3, admission_target_lag_ms=0))

    async def scenario() -> None:
        await asyncio.wait_for(keep_limits(core), 5)  # returns at once
        time.sleep(0.2)
        await asyncio.sleep(0.2)

    try:
        asyncio.run(scenario())
        assert _limits(core) == (10, 3) and _gauge(core, "queries") == 3
    finally:
        core.close()
