"""AuthStore on the catalog database."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Engine, Executable, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from lakehouse.auth.identity import Role
from lakehouse.auth.store import RefreshState, RefreshToken, User
from lakehouse.catalog.schema import refresh_tokens, revoked_access_tokens, users
from lakehouse.errors import ConfigurationError, Conflict


class SqlAuthStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add_user(self, user: User) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(users).values(
                    username=user.username, tenant=user.tenant, role=user.role.value,
                    password_hash=user.password_hash, created_at=user.created_at,
                    disabled=user.disabled,
                ))
        except IntegrityError as exc:
            raise Conflict(f"user {user.username!r} exists", code="user_exists") from exc

    def get_user(self, username: str) -> User | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        return _user(row) if row else None

    def list_users(self, tenant: str | None = None) -> list[User]:
        query = select(users).order_by(users.c.username)
        if tenant is not None:
            query = query.where(users.c.tenant == tenant)
        with self._engine.connect() as conn:
            return [_user(row) for row in conn.execute(query)]

    def set_password(self, username: str, password_hash: str) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(update(users).where(users.c.username == username)
                                  .values(password_hash=password_hash))
        return result.rowcount == 1

    def set_disabled(self, username: str, disabled: bool) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(update(users).where(users.c.username == username)
                                  .values(disabled=disabled))
        return result.rowcount == 1

    def add_refresh_token(self, token: RefreshToken) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(refresh_tokens).values(
                    digest=token.digest, family_id=token.family_id, username=token.username,
                    issued_at=token.issued_at, expires_at=token.expires_at,
                    state=token.state.value,
                ))
        except IntegrityError as exc:
            raise Conflict("refresh token exists") from exc

    def get_refresh_token(self, digest: str) -> RefreshToken | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(refresh_tokens).where(refresh_tokens.c.digest == digest)
            ).first()
        if row is None:
            return None
        return RefreshToken(row.digest, row.family_id, row.username, row.issued_at,
                            row.expires_at, RefreshState(row.state))

    def rotate_refresh_token(self, digest: str) -> bool:
        # A conditional update: of two concurrent refreshes with the same token, one wins.
        with self._engine.begin() as conn:
            result = conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.digest == digest,
                       refresh_tokens.c.state == RefreshState.ACTIVE.value)
                .values(state=RefreshState.ROTATED.value)
            )
        return result.rowcount == 1

    def revoke_family(self, family_id: str) -> int:
        return self._revoke(refresh_tokens.c.family_id == family_id)

    def revoke_user_sessions(self, username: str) -> int:
        return self._revoke(refresh_tokens.c.username == username)

    def _revoke(self, which: ColumnElement[bool]) -> int:
        with self._engine.begin() as conn:
            result = conn.execute(
                update(refresh_tokens)
                .where(which, refresh_tokens.c.state != RefreshState.REVOKED.value)
                .values(state=RefreshState.REVOKED.value)
            )
        return result.rowcount

    def is_session_revoked(self, family_id: str) -> bool:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(refresh_tokens.c.digest)
                .where(refresh_tokens.c.family_id == family_id,
                       refresh_tokens.c.state == RefreshState.REVOKED.value).limit(1)).first()
        return found is not None

    def revoke_access_token(self, token_id: str, expires_at: int) -> None:
        """Idempotent, also when logouts with one token run at once: one insert that does
        nothing if the token is listed (reading first and inserting if absent let two of them
        both read "absent", and the second insert broke the primary key)."""
        dialect = self._engine.dialect.name
        if dialect == "postgresql":
            statement: Executable = postgresql.insert(revoked_access_tokens).values(
                token_id=token_id, expires_at=expires_at).on_conflict_do_nothing()
        elif dialect == "sqlite":
            statement = sqlite.insert(revoked_access_tokens).values(
                token_id=token_id, expires_at=expires_at).on_conflict_do_nothing()
        else:
            raise ConfigurationError(f"the catalog's database ({dialect}) is not supported; "
                                     "use SQLite or PostgreSQL")
        with self._engine.begin() as conn:
            conn.execute(statement)

    def is_access_token_revoked(self, token_id: str) -> bool:
        with self._engine.connect() as conn:
            row = conn.execute(select(revoked_access_tokens.c.token_id)
                               .where(revoked_access_tokens.c.token_id == token_id)).first()
        return row is not None

    def purge_expired(self, now: int) -> int:
        with self._engine.begin() as conn:
            a = conn.execute(delete(refresh_tokens).where(refresh_tokens.c.expires_at < now))
            b = conn.execute(delete(revoked_access_tokens)
                             .where(revoked_access_tokens.c.expires_at < now))
        return a.rowcount + b.rowcount


def _user(row: Row[tuple[object, ...]]) -> User:
    m = row._mapping
    return User(str(m["username"]), str(m["tenant"]), Role(str(m["role"])),
                str(m["password_hash"]), int(m["created_at"]),  # type: ignore[call-overload]
                bool(m["disabled"]))
