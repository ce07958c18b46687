"""The serving store's contract, run against the real ClickHouse engine embedded through
clickhouse-connect's chDB backend. The `http://` backend (a ClickHouse server) takes the same
class and client API, and is not run here: no current ClickHouse server can be installed on
this machine — Debian's `clickhouse-server` is 18.16 (2018), older than what a mirror uses
(DateTime64, Date32, insert deduplication tokens), and PyPI and npm ship no server. The
embedded backend runs the same engine (ClickHouse 26.9) and the same SQL; what only the
server path has — the HTTP transport and its settings handling in clickhouse-connect — is
what stays untested."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from lakehouse.errors import ConfigurationError
from lakehouse.serving.columns import NotServable, column_type, create_table
from lakehouse.serving.dialect import MirrorView, visible
from lakehouse.serving.mirror import mirrored
from lakehouse.serving.store import open_store

UTC = dt.UTC


def _rows(ids: list[str], seqs: list[int], amounts: list[float | None],
          upserts: list[bool] | None = None) -> pa.Table:
    at = dt.datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    return pa.table({
        "data_id": pa.array(ids, pa.string()),
        "_seq": pa.array(seqs, pa.uint64()),
        "_timestamp": pa.array([at] * len(ids), pa.timestamp("us", tz="UTC")),
        "_upsert": pa.array(upserts or [False] * len(ids), pa.bool_()),
        "amount": pa.array(amounts, pa.float64()),
    })


@pytest.fixture
def tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def test_a_mirror_keeps_every_row_once_and_shows_the_newest_versions(
        embedded_clickhouse: Any, tenant: str) -> None:
    store = embedded_clickhouse
    # A bulk load's rows: no log sequence, and a key repeated (no upsert): both are rows.
    first = mirrored(_rows(["a", "b", "b"], [0, 0, 0], [1.5, None, 2.0]), 1)
    store.ensure_table(tenant, "events", first.schema)
    store.ensure_table(tenant, "events", first.schema)  # again: nothing changes
    assert store.tables(tenant) == ["events"]
    store.insert(tenant, "events", first, "file-1")
    store.insert(tenant, "events", first, "file-1")  # a catch-up repeating it
    assert store.count(tenant, "events", MirrorView((1,))) == 3
    # An upsert of a: the loaded version goes.
    store.insert(tenant, "events", mirrored(_rows(["a"], [3], [9.0], [True]), 2), "file-2")
    assert store.count(tenant, "events", MirrorView((1, 2))) == 4  # (not told of the upsert)
    newest = MirrorView((1, 2), upserts=True)
    assert store.count(tenant, "events", newest) == 3
    assert store.held_files(tenant, "events") == {1, 2}
    rows = visible(store.database(tenant), "events", newest).subquery("v")
    got = store.read(exp.select("data_id", "_seq", "_timestamp", "amount").from_(rows)
                     .order_by("data_id", "amount").sql(dialect="clickhouse"),
                     parameters={"files": list(newest.files)})
    assert got.column("data_id").to_pylist() == ["a", "b", "b"]
    assert got.column("_seq").to_pylist() == [3, 0, 0]
    assert sorted(got.column("amount").to_pylist(), key=str) == [2.0, 9.0, None]
    assert got.schema.field("_timestamp").type == pa.timestamp("us", tz="UTC")
    assert got.column("_timestamp")[0].as_py() == dt.datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    # A compaction's output of both files: the old files' rows go once no query reads them.
    compacted = mirrored(_rows(["a", "b", "b"], [3, 0, 0], [9.0, 2.0, None], [True, False,
                                                                             False]), 3)
    store.insert(tenant, "events", compacted, "file-3")
    assert store.count(tenant, "events", MirrorView((3,), upserts=True)) == 3
    store.delete_files(tenant, "events", [1, 2, *range(100, 1_300)])  # in batches
    assert store.held_files(tenant, "events") == {3}
    assert store.count(tenant, "events", MirrorView((1, 2, 3))) == 3


def test_tenants_have_databases_of_their_own(embedded_clickhouse: Any, tenant: str) -> None:
    other = tenant + "x"
    embedded_clickhouse.ensure_table(tenant, "orders", _rows([], [], []).schema)
    assert embedded_clickhouse.tables(other) == []
    assert embedded_clickhouse.count(other, "orders", MirrorView((1,))) == 0
    assert embedded_clickhouse.held_files(other, "orders") == frozenset()
    embedded_clickhouse.drop_table(tenant, "orders")
    assert embedded_clickhouse.tables(tenant) == []


@pytest.mark.parametrize("sql", [
    "INSERT INTO system.one VALUES (1)",
    "CREATE TABLE x (a Int8) ENGINE = Memory",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:9/x', 'CSV')",
    "SELECT * FROM remote('127.0.0.1:9000', system.one)",
    "SELECT 1 SETTINGS readonly = 0",
])
def test_reads_are_read_only(embedded_clickhouse: Any, sql: str) -> None:
    with pytest.raises(Exception, match=r"(?i)readonly|read-only|Cannot modify"):
        embedded_clickhouse.read(sql)


@pytest.mark.parametrize(("arrow", "clickhouse"), [
    (pa.int32(), "Nullable(Int32)"),
    (pa.uint8(), "Nullable(UInt8)"),
    (pa.float32(), "Nullable(Float32)"),
    (pa.bool_(), "Nullable(Bool)"),
    (pa.decimal128(12, 2), "Nullable(Decimal(12, 2))"),
    (pa.string_view(), "Nullable(String)"),
    (pa.date32(), "Nullable(Date32)"),
    (pa.timestamp("us", tz="Europe/Oslo"), "Nullable(DateTime64(6, 'Europe/Oslo'))"),
    (pa.timestamp("us"), "Nullable(DateTime64(6, 'UTC'))"),
    (pa.list_(pa.int64()), "Array(Nullable(Int64))"),
])
def test_columns_of_each_type(arrow: pa.DataType, clickhouse: str) -> None:
    assert column_type(arrow) == clickhouse


def test_what_clickhouse_cannot_hold_is_refused_by_name() -> None:
    with pytest.raises(NotServable, match="struct"):
        column_type(pa.struct([("a", pa.int8())]))
    with pytest.raises(NotServable, match="data_id"):
        create_table("acme", "t", pa.schema([("x", pa.int8())]))
    schema = _rows([], [], []).schema.append(pa.field("bad`name", pa.int8()))
    with pytest.raises(Exception, match="cannot name"):
        create_table("acme", "t", schema)


def test_a_dsn_is_embedded_or_a_server_and_one_embedded_folder_a_process(
        embedded_clickhouse: Any, tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match="chdb:///path"):
        open_store("mysql://x")
    with pytest.raises(ConfigurationError, match="one folder per process"):
        open_store(f"chdb://{tmp_path}/other")


def test_retention_becomes_a_ttl_and_goes_again(embedded_clickhouse: Any, tenant: str) -> None:
    store = embedded_clickhouse
    store.set_retention(tenant, "kept", 86_400)  # no mirror yet: nothing to do
    store.ensure_table(tenant, "kept", _rows([], [], []).schema)
    store.set_retention(tenant, "kept", None)  # none to remove: nothing to do

    def ddl() -> str:
        found = store.read("SELECT create_table_query AS q FROM system.tables "  # noqa: S608
                           f"WHERE database = '{store.database(tenant)}' AND name = 'kept'")
        return str(found.column("q")[0].as_py())

    store.set_retention(tenant, "kept", 86_400)
    assert "TTL _timestamp + toIntervalSecond(86400) WHERE NOT ifNull(_upsert, false)" in ddl()
    store.set_retention(tenant, "kept", 3_600)
    assert "toIntervalSecond(3600)" in ddl()
    store.set_retention(tenant, "kept", None)
    assert " TTL " not in ddl()


def test_a_read_that_fails_midway_leaves_the_next_read_whole(embedded_clickhouse: Any,
                                                             tenant: str) -> None:
    """chDB hands the remains of a failed query's Arrow answer to the next one; the store
    takes them away, so the next caller gets its own answer."""
    store = embedded_clickhouse
    rows = mirrored(_rows(["a", "b", "c"], [1, 2, 3], [1.0, 2.0, None]), 1)
    store.ensure_table(tenant, "events", rows.schema)
    store.insert(tenant, "events", rows, "file-1")
    target = f"`{store.database(tenant)}`.events"
    overflow = (f"SELECT accurateCast(toInt128(_seq) * toInt128({2**62}), "  # noqa: S608
                f"'Nullable(Int64)') AS x FROM {target}")
    for _ in range(2):
        with pytest.raises(Exception, match="cannot be safely converted"):
            store.read(overflow)
        found = store.read(f"SELECT data_id FROM {target} ORDER BY data_id")  # noqa: S608
        assert found.column("data_id").to_pylist() == ["a", "b", "c"]


def test_retention_keeps_an_upsert_older_than_the_version_it_replaced(
        embedded_clickhouse: Any, tenant: str) -> None:
    """A record's own timestamp may make an upsert older than the version it replaced: the
    TTL removes expired rows but not upserts, so the old version stays hidden, as in our
    scans (the query filters expired rows itself)."""
    store = embedded_clickhouse
    now = dt.datetime.now(UTC)
    current = mirrored(_rows(["k1", "k2"], [1, 2], [1.0, 2.0]), 1)
    upsert = _rows(["k1"], [3], [9.0], [True])
    upsert = mirrored(upsert.set_column(2, "_timestamp", pa.array(
        [now - dt.timedelta(days=30)], pa.timestamp("us", tz="UTC"))), 2)
    current = current.set_column(2, "_timestamp", pa.array([now, now],
                                                          pa.timestamp("us", tz="UTC")))
    store.ensure_table(tenant, "kept", current.schema)
    store.insert(tenant, "kept", current, "file-1")
    store.insert(tenant, "kept", upsert, "file-2")
    store.set_retention(tenant, "kept", 86_400)
    store._client.command(f"OPTIMIZE TABLE `{store.database(tenant)}`.kept FINAL")
    cutoff = int((now - dt.timedelta(days=1)).timestamp() * 1_000_000)
    view = MirrorView((1, 2), upserts=True, cutoff=cutoff)
    rows = visible(store.database(tenant), "kept", view).subquery("v")
    found = store.read(exp.select("data_id").from_(rows).sql(dialect="clickhouse"),
                       parameters={"files": [1, 2]})
    assert found.column("data_id").to_pylist() == ["k2"]
