"""Alert rules and their evaluation, with Prometheus' model (pure: samples in, transitions out).

A rule is an expression over the platform's metrics compared with a threshold, a `for`
duration, a severity and a summary. Each series the expression yields is an alert of its own
(its labels, the rule's labels), moving inactive → pending → firing → resolved: pending while
the condition has held for less than `for`, firing once it has held that long, resolved when it
stops holding (kept visible for a while, then dropped). Only the moves to firing and to resolved
are notified, as Alertmanager expects.

Expressions (a small part of PromQL, enough for thresholds on the platform's own series):

    lakehouse_dask_workers < 1
    lakehouse_component_up{component="catalog"} == 0
    max(lakehouse_unflushed_oldest_age_seconds) > 120
    increase(lakehouse_queries_total{state="failed"}[5m]) > 5
    rate(lakehouse_shed_requests_total[1m]) > 0

A selector is a metric name with optional `{label="value", label!="value"}` matchers;
`sum`, `max`, `min` and `count` fold the matching series into one; `increase` and `rate`
take a window (`s`, `m`, `h`) over what earlier rounds matched, per series, counting a
counter that went down (a restart) from zero.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lakehouse.errors import InvalidInput
from lakehouse.telemetry.alert_windows import Window

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs: hashable and printable
Samples = Mapping[str, Sequence[tuple[Labels, float]]]  # metric name → its series now
# Earlier rounds of a windowed expression: (time, its matched series), oldest first.
Rounds = Sequence[tuple[float, Mapping[Labels, float]]]

SEVERITIES = ("info", "warning", "critical")
RESOLVED_KEPT_S = 900.0  # a resolved alert stays listed this long (then it is dropped)
_OPS = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__,
        "==": float.__eq__, "!=": float.__ne__}
_FOLDS = ("sum", "max", "min", "count")
_WINDOWED = ("increase", "rate")
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_EXPR = re.compile(
    rf"^\s*(?:(?P<fn>{'|'.join(_FOLDS + _WINDOWED)})\s*\(\s*)?"
    rf"(?P<metric>{_NAME})\s*(?:\{{(?P<matchers>[^}}]*)\}})?\s*"
    r"(?:\[\s*(?P<window>\d+(?:\.\d+)?)(?P<unit>[smh])\s*\]\s*)?"
    r"(?(fn)\)\s*|)"
    r"(?P<op>>=|<=|==|!=|>|<)\s*(?P<threshold>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")
_MATCHER = re.compile(rf'^\s*(?P<label>{_NAME})\s*(?P<op>!?=)\s*"(?P<value>[^"]*)"\s*$')
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Expression:
    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, "=" or "!=", value)
    op: str
    threshold: float
    function: str | None = None  # a fold or a windowed function
    window_s: float | None = None

    def _matches(self, labels: Labels) -> bool:
        found = dict(labels)
        return all((found.get(label, "") == value) == (op == "=")
                   for label, op, value in self.matchers)

    def values(self, samples: Samples, past: Rounds = (), now: float = 0.0,
               ) -> dict[Labels, float]:
        """The value of each series the expression yields now; `past`: what `matched` gave in
        earlier rounds (oldest first), which a windowed function reads."""
        return self.evaluate(self.matched(samples), past, now)

    def evaluate(self, current: Mapping[Labels, float], past: Rounds = (), now: float = 0.0,
                 ) -> dict[Labels, float]:
        """`values`, given what the selector matches now (`matched`)."""
        if self.function in _FOLDS:
            if not current and self.function != "count":
                return {}
            return {(): _fold(self.function, list(current.values()))}
        if self.function in _WINDOWED:
            return self._windowed(past, now, current)
        return dict(current)

    def matched(self, samples: Samples) -> dict[Labels, float]:
        """The series the selector matches now: what a window keeps of each round."""
        series = samples.get(self.metric, ())
        if not self.matchers:
            return dict(series)
        return {labels: value for labels, value in series if self._matches(labels)}

    def _windowed(self, past: Rounds, now: float,
                  current: Mapping[Labels, float]) -> dict[Labels, float]:
        window = Window(self.window_s or 0.0)
        for at, seen in (*past, (now, current)):
            window = window.added(at, seen)
        return window.values(current, now, self.function or "increase")

    def holds(self, value: float) -> bool:
        return _OPS[self.op](float(value), self.threshold)


def _fold(function: str, numbers: list[float]) -> float:
    if function == "count":
        return float(len(numbers))
    if function == "sum":
        return float(sum(numbers))
    return float(max(numbers) if function == "max" else min(numbers))


def parse_expression(text: str) -> Expression:
    found = _EXPR.match(text) if isinstance(text, str) and len(text) <= 500 else None
    if found is None:
        raise _bad_rule(f"cannot read the expression {str(text)[:120]!r}: write "
                        "[fn(]metric[{label=\"value\"}][[window]][)] op number")
    function, window = found["fn"], found["window"]
    if (function in _WINDOWED) != (window is not None):
        raise _bad_rule(f"{text!r}: increase() and rate() take a [window]; nothing else does")
    matchers = []
    for part in filter(str.strip, (found["matchers"] or "").split(",")):
        matcher = _MATCHER.match(part)
        if matcher is None:
            raise _bad_rule(f"{text!r}: a label matcher is label=\"value\" or label!=\"value\"")
        matchers.append((matcher["label"], matcher["op"], matcher["value"]))
    return Expression(found["metric"], tuple(matchers), found["op"], float(found["threshold"]),
                      function, float(window) * _UNITS[found["unit"]] if window else None)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    expression: Expression
    text: str  # the expression as written
    for_s: float
    severity: str
    summary: str
    labels: Labels = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "expr": self.text, "for_s": self.for_s,
                "severity": self.severity, "summary": self.summary, "labels": dict(self.labels)}


def parse_rules(document: Any) -> tuple[Rule, ...]:
    """Rules from the YAML file's content: `{"rules": [{"name", "expr", "for", "severity",
    "summary", "labels"}]}`; InvalidInput naming the first thing wrong."""
    entries = document.get("rules") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise _bad_rule("an alert rules file holds `rules:`, a list of rules")
    rules, names = [], set()
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise _bad_rule(f"rule {number}: a rule is a mapping with a `name`")
        name = entry["name"]
        if name in names:
            raise _bad_rule(f"rule {name!r} is defined twice")
        names.add(name)
        severity = entry.get("severity", "warning")
        if severity not in SEVERITIES:
            raise _bad_rule(f"rule {name!r}: severity is one of {', '.join(SEVERITIES)}")
        labels = entry.get("labels") or {}
        if not isinstance(labels, Mapping):
            raise _bad_rule(f"rule {name!r}: labels are a mapping of names to text")
        rules.append(Rule(name, parse_expression(entry.get("expr", "")), str(entry.get("expr")),
                          parse_duration(entry.get("for", "0s"), name),
                          severity, str(entry.get("summary", name)),
                          tuple(sorted((str(k), str(v)) for k, v in labels.items()))))
    return tuple(rules)


def parse_duration(text: Any, rule: str) -> float:
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh])\s*", str(text))
    if found is None:
        raise _bad_rule(f"rule {rule!r}: `for` is a duration such as 30s, 5m or 1h")
    return float(found[1]) * _UNITS[found[2]]


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    labels: Labels  # the series' labels, then the rule's
    state: str  # "pending", "firing" or "resolved"
    since: float  # when it entered the state
    value: float
    active_since: float  # when the condition started to hold

    def key(self) -> tuple[str, Labels]:
        return self.rule, self.labels


@dataclass(frozen=True, slots=True)
class Transition:
    alert: Alert
    previous: str  # the state it left ("inactive" for a new one)


@dataclass(frozen=True, slots=True)
class AlertBook:
    """Every alert that is pending, firing, or resolved not long ago."""

    alerts: Mapping[tuple[str, Labels], Alert] = field(default_factory=dict)
    evaluated_at: float | None = None
    # Per windowed rule, its matched series in the rounds its window still covers, with running
    # sums (lakehouse/telemetry/alert_windows.py): a round costs the series a rule matches.
    windows: Mapping[str, Window] = field(default_factory=dict)


def decide(book: AlertBook, rules: Sequence[Rule], samples: Samples,
           now: float) -> tuple[AlertBook, list[Transition]]:
    """The alerts after evaluating `rules` over the `samples` taken at `now` (and what the book
    kept of earlier rounds), and the notified moves (to firing, to resolved)."""
    alerts: dict[tuple[str, Labels], Alert] = {}
    windows: dict[str, Window] = {}
    moves: list[Transition] = []
    for rule in rules:
        expression = rule.expression
        current = expression.matched(samples)
        if expression.window_s is not None:
            window = book.windows.get(rule.name) or Window(expression.window_s)
            windows[rule.name] = window = window.added(now, current)
            values = window.values(current, now, expression.function or "increase")
        else:
            values = expression.evaluate(current)
        holding = {labels: v for labels, v in values.items() if expression.holds(v)}
        for series, value in holding.items():
            labels = tuple(sorted({**dict(series), **dict(rule.labels)}.items()))
            before = book.alerts.get((rule.name, labels))
            alert = _holding(rule, labels, value, before, now)
            alerts[alert.key()] = alert
            if alert.state == "firing" and (before is None or before.state != "firing"):
                moves.append(Transition(alert, before.state if before else "inactive"))
        for key, before in book.alerts.items():
            if key[0] != rule.name or key in alerts:
                continue
            if before.state == "firing":
                resolved = replace(before, state="resolved", since=now)
                alerts[key] = resolved
                moves.append(Transition(resolved, "firing"))
            elif before.state == "resolved" and now - before.since < RESOLVED_KEPT_S:
                alerts[key] = before
    return AlertBook(alerts, now, windows), moves


def _holding(rule: Rule, labels: Labels, value: float, before: Alert | None,
             now: float) -> Alert:
    if before is None or before.state == "resolved":
        state = "firing" if rule.for_s <= 0 else "pending"
        return Alert(rule.name, labels, state, now, value, now)
    if before.state == "pending" and now - before.active_since >= rule.for_s:
        return replace(before, state="firing", since=now, value=value)
    return replace(before, value=value)


def _bad_rule(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_alert_rule")
