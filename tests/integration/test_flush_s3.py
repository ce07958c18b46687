"""The flush with an s3:// storage root, against a real local S3 server (moto's server mode).

The S3 service itself cannot run here, so moto's S3 server on loopback stands in for it; pyarrow
talks to it over HTTP exactly as it would to S3.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from api.app import create_app
from api.core import build_core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import PASSWORD


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


def _bucket(endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch,
            ) -> tuple[str, pafs.FileSystem]:
    """A storage root in a new bucket of the local S3 server, and a filesystem to look in it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    root = (f"s3://{bucket}/warehouse?endpoint_override={endpoint}&scheme=http"
            "&region=us-east-1&allow_bucket_creation=true")
    fs, _ = pafs.FileSystem.from_uri(root)
    fs.create_dir(bucket)
    return root, fs


def test_flush_to_s3_and_read_back(tmp_path: Path, s3_endpoint: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root, fs = _bucket(s3_endpoint, "lake", monkeypatch)
    core = build_core(Settings.for_tests(tmp_path, storage_root=root), ingest=True)
    assert core.ingest is not None and core.flusher is not None and core.catalog is not None
    core.ingest.write("acme", [{"data_id": f"r{i}", "payload": {"i": i, "s": f"v{i}"}}
                               for i in range(50)]).answer(timeout_s=10)
    result = flush_here(core.flusher)
    assert result["rows"] == 50 and result["files"] == 1
    [file] = core.catalog.files("acme", "records")
    info = fs.get_file_info(f"lake/warehouse/{file.path}")
    assert info.type == pafs.FileType.File and info.size == file.byte_size

    core.auth.create_user("reader", PASSWORD, "acme", Role.READER)
    client = TestClient(create_app(Service.TENANT, core))
    client.headers["Authorization"] = (
        f"Bearer {core.auth.login('reader', PASSWORD).access_token}")
    got = client.get("/data/retrieve", params={"data_id": "r7"}).json()
    assert got["payload"] == {"i": 7, "s": "v7"} and got["flushed"] is True
    assert len(client.get("/data", params={"limit": 100}).json()["records"]) == 50
    client.close()
    core.close()


def test_compaction_and_cleanup_on_s3(tmp_path: Path, s3_endpoint: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from lakehouse.catalog.table_options import SqlTableOptions
    from lakehouse.compaction.planner import plan_compaction
    from lakehouse.compaction.policy import CompactionPolicy
    from lakehouse.storage.cleanup import delete_dead_files, delete_orphans
    from lakehouse.storage.maintenance import compact_group, table_files
    from lakehouse.storage.rewrite import rewrite_group
    from tests.snapshot_scan import scan_table

    root, fs = _bucket(s3_endpoint, "compact", monkeypatch)
    core = build_core(Settings.for_tests(tmp_path, storage_root=root), ingest=True)
    assert core.ingest and core.flusher and core.catalog and core.storage
    for n in range(3):
        core.ingest.write("acme", [{"data_id": f"r{n}-{i}", "payload": {"i": i}}
                                   for i in range(20)]).answer(timeout_s=10)
        flush_here(core.flusher)
    policy = CompactionPolicy(min_files=2, active_window_s=0)
    [group] = plan_compaction(table_files(core.catalog, SqlTableOptions(core.engine)), policy,
                              time.time()).groups
    rewrite_group(core.storage.uri, group)  # a rewrite that never committed: an orphan
    result = compact_group(core.catalog, core.storage, group, policy)
    assert (result.files_before, result.files_after) == (3, 1)
    assert scan_table(core.catalog, core.storage, "acme", "records").rows.num_rows == 60
    later = time.time() + 1
    assert delete_orphans(core.catalog, core.storage, 0, later).files_deleted == 1
    assert delete_dead_files(core.catalog, core.storage, 0, later).files_deleted == 3
    left = [i.path for i in fs.get_file_info(pafs.FileSelector("compact/warehouse",
                                                               recursive=True))
            if i.type == pafs.FileType.File]
    assert left == [f"compact/warehouse/{core.catalog.files('acme', 'records')[0].path}"]
    core.close()
