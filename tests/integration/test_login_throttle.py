"""`POST /auth/login` over HTTP: throttled per user name and per client address, refused before
any password is hashed, and saying nothing about whether a user exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.core import Core
from lakehouse.auth.throttle import LoginThrottle
from tests.conftest import PASSWORD
from tests.integration.test_auth_api import assert_error

WRONG = "not the password"


def attempt(client: TestClient, username: str, password: str = WRONG) -> Any:
    return client.post("/auth/login", json={"username": username, "password": password})


@pytest.fixture
def verified(core: Core, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords argon2id verified, in order."""
    seen: list[str] = []
    verify = core.auth.passwords.verify

    def counting(stored_hash: str | None, password: str) -> bool:
        seen.append(password)
        return verify(stored_hash, password)

    monkeypatch.setattr(core.auth.passwords, "verify", counting)
    return seen


def test_a_run_of_wrong_passwords_is_throttled_before_hashing(
        auth_client: TestClient, make_user: Callable[..., str], clock: list[float],
        verified: list[str]) -> None:
    """On the test's clock, which stands still: on the real one, five hashes on a loaded
    machine took long enough that the first back-off (1 s) had passed before the sixth try."""
    make_user("bob")
    answers = [attempt(auth_client, "bob") for _ in range(24)]
    assert [a.status_code for a in answers[:5]] == [401] * 5
    for throttled in answers[5:]:
        body = assert_error(throttled, 429, "login_throttled")
        assert int(throttled.headers["retry-after"]) >= 1
        assert body["details"] == {"retry_after_s": int(throttled.headers["retry-after"])}
    # Even the right password waits its turn: a guess that happens to be right is no answer.
    assert_error(attempt(auth_client, "bob", PASSWORD), 429, "login_throttled")
    assert verified == [WRONG] * 5  # nothing throttled reached argon2id


@pytest.fixture
def clock(core: Core) -> list[float]:
    """The login throttle on a clock the test moves (now[0])."""
    now = [1000.0]
    old = core.auth.throttle
    core.auth.throttle = LoginThrottle(old.users, old.addresses, clock=lambda: now[0])
    return now


def test_back_off_doubles_and_a_success_resets_the_user(
        auth_client: TestClient, make_user: Callable[..., str], clock: list[float],
        verified: list[str]) -> None:
    make_user("bob")
    for _ in range(5):
        assert_error(attempt(auth_client, "bob"), 401, "invalid_credentials")
    for wait in (1, 2, 4):
        early = assert_error(attempt(auth_client, "bob", PASSWORD), 429)
        assert early["details"]["retry_after_s"] == wait
        clock[0] += wait
        assert_error(attempt(auth_client, "bob"), 401, "invalid_credentials")
    assert attempt(auth_client, "bob", PASSWORD).status_code == 429
    clock[0] += 8
    assert attempt(auth_client, "bob", PASSWORD).status_code == 200
    for _ in range(5):  # a success gives the user name its free failures back
        assert_error(attempt(auth_client, "bob"), 401, "invalid_credentials")
    assert len(verified) == 5 + 3 + 1 + 5


def test_throttled_answers_do_not_tell_whether_the_user_exists(
        auth_client: TestClient, make_user: Callable[..., str], clock: list[float]) -> None:
    make_user("bob")
    answers = {}
    for name in ("bob", "nobody"):
        for _ in range(5):
            assert_error(attempt(auth_client, name), 401, "invalid_credentials")
        answers[name] = attempt(auth_client, name)
    assert answers["bob"].status_code == answers["nobody"].status_code == 429
    assert answers["bob"].json() == answers["nobody"].json()
    assert answers["bob"].headers["retry-after"] == answers["nobody"].headers["retry-after"]
    assert "bob" not in answers["bob"].text


def test_one_address_trying_many_users_is_held(
        auth_client: TestClient, core: Core, clock: list[float], verified: list[str]) -> None:
    for i in range(20):  # one failure each: no user name is near its own limit
        assert_error(attempt(auth_client, f"user{i}"), 401, "invalid_credentials")
    held = attempt(auth_client, "user20")
    assert_error(held, 429, "login_throttled")
    assert held.headers["retry-after"] == "1"
    assert len(verified) == 20
    metrics = core.metrics.logins
    assert metrics.labels("throttled")._value.get() == 1
    assert metrics.labels("refused")._value.get() == 20
