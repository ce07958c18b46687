"""The backfill of a table marked for the serving store: its current snapshot's files copied
into its ClickHouse mirror, one task per file (the Prefect UI counts them: "3/8 files copied"),
then the mirror's watermark moved. After it, the control plane's keeper
(lakehouse/serving/keeper.py) copies what each flush, load and compaction adds.

It runs in the process that holds the serving store (the control plane), as the load does;
when Prefect cannot be reached it runs here all the same (the run shell's policy): a table
marked for serving must reach its mirror. A crash mid-way leaves the watermark where it was;
the keeper, or marking the table again, copies the files again, each replacing its earlier
attempt (lakehouse/serving/mirror.py `copy_file`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.run_results import tenant_tag
from flows.runs import Job, RunWatch, StepNames, filed, run_steps, start
from lakehouse.catalog.lake import Catalog, DataFile
from lakehouse.catalog.table_options import TableOptionsStore
from lakehouse.serving.keeper import SERVED_BY, epoch_of, next_epoch, table_lock
from lakehouse.serving.mirror import advance, copy_file, lacking, renew_outdated
from lakehouse.serving.store import ServingStore
from lakehouse.storage.location import StorageRoot

COPY_TASKS = 2  # files copied at once: the inserts queue on the store's one engine anyway


@dataclass(frozen=True)
class MirrorContext:
    catalog: Catalog
    storage: StorageRoot
    options: TableOptionsStore
    store: ServingStore


@dataclass(frozen=True)
class BackfillPlan:
    files: list[DataFile]
    epoch: int  # the mirror's epoch when planned: an unmarking since makes the plan void


def _copy(context: MirrorContext, tenant: str, table: str, epoch: int,
          data_file: DataFile) -> int | None:
    """One file copied while the mirror is the one planned for; None: it is not any more (the
    table was unmarked since), so nothing is copied into a mirror that was dropped."""
    with table_lock(tenant, table):
        if epoch_of(tenant, table) != epoch or (
                context.options.get(tenant, table).serving != SERVED_BY):
            return None
        return copy_file(context.catalog, context.storage, context.store, tenant, table,
                         data_file=data_file)


def _finish(context: MirrorContext, tenant: str, table: str, plan: BackfillPlan,
            rows: list[int | None]) -> dict[str, Any]:
    with table_lock(tenant, table):
        options = context.options.get(tenant, table)
        if epoch_of(tenant, table) != plan.epoch or None in rows:
            # Unmarked (and perhaps marked again) while it ran: its copies went with the old
            # mirror, so the watermark stays; a new backfill or the keeper copies afresh.
            return {"tenant": tenant, "table": table, "files": 0, "rows": 0,
                    "superseded": True}
        if options.serving != SERVED_BY:  # pragma: no cover - unmarking moves the epoch
            return {"tenant": tenant, "table": table, "files": 0, "rows": 0,
                    "unmarked": True}
        reached = advance(context.catalog, tenant, table, plan.files)
        if options.retention_s is not None:
            context.store.set_retention(tenant, table, options.retention_s)
    return {"tenant": tenant, "table": table, "files": len(plan.files),
            "rows": sum(r or 0 for r in rows), "snapshot": reached}


def backfill_job(context: MirrorContext, tenant: str, table: str) -> Job[Any, Any, Any]:
    where = f"{tenant}/{table}"

    def plan() -> BackfillPlan | None:
        with table_lock(tenant, table):
            if renew_outdated(context.catalog, context.store, tenant, table):
                next_epoch(tenant, table)
            epoch = epoch_of(tenant, table)
            files = lacking(context.catalog, tenant, table)
        return BackfillPlan(files, epoch) if files else None

    return Job(
        kind="mirror",
        names=StepNames("plan-mirror", "copy-file", "advance-mirror",
                        plan_run=f"plan mirror of {where}",
                        finish_run=f"advance mirror of {where}"),
        plan=plan, parts=lambda planned: [(planned.epoch, f) for f in planned.files],
        run_part=lambda part: _copy(context, tenant, table, *part),
        finish=lambda planned, rows: _finish(context, tenant, table, planned, rows),
        nothing=lambda: {"tenant": tenant, "table": table, "files": 0, "rows": 0},
        part_label=lambda part: f"copy {part[1].path.rpartition('/')[2]}",
        counted="files copied", parallel=COPY_TASKS, retries=2)


def run_name(tenant: str, table: str) -> str:
    return f"mirror {tenant}/{table} into ClickHouse"


# (The ignore: Prefect's annotations cannot infer a fresh runner's future type.)
@flow(name="mirror", flow_run_name="mirror {tenant}/{table} into ClickHouse",
      task_runner=ThreadPoolTaskRunner(max_workers=COPY_TASKS),  # type: ignore[arg-type]
      description="Copy a served table's files into its ClickHouse mirror.")
def mirror(job: str, tenant: str, table: str) -> dict[str, Any]:
    found = filed(job)
    if found is None:
        raise LookupError(f"no mirror run {job!r} in this process: the process holding the "
                          "serving store (the control plane) runs it")
    return run_steps(found)


def start_backfill(context: MirrorContext, tenant: str, table: str) -> RunWatch:
    """Copy the table's current snapshot into its mirror, in a thread of this process."""
    return start(backfill_job(context, tenant, table), mirror, name=run_name(tenant, table),
                 parameters={"tenant": tenant, "table": table}, tags=[tenant_tag(tenant)])
