"""Which Dask workers may be given work: those that proved they see the control plane's
storage root (lakehouse/storage/probe.py).

A worker is probed before its first job and again whenever it rejoins; one that failed is
excluded (its work goes to the verified workers, or runs here when there are none) and
probed again after RECHECK_EXCLUDED_S, so a fixed mount or credential brings it back
without a restart. Verdicts are shown in `GET /nodes/status` and `/health`.

The decision of whom to probe is pure (`to_probe`); `WorkerStorage` holds the verdicts of one
scheduler's workers and does the probing.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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

    def to_json(self) -> dict[str, Any]:
        return {"storage": "verified" if self.usable else "excluded", "reason": self.reason,
                "host": self.host, "checked_at": self.checked_at}


def to_probe(verdicts: Mapping[str, Verdict], workers: Iterable[str], now: float) -> list[str]:
    """The workers to probe now: new ones, and excluded ones whose verdict is old enough."""
    return sorted(w for w in workers
                  if w not in verdicts
                  or (not verdicts[w].usable
                      and now - verdicts[w].checked_at >= RECHECK_EXCLUDED_S))


def probe(client: Any, root: StorageRoot, workers: list[str],
          timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Verdict]:
    """Ask `workers` to prove they see `root`; a verdict for each."""
    names = ProbeNames(uuid.uuid4().hex)
    nonce = secrets.token_hex(16).encode()
    now = time.time()
    try:
        write_object(root, names.control_plane(), nonce)
    except OSError as exc:
        reason = f"the control plane cannot write its probe object: {exc}"[:300]
        return {w: Verdict(w, False, reason, "", now) for w in workers}
    try:
        answers = client.run(_probe_here, root.uri, names, nonce, workers=workers,
                             on_error="return", callback_timeout=timeout_s)
    except Exception as exc:  # a timeout or a broken connection: no worker proved anything
        reason = f"no answer to the storage probe within {timeout_s:.0f} s ({exc!r})"[:300]
        remove_check(root, names)
        return {w: Verdict(w, False, reason, "", now) for w in workers}
    verdicts = {w: _verdict(root, names, w, (nonce, answers.get(w)), now) for w in workers}
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


def _probe_here(root_uri: str, names: ProbeNames, nonce: bytes,
                dask_worker: Any = None) -> dict[str, str]:
    """On the worker (Dask passes `dask_worker` to a function that names it)."""
    me = str(dask_worker.address) if dask_worker is not None else ""
    return on_worker(root_uri, names, me, nonce, _payload(nonce, me))


def _payload(nonce: bytes, worker: str) -> bytes:
    return nonce + b"|" + worker.encode()


def _verdict(root: StorageRoot, names: ProbeNames, worker: str, sent: tuple[bytes, Any],
             now: float) -> Verdict:
    nonce, answer = sent  # what the control plane wrote, what the worker answered
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
        self._verdicts: dict[str, Verdict] = {}
        self._workers: tuple[str, ...] = ()
        self._listed_at = -WORKERS_TTL_S
        self._lock = threading.Lock()

    def usable(self, client: Any) -> tuple[str, ...]:
        """The workers now connected that see the storage root (probing any not yet known)."""
        with self._lock:
            now = time.monotonic()
            if now - self._listed_at >= WORKERS_TTL_S:
                info = client.scheduler_info(n_workers=-1)
                self._workers = tuple(sorted(info.get("workers", {})))
                self._listed_at = now
                # A worker that left is forgotten: at the same address again, it is new.
                self._verdicts = {w: v for w, v in self._verdicts.items()
                                  if w in self._workers}
            pending = to_probe(self._verdicts, self._workers, time.time())
            if pending:
                self._verdicts.update(probe(client, self.root, pending))
            return tuple(w for w in self._workers if self._verdicts[w].usable)

    def verdicts(self) -> dict[str, Verdict]:
        with self._lock:
            return dict(self._verdicts)
