"""Access tokens (HS256 JWTs) and refresh tokens (opaque, stored only as their SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from lakehouse.auth.identity import Caller, Role
from lakehouse.errors import Unauthenticated

ALGORITHM = "HS256"
ISSUER = "lakehouse"
REFRESH_PREFIX = "rt_"
CLOCK_SKEW_S = 30  # hosts of a split deployment disagree a little about the time


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user: str
    tenant: str
    role: Role
    token_id: str
    issued_at: int
    expires_at: int
    session_id: str | None = None  # the refresh family it was issued with (None: older tokens)

    def caller(self) -> Caller:
        return Caller(self.user, self.tenant, self.role, self.token_id, self.expires_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "tenant": self.tenant,
            "role": self.role.value,
            "jti": self.token_id,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }


class AccessTokens:
    """Signs and checks access tokens with one secret and a fixed algorithm list."""

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def issue(self, user: str, tenant: str, role: Role, now: int,
              session: str | None = None) -> tuple[str, AccessClaims]:
        claims = AccessClaims(user, tenant, role, uuid.uuid4().hex, now, now + self.ttl_s,
                              session)
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "sub": user,
            "tenant": tenant,
            "role": role.value,
            "jti": claims.token_id,
            "iat": now,
            "exp": claims.expires_at,
            "typ": "access",
        }
        if session is not None:
            payload["sid"] = session
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims

    def decode(self, token: str, now: int) -> AccessClaims:
        """The token's claims, or Unauthenticated saying what is wrong with it."""
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],  # never taken from the token: no `none`, no RS/HS swap
                issuer=ISSUER,
                # Time is checked below against our clock, so tests and callers control it.
                options={"require": ["exp", "iat", "sub", "jti", "iss"],
                         "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("the access token is not valid", code="invalid_token",
                                  details={"reason": str(exc)}) from exc
        if payload.get("typ") != "access":
            raise Unauthenticated("not an access token", code="invalid_token")
        try:
            role = Role(payload["role"])
            tenant = str(payload["tenant"])
        except (KeyError, ValueError) as exc:
            raise Unauthenticated("the access token lacks a tenant or role",
                                  code="invalid_token") from exc
        try:
            issued_at, expires_at = int(payload["iat"]), int(payload["exp"])
        except (TypeError, ValueError) as exc:
            raise Unauthenticated("the access token's times are not numbers",
                                  code="invalid_token") from exc
        if expires_at <= now:
            raise Unauthenticated("the access token has expired; log in or refresh",
                                  code="token_expired")
        if issued_at > now + CLOCK_SKEW_S:
            raise Unauthenticated("the access token was issued in the future",
                                  code="invalid_token")
        session = payload.get("sid")
        return AccessClaims(str(payload["sub"]), tenant, role, str(payload["jti"]),
                            issued_at, expires_at, str(session) if session else None)


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def refresh_token_digest(token: str) -> str:
    """What the store keeps: a leaked catalog does not leak usable refresh tokens."""
    return hashlib.sha256(token.encode()).hexdigest()
