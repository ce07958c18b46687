"""The one way to reach Dask (lakehouse/cluster.py), on a real in-process Dask cluster: jobs run
on the workers under keys naming them, run here with no cluster or a failing one, the data's own
errors propagate, and a restarted scheduler is reached again."""

from __future__ import annotations

import os
import time

import pytest
from distributed import LocalCluster, get_worker

import lakehouse.cluster as cluster_module
from lakehouse.cluster import Cluster, dask_client
from lakehouse.errors import InvalidInput


def where(value: int) -> tuple[int, str]:
    try:
        return value * 2, get_worker().address
    except ValueError:
        return value * 2, "here"


def refuse(value: int) -> int:
    raise InvalidInput(f"bad value {value}")


def test_jobs_run_on_the_workers_with_keys_that_name_them() -> None:
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as local:
        cluster = Cluster(local.scheduler_address)
        results = cluster.run_all(where, [(1,), (2,), (3,)], name="flush")
        assert [r[0] for r in results] == [2, 4, 6]
        assert all(r[1] != "here" for r in results)
        client = dask_client(local.scheduler_address)
        assert client is dask_client(local.scheduler_address)  # one client, shared
        keys = [task["key"] for task in client.run_on_scheduler(
            lambda dask_scheduler: [{"key": str(k)} for k in dask_scheduler.task_prefixes])]
        assert any(key.startswith("flush") for key in keys), keys
        with pytest.raises(InvalidInput, match="bad value 1"):
            cluster.run(refuse, 1, name="load")  # not a cluster failure: not run again here
        client.close()  # a client whose scheduler went away is replaced on the next use
        assert dask_client(local.scheduler_address) is not client
        assert cluster.run(where, 5, name="load")[0] == 10


def test_no_cluster_or_an_unreachable_one_runs_the_work_here(monkeypatch: pytest.MonkeyPatch,
                                                              ) -> None:
    assert Cluster("").run(where, 2, name="x") == (4, "here")
    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT_S", 0.5)
    address = f"tcp://127.0.0.1:{20000 + os.getpid() % 10000}"  # nothing listens there
    started = time.monotonic()
    assert Cluster(address).run(where, 3, name="x") == (6, "here")
    assert Cluster(address).run(where, 4, name="x") == (8, "here")
    # The second call did not wait for a connect: the address is remembered as down.
    assert time.monotonic() - started < 30
    assert dask_client(address) is None
