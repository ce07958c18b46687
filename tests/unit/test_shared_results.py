"""A shared run's summary as one tenant sees it: a table of summaries, one per flow's shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flows.shared_results import HIDDEN_ERROR, owns, tenant_view

FLUSH = {"run_id": "r1", "flow": "ingest", "snapshot": 9, "through_seq": 40, "rows": 12,
         "files": 3, "bytes": 300, "tables": ["acme/a", "globex/g", "acme/b"],
         "by_table": [{"table": "acme/a", "rows": 2, "files": 1, "bytes": 100},
                      {"table": "globex/g", "rows": 7, "files": 1, "bytes": 100},
                      {"table": "acme/b", "rows": 3, "files": 1, "bytes": 100}]}
COMPACTION = {
    "run_id": "r2", "flow": "compaction", "dry_run": False, "groups": 2, "groups_committed": 2,
    "files_before": 7, "files_after": 2, "bytes_before": 70, "bytes_after": 60,
    "rows_before": 40, "rows_after": 40, "retried_groups": 1,
    "plan": {"groups": [{"tenant": "acme", "table": "a", "files": 3, "bytes": 30},
                        {"tenant": "globex", "table": "g", "files": 4, "bytes": 40}],
             "files": 7, "bytes": 70,
             "skipped": [{"tenant": "globex", "table": "h", "reason": "active"}]},
    "details": [{"table": "acme/a", "snapshot": 5, "files_before": 3, "files_after": 1,
                 "bytes_before": 30, "bytes_after": 25, "rows_before": 10, "rows_after": 10,
                 "attempts": 1},
                {"table": "globex/g", "snapshot": 6, "files_before": 4, "files_after": 1,
                 "bytes_before": 40, "bytes_after": 35, "rows_before": 30, "rows_after": 30,
                 "attempts": 2}]}
RETENTION = {"run_id": "r3", "flow": "retention", "files_removed": 5, "rows_removed": 50,
             "bytes_removed": 500,
             "tables": [{"tenant": "globex", "table": "g", "files": 4, "rows": 40, "bytes": 400},
                        {"tenant": "acme", "table": "a", "files": 1, "rows": 10, "bytes": 100}]}
CLEANUP = {"run_id": "r4", "flow": "cleanup", "files_deleted": 8, "bytes_freed": 800,
           "orphans_deleted": 1, "orphan_bytes_freed": 9}
HOUSEKEEPING = {"run_id": "r5", "flow": "housekeeping", "expired_tokens_purged": 4,
                "tables_repaired": [{"tenant": "globex", "table": "g"},
                                    {"tenant": "acme", "table": "a"}]}
FAILED = {"run_id": "r6", "flow": "ingest", "state": "FAILED",
          "error": "OSError: cannot write globex/g/day=2026-01-01/x.parquet"}


@pytest.mark.parametrize(("summary", "expected"), [
    (FLUSH, {"run_id": "r1", "flow": "ingest", "snapshot": 9, "through_seq": 40, "rows": 5,
             "files": 2, "bytes": 200, "tables": ["acme/a", "acme/b"],
             "by_table": [FLUSH["by_table"][0], FLUSH["by_table"][2]]}),
    (COMPACTION, {"run_id": "r2", "flow": "compaction", "dry_run": False, "groups": 1,
                  "groups_committed": 1, "retried_groups": 0, "files_before": 3,
                  "files_after": 1, "bytes_before": 30, "bytes_after": 25, "rows_before": 10,
                  "rows_after": 10, "details": [COMPACTION["details"][0]],
                  "plan": {"groups": [COMPACTION["plan"]["groups"][0]], "files": 3,
                           "bytes": 30, "skipped": []}}),
    (RETENTION, {"run_id": "r3", "flow": "retention", "files_removed": 1, "rows_removed": 10,
                 "bytes_removed": 100, "tables": [RETENTION["tables"][1]]}),
    # Not counted per tenant: only the run itself is shown.
    (CLEANUP, {"run_id": "r4", "flow": "cleanup"}),
    (HOUSEKEEPING, {"run_id": "r5", "flow": "housekeeping",
                    "tables_repaired": [{"tenant": "acme", "table": "a"}]}),
    (FAILED, {"run_id": "r6", "flow": "ingest", "state": "FAILED", "error": HIDDEN_ERROR,
              "tables": [], "by_table": [], "rows": 0, "files": 0, "bytes": 0}),
    # A flow nobody said how to split: nothing of it but the run.
    ({"run_id": "r7", "flow": "someday", "tables": ["globex/g"], "rows": 3},
     {"run_id": "r7", "flow": "someday"}),
], ids=["flush", "compaction", "retention", "cleanup", "housekeeping", "failed", "unknown"])
def test_a_tenant_sees_its_own_part(summary: dict[str, Any], expected: dict[str, Any]) -> None:
    view = tenant_view(summary, "acme")
    assert view == expected
    assert "globex" not in json.dumps(view)


def test_the_flow_may_come_from_the_run() -> None:
    summary = {k: v for k, v in FLUSH.items() if k != "flow"}
    view = tenant_view(summary, "globex", "ingest")
    assert view is not None and view["tables"] == ["globex/g"] and view["rows"] == 7
    assert tenant_view(None, "acme") is None


@pytest.mark.parametrize(("part", "mine"), [
    ("acme/a", True), ("acmex/a", False), ("globex/acme", False), ({"tenant": "acme"}, True),
    ({"tenant": "globex", "table": "acme/a"}, False), ({"table": "acme/a"}, True),
    ({"table": "a"}, False), (3, False), (None, False),
])
def test_what_counts_as_a_tenants_part(part: Any, mine: bool) -> None:
    assert owns(part, "acme") is mine
