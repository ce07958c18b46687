"""The one dependency every service uses to know the caller: 401, 403 and the acting tenant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core
from api.deps import CallerDep, require_role
from api.services import Service
from lakehouse.auth.identity import Caller, Role


def _client(core: Core) -> TestClient:
    """A Tenant Node app with two probe routes that echo what the dependency decided."""
    app = create_app(Service.TENANT, core)
    router = APIRouter()

    @router.get("/whoami")
    def whoami(caller: CallerDep) -> dict[str, Any]:
        return {"user": caller.user, "tenant": caller.tenant, "role": caller.role.value}

    @router.get("/writers-only")
    def writers_only(caller: Annotated[Caller, Depends(require_role(Role.WRITER))]) -> str:
        return caller.user

    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False)


def test_caller_and_tenant_rules(core: Core, make_user: Callable[..., str],
                                 login: Callable[[str], dict[str, str]]) -> None:
    make_user("wendy", tenant="acme", role=Role.WRITER)
    make_user("rita", tenant="acme", role=Role.READER)
    make_user("root", tenant="ops", role=Role.ADMIN)
    tokens = {name: login(name)["access_token"] for name in ("wendy", "rita", "root")}
    client = _client(core)

    def get(path: str, user: str | None, tenant: str | None = None) -> Any:
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Bearer {tokens[user]}"
        if tenant is not None:
            headers["X-Tenant-Id"] = tenant
        return client.get(path, headers=headers)

    missing = get("/whoami", None)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"] == "missing_token"

    assert get("/whoami", "wendy").json() == {"user": "wendy", "tenant": "acme", "role": "writer"}
    assert get("/whoami", "wendy", "acme").status_code == 200
    other = get("/whoami", "wendy", "globex")
    assert other.status_code == 403
    assert other.json()["details"] == {"token_tenant": "acme", "requested_tenant": "globex"}

    # Admins act on any tenant they name; a malformed tenant name is still refused.
    assert get("/whoami", "root", "globex").json()["tenant"] == "globex"
    assert get("/whoami", "root").json()["tenant"] == "ops"
    assert get("/whoami", "root", "../etc").status_code == 400

    assert get("/writers-only", "wendy").status_code == 200
    reader = get("/writers-only", "rita")
    assert reader.status_code == 403
    assert reader.json()["details"] == {"required_role": "writer", "role": "reader"}
    assert get("/writers-only", "root").status_code == 200


def test_monitoring_logs_show_a_reader_only_their_tenant(
        client_for: Callable[[Service], TestClient], make_user: Callable[..., str],
        login: Callable[[str], dict[str, str]]) -> None:
    make_user("rita", role=Role.READER)
    make_user("root", tenant="ops", role=Role.ADMIN)
    monitoring = client_for(Service.MONITORING)
    assert monitoring.get("/logs").status_code == 401
    reader = monitoring.get("/logs", headers={"Authorization":
                                              f"Bearer {login('rita')['access_token']}"})
    assert reader.status_code == 200 and reader.json()["scope"] == "tenant"
    assert "ops" not in reader.text and "root" not in reader.text
    admin = monitoring.get("/logs?limit=5", headers={"Authorization":
                                                     f"Bearer {login('root')['access_token']}"})
    assert admin.status_code == 200
    assert admin.json()["count"] <= 5
    assert monitoring.get("/logs?level=LOUD", headers={
        "Authorization": f"Bearer {login('root')['access_token']}"}).status_code == 400
    metrics = monitoring.get("/metrics")
    assert metrics.status_code == 200
    assert "lakehouse_http_requests_total" in metrics.text
    assert 'lakehouse_logins_total{outcome="ok"}' in metrics.text


def test_logout_is_seen_at_once_despite_the_token_cache(
        core: Core, client_for: Callable[[Service], TestClient], make_user: Callable[..., str],
        login: Callable[[str], dict[str, str]]) -> None:
    make_user("wendy", tenant="acme", role=Role.WRITER)
    pair = login("wendy")
    client = _client(core)
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    assert client.get("/whoami", headers=auth).status_code == 200  # now cached
    assert client_for(Service.AUTH).post("/auth/logout", headers=auth).status_code == 200
    after = client.get("/whoami", headers=auth)
    assert after.status_code == 401
    assert after.json()["error"] == "token_revoked"


def test_every_service_declares_the_bearer_scheme_on_what_needs_a_token(core: Core) -> None:
    """So `/docs` has an Authorize button and "Try it out" sends the token; operations that
    answer anyone (login, health, metrics) declare no security, and no operation asks for the
    token as a header parameter of its own."""
    for service in Service:
        doc = create_app(service, core).openapi()
        assert doc["components"]["securitySchemes"]["bearer"] == {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "An access token from POST /auth/login on the Auth Gateway "
                           "(AUTH_PORT, 8090)."}
        secured = []
        for path, operations in doc["paths"].items():
            for method, operation in operations.items():
                names = [p["name"].lower() for p in operation.get("parameters", [])]
                assert "authorization" not in names, (service, path, method)
                if operation.get("security") == [{"bearer": []}]:
                    secured.append(path)
        assert secured, service
        assert "/health" not in secured and "/auth/login" not in secured
