"""Queries run below the services' other work in the operating system's scheduler.

The services' process answers every request from one event loop thread. Under a flood the
machine's cores are nearly all taken, and the loop waited for a free one a quarter to a third
of the time (bench/resilience.py prints it): every request waited with it. A query's thread,
and the scan and DuckDB threads it starts, are the busiest of the rest; at a nice value of 10
(QUERY_NICE) they take what the loop and the writes leave. On the overload bench (20 s, four
runs each way, alternating): the loop waited for a core 25 to 26% of the flood against 31 to
33%; the flood had about a quarter more of its writes accepted (862 to 1,206 against 807 to 897)
with accepted writes' p50 at 244 to 361 ms against 300 to 362 ms and p99 at 400 to 652 ms
against 431 to 532 ms (three runs of four better, one worse: the runs vary by about 1.5x); the
calm tenant's queries the same. On an idle machine a lower priority costs a query nothing.

Linux keeps a nice value per thread, a thread starts with its starter's, and an unprivileged
process may lower a thread's priority but not raise it back. So only a thread that does a
query's work and ends with it is lowered, once its plan is made (planning may create the Dask
client, whose threads serve flushes and loads too): the query service lowers a query it runs
itself, not a tracked one, whose flow run may start Prefect's long-lived threads. (DuckDB's
pooled connections keep the threads they were given, lowered or not; those only run queries.)
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)


def lower_this_thread(nice: int) -> None:
    """Give the calling thread (and the threads it starts from now on) at least `nice`."""
    if nice <= 0:
        return
    thread = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, thread) < nice:
            os.setpriority(os.PRIO_PROCESS, thread, nice)
    except (OSError, AttributeError) as exc:  # not Linux, or refused: the query runs level
        log.debug("cannot lower a query thread's priority", extra={"error": str(exc)})


def this_thread_nice() -> int:
    """The calling thread's nice value (0 where the platform has none)."""
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except (OSError, AttributeError):
        return 0
