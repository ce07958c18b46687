"""The platform as the differential harness reaches it: in this process (the real core, the
Operation Node's app through FastAPI's TestClient, an in-process Dask cluster), or a running
system over HTTP. Both take the same setup steps (steps.py) and answer queries the same way:
`POST /query/execute` with `"plan": "single"` or `"distributed"`, the JSON answer read by
position.

Variants of a run that need the cost model changed (rules switched off, hash joins forced) go
through the service's model in this process, and through `PUT /optimize/config` (an admin's)
over HTTP; a run switches the model, runs its queries, and puts it back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from tools.sqlgen.compare import Answer, from_json
from tools.sqlgen.oracle import arrow_table
from tools.sqlgen.schema import Dataset
from tools.sqlgen.steps import Declare, Flush, Load, Step, Write, setup_steps

QUERY_TIMEOUT_S = 60.0


class Target(Protocol):
    def run(self, sql: str, plan: str) -> Answer: ...

    def variant(self, *, rules: Sequence[str] | None = None,
                hash_joins: bool = False) -> Any: ...  # a context manager

    def close(self) -> None: ...


def answer_of(status: int, body: Any, elapsed: float) -> Answer:
    """The JSON answer of /query/execute as an Answer (values typed by their column)."""
    if status != 200 or not isinstance(body, dict) or "rows" not in body:
        if isinstance(body, dict):
            error = f"{body.get('error')}: {body.get('message')}"
        else:
            error = str(body)[:500]
        return Answer(status=status, error=error, elapsed_s=elapsed)
    names = tuple(c["name"] for c in body["columns"])
    types = tuple(c["type"] for c in body["columns"])
    rows = tuple(tuple(from_json(v, t) for v, t in zip(row, types, strict=False))
                 for row in body["rows"])
    return Answer(names, types, rows, strategy=body.get("strategy"), elapsed_s=elapsed,
                  extra={"query_id": body.get("query_id"), "truncated": body.get("truncated")})


def write_parquet(dataset: Dataset, step: Load, folder: Path) -> Path:
    path = folder / step.file
    pq.write_table(arrow_table(dataset.table(step.table), step.rows), path, row_group_size=4)
    return path


def answer_of_response(response: Any, started: float) -> Answer:
    """The answer of an HTTP response to /query/execute sent at `started` (perf_counter)."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return answer_of(response.status_code, body, time.perf_counter() - started)


# In this process -------------------------------------------------------------------------------

class InProcess:
    """The real core (SQLite catalog, RocksDB log, local files) under `workdir`, set up through
    the load path (Loader), records (IngestService.write) and flushes (Flusher); queries over
    HTTP to the Operation Node's app, distributed ones on an in-process Dask cluster."""

    def __init__(self, dataset: Dataset, workdir: Path, *, tenant: str = "acme") -> None:
        from distributed import Client, LocalCluster
        from fastapi.testclient import TestClient

        from api.app import create_app
        from api.core import build_core
        from api.services import Service
        from lakehouse.auth.identity import Role
        from lakehouse.config import Settings

        self.dataset = dataset
        self.tenant = tenant
        # A token for the whole run: a long suite on a busy machine outlives the default 15 min.
        settings = Settings.for_tests(workdir / "data", load_on_dask=False,
                                      query_track_threshold_s=3600.0,
                                      access_token_ttl_s=24 * 3600)
        self.core = build_core(settings, ingest=True)
        self.imports = settings.data_dir / "imports"
        self.imports.mkdir(parents=True, exist_ok=True)
        self.setup(setup_steps(dataset))
        password = "differential-" + "x" * 20
        self.core.auth.create_user("fuzz", password, tenant, Role.READER)
        token = self.core.auth.login("fuzz", password).access_token
        # memory_limit=0: in-process workers would measure the whole harness process against
        # their share of the machine and pause (every query then waits for its time limit).
        self.cluster = LocalCluster(n_workers=2, threads_per_worker=1,  # type: ignore[no-untyped-call]
                                    processes=False, dashboard_address=None, memory_limit=0)
        self.client = Client(self.cluster)  # type: ignore[no-untyped-call]
        # The in-process cluster stands for the scheduler the settings name.
        assert self.core.queries is not None  # noqa: S101 - build_core makes one
        self.core.queries._client = lambda: self.client
        self.http = TestClient(create_app(Service.OPERATION, self.core),
                               raise_server_exceptions=False)
        self.http.__enter__()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def setup(self, steps: Sequence[Step]) -> None:
        from flows.ingest import flush_here
        from lakehouse.catalog.declare import declare_table
        from lakehouse.ingest.service import WritePathSchema
        from lakehouse.load.loader import Loader, LoadRequest
        from lakehouse.load.sources import roots_for
        from lakehouse.schema.declared import parse_declaration

        core = self.core
        assert core.catalog and core.storage and core.declarations  # noqa: S101
        assert core.ingest and core.flusher  # noqa: S101
        loader = Loader(core.catalog, core.storage, roots_for(core.settings), core.declarations,
                        live_schema=WritePathSchema(core.ingest))
        for step in steps:
            if isinstance(step, Declare):
                declare_table(core.declarations, core.catalog, self.tenant,
                              parse_declaration(step.spec))
            elif isinstance(step, Load):
                path = write_parquet(self.dataset, step, self.imports)
                loader.run(LoadRequest(self.tenant, step.table, str(path),
                                       timestamp_column=step.timestamp_column))
            elif isinstance(step, Write):
                answer = core.ingest.write(self.tenant, list(step.records)).answer(timeout_s=30)
                if answer.get("rejected"):
                    raise RuntimeError(f"records refused: {json.dumps(answer)[:2000]}")
            elif isinstance(step, Flush):
                flush_here(core.flusher)

    def run(self, sql: str, plan: str) -> Answer:
        started = time.perf_counter()
        response = self.http.post("/query/execute", json={
            "query": sql, "plan": plan, "timeout_s": QUERY_TIMEOUT_S})
        return answer_of_response(response, started)

    @contextmanager
    def variant(self, *, rules: Sequence[str] | None = None,
                hash_joins: bool = False) -> Iterator[None]:
        service = self.core.queries
        assert service is not None  # noqa: S101 - build_core makes one
        before = service.model
        changed = before
        if rules is not None:
            changed = replace(changed, rules=tuple(rules))
        if hash_joins:
            changed = replace(changed, broadcast_threshold_bytes=0)
        service.model = changed
        try:
            yield
        finally:
            service.model = before

    def close(self) -> None:
        self.http.__exit__(None, None, None)
        self.client.close()  # type: ignore[no-untyped-call]
        self.cluster.close()  # type: ignore[no-untyped-call]
        self.core.close()


# A running system ------------------------------------------------------------------------------

class Remote:
    """A running system: login, tables set up over HTTP (files written under its DATA_DIR and
    loaded with POST /data/load, records through POST /data/store, POST /data/flush), queries
    to the Operation Node."""

    def __init__(self, dataset: Dataset, *, host: str, data_dir: Path, username: str,
                 password: str, ports: dict[str, int] | None = None,
                 timeout_s: float = QUERY_TIMEOUT_S) -> None:
        import httpx

        ports = {"auth": 8090, "tenant": 8000, "operation": 8081, "cbo": 8082,
                 "catalog": 8083, **(ports or {})}
        self.urls = {name: f"http://{host}:{port}" for name, port in ports.items()}
        self.dataset = dataset
        self.timeout_s = timeout_s
        self.http = httpx.Client(timeout=timeout_s + 30)
        login = self.http.post(f"{self.urls['auth']}/auth/login",
                               json={"username": username, "password": password})
        login.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        self.imports = data_dir / "imports" / f"sqlfuzz-{dataset.prefix}"
        self.imports.mkdir(parents=True, exist_ok=True)

    def _ok(self, response: Any, what: str) -> Any:
        if response.status_code >= 300:
            raise RuntimeError(f"{what}: {response.status_code} {response.text[:1000]}")
        return response.json()

    def setup(self) -> None:
        for step in setup_steps(self.dataset):
            if isinstance(step, Declare):
                self._ok(self.http.post(f"{self.urls['catalog']}/metadata/tables",
                                        json=step.spec), f"declare {step.table}")
            elif isinstance(step, Load):
                path = write_parquet(self.dataset, step, self.imports)
                started = self._ok(self.http.post(f"{self.urls['tenant']}/data/load", json={
                    "table": step.table, "source": str(path.resolve()),
                    "timestamp_column": step.timestamp_column}), f"load {step.table}")
                self._wait(started["run_id"])
            elif isinstance(step, Write):
                lines = "".join(json.dumps(r) + "\n" for r in step.records)
                body = self._ok(self.http.post(
                    f"{self.urls['tenant']}/data/store", content=lines.encode(),
                    headers={"Content-Type": "application/x-ndjson"}), f"store {step.table}")
                if body.get("rejected"):
                    raise RuntimeError(f"records refused: {json.dumps(body)[:2000]}")
            elif isinstance(step, Flush):
                self._ok(self.http.post(f"{self.urls['tenant']}/data/flush"), "flush")

    def _wait(self, run_id: str, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self._ok(self.http.get(f"{self.urls['operation']}/runs/{run_id}"),
                             "run state")
            name = str(state.get("state", "")).upper()
            if name == "COMPLETED":
                return
            if name in ("FAILED", "CRASHED", "CANCELLED"):
                raise RuntimeError(f"load {run_id} {name}: {json.dumps(state)[:1000]}")
            time.sleep(0.5)
        raise TimeoutError(f"load {run_id} did not finish in {timeout_s} s")

    def run(self, sql: str, plan: str) -> Answer:
        import httpx

        started = time.perf_counter()
        try:
            response = self.http.post(f"{self.urls['operation']}/query/execute", json={
                "query": sql, "plan": plan, "timeout_s": self.timeout_s})
        except httpx.TimeoutException:
            return Answer(status=408, error="client timeout",
                          elapsed_s=time.perf_counter() - started)
        return answer_of_response(response, started)

    @contextmanager
    def variant(self, *, rules: Sequence[str] | None = None,
                hash_joins: bool = False) -> Iterator[None]:
        url = f"{self.urls['cbo']}/optimize/config"
        before = self._ok(self.http.get(url), "optimizer config")
        changes: dict[str, Any] = {}
        if rules is not None:
            changes["rules_enabled"] = list(rules)
        if hash_joins:
            changes["broadcast_threshold_mb"] = 0
        if changes:
            self._ok(self.http.put(url, json=changes), "change the optimizer config")
        try:
            yield
        finally:
            if changes:
                self._ok(self.http.put(url, json={
                    "rules_enabled": before["rules_enabled"],
                    "broadcast_threshold_mb": before["broadcast_threshold_mb"]}),
                    "restore the optimizer config")

    def close(self) -> None:
        self.http.close()
