"""A bulk load, planned, run part by part and committed as ONE snapshot.

`plan` does everything that can refuse a load before a byte is written: names, the source and
the load roots, each file's schema (Parquet footers, the first block of text files), and the
schema check against the table in the catalog and its declaration. Parts then write files that
no snapshot references yet; `commit` adds them all in one snapshot (kind "load"). A failure
anywhere before the commit leaves no snapshot at all; the files already written are left for
the cleanup of unreferenced files (the catalog's grace-period cleanup), never half-visible.

The Prefect flow (flows/load.py) runs these same steps as tasks; `run` runs them here, in
threads, for callers without Prefect.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.auth.identity import check_tenant_name
from lakehouse.catalog.declarations import TableDeclarations
from lakehouse.catalog.lake import (
    AddFiles,
    Catalog,
    Commit,
    EnsureTable,
    SetSchema,
    SetUserKeys,
    TableInfo,
)
from lakehouse.errors import Conflict, InvalidInput
from lakehouse.load.columns import DATA_ID, parse_types, table_columns
from lakehouse.load.convert import (
    CHUNK_ROWS,
    LoadPart,
    LoadSpec,
    PartResult,
    load_part,
    source_types,
)
from lakehouse.load.reading import FileLayout, inspect
from lakehouse.load.sources import LoadRoot, SourceFile, resolve, tenant_roots
from lakehouse.schema import FieldType, merge_schemas
from lakehouse.schema.names import check_table_name
from lakehouse.schema.types import from_arrow, json_shadow, schema_from_arrow
from lakehouse.storage.location import StorageRoot

log = logging.getLogger(__name__)

PART_ROWS = CHUNK_ROWS  # a Parquet part is a run of row groups up to this many rows …
PART_BYTES = 256 * 1024 * 1024  # … and this many uncompressed bytes
INSPECT_THREADS = 8  # footers read at once (an S3 glob of many files waits on the network)


@dataclass(frozen=True)
class LoadRequest:
    tenant: str
    table: str
    source: str
    format: str | None = None
    data_id_column: str | None = None
    timestamp_column: str | None = None


@dataclass(frozen=True)
class LoadPlan:
    request: LoadRequest
    spec: LoadSpec
    parts: tuple[LoadPart, ...]
    source_files: int
    schema: Any  # the table's catalog schema after the load (FieldType JSON)
    base_schema: Any  # the table's catalog schema when planned; None when it had no table
    sort_key: tuple[str, ...] = ()
    live_schema: FieldType | None = None  # the write path's schema of the table when planned


@dataclass(frozen=True)
class LoadResult:
    snapshot: int
    tenant: str
    table: str
    rows: int
    files: int
    bytes: int
    parts: int
    source_files: int
    partitions: int

    def to_dict(self) -> dict[str, Any]:
        return {"snapshot": self.snapshot, "tenant": self.tenant, "table": self.table,
                "rows": self.rows, "files": self.files, "bytes": self.bytes,
                "parts": self.parts, "source_files": self.source_files,
                "partitions": self.partitions}


Progress = Callable[[int, int], None]  # (parts done, parts in all)


class LiveSchema(Protocol):
    """The write path's view of a table's schema, for loads run where records are taken."""

    def schema(self, tenant: str, table: str) -> FieldType | None: ...

    def guard(self, tenant: str, table: str, planned: FieldType | None,
              ) -> AbstractContextManager[None]:
        """Holds records to the table back while the load commits; Conflict if records changed
        the table's schema since `planned` (the load's files might not fit them). On leaving,
        the write path takes the catalog's new schema."""


class Loader:
    def __init__(self, catalog: Catalog, storage: StorageRoot, roots: Sequence[LoadRoot],
                 declarations: TableDeclarations | None = None,
                 clock: Callable[[], float] = time.time, *,
                 live_schema: LiveSchema | None = None) -> None:
        self.catalog = catalog
        self.storage = storage
        self.roots = tuple(roots)
        self.declarations = declarations
        self._clock = clock
        # Where this process also takes records: the schema unflushed records gave the table,
        # so a load cannot give a column a type they do not fit (see LiveSchema).
        self.live_schema = live_schema

    def plan(self, request: LoadRequest) -> LoadPlan:
        """The load's parts and schema; InvalidInput / Forbidden for anything wrong with it."""
        check_tenant_name(request.tenant)
        check_table_name(request.table)
        files = resolve(request.source, tenant_roots(self.roots, request.tenant),
                        request.format)
        layouts = _inspect_all(files)
        data_id_column = request.data_id_column
        if data_id_column is None and any(DATA_ID in lay.schema.names for lay in layouts):
            data_id_column = DATA_ID  # a column of that name can only be the record key
        for option in (data_id_column, request.timestamp_column):
            if option is not None:
                _check_option(option, files, layouts)
        existing = self.catalog.table(request.tenant, request.table)
        declared = (self.declarations.get(request.tenant, request.table)
                    if self.declarations is not None else None)
        columns = table_columns(files, layouts, self._table_columns(
            request.tenant, request.table, existing), declared, data_id_column)
        partition_by = declared.partition_by if declared is not None else (
            existing.partition_by if existing is not None else None)
        spec = LoadSpec(request.tenant, request.table, uuid.uuid4().hex[:12], self.storage.uri,
                        columns, partition_by, data_id_column, request.timestamp_column,
                        int(self._clock() * 1_000_000), declared)
        sort_key = declared.sort_key if declared is not None else ()
        return LoadPlan(request, spec, _parts(files, layouts, columns), len(files),
                        schema_from_arrow(columns).to_json(),
                        existing.schema if existing is not None else None, sort_key,
                        self._live(request.tenant, request.table))

    def _live(self, tenant: str, table: str) -> FieldType | None:
        return self.live_schema.schema(tenant, table) if self.live_schema is not None else None

    def _table_columns(self, tenant: str, name: str, table: TableInfo | None,
                       ) -> dict[str, pa.DataType]:
        """The table's user columns in exact types: the catalog's schema with what unflushed
        records added, refined by the newest file's own types where the catalog was written
        before it kept exact types (it stored decimal as float64; the file knows better)."""
        schema = FieldType.from_json(table.schema) if table is not None else None
        schema = merge_schemas(schema, self._live(tenant, name))
        if schema is None:
            return {}
        columns = {name: kind.to_arrow() for name, kind in schema.fields}
        if table is None:
            return columns
        files = self.catalog.files(table.tenant, table.name)
        if not files:
            return columns
        newest = max(files, key=lambda f: f.file_id or 0)
        try:
            footer = pq.read_schema(self.storage.full(newest.path),
                                    filesystem=self.storage.fs)
        except (OSError, pa.ArrowException) as exc:
            log.warning("cannot read the newest file's schema; using the catalog's types",
                        extra={"path": newest.path, "error": str(exc)[:200]})
            return columns
        for field in footer:
            known = columns.get(field.name)
            if known is None:
                continue
            # Only where the catalog holds the file type's JSON shadow (float64 for its
            # decimal): a catalog with exact types is right already, a type it has since
            # widened wins, and a file of an older, narrower decimal is no guide.
            exact = from_arrow(field.type)
            if exact.exact and from_arrow(known) == json_shadow(exact):
                columns[field.name] = field.type
        return columns

    def commit(self, plan: LoadPlan, results: Sequence[PartResult]) -> LoadResult:
        """Every file of the load in one snapshot; Conflict (nothing committed) if the table's
        schema changed since the plan, as its SetSchema would undo that change."""
        request = plan.request
        current = self.catalog.table(request.tenant, request.table)
        if (current.schema if current is not None else None) != plan.base_schema:
            raise Conflict("the table changed while loading; load again",
                           code="table_changed", details={"table": request.table})
        files = tuple(f for result in sorted(results, key=lambda r: r.index)
                      for f in result.files)
        # The files' data_id column holds the user's keys only when the source had a data_id
        # column; otherwise a load made them up ("{stem}:{row}", or a copy of the key column
        # named by data_id_column, shown under its own name), and `SELECT *` hides them.
        user_keys = plan.spec.data_id_column == DATA_ID
        changes: list[EnsureTable | SetSchema | SetUserKeys | AddFiles] = [EnsureTable(
            request.tenant, request.table, plan.schema, plan.spec.partition_by, plan.sort_key,
            user_keys=user_keys)]
        if current is not None and current.schema != plan.schema:
            changes.append(SetSchema(request.tenant, request.table, plan.schema,
                                     expected=plan.base_schema))
        if current is not None and user_keys and not current.user_keys:
            changes.append(SetUserKeys(request.tenant, request.table))
        if files:
            changes.append(AddFiles(request.tenant, request.table, files))
        rows = sum(r.rows for r in results)
        size = sum(f.byte_size for f in files)
        summary = {"table": f"{request.tenant}/{request.table}", "rows": rows,
                   "files": len(files), "bytes": size, "source": request.source[:300],
                   "source_files": plan.source_files, "load_id": plan.spec.load_id,
                   "column_types": dict(source_types(plan.spec.columns))}
        guard = self.live_schema.guard(request.tenant, request.table, plan.live_schema) if (
            self.live_schema is not None) else contextlib.nullcontext()
        with guard:
            snapshot = self.catalog.commit(Commit("load", tuple(changes), summary))
        log.info("load committed", extra={"snapshot": snapshot, **{
            k: v for k, v in summary.items() if k != "column_types"}})
        return LoadResult(snapshot, request.tenant, request.table, rows, len(files), size,
                          len(plan.parts), plan.source_files,
                          len({f.partition for f in files}))

    def run(self, request: LoadRequest, progress: Progress | None = None,
            workers: int | None = None) -> LoadResult:
        """Plan, write every part (in threads: pyarrow releases the GIL) and commit."""
        plan = self.plan(request)
        return self.commit(plan, run_parts(plan, workers, progress))


# Parts converted in this process at once: each holds a chunk in memory, and pyarrow already
# spreads one part's decoding over the cores.
_local_slots = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def load_part_here(spec: LoadSpec, part: LoadPart) -> PartResult:
    """One part, with at most one part per core at once in this process."""
    with _local_slots:
        return load_part(spec, part)


def run_parts(plan: LoadPlan, workers: int | None = None,
              progress: Progress | None = None) -> list[PartResult]:
    """Every part, here; on the first failure the parts not yet started are dropped."""
    total = len(plan.parts)
    if progress is not None:
        progress(0, total)
    results: list[PartResult] = []
    with concurrent.futures.ThreadPoolExecutor(
            max_workers=workers or os.cpu_count() or 1, thread_name_prefix="load") as pool:
        futures = [pool.submit(load_part, plan.spec, part) for part in plan.parts]
        try:
            for future in concurrent.futures.as_completed(futures):
                results.append(future.result())
                if progress is not None:
                    progress(len(results), total)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


def _inspect_all(files: Sequence[SourceFile]) -> list[FileLayout]:
    if len(files) == 1:
        return [inspect(files[0])]
    with concurrent.futures.ThreadPoolExecutor(max_workers=INSPECT_THREADS) as pool:
        return list(pool.map(inspect, files))


def _check_option(column: str, files: Sequence[SourceFile], layouts: Sequence[FileLayout],
                  ) -> None:
    for file, layout in zip(files, layouts, strict=True):
        if column not in layout.schema.names:
            raise InvalidInput(f"{file.name} has no column {column}", code="invalid_option",
                               details={"column": column[:100], "file": file.name})


def _parts(files: Sequence[SourceFile], layouts: Sequence[FileLayout], columns: pa.Schema,
           ) -> tuple[LoadPart, ...]:
    """A text file is one part; a Parquet file, runs of row groups (PART_ROWS, PART_BYTES)."""
    prefixes = _id_prefixes(files)
    parts: list[LoadPart] = []
    for file, layout, prefix in zip(files, layouts, prefixes, strict=True):
        if file.format != "parquet":
            parts.append(LoadPart(len(parts), file, None, 0, prefix,
                                  parse_types(file, layout.schema, columns)))
            continue
        run: list[int] = []
        first = rows = size = 0
        for group, (group_rows, group_bytes) in enumerate(zip(layout.row_groups,
                                                              layout.group_bytes, strict=True)):
            if run and (rows + group_rows > PART_ROWS or size + group_bytes > PART_BYTES):
                parts.append(LoadPart(len(parts), file, tuple(run), first, prefix))
                first, run, rows, size = first + rows, [], 0, 0
            run.append(group)
            rows += group_rows
            size += group_bytes
        if run:
            parts.append(LoadPart(len(parts), file, tuple(run), first, prefix))
    return tuple(parts)


def _id_prefixes(files: Sequence[SourceFile]) -> list[str]:
    """Each file's stem; where stems repeat (a/x.csv, b/x.csv), the path below the files'
    common folder, so generated data_ids stay unique within the load."""
    stems = [f.stem for f in files]
    if len(set(stems)) == len(stems):
        return stems
    common = os.path.commonpath([PurePosixPath(f.path).parent.as_posix() for f in files])
    return [f"{PurePosixPath(f.path).parent.as_posix()[len(common):].strip('/')}/{f.stem}"
            .lstrip("/") for f in files]
