"""Faults on three simulated hosts, with the counts that matter: records acknowledged, present,
lost and doubled; queries right, refused with 503, or wrong (never).

Each test leaves the platform as it found it (both workers verified), so the order of the tests
does not matter.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import duckdb
import httpx
import orjson
import pytest

from tests.multihost.platform import BIN, Platform, small_fragments
from tests.tpch_answers import UNORDERED, normal, query, same

BATCH = 500


def write(platform: Platform, table: str, ids: list[str]) -> list[str]:
    """Store records in batches; the ids acknowledged (2xx)."""
    acknowledged = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        body = b"\n".join(orjson.dumps({"data_id": i, "table": table,
                                        "payload": {"n": int(i.rsplit("-", 1)[1])}})
                          for i in chunk)
        try:
            response = httpx.post(platform.url(8000) + "/data/store", content=body,
                                  headers={**platform.headers,
                                           "Content-Type": "application/x-ndjson"},
                                  timeout=60)
        except httpx.HTTPError:
            continue  # no answer: not acknowledged (it may still be there; never twice)
        if response.status_code in (200, 201):
            acknowledged.extend(chunk)
    return acknowledged


def present(platform: Platform, table: str) -> list[str]:
    """Every data_id the table holds, as a query sees it (flushed or not), doubles included."""
    response = httpx.post(platform.url(8081) + "/query/execute", headers=platform.headers,
                          json={"query": f"SELECT data_id FROM {table}"},  # noqa: S608
                          timeout=120)
    assert response.status_code == 200, response.text
    return [row[0] for row in response.json()["rows"]]


def flush(platform: Platform) -> dict[str, Any]:
    response = httpx.post(platform.url(8000) + "/data/flush", headers=platform.headers,
                          timeout=300)
    body: dict[str, Any] = response.json()
    body["status_code"] = response.status_code
    return body


def counts(acknowledged: list[str], found: list[str]) -> dict[str, int]:
    unique = set(found)
    return {"acknowledged": len(acknowledged), "present": len(unique),
            "lost": len(set(acknowledged) - unique), "doubled": len(found) - len(unique)}


def test_a_worker_host_killed_during_queries(tpch_loaded: Platform,
                                             oracle: duckdb.DuckDBPyConnection) -> None:
    """Queries run without pause while a worker host dies: each answer is DuckDB's, or a
    retryable 503; never a wrong one."""
    platform = tpch_loaded
    wanted = {n: normal(oracle.sql(query(n)).to_arrow_table()) for n in (1, 3, 5, 9, 18)}
    outcomes: dict[str, int] = {"right": 0, "503": 0, "wrong": 0}
    wrong: list[Any] = []
    spans: list[tuple[float, float]] = []  # when each answered query started and ended
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            for n, want in wanted.items():
                started = time.monotonic()
                try:
                    response = httpx.post(platform.url(8081) + "/query/execute",
                                          headers=platform.headers, timeout=300,
                                          json={"query": query(n), "plan": "distributed"})
                except httpx.HTTPError as exc:  # no answer at all counts as wrong
                    outcomes["wrong"] += 1
                    wrong.append((n, repr(exc)))
                    continue
                spans.append((started, time.monotonic()))
                if response.status_code == 503:
                    outcomes["503"] += 1
                elif response.status_code == 200 and same(
                        response.json()["rows"], want, ordered=n not in UNORDERED):
                    outcomes["right"] += 1
                else:
                    outcomes["wrong"] += 1
                    wrong.append((n, response.status_code, response.text[:500]))

    with small_fragments(platform):
        runner = threading.Thread(target=run)
        runner.start()
        try:
            time.sleep(3)
            killed_at = time.monotonic()
            killed = platform.hosts["w1"].kill()
            time.sleep(8)
        finally:
            stop.set()
            runner.join(600)
    print(f"worker host killed during queries ({killed} processes): {outcomes}")
    platform.restart_worker("w1")
    assert killed > 0
    assert outcomes["wrong"] == 0, wrong
    # A query was running when the host died, and queries were answered after it.
    assert any(start < killed_at < end for start, end in spans), spans
    assert any(start > killed_at for start, _ in spans), spans


def test_a_worker_host_killed_during_a_flush_and_a_compaction(platform: Platform) -> None:
    """Acknowledged records survive a worker host dying under the flush that writes them and
    under the compaction that rewrites them: none lost, none doubled."""
    table = "fault_flush"
    acknowledged: list[str] = []
    for round_ in range(3):  # three flushes: three files per partition to compact
        acknowledged += write(platform, table, [f"r{round_}-{n}" for n in range(4000)])
        assert flush(platform)["status_code"] == 200
    acknowledged += write(platform, table, [f"r3-{n}" for n in range(4000)])
    flushing = threading.Thread(target=flush, args=(platform,))
    flushing.start()
    time.sleep(0.3)
    killed = platform.hosts["w2"].kill()
    flushing.join(600)
    after_kill = flush(platform)  # whatever the killed one left, this one completes
    assert after_kill["status_code"] == 200, after_kill
    found = counts(acknowledged, present(platform, table))
    print(f"worker host killed during a flush ({killed} processes): {found}")
    assert found["lost"] == 0 and found["doubled"] == 0, found

    platform.restart_worker("w2")
    compaction = httpx.post(platform.url(8082) + "/optimize/compact", headers=platform.headers,
                            json={"table": table}, timeout=60)
    assert compaction.status_code == 202, compaction.text
    time.sleep(0.5)
    killed = platform.hosts["w1"].kill()
    _wait_run(platform, compaction.json()["run_id"])
    found = counts(acknowledged, present(platform, table))
    print(f"worker host killed during a compaction ({killed} processes): {found}")
    assert found["lost"] == 0 and found["doubled"] == 0, found
    platform.restart_worker("w1")


def test_a_worker_host_killed_during_a_load(platform: Platform,
                                           oracle: duckdb.DuckDBPyConnection) -> None:
    """A load from S3 (its parts run on the workers) loses a worker host: the run completes
    or fails cleanly, and the table then holds the source's rows exactly once."""
    table, source = "fault_load", "s3://imports/tpch/lineitem/*.parquet"
    [[expected]] = oracle.sql("SELECT count(*) FROM lineitem").fetchall()

    def load() -> dict[str, Any]:
        response = httpx.post(platform.url(8000) + "/data/load", headers=platform.headers,
                              json={"table": table, "source": source}, timeout=120)
        assert response.status_code == 202, response.text
        return {"run_id": response.json()["run_id"]}

    started = load()
    deadline = time.monotonic() + 60
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:  # kill once the parts are under way on the workers
        run = httpx.get(platform.url(8081) + f"/runs/{started['run_id']}",
                        headers=platform.headers, timeout=30).json()
        if run.get("progress", {}).get("done", 0) >= 2 or run.get("state") == "COMPLETED":
            break
        time.sleep(0.05)
    killed = platform.hosts["w2"].kill()
    print(f"load killed at {run.get('state')} {run.get('progress')}")
    first = _wait_run(platform, started["run_id"])
    if first["state"] != "COMPLETED":  # failed cleanly: the next load does the work
        assert _wait_run(platform, load()["run_id"])["state"] == "COMPLETED"
    response = httpx.post(platform.url(8081) + "/query/execute", headers=platform.headers,
                          json={"query": f"SELECT count(*) FROM {table}"},  # noqa: S608
                          timeout=120)
    [[rows]] = response.json()["rows"]
    print(f"worker host killed during a load ({killed} processes): first run "
          f"{first['state']}; rows {rows} of {expected}")
    platform.restart_worker("w2")
    assert rows == expected


def _wait_run(platform: Platform, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run: dict[str, Any] = httpx.get(platform.url(8081) + f"/runs/{run_id}",
                                        headers=platform.headers, timeout=30).json()
        if run.get("state") in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(1)
    pytest.fail(f"run {run_id} did not end in 300 s")


def test_the_scheduler_restarted(tpch_loaded: Platform) -> None:
    """The control plane reconnects by itself; later queries and flushes use the workers."""
    platform = tpch_loaded
    assert platform.scheduler is not None
    platform.scheduler.kill()
    platform.scheduler.wait(30)
    # Meanwhile the work runs on the control plane: slower, not stopped.
    acknowledged = write(platform, "fault_scheduler", [f"s-{n}" for n in range(1000)])
    assert flush(platform)["status_code"] == 200
    platform.start_scheduler()
    deadline = time.monotonic() + 180
    ran_on: dict[str, int] = {}
    with small_fragments(platform):
        while time.monotonic() < deadline and len(ran_on) < 2:
            response = httpx.post(platform.url(8081) + "/query/execute",
                                  headers=platform.headers, timeout=300,
                                  json={"query": query(1), "plan": "distributed"})
            assert response.status_code == 200, response.text
            status = httpx.get(platform.url(8081) + f"/query/{response.json()['query_id']}",
                               headers=platform.headers, timeout=30).json()
            ran_on = status["progress"]["workers"]
            time.sleep(2)
    assert len(ran_on) == 2, (f"queries never reached both workers again: {ran_on}; "
                              f"{platform.workers()}\n{platform.hosts['w1'].log('worker-w1')}\n"
                              f"{platform.cp.log('lakehouse-up')[-3000:]}")
    platform.wait_for_workers({"w1", "w2"})
    found = counts(acknowledged, present(platform, "fault_scheduler"))
    assert found["lost"] == 0 and found["doubled"] == 0, found


def test_the_control_plane_killed_while_writing(platform: Platform) -> None:
    """`lakehouse up` and everything it runs SIGKILLed while clients write; after a restart
    every acknowledged record is there exactly once. (PostgreSQL and the S3 server stand for
    services of their own and keep running, as they would on their own hosts.)"""
    table = "fault_control_plane"
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(prefix: str) -> None:
        n = 0
        while not stop.is_set():
            acknowledged.extend(write(platform, table, [f"{prefix}-{n + i}" for i in
                                                        range(BATCH)]))
            n += BATCH

    writers = [threading.Thread(target=writer, args=(f"c{k}",)) for k in range(2)]
    for thread in writers:
        thread.start()
    time.sleep(3)
    platform.kill_up()
    stop.set()
    for thread in writers:
        thread.join(120)
    platform.start_up()
    found = counts(acknowledged, present(platform, table))
    print(f"control plane killed while writing: {found}")
    assert found["acknowledged"] > 0
    assert found["lost"] == 0 and found["doubled"] == 0, found
    platform.wait_for_workers({"w1", "w2"})


def test_a_local_storage_root_with_remote_workers_is_refused(platform: Platform) -> None:
    unsafe = platform.cp.folder / "unsafe"
    env = {**platform.env, "DATA_DIR": str(unsafe), "STORAGE_ROOT": (unsafe / "lake").as_uri(),
           "CATALOG_URL": ""}
    done = platform.cp.run([str(BIN / "lakehouse"), "up"], env, check=False)
    assert done.returncode == 1, done
    assert "STORAGE_ROOT" in done.stdout + done.stderr and "s3://" in done.stdout + done.stderr
