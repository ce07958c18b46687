"""Marking a table for the ClickHouse serving store through the Metadata Catalog's API: the
backfill is a named Prefect run (the test harness's server) that copies the table's files; the
keeper copies what later flushes add; GET /metadata/tables shows rows, the snapshot reached and
the lag; unmarking drops the mirror. The store is the real ClickHouse engine, embedded (chDB).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.serving.mirror import view_of, writer_of
from tests.conftest import logged_in


def _write(core: Core, tenant: str, first: int, count: int, table: str = "events") -> None:
    assert core.ingest is not None and core.flusher is not None
    core.ingest.write(tenant, [{"data_id": f"r{i}", "table": table,
                                "payload": {"amount": i * 1.5, "note": f"n{i}"}}
                               for i in range(first, first + count)]).answer(timeout_s=10)
    flush_here(core.flusher)


def _served(catalog: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    answer = catalog.get("/metadata/tables", params={"table": "events"}, headers=headers)
    assert answer.status_code == 200, answer.text
    [entry] = answer.json()["tables"]
    return dict(entry["serving"] or {})


def test_a_marked_table_is_backfilled_kept_in_step_and_dropped_when_unmarked(
        maintained_core: Core) -> None:
    core = maintained_core
    assert core.catalog and core.mirror_keeper and core.table_options
    tenant = "served"
    headers = logged_in(core, {tenant: ("ada", Role.WRITER), "other": ("bob", Role.WRITER)})
    store = core.serving_store()
    _write(core, tenant, 0, 30)
    _write(core, tenant, 30, 20)
    with TestClient(create_app(Service.CATALOG, core)) as catalog:
        assert _served(catalog, headers[tenant]) == {}
        answer = catalog.put("/metadata/tables/events/options", json={"serving": "clickhouse"},
                             headers=headers[tenant])
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["serving"] == "clickhouse"
        run_id = body["mirror"]["run_id"]
        assert not run_id.startswith("local-")  # a Prefect run: named, with a task per file
        assert body["mirror"]["files"] == 2

        from flows.runs import watch

        done = watch(run_id).wait(timeout_s=120)
        assert (done["files"], done["rows"]) == (2, 50)
        state = _served(catalog, headers[tenant])
        assert state["rows"] == 50 and state["current"] and state["lagging_files"] == 0
        assert state["snapshot"] == core.catalog.current_snapshot() - 1  # the mirror's commit
        # The other tenant neither sees it nor has a database of its own.
        assert store.tables("other") == []

        _write(core, tenant, 40, 25)  # 10 repeated ids (dropped as duplicates), 15 new
        lagging = _served(catalog, headers[tenant])
        assert lagging["lagging_files"] == 1 and not lagging["current"]
        assert lagging["lag_s"] >= 0 and lagging["behind_snapshots"] >= 1
        found = core.mirror_keeper.run_round()
        assert found.failed == {}
        assert found.caught_up[(tenant, "events")].files == 1
        sample = core.metrics.registry.get_sample_value
        assert sample("lakehouse_mirror_tables") == 1
        assert sample("lakehouse_mirror_failing_tables") == 0
        assert sample("lakehouse_mirror_files_copied_total") == 1
        assert sample("lakehouse_mirror_rows_copied_total") == 15
        state = _served(catalog, headers[tenant])
        assert state["rows"] == 65 and state["current"]

        # Other options may change without touching the mirror.
        answer = catalog.put("/metadata/tables/events/options",
                             json={"serving": "clickhouse", "retention_days": 30},
                             headers=headers[tenant])
        assert answer.status_code == 200 and "mirror" not in answer.json()
        assert store.count(tenant, "events", view_of(core.catalog.files(tenant, "events"))) == 65

        answer = catalog.put("/metadata/tables/events/options", json={"retention_days": 30},
                             headers=headers[tenant])
        assert answer.status_code == 200, answer.text
        assert answer.json()["mirror"] == {"dropped": True}
        assert store.tables(tenant) == []
        assert core.catalog.watermark(writer_of(tenant, "events")) == 0
        assert _served(catalog, headers[tenant]) == {}
        assert core.mirror_keeper.run_round().caught_up == {}  # no longer kept


def test_what_cannot_be_served_is_refused_and_changes_nothing(maintained_core: Core) -> None:
    core = maintained_core
    assert core.ingest is not None and core.flusher is not None and core.table_options
    tenant = "nested"
    headers = logged_in(core, {tenant: ("ada", Role.WRITER)})[tenant]
    core.ingest.write(tenant, [{"data_id": "a", "table": "events",
                                "payload": {"where": {"city": "Oslo"}}}]).answer(timeout_s=10)
    flush_here(core.flusher)
    with TestClient(create_app(Service.CATALOG, core)) as catalog:
        answer = catalog.put("/metadata/tables/events/options", json={"serving": "duckdb"},
                             headers=headers)
        assert answer.status_code == 422, answer.text
        answer = catalog.put("/metadata/tables/events/options", json={"serving": "clickhouse"},
                             headers=headers)
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"] == "not_servable"
        assert answer.json()["details"]["column"] == "where"
        assert core.table_options.get(tenant, "events").serving is None
        assert core.serving_store().tables(tenant) == []
        answer = catalog.put("/metadata/tables/missing/options", json={"serving": "clickhouse"},
                             headers=headers)
        assert answer.status_code == 404


def test_a_store_this_process_cannot_open_answers_503(tmp_path: Any,
                                                      embedded_clickhouse: Any) -> None:
    """A second embedded folder in one process (chDB opens one; the tests' own is open): the
    request that needs it is told so with a 503, and nothing is stored."""
    from api.core import build_core
    from lakehouse.config import Settings

    core = build_core(Settings.for_tests(tmp_path, clickhouse_dsn=f"chdb://{tmp_path}/other"),
                      ingest=True)
    try:
        assert core.ingest is not None and core.flusher is not None and core.table_options
        core.ingest.write("lonely", [{"data_id": "a", "table": "events", "payload": {"x": 1}}]
                          ).answer(timeout_s=10)
        flush_here(core.flusher)
        headers = logged_in(core, {"lonely": ("ada", Role.WRITER)})["lonely"]
        with TestClient(create_app(Service.CATALOG, core)) as catalog:
            answer = catalog.put("/metadata/tables/events/options",
                                 json={"serving": "clickhouse"}, headers=headers)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "clickhouse_unavailable"
        assert "one folder per process" in answer.json()["message"]
        assert core.table_options.get("lonely", "events").serving is None
    finally:
        core.close()


def test_a_column_added_joins_the_mirror_and_a_type_changed_stops_it(
        maintained_core: Core) -> None:
    core = maintained_core
    assert core.ingest is not None and core.flusher is not None and core.mirror_keeper
    tenant = "evolving"
    headers = logged_in(core, {tenant: ("ada", Role.WRITER)})[tenant]

    def write(data_id: str, payload: dict[str, Any]) -> None:
        assert core.ingest is not None and core.flusher is not None
        core.ingest.write(tenant, [{"data_id": data_id, "table": "events",
                                    "payload": payload}]).answer(timeout_s=10)
        flush_here(core.flusher)

    def ask(sql: str, engine: str) -> Any:
        with TestClient(create_app(Service.OPERATION, core)) as operation:
            return operation.post("/query/execute", headers=headers,
                                  json={"query": sql, "engine": engine})

    write("a", {"v": 1})
    with TestClient(create_app(Service.CATALOG, core)) as catalog:
        answer = catalog.put("/metadata/tables/events/options", json={"serving": "clickhouse"},
                             headers=headers)
        from flows.runs import watch

        watch(answer.json()["mirror"]["run_id"]).wait(timeout_s=120)
        write("b", {"v": 2, "w": "new"})
        assert core.mirror_keeper.run_round().failed == {}
        sql = "SELECT data_id, v, w FROM events ORDER BY data_id"
        served = ask(sql, "clickhouse")
        assert served.status_code == 200, served.text
        assert served.json()["rows"] == ask(sql, "default").json()["rows"] == [
            ["a", 1, None], ["b", 2, "new"]]
        write("c", {"v": 2.5})  # v becomes a float: the mirror would truncate it
        failed = core.mirror_keeper.run_round().failed
        assert "columns changed type" in failed[(tenant, "events")]
        assert core.metrics.registry.get_sample_value("lakehouse_mirror_failing_tables") == 1
        refused = ask("SELECT v FROM events WHERE data_id = 'c'", "clickhouse")
        assert refused.status_code == 409 and refused.json()["error"] == "mirror_behind"
        auto = ask("SELECT v FROM events WHERE data_id = 'c'", "auto")
        assert auto.json()["engine"] == "default" and auto.json()["rows"] == [[2.5]]
        listed = catalog.get("/metadata/tables", params={"table": "events"},
                             headers=headers).json()["tables"][0]["serving"]
        assert listed["current"] is False and listed["lagging_files"] == 1


def test_a_backfill_overtaken_by_an_unmarking_copies_and_moves_nothing_more(
        maintained_core: Core) -> None:
    """A backfill copies a file, the table is unmarked (its mirror dropped) and marked again
    (a second backfill), and only then does the first one go on: it copies nothing into the
    new mirror and leaves the watermark, so the mirror ends with every row once."""
    from flows.mirror import MirrorContext, backfill_job
    from flows.runs import watch

    core = maintained_core
    assert core.catalog and core.storage and core.table_options
    tenant = "raced"
    headers = logged_in(core, {tenant: ("ada", Role.WRITER)})[tenant]
    for first in (0, 10, 20):
        _write(core, tenant, first, 10)  # three files
    store = core.serving_store()
    context = MirrorContext(core.catalog, core.storage, core.table_options, store)
    with TestClient(create_app(Service.CATALOG, core)) as catalog:
        def mark(serving: str | None) -> dict[str, Any]:
            answer = catalog.put("/metadata/tables/events/options", json={"serving": serving},
                                 headers=headers)
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        first_run = mark("clickhouse")
        watch(first_run["mirror"]["run_id"]).wait(timeout_s=120)
        mark(None)
        # Marked again with a backfill of its own, driven step by step.
        from lakehouse.catalog.options import TableOptions

        core.table_options.put(tenant, "events", TableOptions(serving="clickhouse"))
        job = backfill_job(context, tenant, "events")
        planned = job.plan()
        assert planned is not None and len(planned.files) == 3
        parts = list(job.parts(planned))
        copied = [job.run_part(parts[0])]
        assert copied == [10]
        mark(None)  # drops the mirror: the next epoch
        copied.append(job.run_part(parts[1]))
        assert copied[-1] is None and store.tables(tenant) == []  # not made again
        again = mark("clickhouse")
        watch(again["mirror"]["run_id"]).wait(timeout_s=120)
        copied.append(job.run_part(parts[2]))
        summary = job.finish(planned, copied)
        assert summary.get("superseded") is True
        state = _served(catalog, headers)
        assert state["rows"] == 30 and state["current"], state
