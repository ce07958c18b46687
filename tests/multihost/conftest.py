"""Fixtures of the multi-host tests: the platform on three simulated hosts
(tests/multihost/platform.py), once for the whole package, removed at the end (every namespace,
process and folder) also when a test fails; the TPC-H tables loaded once; DuckDB over the
generator's files as the oracle. Needs root (namespaces, mounts), as CI has."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.multihost.platform import TPCH_TABLES, Platform, load_tpch, running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.multihost)
            item.add_marker(pytest.mark.slow)
            if os.geteuid() != 0 or shutil.which("ip") is None:
                item.add_marker(pytest.mark.skip(
                    reason="simulated hosts need root and iproute2 (CI has both)"))


@pytest.fixture(scope="package")
def platform() -> Iterator[Platform]:
    with running() as started:
        yield started


@pytest.fixture(scope="package")
def tpch_loaded(platform: Platform) -> Platform:
    """The platform with the TPC-H tables loaded over HTTP (once, whichever test asks first)."""
    load_tpch(platform)
    return platform


@pytest.fixture(scope="package")
def oracle(platform: Platform) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    for table in TPCH_TABLES:
        connection.read_parquet(str(platform.tpch / table / "*.parquet")).create_view(table)
    return connection
