"""The 22 TPC-H queries at SF0.1 on tables served by ClickHouse (the real engine, embedded
through chDB), forced to the ClickHouse route over the HTTP API: each answer equals DuckDB's
over the tables' data files, and its columns are named and typed as the default engine's.

Then the tables change after the backfill — rows upserted and new rows flushed (the keeper
copies them), a retention period hiding old rows — and the route still answers as the default
engine does on the same snapshot. The data is `tpchgen-cli`'s, loaded through the `load` flow
(Prefect's test harness); the backfills are Prefect runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Service
from flows.ingest import flush_here
from flows.runs import watch
from lakehouse.auth.identity import Role
from tests.tpch_answers import TABLES, UNORDERED, loaded, normal, oracle, query, same

pytestmark = pytest.mark.slow
SCALE = "0.1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    core, headers = loaded(tmp_path_factory.mktemp("tpch-clickhouse"), SCALE, Role.WRITER,
                           query_on_dask=False)
    with TestClient(create_app(Service.CATALOG, core)) as catalog:
        runs = []
        for table in TABLES:
            answer = catalog.put(f"/metadata/tables/{table}/options",
                                 json={"serving": "clickhouse"}, headers=headers)
            assert answer.status_code == 200, answer.text
            runs.append(answer.json()["mirror"]["run_id"])
        for run_id in runs:
            watch(run_id).wait(timeout_s=600)
    with TestClient(create_app(Service.OPERATION, core)) as operation:
        yield {"core": core, "client": operation, "headers": headers, "oracle": oracle(core)}
    core.close()


def _run(served: dict[str, Any], sql: str, engine: str) -> dict[str, Any]:
    response = served["client"].post("/query/execute", headers=served["headers"],
                                     json={"query": sql, "engine": engine})
    assert response.status_code == 200, (engine, sql[:80], response.text)
    body: dict[str, Any] = response.json()
    assert body["engine"] == engine
    return body


@pytest.mark.parametrize("n", range(1, 23))
def test_tpch_on_the_clickhouse_route(served: dict[str, Any], n: int) -> None:
    body = _run(served, query(n), "clickhouse")
    want = normal(served["oracle"].sql(query(n)).to_arrow_table())
    assert same(body["rows"], want, ordered=n not in UNORDERED), (n, body["rows"][:3], want[:3])
    default = _run(served, query(n), "default")
    assert body["columns"] == default["columns"]  # names and types


def test_after_upserts_new_rows_and_retention_the_route_answers_as_the_default(
        served: dict[str, Any]) -> None:
    core = served["core"]
    assert core.ingest is not None and core.flusher is not None and core.mirror_keeper
    region = "SELECT data_id, r_regionkey, r_name, r_comment FROM region ORDER BY r_regionkey"
    before = _run(served, region, "default")["rows"]
    # Upsert two of the loaded regions by their data_id; add a sixth.
    changed = [{"data_id": row[0], "table": "region", "upsert": True,
                "payload": {"r_regionkey": row[1], "r_name": row[2] + " (renamed)",
                            "r_comment": row[3]}} for row in before[:2]]
    changed.append({"data_id": "new-region", "table": "region",
                    "payload": {"r_regionkey": 5, "r_name": "ANTARCTICA", "r_comment": "cold"}})
    core.ingest.write("acme", changed).answer(timeout_s=10)
    behind = served["client"].post("/query/execute", headers=served["headers"],
                                   json={"query": region, "engine": "clickhouse"})
    assert behind.status_code == 409, behind.text  # rows not flushed yet
    assert behind.json()["error"] == "mirror_behind"
    flush_here(core.flusher)
    behind = served["client"].post("/query/execute", headers=served["headers"],
                                   json={"query": region, "engine": "clickhouse"})
    assert behind.status_code == 409 and "lacks" in behind.json()["message"]
    core.mirror_keeper.run_round()
    mirrored = _run(served, region, "clickhouse")["rows"]
    assert mirrored == _run(served, region, "default")["rows"]
    assert len(mirrored) == 6 and mirrored[0][2].endswith("(renamed)")
    joined = ("SELECT r_name, count(*) AS nations FROM region LEFT JOIN nation "
              "ON n_regionkey = r_regionkey GROUP BY r_name ORDER BY r_name")
    assert _run(served, joined, "clickhouse")["rows"] == _run(served, joined, "default")["rows"]

    # Retention: a period hides older rows on both routes, and becomes the mirror's TTL.
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).isoformat()
    core.ingest.write("acme", [
        {"data_id": "old-region", "table": "region", "timestamp": old,
         "payload": {"r_regionkey": 6, "r_name": "ATLANTIS", "r_comment": "sunk"}},
        {"data_id": "newer-region", "table": "region",
         "payload": {"r_regionkey": 7, "r_name": "LEMURIA", "r_comment": "new"}}],
    ).answer(timeout_s=10)
    flush_here(core.flusher)
    core.mirror_keeper.run_round()
    assert "ATLANTIS" in [row[2] for row in _run(served, region, "clickhouse")["rows"]]
    catalog = TestClient(create_app(Service.CATALOG, core))
    answer = catalog.put("/metadata/tables/region/options",
                         json={"serving": "clickhouse", "retention_days": 1},
                         headers=served["headers"])
    assert answer.status_code == 200, answer.text
    kept = _run(served, region, "clickhouse")["rows"]
    assert kept == _run(served, region, "default")["rows"]
    names = [row[2] for row in kept]
    assert "ATLANTIS" not in names and "LEMURIA" in names and len(names) == 7
    store = core.serving_store()
    ddl = store.read("SELECT create_table_query AS q FROM system.tables WHERE "  # noqa: S608
                     f"database = '{store.database('acme')}' AND name = 'region'")
    assert "TTL _timestamp + toIntervalSecond(86400)" in ddl.column("q")[0].as_py()


def test_tpch_after_upserts_answers_as_the_default_engine(served: dict[str, Any]) -> None:
    """Orders and line items upserted after the backfill (prices and quantities changed), then
    flushed and copied by the keeper: all 22 queries answer on ClickHouse what the default
    engine answers."""
    core = served["core"]
    assert core.ingest is not None and core.flusher is not None and core.mirror_keeper
    price = "SELECT o_totalprice FROM orders WHERE o_orderkey = 1"
    before = float(_run(served, price, "default")["rows"][0][0])
    for table, key, changed in (("orders", "o_orderkey", "o_totalprice"),
                                ("lineitem", "l_orderkey", "l_quantity")):
        answer = _run(served, f"SELECT data_id, * FROM {table} WHERE {key} <= 200",  # noqa: S608
                      "default")
        names = [c["name"] for c in answer["columns"]]
        records = []
        for row in answer["rows"]:
            payload = dict(zip(names, row, strict=True))
            data_id = payload.pop("data_id")
            payload[changed] = str(float(payload[changed]) * 2 + 1)
            records.append({"data_id": data_id, "table": table, "upsert": True,
                            "payload": payload})
        core.ingest.write("acme", records).answer(timeout_s=30)
    flush_here(core.flusher)
    core.mirror_keeper.run_round()
    for engine in ("clickhouse", "default"):
        assert float(_run(served, price, engine)["rows"][0][0]) == pytest.approx(before * 2 + 1)
    for n in range(1, 23):
        on_clickhouse = _run(served, query(n), "clickhouse")
        default = _run(served, query(n), "default")
        assert same(on_clickhouse["rows"], default["rows"], ordered=n not in UNORDERED), n
