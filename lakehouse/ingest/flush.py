"""The flush: WAL entries become Parquet files registered in the catalog, then the log is trimmed.

Order matters for exactly-once: write and fsync every file, then commit the files together with
the WAL watermark in one catalog transaction (its precondition: nobody moved the watermark since
we read it), and only then trim the log. A crash before the commit leaves files no snapshot
references (replaying writes the same names; cleanup removes strays); a crash after it leaves
entries the next start trims because the watermark says they are flushed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from lakehouse.catalog.lake import (
    AddFiles,
    Catalog,
    Commit,
    DataFile,
    EnsureTable,
    SetSchema,
    SetUserKeys,
    SetWatermark,
)
from lakehouse.errors import Conflict
from lakehouse.ingest.batch import RecordBatch
from lakehouse.ingest.flush_rows import (
    Refused,
    entries_table_sparing,
    file_schema,
    partitions,
)
from lakehouse.ingest.keys import TableRef
from lakehouse.ingest.service import REJECTS_TABLE, IngestService
from lakehouse.schema import STRING_TYPE, FieldType, merge_schemas, struct_of
from lakehouse.storage.location import StorageRoot, data_file_path
from lakehouse.storage.parquet_files import column_stats, write_file

log = logging.getLogger(__name__)

WAL_WRITER = "wal"
REJECTS_SCHEMA = struct_of(tuple((name, STRING_TYPE) for name in
                                 ("table", "error", "reason", "request_id", "raw")))


@dataclass(frozen=True)
class TableFlush:
    """One table's share of a flush: its entries and the schema to write them in."""

    ref: TableRef
    schema: FieldType
    partition_by: str | None
    entries: tuple[tuple[int, RecordBatch], ...]

    @property
    def rows(self) -> int:
        return sum(len(batch) for _, batch in self.entries)


@dataclass(frozen=True)
class FlushPlan:
    expected_watermark: int
    through: int  # every entry up to here is in this flush
    tables: tuple[TableFlush, ...]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


@dataclass(frozen=True)
class FlushResult:
    snapshot: int | None
    rows: int
    files: int
    bytes: int
    through: int
    tables: tuple[str, ...] = field(default=())
    # Per table ("tenant/table", rows, files, bytes): what each tenant may see of the flush.
    by_table: tuple[tuple[str, int, int, int], ...] = field(default=())


WritePartitions = Callable[[StorageRoot, Sequence[tuple[str, pa.Table]]], list[int]]


def write_locally(root: StorageRoot, files: Sequence[tuple[str, pa.Table]]) -> list[int]:
    return [write_file(root, path, rows) for path, rows in files]


class Flusher:
    def __init__(self, service: IngestService, catalog: Catalog, storage: StorageRoot) -> None:
        self.service = service
        self.catalog = catalog
        self.storage = storage

    def recover(self) -> int:
        """At start: trim what the catalog says is flushed (a crash between commit and trim)."""
        watermark = self.catalog.watermark(WAL_WRITER)
        if watermark:
            self.service.wal.trim(watermark)
            self.service.flushed_everywhere(watermark)
        return watermark

    def plan(self) -> FlushPlan | None:
        expected = self.catalog.watermark(WAL_WRITER)
        through = self.service.wal.last_seq()
        if through <= expected:
            return None
        grouped: dict[TableRef, list[tuple[int, RecordBatch]]] = {}
        last = expected
        for entry in self.service.wal.read(after=expected):
            if entry.last_seq > through:
                break
            batch = RecordBatch.decode(entry.payload)
            grouped.setdefault(TableRef(batch.tenant, batch.table), []).append(
                (entry.seq, batch))
            last = entry.last_seq
        tables = []
        for ref, entries in sorted(grouped.items(), key=lambda kv: (kv[0].tenant,
                                                                     kv[0].table)):
            tables.append(TableFlush(ref, self._schema(ref), self._partition_by(ref),
                                     tuple(entries)))
        return FlushPlan(expected, last, tuple(tables))

    def _schema(self, ref: TableRef) -> FieldType:
        """The schema to write the table's files in: the catalog's current one (exact types,
        columns a load added) with what the unflushed records added to it."""
        if ref.table == REJECTS_TABLE:
            return REJECTS_SCHEMA
        return merge_schemas(self._committed(ref), self.service.table_schema(ref)) or struct_of(
            ())

    def _committed(self, ref: TableRef) -> FieldType | None:
        table = self.catalog.table(ref.tenant, ref.table)
        return FieldType.from_json(table.schema) if table is not None else None

    def _partition_by(self, ref: TableRef) -> str | None:
        declared = self.service.declared(ref)
        return declared.partition_by if declared is not None else None

    def write_table(self, work: TableFlush,
                    write: WritePartitions = write_locally) -> tuple[DataFile, ...]:
        """Write one table's files (durable, not yet visible): one file per partition; and, for
        records the table's types can no longer take, files of the tenant's `_rejects` table
        (their paths say so; `commit` adds them there)."""
        rows, refused = entries_table_sparing(work.entries, work.schema)
        named = []
        for part in partitions(rows, work.partition_by):
            first, last = part.seq_range
            named.append((data_file_path(work.ref.tenant, work.ref.table, part.name, first,
                                         last), part))
        if refused and work.ref.table != REJECTS_TABLE:
            log.error("records no longer fit their table's types; kept in _rejects",
                      extra={"table": f"{work.ref.tenant}/{work.ref.table}",
                             "records": len(refused), "first": refused[0].reason})
            for part in partitions(refused_rows(work.ref.table, refused)):
                first, last = part.seq_range
                named.append((data_file_path(work.ref.tenant, REJECTS_TABLE, part.name, first,
                                             last), part))
        sizes = write(self.storage, [(path, part.rows) for path, part in named])
        return tuple(DataFile(path, part.name, part.rows.num_rows, size, *part.seq_range,
                              stats=column_stats(part.rows))
                     for (path, part), size in zip(named, sizes, strict=True))

    def commit(self, plan: FlushPlan, files: dict[TableRef, tuple[DataFile, ...]]) -> int:
        """Every table's files and the watermark in one snapshot. Conflict (retryable: the
        flow plans again) if a table's types changed since its files were written — a load
        committed meanwhile — as files in the old types would not read with the new ones."""
        changes: list[EnsureTable | SetSchema | SetUserKeys | AddFiles | SetWatermark] = []
        committed: dict[TableRef, FieldType] = {}
        for work in plan.tables:
            current = self.catalog.table(work.ref.tenant, work.ref.table)
            merged = work.schema if current is None else self._fitting(work, current.schema)
            committed[work.ref] = merged
            schema = merged.to_json()
            declared = self.service.declared(work.ref)
            changes.append(EnsureTable(work.ref.tenant, work.ref.table, schema,
                                       work.partition_by,
                                       declared.sort_key if declared is not None else ()))
            if current is not None and current.schema != schema:
                changes.append(SetSchema(work.ref.tenant, work.ref.table, schema,
                                         expected=current.schema))
            if current is not None and not current.user_keys:  # a loaded table gets records,
                changes.append(SetUserKeys(work.ref.tenant, work.ref.table))  # keys with them
            own, spilled = _split_rejects(work.ref, files[work.ref])
            changes.append(AddFiles(work.ref.tenant, work.ref.table, own))
            if spilled:  # records refused by this flush (see write_table)
                changes.append(EnsureTable(work.ref.tenant, REJECTS_TABLE,
                                           REJECTS_SCHEMA.to_json()))
                changes.append(AddFiles(work.ref.tenant, REJECTS_TABLE, spilled))
        changes.append(SetWatermark(WAL_WRITER, plan.through, plan.expected_watermark))
        summary = {"rows": plan.rows, "files": sum(len(f) for f in files.values()),
                   "through_seq": plan.through,
                   "tables": [f"{t.ref.tenant}/{t.ref.table}" for t in plan.tables]}
        snapshot = self.catalog.commit(Commit("flush", tuple(changes), summary))
        for ref, schema_now in committed.items():  # what the catalog holds now, loads' included
            if ref.table != REJECTS_TABLE:
                self.service.adopt_schema(ref, schema_now)
        return snapshot

    def _fitting(self, work: TableFlush, current: Any) -> FieldType:
        """The table's schema after this flush; Conflict if the files' columns are not in the
        table's current types (they would make the table unreadable)."""
        committed = FieldType.from_json(current)
        merged = merge_schemas(committed, work.schema)
        assert merged is not None  # noqa: S101 - both are schemas
        changed = [name for name, kind in work.schema.fields if merged.field(name) != kind]
        if changed:
            raise Conflict(
                f"the types of {work.ref.table} changed while flushing (a load committed); "
                "the flush plans again with the new types",
                code="schema_changed",
                details={"table": work.ref.table, "columns": changed[:20]})
        return merged  # columns a load added, which the files lack, read as nulls

    def trim_log(self, plan: FlushPlan) -> None:
        """After the commit: the flushed entries leave the log and the unflushed counts."""
        self.service.wal.trim(plan.through)
        for work in plan.tables:
            self.service.flushed(work.ref, plan.through)


def refused_rows(table: str, refused: Sequence[Refused]) -> pa.Table:
    """Refused records as rows of the `_rejects` table: the record raw, the reason."""
    records = [r.record for r in refused]
    payloads = [{"table": table, "error": "type_changed", "reason": r.reason,
                 "request_id": None,
                 "raw": orjson.dumps({"data_id": r.record.data_id, "table": table,
                                      "payload": r.record.payload}, default=str).decode()}
                for r in refused]
    return pa.Table.from_arrays(
        [pa.array([r.data_id for r in records], pa.string()),
         pa.array([r.seq for r in records], pa.int64()),
         pa.array([r.timestamp_us for r in records], pa.int64()).cast(
             pa.timestamp("us", tz="UTC")),
         pa.array([False] * len(refused)),
         *(pa.array([p[name] for p in payloads], pa.string())
           for name, _ in REJECTS_SCHEMA.fields)],
        schema=file_schema(REJECTS_SCHEMA))


def _split_rejects(ref: TableRef, files: Sequence[DataFile],
                   ) -> tuple[tuple[DataFile, ...], tuple[DataFile, ...]]:
    if ref.table == REJECTS_TABLE:
        return tuple(files), ()
    folder = f"{ref.tenant}/{REJECTS_TABLE}/"
    return (tuple(f for f in files if not f.path.startswith(folder)),
            tuple(f for f in files if f.path.startswith(folder)))


def summarize(plan: FlushPlan, files: dict[TableRef, tuple[DataFile, ...]],
              snapshot: int) -> FlushResult:
    written = [f for table_files in files.values() for f in table_files]
    by_table = []
    for work in plan.tables:
        own = files.get(work.ref, ())
        by_table.append((f"{work.ref.tenant}/{work.ref.table}", work.rows, len(own),
                         sum(f.byte_size for f in own)))
    return FlushResult(snapshot, plan.rows, len(written), sum(f.byte_size for f in written),
                       plan.through, tuple(t[0] for t in by_table), tuple(by_table))
