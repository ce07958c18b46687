"""The steps of a load: plan, one part (a text file, or a run of a Parquet file's row groups)
converted and written, commit. flows/load.py declares them as the load job.

A part is converted and written on a Dask worker when the load has a scheduler address: the
worker gets the LoadSpec and the LoadPart (URIs, paths, names and types, never a live handle)
and returns the DataFiles it wrote. With no scheduler to be had the part runs here instead.
"""

from __future__ import annotations

from typing import Any

from lakehouse.cluster import Cluster
from lakehouse.errors import LakehouseError
from lakehouse.load.convert import LoadPart, LoadSpec, PartResult
from lakehouse.load.loader import Loader, LoadPlan, LoadRequest, load_part_here
from tasks.logs import step_log


def plan_load(loader: Loader, request: LoadRequest) -> LoadPlan:
    plan = loader.plan(request)
    step_log().info("loading %d source files into %s/%s in %d parts", plan.source_files,
                    request.tenant, request.table, len(plan.parts))
    return plan


def retryable(exc: BaseException) -> bool:
    """A bad source stays bad; only what may pass (I/O, a lost worker) is tried again."""
    return exc.retryable if isinstance(exc, LakehouseError) else True


def load_part_on(dask_address: str, spec: LoadSpec, part: LoadPart) -> PartResult:
    """Convert and write one part, on the cluster or here; a retry writes the same file names
    again.

    Workers get only what they can read: they all see the storage root (they were probed), but
    a source file on this host's disk is theirs to read only when the root is a local folder
    too (workers verified on it share this host's files); with shared storage, the parts of a
    local source are converted here."""
    local_source = part.file.fs_uri.startswith("file:")
    shared_storage = not spec.storage_uri.startswith("file:")
    cluster = Cluster("" if local_source and shared_storage else dask_address, spec.storage_uri)
    return cluster.run(load_part_here, spec, part, name=f"load-{spec.load_id}-{part.index:05d}")


def commit_load(loader: Loader, plan: LoadPlan, results: list[PartResult]) -> dict[str, Any]:
    result = loader.commit(plan, results)
    step_log().info("committed snapshot %d: %d rows in %d files into %s/%s", result.snapshot,
                    result.rows, result.files, result.tenant, result.table)
    return {"source": plan.request.source, **result.to_dict()}
