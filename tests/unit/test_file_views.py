"""DuckDB reading a relation's Parquet files itself: it may open exactly the plan's files, shows
what our scan would (upserts, retention, the log's rows, schema growth), and is used only where
its types are Arrow's."""
# ruff: noqa: S608 - the SQL here is the test's own, reaching for files it must not get

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.errors import InvalidInput
from lakehouse.executor import sandbox as sandbox_module
from lakehouse.executor.file_views import FileView, plain_paths, readable_by_duckdb
from lakehouse.executor.run import read_view
from lakehouse.executor.sandbox import Sandbox, run_sql
from lakehouse.executor.scan import ScanJob, file_schemas, file_view, scan_fragment
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.versions import replaced_versions

UTC_US = pa.timestamp("us", tz="UTC")


@pytest.fixture(autouse=True)
def pools(monkeypatch: pytest.MonkeyPatch) -> sandbox_module._Pool:
    files = sandbox_module._Pool(keys=sandbox_module.FILE_SETS_KEPT)
    monkeypatch.setattr(sandbox_module, "_FILES", files)
    monkeypatch.setattr(sandbox_module, "_POOL", sandbox_module._Pool())
    return files


def _write(path: Path, rows: dict[str, list[object]], schema: pa.Schema | None = None) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows, schema=schema), path)
    return str(path)


@pytest.mark.parametrize(("schemas", "readable"), [
    ([pa.schema([("a", pa.int64())])], True),
    ([pa.schema([("a", pa.int64())]), pa.schema([("a", pa.int64()), ("b", pa.string())])], True),
    ([pa.schema([("a", pa.int64())]), pa.schema([("a", pa.float64())])], False),
    ([pa.schema([("a", pa.null())])], False),
    ([pa.schema([("t", UTC_US)])], True),
    ([pa.schema([("t", pa.timestamp("ms"))])], False),
    ([pa.schema([("t", pa.timestamp("ns", tz="UTC"))])], False),
    ([pa.schema([("d", pa.date32()), ("m", pa.decimal128(12, 2))])], True),
    ([pa.schema([("l", pa.list_(pa.null()))])], False),
    ([pa.schema([("s", pa.struct([("x", pa.int64()), ("y", pa.list_(pa.string()))]))])], True),
    ([pa.schema([("s", pa.struct([("x", pa.int64())]))]),
      pa.schema([("s", pa.struct([("x", pa.int64()), ("y", pa.string())]))])], False),
    ([pa.schema([("u", pa.uint32())])], False),
    ([pa.schema([("k", pa.dictionary(pa.int32(), pa.string()))])], False),
])
def test_duckdb_reads_only_files_it_types_as_arrow(schemas: list[pa.Schema],
                                                  readable: bool) -> None:
    assert (readable_by_duckdb(schemas) is not None) == readable


def test_paths_duckdb_would_expand_are_left_to_our_scan() -> None:
    assert plain_paths(["/d/acme/t/day=2026-12-01/0001-0002.parquet"])
    for odd in ("/d/a*/x.parquet", "/d/a?/x.parquet", "/d/[ab]/x.parquet", "/d/{a,b}.parquet"):
        assert not plain_paths([odd])


def test_the_database_opens_the_plans_files_and_no_other(tmp_path: Path) -> None:
    mine = _write(tmp_path / "acme" / "t" / "a.parquet", {"x": [1, 2]})
    other = _write(tmp_path / "other" / "t" / "a.parquet", {"x": [99]})
    view = FileView((mine,), pa.schema([("x", pa.int64())]), ("x",))
    with Sandbox({"tenant_acme.t": view}, threads=1) as sandbox:
        rows = sandbox.run('SELECT sum(x) AS s FROM "tenant_acme"."t"')
        assert rows.to_pylist() == [{"s": 3}]
        for reach in (f"SELECT * FROM read_parquet('{other}')",
                      f"SELECT * FROM read_parquet('{tmp_path}/*/t/a.parquet')",
                      f"SELECT * FROM glob('{tmp_path}/*')",
                      "SELECT * FROM read_csv('/etc/passwd')",
                      f"COPY (SELECT 1) TO '{tmp_path}/out.csv'",
                      "SET enable_external_access = true",
                      f"SET allowed_paths = ['{other}']"):
            with pytest.raises(InvalidInput) as refused:
                sandbox.run(reach)
            assert mine not in refused.value.message
    assert not (tmp_path / "out.csv").exists()


def test_a_database_is_kept_for_the_same_files_only(tmp_path: Path,
                                                   pools: sandbox_module._Pool) -> None:
    first = _write(tmp_path / "a.parquet", {"x": [1]})
    second = _write(tmp_path / "b.parquet", {"x": [2]})
    schema = pa.schema([("x", pa.int64())])
    with Sandbox({"t": FileView((first,), schema, ("x",))}, threads=1) as one:
        one.run("SELECT * FROM t")
        database = one._con
    with Sandbox({"t": FileView((second,), schema, ("x",))}, threads=1) as two:
        assert two._con is not database
        with pytest.raises(InvalidInput):
            two.run(f"SELECT * FROM read_parquet('{first}')")
    with Sandbox({"t": FileView((first,), schema, ("x",))}, threads=1) as again:
        assert again._con is database
        assert again.run("SELECT * FROM t").to_pylist() == [{"x": 1}]


def test_the_view_shows_what_our_scan_shows(tmp_path: Path) -> None:
    """Upserts, retention, schema growth and a hive-looking folder, read both ways."""
    root = StorageRoot.parse(tmp_path.as_uri())
    old = {"data_id": ["a", "b", "c"], "_seq": [1, 2, 3], "_upsert": [False, False, False],
           "_timestamp": [0, 5_000_000, 9_000_000], "v": [1, 2, 3]}
    new = {**{k: v[:2] for k, v in old.items()}, "_seq": [4, 5], "_upsert": [True, True],
           "_timestamp": [9_500_000, 9_600_000], "v": [10, 20], "w": ["x", None]}
    kinds = {"data_id": pa.string(), "_seq": pa.int64(), "_upsert": pa.bool_(),
             "_timestamp": UTC_US, "v": pa.int64(), "w": pa.string()}
    paths = ("acme/t/day=2026-12-01/1.parquet", "acme/t/day=2026-12-02/2.parquet")
    for path, rows in zip(paths, (old, new), strict=True):
        _write(tmp_path / path, rows, pa.schema([(k, kinds[k]) for k in rows]))
    schema = pa.unify_schemas(file_schemas(root, paths))
    found = readable_by_duckdb(file_schemas(root, paths))
    assert found is not None
    upserts = pa.table({"data_id": ["a", "b"], "_seq": [4, 5], "_upsert": [True, True]})
    for columns in (None, ("v", "w"), ("data_id", "v")):
        job = ScanJob(root.uri, paths, schema, columns, None,
                      replaced=replaced_versions([upserts]), retention_cutoff_us=4_000_000,
                      duckdb_reads=found)
        # Through DuckDB as every scan's rows go: TIMESTAMPTZ comes out in its time zone.
        ours = run_sql({"t": scan_fragment(job)}, "SELECT * FROM t", 1)
        theirs = read_view(file_view(job))
        assert theirs.schema.names == ours.schema.names
        assert theirs.schema.equals(ours.schema, check_metadata=False)
        key = theirs.schema.names[0]
        assert theirs.sort_by(key).to_pylist() == ours.sort_by(key).to_pylist()
        assert "day" not in theirs.column_names


def test_the_logs_rows_join_the_files(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.parquet", {"x": [1, 2]})
    view = FileView((path,), pa.schema([("x", pa.int64())]), ("x",),
                    memory=pa.table({"x": [3]}))
    assert run_sql({"t": view}, "SELECT sum(x) AS s FROM t", 1).to_pylist() == [{"s": 6}]
