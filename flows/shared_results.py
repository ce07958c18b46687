"""What one tenant may see of a shared run's result (a flush of the shared log, a compaction,
retention or cleanup of every tenant): its own tables' parts, and totals summed over those
parts only. Anything that cannot be told apart per tenant is left out, so a field added to a
summary later stays hidden until someone says how it splits.

Pure functions over the summaries the flows return (their shapes are in flows/ and tasks/).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Summary = dict[str, Any]

# Fields that name nothing of any tenant: the run itself and platform-wide counters.
GLOBAL_FIELDS = ("run_id", "flow", "state", "dry_run", "snapshot", "through_seq")
HIDDEN_ERROR = ("the run failed; its error may name other tenants' tables, so only an "
                "operator (an admin) sees it")


def owns(part: Any, tenant: str) -> bool:
    """Whether a part of a summary is the tenant's: `{"tenant": …}`, `{"table": "t/x"}` or the
    string "t/x"."""
    if isinstance(part, dict):
        if "tenant" in part:
            return bool(part["tenant"] == tenant)
        return owns(part.get("table"), tenant)
    return isinstance(part, str) and part.split("/", 1)[0] == tenant


def _own(parts: Any, tenant: str) -> list[Any]:
    return [p for p in parts if owns(p, tenant)] if isinstance(parts, list) else []


def _sum(parts: Iterable[dict[str, Any]], field: str) -> int:
    return sum(int(p.get(field) or 0) for p in parts)


def _flush(summary: Summary, tenant: str) -> Summary:
    parts = _own(summary.get("by_table"), tenant)
    return {"tables": [p["table"] for p in parts], "by_table": parts,
            "rows": _sum(parts, "rows"), "files": _sum(parts, "files"),
            "bytes": _sum(parts, "bytes")}


def _compaction(summary: Summary, tenant: str) -> Summary:
    view: Summary = {}
    plan = summary.get("plan")
    if isinstance(plan, dict):
        groups = _own(plan.get("groups"), tenant)
        view["plan"] = {"groups": groups, "files": _sum(groups, "files"),
                        "bytes": _sum(groups, "bytes"),
                        "skipped": _own(plan.get("skipped"), tenant)}
        if "groups" in summary:
            view["groups"] = len(groups)
    if "details" in summary:
        details = _own(summary["details"], tenant)
        committed = [d for d in details if d.get("snapshot") is not None]
        view.update(details=details, groups_committed=len(committed),
                    retried_groups=sum(1 for d in details if int(d.get("attempts") or 0) > 1),
                    **{field: _sum(committed, field) for field in (
                        "files_before", "files_after", "bytes_before", "bytes_after",
                        "rows_before", "rows_after")})
    return view


def _retention(summary: Summary, tenant: str) -> Summary:
    tables = _own(summary.get("tables"), tenant)
    return {"tables": tables, "files_removed": _sum(tables, "files"),
            "rows_removed": _sum(tables, "rows"), "bytes_removed": _sum(tables, "bytes")}


def _housekeeping(summary: Summary, tenant: str) -> Summary:
    return {"tables_repaired": _own(summary.get("tables_repaired"), tenant)}


# Per flow, the tenant's parts of its summary; a flow not listed shows only GLOBAL_FIELDS
# (cleanup: the files it deletes are not counted per tenant).
VIEWS: dict[str, Callable[[Summary, str], Summary]] = {
    "ingest": _flush, "compaction": _compaction, "retention": _retention,
    "housekeeping": _housekeeping,
}


def tenant_view(summary: Summary | None, tenant: str, flow: str | None = None,
                ) -> Summary | None:
    """`summary` of a shared run as `tenant` may see it (`flow`: the flow's name, when the
    summary does not say it)."""
    if summary is None:
        return None
    kind = str(summary.get("flow") or flow or "")
    view = {k: summary[k] for k in GLOBAL_FIELDS if k in summary}
    if "error" in summary:
        view["error"] = HIDDEN_ERROR
    found = VIEWS.get(kind)
    if found is not None:
        view.update(found(summary, tenant))
    return view
