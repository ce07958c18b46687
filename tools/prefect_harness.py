"""Prefect's test harness, with its last step bounded.

On leaving, `prefect_test_harness` drains every events worker of the process with no time
limit. A worker left from an earlier harness in the same process (a pytest worker runs several
modules' servers in turn) may never finish: its server is gone. That hung a test run's teardown
for 300 s. Here the drain waits at most DRAIN_S; what it did not send was about a temporary
server that is going away anyway.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from prefect.events.worker import EventsWorker
from prefect.testing.utilities import prefect_test_harness

DRAIN_S = 30.0


@contextlib.contextmanager
def bounded_prefect_harness(server_startup_timeout: int = 120) -> Iterator[None]:
    bounded = functools.partial(EventsWorker.drain_all, timeout=DRAIN_S)
    with contextlib.ExitStack() as stack:
        # Undone last on the way out, after the harness' own drain met the bounded one.
        # Harnesses nest (a session's around a module's): each puts back what it found.
        stack.callback(_put_back, EventsWorker.__dict__.get("drain_all"))
        EventsWorker.drain_all = bounded  # type: ignore[method-assign]
        stack.enter_context(prefect_test_harness(server_startup_timeout=server_startup_timeout))
        yield


def _put_back(found: object) -> None:
    if found is None:  # drain_all was only inherited
        with contextlib.suppress(AttributeError):
            delattr(EventsWorker, "drain_all")
    else:
        EventsWorker.drain_all = found  # type: ignore[method-assign,assignment]
