"""The auth store interface and its in-memory implementation.

The SQL implementation lives in `lakehouse.catalog.auth_store`; one contract suite
(tests/contract/test_auth_store.py) runs against both.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from lakehouse.auth.identity import Role
from lakehouse.errors import Conflict


@dataclass(frozen=True, slots=True)
class User:
    username: str
    tenant: str
    role: Role
    password_hash: str
    created_at: int
    disabled: bool = False


class RefreshState(enum.StrEnum):
    ACTIVE = "active"
    ROTATED = "rotated"  # exchanged for a new pair; presenting it again means it was stolen
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class RefreshToken:
    digest: str
    family_id: str
    username: str
    issued_at: int
    expires_at: int
    state: RefreshState = RefreshState.ACTIVE


class AuthStore(Protocol):
    def add_user(self, user: User) -> None:
        """Store a new user; Conflict if the name is taken."""

    def get_user(self, username: str) -> User | None: ...

    def list_users(self, tenant: str | None = None) -> list[User]: ...

    def set_password(self, username: str, password_hash: str) -> bool: ...

    def set_disabled(self, username: str, disabled: bool) -> bool:
        """Disable (or enable) a user; False if there is no such user."""

    def add_refresh_token(self, token: RefreshToken) -> None: ...

    def get_refresh_token(self, digest: str) -> RefreshToken | None: ...

    def rotate_refresh_token(self, digest: str) -> bool:
        """Move an ACTIVE token to ROTATED; False if it was not active (a lost race or reuse)."""

    def revoke_family(self, family_id: str) -> int:
        """Revoke every still-usable token of a family; how many changed."""

    def revoke_user_sessions(self, username: str) -> int:
        """Revoke every still-usable refresh token of a user; how many changed."""

    def is_session_revoked(self, family_id: str) -> bool:
        """Whether the session (refresh family) was revoked (logout, reuse, an admin)."""

    def revoke_access_token(self, token_id: str, expires_at: int) -> None: ...

    def is_access_token_revoked(self, token_id: str) -> bool: ...

    def purge_expired(self, now: int) -> int:
        """Forget refresh tokens and deny-list entries that expired before `now`."""


class MemoryAuthStore:
    """A real, thread-safe AuthStore kept in dictionaries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._denied: dict[str, int] = {}

    def add_user(self, user: User) -> None:
        with self._lock:
            if user.username in self._users:
                raise Conflict(f"user {user.username!r} exists", code="user_exists")
            self._users[user.username] = user

    def get_user(self, username: str) -> User | None:
        with self._lock:
            return self._users.get(username)

    def list_users(self, tenant: str | None = None) -> list[User]:
        with self._lock:
            users = [u for u in self._users.values() if tenant is None or u.tenant == tenant]
        return sorted(users, key=lambda u: u.username)

    def set_password(self, username: str, password_hash: str) -> bool:
        return self._change(username, password_hash=password_hash)

    def set_disabled(self, username: str, disabled: bool) -> bool:
        return self._change(username, disabled=disabled)

    def _change(self, username: str, **changes: Any) -> bool:
        with self._lock:
            user = self._users.get(username)
            if user is None:
                return False
            self._users[username] = replace(user, **changes)
            return True

    def add_refresh_token(self, token: RefreshToken) -> None:
        with self._lock:
            if token.digest in self._refresh:
                raise Conflict("refresh token exists")
            self._refresh[token.digest] = token

    def get_refresh_token(self, digest: str) -> RefreshToken | None:
        with self._lock:
            return self._refresh.get(digest)

    def rotate_refresh_token(self, digest: str) -> bool:
        with self._lock:
            token = self._refresh.get(digest)
            if token is None or token.state is not RefreshState.ACTIVE:
                return False
            self._refresh[digest] = replace(token, state=RefreshState.ROTATED)
            return True

    def revoke_family(self, family_id: str) -> int:
        return self._revoke(lambda token: token.family_id == family_id)

    def revoke_user_sessions(self, username: str) -> int:
        return self._revoke(lambda token: token.username == username)

    def _revoke(self, which: Callable[[RefreshToken], bool]) -> int:
        with self._lock:
            changed = 0
            for digest, token in self._refresh.items():
                if which(token) and token.state is not RefreshState.REVOKED:
                    self._refresh[digest] = replace(token, state=RefreshState.REVOKED)
                    changed += 1
            return changed

    def is_session_revoked(self, family_id: str) -> bool:
        with self._lock:
            return any(t.family_id == family_id and t.state is RefreshState.REVOKED
                       for t in self._refresh.values())

    def revoke_access_token(self, token_id: str, expires_at: int) -> None:
        with self._lock:
            self._denied[token_id] = expires_at

    def is_access_token_revoked(self, token_id: str) -> bool:
        with self._lock:
            return token_id in self._denied

    def purge_expired(self, now: int) -> int:
        with self._lock:
            old_refresh = [d for d, t in self._refresh.items() if t.expires_at < now]
            old_denied = [j for j, exp in self._denied.items() if exp < now]
            for digest in old_refresh:
                del self._refresh[digest]
            for jti in old_denied:
                del self._denied[jti]
            return len(old_refresh) + len(old_denied)
