"""One type system for loads, records and the catalog, on the real write path, catalog, files and
query engine (SQLite, RocksDB, DuckDB; nothing mocked).

The matrix writes every kind of JSON value into a column of every type a load brings, and holds
the promise: a record is either refused at once (4xx, into `_rejects` in a batch) or stored in
the column's own type, exactly; after the flush the table reads, with those values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.ingest.service import WritePathSchema
from lakehouse.load.loader import Loader, LoadRequest
from lakehouse.load.sources import roots_for
from lakehouse.optimizer.cost_model import CostModel
from tests.conftest import PASSWORD

UTC = dt.UTC
# The type of each loaded column, and a value of it in the loaded file.
LOADED: dict[str, tuple[pa.DataType, Any]] = {
    "int64": (pa.int64(), 1),
    "float64": (pa.float64(), 1.5),
    "decimal": (pa.decimal128(10, 2), Decimal("1.25")),
    "string": (pa.string(), "s"),
    "bool": (pa.bool_(), False),
    "date": (pa.date32(), dt.date(2026, 1, 1)),
    "timestamp": (pa.timestamp("us"), dt.datetime(2026, 1, 1, 12)),
    "timestamptz": (pa.timestamp("us", tz="UTC"), dt.datetime(2026, 1, 1, 12, tzinfo=UTC)),
    "time": (pa.time64("us"), dt.time(9, 0)),
    "list": (pa.list_(pa.int64()), [5]),
    "struct": (pa.struct([("a", pa.int64())]), {"a": 5}),
    "list_of_decimal": (pa.list_(pa.decimal128(6, 3)), [Decimal("1.000")]),
}
# Every kind of JSON value a record may carry.
VALUES: dict[str, Any] = {
    "int": 7,
    "float": 2.5,
    "long_float": 0.1234567890123456,
    "numeric_text": "12.34",
    "timestamp_text": "2026-01-03T10:00:00+02:00",
    "date_text": "2026-01-03",
    "time_text": "10:30:00",
    "text": "hello",
    "bool": True,
    "null": None,
    "list": [1, 2],
    "object": {"a": 1},
    "decimal_list": ["1.5", "2"],
}
# What reads back for each accepted pair; a pair not here must be refused at once.
ACCEPTED: dict[tuple[str, str], Any] = {
    ("int64", "int"): 7,
    ("int64", "float"): 2.5,  # the column widens to float64, as records' columns always have
    ("int64", "long_float"): 0.1234567890123456,
    ("float64", "int"): 7.0,
    ("float64", "float"): 2.5,
    ("float64", "long_float"): 0.1234567890123456,
    ("decimal", "int"): Decimal("7.00"),
    ("decimal", "float"): Decimal("2.50"),
    ("decimal", "numeric_text"): Decimal("12.34"),
    ("string", "numeric_text"): "12.34",
    ("string", "timestamp_text"): "2026-01-03T10:00:00+02:00",
    ("string", "date_text"): "2026-01-03",
    ("string", "time_text"): "10:30:00",
    ("string", "text"): "hello",
    ("bool", "bool"): True,
    ("date", "date_text"): dt.date(2026, 1, 3),
    ("timestamp", "timestamp_text"): dt.datetime(2026, 1, 3, 8),  # the offset, to UTC
    ("timestamp", "date_text"): dt.datetime(2026, 1, 3),
    ("timestamptz", "timestamp_text"): dt.datetime(2026, 1, 3, 8, tzinfo=UTC),
    ("timestamptz", "date_text"): dt.datetime(2026, 1, 3, tzinfo=UTC),
    ("time", "time_text"): dt.time(10, 30),
    ("list", "list"): [1, 2],
    ("struct", "object"): {"a": 1},
    ("list_of_decimal", "list"): [Decimal("1.000"), Decimal("2.000")],
    ("list_of_decimal", "decimal_list"): [Decimal("1.500"), Decimal("2.000")],
}
ACCEPTED.update({(column, "null"): None for column in LOADED})


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    built = build_core(Settings.for_tests(tmp_path / "data", load_on_dask=False,
                                          query_on_dask=False), ingest=True)
    yield built
    built.close()


def _load(core: Core, table: str, columns: dict[str, tuple[pa.DataType, Any]]) -> None:
    assert core.catalog is not None and core.storage is not None and core.ingest is not None
    folder = core.settings.data_dir / "imports"
    folder.mkdir(exist_ok=True)
    source = folder / f"{table}.parquet"
    pq.write_table(pa.table({name: pa.array([value], kind)
                             for name, (kind, value) in columns.items()}), source)
    loader = Loader(core.catalog, core.storage, roots_for(core.settings), core.declarations,
                    live_schema=WritePathSchema(core.ingest))
    loader.run(LoadRequest("acme", table, str(source)))


def _query(core: Core, sql: str) -> list[dict[str, Any]]:
    engine = core.queries.engine
    rows: list[dict[str, Any]] = engine.run(engine.plan("acme", sql, None, CostModel())
                                             ).to_pylist()
    return rows


def test_every_loaded_type_takes_each_json_value_exactly_or_refuses_it(core: Core) -> None:
    assert core.ingest is not None and core.flusher is not None
    for column, spec in LOADED.items():
        _load(core, f"t_{column}", {"v": spec})
    records = [{"data_id": f"{column}:{kind}", "table": f"t_{column}", "payload": {"v": value}}
               for column in LOADED for kind, value in VALUES.items()]
    answer = core.ingest.write("acme", records).answer(timeout_s=30)
    # The answer lists the records not stored; every other one is durable.
    outcome = {record["data_id"]: record for record in answer["records"]}
    for column in LOADED:
        for kind in VALUES:
            found = outcome.get(f"{column}:{kind}")
            if (column, kind) in ACCEPTED:
                assert found is None, (column, kind, found)
            else:
                assert found is not None, (column, kind)
                assert found["status"] == "rejected", (column, kind, found)
                assert found["error"] in ("type_conflict", "invalid_value"), found
                assert "payload.v" in found["reason"], found

    def read_all() -> dict[str, Any]:
        got = {}
        for column in LOADED:
            for row in _query(core, "SELECT data_id, v FROM t_" + column):  # noqa: S608
                got[row["data_id"]] = row["v"]
        return got

    before = read_all()  # rows still in the log, read through the same types
    flush_here(core.flusher)
    after = read_all()
    assert core.ingest.table_stats("acme")  # the write path still knows every table
    for (column, kind), expected in ACCEPTED.items():
        assert after[f"{column}:{kind}"] == expected, (column, kind)
        assert before[f"{column}:{kind}"] == expected, (column, kind)
    # The catalog says what the files hold.
    assert core.catalog is not None
    decimal_table = core.catalog.table("acme", "t_decimal")
    assert decimal_table is not None
    assert decimal_table.schema["fields"][0]["type"] == {"type": "decimal", "precision": 10,
                                                         "scale": 2}


def test_the_reported_steps_end_in_a_400_and_a_working_query(core: Core) -> None:
    """The issue's tour: a load of decimal and timestamp columns, then a JSON record whose
    amount needs rounding: refused at once, and the table still reads after the flush."""
    core.auth.create_user("w", PASSWORD, "acme", Role.WRITER)
    token = core.auth.login("w", PASSWORD).access_token
    headers = {"Authorization": f"Bearer {token}"}
    _load(core, "events", {"amount": (pa.decimal128(10, 2), Decimal("1.50")),
                           "ts": (pa.timestamp("us"), dt.datetime(2026, 1, 1))})
    with TestClient(create_app(Service.TENANT, core), raise_server_exceptions=False) as tn, \
            TestClient(create_app(Service.OPERATION, core),
                       raise_server_exceptions=False) as op:
        bad = tn.post("/data", headers=headers, json={
            "data_id": "e3", "table": "events",
            "payload": {"amount": 12.345, "ts": "2026-01-03T00:00:00"}})
        assert bad.status_code == 400, bad.text
        body = bad.json()
        assert body["error"] == "invalid_value"
        assert "payload.amount" in body["message"] and "12.345" in body["message"]
        assert "decimal(10, 2)" in body["message"]
        good = tn.post("/data", headers=headers, json={
            "data_id": "e4", "table": "events",
            "payload": {"amount": 12.34, "ts": "2026-01-03T00:00:00"}})
        assert good.status_code == 201, good.text
        before = tn.get("/data/retrieve", headers=headers,
                        params={"data_id": "e4", "table": "events"}).json()
        assert core.flusher is not None
        flush_here(core.flusher)
        after = tn.get("/data/retrieve", headers=headers,
                       params={"data_id": "e4", "table": "events"}).json()
        assert before.pop("flushed") is False and after.pop("flushed") is True
        assert before == after  # reads are the same before and after the flush
        assert after["payload"]["amount"] in ("12.34", 12.34)
        answer = op.post("/query/execute", headers=headers, json={
            "query": "SELECT count(*), sum(amount), max(ts) FROM events"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"] == [[2, "13.84", "2026-01-03T00:00:00"]] or (
            answer.json()["rows"][0][:2] == [2, "13.84"])
    tables = core.catalog.table("acme", "events") if core.catalog is not None else None
    assert tables is not None
    assert [f["type"] for f in tables.schema["fields"]] == [
        {"type": "decimal", "precision": 10, "scale": 2},
        {"type": "timestamp", "unit": "us", "tz": None}]


def test_a_load_cannot_change_a_column_that_unflushed_records_hold(core: Core) -> None:
    """Records not flushed yet gave `x` the type int64; a load bringing `x` as text is refused
    (it would leave the flush files it cannot write), one widening it to a decimal is taken
    and the unflushed integers are written as decimals."""
    assert core.ingest is not None and core.flusher is not None and core.catalog is not None
    core.ingest.write("acme", [{"data_id": "r1", "table": "mixed", "payload": {"x": 3}}]
                      ).answer(timeout_s=10)
    with pytest.raises(Exception, match="x") as refused:
        _load(core, "mixed", {"x": (pa.string(), "three")})
    assert getattr(refused.value, "code", "") == "schema_conflict"
    _load(core, "mixed", {"x": (pa.decimal128(5, 1), Decimal("1.5"))})
    late = core.ingest.write("acme", [
        {"data_id": "r2", "table": "mixed", "payload": {"x": 2.25}},  # more decimals: refused
        {"data_id": "r3", "table": "mixed", "payload": {"x": "4.5"}}]).answer(timeout_s=10)
    assert [(r["data_id"], r["status"]) for r in late["records"]] == [("r2", "rejected")]
    flush_here(core.flusher)
    rows = _query(core, "SELECT data_id, x FROM mixed ORDER BY data_id")
    assert {r["data_id"]: r["x"] for r in rows}.items() >= {
        "r1": Decimal("3.0"), "r3": Decimal("4.5")}.items()
    schema = core.catalog.table("acme", "mixed")
    assert schema is not None
    assert schema.schema["fields"][0]["type"]["type"] == "decimal"


def test_a_declaration_may_use_exact_types(core: Core) -> None:
    """A declared table's decimal, date and timestamp columns take JSON values like a loaded
    table's, and its value checks compare the converted values."""
    assert core.declarations is not None and core.ingest is not None
    assert core.flusher is not None
    from lakehouse.schema.declared import parse_declaration

    core.declarations.declare("acme", parse_declaration({
        "table": "people", "columns": {"name": "string", "born": "date",
                                       "paid": "decimal(8, 2)", "seen": "timestamptz"},
        "checks": [{"column": "paid", "check": "ge", "value": 0}]}))
    answer = core.ingest.write("acme", [
        {"data_id": "p1", "table": "people",
         "payload": {"name": "a", "born": "1990-05-01", "paid": "10.50",
                     "seen": "2026-01-01T00:00:00Z"}},
        {"data_id": "p2", "table": "people", "payload": {"name": "b", "paid": -1}},
        {"data_id": "p3", "table": "people", "payload": {"name": "c", "born": "May 1"}},
    ]).answer(timeout_s=10)
    assert [(r["data_id"], r["error"]) for r in answer["records"]] == [
        ("p2", "check_failed"), ("p3", "invalid_value")]
    flush_here(core.flusher)
    rows = _query(core, "SELECT name, born, paid, seen FROM people")
    assert rows == [{"name": "a", "born": dt.date(1990, 5, 1), "paid": Decimal("10.50"),
                     "seen": dt.datetime(2026, 1, 1, tzinfo=UTC)}]


def test_a_parquet_text_column_loads_into_exact_columns_by_the_records_rules(core: Core,
                                                                            ) -> None:
    """Loads into an existing table follow the rules records do: ISO text into a timestamp
    (an offset converted to UTC), numeric text into a decimal exactly; a value that would need
    rounding refuses the load, naming the column, and commits nothing."""
    _load(core, "typed", {"ts": (pa.timestamp("us"), dt.datetime(2026, 1, 1)),
                          "amount": (pa.decimal128(10, 2), Decimal("1.00"))})
    _load(core, "typed", {"ts": (pa.string(), "2026-01-03T10:00:00+02:00"),
                          "amount": (pa.string(), "12.34")})
    rows = _query(core, "SELECT ts, amount FROM typed ORDER BY ts")
    assert rows == [{"ts": dt.datetime(2026, 1, 1), "amount": Decimal("1.00")},
                    {"ts": dt.datetime(2026, 1, 3, 8), "amount": Decimal("12.34")}]
    assert core.catalog is not None
    snapshot = core.catalog.current_snapshot()
    with pytest.raises(Exception, match="amount") as refused:
        _load(core, "typed", {"amount": (pa.string(), "12.345")})
    assert getattr(refused.value, "code", "") == "unparsable_source"
    assert core.catalog.current_snapshot() == snapshot


def test_a_load_refuses_to_commit_over_records_that_changed_the_table_meanwhile(
        core: Core) -> None:
    """Planned, then a record gives `ts` the type text, then the load (which brings `ts` as a
    timestamp) commits: refused, so the flush never meets text it cannot convert."""
    assert core.catalog is not None and core.storage is not None and core.ingest is not None
    assert core.flusher is not None
    _load(core, "race", {"a": (pa.int64(), 1)})
    folder = core.settings.data_dir / "imports"
    pq.write_table(pa.table({"ts": pa.array([dt.datetime(2026, 1, 1)], pa.timestamp("us"))}),
                   folder / "ts.parquet")
    loader = Loader(core.catalog, core.storage, roots_for(core.settings), core.declarations,
                    live_schema=WritePathSchema(core.ingest))
    plan = loader.plan(LoadRequest("acme", "race", str(folder / "ts.parquet")))
    from lakehouse.load.loader import run_parts

    results = run_parts(plan)
    core.ingest.write("acme", [{"data_id": "r", "table": "race", "payload": {"ts": "hello"}}]
                      ).answer(timeout_s=10)
    with pytest.raises(Exception, match="load again") as refused:
        loader.commit(plan, results)
    assert getattr(refused.value, "code", "") == "table_changed"
    flush_here(core.flusher)
    assert _query(core, "SELECT ts FROM race WHERE data_id = 'r'") == [{"ts": "hello"}]


def test_a_declared_table_that_is_not_strict_keeps_and_checks_its_other_fields(
        core: Core) -> None:
    assert core.declarations is not None and core.ingest is not None
    assert core.flusher is not None
    from lakehouse.schema.declared import parse_declaration

    core.declarations.declare("acme", parse_declaration(
        {"table": "loose", "columns": {"name": "string"}, "strict": False}))
    _load(core, "loose", {"name": (pa.string(), "x"),
                          "at": (pa.timestamp("us", tz="UTC"), dt.datetime(2026, 1, 1,
                                                                           tzinfo=UTC))})
    answer = core.ingest.write("acme", [
        {"data_id": "l1", "table": "loose", "payload": {"name": "a", "extra": 5,
                                                         "at": "2026-01-02T00:00:00Z"}},
        {"data_id": "l2", "table": "loose", "payload": {"name": "b", "at": "soon"}},
    ]).answer(timeout_s=10)
    assert [(r["data_id"], r["error"]) for r in answer["records"]] == [("l2", "invalid_value")]
    flush_here(core.flusher)
    assert _query(core, "SELECT extra, at FROM loose WHERE data_id = 'l1'") == [
        {"extra": 5, "at": dt.datetime(2026, 1, 2, tzinfo=UTC)}]


def test_a_load_from_another_process_cannot_stop_the_flush(core: Core) -> None:
    """`lakehouse load` runs in its own process and cannot see unflushed records: it makes
    `ts` a timestamp while a record holding `ts: "hello"` waits in the log. The flush keeps
    that record in the tenant's `_rejects` (raw, with the reason), writes the rest — every
    other tenant's rows included — and moves on; the table reads throughout."""
    assert core.catalog is not None and core.storage is not None and core.ingest is not None
    assert core.flusher is not None
    core.ingest.write("acme", [
        {"data_id": "bad", "table": "ev", "payload": {"ts": "hello"}},
        {"data_id": "good", "table": "ev", "payload": {"ts": "2026-01-02T00:00:00"}}]
                      ).answer(timeout_s=10)
    core.ingest.write("globex", [{"data_id": "g", "table": "other", "payload": {"a": 1}}]
                      ).answer(timeout_s=10)
    folder = core.settings.data_dir / "imports"
    folder.mkdir(exist_ok=True)
    pq.write_table(pa.table({"ts": pa.array([dt.datetime(2026, 1, 1)], pa.timestamp("us"))}),
                   folder / "other_process.parquet")
    elsewhere = Loader(core.catalog, core.storage, roots_for(core.settings), core.declarations)
    elsewhere.run(LoadRequest("acme", "ev", str(folder / "other_process.parquet")))
    core.ingest.refresh_schemas()  # what the flush trigger's poll does
    assert sorted(r["data_id"] for r in _query(core, "SELECT data_id FROM ev")) == [
        "good", "other_process:1"]  # the record that no longer fits is left out, not a failure
    result = flush_here(core.flusher)
    assert set(result["tables"]) == {"acme/ev", "globex/other"}
    assert flush_here(core.flusher)["rows"] == 0  # nothing left behind: the log moves on
    assert sorted(r["data_id"] for r in _query(core, "SELECT data_id FROM ev")) == [
        "good", "other_process:1"]
    [kept] = _query(core, "SELECT data_id, error, reason, raw FROM _rejects")
    assert kept["data_id"] == "bad" and kept["error"] == "type_changed"
    assert "hello" in kept["raw"] and "timestamp" in kept["reason"]
