"""`lakehouse compact`: one compaction run in this process, with a progress bar.

The same plan and rewrite as the `compaction` deployment, without Prefect: for an operator at a
terminal, or a machine whose Prefect server is down. Rewrites go to the Dask cluster of the
settings when COMPACTION_ON_DASK is true and one answers.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import err, fail, follow, load_settings
from lakehouse.errors import LakehouseError

POLL_S = 0.2


def compact(
    *,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t",
                                               help="Only this tenant's tables.")] = None,
    table: Annotated[str | None, typer.Option("--table", help="Only this table.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan, write nothing.")
                       ] = False,
) -> None:
    """Merge small data files into large ones (what the `compaction` deployment runs)."""
    from flows.compaction import compaction_job
    from flows.runs import RunWatch, run_steps
    from tasks.maintenance import context_from

    settings = load_settings()
    job = compaction_job(context_from(settings), tenant, table, dry_run, on_demand=True)
    mine = RunWatch("local-cli")  # the run shell's plain loop: the deployment's steps, here

    def work() -> None:
        try:
            mine.finish(run_steps(job, mine))
        except BaseException as exc:  # raised by follow() below
            mine.finish(None, exc)

    try:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(work)
            summary = follow(mine, "compaction", "groups")
    except LakehouseError as exc:
        fail(exc.message, exc.details)
    plan = summary["plan"]
    err.print(f"{len(plan['groups'])} groups to merge: {plan['files']} files, "
              f"{plan['bytes'] / 2**20:.1f} MiB; {len(plan['skipped'])} partitions skipped")
    if dry_run:
        _print_plan(plan["groups"])
        return
    _print_results(summary["details"])


def _print_plan(groups: list[dict[str, object]]) -> None:
    table = Table("tenant", "table", "partition", "files", "bytes", "rows")
    for group in groups:
        table.add_row(*(str(group[k]) for k in ("tenant", "table", "partition", "files",
                                                "bytes", "rows")))
    Console().print(table)


def _print_results(rows: list[dict[str, object]]) -> None:
    table = Table("table", "partition", "files", "bytes", "snapshot")
    for row in rows:
        table.add_row(str(row["table"]), str(row["partition"]),
                      f"{row['files_before']} → {row['files_after']}",
                      f"{row['bytes_before']} → {row['bytes_after']}", str(row["snapshot"]))
    Console().print(table)
