"""Write (or, with --check, compare) the files under deploy/ for operators with their own
Prometheus and Grafana: the shipped alert rules as a Prometheus rules file and the dashboard
as a Grafana dashboard (lakehouse/telemetry/exports.py makes both).

    .venv/bin/python -m tools.deploy_files [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from lakehouse.telemetry.alerting import load_rules
from lakehouse.telemetry.exports import grafana_dashboard, prometheus_rules

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES_FILE = DEPLOY / "prometheus" / "lakehouse-rules.yml"
DASHBOARD_FILE = DEPLOY / "grafana" / "lakehouse-dashboard.json"
HEADER = ("# Generated from lakehouse/telemetry/alert_rules.yaml by `python -m tools.deploy_files`"
          "; the\n# control plane evaluates the same rules itself (GET /alerts).\n")


def documents() -> dict[Path, str]:
    rules = prometheus_rules(load_rules(None))
    return {RULES_FILE: HEADER + yaml.safe_dump(rules, sort_keys=False, width=100),
            DASHBOARD_FILE: json.dumps(grafana_dashboard(), indent=2) + "\n"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a file differs from what it would be written as")
    args = parser.parse_args()
    stale = []
    for path, text in documents().items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    for path in stale:
        print(f"{path} is out of date: run python -m tools.deploy_files", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
