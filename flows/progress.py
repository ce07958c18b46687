"""A run's progress in the Prefect UI: a progress artifact ("3/8 parts loaded") kept up to date.

Progress is a courtesy: failing to report it never fails the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

log = logging.getLogger(__name__)


@dataclass
class RunProgress:
    total: int
    what: str  # e.g. "parts loaded", "groups merged"
    artifact: UUID | None = None

    @staticmethod
    def start(total: int, what: str) -> RunProgress:
        progress = RunProgress(total, what)
        try:
            progress.artifact = cast(UUID, create_progress_artifact(
                0.0 if total else 100.0, description=f"0/{total} {what}"))
        except Exception as exc:
            log.warning("cannot create a progress artifact", extra={"error": str(exc)})
        return progress

    def report(self, done: int) -> None:
        if self.artifact is None or not self.total:
            return
        try:
            update_progress_artifact(self.artifact, 100.0 * done / self.total,
                                     description=f"{done}/{self.total} {self.what}")
        except Exception as exc:
            log.warning("cannot update a progress artifact", extra={"error": str(exc)})
