"""The caller of a request: one dependency every service uses to know who asks, for which tenant."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer

from api.core import Core
from lakehouse.auth.identity import TENANT_NAME, Caller, Role
from lakehouse.auth.service import AuthService
from lakehouse.errors import Unauthenticated


def get_core(request: Request) -> Core:
    core: Core = request.app.state.core
    return core


async def core_dependency(request: Request) -> Core:
    """`get_core` as a dependency: FastAPI runs a plain-def dependency on a worker thread,
    a thread hand-off on every request for a field lookup."""
    return get_core(request)


def bearer_token(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be `Bearer <access token>`",
                              code="invalid_authorization_header")
    return token.strip()


async def authenticate(core: Core, authorization: str | None,
                       x_tenant_id: str | None) -> Caller:
    """The caller named by these headers (shared by the dependency and the fast write path)."""
    token = _required_token(authorization)
    caller = core.auth.cached_caller(token)
    if caller is None:  # not seen in the last seconds: validate off the event loop
        caller = await _validated(core, token)
    return _acting(caller, x_tenant_id)


def cached_caller(core: Core, authorization: str | None, x_tenant_id: str | None) -> Caller | None:
    """`authenticate` without I/O (api/early_shed.py): the caller if the token was validated
    in the last seconds, else None; raises as `authenticate` does for bad headers."""
    caller = core.auth.cached_caller(_required_token(authorization))
    return _acting(caller, x_tenant_id) if caller is not None else None


def _required_token(authorization: str | None) -> str:
    token = bearer_token(authorization)
    if token is None:
        raise Unauthenticated("this endpoint needs `Authorization: Bearer <access token>`; "
                              "get one from POST /auth/login", code="missing_token")
    return token


def _acting(caller: Caller, x_tenant_id: str | None) -> Caller:
    return caller.acting_on(x_tenant_id.strip() if x_tenant_id is not None else None)


# Validations under way, so concurrent requests with one token share one. When a busy client's
# cached validation expires, every request it has in flight misses at once; each validating
# alone (three catalog reads) queued hundreds of them on the thread pool every few seconds.
_VALIDATING: dict[tuple[asyncio.AbstractEventLoop, AuthService, str], asyncio.Task[Caller]] = {}


async def _validated(core: Core, token: str) -> Caller:
    loop = asyncio.get_running_loop()
    key = (loop, core.auth, token)
    pending = _VALIDATING.get(key)
    if pending is None:
        pending = loop.create_task(run_in_threadpool(core.auth.authenticate, token))
        _VALIDATING[key] = pending
        pending.add_done_callback(lambda _: _VALIDATING.pop(key, None))
    # Shielded: a waiter that goes away does not cancel the others' validation.
    return await asyncio.shield(pending)


class _BearerHeader(HTTPBearer):
    """Declares the bearer scheme in every service's OpenAPI document (so `/docs` has an
    Authorize button and "Try it out" sends the token) while the header itself is judged by
    `authenticate`, with the platform's own errors: HTTPBearer would answer a malformed or
    missing header with its own 403."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return request.headers.get("authorization")


BEARER = _BearerHeader(
    auto_error=False, scheme_name="bearer", bearerFormat="JWT",
    description="An access token from POST /auth/login on the Auth Gateway (AUTH_PORT, 8090).")


async def current_caller(
    core: Annotated[Core, Depends(core_dependency)],
    authorization: Annotated[str | None, Depends(BEARER)] = None,
    x_tenant_id: Annotated[str | None, Header(
        pattern=TENANT_NAME.pattern, max_length=63,
        description="An admin's tenant to act on (others may name only their own)")] = None,
) -> Caller:
    """The authenticated caller, acting on X-Tenant-Id if given and allowed.

    401 (with `WWW-Authenticate: Bearer`) for a missing, bad, expired or revoked token; 403 when
    X-Tenant-Id names another tenant than the token's and the caller is not an admin.
    """
    return await authenticate(core, authorization, x_tenant_id)


def require_role(role: Role) -> Callable[..., object]:
    """A dependency yielding the caller if its role is at least `role`, else 403."""

    async def dependency(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        caller.require(role)
        return caller

    return dependency


CallerDep = Annotated[Caller, Depends(current_caller)]
CoreDep = Annotated[Core, Depends(core_dependency)]
