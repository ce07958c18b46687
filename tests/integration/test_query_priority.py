"""A query the services run themselves runs at QUERY_NICE, below the event loop and the writes
(lakehouse/executor/thread_priority.py); a tracked one, whose flow run may start long-lived
threads, is left level. Real query service of a core (SQLite catalog, DuckDB); the priority is
read from the operating system in the query's own thread as it ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.core import Core, build_core
from lakehouse.config import Settings
from lakehouse.executor.queries import QueryRun
from lakehouse.executor.service import QueryRequest
from lakehouse.executor.thread_priority import lower_this_thread, this_thread_nice


def _core(tmp: Path, nice: int) -> Core:
    return build_core(Settings.for_tests(tmp, query_nice=nice, query_on_dask=False,
                                         flush_on_dask=False, load_on_dask=False))


def _nice_of_query(core: Core, request: QueryRequest) -> tuple[int, QueryRun]:
    """The nice value of the thread that ran `request`, read there as the run ended."""
    service = core.queries
    assert service is not None
    seen: list[int] = []
    ended = threading.Event()
    original = service._on_end  # the core's metrics callback, still called

    def recording(run: QueryRun) -> None:
        seen.append(this_thread_nice())
        if original is not None:
            original(run)
        ended.set()

    service._on_end = recording
    try:
        run = service.submit("acme", request)
        assert ended.wait(60), "the query did not end"
    finally:
        service._on_end = original
    return seen[0], run


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    built = _core(tmp_path, 7)
    yield built
    built.close()


def test_a_query_run_here_runs_at_query_nice(core: Core) -> None:
    before = this_thread_nice()
    nice, run = _nice_of_query(core, QueryRequest("SELECT 42 AS answer"))
    assert run.state == "finished", run.error
    assert nice == 7
    assert this_thread_nice() == before  # only the query's own thread was lowered


def test_a_tracked_query_is_left_level(core: Core) -> None:
    nice, run = _nice_of_query(core, QueryRequest("SELECT 42 AS answer", track=True))
    assert run.state == "finished", run.error
    assert nice == this_thread_nice()


def test_query_nice_zero_leaves_queries_level(tmp_path: Path) -> None:
    built = _core(tmp_path, 0)
    try:
        nice, run = _nice_of_query(built, QueryRequest("SELECT 42 AS answer"))
    finally:
        built.close()
    assert run.state == "finished", run.error
    assert nice == this_thread_nice()


def test_lowering_never_raises_a_thread_back() -> None:
    found: list[int] = []

    def lowered_twice() -> None:
        lower_this_thread(12)
        lower_this_thread(5)  # asks for less than it has: stays at 12
        found.append(this_thread_nice())

    thread = threading.Thread(target=lowered_twice)
    thread.start()
    thread.join(10)
    assert found == [12]
