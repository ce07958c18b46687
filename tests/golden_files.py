"""Comparing text with a golden file: set UPDATE_GOLDEN=1 to rewrite the file instead, then read
the diff before committing it."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest


def assert_golden(path: Path, actual: str, what: str) -> None:
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    expected = path.read_text()
    if actual != expected:
        diff = "\n".join(difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), str(path), "actual", lineterm=""))
        pytest.fail(f"{what} differs from the golden file:\n{diff}", pytrace=False)
