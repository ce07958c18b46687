"""All 22 TPC-H queries through the HTTP API, against DuckDB reading the same Parquet files.

The data is TPC-H at a small scale factor from `tpchgen-cli`, loaded through the `load` flow (on
Prefect's test harness). Each query runs on the Operation Node as a single-node plan, as a
forced distributed plan on an in-process Dask cluster (broadcast joins), and distributed with a
zero broadcast threshold (hash-partitioned joins); every answer must equal DuckDB's over the
table's data files: in order when the query orders, numbers to 1e-9 relative.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.executor.service import QueryService
from lakehouse.optimizer.cost_model import RULES
from tests.tpch_answers import UNORDERED, loaded, normal, oracle, query, same

SCALE = "0.01"


@pytest.fixture(scope="module")
def tpch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from distributed import Client, LocalCluster

    core, headers = loaded(tmp_path_factory.mktemp("tpch"), SCALE, Role.READER)
    duck = oracle(core)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        assert isinstance(core.queries, QueryService)
        core.queries._client = lambda: client  # the in-process cluster stands for the real one
        with TestClient(create_app(Service.OPERATION, core)) as operation:
            yield {"core": core, "client": operation, "headers": headers, "oracle": duck}
    core.close()


def _check(tpch: dict[str, Any], n: int, plan: str) -> dict[str, Any]:
    response = tpch["client"].post("/query/execute", headers=tpch["headers"],
                                   json={"query": query(n), "plan": plan})
    assert response.status_code == 200, (n, response.text)
    body: dict[str, Any] = response.json()
    want = normal(tpch["oracle"].sql(query(n)).to_arrow_table())
    assert same(body["rows"], want, ordered=n not in UNORDERED), (n, plan, body["rows"][:3],
                                                                   want[:3])
    return body


@pytest.mark.parametrize("n", range(1, 23))
def test_single_node(tpch: dict[str, Any], n: int) -> None:
    body = _check(tpch, n, "single")
    assert body["strategy"] == "single"


@pytest.mark.parametrize("n", range(1, 23))
def test_forced_distributed(tpch: dict[str, Any], n: int) -> None:
    body = _check(tpch, n, "distributed")
    # Queries that split run as fragments on the workers; the rest as single-node plans.
    if n in (1, 6):
        assert body["strategy"] == "partial_aggregate"
    if n in (3, 5, 10, 12):
        assert body["strategy"] == "broadcast"


@pytest.mark.parametrize("n", [3, 5, 10, 12, 14])
def test_hash_partitioned_joins(tpch: dict[str, Any], n: int) -> None:
    found = tpch["core"].queries
    before = found.model
    found.model = replace(before, broadcast_threshold_bytes=0)
    try:
        body = _check(tpch, n, "distributed")
    finally:
        found.model = before
    assert body["strategy"] == "hash"


@pytest.mark.parametrize("rule", RULES)
def test_results_unchanged_with_each_rule_switched_off(tpch: dict[str, Any], rule: str) -> None:
    found = tpch["core"].queries
    before = found.model
    found.model = replace(before, rules=tuple(r for r in RULES if r != rule))
    try:
        for n in range(1, 23):
            _check(tpch, n, "distributed" if rule != "choose_distribution" else "single")
    finally:
        found.model = before
