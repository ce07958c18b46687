"""The single-node threshold learned from real runs: the platform's core (a temporary DATA_DIR,
no Dask cluster, so split plans run their fragments here, one after another), tables loaded
through the load path, queries over HTTP. What the machine measures decides the direction, so
the test holds the wiring, not a direction: forced plans teach nothing, the learned threshold
is the model's and follows the rule's verdict on what was measured, GET /optimize/config shows
it with its reason, and queries are planned with it from then on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.load.loader import Loader, LoadRequest
from lakehouse.load.sources import roots_for
from lakehouse.optimizer.split_learning import FLOOR_BYTES, MIB, MUCH, PAYS
from tests.conftest import PASSWORD

THRESHOLD_MB = 0.25


def _source(folder: Path, name: str, files: int, rows: int) -> Path:
    target = folder / name
    target.mkdir(parents=True)
    rng = np.random.default_rng(len(name))
    for n in range(files):
        pq.write_table(pa.table({"k": pa.array(rng.integers(0, 1000, rows)),
                                 "x": pa.array(rng.random(rows))}), target / f"{n}.parquet")
    return target


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    sources = tmp_path / "sources"
    settings = Settings.for_tests(tmp_path / "data", load_roots=str(sources),
                                  query_on_dask=False, optimizer_learn_split_threshold=True,
                                  optimizer_single_node_threshold_mb=THRESHOLD_MB,
                                  optimizer_target_fragment_mb=0.1)
    built = build_core(settings, ingest=True)
    assert built.catalog is not None and built.storage is not None
    loader = Loader(built.catalog, built.storage, roots_for(settings), built.declarations)
    # `big` reads more than the threshold (split); `near` a little less and `small` less
    # still (one node: two sizes, so a single-node run's fixed cost can be told apart).
    loader.run(LoadRequest("acme", "big", str(_source(sources, "big", 4, 20_000))))
    loader.run(LoadRequest("acme", "near", str(_source(sources, "near", 1, 6_000))))
    loader.run(LoadRequest("acme", "small", str(_source(sources, "small", 1, 500))))
    yield built
    built.close()


def test_the_threshold_is_learned_from_the_runs_and_used(core: Core) -> None:
    core.auth.create_user("ana", PASSWORD, "acme", Role.ADMIN)
    token = core.auth.login("ana", PASSWORD).access_token
    headers = {"Authorization": f"Bearer {token}"}
    service = core.queries
    assert service is not None
    with TestClient(create_app(Service.OPERATION, core)) as operation, TestClient(
            create_app(Service.CBO, core)) as cbo:
        config = cbo.get("/optimize/config", headers=headers).json()
        assert config["learned"] is None
        shapes = {}
        for table in ("big", "near"):
            scans = cbo.post("/optimize/query", headers=headers, json={
                "query": f"SELECT k, sum(x) FROM {table} GROUP BY k"}).json()  # noqa: S608
            shapes[table] = scans["plan"]["distribution"]["strategy"]
            assert (sum(s["bytes"] for s in scans["plan"]["scans"]) > THRESHOLD_MB * MIB) == (
                table == "big")
        assert shapes["near"] == "single" and shapes["big"] != "single", shapes
        # A forced shape teaches nothing.
        forced = operation.post("/query/execute", headers=headers, json={
            "query": "SELECT count(*) FROM big", "plan": "single"})
        assert forced.status_code == 200, forced.text
        assert service.learned is None
        for _ in range(3):
            for table in ("big", "near", "small"):
                answer = operation.post("/query/execute", headers=headers, json={
                    "query": f"SELECT k, sum(x) FROM {table} GROUP BY k"})  # noqa: S608
                assert answer.status_code == 200, answer.text
        learned = service.learned
        assert learned is not None
        assert service.model.single_node_threshold_bytes == learned.threshold_bytes
        before = int(THRESHOLD_MB * MIB)
        if learned.speedup is not None:
            # Concluded: what the rule says of the speed-up it measured was applied.
            assert learned.single_mb_per_s and learned.split_mb_per_s
            if learned.speedup < PAYS:
                assert learned.threshold_bytes > before
            elif learned.speedup > MUCH and before > FLOOR_BYTES:
                assert learned.threshold_bytes < before
            else:
                assert learned.threshold_bytes == before
        else:
            # The machine's noise hid the single-node runs' growth with size: nothing changes.
            assert learned.threshold_bytes == before, learned
        shown = cbo.get("/optimize/config", headers=headers).json()
        assert shown["learned"] == learned.to_json()
        assert shown["single_node_threshold_mb"] == learned.threshold_bytes / MIB
        again = cbo.post("/optimize/query", headers=headers, json={
            "query": "SELECT k, sum(x) FROM big GROUP BY k"}).json()
        bytes_read = sum(s["bytes"] for s in again["plan"]["scans"])
        assert (again["plan"]["distribution"]["strategy"] == "single") == (
            bytes_read < learned.threshold_bytes)
