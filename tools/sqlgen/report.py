"""The report of a run: figures per check, failures grouped by class and cause, each group with
its smallest reduced query, both answers, and how to make the query again (seed and index)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tools.sqlgen.runner import Failure, Tally

KINDS = ("wrong_answer", "server_error", "refused", "timeout", "accepted_invalid",
         "metamorphic")


def groups(found: Mapping[str, Sequence[Failure]]) -> dict[str, list[Failure]]:
    out: dict[str, list[Failure]] = {}
    for failures in found.values():
        for failure in failures:
            out.setdefault(failure.signature, []).append(failure)
    return dict(sorted(out.items(), key=lambda item: (KINDS.index(item[1][0].kind)
                                                      if item[1][0].kind in KINDS else 99,
                                                      -len(item[1]))))


def summary(found: Mapping[str, Sequence[Failure]], tallies: Mapping[str, Tally],
            queries: int) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    for check, failures in found.items():
        per: dict[str, int] = {}
        for failure in failures:
            per[failure.kind] = per.get(failure.kind, 0) + 1
        counts[check] = per
    return {"queries": queries,
            "checks": {check: {"runs": tallies[check].runs,
                               "seconds": round(tallies[check].seconds, 1),
                               "strategies": tallies[check].strategies,
                               "documented_refusals": tallies[check].documented,
                               "failures": counts.get(check, {})}
                       for check in found if check in tallies},
            "failures_by_kind": {kind: sum(c.get(kind, 0) for c in counts.values())
                                 for kind in KINDS},
            "known_issue_20": {str(n): sum(1 for fs in found.values() for f in fs
                                           if f.known_class == n) for n in (1, 2, 3, 4)}}


def to_json(seed: int, found: Mapping[str, Sequence[Failure]], tallies: Mapping[str, Tally],
            queries: int, meta: Mapping[str, Any]) -> str:
    return json.dumps({"seed": seed, **meta, "summary": summary(found, tallies, queries),
                       "groups": {sig: [f.to_json(seed) for f in fs[:20]]
                                  for sig, fs in groups(found).items()}},
                      indent=1, default=str)


def _smallest(failures: Sequence[Failure]) -> Failure:
    return min(failures, key=lambda f: len(f.reduced or f.query.sql))


def to_markdown(seed: int, found: Mapping[str, Sequence[Failure]],
                tallies: Mapping[str, Tally], queries: int, meta: Mapping[str, Any],
                *, examples: int = 3) -> str:
    figures = summary(found, tallies, queries)
    lines = [f"# SQL differential run, seed {seed}", ""]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    lines += ["", f"{queries} generated queries.", "",
              "| check | runs | seconds | plans | documented refusals | failures |",
              "|---|---|---|---|---|---|"]
    for check, info in figures["checks"].items():
        plans = ", ".join(f"{k} {v}" for k, v in sorted(info["strategies"].items()))
        fails = ", ".join(f"{k} {v}" for k, v in info["failures"].items()) or "0"
        lines.append(f"| {check} | {info['runs']} | {info['seconds']} | {plans} | "
                     f"{info['documented_refusals']} | {fails} |")
    lines += ["", "Failures by class: " + ", ".join(
        f"{k} {v}" for k, v in figures["failures_by_kind"].items()), ""]
    known = figures["known_issue_20"]
    if any(known.values()):
        lines += ["Of which issue 20's known classes: " + ", ".join(
            f"class {k}: {v}" for k, v in known.items() if v), ""]
    for signature, failures in groups(found).items():
        best = _smallest(failures)
        checks = sorted({f.check for f in failures})
        lines += [f"## {signature}", "",
                  f"{len(failures)} failures ({', '.join(checks)})"
                  + (f"; issue 20 class {best.known_class}" if best.known_class else ""), ""]
        for failure in sorted(failures, key=lambda f: len(f.reduced or f.query.sql))[:examples]:
            lines += [f"### query {failure.query.id} ({failure.check})", ""]
            if failure.reduced:
                lines += ["Reduced:", "", "```sql", failure.reduced, "```", ""]
            lines += ["<details><summary>as generated</summary>", "", "```sql",
                      failure.query.sql, "```", "</details>", "",
                      f"- difference: {failure.detail[:600]}",
                      f"- platform: `{json.dumps(failure.got.brief(), default=str)[:800]}`"]
            if failure.want is not None:
                reference = json.dumps(failure.want.brief(), default=str)[:800]
                lines.append(f"- reference: `{reference}`")
            lines.append("")
    return "\n".join(lines)
