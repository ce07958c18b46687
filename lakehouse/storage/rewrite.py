"""Rewriting a group of data files as fewer, larger ones (the I/O half of compaction).

It runs where the bytes are cheapest to move: on a Dask worker, which gets the storage URI and
the paths, never a live handle. Rows keep their columns; only replaced versions go: a data_id
can appear twice only when a later version was an upsert (ingestion refuses other repeats), so
the newest `_seq` of each upserted data_id is kept and the rest dropped. Outputs are sorted by
the table's sort key, or by data_id when it has none.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakehouse.catalog.lake import DataFile
from lakehouse.compaction.planner import CompactionGroup
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.parquet_files import column_stats, write_file
from lakehouse.storage.versions import newest_versions


@dataclass(frozen=True, slots=True)
class RewriteResult:
    outputs: tuple[DataFile, ...]
    rows_in: int
    rows_out: int
    bytes_in: int
    bytes_out: int


def rewrite_group(root_uri: str, group: CompactionGroup) -> RewriteResult:
    """Read the group's files, drop replaced versions, sort, and write the outputs."""
    root = StorageRoot.parse(root_uri)
    inputs, partition = group.inputs, group.partition
    parts = [pq.read_table(root.full(f.path), filesystem=root.fs) for f in inputs]
    rows = pa.concat_tables(parts, promote_options="permissive") if parts else pa.table({})
    rows_in = rows.num_rows
    rows = newest_versions(rows)
    keys = [k for k in sort_order(group.sort_key) if k in rows.column_names]
    if keys and rows.num_rows:
        rows = rows.sort_by([(k, "ascending") for k in keys])
    bytes_in = sum(f.byte_size for f in inputs)
    outputs = []
    for chunk in _chunks(rows, bytes_in, group.target_file_bytes):
        path = output_path(group.tenant, group.table, partition)
        size = write_file(root, path, chunk)
        seq_min, seq_max = _seq_range(chunk)
        outputs.append(DataFile(path, partition, chunk.num_rows, size, seq_min, seq_max,
                                column_stats(chunk)))
    return RewriteResult(tuple(outputs), rows_in, rows.num_rows, bytes_in,
                         sum(f.byte_size for f in outputs))


def sort_order(sort_key: tuple[str, ...]) -> tuple[str, ...]:
    """The table's sort key; without one, `data_id`: lookups by record key, the platform's
    most common point query, then read one row group of one file instead of every file."""
    return sort_key or ("data_id",)


def output_path(tenant: str, table: str, partition: str) -> str:
    """Compaction outputs have fresh names: a retried rewrite never meets its own earlier
    attempt, whose files (never committed) cleanup removes as orphans."""
    folder = f"{tenant}/{table}/{partition}" if partition else f"{tenant}/{table}"
    return f"{folder}/compacted-{uuid.uuid4().hex}.parquet"


def _chunks(rows: pa.Table, bytes_in: int, target_file_bytes: int) -> list[pa.Table]:
    """Cut near the target size, judged by the inputs' bytes per row (outputs of the same
    rows compress at least as well)."""
    if rows.num_rows == 0:
        return []
    per_row = max(1.0, bytes_in / max(1, rows.num_rows))
    step = max(1, int(target_file_bytes / per_row))
    return [rows.slice(start, step) for start in range(0, rows.num_rows, step)]


def _seq_range(rows: pa.Table) -> tuple[int | None, int | None]:
    """The WAL sequence range of flushed rows; None for bulk-loaded rows (their `_seq` is 0)."""
    if "_seq" not in rows.column_names:
        return None, None
    seqs = pc.filter(rows.column("_seq"), pc.greater(rows.column("_seq"), 0))
    if len(seqs) == 0:
        return None, None
    bounds = pc.min_max(seqs)
    return int(bounds["min"].as_py()), int(bounds["max"].as_py())
