"""Loads from s3:// against a real local S3 server (moto's server mode on loopback).

pyarrow's S3 filesystem talks HTTP to it exactly as to AWS: the load root carries the endpoint
(`?endpoint_override=…&scheme=http`), dummy credentials come from the environment.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from lakehouse.catalog.engine import catalog_engine
from lakehouse.catalog.lake_sql import SqlCatalog
from lakehouse.errors import Forbidden, InvalidInput
from lakehouse.load.loader import Loader, LoadRequest
from lakehouse.load.sources import parse_roots
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.parquet_files import read_file

BUCKET = "lake"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The query string of URIs on the local server, with its bucket made and emptied."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    options = f"endpoint_override={s3_endpoint}&scheme=http&region=us-east-1"
    fs, _ = pafs.FileSystem.from_uri(f"s3://{BUCKET}?{options}&allow_bucket_creation=true")
    fs.create_dir(BUCKET)
    for info in fs.get_file_info(pafs.FileSelector(BUCKET, recursive=True)):
        if info.type == pafs.FileType.File:
            fs.delete_file(info.path)
    return options


def _put(options: str, key: str, table: pa.Table) -> None:
    fs, path = pafs.FileSystem.from_uri(f"s3://{BUCKET}/{key}?{options}")
    pq.write_table(table, path, filesystem=fs, row_group_size=40)


def _table(start: int) -> pa.Table:
    return pa.table({"id": pa.array(range(start, start + 100), pa.int64()),
                     "amount": pa.array([Decimal(i) / 100 for i in range(start, start + 100)],
                                        pa.decimal128(10, 2)),
                     "city": pa.array(["Oslo", "Lima"] * 50, pa.string_view())})


def _loader(tmp_path: Path, options: str, storage_uri: str | None = None) -> Loader:
    engine = catalog_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    storage = StorageRoot.parse(storage_uri or (tmp_path / "warehouse").as_uri())
    if storage.is_local:
        storage.fs.create_dir(storage.base, recursive=True)
    roots = parse_roots([str(tmp_path / "imports"), f"s3://{BUCKET}/imports?{options}"])
    return Loader(SqlCatalog(engine), storage, roots)


def test_a_glob_of_s3_objects_loads_as_one_snapshot(s3: str, tmp_path: Path) -> None:
    _put(s3, "imports/2026/a.parquet", _table(0))
    _put(s3, "imports/2026/b.parquet", _table(100))
    _put(s3, "other/c.parquet", _table(200))
    loader = _loader(tmp_path, s3)

    result = loader.run(LoadRequest("acme", "sales", f"s3://{BUCKET}/imports/*/*.parquet"))
    assert (result.rows, result.source_files, result.snapshot) == (200, 2, 1)
    files = loader.catalog.files("acme", "sales")
    rows = pa.concat_tables([read_file(loader.storage, f.path) for f in files])
    assert rows.num_rows == 200 and rows.schema.field("city").type == pa.string()
    assert rows.schema.field("amount").type == pa.decimal128(10, 2)
    assert Decimal("1.99") in rows.column("amount").to_pylist()
    assert {i.split(":")[0] for i in rows.column("data_id").to_pylist()} == {"a", "b"}


def test_s3_sources_outside_the_roots_or_with_options_are_refused(s3: str,
                                                                  tmp_path: Path) -> None:
    _put(s3, "other/c.parquet", _table(0))
    loader = _loader(tmp_path, s3)
    with pytest.raises(Forbidden):
        loader.plan(LoadRequest("acme", "t", f"s3://{BUCKET}/other/c.parquet"))
    with pytest.raises(Forbidden):
        loader.plan(LoadRequest("acme", "t", f"s3://{BUCKET}/imports-not/c.parquet"))
    with pytest.raises(InvalidInput) as options:
        loader.plan(LoadRequest("acme", "t", f"s3://{BUCKET}/imports/c.parquet?{s3}"))
    assert options.value.code == "invalid_source"
    with pytest.raises(InvalidInput) as missing:
        loader.plan(LoadRequest("acme", "t", f"s3://{BUCKET}/imports/none.parquet"))
    assert missing.value.code == "source_not_found"
    assert loader.catalog.current_snapshot() == 0


def test_a_load_from_s3_into_an_s3_storage_root(s3: str, tmp_path: Path) -> None:
    _put(s3, "imports/d.parquet", _table(0))
    loader = _loader(tmp_path, s3, f"s3://{BUCKET}/warehouse?{s3}")
    result = loader.run(LoadRequest("acme", "remote", f"s3://{BUCKET}/imports/d.parquet"))
    assert result.rows == 100 and result.parts == 1
    [file] = loader.catalog.files("acme", "remote")
    assert file.byte_size > 0 and {s.column for s in file.stats} >= {"id", "amount"}
    assert read_file(loader.storage, file.path).num_rows == 100
