"""When a mirror's rows of replaced files are deleted (pure: what was seen in, what to delete
out).

A compaction (or retention, or a drop of old partitions) replaces files; the mirror holds
their rows beside the new files' rows, and a query reads only the files live at its snapshot
(lakehouse/serving/dialect.py `visible`). A query planned just before the replacement still
reads the old files, for as long as a query may run: their rows are deleted once they have
been dead for `grace_s` (the platform's query time limit), not before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PruneState:
    """What the keeper knows of one mirror's files."""

    # The live files at the last look; None: not looked yet (the mirror is asked what it holds).
    live: frozenset[int] | None = None
    dead_since: Mapping[int, float] = field(default_factory=dict)  # file id → first seen dead


@dataclass(frozen=True, slots=True)
class PruneStep:
    state: PruneState  # to keep once `delete` is done
    delete: tuple[int, ...]  # the files whose rows go now


def prune(state: PruneState, live: frozenset[int], now: float, grace_s: float,
          held: frozenset[int] | None = None) -> PruneStep:
    """The next step for a mirror whose table's live files are now `live`; `held`: the files
    the mirror holds, asked when the state has never seen the table (`state.live` is None)."""
    before = state.live if state.live is not None else (held or frozenset())
    dead = {f: t for f, t in state.dead_since.items() if f not in live}
    for gone in before - live:
        dead.setdefault(gone, now)
    due = tuple(sorted(f for f, since in dead.items() if now - since >= grace_s))
    waiting = {f: t for f, t in dead.items() if f not in due}
    return PruneStep(PruneState(live, waiting), due)
