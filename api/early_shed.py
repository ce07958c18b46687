"""Shedding at the HTTP parser: a write or query the admission limits refuse now is answered from
the protocol's callback for a request's headers, with no ASGI task, middleware or route.

Under a flood most answers are sheds, and each shed through the ASGI stack cost about 195 µs of
the event loop (a task, nine middleware layers each way, the request metrics), so 2,000 sheds a
second took the loop's whole share of a core and every accepted write queued behind them
(docs/scaling.md, "Overload"). Here a shed is decided and written in a few dozen µs.

Only the clear cases are decided here, the rest go on to the ASGI stack unchanged, whose
WriteAdmission and QueryAdmission decide as before: a caller whose token was validated in the
last seconds (a cache lookup, no I/O), a small announced body (the server reads past it and the
connection is kept), no `Expect: 100-continue`. The limits, errors, metrics and log lines are
the ones the middlewares use (api/middleware.py), so a client cannot tell where it was shed.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Mapping
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from api.app import QUERY_PATHS
from api.core import Core
from api.deps import cached_caller
from api.http_parser import ErrorAnswer, counted_as, error_answer, raw_response
from api.middleware import (
    QUERY_SHED_REASONS,
    SAFE_REQUEST_ID,
    WRITE_SLOT_TAKEN,
    ShedLines,
    log_request,
    repeated_identity,
    request_id,
)
from api.services import SPECS, Service
from api.write_door import (
    KEEP_ALIVE_BODY_BYTES,
    RECORD_PATHS,
    SHED_PATHS,
    declares_small_body,
    header_text,
)
from lakehouse.errors import LakehouseError
from lakehouse.fair_share import Shed, shed_error
from lakehouse.kept import Kept
from lakehouse.telemetry.logs import request_id_var, service_var

log = logging.getLogger("api.access")
KEPT_REFUSALS = 1024  # shed writes' answers kept, by what was decided (held, share, limit)


class EarlyShed:
    """One service's early refusals: `answer` is the whole HTTP response for a request the
    admission limits refuse now, or None to let the ASGI stack take it."""

    def __init__(self, core: Core, service: str, *, writes: bool,
                 query_paths: frozenset[str], shed_lines: ShedLines) -> None:
        self.core = core
        self.service = service
        self.writes = writes
        self.query_paths = query_paths
        self.shed_lines = shed_lines
        # A body up to these is read past, keeping the connection, and is within the limit
        # BodyLimits would refuse it by (413 comes before a shed, as in the middlewares).
        settings = core.settings
        self.max_record_body = min(KEEP_ALIVE_BODY_BYTES, settings.ingest_max_body_bytes)
        self.max_body = min(KEEP_ALIVE_BODY_BYTES, settings.request_max_body_bytes)
        # A flood is refused with the same few answers thousands of times a second.
        self._write_refusals: Kept[Shed, ErrorAnswer] = Kept(KEPT_REFUSALS)

    def answer(self, scope: dict[str, Any], default_headers: list[tuple[bytes, bytes]],
               ) -> bytes | str | None:
        """The response refusing the request; or the tenant whose write slot was taken for it
        (marked in `scope`, to be given back when its app ends); or None to let the ASGI stack
        decide."""
        if scope["method"] != "POST":
            return None
        path = scope["path"]
        is_write = self.writes and path in SHED_PATHS
        if not is_write and path not in self.query_paths:
            return None
        headers = dict(scope["headers"])
        # A repeated identity header is refused by RequestContext, in its words.
        tenant = None if repeated_identity(scope["headers"]) else self._tenant(headers)
        limit = self.max_record_body if path in RECORD_PATHS else self.max_body
        if tenant is None or not self._small_body(headers, limit):
            return None
        start = time.perf_counter()
        if is_write:
            shed = self.core.write_slots.take(tenant)
            if shed is None:
                scope[WRITE_SLOT_TAKEN] = tenant
                return tenant
            self.core.metrics.observe_shed("writes", shed.refused.value, tenant)
            answer = self._write_refusal(shed)
        else:
            refused = self._query_refusal(tenant)
            if refused is None:
                return None
            answer = error_answer(refused)
        status, error_headers, payload = answer
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        given_id = incoming if SAFE_REQUEST_ID.fullmatch(incoming) else request_id()
        raw = raw_response(status, [*default_headers, (b"x-request-id", given_id.encode()),
                                    *error_headers], payload)
        elapsed = time.perf_counter() - start
        self.core.metrics.observe_request(self.service, "POST", path, status, elapsed)
        self._log(path, status, elapsed, given_id)
        return raw

    def _write_refusal(self, shed: Shed) -> ErrorAnswer:
        """The answer to a shed write, kept by what was decided."""
        return self._write_refusals.get(
            shed, lambda: error_answer(shed_error(shed, "writes in flight")))

    def _tenant(self, headers: Mapping[bytes, bytes]) -> str | None:
        try:
            caller = cached_caller(self.core, header_text(headers.get(b"authorization")),
                                   header_text(headers.get(b"x-tenant-id")))
        except LakehouseError:
            return None  # the ASGI stack answers it in its own words
        return caller.tenant if caller is not None else None

    @staticmethod
    def _small_body(headers: Mapping[bytes, bytes], limit: int) -> bool:
        return declares_small_body(headers, limit) and b"transfer-encoding" not in headers

    def _query_refusal(self, tenant: str) -> LakehouseError | None:
        queries = self.core.queries
        refused = queries.registry.refusal(tenant) if queries is not None else None
        if refused is not None:
            self.core.metrics.observe_shed(
                "queries", QUERY_SHED_REASONS.get(refused.code, "full"), tenant)
        return refused

    def _log(self, path: str, status: int, elapsed: float, given_id: str) -> None:
        unlogged = self.shed_lines.take(time.perf_counter())
        if unlogged is None:
            return
        token_id = request_id_var.set(given_id)
        token_service = service_var.set(self.service)
        try:
            log_request("POST", path, status, elapsed, unlogged)
        finally:
            request_id_var.reset(token_id)
            service_var.reset(token_service)


def protocol_with(early: EarlyShed) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, answering what `early` refuses without starting the app."""
    slots = early.core.write_slots

    class SheddingProtocol(counted_as(early.core.metrics, early.service)):  # type: ignore[misc]
        _completing = False  # inside on_response_complete, run by a shed answer
        _completed_again = False  # a shed answer completed while it ran

        def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
            # A request starts: the keep-alive timer a shed answer armed while more of the
            # same read was still to be parsed must not close the connection under it.
            self._unset_keepalive_if_required()
            decided: bytes | str | None = None
            # A connection closing after its answer, or whose answers the client is not
            # reading (the write buffer full), is left to the app, which waits for the drain.
            if cycle.keep_alive and not self.flow.write_paused:
                try:
                    decided = early.answer(cast(dict[str, Any], cycle.scope),
                                           self.server_state.default_headers)
                except Exception:
                    log.exception("deciding a shed at the parser failed; left to the app")
            if decided is None:
                super()._start_asgi_task(cycle, app)
            elif isinstance(decided, str):
                self._start_holding(cycle, app, decided)
            else:
                self._answer(cycle, decided)

        def _start_holding(self, cycle: RequestResponseCycle, app: Any, tenant: str) -> None:
            """The app's task, giving the write slot back when it ends, however it ends (a
            task cancelled before it ran never enters a `finally` of its own)."""
            context = contextvars.Context() if self.config.reset_contextvars else None
            task = self.loop.create_task(cycle.run_asgi(app), context=context)
            task.add_done_callback(self.tasks.discard)
            task.add_done_callback(lambda _: slots.give_back(tenant))
            self.tasks.add(task)

        def _answer(self, cycle: RequestResponseCycle, raw: bytes) -> None:
            # As the cycle's own `send` ends a response: the body still to come is read past
            # (on_body sees the response complete), the connection kept for the next request.
            cycle.response_started = True
            cycle.response_complete = True
            self.transport.write(raw)
            cycle.message_event.set()
            if self._completing:
                # Started from on_response_complete (a pipelined request): the loop below
                # completes it, so a long pipeline of sheds does not recurse.
                self._completed_again = True
                return
            self._completing = True
            try:
                self.on_response_complete()
                while self._completed_again:
                    self._completed_again = False
                    self.on_response_complete()
            finally:
                self._completing = False

    return SheddingProtocol


def http_protocol(service: Service, core: Core, shed_lines: ShedLines) -> type[HttpToolsProtocol]:
    """The protocol a service is served with: shedding early where an admission limit applies
    (the Tenant Node's writes and queries, the Operation service's queries)."""
    query_paths = QUERY_PATHS.get(service, frozenset())
    writes = service is Service.TENANT
    if not writes and not query_paths:
        return counted_as(core.metrics, SPECS[service].title)
    return protocol_with(EarlyShed(core, SPECS[service].title, writes=writes,
                                   query_paths=query_paths, shed_lines=shed_lines))
