"""Which failures of a distributed query run its fragments again here
(lakehouse/cluster.py `cluster_failure`, used by lakehouse/executor/run.py): the cluster
failing, not the work."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from distributed.client import FutureCancelledError
from distributed.comm.core import CommClosedError
from distributed.scheduler import KilledWorker

from lakehouse.cluster import cluster_failure
from lakehouse.errors import Unavailable

CASES = [
    (CommClosedError("worker connection lost"), True),
    (OSError("connection reset"), True),
    (KeyError("tcp://10.0.0.2:4001"), True),  # scattered to a worker that just left
    (TimeoutError(), True),
    (FutureCancelledError("query-1-00001", "lost"), True),
    (FileNotFoundError("acme/t/x.parquet"), False),  # the same here: not the cluster's fault
    (duckdb.BinderException("no such column"), False),
    (pa.ArrowInvalid("bad data"), False),
    (ValueError("a bug"), False),
]


@pytest.mark.parametrize(("error", "cluster"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_what_counts_as_the_cluster_failing(error: Exception, cluster: bool) -> None:
    assert cluster_failure(error) is cluster


def test_fragments_that_kill_their_workers_are_refused_not_run_here() -> None:
    with pytest.raises(Unavailable, match="kept ending the Dask workers") as caught:
        cluster_failure(KilledWorker("query-1-00001", "tcp://10.0.0.2:4001", 3))
    assert caught.value.code == "cluster_failed" and caught.value.retryable
