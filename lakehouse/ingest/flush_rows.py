"""From WAL entries to the columns of a data file (pure Arrow computation, no I/O).

A data file has the system columns `data_id`, `_seq`, `_timestamp` (UTC, microseconds) and
`_upsert`, then one column per top-level field of the table's schema. Entries written before the
schema grew are conformed to it: fields they lack become nulls, int64 widens to float64. Values
of exact columns (decimals, timestamps, dates, times) are converted from the JSON the record
carried by `lakehouse.schema.coerce`, the function that checked them before they were
acknowledged; InvalidInput if one does not convert (the flush then refuses the table's file).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.errors import InvalidInput
from lakehouse.ingest.batch import RecordBatch, StoredRecord
from lakehouse.schema import FieldType
from lakehouse.schema.coerce import coerce_payload
from lakehouse.schema.conform import conform

DAY_US = 86_400_000_000
SYSTEM_FIELDS = [pa.field("data_id", pa.string(), nullable=False),
                 pa.field("_seq", pa.int64(), nullable=False),
                 pa.field("_timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
                 pa.field("_upsert", pa.bool_(), nullable=False)]


def file_schema(schema: FieldType) -> pa.Schema:
    return pa.schema([*SYSTEM_FIELDS, *(pa.field(name, t.to_arrow()) for name, t in
                                        schema.fields)])


def entries_table(entries: Sequence[tuple[int, RecordBatch]], schema: FieldType) -> pa.Table:
    """All records of these entries (first sequence number, batch), in the table's schema.

    Consecutive entries stored as Arrow with the same columns are taken together, one
    concatenation and one conversion for the lot: a flush has thousands of small entries, and
    a dozen Arrow calls each from Python, holding the interpreter lock, would keep every
    request of the process waiting for seconds (docs/scaling.md, "Overload")."""
    target = schema.to_arrow()
    layout = file_schema(schema)
    parts: list[pa.Table] = []
    together: list[tuple[int, RecordBatch]] = []
    columns: pa.Schema | None = None  # the Arrow columns of the entries taken together
    for first_seq, batch in entries:
        if batch.arrow is not None and not (
                schema.exact and batch.arrow.schema.field("payload").type != target):
            if together and batch.arrow.schema != columns:
                parts.append(_arrow_entries(together, target, layout))
                together = []
            together.append((first_seq, batch))
            columns = batch.arrow.schema
            continue
        if together:
            parts.append(_arrow_entries(together, target, layout))
            together = []
        parts.append(_entry(first_seq, batch, schema, target, layout))
    if together:
        parts.append(_arrow_entries(together, target, layout))
    if not parts:
        return layout.empty_table()
    return pa.concat_tables(parts)


def _arrow_entries(entries: Sequence[tuple[int, RecordBatch]], target: pa.DataType,
                   layout: pa.Schema) -> pa.Table:
    """Entries stored as Arrow with the same columns, whose payloads convert as they are."""
    joined = pa.concat_tables([batch.arrow for _, batch in entries if batch.arrow is not None])
    counts = np.fromiter((len(batch) for _, batch in entries), np.int64, len(entries))
    firsts = np.fromiter((first for first, _ in entries), np.int64, len(entries))
    # Row j of entry i has sequence number firsts[i] + j.
    seqs = (np.arange(int(counts.sum()), dtype=np.int64)
            + np.repeat(firsts - (np.cumsum(counts) - counts), counts))
    system = (_single(joined.column("data_id")), pa.array(seqs),
              _single(joined.column("timestamp_us")), _single(joined.column("upsert")))
    return _file_rows(layout, system, conform(_single(joined.column("payload")), target))


def _entry(first_seq: int, batch: RecordBatch, schema: FieldType, target: pa.DataType,
           layout: pa.Schema) -> pa.Table:
    """One entry: JSON rows, or Arrow stored in JSON's types before the table had exact
    columns (converted value by value, as a record written now would be)."""
    if batch.arrow is not None:
        data_ids = _single(batch.arrow.column("data_id"))
        timestamps = _single(batch.arrow.column("timestamp_us"))
        upserts = _single(batch.arrow.column("upsert"))
        stored = _single(batch.arrow.column("payload"))
        payloads = pa.array([None if p is None else coerce_payload(p, schema)
                             for p in stored.to_pylist()], type=target)
    else:
        data_ids = pa.array([r[0] for r in batch.rows], pa.string())
        timestamps = pa.array([r[1] for r in batch.rows], pa.int64())
        upserts = pa.array([r[3] for r in batch.rows], pa.bool_())
        payloads = (pa.array([coerce_payload(r[2], schema) for r in batch.rows], type=target)
                    if schema.exact else pa.array([r[2] for r in batch.rows], type=target))
    seqs = pa.array(np.arange(first_seq, first_seq + len(batch), dtype=np.int64))
    return _file_rows(layout, (data_ids, seqs, timestamps, upserts), payloads)


def _file_rows(layout: pa.Schema, system: Sequence[pa.Array], payloads: pa.Array) -> pa.Table:
    """A data file's rows: `system` is data_id, _seq, the timestamp (µs) and _upsert."""
    data_ids, seqs, timestamps, upserts = system
    columns = [data_ids, seqs, timestamps.cast(pa.timestamp("us", tz="UTC")), upserts]
    columns += [payloads.field(i) for i in range(payloads.type.num_fields)]
    return pa.Table.from_arrays(columns, schema=layout)


@dataclass(frozen=True, slots=True)
class Refused:
    """A record whose values the table's types can no longer take (see `entries_table_sparing`)."""

    record: StoredRecord
    reason: str


CONVERSION_ERRORS = (InvalidInput, pa.ArrowInvalid, pa.ArrowTypeError,
                     pa.ArrowNotImplementedError, OverflowError, TypeError, ValueError)


def entries_table_sparing(entries: Sequence[tuple[int, RecordBatch]], schema: FieldType,
                          ) -> tuple[pa.Table, list[Refused]]:
    """`entries_table`, except that a record whose values do not convert is left out and
    returned, instead of failing them all.

    Every record was checked against the table's types before it was acknowledged, so this
    only happens when those types changed in between in a way the write path could not see
    (a load run by another process retyping a column that unflushed records hold). One such
    record must not stop every later flush of every tenant: the flush keeps it in the
    tenant's `_rejects` table, raw, with the reason."""
    try:
        return entries_table(entries, schema), []
    except CONVERSION_ERRORS:
        pass
    parts: list[pa.Table] = []
    refused: list[Refused] = []
    for first_seq, batch in entries:
        try:
            parts.append(entries_table([(first_seq, batch)], schema))
            continue
        except CONVERSION_ERRORS:
            pass
        for record in batch.records(first_seq):
            one = RecordBatch(batch.tenant, batch.table, batch.request_id, batch.received_us,
                              ((record.data_id, record.timestamp_us, record.payload,
                                record.upsert),))
            try:
                parts.append(entries_table([(record.seq, one)], schema))
            except CONVERSION_ERRORS as exc:
                reason = exc.message if isinstance(exc, InvalidInput) else str(exc)
                refused.append(Refused(record, reason[:500]))
    layout = file_schema(schema)
    return (pa.concat_tables(parts) if parts else layout.empty_table()), refused


def _single(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array; an entry read from the log has one chunk, taken without a copy."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


@dataclass(frozen=True, slots=True)
class Partition:
    name: str  # "day=2026-11-26", or "column=value" for a declared partition column
    rows: pa.Table
    seq_range: tuple[int, int]


def _partition(name: str, rows: pa.Table) -> Partition:
    bounds = pc.min_max(rows.column("_seq"))
    return Partition(name, rows, (int(bounds["min"].as_py()), int(bounds["max"].as_py())))


def partitions(table: pa.Table, partition_by: str | None = None) -> list[Partition]:
    """Split by day of `_timestamp`, or by the declared partition column's values."""
    if table.num_rows == 0:
        return []
    if partition_by is None:
        # Whole days since the epoch, by integer division: formatting every timestamp as text
        # would cost more than the rest of the flush.
        days = days_since_epoch(table.column("_timestamp").cast(pa.int64()))
        unique = pc.unique(days).to_pylist()
        if len(unique) == 1:  # the usual flush: one day, no need to copy the rows
            return [_partition(f"day={day_of(int(unique[0]) * DAY_US)}", table)]
        out = [_partition(f"day={day_of(int(day) * DAY_US)}",
                          table.filter(pc.equal(days, day)))
               for day in unique]
    else:
        keys = pc.fill_null(pc.cast(table.column(partition_by), pa.string()), "__null__")
        out = [_partition(f"{partition_by}={_safe(str(value))}",
                          table.filter(pc.equal(keys, value)))
               for value in pc.unique(keys).to_pylist()]
    return sorted(out, key=lambda p: p.name)


def days_since_epoch(micros: pa.ChunkedArray) -> pa.ChunkedArray:
    """Each timestamp's day, floored, in integers throughout: through float64 every instant
    past 2255 (2**53 microseconds) failed the cast, and one such record stopped every flush."""
    whole = pc.divide(micros, DAY_US)  # integer division truncates toward zero
    before = pc.less(pc.subtract(micros, pc.multiply(whole, DAY_US)), 0)  # before 1970
    return pc.if_else(before, pc.subtract(whole, 1), whole)


def _safe(value: str) -> str:
    """A partition value usable as one path segment."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in value)[:100]
    return cleaned or "_"


def day_of(timestamp_us: int) -> str:
    return dt.datetime.fromtimestamp(timestamp_us / 1e6, dt.UTC).strftime("%Y-%m-%d")
