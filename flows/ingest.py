"""The ingest flow: unflushed WAL records become Parquet files and a catalog snapshot."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from lakehouse.ingest.flush import summarize
from tasks.flush import commit_flush, flush_table, plan_flush


@flow(name="ingest", flow_run_name="ingest ({reason})", log_prints=False,
      description="Flush the write-ahead log into Parquet files registered in the catalog.")
def ingest(flusher: str = "default", reason: str = "requested") -> dict[str, Any]:
    plan = plan_flush(flusher)
    if plan is None:
        return {"run_id": str(flow_run.id), "rows": 0, "files": 0, "snapshot": None}
    # One coarse task per table; they run side by side and fan out to Dask inside.
    futures = {work.ref: flush_table.submit(flusher, work, work.ref.tenant, work.ref.table)
               for work in plan.tables}
    files = {ref: future.result() for ref, future in futures.items()}
    snapshot = commit_flush(flusher, plan, files)
    result = summarize(plan, files, snapshot)
    return {"run_id": str(flow_run.id), "snapshot": result.snapshot, "rows": result.rows,
            "files": result.files, "bytes": result.bytes, "through_seq": result.through,
            "tables": list(result.tables)}
