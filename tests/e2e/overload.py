"""Overload, as a user would cause it: measure what the running platform takes, then offer it
five times that for a while from one tenant, and watch another tenant, health and logins.

Used by tests/e2e/test_overload.py (which checks the outcome) and bench/resilience.py (which
prints the figures). The load is open-loop (requests are sent on a schedule, whether or not
earlier ones were answered) from raw asyncio connections, so the client costs little of the
two cores the platform also needs; the offered rate actually reached is reported beside the
one asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import psutil

ANSWER_TIMEOUT_S = 30.0  # an answer later than this counts as a failure
WRITE_BATCH = 20  # records per write: a small NDJSON batch, as a logging agent sends
QUERY = "SELECT kind, count(*) AS n, sum(n) AS total FROM records GROUP BY kind ORDER BY kind"


@dataclass(frozen=True, slots=True)
class Ports:
    auth: int
    tenant: int
    operation: int


@dataclass
class Outcome:
    """What one stream of requests got back."""

    name: str
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    accepted_latencies: list[float] = field(default_factory=list)
    shed_latencies: list[float] = field(default_factory=list)
    retry_after_missing: int = 0  # sheds (429/503) without a Retry-After header
    unanswered: int = 0  # no answer within ANSWER_TIMEOUT_S, or the connection failed
    failures: int = 0  # answers other than 2xx, 429 and 503
    # Sheds by the answer's "error" code (over_fair_share, overloaded, too_many_queries, …):
    # which rule refused them, for whoever reads a run's figures.
    shed_codes: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def accepted(self) -> int:
        return len(self.accepted_latencies)

    @property
    def shed(self) -> int:
        return len(self.shed_latencies)

    def percentile_ms(self, p: float, *, of: str = "accepted") -> float:
        values = sorted(self.accepted_latencies if of == "accepted" else self.shed_latencies)
        if not values:
            return 0.0
        return 1000 * values[min(len(values) - 1, int(p / 100 * len(values)))]

    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s else 0.0

    def figures(self) -> dict[str, Any]:
        return {"sent": self.sent, "offered_per_s": round(self.rate(), 1),
                "accepted": self.accepted, "shed": self.shed, "unanswered": self.unanswered,
                "failures": self.failures,
                "statuses": dict(sorted(self.statuses.items())),
                "accepted_p50_ms": round(self.percentile_ms(50), 1),
                "accepted_p99_ms": round(self.percentile_ms(99), 1),
                "shed_p99_ms": round(self.percentile_ms(99, of="shed"), 1),
                "shed_codes": dict(sorted(self.shed_codes.items())),
                "retry_after_missing": self.retry_after_missing}


def raw_request(method: str, path: str, port: int, body: bytes = b"", *,
                token: str | None = None, tenant: str | None = None,
                content_type: str = "application/json") -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
            f"Content-Length: {len(body)}"]
    if body:
        head.append(f"Content-Type: {content_type}")
    if token is not None:
        head.append(f"Authorization: Bearer {token}")
    if tenant is not None:
        head.append(f"X-Tenant-Id: {tenant}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def write_requests(port: int, token: str, tenant: str, prefix: str) -> Iterator[bytes]:
    """Endless distinct batches of new records (a repeated data_id would only be a duplicate)."""
    for n in itertools.count():
        lines = (orjson.dumps({"data_id": f"{prefix}-{n}-{i}",
                               "payload": {"kind": f"k{i % 5}", "n": i}})
                 for i in range(WRITE_BATCH))
        yield raw_request("POST", "/data/store", port, b"\n".join(lines), token=token,
                          tenant=tenant, content_type="application/x-ndjson")


def same_request(request: bytes) -> Iterator[bytes]:
    return itertools.repeat(request)


class _Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(request)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        headers: dict[bytes, bytes] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, headers, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _error_code(body: bytes) -> str:
    """The "error" of an error answer's body, or what was wrong with it."""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return "not_an_error_body"
    return error if isinstance(error, str) else "no_error_code"


async def offer(name: str, port: int, requests: Iterator[bytes], rate: float,
                duration_s: float, connections: int) -> Outcome:
    """Send `rate` requests a second for `duration_s` over up to `connections` connections;
    a request whose time has come while every connection waits goes as soon as one is free (so
    the rate reached may be lower than asked: `Outcome.rate`)."""
    outcome = Outcome(name)
    start = time.perf_counter()
    schedule = itertools.count()

    async def loop() -> None:
        connection = _Connection(port)
        try:
            while True:
                due = start + next(schedule) / rate
                if max(due, time.perf_counter()) - start >= duration_s:
                    return
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                request = next(requests)
                sent_at = time.perf_counter()
                outcome.sent += 1
                try:
                    status, headers, body = await asyncio.wait_for(connection.exchange(request),
                                                             ANSWER_TIMEOUT_S)
                except (OSError, ValueError, IndexError, asyncio.IncompleteReadError,
                        TimeoutError):
                    connection.close()
                    outcome.unanswered += 1
                    continue
                took = time.perf_counter() - sent_at
                outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
                if status < 300:
                    outcome.accepted_latencies.append(took)
                elif status in (429, 503):
                    outcome.shed_latencies.append(took)
                    outcome.retry_after_missing += b"retry-after" not in headers
                    code = _error_code(body)
                    outcome.shed_codes[code] = outcome.shed_codes.get(code, 0) + 1
                else:
                    outcome.failures += 1
        finally:
            connection.close()

    await asyncio.gather(*(loop() for _ in range(connections)))
    outcome.elapsed_s = time.perf_counter() - start
    return outcome


async def closed_loop_capacity(port: int, requests: Iterator[bytes], duration_s: float,
                               connections: int) -> float:
    """Accepted requests a second with `connections` clients each sending as soon as answered:
    what the platform takes when it is kept busy."""
    outcome = await offer("capacity", port, requests, 1e9, duration_s, connections)
    return outcome.accepted / outcome.elapsed_s


@dataclass
class MemoryWatch:
    """The largest resident size of a process and its children while it runs."""

    pid: int
    peak_bytes: int = 0

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            total = root.memory_info().rss + sum(
                child.memory_info().rss for child in root.children(recursive=True))
        except psutil.Error:
            return
        self.peak_bytes = max(self.peak_bytes, total)

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


@dataclass(frozen=True, slots=True)
class CpuMark:
    """CPU seconds so far: the machine's busy and total, the services' process, this process,
    and the services' event loop thread on a CPU and waiting in the run queue for one."""

    at: float
    machine_busy: float
    machine_total: float
    services: float | None  # None: the process could not be read
    generator: float
    loop_on_cpu: float | None  # None: /proc/<pid>/task/<pid>/schedstat cannot be read
    loop_waiting: float | None


def cpu_mark(pid: int) -> CpuMark:
    machine = psutil.cpu_times()
    # Linux counts a guest's time in user and nice too: only once here.
    total = sum(machine) - getattr(machine, "guest", 0.0) - getattr(machine, "guest_nice", 0.0)
    idle = machine.idle + getattr(machine, "iowait", 0.0)
    services_s: float | None
    try:
        services = psutil.Process(pid).cpu_times()
        services_s = services.user + services.system
    except psutil.Error:
        services_s = None
    mine = psutil.Process().cpu_times()
    on_cpu: float | None
    waiting: float | None
    try:  # the event loop runs on the main thread, whose thread id is the process id
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            on_cpu_ns, waiting_ns = (int(x) for x in f.read().split()[:2])
        on_cpu, waiting = on_cpu_ns / 1e9, waiting_ns / 1e9
    except (OSError, ValueError):
        on_cpu = waiting = None
    return CpuMark(time.perf_counter(), total - idle, total, services_s,
                   mine.user + mine.system, on_cpu, waiting)


def cpu_between(before: CpuMark, after: CpuMark) -> dict[str, Any]:
    """Where the CPU went between two marks: shares of one core, and the machine's busy share
    of all of them. The loop's share waiting for a CPU is time it had work and no core to run
    it on: every request waits that long too, whatever the services do."""
    wall = after.at - before.at
    cores = psutil.cpu_count() or 1
    machine_total = after.machine_total - before.machine_total

    def share(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(100 * (b - a) / wall, 1)

    return {"cores": cores,
            "machine_busy_pct": round(100 * (after.machine_busy - before.machine_busy)
                                      / machine_total, 1) if machine_total else None,
            "services_pct": share(before.services, after.services),
            "generator_pct": share(before.generator, after.generator),
            "loop_on_cpu_pct": share(before.loop_on_cpu, after.loop_on_cpu),
            "loop_waiting_pct": share(before.loop_waiting, after.loop_waiting)}


async def recovery_s(probe: Callable[[], Iterator[bytes]], port: int, normal_p50_s: float,
                     limit_s: float) -> float | None:
    """Seconds after the load stops until a write's p50 over 10 consecutive writes is within
    twice the unloaded p50 (and 10 ms), or None if not within `limit_s`."""
    start = time.perf_counter()
    connection = _Connection(port)
    requests = probe()
    window: list[float] = []
    try:
        while time.perf_counter() - start < limit_s:
            sent_at = time.perf_counter()
            try:
                status, _, _ = await asyncio.wait_for(connection.exchange(next(requests)),
                                                   ANSWER_TIMEOUT_S)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError,
                    TimeoutError):
                connection.close()
                status = 0
            took = time.perf_counter() - sent_at
            window = [*window[-9:], took if status < 300 else float("inf")]
            if len(window) == 10 and sorted(window)[5] <= max(2 * normal_p50_s, 0.010):
                return time.perf_counter() - start
            await asyncio.sleep(0.05)
    finally:
        connection.close()
    return None


@dataclass(frozen=True, slots=True)
class Plan:
    """How hard and how long: `factor` times the measured capacities for `duration_s`."""

    duration_s: float = 60.0
    factor: float = 5.0
    calm_write_rate: float = 20.0  # the other tenant: writes a second …
    calm_query_rate: float = 1.0  # … and queries a second
    health_rate: float = 5.0
    login_rate: float = 0.5
    capacity_s: float = 8.0
    # False: neither tenant queries during the flood (the write path alone, for comparison)
    queries: bool = True
    # Writes and queries a second to offer `factor` times instead of the capacities measured:
    # the same flood in runs to compare, which a measurement on a shared machine does not give.
    offered_capacity: tuple[float, float] | None = None


async def run_overload(ports: Ports, token: str, password: str, pid: int,
                       plan: Plan, say: Callable[[str], object] = print) -> dict[str, Any]:
    """Every figure of the overload: capacities, then the flood and the calm tenant's,
    health's and logins' outcomes under it, the memory peak, the recovery time."""
    def flood_writes() -> Iterator[bytes]:
        return write_requests(ports.tenant, token, "flood", f"f{time.time_ns()}")

    def calm_writes() -> Iterator[bytes]:
        return write_requests(ports.tenant, token, "calm", f"c{time.time_ns()}")

    def queries(tenant: str) -> Iterator[bytes]:
        body = orjson.dumps({"query": QUERY})
        return same_request(raw_request("POST", "/query/execute", ports.operation, body,
                                        token=token, tenant=tenant))

    # A table to query in each tenant (flushed or not, the query reads it).
    for tenant in ("flood", "calm"):
        await offer("seed", ports.tenant, write_requests(ports.tenant, token, tenant, "seed"),
                    50, 1.0, 4)
    say("measuring the unloaded latency and the capacities")
    unloaded = await offer("unloaded", ports.tenant, calm_writes(), plan.calm_write_rate,
                           3.0, 4)
    write_capacity = await closed_loop_capacity(ports.tenant, flood_writes(), plan.capacity_s,
                                                16)
    query_capacity = await closed_loop_capacity(ports.operation, queries("flood"),
                                                plan.capacity_s, 4)
    if not write_capacity or not query_capacity:
        raise RuntimeError(f"the platform took no {'writes' if not write_capacity else 'queries'}"
                           " when unloaded: see its logs")
    say(f"capacity: {write_capacity:.0f} writes/s, {query_capacity:.2f} queries/s; "
        f"offering {plan.factor:g}x {'that' if plan.offered_capacity is None else 'the given'}"
        f" for {plan.duration_s:g} s")
    flood_write_rate, flood_query_rate = (
        (plan.factor * write_capacity, plan.factor * query_capacity)
        if plan.offered_capacity is None
        else (plan.factor * plan.offered_capacity[0], plan.factor * plan.offered_capacity[1]))
    login = orjson.dumps({"username": "admin", "password": password})
    memory = MemoryWatch(pid)
    memory.sample()
    before_bytes = memory.peak_bytes
    stop = asyncio.Event()
    watching = asyncio.create_task(memory.watch(stop))
    d = plan.duration_s
    cpu_before = cpu_mark(pid)
    query_streams = [
        offer("flood queries", ports.operation, queries("flood"),
              flood_query_rate, d, 64),
        offer("calm queries", ports.operation, queries("calm"), plan.calm_query_rate, d, 4),
    ] if plan.queries else []
    streams = await asyncio.gather(
        offer("flood writes", ports.tenant, flood_writes(), flood_write_rate, d, 256),
        offer("calm writes", ports.tenant, calm_writes(), plan.calm_write_rate, d, 8),
        *query_streams,
        offer("health", ports.tenant, same_request(raw_request("GET", "/health", ports.tenant)),
              plan.health_rate, d, 2),
        offer("logins", ports.auth, same_request(raw_request("POST", "/auth/login", ports.auth,
                                                             login)),
              plan.login_rate, d, 2),
    )
    cpu = cpu_between(cpu_before, cpu_mark(pid))
    say("load stopped; waiting for normal write latency")
    back_s = await recovery_s(calm_writes, ports.tenant, unloaded.percentile_ms(50) / 1000,
                              30.0)
    stop.set()
    await watching
    return {"capacity": {"writes_per_s": round(write_capacity, 1),
                         "records_per_s": round(write_capacity * WRITE_BATCH),
                         "queries_per_s": round(query_capacity, 2)},
            "unloaded_write_p50_ms": round(unloaded.percentile_ms(50), 1),
            "streams": {s.name: s.figures() for s in streams},
            "memory": {"before_bytes": before_bytes, "peak_bytes": memory.peak_bytes},
            "cpu": cpu,
            "recovery_s": None if back_s is None else round(back_s, 2)}
