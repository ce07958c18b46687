"""Our scan: a relation's rows as Arrow, from the files pruning kept, projected and filtered.

A fragment (some of a relation's files) is read with `pyarrow.dataset` — only the columns asked
for, with the predicate pushed into the read so row groups whose statistics rule it out are
skipped — on a Dask worker or here; it gets the storage URI and paths, never a live handle.
Rows still in the write-ahead log join as one more piece, read where the log is. Versions an
upsert replaced are dropped (the newest `_seq` of each data_id wins), and rows past the table's
retention period are hidden.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lakehouse.executor.file_views import FileView
from lakehouse.executor.predicates import arrow_filter
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.versions import drop_replaced

SYSTEM_KEYS = ("data_id", "_seq", "_upsert")
TIME_COLUMN = "_timestamp"


@dataclass(frozen=True)
class ScanJob:
    """One fragment's work: plain values, so it travels to any worker."""

    root_uri: str
    paths: tuple[str, ...]  # relative to the root
    schema: pa.Schema  # the relation's schema (every file is read as this)
    columns: tuple[str, ...] | None
    predicate: str | None
    replaced: pa.Table | None = None  # (data_id, _seq): the newest version of upserted ids
    retention_cutoff_us: int | None = None
    # False: the predicate only skips row groups, and the SQL that reads the rows filters them
    # (pyarrow's row filter copies every column kept, which costs more than DuckDB's filter).
    filter_rows: bool = True
    dictionary_columns: tuple[str, ...] = ()  # string columns read as dictionaries
    # DuckDB reads the files itself (lakehouse/executor/file_views.py): their one schema.
    duckdb_reads: pa.Schema | None = None


def relation_schema(root: StorageRoot, paths: Sequence[str]) -> pa.Schema | None:
    """The schema to read every file as: the oldest and newest files' schemas unified (the
    schema only grows, and widens int64 to float64)."""
    if not paths:
        return None
    ends = [paths[0]] if len(paths) == 1 else [paths[0], paths[-1]]
    return pa.unify_schemas(file_schemas(root, ends), promote_options="permissive")


FOOTERS_KEPT = 8192
_footers: OrderedDict[tuple[str, int, int], pa.Schema] = OrderedDict()
_footers_lock = threading.Lock()


def file_schemas(root: StorageRoot, paths: Sequence[str]) -> list[pa.Schema]:
    """Each file's schema, read once and kept. A local file is known by its path, size and
    modification time (a table dropped and made again reuses paths); an object in a store by
    its path (written once, never changed: a stat would cost a request)."""
    out = []
    for path in paths:
        full = root.full(path)
        key = (full, -1, -1)
        if root.is_local:
            facts = os.stat(full)
            key = (full, facts.st_size, facts.st_mtime_ns)
        with _footers_lock:
            found = _footers.get(key)
            if found is not None:
                _footers.move_to_end(key)
        if found is None:
            found = pq.read_schema(full, filesystem=root.fs)
            with _footers_lock:
                _footers[key] = found
                while len(_footers) > FOOTERS_KEPT:
                    _footers.popitem(last=False)
        out.append(found)
    return out


def file_view(job: ScanJob, memory: pa.Table | None = None) -> FileView:
    """The view DuckDB reads `job`'s files through (`job.duckdb_reads` is set)."""
    root = StorageRoot.parse(job.root_uri)
    schema = job.duckdb_reads if job.duckdb_reads is not None else job.schema
    columns = job.columns if job.columns is not None else tuple(job.schema.names)
    return FileView(tuple(root.full(p) for p in job.paths), schema,
                    tuple(c for c in columns if c in schema.names), job.retention_cutoff_us,
                    job.replaced, memory)


def read_columns(job: ScanJob) -> list[str] | None:
    """What to read: the columns asked for, plus what dropping versions and hiding expired
    rows need."""
    if job.columns is None:
        return None
    wanted = list(job.columns)
    if job.replaced is not None:
        wanted += [c for c in ("data_id", "_seq") if c not in wanted]
    if job.retention_cutoff_us is not None and TIME_COLUMN not in wanted:
        wanted.append(TIME_COLUMN)
    return [c for c in wanted if job.schema.get_field_index(c) >= 0]


def scan_fragment(job: ScanJob) -> pa.Table:
    root = StorageRoot.parse(job.root_uri)
    dataset = ds.dataset([root.full(p) for p in job.paths], schema=job.schema,
                         format="parquet", filesystem=root.fs)
    condition = _filter(job)
    as_dictionaries = _dictionary_read(job)
    if condition is not None and (not job.filter_rows or as_dictionaries is not None):
        # Statistics are compared with the files' own types: a dictionary-typed read would
        # match every row group, so row groups are chosen first and then read as dictionaries.
        dataset = row_groups_matching(dataset, condition, job.schema)
    if as_dictionaries is not None:
        dataset = reading_as(dataset, *as_dictionaries)
    if condition is not None and not job.filter_rows:
        condition = _retention(job)
    rows = dataset.to_table(columns=read_columns(job), filter=condition)
    return finish(rows, job)


def reading_as(dataset: ds.FileSystemDataset, schema: pa.Schema,
               file_format: ds.FileFormat) -> ds.FileSystemDataset:
    """The same files and row groups, read with another schema and format."""
    fragments = [file_format.make_fragment(
        f.path, dataset.filesystem,
        row_groups=[rg.id for rg in f.row_groups] if f.row_groups is not None else None)
        for f in dataset.get_fragments()]
    return ds.FileSystemDataset(fragments, schema, file_format, dataset.filesystem)


def _dictionary_read(job: ScanJob) -> tuple[pa.Schema, ds.FileFormat] | None:
    """The schema and format reading the job's dictionary columns as dictionaries, decoded
    straight from the files' dictionary pages (see optimizer/encodings.py); None: none to read."""
    names = [c for c in job.dictionary_columns if job.schema.get_field_index(c) >= 0
             and (pa.types.is_string(job.schema.field(c).type)
                  or pa.types.is_large_string(job.schema.field(c).type))]
    if not names:
        return None
    schema = job.schema
    for name in names:
        index = schema.get_field_index(name)
        field = schema.field(index)
        schema = schema.set(index, field.with_type(pa.dictionary(pa.int32(), field.type)))
    options = ds.ParquetReadOptions(dictionary_columns=set(names))
    return schema, ds.ParquetFileFormat(read_options=options)


def row_groups_matching(dataset: ds.FileSystemDataset, condition: ds.Expression,
                        schema: pa.Schema) -> ds.FileSystemDataset:
    """The dataset without the row groups whose statistics rule `condition` out."""
    try:
        kept = [f.subset(condition) for f in dataset.get_fragments()]
    except (pa.ArrowException, ValueError, TypeError):
        return dataset  # pruning is an optimisation: read every row group
    return ds.FileSystemDataset(kept, schema, dataset.format, dataset.filesystem)


def scan_rows(rows: pa.Table, job: ScanJob) -> pa.Table:
    """The same scan over rows already in memory (those of the write-ahead log)."""
    rows = conform_to(rows, job.schema)
    wanted = read_columns(job)
    if wanted is not None:
        rows = rows.select(wanted)
    condition = _filter(job)
    if condition is not None and rows.num_rows:
        rows = rows.filter(condition)
    return finish(rows, job)


def finish(rows: pa.Table, job: ScanJob) -> pa.Table:
    if job.replaced is not None and rows.num_rows:
        rows = drop_replaced(rows, job.replaced)
    if job.columns is not None:
        rows = rows.select([c for c in job.columns if c in rows.column_names])
    return rows


def _filter(job: ScanJob) -> ds.Expression | None:
    condition = arrow_filter(job.predicate, job.schema)
    since = _retention(job)
    if since is not None:
        condition = since if condition is None else condition & since
    return condition


def _retention(job: ScanJob) -> ds.Expression | None:
    """Rows past the table's retention period are hidden: always filtered here, since no SQL
    mentions the cut-off."""
    if job.retention_cutoff_us is None or job.schema.get_field_index(TIME_COLUMN) < 0:
        return None
    kind = job.schema.field(TIME_COLUMN).type
    return pc.field(TIME_COLUMN) >= pa.scalar(job.retention_cutoff_us,  # type: ignore[no-any-return]
                                              pa.timestamp("us", tz="UTC")).cast(kind)


def conform_to(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """`rows` with exactly `schema`'s columns: missing ones null, others cast."""
    columns = []
    for field in schema:
        if field.name in rows.column_names:
            columns.append(rows.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(rows.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def upsert_rows(job: ScanJob) -> pa.Table:
    """The upsert rows of a fragment's files, read where they are (for
    `lakehouse.storage.versions.replaced_versions`)."""
    root = StorageRoot.parse(job.root_uri)
    dataset = ds.dataset([root.full(p) for p in job.paths], schema=job.schema,
                         format="parquet", filesystem=root.fs)
    return dataset.to_table(columns=list(SYSTEM_KEYS), filter=pc.field("_upsert"))
