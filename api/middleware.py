"""Per request: a request id (taken from X-Request-Id or made), one log line, metrics; the body
limits, which refuse a body too large or nested too deep before any of it is parsed; and the
write admission limit, which sheds writes before their bodies are read."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core import Core
from api.deps import authenticate
from api.write_door import (
    body_too_large,
    carries_records,
    header_text,
    is_write,
    refuse,
    small_body,
)
from lakehouse.errors import InvalidInput, LakehouseError
from lakehouse.fair_share import Slots, shed_error
from lakehouse.json_nesting import NestingScan
from lakehouse.telemetry.logs import request_id_var, service_var
from lakehouse.telemetry.metrics import Metrics

log = logging.getLogger("api.access")

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Small chunks are handed on together, so the nesting scan's fixed cost per call stays small
# next to the bytes it reads.
_SCAN_BYTES = 64 * 1024


# Answers that shed load (the admission limits' refusals, marked in the request's scope). Under
# a flood they are most of the answers: each is counted in the metrics, but only one a second is
# logged (with how many were not), so a flood neither fills the disk with identical lines nor
# spends the event loop writing them. Other 429s and 503s (the login throttle, backpressure, an
# unreachable catalog) are logged one by one.
SHED_MARK = "lakehouse.shed"
# The tenant whose write slot was taken for this request before its app started
# (api/early_shed.py), which gives the slot back when the app ends.
WRITE_SLOT_TAKEN = "lakehouse.write_slot"
SHED_LOG_INTERVAL_S = 1.0


async def shed_now(scope: Scope, send: Send, error: LakehouseError) -> None:
    """An admission limit's refusal, before the body is read: marked for RequestContext's log,
    the connection kept when the body is small."""
    scope[SHED_MARK] = True
    await refuse(send, error, close=not small_body(scope))


class ShedLines:
    """Which shed answers get a log line: the first of each interval; the next one logged says
    how many went unlogged in between."""

    def __init__(self, interval_s: float = SHED_LOG_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._next_at = 0.0
        self._unlogged = 0

    def take(self, now: float) -> int | None:
        """None: leave this one out; else log it, with the count of those left out before."""
        if now < self._next_at:
            self._unlogged += 1
            return None
        self._next_at = now + self._interval_s
        unlogged, self._unlogged = self._unlogged, 0
        return unlogged


def log_request(method: str, path: str, status: int, elapsed_s: float, unlogged: int) -> None:
    """A request's access line; `unlogged`: shed answers left out since the last one logged."""
    fields: dict[str, object] = {"method": method, "path": path, "status": status,
                                 "ms": round(elapsed_s * 1000, 2)}
    if unlogged:
        fields["shed_unlogged"] = unlogged
    log.info("request", extra=fields)


def request_id() -> str:
    """A new request's id: random, not secret (uuid4 asks the kernel for bytes each time)."""
    return f"{random.getrandbits(128):032x}"


# Headers that say who a request acts as and for whom: each read once, by name, so a request
# repeating one could be counted for one tenant and served for another (the admission limits
# take the last, the routes the first). Refused for every service.
_IDENTITY_HEADERS = {b"authorization": "Authorization", b"x-tenant-id": "X-Tenant-Id"}


def repeated_identity(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The identity headers `headers` holds more than once, by name."""
    seen: set[bytes] = set()
    repeated: list[str] = []
    for name, _ in headers:
        if name in _IDENTITY_HEADERS:
            if name in seen and _IDENTITY_HEADERS[name] not in repeated:
                repeated.append(_IDENTITY_HEADERS[name])
            seen.add(name)
    return repeated


class RequestContext:
    """Pure ASGI (not BaseHTTPMiddleware) so streaming bodies and contextvars behave."""

    def __init__(self, app: ASGIApp, service: str, metrics: Metrics,
                 shed_lines: ShedLines | None = None) -> None:
        self.app = app
        self.service = service
        self.metrics = metrics
        self.shed_lines = shed_lines or ShedLines()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        given_id = incoming if SAFE_REQUEST_ID.fullmatch(incoming) else request_id()
        token_id = request_id_var.set(given_id)
        token_service = service_var.set(self.service)
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", given_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            repeated = repeated_identity(scope.get("headers") or [])
            if repeated:
                await refuse(send_with_id, InvalidInput(
                    f"the request names {' and '.join(repeated)} more than once; send each "
                    "once", code="repeated_header", details={"headers": repeated}),
                    close=not small_body(scope))
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(self.service, scope["method"], path, status, elapsed)
            unlogged = self.shed_lines.take(start) if scope.get(SHED_MARK) else 0
            if unlogged is not None:
                log_request(scope["method"], scope["path"], status, elapsed, unlogged)
            request_id_var.reset(token_id)
            service_var.reset(token_service)


class BodyLimits:
    """Every body, on every service, is limited before and while it is read: a declared
    Content-Length over the limit is refused (413) before a byte is read; a body without one
    (chunked) is counted as it arrives and refused (413) once it passes the limit; and its
    JSON nesting is counted as it arrives (lakehouse/json_nesting.py) and refused (400) past
    `max_depth`, so no parser ever sees it. Every body the services take is JSON or NDJSON,
    so every body is scanned, whatever its Content-Type says.

    A refusal met while the app reads is raised into the app (which stops reading) and its
    own answer to the failed read is replaced by the refusal."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_depth: int,
                 record_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_depth = max_depth
        self.record_body_bytes = record_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._limited(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.record_body_bytes if carries_records(scope) else self.max_body_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await refuse(send, body_too_large(limit))
            return
        body = _LimitedBody(receive, limit, NestingScan(self.max_depth))
        started = False

        async def send_unless_refused(message: Message) -> None:
            nonlocal started
            if body.refusal is not None and not started:
                return  # the app's answer to a read that failed: the refusal replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, body.receive, send_unless_refused)
        except Exception:
            if body.refusal is None or started:
                raise
        if body.refusal is not None and not started:
            await refuse(send, body.refusal)


class _LimitedBody:
    """`receive` for the app: the client's chunks, counted and scanned before they are handed
    on; once one is refused, every later read raises the same refusal."""

    def __init__(self, receive: Receive, limit: int, scan: NestingScan) -> None:
        self._receive = receive
        self._limit = limit
        self._scan = scan
        self._size = 0
        self.refusal: LakehouseError | None = None

    async def receive(self) -> Message:
        if self.refusal is not None:
            raise self.refusal
        parts: list[bytes] = []
        pending = 0
        while True:
            message = await self._receive()
            if message["type"] != "http.request":
                return message  # the client went away: what was pending is of no use
            chunk: bytes = message.get("body", b"")
            more = bool(message.get("more_body", False))
            self._size += len(chunk)
            parts.append(chunk)
            pending += len(chunk)
            try:
                if self._size > self._limit:
                    raise body_too_large(self._limit)
                if more and pending < _SCAN_BYTES:
                    continue
                joined = b"".join(parts)
                self._scan.feed(joined)
            except LakehouseError as exc:
                self.refusal = exc
                raise
            return {"type": "http.request", "body": joined, "more_body": more}


TenantOf = Callable[[Scope], Awaitable[str]]


class WriteAdmission:
    """Sheds write load before a body is read: each tenant gets its fair share of
    INGEST_MAX_INFLIGHT writes in flight (`lakehouse.fair_share`); past it the write is answered
    at once, 503 `overloaded` when the platform is full, 429 `over_fair_share` when the tenant
    holds its share while others wait, both with Retry-After. Reading first would let queues
    grow into multi-second latencies under overload. (A body declared over the limit was
    refused by BodyLimits, ahead of this.) `tenant_of` names the tenant a request counts for."""

    def __init__(self, app: ASGIApp, slots: Slots, tenant_of: TenantOf,
                 metrics: Metrics | None = None) -> None:
        self.app = app
        self.slots = slots
        self.tenant_of = tenant_of
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_write(scope) or WRITE_SLOT_TAKEN in scope:
            await self.app(scope, receive, send)
            return
        tenant = await self.tenant_of(scope)
        with self.slots.holding(tenant) as shed:
            if shed is None:
                await self.app(scope, receive, send)
                return
        if self.metrics is not None:
            self.metrics.observe_shed("writes", shed.refused.value, tenant or "(unauthenticated)")
        await shed_now(scope, send, shed_error(shed, "writes in flight"))


# A refused query's error code → the reason its shed is counted under (as writes' are).
QUERY_SHED_REASONS = {"over_fair_share": "over_share", "overloaded": "full",
                       "too_many_queries": "tenant_limit"}


class QueryAdmission:
    """Sheds queries before their requests are read, as WriteAdmission sheds writes: a query
    the registry would refuse now (its tenant at QUERY_MAX_CONCURRENT_PER_TENANT, or past its
    fair share of QUERY_MAX_CONCURRENT) is answered at once, without the body parsed, the
    caller's dependencies resolved or a thread taken to submit it. One admitted here may still
    be refused when it starts (another took the slot meanwhile): the registry decides."""

    def __init__(self, app: ASGIApp, core: Core, paths: frozenset[str],
                 tenant_of: TenantOf) -> None:
        self.app = app
        self.core = core
        self.paths = paths
        self.tenant_of = tenant_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        queries = self.core.queries
        if (queries is None or scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"] not in self.paths):
            await self.app(scope, receive, send)
            return
        tenant = await self.tenant_of(scope)
        refused = queries.registry.refusal(tenant) if tenant else None
        if refused is None:
            await self.app(scope, receive, send)
            return
        self.core.metrics.observe_shed("queries", QUERY_SHED_REASONS.get(refused.code, "full"),
                                       tenant)
        await shed_now(scope, send, refused)


def authenticated_tenant(core: Core) -> TenantOf:
    """The tenant of the request's authenticated caller (the token's validation is cached, and
    the write itself reuses it). A request that does not authenticate counts under one name of
    its own, so bad tokens together take at most one share; the app then answers it as usual."""

    async def tenant_of(scope: Scope) -> str:
        headers = dict(scope.get("headers") or [])
        try:
            caller = await authenticate(core, header_text(headers.get(b"authorization")),
                                        header_text(headers.get(b"x-tenant-id")))
        except LakehouseError:
            return ""  # no tenant is named "": a name starts with a letter
        return caller.tenant

    return tenant_of

