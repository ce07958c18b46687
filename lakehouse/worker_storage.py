"""Which Dask workers may be given work: those that proved they see the control plane's
storage root (lakehouse/storage/probe.py).

A worker is probed before its first job, and again whenever a new worker process appears at
its address (a restarted worker may not see what the one before it saw); one that failed is
excluded (its work goes to the verified workers, or runs here when there are none) and probed
again, when work is next handed out, once RECHECK_EXCLUDED_S have passed, so a fixed mount or
credential brings it back without a restart. Verdicts are shown in `GET /nodes/status` and
`/health`, which read them without waiting for a probe.

The decision of whom to probe is pure (`to_probe`); `WorkerStorage` holds the verdicts of one
scheduler's workers and does the probing.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lakehouse.storage.location import StorageRoot
from lakehouse.storage.probe import ProbeNames, on_worker, read_object, remove_check, write_object

log = logging.getLogger(__name__)

RECHECK_EXCLUDED_S = 60.0  # an excluded worker is probed again after this long
WORKERS_TTL_S = 1.0  # the scheduler's worker list is asked for at most this often
PROBE_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Verdict:
    worker: str  # its address, as the scheduler knows it
    usable: bool
    reason: str  # why it is excluded ("" when usable)
    host: str
    checked_at: float
    process: str = ""  # which worker process at that address it was (its scratch folder)

    def to_json(self) -> dict[str, Any]:
        return {"storage": "verified" if self.usable else "excluded", "reason": self.reason,
                "host": self.host, "checked_at": self.checked_at}


def to_probe(verdicts: Mapping[str, Verdict], workers: Mapping[str, str],
             now: float) -> list[str]:
    """The workers (address → process) to probe now: new ones, a new process at a known
    address, and excluded ones whose verdict is old enough."""
    return sorted(w for w, process in workers.items()
                  if w not in verdicts or verdicts[w].process != process
                  or (not verdicts[w].usable
                      and now - verdicts[w].checked_at >= RECHECK_EXCLUDED_S))


def probe(client: Any, root: StorageRoot, workers: Mapping[str, str],
          timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Verdict]:
    """Ask `workers` (address → process) to prove they see `root`; a verdict for each."""
    names = ProbeNames(uuid.uuid4().hex)
    nonce = secrets.token_hex(16).encode()
    now = time.time()
    try:
        write_object(root, names.control_plane(), nonce)
    except OSError as exc:
        reason = f"the control plane cannot write its probe object: {exc}"[:300]
        return {w: Verdict(w, False, reason, "", now, p) for w, p in workers.items()}
    verdicts = {w: _verdict(root, names, w, (nonce, _ask(client, (root.uri, names, nonce), w,
                                                         timeout_s)), now)
                for w in workers}
    verdicts = {w: replace(v, process=workers[w]) for w, v in verdicts.items()}
    remove_check(root, names)
    for verdict in verdicts.values():
        if verdict.usable:
            log.info("worker sees the storage root", extra={"worker": verdict.worker,
                                                              "host": verdict.host})
        else:
            log.warning("worker excluded: it does not see the storage root",
                        extra={"worker": verdict.worker, "host": verdict.host,
                               "reason": verdict.reason, "storage_root": root.uri})
    return verdicts


def _ask(client: Any, check: tuple[str, ProbeNames, bytes], worker: str,
         timeout_s: float) -> Any:
    """One worker's answer to `check` (root URI, names, nonce), or the error of asking it:
    each worker on its own, so one that hangs costs its own verdict, not the others'."""
    try:
        answers = client.run(_probe_here, *check, workers=[worker],
                             on_error="return", callback_timeout=timeout_s)
    except Exception as exc:  # a timeout or a broken connection: it proved nothing
        return f"no answer to the storage probe within {timeout_s:.0f} s ({exc!r})"[:300]
    return answers.get(worker)


async def _probe_here(root_uri: str, names: ProbeNames, nonce: bytes,
                      dask_worker: Any = None) -> dict[str, str]:
    """On the worker (Dask passes `dask_worker` to a function that names it), off its event
    loop: storage that hangs must not stop the worker's heartbeats."""
    me = str(dask_worker.address) if dask_worker is not None else ""
    return await asyncio.to_thread(on_worker, root_uri, names, me, nonce, _payload(nonce, me))


def _payload(nonce: bytes, worker: str) -> bytes:
    return nonce + b"|" + worker.encode()


def _verdict(root: StorageRoot, names: ProbeNames, worker: str, sent: tuple[bytes, Any],
             now: float) -> Verdict:
    nonce, answer = sent  # what the control plane wrote, what the worker answered
    if isinstance(answer, str):
        return Verdict(worker, False, answer, "", now)
    if not isinstance(answer, dict):
        return Verdict(worker, False, f"the probe failed on the worker: {answer!r}"[:300], "",
                       now)
    host = str(answer.get("host", ""))
    if "error" in answer:
        return Verdict(worker, False, str(answer["error"]), host, now)
    if read_object(root, names.worker(worker)) != _payload(nonce, worker):
        return Verdict(worker, False, "the worker wrote its probe object where the control "
                       "plane cannot read it: it has a storage root of its own (a local folder "
                       "on another host?)", host, now)
    return Verdict(worker, True, "", host, now)


class WorkerStorage:
    """The verdicts on one scheduler's workers for one storage root. Thread-safe: callers
    that arrive while a probe runs wait for its answer rather than probe again."""

    def __init__(self, root_uri: str) -> None:
        self.root = StorageRoot.parse(root_uri)
        # Replaced whole, never changed in place: readers take it without the lock.
        self._verdicts: dict[str, Verdict] = {}
        self._workers: dict[str, str] = {}  # address → process
        self._listed_at = -WORKERS_TTL_S
        self._lock = threading.Lock()

    def usable(self, client: Any) -> tuple[str, ...]:
        """The workers now connected that see the storage root (probing any not yet known).
        Callers that come while a probe runs wait for it: they need its answer."""
        with self._lock:
            now = time.monotonic()
            if now - self._listed_at >= WORKERS_TTL_S:
                info = client.scheduler_info(n_workers=-1)
                self._workers = {w: str(d.get("local_directory") or d.get("id") or "")
                                 for w, d in sorted(info.get("workers", {}).items())}
                self._listed_at = now
                # A worker that left is forgotten.
                self._verdicts = {w: v for w, v in self._verdicts.items()
                                  if w in self._workers}
            pending = to_probe(self._verdicts, self._workers, time.time())
            if pending:
                found = probe(client, self.root, {w: self._workers[w] for w in pending})
                self._verdicts = {**self._verdicts, **found}
            return tuple(w for w in self._workers if self._verdicts[w].usable)

    def verdicts(self) -> dict[str, Verdict]:
        """The latest verdicts, without waiting for a probe that runs."""
        return dict(self._verdicts)
