"""Distributed plans that answered other than DuckDB, found by the differential suite: on an
in-process Dask cluster (two workers), the platform's real core under a temporary DATA_DIR
(tools/sqlgen/targets.py, InProcess), against plain DuckDB holding the same rows.

- A hash-partitioned join of keys of two types (BIGINT with DOUBLE, DOUBLE with DECIMAL): each
  side hashed its keys in its own type, so equal keys met in different buckets and the join
  lost rows (0 where DuckDB answers 20).
- Broadcast relations were scattered to the workers keyed by their relation name: two queries
  at once over one table (here an empty one, read for different columns) read each other's
  relation and failed, or could answer from the other's rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from tools.sqlgen.compare import compare
from tools.sqlgen.oracle import Oracle
from tools.sqlgen.schema import Column, Dataset, Kind, Table
from tools.sqlgen.schema import Path as Written
from tools.sqlgen.targets import InProcess

pytestmark = pytest.mark.timeout(300)

ROWS = 20
DATASET = Dataset(0, (
    Table("h1", (Column("k", Kind.INT), Column("v", Kind.TEXT)),
          tuple((i, f"v{i}") for i in range(ROWS)), Written.LOAD, batches=(7, 7, 6)),
    Table("h2", (Column("k", Kind.FLOAT), Column("d", Kind.DECIMAL, 9, 2)),
          tuple((float(i), Decimal(i).quantize(Decimal("0.01"))) for i in range(ROWS)),
          Written.LOAD, batches=(10, 10)),
    Table("e", (Column("a", Kind.INT), Column("b", Kind.FLOAT), Column("c", Kind.TEXT)), (),
          Written.LOAD, batches=(0,)),
))


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcess, Oracle]]:
    logging.getLogger("distributed").setLevel(logging.ERROR)
    target = InProcess(DATASET, tmp_path_factory.mktemp("distributed"))
    oracle = Oracle(DATASET)
    yield target, oracle
    target.close()
    oracle.close()


def test_hash_joins_of_keys_of_two_types(platform: tuple[InProcess, Oracle]) -> None:
    target, oracle = platform
    with target.variant(hash_joins=True):
        for sql in ("SELECT count(*), sum(h1.k) FROM h1 JOIN h2 ON h1.k = h2.k",
                    "SELECT count(*) FROM h1 JOIN h2 ON h1.k = h2.d",
                    "SELECT max(h1.v), sum(h2.d) FROM h1 JOIN h2 ON h2.d = h1.k"):
            got, want = target.run(sql, "distributed"), oracle.run(sql)
            assert got.strategy == "hash", (sql, got)
            assert want.ok and want.rows[0][0], want
            assert compare(got, want, ordered=False) is None, (sql, got.brief(), want.brief())


def test_queries_at_once_read_only_their_own_relations(
        platform: tuple[InProcess, Oracle]) -> None:
    target, oracle = platform
    queries = ["SELECT count(*), max(e.c) FROM h1, e",
               "SELECT count(*), sum(e.b) FROM h1 CROSS JOIN e",
               "SELECT h1.k, e.a FROM h1 CROSS JOIN e ORDER BY 1 LIMIT 3"] * 8
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda sql: target.run(sql, "distributed"), queries))
    for sql, got in zip(queries, answers, strict=True):
        assert got.ok, (sql, got.brief())
        assert got.strategy != "single", (sql, got.brief())
        assert compare(got, oracle.run(sql), ordered=False) is None, (sql, got.brief())


def test_fragments_run_under_keys_and_a_span_that_name_their_query(
        platform: tuple[InProcess, Oracle]) -> None:
    """The Dask dashboard groups the cluster's work by query: every key the query puts on the
    cluster (fragments, broadcast relations) starts with `query-<id>-`, and each was submitted
    inside a span named `query-<id>`."""
    target, _ = platform
    _nothing_left_on_the_cluster(target)
    before = target.client.run_on_scheduler(
        lambda dask_scheduler: len(dask_scheduler.transition_log))
    answer = target.http.post("/query/execute", json={
        "query": "SELECT count(*) FROM h1, h2 WHERE h1.k < h2.k", "plan": "distributed"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["strategy"] != "single"
    name = f"query-{answer.json()['query_id']}"
    keys = target.client.run_on_scheduler(
        lambda dask_scheduler: sorted({str(entry[0]) for entry in
                                       list(dask_scheduler.transition_log)[before:]}))
    spans = target.client.run_on_scheduler(
        lambda dask_scheduler: [list(span.name) for span in
                                dask_scheduler.extensions["spans"].spans.values()])
    assert keys and all(key.startswith(f"{name}-") for key in keys), keys
    assert [name] in spans, spans
    _nothing_left_on_the_cluster(target)


def _nothing_left_on_the_cluster(target: InProcess) -> None:
    """A finished query leaves no task (no partial result) on the workers."""
    deadline = time.monotonic() + 10
    while True:
        left = target.client.run_on_scheduler(
            lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks
                                    if str(k).startswith("query-")])
        if not left:
            return
        assert time.monotonic() < deadline, left
        time.sleep(0.1)
