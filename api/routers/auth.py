"""Auth Gateway: login, validate, refresh (rotating), logout."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from api.deps import BEARER, CoreDep, bearer_token
from lakehouse.auth.service import TokenPair
from lakehouse.errors import RateLimited, Unauthenticated

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(BaseModel):
    # The development bootstrap admin (.env.example), so "Try it out" works on `make run`.
    model_config = ConfigDict(strict=True, json_schema_extra={
        "examples": [{"username": "admin", "password": "password"}]})

    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=4096)


class RefreshRequest(BaseModel):
    model_config = ConfigDict(strict=True, json_schema_extra={
        "examples": [{"refresh_token": "the refresh_token POST /auth/login answered"}]})

    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutRequest(BaseModel):
    model_config = ConfigDict(strict=True, json_schema_extra={
        "examples": [{"refresh_token": "the refresh_token POST /auth/login answered"}]})

    refresh_token: str | None = Field(default=None, min_length=1, max_length=512)


class ValidateRequest(BaseModel):
    model_config = ConfigDict(strict=True, json_schema_extra={
        "examples": [{"token": "the access_token POST /auth/login answered"}]})

    token: str | None = Field(default=None, min_length=1, max_length=8192)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    tenant: str
    role: str


class ClaimsResponse(BaseModel):
    valid: bool = True
    user: str
    tenant: str
    role: str
    jti: str
    issued_at: int
    expires_at: int


def _pair(pair: TokenPair) -> TokenResponse:
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token,
                         expires_in=pair.expires_in, tenant=pair.claims.tenant,
                         role=pair.claims.role.value)


# Where a token pair leads (OpenAPI links: a client or a fuzzer can follow them).
TOKEN_LINKS: dict[str, Any] = {
    "Validate": {"operationId": "validate", "description": "The access token's claims",
                 "requestBody": {"token": "$response.body#/access_token"}},
    "Refresh": {"operationId": "refresh", "description": "A new pair for the refresh token",
                "requestBody": {"refresh_token": "$response.body#/refresh_token"}},
    "Logout": {"operationId": "logout", "description": "End the session",
               "requestBody": {"refresh_token": "$response.body#/refresh_token"}},
}


@router.post("/login", response_model=TokenResponse, responses={200: {"links": TOKEN_LINKS}})
async def login(body: LoginRequest, request: Request, core: CoreDep) -> TokenResponse:
    """Exchange a user name and password for an access token and a refresh token.

    Throttled per user name and per client address: past a few failures, `429` with
    `Retry-After`, the wait doubling with each further failure (README, "Credentials")."""
    try:
        # On the event loop: in-memory only, so a throttled attempt costs no thread, no hash.
        attempt = core.auth.admit_login(body.username,
                                        request.client.host if request.client else None)
    except RateLimited:
        core.metrics.logins.labels("throttled").inc()
        raise
    try:
        # argon2id is deliberately slow: hash on a worker thread, never on the event loop.
        pair = await run_in_threadpool(core.auth.complete_login, attempt, body.password)
    except Unauthenticated:
        core.metrics.logins.labels("refused").inc()
        raise
    core.metrics.logins.labels("ok").inc()
    return _pair(pair)


# The token may come in the body instead: the bearer scheme is one way, not a requirement.
_TOKEN_OPTIONAL: dict[str, Any] = {"security": [{}, {"bearer": []}]}


@router.post("/validate", response_model=ClaimsResponse, openapi_extra=_TOKEN_OPTIONAL)
async def validate(
    core: CoreDep,
    body: Annotated[ValidateRequest | None, Body()] = None,
    authorization: Annotated[str | None, Depends(BEARER)] = None,
) -> ClaimsResponse:
    """The claims of an access token given as `Authorization: Bearer …` or `{"token": …}`."""
    token = (body.token if body and body.token else None) or bearer_token(authorization)
    if token is None:
        raise Unauthenticated("give the access token as `Authorization: Bearer <token>` "
                              "or as {\"token\": \"…\"}", code="missing_token")
    claims = await run_in_threadpool(core.auth.validate, token)
    return ClaimsResponse(**claims.to_json())


@router.post("/refresh", response_model=TokenResponse, responses={200: {"links": TOKEN_LINKS}})
async def refresh(body: RefreshRequest, core: CoreDep) -> TokenResponse:
    """Exchange a refresh token for a new pair; the old refresh token stops working."""
    return _pair(await run_in_threadpool(core.auth.refresh, body.refresh_token))


@router.post("/logout", openapi_extra=_TOKEN_OPTIONAL)
async def logout(
    core: CoreDep,
    body: Annotated[LogoutRequest | None, Body()] = None,
    authorization: Annotated[str | None, Depends(BEARER)] = None,
) -> dict[str, Any]:
    """Revoke the refresh token's session and the access token in the Authorization header."""
    refresh_token = body.refresh_token if body else None
    access_token = bearer_token(authorization)
    if refresh_token is None and access_token is None:
        # No credentials at all: the request is well formed, the caller is nobody (401, as
        # for any operation without a token), not a bad request.
        raise Unauthenticated("give {\"refresh_token\": …} and/or `Authorization: Bearer "
                              "<token>`", code="nothing_to_revoke")
    done = await run_in_threadpool(core.auth.logout, refresh_token, access_token)
    return {"status": "logged_out", **done}
