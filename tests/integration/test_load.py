"""Bulk loads for real: files under DATA_DIR → LZ4 Parquet under the storage root → a SQLite
catalog snapshot; through the domain, the `load` flow (HTTP, on Prefect's temporary server),
the CLI, and an in-process Dask cluster. Nothing is mocked."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from flows.ingest import flush_here
from flows.load import start_load
from flows.runs import RunWatch, watch
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.errors import Forbidden, InvalidInput
from lakehouse.load.loader import Loader, LoadRequest
from lakehouse.load.sources import parse_roots, roots_for
from lakehouse.schema.declared import parse_declaration
from lakehouse.storage.parquet_files import read_file
from tests.conftest import PASSWORD

ROWS = 50


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    # DATA_DIR (the default load root) is a folder of tmp_path, so tmp_path is outside it.
    built = build_core(Settings.for_tests(tmp_path / "data", load_on_dask=False))
    yield built
    built.close()


@pytest.fixture
def imports(core: Core) -> Path:
    folder = core.settings.data_dir / "imports"
    folder.mkdir()
    return folder


def _loader(core: Core) -> Loader:
    assert core.catalog is not None and core.storage is not None
    return Loader(core.catalog, core.storage, roots_for(core.settings),
                  core.declarations)


def _events(start: int = 0, rows: int = ROWS) -> pa.Table:
    return pa.table({
        "id": pa.array(range(start, start + rows), pa.int32()),
        "name": pa.array([f"n{i}" for i in range(start, start + rows)], pa.string_view()),
        "price": pa.array([Decimal(f"{i}.{i % 100:02d}") for i in range(start, start + rows)],
                          pa.decimal128(12, 2)),
        "day": pa.array([dt.date(2026, 1, 1 + i % 28) for i in range(start, start + rows)],
                        pa.date32()),
        "seen": pa.array([dt.datetime(2026, 1, 1 + i % 3, 12, tzinfo=dt.UTC)
                          for i in range(start, start + rows)], pa.timestamp("ns", tz="UTC")),
    })


def _write(table: pa.Table, path: Path) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(table, path, row_group_size=20)
    elif path.suffix == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table.cast(pa.schema([pa.field(f.name, pa.string()) if
                                              pa.types.is_string_view(f.type) else f
                                              for f in table.schema])), path)
    else:
        rows = table.to_pylist()
        path.write_text("".join(json.dumps({k: _plain(v) for k, v in row.items()}) + "\n"
                                for row in rows))
    return path


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _rows(core: Core, table: str) -> pa.Table:
    assert core.catalog is not None and core.storage is not None
    files = core.catalog.files("acme", table)
    return pa.concat_tables([read_file(core.storage, f.path) for f in files]).sort_by("data_id")


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".ndjson"])
def test_each_format_loads_as_one_snapshot_with_system_columns_and_stats(
        core: Core, imports: Path, suffix: str) -> None:
    source = _write(_events(), imports / f"events{suffix}")
    result = _loader(core).run(LoadRequest("acme", "events", str(source)))
    assert result.rows == ROWS and result.snapshot == 1 and result.source_files == 1

    assert core.catalog is not None
    snapshot = core.catalog.snapshot(1)
    assert snapshot is not None and snapshot.kind == "load" and snapshot.summary["rows"] == ROWS
    files = core.catalog.files("acme", "events")
    assert sum(f.row_count for f in files) == ROWS
    assert all(f.seq_min is None and f.seq_max is None for f in files)
    assert all(f.path.startswith("acme/events/day=") for f in files)
    stats = {s.column: s for s in files[0].stats}
    assert stats["id"].min == 0 and stats["id"].null_count == 0
    rows = _rows(core, "events")
    assert rows.schema.names[:4] == ["data_id", "_seq", "_timestamp", "_upsert"]
    assert sorted(rows.column("data_id").to_pylist())[:2] == ["events:1", "events:10"]
    assert set(rows.column("_seq").to_pylist()) == {0}
    assert set(rows.column("_upsert").to_pylist()) == {False}
    assert rows.schema.field("id").type == pa.int64()
    assert rows.schema.field("name").type == pa.string()


def test_a_glob_loads_every_matching_file_in_one_snapshot(core: Core, imports: Path) -> None:
    (imports / "2026").mkdir()
    _write(_events(0), imports / "a.parquet")
    _write(_events(ROWS), imports / "2026" / "b.parquet")
    _write(_events(2 * ROWS), imports / "2026" / "c.csv")
    (imports / "2026" / "notes.txt").write_text("not data")

    result = _loader(core).run(LoadRequest("acme", "many", str(imports / "**" / "*.parquet")))
    assert (result.rows, result.source_files, result.snapshot) == (2 * ROWS, 2, 1)
    # A folder loads every data file below it (the text file is skipped); formats may mix.
    again = _loader(core).run(LoadRequest("acme", "all", str(imports)))
    assert (again.rows, again.source_files) == (3 * ROWS, 3)
    ids = _rows(core, "all").column("data_id").to_pylist()
    assert len(set(ids)) == 3 * ROWS and "b:1" in ids and "c:1" in ids


def test_decimals_stay_exact_and_dates_and_timestamps_stay_typed(core: Core,
                                                                 imports: Path) -> None:
    _write(_events(), imports / "prices.parquet")
    _loader(core).run(LoadRequest("acme", "prices", str(imports / "prices.parquet")))
    rows = _rows(core, "prices")
    assert rows.schema.field("price").type == pa.decimal128(12, 2)
    assert rows.schema.field("day").type == pa.date32()
    assert rows.schema.field("seen").type == pa.timestamp("us", tz="UTC")
    assert Decimal("7.07") in rows.column("price").to_pylist()
    assert core.catalog is not None
    table = core.catalog.table("acme", "prices")
    assert table is not None
    # The catalog holds the table's real types, as its files do.
    types = {f["name"]: f["type"] for f in table.schema["fields"]}
    assert types["price"] == {"type": "decimal", "precision": 12, "scale": 2}
    assert types["day"] == "date"
    assert types["seen"] == {"type": "timestamp", "unit": "us", "tz": "UTC"}
    stats = {s.column: s for f in core.catalog.files("acme", "prices") for s in f.stats}
    assert stats["price"].min == 0.0 and stats["price"].max >= 49.49
    assert stats["day"].min == int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()) * 10**6

    # A CSV into the decimal table is parsed with the table's types: exact, not via floats.
    (imports / "more.csv").write_text("id,price\n1000,0.10\n1001,12345678.99\n")
    _loader(core).run(LoadRequest("acme", "prices", str(imports / "more.csv")))
    prices = _rows(core, "prices").column("price").to_pylist()
    assert Decimal("0.10") in prices and Decimal("12345678.99") in prices
    assert _rows(core, "prices").schema.field("price").type == pa.decimal128(12, 2)


def test_ndjson_dates_and_timestamps_parse_into_a_typed_table(core: Core,
                                                               imports: Path) -> None:
    """ISO text in NDJSON becomes the table's date and timestamp (pyarrow's JSON parser makes
    a date only from a number, so dates are read as text and cast); text that is no date is
    refused naming the file, and commits nothing."""
    _write(_events(), imports / "typed.parquet")
    _loader(core).run(LoadRequest("acme", "typed", str(imports / "typed.parquet")))
    (imports / "more.ndjson").write_text(
        '{"id": 1000, "price": 0.10, "day": "2026-02-03", "seen": "2026-02-03T04:05:06.5Z"}\n'
        '{"id": 1001, "price": 12345678.99, "day": null, "seen": null}\n')
    assert _loader(core).run(LoadRequest("acme", "typed", str(imports / "more.ndjson"))).rows == 2
    rows = _rows(core, "typed")
    assert [rows.schema.field(n).type for n in ("price", "day", "seen")] == [
        pa.decimal128(12, 2), pa.date32(), pa.timestamp("us", tz="UTC")]
    new = {r["id"]: r for r in rows.to_pylist() if r["id"] >= 1000}
    assert (new[1000]["price"], new[1000]["day"], new[1000]["seen"]) == (
        Decimal("0.10"), dt.date(2026, 2, 3),
        dt.datetime(2026, 2, 3, 4, 5, 6, 500_000, tzinfo=dt.UTC))
    assert (new[1001]["price"], new[1001]["day"]) == (Decimal("12345678.99"), None)

    assert core.catalog is not None
    before = core.catalog.current_snapshot()
    (imports / "bad.ndjson").write_text('{"id": 1002, "day": "2026-02-30"}\n')
    with pytest.raises(InvalidInput) as caught:
        _loader(core).run(LoadRequest("acme", "typed", str(imports / "bad.ndjson")))
    assert caught.value.code == "unparsable_source" and "bad.ndjson" in caught.value.message
    assert core.catalog.current_snapshot() == before


def test_view_and_large_types_become_plain_ones(core: Core, imports: Path) -> None:
    table = pa.table({"s": pa.array(["x", "y"], pa.string_view()),
                      "l": pa.array(["a", "b"], pa.large_string()),
                      "tags": pa.array([["a"], []], pa.large_list(pa.string_view())),
                      "d": pa.array(["p", "q"]).dictionary_encode()})
    pq.write_table(table, imports / "views.parquet")
    _loader(core).run(LoadRequest("acme", "views", str(imports / "views.parquet")))
    schema = _rows(core, "views").schema
    assert [schema.field(n).type for n in ("s", "l", "tags", "d")] == [
        pa.string(), pa.string(), pa.list_(pa.string()), pa.string()]
    assert _rows(core, "views").column("tags").to_pylist() == [["a"], []]


def test_data_id_and_timestamp_columns_key_and_partition_the_rows(core: Core,
                                                                  imports: Path) -> None:
    _write(_events(), imports / "keyed.parquet")
    result = _loader(core).run(LoadRequest("acme", "keyed", str(imports / "keyed.parquet"),
                                           data_id_column="id", timestamp_column="day"))
    assert result.partitions == 28
    rows = _rows(core, "keyed")
    assert "7" in rows.column("data_id").to_pylist()
    assert core.catalog is not None
    assert {f.partition for f in core.catalog.files("acme", "keyed")} >= {
        "day=2026-01-01", "day=2026-01-28"}
    with pytest.raises(InvalidInput) as missing:
        _loader(core).run(LoadRequest("acme", "keyed", str(imports / "keyed.parquet"),
                                      data_id_column="nope"))
    assert missing.value.code == "invalid_option"


def test_a_schema_conflict_names_the_column_and_both_types_and_commits_nothing(
        core: Core, imports: Path) -> None:
    _write(_events(), imports / "first.parquet")
    _loader(core).run(LoadRequest("acme", "typed", str(imports / "first.parquet")))
    assert core.catalog is not None
    before = core.catalog.current_snapshot()

    (imports / "bad.csv").write_text("id,price\nx,1.5\n")
    with pytest.raises(InvalidInput) as caught:
        _loader(core).run(LoadRequest("acme", "typed", str(imports / "bad.csv")))
    assert caught.value.code == "schema_conflict"
    assert caught.value.details["column"] == "id"
    assert (caught.value.details["table_type"], caught.value.details["source_type"]) == (
        "int64", "string")

    # Two files of one load that disagree: both named, nothing written.
    (imports / "mixed").mkdir()
    (imports / "mixed" / "a.csv").write_text("v\n1\n")
    (imports / "mixed" / "b.csv").write_text("v\nabc\n")
    with pytest.raises(InvalidInput) as mixed:
        _loader(core).run(LoadRequest("acme", "other", str(imports / "mixed" / "*.csv")))
    assert "a.csv" in mixed.value.message and "b.csv" in mixed.value.message

    # A declared table: its declaration fixes the types and (strict) the columns.
    assert core.declarations is not None
    core.declarations.declare("acme", parse_declaration({
        "table": "declared", "columns": {"id": "int64", "name": "string"},
        "required": ["id"]}))
    with pytest.raises(InvalidInput) as declared:
        _loader(core).run(LoadRequest("acme", "declared", str(imports / "first.parquet")))
    assert declared.value.code == "schema_conflict" and "price" in declared.value.message
    assert core.catalog.current_snapshot() == before
    assert core.catalog.table("acme", "other") is None


def test_bad_values_found_while_converting_commit_nothing(core: Core, imports: Path) -> None:
    # The first block (16 MiB) types the column as int64; a later value does not parse.
    pad = "x" * 100
    lines = ["n,pad"] + [f"{i},{pad}" for i in range(200_000)] + [f"oops,{pad}"]
    (imports / "late.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput) as caught:
        _loader(core).run(LoadRequest("acme", "late", str(imports / "late.csv")))
    assert caught.value.code == "unparsable_source" and "late.csv" in caught.value.message
    assert core.catalog is not None and core.catalog.current_snapshot() == 0

    assert core.declarations is not None
    core.declarations.declare("acme", parse_declaration({
        "table": "checked", "columns": {"n": "int64"}, "strict": False,
        "checks": [{"column": "n", "check": "lt", "value": 3}]}))
    (imports / "checked.csv").write_text("n\n1\n2\n5\n")
    with pytest.raises(InvalidInput) as failed:
        _loader(core).run(LoadRequest("acme", "checked", str(imports / "checked.csv")))
    assert failed.value.code == "check_failed" and "row 3" in failed.value.details["failures"]
    assert core.catalog.current_snapshot() == 0


@pytest.mark.parametrize("content", [b"PAR1 not really", b""])
def test_an_unparsable_source_is_refused(core: Core, imports: Path, content: bytes) -> None:
    (imports / "broken.parquet").write_bytes(content)
    with pytest.raises(InvalidInput) as caught:
        _loader(core).plan(LoadRequest("acme", "broken", str(imports / "broken.parquet")))
    assert caught.value.code == "unparsable_source"


def test_a_tenant_root_keeps_each_tenant_to_its_own_folder(tmp_path: Path) -> None:
    """LOAD_ROOTS=<imports>/{tenant}: acme loads from imports/acme and nowhere else, not even
    from imports/globex by a path, a '..' or a glob."""
    imports = tmp_path / "imports"
    for tenant in ("acme", "globex"):
        (imports / tenant).mkdir(parents=True)
        _write(_events(), imports / tenant / "e.parquet")
    settings = Settings.for_tests(tmp_path / "data", load_on_dask=False,
                                  load_roots=f"{imports}/{{tenant}}")
    core = build_core(settings)
    try:
        loader = _loader(core)
        assert loader.run(LoadRequest("acme", "mine", str(imports / "acme"))).rows == ROWS
        for source in (str(imports / "globex" / "e.parquet"),
                       str(imports / "acme" / ".." / "globex"), str(imports / "*" / "*"),
                       str(imports / "{tenant}" / "e.parquet")):
            with pytest.raises(Forbidden) as caught:
                loader.plan(LoadRequest("acme", "theirs", source))
            assert caught.value.code == "source_outside_load_roots", source
        assert loader.run(LoadRequest("globex", "mine", str(imports / "globex"))).rows == ROWS
        assert core.catalog is not None and core.catalog.table("acme", "theirs") is None
    finally:
        core.close()


def test_an_s3_root_takes_the_tenant_in_its_prefix_and_keeps_its_options() -> None:
    [root] = parse_roots(["s3://lake/imports/{tenant}?endpoint_override=127.0.0.1:9000"])
    mine = root.for_tenant("acme")
    assert (mine.uri, mine.base) == ("s3://lake/imports/acme?endpoint_override=127.0.0.1:9000",
                                     "lake/imports/acme")
    assert mine.holds("lake/imports/acme/e.parquet")
    assert not mine.holds("lake/imports/globex/e.parquet")


def test_sources_outside_the_load_roots_are_refused(core: Core, imports: Path,
                                                    tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _write(_events(), outside / "x.parquet")
    (imports / "link.parquet").symlink_to(outside / "x.parquet")
    for source in (str(outside / "x.parquet"), str(imports / ".." / ".." / "elsewhere"),
                   str(imports / "link.parquet"), str(imports / "*.parquet"), "/etc/passwd"):
        with pytest.raises(Forbidden) as caught:
            _loader(core).plan(LoadRequest("acme", "t", source, format="csv"))
        assert caught.value.code == "source_outside_load_roots", source

    # DATA_DIR is the default root, but the platform's own state in it is nobody's source:
    # the warehouse holds every tenant's tables, the catalog database password hashes.
    (imports / "link.parquet").unlink()
    _write(_events(), imports / "mine.parquet")
    _loader(core).run(LoadRequest("acme", "mine", str(imports / "mine.parquet")))
    data_dir = core.settings.data_dir
    for source in (str(data_dir / "warehouse"), str(data_dir / "warehouse" / "acme" / "**"),
                   str(data_dir / "catalog.db"), str(data_dir / "catalog.db-wal")):
        with pytest.raises(Forbidden):
            _loader(core).plan(LoadRequest("acme", "t", source, format="parquet"))
    everything = _loader(core).plan(LoadRequest("acme", "t", str(data_dir / "**" / "*.parquet")))
    assert [p.file.name for p in everything.parts] == [str(imports / "mine.parquet")]


def test_missing_sources_and_bad_names_are_refused(core: Core, imports: Path) -> None:
    cases = [(str(imports / "nope.parquet"), "t", "source_not_found"),
             (str(imports / "*.csv"), "t", "source_not_found"),
             (str(imports / "x.parquet"), "Bad Name", "invalid_table_name"),
             ("ftp://host/x.csv", "t", "invalid_source"),
             ("s3://bucket/x.csv?endpoint_override=evil:80", "t", "invalid_source")]
    for source, table, code in cases:
        with pytest.raises(InvalidInput) as caught:
            _loader(core).plan(LoadRequest("acme", table, source))
        assert caught.value.code == code, source
    _write(_events(), imports / "data.bin")
    with pytest.raises(InvalidInput) as unknown:
        _loader(core).plan(LoadRequest("acme", "t", str(imports / "data.bin")))
    assert unknown.value.code == "invalid_format"


# --- the flow: over HTTP, from the CLI, on Dask --------------------------------------------


def _client(core: Core) -> TestClient:
    core.auth.create_user("loader", PASSWORD, "acme", Role.WRITER)
    client = TestClient(create_app(Service.TENANT, core), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {core.auth.login('loader', PASSWORD).access_token}"
    return client


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of 20 rows, so the small test files make several parts each."""
    monkeypatch.setattr("lakehouse.load.loader.PART_ROWS", 20)


@pytest.mark.usefixtures("small_parts")
def test_post_data_load_runs_the_flow_and_answers_its_run_id(core: Core, imports: Path) -> None:
    _write(_events(), imports / "a.parquet")
    _write(_events(ROWS), imports / "b.parquet")
    client = _client(core)
    answer = client.post("/data/load", json={"table": "web", "source": str(imports)})
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    assert not run_id.startswith("local-")  # a real Prefect flow run
    # Followed on the Operation Node, whichever service started it.
    assert answer.headers["location"] == (
        f"http://testserver:{core.settings.operation_port}/runs/{run_id}")
    result = watch(run_id).wait(timeout_s=120)
    assert result["rows"] == 2 * ROWS and result["snapshot"] == 1
    assert watch(run_id).done == watch(run_id).total == 6  # 2 files of 3 row groups each
    assert core.catalog is not None
    assert sum(f.row_count for f in core.catalog.files("acme", "web")) == 2 * ROWS

    import asyncio
    import uuid

    from prefect.client.orchestration import get_client

    async def read() -> tuple[str, list[str], list[str]]:
        async with get_client() as prefect:
            run = await prefect.read_flow_run(uuid.UUID(run_id))
            tasks = [t.name for t in await prefect.read_task_runs() if t.flow_run_id == run.id]
            return run.name, list(run.tags), tasks

    name, tags, tasks = asyncio.run(read())
    assert name == f"load acme/web from {imports}" and "tenant:acme" in tags
    assert {"plan acme/web", "commit acme/web"} <= set(tasks)
    assert sum(1 for t in tasks if t.startswith("load acme/web part ")) == 6
    client.close()


def test_a_schema_conflict_names_files_as_the_caller_wrote_them_not_the_server_path(
        core: Core, imports: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the server's working directory: sources are relative to it
    _write(_events(), imports / "first.parquet")
    (imports / "nested").mkdir()
    (imports / "nested" / "bad.csv").write_text("id,price\nx,1.5\n")
    _loader(core).run(LoadRequest("acme", "typed", "data/imports/first.parquet"))
    client = _client(core)
    for source, shown in (("data/imports/nested/bad.csv", "data/imports/nested/bad.csv"),
                          ("data/imports/nested", "data/imports/nested/bad.csv"),
                          ("./data/imports/*/bad.csv", "./data/imports/nested/bad.csv")):
        answer = client.post("/data/load", json={"table": "typed", "source": source})
        assert answer.status_code == 400 and answer.json()["error"] == "schema_conflict"
        body = answer.json()
        assert body["message"] == (f"column id: the table has int64 but {shown} has string"), (
            source, body)
        assert body["details"]["source"] == shown
        assert str(tmp_path) not in answer.text  # never the server's absolute path
    client.close()


def test_post_data_load_answers_bad_input_with_4xx_and_commits_nothing(
        core: Core, imports: Path, tmp_path: Path) -> None:
    _write(_events(), imports / "first.parquet")
    (imports / "bad.csv").write_text("id\nx\n")
    client = _client(core)
    cases = [({"table": "web", "source": str(imports / "none.csv")}, 400, "source_not_found"),
             ({"table": "web", "source": str(tmp_path)}, 403, "source_outside_load_roots"),
             ({"table": "no such", "source": str(imports)}, 400, "invalid_table_name"),
             ({"table": "web", "source": str(imports), "format": "xls"}, 400, "invalid_format"),
             ({"table": "web"}, 422, "invalid_request")]
    for body, status, code in cases:
        answer = client.post("/data/load", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["error"] == code and set(answer.json()) == {
            "error", "message", "details"}
    first = client.post("/data/load", json={"table": "web",
                                            "source": str(imports / "first.parquet")})
    watch(first.json()["run_id"]).wait(timeout_s=120)
    conflict = client.post("/data/load", json={"table": "web", "source": str(imports / "bad.csv")})
    assert conflict.status_code == 400 and conflict.json()["error"] == "schema_conflict"
    assert core.catalog is not None and core.catalog.current_snapshot() == 1
    client.close()


@pytest.mark.usefixtures("small_parts")
def test_the_cli_loads_with_a_progress_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           ) -> None:
    from cli.main import app

    data = tmp_path / "data"
    (data / "in").mkdir(parents=True)
    _write(_events(), data / "in" / "cli.parquet")
    monkeypatch.chdir(tmp_path)
    for name, value in {"DATA_DIR": str(data), "ENVIRONMENT": "test", "LOAD_ON_DASK": "false",
                        "JWT_SECRET": "cli-test-secret-" + "z" * 32,
                        "PREFECT_API_URL": "http://127.0.0.1:9/api"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["load", "data/in/*.parquet", "--table", "cli",
                                      "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    assert "3/3" in result.output and "local-" in result.output  # no Prefect on port 9
    refused = CliRunner().invoke(app, ["load", str(tmp_path), "--table", "cli", "--tenant",
                                       "acme"])
    assert refused.exit_code == 1 and "outside the allowed load roots" in refused.output
    core = build_core(Settings())
    assert core.catalog is not None
    assert sum(f.row_count for f in core.catalog.files("acme", "cli")) == ROWS
    core.close()


@pytest.mark.usefixtures("small_parts")
def test_parts_run_on_a_dask_cluster(core: Core, imports: Path) -> None:
    from distributed import LocalCluster

    _write(_events(0, 200), imports / "big.parquet")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        mine: RunWatch = start_load(LoadRequest("acme", "dask", str(imports)), _loader(core),
                                    cluster.scheduler_address)
        result = mine.wait(timeout_s=120)
    assert result["rows"] == 200 and result["parts"] == 10
    assert core.catalog is not None
    assert sum(f.row_count for f in core.catalog.files("acme", "dask")) == 200


def test_records_written_to_a_loaded_table_keep_its_columns(tmp_path: Path) -> None:
    """A table made by a load, then written to over HTTP: the records must fit its columns, and
    the flush widens the catalog's schema instead of narrowing it to the records' fields."""
    core = build_core(Settings.for_tests(tmp_path / "data", load_on_dask=False), ingest=True)
    assert core.ingest is not None and core.flusher is not None and core.catalog is not None
    folder = core.settings.data_dir / "imports"
    folder.mkdir()
    source = _write(_events(), folder / "events.parquet")
    _loader(core).run(LoadRequest("acme", "events", str(source)))
    loaded = core.catalog.table("acme", "events")
    assert loaded is not None

    answer = core.ingest.write("acme", [
        {"data_id": "new-1", "table": "events", "payload": {"id": 7, "extra": "x"}},
        {"data_id": "new-2", "table": "events", "payload": {"id": "seven"}},
    ]).answer(timeout_s=10)
    assert (answer["accepted"], answer["rejected"]) == (1, 1)  # id is int64 from the load
    flush_here(core.flusher)
    table = core.catalog.table("acme", "events")
    assert table is not None
    names = [f["name"] for f in table.schema["fields"]]
    assert names[:len(loaded.schema["fields"])] == [f["name"] for f in loaded.schema["fields"]]
    assert names[-1] == "extra"
    core.close()
