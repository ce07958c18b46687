"""The files under deploy/ stay what the platform runs: the Prometheus rules file and the
Grafana dashboard are what `tools/deploy_files.py` makes of the shipped rules today; every
series they name is one the platform exports; and Prometheus' own rule engine (Debian's
`promtool`, installed here when missing) fires the same alerts as the built-in evaluator on
the same series over the same rounds."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lakehouse.telemetry.alerting import Alerting, load_rules
from lakehouse.telemetry.alerts import Labels, Samples
from lakehouse.telemetry.metrics import Metrics
from tools.deploy_files import DASHBOARD_FILE, RULES_FILE, documents

STEP_S = 15
ROUNDS = 41  # 10 minutes of rounds
# What each series does over the rounds: a value per round. Some rules' conditions start to
# hold part-way (FlushLagging after 2 min, DaskWorkersMissing after 3, a failed maintenance
# run after 4, failed queries climbing from 5), some never do.
SERIES: dict[tuple[str, Labels], list[float]] = {
    ("lakehouse_unflushed_oldest_age_seconds", ()): [0.0] * 8 + [300.0] * 33,
    ("lakehouse_component_up", (("component", "wal"),)): [1.0] * ROUNDS,
    ("lakehouse_component_up", (("component", "catalog"),)): [1.0] * ROUNDS,
    ("lakehouse_component_up", (("component", "prefect"),)): [1.0] * 20 + [0.0] * 21,
    ("lakehouse_data_dir_free_ratio", ()): [0.5] * ROUNDS,
    ("lakehouse_dask_workers", ()): [2.0] * 12 + [0.0] * 29,
    ("lakehouse_maintenance_failed_runs", (("flow", "compaction"),)): [0.0] * 16 + [1.0] * 25,
    ("lakehouse_maintenance_failed_runs", (("flow", "retention"),)): [0.0] * ROUNDS,
    ("lakehouse_queries_total", (("state", "failed"), ("strategy", "single"))):
        [0.0] * 20 + [5.0 * n for n in range(1, 22)],
    ("lakehouse_queries_total", (("state", "completed"), ("strategy", "single"))):
        [10.0 * n for n in range(ROUNDS)],
    ("lakehouse_shed_requests_total", (("pool", "writes"), ("reason", "full"))):
        [0.0] * ROUNDS,
}
EVAL_ROUNDS = (10, 14, 24, 40)  # when the two engines are compared


def _ensure_promtool() -> str:
    if shutil.which("promtool") is None:
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "prometheus"],
                       check=True, capture_output=True, timeout=900)
    found = shutil.which("promtool")
    assert found, "promtool is not installed"
    return found


def test_the_deploy_files_are_up_to_date() -> None:
    wanted = documents()
    for path in (RULES_FILE, DASHBOARD_FILE):
        assert path.read_text(encoding="utf-8") == wanted[path], (
            f"{path} is out of date: run `.venv/bin/python -m tools.deploy_files`")


def _exported() -> set[str]:
    names = {"lakehouse_process_restarts_total"}  # api/core.py registers its collector
    for family in Metrics().registry.collect():
        names.add(family.name)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
        names.update(family.name + s for s in suffixes.get(family.type, ()))
    return names


def test_every_series_the_deploy_files_name_is_exported() -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    rules = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    named = {n for e in exprs for n in re.findall(r"\blakehouse_[a-z0-9_]+", e)}
    assert len(named) > 15
    assert named <= _exported(), named - _exported()


def _built_in_firing(at_round: int) -> list[tuple[str, dict[str, str]]]:
    alerting = Alerting(load_rules(None))
    for n in range(at_round + 1):
        samples: dict[str, list[tuple[Labels, float]]] = {}
        for (name, labels), values in SERIES.items():
            samples.setdefault(name, []).append((labels, values[n]))
        rounds: Samples = samples
        alerting.evaluate(rounds, float(n * STEP_S))
    return sorted((a["name"], a["labels"]) for a in alerting.listed()["alerts"]
                  if a["state"] == "firing")


def test_prometheus_fires_what_the_built_in_evaluator_fires(tmp_path: Path) -> None:
    promtool = _ensure_promtool()
    rules = {r.name: r for r in load_rules(None)}
    tests = []
    seen_firing = set()
    for at in EVAL_ROUNDS:
        firing = _built_in_firing(at)
        seen_firing |= {name for name, _ in firing}
        for name, rule in rules.items():
            tests.append({"eval_time": f"{at * STEP_S}s", "alertname": name, "exp_alerts": [
                {"exp_labels": {**labels, "severity": rule.severity, **dict(rule.labels)},
                 "exp_annotations": {"summary": rule.summary}}
                for fired, labels in firing if fired == name]})
    # The comparison means something: rules fire, in several series, and some do not.
    assert {"FlushLagging", "DaskWorkersMissing", "MaintenanceRunFailed", "QueryErrorsHigh",
            "PrefectUnreachable"} <= seen_firing
    assert not {"DiskAlmostFull", "RequestsShed", "CatalogUnreachable"} & seen_firing
    series = [{"series": name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"
                                 if labels else ""),
               "values": " ".join(f"{v:g}" for v in values)}
              for (name, labels), values in SERIES.items()]
    document = tmp_path / "rules_test.yml"
    document.write_text(yaml.safe_dump({
        "rule_files": [str(RULES_FILE)], "evaluation_interval": f"{STEP_S}s",
        "tests": [{"interval": f"{STEP_S}s", "input_series": series,
                   "alert_rule_test": tests}]}, sort_keys=False))
    checked = subprocess.run([promtool, "check", "rules", str(RULES_FILE)],
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", str(document)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize("path", [RULES_FILE, DASHBOARD_FILE])
def test_the_deploy_files_parse(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    assert document
