"""The alert evaluator: runs the pure rules (lakehouse/telemetry/alerts.py) over each round's
samples, and tells a webhook about each alert that starts or stops firing, in Alertmanager's
shape (so an Alertmanager, or anything that reads its webhook payload, can route them on).
What windowed rules need of earlier rounds, the alert book keeps (only their matched series).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from lakehouse.errors import ConfigurationError, InvalidInput
from lakehouse.telemetry.alerts import AlertBook, Rule, Samples, Transition, decide, parse_rules

log = logging.getLogger(__name__)
DEFAULT_RULES_FILE = Path(__file__).with_name("alert_rules.yaml")
_WEBHOOK_TIMEOUT_S = 5.0
_STATES = ("firing", "pending", "resolved")


def load_rules(path: Path | None) -> tuple[Rule, ...]:
    """The rules of the file at `path` (the shipped defaults when None); a file that cannot be
    read or holds a bad rule stops the start with a message naming it."""
    source = path or DEFAULT_RULES_FILE
    try:
        return parse_rules(yaml.safe_load(source.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, InvalidInput) as exc:
        raise ConfigurationError(f"ALERT_RULES_FILE {source}: {exc}") from exc


class Alerting:
    def __init__(self, rules: Sequence[Rule], *, webhook_url: str | None = None,
                 post: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.rules = tuple(rules)
        self._by_name = {r.name: r for r in self.rules}
        self._webhook_url = webhook_url or None
        self._post = post or _post_json
        self._lock = threading.Lock()
        self._book = AlertBook()

    def evaluate(self, samples: Samples, now: float | None = None) -> list[Transition]:
        """One round: move the alerts, notify the webhook (in the background: a slow receiver
        does not hold up the next round)."""
        at = time.time() if now is None else now
        with self._lock:
            self._book, moves = decide(self._book, self.rules, samples, at)
        if moves and self._webhook_url:
            payload = self.notification(moves)
            threading.Thread(target=self._notify, args=(payload,), daemon=True,
                             name="alert-webhook").start()
        return moves

    def _notify(self, payload: dict[str, Any]) -> None:
        assert self._webhook_url is not None  # noqa: S101 - checked by the only caller
        try:
            self._post(self._webhook_url, payload)
        except Exception as exc:  # a receiver that is down must not stop the evaluation
            log.warning("the alert webhook did not take a notification",
                        extra={"error": f"{type(exc).__name__}: {exc}"[:300]})

    def notification(self, moves: Sequence[Transition]) -> dict[str, Any]:
        """Alertmanager's webhook payload (version 4) for these moves."""
        alerts = []
        for move in moves:
            alert, rule = move.alert, self._by_name[move.alert.rule]
            resolved = alert.state == "resolved"
            alerts.append({
                "status": "resolved" if resolved else "firing",
                "labels": {"alertname": rule.name, "severity": rule.severity,
                           **dict(alert.labels)},
                "annotations": {"summary": rule.summary, "value": _number(alert.value)},
                "startsAt": _iso(alert.active_since),
                "endsAt": _iso(alert.since) if resolved else "0001-01-01T00:00:00Z"})
        firing = any(a["status"] == "firing" for a in alerts)
        return {"version": "4", "status": "firing" if firing else "resolved",
                "receiver": "lakehouse", "groupLabels": {}, "commonLabels": {},
                "commonAnnotations": {}, "externalURL": "", "alerts": alerts}

    def listed(self, *, every_rule: bool = False) -> dict[str, Any]:
        """`GET /alerts`: the pending and firing alerts (and the resolved ones still kept);
        with `every_rule`, each rule too, `inactive` when nothing of it holds."""
        with self._lock:
            book = self._book
        alerts: list[dict[str, Any]] = []
        for alert in sorted(book.alerts.values(),
                            key=lambda a: (_STATES.index(a.state), a.rule, a.labels)):
            rule = self._by_name[alert.rule]
            alerts.append({"name": rule.name, "state": alert.state, "severity": rule.severity,
                           "summary": rule.summary, "value": _number(alert.value),
                           "since": _iso(alert.since), "labels": dict(alert.labels)})
        if every_rule:
            seen = {a["name"] for a in alerts}
            alerts += [{"name": r.name, "state": "inactive", "severity": r.severity,
                        "summary": r.summary, "value": None, "since": None,
                        "labels": dict(r.labels)} for r in self.rules if r.name not in seen]
        return {"alerts": alerts, "evaluated_at": _iso(book.evaluated_at)
                if book.evaluated_at is not None else None}

    def counts(self) -> dict[tuple[str, str], int]:
        """(state, severity) → how many alerts, for the `lakehouse_alerts` gauge."""
        with self._lock:
            book = self._book
        found: dict[tuple[str, str], int] = {}
        for alert in book.alerts.values():
            key = (alert.state, self._by_name[alert.rule].severity)
            found[key] = found.get(key, 0) + 1
        return found


def _post_json(url: str, payload: dict[str, Any]) -> None:
    httpx.post(url, json=payload, timeout=_WEBHOOK_TIMEOUT_S).raise_for_status()


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value
