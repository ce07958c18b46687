"""The ingest flow on Prefect's test harness: a named run with one task per table."""

from __future__ import annotations

import asyncio
import uuid

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from api.core import build_core
from flows.ingest import flush
from lakehouse.config import Settings


def test_ingest_flow_flushes_each_table_in_its_own_task(settings: Settings) -> None:
    core = build_core(settings, ingest=True)
    assert core.ingest is not None and core.flusher is not None
    for table in ("events", "users"):
        rows = [{"data_id": f"{table}-{i}", "table": table, "payload": {"i": i}}
                for i in range(10)]
        core.ingest.write("acme", rows).answer(timeout_s=10)
    core.ingest.write("globex", [{"data_id": "g", "payload": {"x": "y"}}]).answer(timeout_s=10)
    result = flush(core.flusher, reason="test")
    assert result["rows"] == 21 and result["snapshot"] == 1
    assert set(result["tables"]) == {"acme/events", "acme/users", "globex/records"}

    async def task_names() -> tuple[str, list[str]]:
        async with get_client() as client:
            [run] = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[uuid.UUID(result["run_id"])])))
            tasks = await client.read_task_runs()
            return run.name, [t.name for t in tasks if t.flow_run_id == run.id]

    run_name, tasks = asyncio.run(task_names())
    assert run_name == "ingest (test)"
    assert {t for t in tasks if t.startswith("flush ")} == {
        "flush acme/events", "flush acme/users", "flush globex/records"}
    assert flush(core.flusher, reason="again")["rows"] == 0
    core.close()
