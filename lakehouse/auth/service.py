"""The token lifecycle: login (throttled, see throttle.py), validate, refresh with rotation and
reuse detection, logout."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from lakehouse.auth.identity import Caller, Role, check_tenant_name, check_username
from lakehouse.auth.passwords import Passwords
from lakehouse.auth.store import AuthStore, RefreshState, RefreshToken, User
from lakehouse.auth.throttle import LoginThrottle
from lakehouse.auth.tokens import (
    AccessClaims,
    AccessTokens,
    new_refresh_token,
    refresh_token_digest,
)
from lakehouse.errors import Unauthenticated

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "invalid username or password"
MAX_CACHED_TOKENS = 10_000


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """A login the throttle let through (AuthService.admit_login), its password not yet checked."""

    username: str
    address: str | None  # the client's, as the edge saw it; None where there is none


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    claims: AccessClaims


class AuthService:
    def __init__(
        self,
        store: AuthStore,
        passwords: Passwords,
        access: AccessTokens,
        refresh_ttl_s: int,
        *,
        throttle: LoginThrottle,
        clock: Callable[[], float] = time.time,
        cache_ttl_s: float = 5.0,
    ) -> None:
        self.store = store
        self.passwords = passwords
        self.access = access
        self.refresh_ttl_s = refresh_ttl_s
        self.throttle = throttle
        self._clock = clock
        self.cache_ttl_s = cache_ttl_s
        self._validated: dict[str, tuple[float, Caller]] = {}

    def _now(self) -> int:
        return int(self._clock())

    # --- users ---------------------------------------------------------------------------
    def create_user(self, username: str, password: str, tenant: str, role: Role) -> User:
        user = User(
            username=check_username(username),
            tenant=check_tenant_name(tenant),
            role=role,
            password_hash=self.passwords.hash(password),
            created_at=self._now(),
        )
        self.store.add_user(user)
        log.info("user created", extra={"user": username, "tenant": tenant, "role": role.value})
        return user

    # --- managing users (an admin, or a tenant admin for its tenant: api/routers/users.py) ----
    def set_disabled(self, username: str, disabled: bool) -> bool:
        """A disabled user cannot log in or refresh, and its access tokens stop working once
        the validations cached in each process expire (`cache_ttl_s`)."""
        changed = self.store.set_disabled(username, disabled)
        if changed and disabled:
            self._forget_validations(username)
            log.info("user disabled", extra={"user": username})
        return changed

    def reset_password(self, username: str, password: str) -> bool:
        """A new password; every session of the user ends (whoever had the old one is out)."""
        if not self.store.set_password(username, self.passwords.hash(password)):
            return False
        self.revoke_sessions(username)
        return True

    def revoke_sessions(self, username: str) -> int:
        """End every session of a user: its refresh tokens, and the access tokens issued with
        them (within `cache_ttl_s` in other processes)."""
        revoked = self.store.revoke_user_sessions(username)
        self._forget_validations(username)
        log.info("sessions revoked", extra={"user": username, "revoked": revoked})
        return revoked

    def _forget_validations(self, username: str) -> None:
        for token, (_, caller) in list(self._validated.items()):
            if caller.user == username:
                self._validated.pop(token, None)

    def ensure_user(self, username: str, password: str, tenant: str, role: Role) -> bool:
        """Create the user unless it exists; True if it was created."""
        if self.store.get_user(username) is not None:
            return False
        self.create_user(username, password, tenant, role)
        return True

    # --- tokens --------------------------------------------------------------------------
    def login(self, username: str, password: str, address: str | None = None) -> TokenPair:
        """`admit_login` then `complete_login`, for a caller already off the event loop."""
        return self.complete_login(self.admit_login(username, address), password)

    def admit_login(self, username: str, address: str | None) -> LoginAttempt:
        """Throttle a login before it costs anything: RateLimited (429, Retry-After) while the
        user name or the client address must wait. No I/O and no hashing, so the edge calls it
        on the event loop and a throttled storm takes neither a worker thread nor a hash. The
        attempt counts as failed until `complete_login` finds its password right."""
        self.throttle.admit(username, address)
        return LoginAttempt(username, address)

    def complete_login(self, attempt: LoginAttempt, password: str) -> TokenPair:
        """Verify the password of an admitted attempt (slow: argon2id) and issue a pair."""
        user = self.store.get_user(attempt.username)
        # Always verify, even for an unknown user, so both failures take the same time.
        ok = self.passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok or user.disabled:
            log.info("login refused", extra={"user": attempt.username[:128]})
            raise Unauthenticated(INVALID_CREDENTIALS, code="invalid_credentials")
        self.throttle.succeeded(attempt.username, attempt.address)
        return self._issue_pair(user, family_id=uuid.uuid4().hex)

    def validate(self, access_token: str) -> AccessClaims:
        claims = self.access.decode(access_token, self._now())
        if self.store.is_access_token_revoked(claims.token_id):
            raise Unauthenticated("the access token was revoked by a logout; log in again",
                                  code="token_revoked")
        user = self.store.get_user(claims.user)
        if user is None or user.disabled:
            raise Unauthenticated("the token's user no longer exists or is disabled",
                                  code="invalid_token")
        if claims.session_id is not None and self.store.is_session_revoked(claims.session_id):
            raise Unauthenticated("this session was ended (a logout, or an admin revoked it); "
                                  "log in again", code="session_revoked")
        return claims

    def authenticate(self, access_token: str) -> Caller:
        """The caller of a request. Validated tokens are remembered for a few seconds, so a busy
        client costs no database round trips per request; a logout in this process forgets its
        token at once, one in another process is seen within `cache_ttl_s`."""
        now = self._clock()
        cached = self._validated.get(access_token)
        if cached is not None and cached[0] > now:
            return cached[1]
        caller = self.validate(access_token).caller()
        if len(self._validated) >= MAX_CACHED_TOKENS:
            self._validated.clear()  # crude but bounded; entries live seconds anyway
        self._validated[access_token] = (min(now + self.cache_ttl_s, caller.expires_at), caller)
        return caller

    def cached_caller(self, access_token: str) -> Caller | None:
        """The caller if this token was validated moments ago (no I/O), else None."""
        cached = self._validated.get(access_token)
        return cached[1] if cached is not None and cached[0] > self._clock() else None

    def refresh(self, refresh_token: str) -> TokenPair:
        stored = self._lookup_refresh(refresh_token)
        if stored.state is RefreshState.ROTATED:
            # A rotated token came back: either the client or a thief holds a copy. Revoke the
            # whole family so neither can go on refreshing.
            revoked = self.store.revoke_family(stored.family_id)
            log.warning("refresh token reuse; family revoked",
                        extra={"user": stored.username, "revoked": revoked})
            raise Unauthenticated("this refresh token was already used; its session is revoked, "
                                  "log in again", code="refresh_token_reused")
        if stored.state is RefreshState.REVOKED:
            raise Unauthenticated("this refresh token was revoked; log in again",
                                  code="refresh_token_revoked")
        if stored.expires_at <= self._now():
            raise Unauthenticated("this refresh token has expired; log in again",
                                  code="refresh_token_expired")
        if not self.store.rotate_refresh_token(stored.digest):
            # Someone else rotated it between our read and our write: that is reuse too.
            self.store.revoke_family(stored.family_id)
            raise Unauthenticated("this refresh token was already used; its session is revoked, "
                                  "log in again", code="refresh_token_reused")
        user = self.store.get_user(stored.username)
        if user is None or user.disabled:
            self.store.revoke_family(stored.family_id)
            raise Unauthenticated("the token's user no longer exists or is disabled",
                                  code="invalid_token")
        return self._issue_pair(user, family_id=stored.family_id)

    def logout(self, refresh_token: str | None, access_token: str | None) -> dict[str, bool]:
        """Revoke the refresh token's session and deny-list the access token."""
        done = {"refresh_token_revoked": False, "access_token_revoked": False}
        if refresh_token is not None:
            stored = self._lookup_refresh(refresh_token)
            self.store.revoke_family(stored.family_id)
            done["refresh_token_revoked"] = True
        if access_token is not None:
            claims = self.access.decode(access_token, self._now())
            self.store.revoke_access_token(claims.token_id, claims.expires_at)
            self._validated.pop(access_token, None)
            done["access_token_revoked"] = True
        return done

    def purge_expired(self) -> int:
        return self.store.purge_expired(self._now())

    def _lookup_refresh(self, refresh_token: str) -> RefreshToken:
        stored = self.store.get_refresh_token(refresh_token_digest(refresh_token))
        if stored is None:
            raise Unauthenticated("unknown refresh token; log in again",
                                  code="invalid_refresh_token")
        return stored

    def _issue_pair(self, user: User, family_id: str) -> TokenPair:
        now = self._now()
        access, claims = self.access.issue(user.username, user.tenant, user.role, now,
                                           session=family_id)
        refresh = new_refresh_token()
        self.store.add_refresh_token(
            RefreshToken(
                digest=refresh_token_digest(refresh),
                family_id=family_id,
                username=user.username,
                issued_at=now,
                expires_at=now + self.refresh_ttl_s,
            )
        )
        return TokenPair(access, refresh, self.access.ttl_s, claims)
