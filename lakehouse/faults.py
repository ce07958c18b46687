"""Crash points for the crash tests: `LAKEHOUSE_CRASH_AT=<point>` kills the process there.

The tests kill a real server exactly between two steps whose order makes writes exactly-once
(e.g. after the flush's commit, before the log is trimmed), then restart it and check the data.
Unset, this costs one dictionary lookup.
"""

from __future__ import annotations

import os

CRASH_EXIT_CODE = 137  # what a SIGKILL'ed process reports


def crash_point(name: str) -> None:
    if os.environ.get("LAKEHOUSE_CRASH_AT") == name:
        os._exit(CRASH_EXIT_CODE)
