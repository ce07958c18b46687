"""The sample data sets of data/samples (the README's bulk-load examples): still what their
script writes, loadable from `data/samples/...` with the default settings, and loaded exactly:
each format through the load path into one table, then queried over HTTP against DuckDB
reading the sample Parquet files directly."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.query_results import json_bytes
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.load.loader import Loader, LoadRequest
from lakehouse.load.sources import resolve, roots_for
from lakehouse.storage.parquet_files import read_file
from tests.conftest import PASSWORD

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"
FORMATS = ("parquet", "csv", "ndjson")  # loaded into `events` in this order
EVENTS = 300
USERS = 40


def _readme_queries() -> list[str]:
    """The queries of the README's bulk-load section, as it shows them."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Bulk loads"):text.index("### Queries")]
    return [json.loads(line)["query"] for line in section.splitlines()
            if line.startswith('{"query": ')]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples",
                                                  SAMPLES / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_samples_are_what_the_script_writes() -> None:
    built: dict[str, bytes] = _generator().build()
    assert sorted(built) == ["events.csv", "events.ndjson", "events.parquet", "users.parquet"]
    for name, content in built.items():
        assert (SAMPLES / name).read_bytes() == content, (
            f"{name} differs from make_samples.py's output; run it and commit the result")
    assert sum(map(len, built.values())) < 200_000
    assert _generator().build() == built  # and the script writes the same bytes every time


def test_the_readme_sources_resolve_under_the_default_load_root(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the default DATA_DIR (data/, from the checkout) the README's relative sources are
    inside the default load root."""
    monkeypatch.chdir(REPO)
    roots = roots_for(Settings.for_tests(Path("data")))
    for name in ("events.parquet", "events.csv", "events.ndjson", "users.parquet"):
        [found] = resolve(f"data/samples/{name}", roots)
        assert (found.path, found.format) == (str(SAMPLES / name), name.split(".")[1])
    # The folder loads the data files and skips the generator script.
    assert [f.stem for f in resolve("data/samples", roots)] == [
        "events", "events", "events", "users"]


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    built = build_core(Settings.for_tests(tmp_path / "data", load_on_dask=False,
                                          query_on_dask=False, load_roots=str(SAMPLES)),
                       ingest=True)
    yield built
    built.close()


def _loader(core: Core) -> Loader:
    assert core.catalog is not None and core.storage is not None
    return Loader(core.catalog, core.storage, roots_for(core.settings), core.declarations)


def _loaded(core: Core, table: str, snapshot: int) -> pa.Table:
    """The rows of the files that `snapshot` added to `table`, in their files' own types."""
    assert core.catalog is not None and core.storage is not None
    before = {f.path for f in core.catalog.files("acme", table, snapshot - 1)}
    added = [f for f in core.catalog.files("acme", table, snapshot) if f.path not in before]
    assert added
    return pa.concat_tables([read_file(core.storage, f.path) for f in added])


def test_each_sample_format_loads_exactly_and_sums_like_duckdb(core: Core) -> None:
    """events.parquet makes the table (its types are exact); events.csv and events.ndjson then
    load into it and are parsed in its types: amount decimal128(10, 2), ts timestamp[us, UTC],
    day date32 in every loaded file, values equal to the Parquet file's."""
    expected = pq.read_table(SAMPLES / "events.parquet").sort_by("event_id")
    for snapshot, fmt in enumerate(FORMATS, start=1):
        result = _loader(core).run(LoadRequest("acme", "events", f"{SAMPLES}/events.{fmt}"))
        assert (result.snapshot, result.rows, result.source_files) == (snapshot, EVENTS, 1)
        rows = _loaded(core, "events", snapshot).sort_by("event_id")
        assert rows.num_rows == EVENTS
        for name in expected.column_names:
            assert rows.schema.field(name).type == expected.schema.field(name).type, (fmt, name)
        nested = ("device", "tags")
        for name in expected.column_names:
            if fmt == "csv" and name in nested:  # the CSV has no nested columns
                assert rows.column(name).null_count == EVENTS
            else:
                assert rows.column(name).equals(expected.column(name)), (fmt, name)
    users = _loader(core).run(LoadRequest("acme", "users", f"{SAMPLES}/users.parquet"))
    assert users.rows == USERS

    # The oracle: DuckDB over the sample files themselves, the events once per load.
    oracle_db = duckdb.connect()
    oracle_db.read_parquet([str(SAMPLES / "events.parquet")] * len(FORMATS)).create_view("events")
    oracle_db.read_parquet(str(SAMPLES / "users.parquet")).create_view("users")
    [(oracle,)] = oracle_db.read_parquet(str(SAMPLES / "events.parquet")).sum("amount").fetchall()
    assert str(oracle) == "17925.17"  # pins the sample data; make_samples.py changes it
    core.auth.create_user("reader", PASSWORD, "acme", Role.READER)
    headers = {"Authorization": f"Bearer {core.auth.login('reader', PASSWORD).access_token}"}
    with TestClient(create_app(Service.OPERATION, core), raise_server_exceptions=False) as op:
        def query(sql: str) -> list[list[Any]]:
            answer = op.post("/query/execute", headers=headers, json={"query": sql})
            assert answer.status_code == 200, answer.text
            rows: list[list[Any]] = answer.json()["rows"]
            return rows

        # One group per load (each stamps its rows with its own `_timestamp`): the same sum.
        per_load = query("SELECT count(*), sum(amount) FROM events GROUP BY _timestamp")
        assert per_load == [[EVENTS, str(oracle)]] * len(FORMATS)
        assert query("SELECT sum(amount) FROM events") == [[str(oracle * len(FORMATS))]]

        def oracle_rows(sql: str) -> list[list[Any]]:
            rows: list[list[Any]] = orjson.loads(json_bytes(
                {"rows": oracle_db.sql(sql).fetchall()}))["rows"]
            return rows

        # The README's queries answer as DuckDB does over the sample files.
        readme = _readme_queries()
        assert len(readme) == 2  # the sum per kind since a day, the join with users
        for sql in readme:
            assert len(oracle_rows(sql)) == 5 and query(sql) == oracle_rows(sql), sql
        # Times compare as times and days as dates.
        since = ("SELECT count(*), min(ts), max(ts), min(day) FROM events "
                 "WHERE ts >= TIMESTAMPTZ '2026-01-08 00:00:00+00'")
        assert query(since) == oracle_rows(since)
        assert query(since)[0][0] == query(
            "SELECT count(*) FROM events WHERE day >= DATE '2026-01-08'")[0][0] > 0
        # The nested fields, from the Parquet and the NDJSON load (the CSV has none: NULL).
        by_os = ("SELECT device.os, count(*), sum(len(tags)) FROM events "
                 "WHERE device IS NOT NULL GROUP BY 1 ORDER BY 1")
        single = duckdb.connect()
        single.read_parquet(str(SAMPLES / "events.parquet")).create_view("events")
        assert query(by_os) == [[os, 2 * n, 2 * tags] for os, n, tags in
                                single.sql(by_os).fetchall()]
