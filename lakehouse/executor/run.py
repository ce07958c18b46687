"""Running a physical plan: scans into Arrow, then DuckDB, on one node or across Dask workers.

SINGLE: every relation is scanned (its files here, in threads) and `sql` runs once.
PARTIAL_AGGREGATE / BROADCAST: the partitioned relation's files are cut into fragments; each
fragment is scanned on a Dask worker, which runs `partial_sql` over it and the other relations
(scanned once, here, and sent to every worker); `final_sql` merges the partial results here.
HASH: two large relations are cut into fragments whose rows each worker splits by a hash of the
join keys into the same number of buckets; bucket i of both meets on one worker, which runs
`partial_sql`; `final_sql` merges. Without a cluster, fragments run here, one after another.

Rows still in the write-ahead log join every scan (read where the log is), and versions an
upsert replaced are dropped across all of a relation's pieces.

Where DuckDB reads a relation's files as our scan would (lakehouse/executor/file_views.py), it
reads them itself: the query's database gets a view over exactly those files (the log's rows
joining as Arrow) instead of scanned rows, and a fragment on a worker does the same with its
files.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.cluster import Submitted, cluster_failure, submit_or_here
from lakehouse.errors import LakehouseError, QueryCancelled
from lakehouse.executor.file_views import (
    TIME_COLUMN,
    FileView,
    plain_paths,
    quote_name,
    readable_by_duckdb,
)
from lakehouse.executor.sandbox import Sandbox, run_sql
from lakehouse.executor.scan import (
    ScanJob,
    conform_to,
    file_schemas,
    file_view,
    relation_schema,
    scan_fragment,
    scan_rows,
    upsert_rows,
)
from lakehouse.optimizer.physical import Distribution, PhysicalPlan, ScanSpec, Strategy
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.versions import replaced_versions

log = logging.getLogger(__name__)

PARTIALS = "partials"
# (tenant, table) → the rows of that table still in the write-ahead log, file layout; or None.
Unflushed = Callable[[str, str], pa.Table | None]


@dataclass
class Progress:
    """What a running query has done, for status endpoints (updated as fragments finish)."""

    fragments_total: int = 0
    fragments_done: int = 0
    bytes_scanned: int = 0
    rows_scanned: int = 0
    stage: str = "planning"
    steps: dict[str, dict[str, float]] = field(default_factory=dict)  # name → rows, ms
    workers: dict[str, int] = field(default_factory=dict)  # worker → jobs of the query it ran
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def done(self, rows: int = 0, size: int = 0) -> None:
        with self._lock:
            self.fragments_done += 1
            self.rows_scanned += rows
            self.bytes_scanned += size

    def step(self, name: str, rows: int, started: float) -> None:
        with self._lock:
            self.steps[name] = {"rows": rows,
                                "ms": round((time.perf_counter() - started) * 1000, 3)}


@dataclass
class Cancel:
    event: threading.Event = field(default_factory=threading.Event)
    futures: list[Any] = field(default_factory=list)
    sandboxes: list[Sandbox] = field(default_factory=list)

    def check(self) -> None:
        if self.event.is_set():
            raise QueryCancelled("the query was cancelled")

    def cancel(self) -> None:
        self.event.set()
        for future in list(self.futures):
            try:
                future.cancel()
            except Exception:  # already finished or the cluster is gone
                log.debug("cannot cancel a fragment", exc_info=True)
        self._interrupt(tries=_INTERRUPT_TRIES)

    def _interrupt(self, tries: int) -> None:
        """Interrupt the running sandboxes, and again every half second while any remains: an
        interrupt that lands between the last check and DuckDB starting the statement is lost,
        and the query would run to its end (seen under load: over 40 s after a cancel)."""
        running = list(self.sandboxes)
        for sandbox in running:
            try:
                sandbox.interrupt()
            except Exception:  # closed meanwhile: it has ended
                log.debug("cannot interrupt a sandbox", exc_info=True)
        if running and tries > 1:
            again = threading.Timer(0.5, self._interrupt, args=(tries - 1,))
            again.daemon = True
            again.start()

    def release(self) -> None:
        """The run is over: drop its fragments' futures, or the cluster would keep their
        results in worker memory for as long as the finished run is remembered."""
        self.futures.clear()
        self.sandboxes.clear()


_INTERRUPT_TRIES = 120  # a minute of retries, then the query's own time limit ends it


@dataclass(frozen=True)
class ExecutionContext:
    root_uri: str
    unflushed: Unflushed | None = None
    retention_cutoffs: Mapping[str, int] = field(default_factory=dict)  # relation → µs
    client: Any = None  # a distributed.Client, or None: fragments run here
    threads: int = 2
    # relation → its columns, for relations whose scan kept no files (lakehouse/executor/empty)
    empty_schemas: Mapping[str, pa.Schema] = field(default_factory=dict)
    name: str = "query"  # the Dask keys and span of its fragments: `query-<id>`
    duckdb_reads_files: bool = True  # where it can (QUERY_FILE_READER=duckdb)


def execute(plan: PhysicalPlan, context: ExecutionContext, progress: Progress | None = None,
            cancel: Cancel | None = None) -> pa.Table:
    run = Execution(plan, context, progress or Progress(), cancel or Cancel())
    return run.merge(run.stage(run.prepare()))


@dataclass
class Execution:
    """One run of a plan in three steps — prepare (find every relation's pieces), stage (the
    scans, and on a distributed plan the fragments' partial queries) and merge (the query, or
    the final query over the partials) — so a Prefect flow can show each as a task."""

    plan: PhysicalPlan
    context: ExecutionContext
    progress: Progress
    cancel: Cancel

    @property
    def distributed(self) -> bool:
        dist = self.plan.distribution
        return dist.strategy is not Strategy.SINGLE and dist.partial_sql is not None

    def prepare(self) -> dict[str, _Pieces]:
        return {spec.relation: _pieces(spec, self.context) for spec in self.plan.scans}

    def stage(self, pieces: dict[str, _Pieces]) -> Staged:
        if self.distributed:
            return Staged(pieces, {PARTIALS: self._partials(pieces)})
        return Staged(pieces, _scan_all(pieces, self.context, self.progress, self.cancel))

    def _partials(self, pieces: dict[str, _Pieces]) -> pa.Table:
        """The fragments' partial results, from the workers; when the cluster fails under
        them (a worker host lost with the only copy of a result or of scattered data, a
        broken connection), all of them again here: slower, and the same answer. Nothing
        else is run again: the data's own errors (LakehouseError), a file gone, DuckDB's
        errors propagate as they are, and fragments that kept killing their workers (out of
        memory, say) are refused rather than tried in the services' own process."""
        try:
            return _distributed(self.plan, pieces, self.context, self.progress, self.cancel)
        except LakehouseError:
            raise
        except Exception as exc:
            if self.context.client is None or not cluster_failure(exc):
                raise
            self.cancel.check()
            log.warning("the Dask cluster failed a query's fragments; running them here",
                        extra={"job": self.context.name, "error": repr(exc)[:300]})
        for future in self.cancel.futures:  # what the first attempt still has on the cluster
            with contextlib.suppress(Exception):
                future.cancel()
        self.cancel.futures.clear()
        progress = self.progress
        progress.fragments_done = progress.rows_scanned = progress.bytes_scanned = 0
        progress.workers = {}
        return _distributed(self.plan, pieces, replace(self.context, client=None),
                            progress, self.cancel)

    def _run(self, relations: Mapping[str, pa.Table | FileView], sql: str,
             name: str) -> pa.Table:
        return _run(relations, sql, self, name)

    def merge(self, staged: Staged) -> pa.Table:
        self.cancel.check()
        if not self.distributed:
            self.progress.stage = "running"
            return self._run(staged.relations, self.plan.sql, "query")
        self.progress.stage = "merging"
        final = self.plan.distribution.final_sql or ""
        merged = self._run(staged.relations, final, "final")
        return as_single_node(merged, self.plan, staged.pieces, self.context)


@dataclass(frozen=True)
class Staged:
    pieces: dict[str, _Pieces]
    relations: dict[str, pa.Table | FileView]  # what the merge step's SQL reads


@dataclass
class _Pieces:
    """A relation's parts: its files' scan jobs, and rows from the log (already scanned)."""

    spec: ScanSpec
    base: ScanJob | None  # None: no files
    memory: pa.Table | None  # the log's rows, scanned
    schema: pa.Schema | None


def _pieces(spec: ScanSpec, context: ExecutionContext) -> _Pieces:
    root = StorageRoot.parse(context.root_uri)
    paths = tuple(f.path for f in spec.files)
    unflushed = (context.unflushed(spec.tenant, spec.table)
                 if spec.include_unflushed and context.unflushed is not None else None)
    if unflushed is not None and unflushed.num_rows == 0:
        unflushed = None
    schema = relation_schema(root, paths)
    if schema is None and unflushed is not None:
        schema = unflushed.schema
    elif schema is None:
        schema = context.empty_schemas.get(spec.relation)
    elif schema is not None and unflushed is not None:
        schema = pa.unify_schemas([schema, unflushed.schema], promote_options="permissive")
    if schema is None or (not paths and unflushed is None):
        return _Pieces(spec, None, None, schema)
    base = ScanJob(context.root_uri, paths, schema, spec.columns, spec.predicate,
                   retention_cutoff_us=context.retention_cutoffs.get(spec.relation),
                   dictionary_columns=spec.dictionary_columns,
                   duckdb_reads=(_duckdb_reads(root, paths, schema, spec.columns)
                                 if context.duckdb_reads_files and paths else None))
    upserted = [f.path for f in spec.files if f.has_upserts]
    sources = [upsert_rows(replace(base, paths=tuple(upserted)))] if upserted else []
    if unflushed is not None and "_upsert" in unflushed.column_names:
        sources.append(unflushed.filter(pc.field("_upsert")).select(["data_id", "_seq",
                                                                     "_upsert"]))
    if any(s.num_rows for s in sources):
        base = replace(base, replaced=replaced_versions(sources))
    memory = scan_rows(unflushed, base) if unflushed is not None else None
    return _Pieces(spec, base if paths else None, memory, schema)


def _duckdb_reads(root: StorageRoot, paths: Sequence[str], schema: pa.Schema,
                  columns: Sequence[str] | None) -> pa.Schema | None:
    """The files' one schema if DuckDB may read them itself and show what our scan would:
    local files, plain paths, and every column the scan shows or filters on present in the
    files with the relation's type (the log's rows may have widened or added one)."""
    if not root.is_local or not plain_paths([root.full(p) for p in paths]):
        return None
    found = readable_by_duckdb(file_schemas(root, paths))
    if found is None:
        return None
    needed = [*(columns if columns is not None else schema.names),
              "data_id", "_seq", TIME_COLUMN]
    for name in needed:
        index = schema.get_field_index(name)
        if index < 0:
            continue
        if found.get_field_index(name) < 0 or found.field(name).type != schema.field(index).type:
            return None
    return found


def _view(pieces: _Pieces) -> FileView | None:
    """The relation as a view over its files, if DuckDB reads them (the log's rows joined)."""
    base = pieces.base
    if base is None or base.duckdb_reads is None:
        return None
    return file_view(base, pieces.memory)


def _empty(pieces: _Pieces) -> pa.Table:
    """A relation with no rows: its columns from the schema we know (or none)."""
    if pieces.schema is None:
        return pa.table({c: pa.array([], pa.null()) for c in pieces.spec.columns or ()})
    empty = pieces.schema.empty_table()
    if pieces.spec.columns is not None:
        empty = empty.select([c for c in pieces.spec.columns if c in empty.column_names])
    return empty


def _whole(pieces: _Pieces, progress: Progress, *, filter_rows: bool = True) -> pa.Table:
    view = _view(pieces)
    if view is not None:  # DuckDB reads the files (and filters, as our scan would)
        rows = read_view(view, pieces.spec.predicate if filter_rows else None)
        progress.done(rows.num_rows, pieces.spec.bytes)
        return rows
    parts = []
    if pieces.base is not None:
        parts.append(scan_fragment(replace(pieces.base, filter_rows=filter_rows)))
        progress.done(parts[-1].num_rows, pieces.spec.bytes)
    if pieces.memory is not None:
        parts.append(pieces.memory)
    if not parts:
        return _empty(pieces)
    return parts[0] if len(parts) == 1 else pa.concat_tables(
        [conform_to(p, parts[0].schema) for p in parts])


def read_view(view: FileView, predicate: str | None = None, threads: int = 1) -> pa.Table:
    """The view's rows, read by DuckDB, those `predicate` (DuckDB SQL over the table's own
    column names, made by the optimizer) keeps."""
    where = f" WHERE {predicate}" if predicate else ""
    return run_sql({"v": view}, f"SELECT * FROM {quote_name('v')}{where}",  # noqa: S608
                   threads)


def _scan_all(pieces: Mapping[str, _Pieces], context: ExecutionContext, progress: Progress,
              cancel: Cancel) -> dict[str, pa.Table | FileView]:
    progress.stage = "scanning"
    relations: dict[str, pa.Table | FileView] = {}
    scanned = {}
    for name, p in pieces.items():
        view = _view(p)
        if view is None:
            scanned[name] = p
            continue
        # Read by the query itself: the rows in the files kept, before its filters.
        relations[name] = view
        progress.done(sum(f.rows for f in p.spec.files), p.spec.bytes)
        progress.step(f"read {name}", sum(f.rows for f in p.spec.files), time.perf_counter())
    progress.fragments_total = sum(1 for p in pieces.values() if p.base is not None)
    with ThreadPoolExecutor(max_workers=max(1, context.threads)) as pool:
        started = time.perf_counter()
        # The query's SQL holds every condition of the scans' predicates, so rows are filtered
        # there; the scans only skip row groups. Their row counts are rows read, so the step
        # is "read", not "scan" (whose rows the optimizer's estimates are judged against).
        found = {name: pool.submit(_whole, p, progress, filter_rows=False)
                 for name, p in scanned.items()}
        for name, future in found.items():
            rows = future.result()
            relations[name] = rows
            progress.step(f"read {name}", rows.num_rows, started)
    cancel.check()
    return relations


def _run(relations: Mapping[str, pa.Table | FileView], sql: str, run: Execution,
         name: str) -> pa.Table:
    context, cancel, progress = run.context, run.cancel, run.progress
    started = time.perf_counter()
    sandbox = Sandbox(relations, context.threads,
                      schemas={s.relation.rpartition(".")[0] for s in run.plan.scans})
    cancel.sandboxes.append(sandbox)
    try:
        cancel.check()
        result = sandbox.run(sql)
    except Exception as exc:
        if cancel.event.is_set():
            raise QueryCancelled("the query was cancelled") from exc
        raise
    finally:
        cancel.sandboxes.remove(sandbox)
        sandbox.close()
    progress.step(name, result.num_rows, started)
    return result


def fragments(job: ScanJob, sizes: Sequence[int], count: int) -> list[ScanJob]:
    """The files cut into at most `count` runs of about equal bytes, in order."""
    if not job.paths:
        return []
    count = max(1, min(count, len(job.paths)))
    target = sum(sizes) / count
    runs: list[list[str]] = [[]]
    size = 0.0
    for path, bytes_ in zip(job.paths, sizes, strict=True):
        if runs[-1] and size + bytes_ > target * 1.0001 and len(runs) < count:
            runs.append([])
            size = 0.0
        runs[-1].append(path)
        size += bytes_
    return [replace(job, paths=tuple(run)) for run in runs]


def _fragment_task(*, job: ScanJob | None, memory: pa.Table | None, relation: str,
                   others: dict[str, pa.Table], partial_sql: str) -> pa.Table:
    """On a worker: scan one fragment (or let DuckDB read its files) and run the partial SQL
    over it and the others."""
    if job is not None and job.duckdb_reads is not None:
        return run_sql({**others, relation: file_view(job)}, partial_sql, 1)
    rows = _rows(job, memory)
    return run_sql({**others, relation: rows}, partial_sql, 1)


def _rows(job: ScanJob | None, memory: pa.Table | None) -> pa.Table:
    if job is not None and job.duckdb_reads is not None:
        return read_view(file_view(job))
    if job is not None:
        return scan_fragment(job)
    if memory is None:
        raise ValueError("a fragment has files or rows")
    return memory


def _bucket_task(*, job: ScanJob | None, memory: pa.Table | None, keys: Sequence[str],
                 buckets: int, casts: Sequence[str | None] = ()) -> list[pa.Table]:
    """On a worker: scan one fragment and split its rows by a hash of the join keys (each in
    the type `casts` names, if any: both sides hash a key in one type)."""
    rows = _rows(job, memory)
    if rows.num_rows == 0:
        return [rows] * buckets
    quoted = ['"' + k.replace('"', '""') + '"' for k in keys]
    types = [*casts, *[None] * (len(keys) - len(casts))]
    key_list = ", ".join(f"CAST({q} AS {cast})" if cast else q
                         for q, cast in zip(quoted, types, strict=True))
    # Quoted column names, type names made here and an int: no value of the query reaches
    # this text.
    bucketing = f"SELECT hash({key_list}) % {int(buckets)} AS _bucket FROM t"  # noqa: S608
    numbered = run_sql({"t": rows}, bucketing, 1).column("_bucket")
    return [rows.filter(pc.equal(numbered, pa.scalar(b, numbered.type)))
            for b in range(buckets)]


def _join_task(*, relations: dict[str, list[pa.Table]], others: dict[str, pa.Table],
               partial_sql: str) -> pa.Table:
    merged = {name: (pa.concat_tables([conform_to(p, parts[0].schema) for p in parts])
                     if len(parts) > 1 else parts[0]) for name, parts in relations.items()}
    return run_sql({**others, **merged}, partial_sql, 1)


def _distributed(plan: PhysicalPlan, pieces: Mapping[str, _Pieces], context: ExecutionContext,
                 progress: Progress, cancel: Cancel) -> pa.Table:
    dist = plan.distribution
    partitioned = [pieces[name] for name in dist.partitioned]
    progress.stage = "scanning"
    started = time.perf_counter()
    others = {name: _whole(p, progress) for name, p in pieces.items()
              if name not in dist.partitioned}
    progress.step("broadcast scans", sum(t.num_rows for t in others.values()), started)
    work = submit_or_here(context.client, context.name)
    submit = _submitter(work, cancel)
    # The broadcast relations go to every worker once, not once per fragment, under keys of
    # this query's own (lakehouse/cluster.py).
    shared: Any = others
    if work.client is not None and others:
        shared = dict(zip(others, work.scatter(list(others.values())), strict=True))
    partial_sql = dist.partial_sql or ""
    progress.stage = "running"
    started = time.perf_counter()
    if dist.strategy is Strategy.HASH:
        partials = _hash_stage(partitioned, dist, shared, partial_sql, work, submit,
                               progress)
    else:
        [only] = partitioned
        jobs: list[tuple[ScanJob | None, pa.Table | None]] = [
            (job, None) for job in (fragments(only.base, [f.bytes for f in only.spec.files],
                                              dist.fragments) if only.base else [])]
        if only.memory is not None:
            jobs.append((None, only.memory))
        if not jobs:
            jobs.append((None, _empty(only)))
        progress.fragments_total = len(jobs)
        futures = [submit(_fragment_task, job=job, memory=memory, relation=only.spec.relation,
                          others=shared, partial_sql=partial_sql) for job, memory in jobs]
        partials = _gather(futures, cancel, progress,
                           sizes=[_job_bytes(only.spec, job) for job, _ in jobs])
    progress.step("partial", sum(p.num_rows for p in partials), started)
    cancel.check()
    progress.workers = _placement(work)
    return pa.concat_tables([conform_to(p, partials[0].schema) for p in partials])


def as_single_node(result: pa.Table, plan: PhysicalPlan, pieces: Mapping[str, _Pieces],
                   context: ExecutionContext) -> pa.Table:
    """The merged result named and typed as the single-node query would answer: that query,
    run over empty relations, gives the names and types."""
    empty = {name: _empty(p) for name, p in pieces.items()}
    expected = run_sql(empty, plan.sql, context.threads).schema
    if len(expected) != result.num_columns:
        return result
    columns = []
    for wanted, column in zip(expected, result.columns, strict=True):
        try:
            columns.append(column.cast(wanted.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            columns.append(column)
    return pa.Table.from_arrays(columns, names=expected.names)


def _hash_types(partitioned: Sequence[_Pieces], keys: Sequence[Sequence[str]],
                ) -> list[str | None]:
    """For each join key, the DuckDB type both sides hash it in, where their types differ:
    DuckDB joins 7 (BIGINT) with 7.0 (DOUBLE) and 7.00 (DECIMAL), yet hashes each type
    differently, so each side would send its 7 to another bucket. Numbers meet as DOUBLE
    (equal values stay equal), dates and timestamps as TIMESTAMP(TZ)."""
    out: list[str | None] = []
    for index in range(min((len(k) for k in keys), default=0)):
        types = [p.schema.field(k[index]).type for p, k in zip(partitioned, keys, strict=True)
                 if p.schema is not None and k[index] in p.schema.names]
        types = [t for t in types if not pa.types.is_null(t)]
        if len(set(types)) <= 1:
            out.append(None)
        elif all(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
                 for t in types):
            out.append("DOUBLE")
        elif all(pa.types.is_date(t) or pa.types.is_timestamp(t) for t in types):
            zoned = any(pa.types.is_timestamp(t) and t.tz is not None for t in types)
            out.append("TIMESTAMPTZ" if zoned else "TIMESTAMP")
        else:
            out.append(None)
    return out


def _hash_stage(partitioned: Sequence[_Pieces], dist: Distribution, shared: Any,  # noqa: PLR0917
                partial_sql: str, work: Submitted, submit: Callable[..., Any],
                progress: Progress) -> list[pa.Table]:
    keys, buckets = dist.keys, dist.fragments
    casts = _hash_types(partitioned, keys)
    split: dict[str, list[Any]] = {}
    sizes: list[int] = []
    for pieces, key in zip(partitioned, keys, strict=True):
        jobs: list[tuple[ScanJob | None, pa.Table | None]] = [
            (job, None) for job in (fragments(pieces.base, [f.bytes for f in pieces.spec.files],
                                              buckets) if pieces.base else [])]
        if pieces.memory is not None:
            jobs.append((None, pieces.memory))
        if not jobs:
            jobs.append((None, _empty(pieces)))
        split[pieces.spec.relation] = [submit(_bucket_task, job=job, memory=memory,
                                              keys=list(key), buckets=buckets, casts=casts)
                                       for job, memory in jobs]
        sizes += [_job_bytes(pieces.spec, job) for job, _ in jobs]
    progress.fragments_total = sum(len(v) for v in split.values()) + buckets
    for future, size in zip([f for v in split.values() for f in v], sizes, strict=True):
        future.result()
        progress.done(0, size)
    joins = []
    for bucket in range(buckets):
        inputs = {name: [work.item(f, bucket) for f in futures]
                  for name, futures in split.items()}
        joins.append(submit(_join_task, relations=inputs, others=shared,
                            partial_sql=partial_sql))
    return [_result(f, progress) for f in joins]


def _result(future: Any, progress: Progress) -> pa.Table:
    table: pa.Table = future.result()
    progress.done(table.num_rows, 0)
    return table


def _placement(work: Submitted) -> dict[str, int]:
    """How many of the query's jobs each worker holds the result of (where they ran)."""
    if work.client is None or not work.futures:
        return {}
    try:
        held = work.client.who_has(work.futures)
    except Exception:  # the cluster went away after answering: where it ran is lost, not the answer
        log.debug("cannot ask where the fragments ran", exc_info=True)
        return {}
    counts: dict[str, int] = {}
    for holders in held.values():
        if holders:
            counts[holders[0]] = counts.get(holders[0], 0) + 1
    return dict(sorted(counts.items()))


def _job_bytes(spec: ScanSpec, job: ScanJob | None) -> int:
    if job is None:
        return 0
    wanted = set(job.paths)
    return sum(f.bytes for f in spec.files if f.path in wanted)


def _submitter(work: Submitted, cancel: Cancel) -> Callable[..., Any]:
    """Submit a fragment (or run it here), unless the query was cancelled; a cancel drops
    what the cluster still has of it."""
    def submit(fn: Callable[..., Any], **kwargs: Any) -> Any:
        cancel.check()
        future = work.submit(fn, **kwargs)
        if work.client is not None:
            cancel.futures.append(future)
        return future

    return submit


def _gather(futures: Sequence[Any], cancel: Cancel, progress: Progress,
            sizes: Sequence[int]) -> list[pa.Table]:
    out = []
    for future, size in zip(futures, sizes, strict=True):
        cancel.check()
        try:
            table: pa.Table = future.result()
        except Exception as exc:
            if cancel.event.is_set():
                raise QueryCancelled("the query was cancelled") from exc
            raise
        progress.done(table.num_rows, size)
        out.append(table)
    return out
