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
    """What the keeper knows of one mirror's replaced files."""

    dead_since: Mapping[int, float] = field(default_factory=dict)  # file id → first seen dead


@dataclass(frozen=True, slots=True)
class PruneStep:
    state: PruneState  # to keep once `delete` is done
    delete: tuple[int, ...]  # the files whose rows go now


def prune(state: PruneState, live: frozenset[int], held: frozenset[int], now: float,
          grace_s: float) -> PruneStep:
    """The next step for a mirror holding the files `held` of a table whose live files are
    `live`. Asked of the mirror each time (its partitions, no row read): a file a late backfill
    copied after it was replaced is found as well."""
    dead = {f: state.dead_since.get(f, now) for f in held - live}
    due = tuple(sorted(f for f, since in dead.items() if now - since >= grace_s))
    return PruneStep(PruneState({f: t for f, t in dead.items() if f not in due}), due)
