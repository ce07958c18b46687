"""The cleanup flow, as the scheduled deployment runs it: settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cleanup import cleanup


def test_cleanup_flow_runs_against_the_configured_catalog(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ENVIRONMENT", "test")
    state = cleanup(grace_s=0, return_state=True)
    assert state.is_completed()
    assert state.result()["files_deleted"] == 0
    assert (tmp_path / "catalog.db").exists()
