"""One contract, every AuthStore implementation: in-memory and the SQL catalog (SQLite and
PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.auth.identity import Role
from lakehouse.auth.store import AuthStore, MemoryAuthStore, RefreshState, RefreshToken, User
from lakehouse.catalog.auth_store import SqlAuthStore
from lakehouse.errors import Conflict
from tests.contract.conftest import each_store


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuthStore]:
    yield from each_store(request, tmp_path, MemoryAuthStore, SqlAuthStore)


def _user(name: str, tenant: str = "acme") -> User:
    return User(name, tenant, Role.WRITER, "$argon2id$hash", created_at=1)


def _token(digest: str, family: str = "f1", expires_at: int = 100) -> RefreshToken:
    return RefreshToken(digest, family, "alice", issued_at=1, expires_at=expires_at)


def test_users(store: AuthStore) -> None:
    store.add_user(_user("alice"))
    store.add_user(_user("bob", tenant="globex"))
    with pytest.raises(Conflict):
        store.add_user(_user("alice"))
    assert store.get_user("alice") == _user("alice")
    assert store.get_user("nobody") is None
    assert [u.username for u in store.list_users()] == ["alice", "bob"]
    assert [u.username for u in store.list_users("globex")] == ["bob"]
    assert store.set_password("alice", "new") is True
    assert store.get_user("alice").password_hash == "new"  # type: ignore[union-attr]
    assert store.set_password("nobody", "x") is False
    assert store.set_disabled("alice", True) is True
    assert store.get_user("alice").disabled is True  # type: ignore[union-attr]
    assert store.get_user("bob").disabled is False  # type: ignore[union-attr]
    assert store.set_disabled("alice", False) is True
    assert store.get_user("alice").disabled is False  # type: ignore[union-attr]
    assert store.set_disabled("nobody", True) is False


def test_refresh_rotation_is_once_only(store: AuthStore) -> None:
    store.add_refresh_token(_token("d1"))
    with pytest.raises(Conflict):
        store.add_refresh_token(_token("d1"))
    assert store.rotate_refresh_token("d1") is True
    assert store.rotate_refresh_token("d1") is False
    assert store.get_refresh_token("d1").state is RefreshState.ROTATED  # type: ignore[union-attr]
    assert store.rotate_refresh_token("missing") is False


def test_a_users_sessions_are_revoked_together(store: AuthStore) -> None:
    store.add_refresh_token(_token("a1", family="fa"))
    store.add_refresh_token(_token("a2", family="fb"))
    store.add_refresh_token(RefreshToken("b1", "fc", "bob", issued_at=1, expires_at=100))
    assert store.rotate_refresh_token("a1") is True  # a rotated token is still its session's
    assert not store.is_session_revoked("fa") and not store.is_session_revoked("fb")
    assert store.revoke_user_sessions("alice") == 2
    assert store.is_session_revoked("fa") and store.is_session_revoked("fb")
    assert not store.is_session_revoked("fc") and not store.is_session_revoked("nope")
    assert store.revoke_user_sessions("alice") == 0
    assert store.revoke_family("fc") == 1 and store.is_session_revoked("fc")


def test_concurrent_rotation_has_one_winner(store: AuthStore) -> None:
    store.add_refresh_token(_token("race"))
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda: wins.append(store.rotate_refresh_token("race")))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_revoke_family_and_deny_list(store: AuthStore) -> None:
    store.add_refresh_token(_token("a", "fam"))
    store.add_refresh_token(_token("b", "fam"))
    store.add_refresh_token(_token("c", "other"))
    store.rotate_refresh_token("a")
    assert store.revoke_family("fam") == 2
    assert store.revoke_family("fam") == 0
    assert store.get_refresh_token("b").state is RefreshState.REVOKED  # type: ignore[union-attr]
    assert store.get_refresh_token("c").state is RefreshState.ACTIVE  # type: ignore[union-attr]
    assert store.rotate_refresh_token("b") is False

    assert store.is_access_token_revoked("jti") is False
    store.revoke_access_token("jti", expires_at=50)
    store.revoke_access_token("jti", expires_at=50)  # twice is harmless
    assert store.is_access_token_revoked("jti") is True


def test_concurrent_revocations_of_one_token_all_succeed(store: AuthStore) -> None:
    """Eight logouts with one access token at once: each is answered, none breaks the key."""
    for round_ in range(5):
        token = f"jti-{round_}"
        start = threading.Barrier(8)
        failures: list[BaseException] = []

        def revoke(token: str = token, start: threading.Barrier = start,
                   failures: list[BaseException] = failures) -> None:
            start.wait()
            try:
                store.revoke_access_token(token, expires_at=100)
            except BaseException as exc:  # collected for the assertion below
                failures.append(exc)

        threads = [threading.Thread(target=revoke) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert store.is_access_token_revoked(token) is True


def test_purge_expired(store: AuthStore) -> None:
    store.add_refresh_token(_token("old", expires_at=10))
    store.add_refresh_token(_token("new", expires_at=1000))
    store.revoke_access_token("old-jti", expires_at=10)
    store.revoke_access_token("new-jti", expires_at=1000)
    assert store.purge_expired(now=500) == 2
    assert store.get_refresh_token("old") is None
    assert store.get_refresh_token("new") is not None
    assert store.is_access_token_revoked("old-jti") is False
    assert store.is_access_token_revoked("new-jti") is True
