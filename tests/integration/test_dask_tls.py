"""Dask over TLS: with Dask's TLS settings in the environment (README "Dask over TLS") the
platform's client, its health probe and `submit_or_here` reach a scheduler that requires
encryption; without them nothing connects, and the work runs here instead. A real in-process
TLS cluster, with certificates made for the test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import dask
import pytest
from distributed import LocalCluster, get_worker
from distributed.security import Security

from deployments.local import dask_scheduler
from lakehouse import cluster as lake_cluster
from lakehouse.config import Settings
from lakehouse.telemetry.probes import probe_dask


def _where() -> str:
    try:
        return str(get_worker().address)
    except ValueError:
        return "here"


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, str]:
    made = Security.temporary()  # type: ignore[no-untyped-call]
    files = {}
    for name, pem in (("ca", made.tls_ca_file), ("cert", made.tls_client_cert),
                      ("key", made.tls_client_key)):
        path = tmp_path / f"{name}.pem"
        path.write_text(pem)
        files[name] = str(path)
    return files


@pytest.fixture
def tls_cluster(certificates: dict[str, str]) -> Iterator[str]:
    security = Security(  # type: ignore[no-untyped-call]
        tls_ca_file=certificates["ca"], require_encryption=True,
        **{f"tls_{role}_{part}": certificates[part] for role in ("client", "scheduler", "worker")
           for part in ("cert", "key")})
    with LocalCluster(n_workers=1, processes=False, protocol="tls://", security=security,
                      dashboard_address=":0") as cluster:
        yield str(cluster.scheduler_address)
    lake_cluster.forget(str(cluster.scheduler_address))


def test_the_platform_reaches_a_tls_scheduler_with_dask_tls_settings(
        tls_cluster: str, certificates: dict[str, str]) -> None:
    assert tls_cluster.startswith("tls://")
    settings = {"distributed.comm.tls.ca-file": certificates["ca"],
                "distributed.comm.tls.client.cert": certificates["cert"],
                "distributed.comm.tls.client.key": certificates["key"],
                "distributed.comm.require-encryption": True}
    with dask.config.set(settings):  # what DASK_DISTRIBUTED__COMM__TLS__… set in a process
        assert lake_cluster.dask_client(tls_cluster) is not None
        assert lake_cluster.Cluster(tls_cluster).run(_where, name="where").startswith("tls://")
        probe = asyncio.run(probe_dask(tls_cluster, 5))
        assert probe.ok and probe.detail["workers"] == 1, probe
    # Without certificates nothing connects, and the work runs here.
    lake_cluster.forget(tls_cluster)
    assert lake_cluster.dask_client(tls_cluster) is None
    assert lake_cluster.Cluster(tls_cluster).run(_where, name="where") == "here"
    assert not asyncio.run(probe_dask(tls_cluster, 5)).ok


def test_lakehouse_up_starts_a_tls_scheduler_for_a_tls_address(tmp_path: Path) -> None:
    command = dask_scheduler(Settings.for_tests(
        tmp_path, dask_scheduler_address="tls://127.0.0.1:8786")).argv
    assert command[command.index("--protocol") + 1] == "tls"
    plain = dask_scheduler(Settings.for_tests(tmp_path)).argv
    assert plain[plain.index("--protocol") + 1] == "tcp"
