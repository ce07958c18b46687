"""Managing users over HTTP: the operator manages everyone, a tenant admin its own tenant's users
below the operator; disabling a user, resetting its password or revoking its sessions ends its
access within the validation cache time, on the other services too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core
from api.services import Service
from lakehouse.auth.identity import Role
from tests.conftest import PASSWORD

GOOD = "a long enough password"


@pytest.fixture
def world(core: Core) -> Iterator[tuple[Core, TestClient, TestClient]]:
    core.auth.cache_ttl_s = 0.3  # the validation cache, short so the test need not wait long
    core.auth.create_user("root", PASSWORD, "ops", Role.ADMIN)
    core.auth.create_user("boss", PASSWORD, "acme", Role.TENANT_ADMIN)
    core.auth.create_user("rival", PASSWORD, "globex", Role.WRITER)
    with TestClient(create_app(Service.AUTH, core), raise_server_exceptions=False) as auth, \
            TestClient(create_app(Service.CATALOG, core), raise_server_exceptions=False) as tenant:
        yield core, auth, tenant


def _login(auth: TestClient, user: str, password: str = PASSWORD) -> dict[str, Any]:
    answer = auth.post("/auth/login", json={"username": user, "password": password})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_a_tenant_admin_manages_its_own_tenant_only(
        world: tuple[Core, TestClient, TestClient]) -> None:
    _, auth, _ = world
    boss = _bearer(_login(auth, "boss"))
    made = auth.post("/auth/users", headers=boss,
                     json={"username": "alice", "password": GOOD, "role": "writer"})
    assert made.status_code == 201, made.text
    assert made.json() == {"username": "alice", "tenant": "acme", "role": "writer",
                           "created_at": made.json()["created_at"], "disabled": False}
    for body, status in (
            ({"username": "bob", "password": GOOD, "role": "admin"}, 403),  # above its role
            ({"username": "bob", "password": GOOD, "tenant": "globex"}, 403),  # other tenant
            ({"username": "bob", "password": "short"}, 422),
            ({"username": "alice", "password": GOOD}, 409),
            ({"username": "bad name", "password": GOOD}, 400)):
        answer = auth.post("/auth/users", headers=boss, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert set(answer.json()) == {"error", "message", "details"}
    listed = auth.get("/auth/users", headers=boss).json()
    assert [u["username"] for u in listed["users"]] == ["alice", "boss"]
    assert "rival" not in str(listed)
    # Another tenant's user and the operator are as unknown as nobody.
    for name in ("rival", "root", "nobody"):
        assert auth.post(f"/auth/users/{name}/disable", headers=boss).status_code == 404
    # Readers and writers manage nobody.
    alice = _bearer(_login(auth, "alice", GOOD))
    assert auth.get("/auth/users", headers=alice).status_code == 403
    # A tenant admin is not the operator: no other tenant through X-Tenant-Id.
    assert auth.get("/auth/users", headers={**boss, "X-Tenant-Id": "globex"}).status_code == 403


def test_the_operator_manages_every_tenant(world: tuple[Core, TestClient, TestClient]) -> None:
    _, auth, _ = world
    root = _bearer(_login(auth, "root"))
    made = auth.post("/auth/users", headers=root, json={
        "username": "globex-boss", "password": GOOD, "role": "tenant_admin", "tenant": "globex"})
    assert made.status_code == 201 and made.json()["tenant"] == "globex"
    everyone = auth.get("/auth/users", headers=root).json()
    assert {u["username"] for u in everyone["users"]} == {"root", "boss", "rival",
                                                          "globex-boss"}
    only = auth.get("/auth/users", params={"tenant": "globex"}, headers=root).json()
    assert {u["username"] for u in only["users"]} == {"rival", "globex-boss"}
    assert auth.post("/auth/users/root/disable", headers=root).status_code == 403  # itself


def test_disabling_resetting_and_revoking_end_access(
        world: tuple[Core, TestClient, TestClient]) -> None:
    core, auth, tenant = world
    boss = _bearer(_login(auth, "boss"))
    core.auth.create_user("carol", PASSWORD, "acme", Role.WRITER)

    def works(token: dict[str, Any]) -> bool:
        return bool(tenant.get("/metadata/tables", headers=_bearer(token)).status_code == 200)

    # Disabled: its token stops working within the cache time; login and refresh refused.
    token = _login(auth, "carol")
    assert works(token)
    assert auth.post("/auth/users/carol/disable", headers=boss).json()["disabled"] is True
    time.sleep(core.auth.cache_ttl_s + 0.1)
    assert not works(token)
    assert auth.post("/auth/login", json={"username": "carol",
                                          "password": PASSWORD}).status_code == 401
    assert auth.post("/auth/refresh", json={"refresh_token": token["refresh_token"]}
                     ).status_code == 401
    assert auth.post("/auth/users/carol/enable", headers=boss).json()["disabled"] is False

    # Sessions revoked: every token it had stops working, a new login works.
    first, second = _login(auth, "carol"), _login(auth, "carol")
    assert works(first) and works(second)
    revoked = auth.post("/auth/users/carol/revoke-sessions", headers=boss).json()
    assert revoked["refresh_tokens_revoked"] >= 2
    time.sleep(core.auth.cache_ttl_s + 0.1)
    assert not works(first) and not works(second)
    assert auth.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}
                     ).status_code == 401
    fresh = _login(auth, "carol")
    assert works(fresh)

    # A new password: the old one and the old sessions are out.
    reset = auth.post("/auth/users/carol/password", headers=boss, json={"password": GOOD})
    assert reset.status_code == 200 and reset.json()["sessions_revoked"] is True
    time.sleep(core.auth.cache_ttl_s + 0.1)
    assert not works(fresh)
    assert auth.post("/auth/login", json={"username": "carol",
                                          "password": PASSWORD}).status_code == 401
    assert works(_login(auth, "carol", GOOD))
