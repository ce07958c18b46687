"""The ingest flow: unflushed WAL records become Parquet files and a catalog snapshot.

Its steps (tasks/flush.py) are declared once as a Job; the run shell (flows/runs.py) runs them
as Prefect tasks, one per table, or in a plain loop when Prefect cannot be reached.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from prefect import flow

from flows.run_results import SHARED_TAG
from flows.runs import Job, StepNames, filed, run, run_steps
from lakehouse.ingest.flush import Flusher, WritePartitions, write_locally
from tasks.flush import commit_flush, plan_flush, write_table


def flush_job(flusher: Flusher, write: WritePartitions = write_locally) -> Job[Any, Any, Any]:
    return Job(
        kind="ingest", names=StepNames("plan-flush", "flush-table", "commit-flush"),
        plan=partial(plan_flush, flusher), parts=lambda plan: plan.tables,
        run_part=partial(write_table, flusher, write),
        finish=partial(commit_flush, flusher),
        nothing=lambda: {"rows": 0, "files": 0, "snapshot": None},
        part_label=lambda work: f"flush {work.ref.tenant}/{work.ref.table}",
        counted="tables written", retries=2)


@flow(name="ingest", flow_run_name="ingest ({reason})", log_prints=False,
      description="Flush the write-ahead log into Parquet files registered in the catalog.")
def ingest(job: str, reason: str = "requested") -> dict[str, Any]:
    found = filed(job)
    if found is None:
        raise LookupError(f"no flush {job!r} in this process: the log's owner runs it")
    return run_steps(found)


def flush(flusher: Flusher, write: WritePartitions = write_locally,
          reason: str = "requested") -> dict[str, Any]:
    """Flush now as a run of the ingest flow (the log is every tenant's: so is the run)."""
    return run(flush_job(flusher, write), ingest, name=f"ingest ({reason})",
               parameters={"reason": reason}, tags=[SHARED_TAG])


def flush_here(flusher: Flusher, write: WritePartitions = write_locally) -> dict[str, Any]:
    """The same steps in a plain loop, with no Prefect run (as when Prefect is unreachable):
    for tools and tests that flush on their own."""
    return run_steps(flush_job(flusher, write))
