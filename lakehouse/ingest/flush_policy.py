"""When to flush: a pure decision over the backlog (size, rows, age) and the flusher's state."""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FlushThresholds:
    max_bytes: int
    max_rows: int
    max_age_s: float


@dataclass(frozen=True, slots=True)
class Backlog:
    rows: int
    bytes: int
    oldest_age_s: float
    shutting_down: bool = False
    requested: bool = False  # someone asked for a flush now (POST /data/flush)


class Action(enum.StrEnum):
    WAIT = "wait"
    FLUSH = "flush"


def decide(  # noqa: PLR0911 - one return per rule, in order of precedence
        backlog: Backlog, limits: FlushThresholds) -> tuple[Action, str]:
    """The action and why, for the run's name and the logs."""
    if backlog.rows == 0:
        return Action.WAIT, "nothing to flush"
    if backlog.shutting_down:
        return Action.FLUSH, "shutdown"
    if backlog.requested:
        return Action.FLUSH, "requested"
    if backlog.bytes >= limits.max_bytes:
        return Action.FLUSH, f"size {backlog.bytes} bytes"
    if backlog.rows >= limits.max_rows:
        return Action.FLUSH, f"{backlog.rows} rows"
    if backlog.oldest_age_s >= limits.max_age_s:
        return Action.FLUSH, f"age {backlog.oldest_age_s:.0f}s"
    return Action.WAIT, "below every threshold"
