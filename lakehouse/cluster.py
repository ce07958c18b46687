"""The Dask cluster as the platform reaches it: the one client per scheduler address, and the one
"submit it there, or run it here" (`submit_or_here`) that flushes, loads, compaction and
queries use.

- One client per address, shared by every caller in the process. A client whose scheduler went
  away (restarted, or the connection broke) is replaced by a new connection on the next use; an
  address that did not answer is not tried again for RETRY_AFTER_S, so a missing cluster costs
  one connect timeout per half minute, not one per call.
- No cluster, or a cluster that fails mid-way, means the work runs here: a missing cluster slows
  the platform down, it does not stop it. Every job sent through here is idempotent (a flush or
  load part writes files named from its inputs, a rewrite writes a new file the commit names),
  so running again here what a worker may have half done is safe.
- Errors of the data itself (LakehouseError: bad input, a conflict) are not cluster failures:
  they propagate at once; the same work here would fail the same way.
- One timeout (DASK_TASK_TIMEOUT_S) for a job's result, whatever the job.
- Every job's Dask key names the work it belongs to (`flush-…`, `load-<id>-…`,
  `query-<id>-…`), and it is submitted inside a `distributed.span` of that name, so the Dask
  dashboard groups the cluster's work by flush, load and query.

Workers receive plain values (URIs, paths, specs, Arrow tables), never live handles, and only
workers that proved they see the storage root get any (lakehouse/worker_storage.py): given
the root, `dask_client` checks each worker before its first job, and `submit_or_here`
restricts every job to the verified ones (none verified: the work runs here).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lakehouse.errors import LakehouseError, Unavailable
from lakehouse.worker_storage import Verdict, WorkerStorage

log = logging.getLogger(__name__)

# Every Dask worker of the platform runs without Dask's statistical profiler. Every 10 ms it
# calls sys._current_frames(), which in CPython 3.11 holds the interpreter's thread-list lock
# while it makes frame objects; a garbage collection there runs Dask's gc callback (Python
# code), which can hand the GIL to a thread that is ending and waits for that same lock: the
# whole process deadlocks (seen in a concurrent distributed test: every thread in take_gil, a
# thread ending in tstate_delete_common, the worker's IO loop in trigger_profile's gc
# callback). The price is an empty "profile" page in the Dask dashboard.
WORKER_CONFIG = {"distributed.worker.profile.enabled": False}
WORKER_ENV = {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}

T = TypeVar("T")

CONNECT_TIMEOUT_S = 5
RETRY_AFTER_S = 30.0  # an address that did not answer is tried again after this long
DASK_TASK_TIMEOUT_S = 3600.0  # the longest a job's result is waited for: a whole compaction

_CLIENTS: dict[str, Any] = {}  # scheduler address → distributed.Client
_FAILED: dict[str, float] = {}  # scheduler address → when it last failed to answer
_STORAGE: dict[str, WorkerStorage] = {}  # scheduler address → its workers' storage verdicts
_CHECKED: dict[int, WorkerStorage] = {}  # id(client) → the same, for the jobs of a client
_LOCK = threading.Lock()


def dask_client(address: str, storage_root: str = "") -> Any:
    """A connected client of the scheduler at `address`, or None when there is none to be had.
    Given `storage_root`, jobs sent through the client go only to workers that see it."""
    if not address:
        return None
    with _LOCK:
        if storage_root and (address not in _STORAGE
                             or _STORAGE[address].root.uri != storage_root):
            _STORAGE[address] = WorkerStorage(storage_root)
        client = _connected(address)
        if client is not None and address in _STORAGE:
            _CHECKED[id(client)] = _STORAGE[address]
        return client


def _connected(address: str) -> Any:
    """The live client of `address` (under _LOCK), connecting when there is none."""
    client = _CLIENTS.get(address)
    if client is not None:
        if client.status == "running":
            return client
        _CLIENTS.pop(address, None)  # the scheduler went away: connect again
        _CHECKED.pop(id(client), None)
        _close_quietly(client)
    if time.monotonic() - _FAILED.get(address, -RETRY_AFTER_S) < RETRY_AFTER_S:
        return None
    try:
        from distributed import Client

        client = _CLIENTS[address] = Client(  # type: ignore[no-untyped-call]
            address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except Exception as exc:
        log.warning("no Dask scheduler; working here instead",
                    extra={"address": address, "error": str(exc)[:200]})
        _FAILED[address] = time.monotonic()
        return None
    _FAILED.pop(address, None)
    return client


def forget(address: str) -> None:
    """Drop the client of `address` and its last failure: the next use connects afresh (its
    security settings changed, or a test replaced the cluster)."""
    with _LOCK:
        client = _CLIENTS.pop(address, None)
        _FAILED.pop(address, None)
        _STORAGE.pop(address, None)
        if client is not None:
            _CHECKED.pop(id(client), None)
    if client is not None:
        _close_quietly(client)


def usable_workers(client: Any) -> tuple[str, ...] | None:
    """The workers of `client` that see the storage root, or None when it was not given one
    (every worker may be used)."""
    checked = _CHECKED.get(id(client))
    return None if checked is None else checked.usable(client)


def worker_verdicts(address: str) -> dict[str, Verdict]:
    """The storage verdict on each worker of the scheduler at `address` checked so far."""
    checked = _STORAGE.get(address)
    return {} if checked is None else checked.verdicts()


def client_connection_args() -> dict[str, Any]:
    """How a client connects to the scheduler: with TLS when Dask's configuration says so
    (DASK_DISTRIBUTED__COMM__TLS__… in the environment; README "Dask over TLS")."""
    from distributed.security import Security

    args: dict[str, Any] = Security().get_connection_args("client")  # type: ignore[no-untyped-call]
    return args


def _close_quietly(client: Any) -> None:
    try:
        client.close(timeout=1)
    except Exception as exc:  # closing a broken client may fail in any way; it is gone anyway
        log.debug("closing a stale Dask client failed", extra={"error": str(exc)[:200]})


class Done:
    """A job that ran here, read as a future is."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self, timeout: float | None = None) -> Any:
        return self._value

    def cancel(self) -> None:
        return None


@dataclass
class Submitted:
    """The jobs of one piece of work: on the cluster when there is a client (under keys
    `{name}-{n:05d}`, inside a span named `name`), else each run here at once. The futures
    submitted so far are kept, so the work can be cancelled."""

    client: Any  # a distributed.Client, or None
    name: str
    workers: tuple[str, ...] | None = None  # the only workers jobs may go to (None: any)
    futures: list[Any] = field(default_factory=list)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _key(self) -> str:
        with self._lock:
            self._count += 1
            return f"{self.name}-{self._count:05d}"

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.client is None:
            return Done(fn(*args, **kwargs))
        from distributed import span

        with span(self.name):
            future = self.client.submit(fn, *args, key=self._key(), pure=False,
                                        **self._placement(), **kwargs)
        self.futures.append(future)
        return future

    def scatter(self, values: Sequence[Any]) -> list[Any]:
        """Values every worker gets once (under keys of this work's own: two pieces of work
        never read each other's), or the values themselves here."""
        if self.client is None:
            return list(values)
        from distributed import span

        keys = [f"{self.name}-shared-{n:05d}" for n in range(len(values))]
        with span(self.name):
            scattered = self.client.scatter(dict(zip(keys, values, strict=True)),
                                            broadcast=True,
                                            workers=self._placement().get("workers"))
        return [scattered[key] for key in keys]

    def _placement(self) -> dict[str, Any]:
        if self.workers is None:
            return {}
        return {"workers": list(self.workers), "allow_other_workers": False}

    def item(self, future: Any, index: int) -> Any:
        """`future`'s result[index], where the result is (a future of it on the cluster)."""
        if self.client is None:
            return future.result()[index]
        import operator

        return self.submit(operator.getitem, future, index)


def cluster_failure(exc: Exception) -> bool:
    """Whether `exc` is the cluster failing under the work (a lost connection, data gone with
    its worker, a timeout, cancelled futures), so running it here helps; not the work failing
    (a missing file, DuckDB's errors, bugs). Work that kept ending the workers that ran it (out
    of memory, say) is not tried here: it becomes a 503."""
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        raise Unavailable("fragments of this query kept ending the Dask workers that ran them "
                          "(out of memory?); it is not run again in the services' own process. "
                          "Retry later, or narrow the query", code="cluster_failed") from exc
    if isinstance(exc, FileNotFoundError):
        return False
    return isinstance(exc, OSError | KeyError | TimeoutError | FutureCancelledError)


def submit_or_here(client: Any, name: str) -> Submitted:
    """The jobs of `name`: on the workers of `client` that see the storage root, or here when
    there is no client or no such worker."""
    if client is None:
        return Submitted(None, name)
    workers = usable_workers(client)
    if workers is not None and not workers:
        log.warning("no Dask worker sees the storage root; working here", extra={"job": name})
        return Submitted(None, name)
    return Submitted(client, name, workers)


@dataclass(frozen=True)
class Cluster:
    """Where jobs run: the scheduler at `address` ("" for none: always here). A plain value, so
    tasks and flows can be given one."""

    address: str = ""
    storage_root: str = ""  # the root its jobs write under: only workers that see it get them
    timeout_s: float = DASK_TASK_TIMEOUT_S

    def run(self, fn: Callable[..., T], *args: Any, name: str) -> T:
        """`fn(*args)` on a worker (its Dask key starts with `name`), or here."""
        [result] = self.run_all(fn, [args], name=name)
        return result

    def run_all(self, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]], *,
                name: str) -> list[T]:
        """`fn(*args)` for every `args` of `calls`, in order: all on the workers, or — with no
        cluster, or one that fails on the way — all here."""
        client = dask_client(self.address, self.storage_root)
        if client is not None and calls:
            try:
                jobs = submit_or_here(client, f"{name}-{uuid.uuid4().hex[:8]}")
                futures = [jobs.submit(fn, *args) for args in calls]
                results = [future.result(timeout=self.timeout_s) for future in futures]
                log.info("%s jobs ran on the Dask cluster", name,
                         extra={"job": name, "jobs": len(calls)})
                return results
            except LakehouseError:
                raise  # the data's own error: the same here
            except Exception as exc:
                log.warning("the Dask cluster failed a job; running it here",
                            extra={"job": name, "error": str(exc)[:200]})
        return [fn(*args) for args in calls]
