"""Pure rules of auth: roles, tenant switching, names, token encoding."""

from __future__ import annotations

import pytest

from lakehouse.auth.identity import Caller, Role, check_tenant_name, check_username
from lakehouse.auth.tokens import AccessTokens, new_refresh_token, refresh_token_digest
from lakehouse.errors import Forbidden, InvalidInput, Unauthenticated

SECRET = "s" * 40


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [(Role.READER, Role.READER, True), (Role.READER, Role.WRITER, False),
     (Role.WRITER, Role.WRITER, True), (Role.WRITER, Role.ADMIN, False),
     (Role.ADMIN, Role.WRITER, True), (Role.ADMIN, Role.ADMIN, True)],
)
def test_role_ranks(role: Role, needed: Role, allowed: bool) -> None:
    caller = Caller("u", "acme", role, "j", 0)
    if allowed:
        caller.require(needed)
    else:
        with pytest.raises(Forbidden):
            caller.require(needed)


@pytest.mark.parametrize(
    ("role", "header", "result"),
    [(Role.WRITER, None, "acme"), (Role.WRITER, "acme", "acme"), (Role.WRITER, "other", None),
     (Role.READER, "other", None), (Role.ADMIN, "other", "other"), (Role.ADMIN, None, "acme")],
)
def test_acting_tenant(role: Role, header: str | None, result: str | None) -> None:
    caller = Caller("u", "acme", role, "j", 0)
    if result is None:
        with pytest.raises(Forbidden):
            caller.acting_on(header)
    else:
        assert caller.acting_on(header).tenant == result


@pytest.mark.parametrize("name", ["default", "acme", "t1", "a-b_c", "x" * 63])
def test_good_tenant_names(name: str) -> None:
    assert check_tenant_name(name) == name


@pytest.mark.parametrize("name", ["", "Acme", "-a", "_a", "a/b", "../x", "a b", "x" * 64, "é"])
def test_bad_tenant_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_tenant_name(name)


@pytest.mark.parametrize("name", ["", " a", "a b", "a/b", "x" * 129, "-a"])
def test_bad_usernames(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_username(name)


def test_access_token_round_trip_and_expiry() -> None:
    tokens = AccessTokens(SECRET, ttl_s=60)
    token, claims = tokens.issue("alice", "acme", Role.READER, now=1000)
    assert tokens.decode(token, now=1059) == claims
    with pytest.raises(Unauthenticated) as expired:
        tokens.decode(token, now=1060)
    assert expired.value.code == "token_expired"
    with pytest.raises(Unauthenticated):
        AccessTokens("o" * 40, ttl_s=60).decode(token, now=1000)


def test_refresh_tokens_are_random_and_stored_hashed() -> None:
    first, second = new_refresh_token(), new_refresh_token()
    assert first != second and first.startswith("rt_")
    assert refresh_token_digest(first) != first
    assert len(refresh_token_digest(first)) == 64
