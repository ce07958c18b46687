"""Tables broken before the catalog kept exact types are repaired (real SQLite catalog, files
and query engine): the catalog takes the files' exact types, a file in the JSON shadow types is
rewritten, one whose values do not convert is quarantined — out of queries, listed with its
reason in /metadata/tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.catalog.lake import AddFiles, Commit, DataFile, EnsureTable
from lakehouse.config import Settings
from lakehouse.ingest.flush_rows import SYSTEM_FIELDS
from lakehouse.optimizer.cost_model import CostModel
from lakehouse.storage.parquet_files import column_stats, write_file
from lakehouse.storage.type_repair import repair_tables
from tests.conftest import PASSWORD

SHADOW_SCHEMA = {"type": "struct", "fields": [{"name": "amount", "type": "float64"},
                                              {"name": "ts", "type": "string"}]}


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    built = build_core(Settings.for_tests(tmp_path / "data", query_on_dask=False))
    yield built
    built.close()


def _file(core: Core, name: str, first: int, amount: pa.Array, ts: pa.Array) -> DataFile:
    assert core.storage is not None
    count = len(amount)
    rows = pa.Table.from_arrays(
        [pa.array([f"{name}{i}" for i in range(count)]),
         pa.array(range(first, first + count), pa.int64()),
         pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * count, pa.timestamp("us", "UTC")),
         pa.array([False] * count), amount, ts],
        schema=pa.schema([*SYSTEM_FIELDS, pa.field("amount", amount.type),
                          pa.field("ts", ts.type)]))
    path = f"acme/events/day=2026-01-01/{name}.parquet"
    size = write_file(core.storage, path, rows)
    return DataFile(path, "day=2026-01-01", count, size, first, first + count - 1,
                    stats=column_stats(rows))


def test_a_table_broken_by_shadow_types_is_repaired_and_reads_again(core: Core) -> None:
    assert core.catalog is not None and core.storage is not None
    loaded = _file(core, "load", 1, pa.array([Decimal("1.50")], pa.decimal128(10, 2)),
                   pa.array([dt.datetime(2026, 1, 1)], pa.timestamp("us")))
    flushed = _file(core, "flush", 10, pa.array([12.25, None]),
                    pa.array(["2026-01-03T00:00:00", None]))
    garbage = _file(core, "bad", 20, pa.array([1.0]), pa.array(["yesterday"]))
    core.catalog.commit(Commit("load", (EnsureTable("acme", "events", SHADOW_SCHEMA),
                                        AddFiles("acme", "events", (loaded, flushed, garbage)))))
    engine = core.queries.engine
    with pytest.raises(Exception, match="merge"):  # the defect as users met it
        engine.run(engine.plan("acme", "SELECT count(*) FROM events", None, CostModel()))

    [repair] = repair_tables(core.catalog, core.storage)
    assert repair.upgraded == {"amount": "decimal(10, 2)", "ts": "timestamp[us]"}
    assert repair.rewritten == [flushed.path]
    assert [q["path"] for q in repair.quarantined] == [garbage.path]
    assert "yesterday" in repair.quarantined[0]["reason"]
    kept = repair.quarantined[0]["kept_at"]
    assert core.storage.fs.get_file_info(core.storage.full(kept)).size > 0  # a copy stays

    engine = core.queries.engine
    rows = engine.run(engine.plan("acme", "SELECT sum(amount) AS s, count(*) AS n, max(ts) AS t "
                                  "FROM events", None, CostModel())).to_pylist()
    assert rows == [{"s": Decimal("13.75"), "n": 3, "t": dt.datetime(2026, 1, 3)}]
    assert repair_tables(core.catalog, core.storage) == []  # nothing left to do

    core.auth.create_user("r", PASSWORD, "acme", Role.READER)
    token = core.auth.login("r", PASSWORD).access_token
    with TestClient(create_app(Service.CATALOG, core), raise_server_exceptions=False) as client:
        tables = client.get("/metadata/tables", headers={"Authorization": f"Bearer {token}"})
    assert tables.status_code == 200, tables.text
    [described] = tables.json()["tables"]
    assert described["schema"]["fields"][0]["type"] == {"type": "decimal", "precision": 10,
                                                        "scale": 2}
    [quarantined] = described["quarantined_files"]
    assert quarantined["path"] == garbage.path and "yesterday" in quarantined["reason"]
