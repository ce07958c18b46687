"""Flows run against Prefect's test harness: a real, temporary Prefect server and database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from api.core import Core, build_core
from lakehouse.config import Settings
from tools.prefect_harness import bounded_prefect_harness


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    with bounded_prefect_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def maintained_core(tmp_path: Path) -> Iterator[Core]:
    """The write path open, Prefect the harness's, and compaction eager: two small files of a
    partition are enough, none counts as active, the rewrite runs here."""
    settings = Settings.for_tests(tmp_path, prefect_api_url=PREFECT_API_URL.value(),
                                  compaction_min_files=2, compaction_active_window_s=0,
                                  compaction_on_dask=False)
    built = build_core(settings, ingest=True)
    yield built
    built.close()
