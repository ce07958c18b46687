"""The platform's Dask workers run without Dask's statistical profiler (lakehouse/cluster.py
WORKER_CONFIG says why: its sys._current_frames() can deadlock the process): those
`lakehouse up` starts, and the in-process ones of the tests."""

from __future__ import annotations

from pathlib import Path

from distributed import LocalCluster

from deployments.local import dask_workers
from lakehouse.cluster import WORKER_ENV
from lakehouse.config import Settings


def test_lakehouse_up_starts_workers_without_the_profiler(tmp_path: Path) -> None:
    spec = dask_workers(Settings.for_tests(tmp_path))
    assert spec.extra_env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] == "False"
    assert WORKER_ENV.items() <= spec.extra_env.items()


def test_in_process_workers_have_no_profiler() -> None:
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        [worker] = cluster.workers.values()
        assert not [name for name in worker.periodic_callbacks if "profile" in name]
