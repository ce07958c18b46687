"""The prefect.yaml `lakehouse up` applies (deployments/local.py `prefect_file`): the project's
own file with default settings, a copy with the settings' pool and schedule otherwise."""

from __future__ import annotations

from pathlib import Path

import yaml

from deployments.local import PROJECT_DIR, prefect_file
from lakehouse.config import Settings


def test_the_project_file_as_it_is_with_default_settings(tmp_path: Path) -> None:
    assert prefect_file(Settings.for_tests(tmp_path)) == PROJECT_DIR / "prefect.yaml"


def test_a_copy_with_the_pool_and_the_interval_of_the_settings(tmp_path: Path) -> None:
    path = prefect_file(Settings.for_tests(tmp_path, prefect_work_pool="edge",
                                           maintenance_interval_s=60))
    assert path != PROJECT_DIR / "prefect.yaml"
    spec = yaml.safe_load(path.read_text())
    original = yaml.safe_load((PROJECT_DIR / "prefect.yaml").read_text())
    assert [d["name"] for d in spec["deployments"]] == [d["name"] for d in
                                                         original["deployments"]]
    for deployment in spec["deployments"]:
        assert deployment["work_pool"]["name"] == "edge"
        assert deployment["schedules"] == [{"interval": 60, "active": True}]
        assert ":" not in deployment["entrypoint"]  # module paths: no host folder in them
    assert spec["pull"] == []


def test_only_the_pool_changed_keeps_the_schedules(tmp_path: Path) -> None:
    spec = yaml.safe_load(prefect_file(Settings.for_tests(tmp_path, prefect_work_pool="edge"))
                          .read_text())
    original = yaml.safe_load((PROJECT_DIR / "prefect.yaml").read_text())
    assert [d["schedules"] for d in spec["deployments"]] == [d["schedules"] for d in
                                                             original["deployments"]]
