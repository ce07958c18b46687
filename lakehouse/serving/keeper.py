"""Keeping every served table's ClickHouse mirror in step, in the process that flushes.

A flush, a load or a compaction commits files the mirror lacks; the keeper copies them
(`catch_up`) after each run of this process ends (`wake`) and every SERVING_CATCH_UP_INTERVAL_S,
which also covers runs of other processes (a scheduled compaction in the Prefect worker) and a
crash between a commit and its copy. One catch-up per table at a time (`table_lock`): the
backfill run, the keeper and an unmarking take the same lock, so an unmarked table is not
copied again after its mirror was dropped. After a catch-up it deletes the mirror's rows of
files replaced long enough ago (lakehouse/serving/prune.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lakehouse.catalog.lake import Catalog
from lakehouse.catalog.table_options import TableOptionsStore
from lakehouse.serving.mirror import CaughtUp, catch_up, renew_outdated
from lakehouse.serving.prune import PruneState, prune
from lakehouse.serving.store import ServingStore
from lakehouse.storage.location import StorageRoot

log = logging.getLogger(__name__)

SERVED_BY = "clickhouse"

_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def table_lock(tenant: str, table: str) -> threading.Lock:
    """The one lock of a table's mirror in this process."""
    with _locks_guard:
        return _locks.setdefault((tenant, table), threading.Lock())


_epochs: dict[tuple[str, str], int] = {}


def epoch_of(tenant: str, table: str) -> int:
    """How many times the table's mirror was dropped in this process: a backfill planned in
    one epoch copies nothing in the next (read and moved under `table_lock`)."""
    with _locks_guard:
        return _epochs.get((tenant, table), 0)


def next_epoch(tenant: str, table: str) -> None:
    with _locks_guard:
        _epochs[(tenant, table)] = _epochs.get((tenant, table), 0) + 1


def served(options: TableOptionsStore, tenant: str | None = None) -> list[tuple[str, str]]:
    """The (tenant, table) pairs marked for the serving store (of one tenant, or all)."""
    return sorted(key for key, found in options.all().items()
                  if found.serving == SERVED_BY and (tenant is None or key[0] == tenant))


@dataclass(frozen=True, slots=True)
class Round:
    caught_up: dict[tuple[str, str], CaughtUp]
    failed: dict[tuple[str, str], str]


class MirrorKeeper:
    def __init__(self, catalog: Catalog, storage: StorageRoot, options: TableOptionsStore,
                 store: Callable[[], ServingStore], interval_s: float, *,
                 prune_after_s: float = 300.0,
                 on_round: Callable[[Round], None] | None = None) -> None:
        """`prune_after_s`: how long a query may read a replaced file's rows (its time
        limit); `on_round`: told what each round did (the metrics)."""
        self._catalog = catalog
        self._storage = storage
        self._options = options
        self._store = store  # opened on first need: most platforms serve no table
        self._interval_s = interval_s
        self._prune_after_s = prune_after_s
        self._pruning: dict[tuple[str, str], tuple[int, PruneState]] = {}  # by epoch
        self._on_round = on_round
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def catch_up_one(self, tenant: str, table: str) -> CaughtUp | None:
        """Copy what the table's mirror lacks; None when it is not served (any more)."""
        with table_lock(tenant, table):
            if self._options.get(tenant, table).serving != SERVED_BY:
                return None
            store = self._store()
            if renew_outdated(self._catalog, store, tenant, table):
                next_epoch(tenant, table)
            found = catch_up(self._catalog, self._storage, store, tenant, table)
            self._prune(store, tenant, table, found.live)
            return found

    def _prune(self, store: ServingStore, tenant: str, table: str,
               live: frozenset[int]) -> None:
        epoch = epoch_of(tenant, table)
        seen_epoch, state = self._pruning.get((tenant, table), (epoch, PruneState()))
        if seen_epoch != epoch:  # the mirror was dropped since: what it held went with it
            state = PruneState()
        step = prune(state, live, store.held_files(tenant, table), time.monotonic(),
                     self._prune_after_s)
        if step.delete:
            store.delete_files(tenant, table, step.delete)
            log.info("mirror rows of replaced files deleted", extra={
                "tenant": tenant, "table": table, "files": len(step.delete)})
        self._pruning[(tenant, table)] = (epoch, step.state)

    def run_round(self) -> Round:
        caught: dict[tuple[str, str], CaughtUp] = {}
        failed: dict[tuple[str, str], str] = {}
        for tenant, table in served(self._options):
            try:
                found = self.catch_up_one(tenant, table)
            except Exception as exc:  # one table's trouble must not stop the others'
                failed[(tenant, table)] = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("a mirror catch-up failed; the next round tries again",
                            extra={"tenant": tenant, "table": table,
                                   "error": failed[(tenant, table)]})
                continue
            if found is not None:
                caught[(tenant, table)] = found
                if found.files:
                    log.info("mirror caught up", extra={
                        "tenant": tenant, "table": table, "snapshot": found.snapshot,
                        "files": found.files, "rows": found.rows})
        self.rounds += 1
        done = Round(caught, failed)
        if self._on_round is not None:
            self._on_round(done)
        return done

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="mirror-keeper",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_round()
            except Exception:  # the catalog away a moment: the next round tries again
                log.exception("a mirror round failed")
