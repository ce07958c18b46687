"""The Auth Gateway over HTTP, against the real SQLite catalog and real argon2id hashing."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.deps import authenticate
from api.services import Service
from lakehouse.auth.identity import Caller, Role
from lakehouse.config import Environment, Settings
from lakehouse.errors import Unauthenticated
from tests.conftest import PASSWORD

ERROR_KEYS = {"error", "message", "details"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: object, status: int, code: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in json.dumps(body)
    if code is not None:
        assert body["error"] == code, body
    return body  # type: ignore[no-any-return]


def test_token_lifecycle(auth_client: TestClient, make_user: Callable[..., str]) -> None:
    make_user("alice", tenant="acme", role=Role.WRITER)

    login = auth_client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert login.status_code == 200
    pair = login.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 900
    assert pair["access_token"] and pair["refresh_token"]

    validated = auth_client.post("/auth/validate", headers=bearer(pair["access_token"]))
    assert validated.status_code == 200
    claims = validated.json()
    assert (claims["user"], claims["tenant"], claims["role"]) == ("alice", "acme", "writer")
    assert claims["expires_at"] > time.time()

    # The token may also come in the body.
    in_body = auth_client.post("/auth/validate", json={"token": pair["access_token"]})
    assert in_body.json()["jti"] == claims["jti"]

    refreshed = auth_client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200
    new_pair = refreshed.json()
    assert new_pair["refresh_token"] != pair["refresh_token"]
    assert auth_client.post("/auth/validate",
                            headers=bearer(new_pair["access_token"])).status_code == 200

    # The old refresh token stopped working at rotation.
    old = auth_client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_error(old, 401, "refresh_token_reused")

    # Reusing the rotated token revoked its whole family: the new one is dead too.
    assert_error(auth_client.post("/auth/refresh",
                                  json={"refresh_token": new_pair["refresh_token"]}),
                 401, "refresh_token_revoked")

    # A fresh session: logout kills its refresh token and its access token.
    session = auth_client.post("/auth/login",
                               json={"username": "alice", "password": PASSWORD}).json()
    out = auth_client.post("/auth/logout", json={"refresh_token": session["refresh_token"]},
                           headers=bearer(session["access_token"]))
    assert out.status_code == 200
    assert out.json() == {"status": "logged_out", "refresh_token_revoked": True,
                          "access_token_revoked": True}
    assert_error(auth_client.post("/auth/refresh",
                                  json={"refresh_token": session["refresh_token"]}),
                 401, "refresh_token_revoked")
    assert_error(auth_client.post("/auth/validate", headers=bearer(session["access_token"])),
                 401, "token_revoked")


def test_wrong_password_and_unknown_user_look_the_same(tmp_path: Path) -> None:
    # Real OWASP cost here: the point is that both failures pay for one full argon2id hash.
    core = build_core(Settings.for_tests(tmp_path, argon2_memory_kib=19 * 1024,
                                         argon2_time_cost=2))
    core.auth.create_user("bob", PASSWORD, "acme", Role.WRITER)
    auth_client = TestClient(create_app(Service.AUTH, core))
    timings: dict[str, list[float]] = {"wrong": [], "unknown": []}
    bodies = {}
    for _ in range(5):
        for kind, name in (("wrong", "bob"), ("unknown", "nobody")):
            start = time.perf_counter()
            response = auth_client.post("/auth/login",
                                        json={"username": name, "password": "not the password"})
            timings[kind].append(time.perf_counter() - start)
            bodies[kind] = assert_error(response, 401, "invalid_credentials")
            assert response.headers["www-authenticate"] == "Bearer"
    assert bodies["wrong"] == bodies["unknown"]
    # Both verify one argon2id hash; their fastest tries (the ones nothing else on the machine
    # slowed, as `make test` runs two workers) stay within a factor of two of each other (no
    # hash at all for unknown users would be ~100x faster).
    wrong, unknown = min(timings["wrong"]), min(timings["unknown"])
    assert 0.5 < wrong / unknown < 2.0, timings
    auth_client.close()
    core.close()


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({}, 422, "invalid_request"),  # missing body
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}},
         422, "invalid_request"),
        ({"json": ["admin", "password"]}, 422, "invalid_request"),  # wrong type
        ({"json": {"username": "admin"}}, 422, "invalid_request"),  # missing field
        ({"json": {"username": 5, "password": {"a": 1}}}, 422, "invalid_request"),
        ({"json": {"username": "", "password": "x"}}, 422, "invalid_request"),
        ({"json": {"username": "admin", "password": "x" * 5000}}, 422, "invalid_request"),
    ],
)
def test_bad_login_bodies(auth_client: TestClient, kwargs: dict[str, object], status: int,
                          code: str) -> None:
    assert_error(auth_client.post("/auth/login", **kwargs), status, code)  # type: ignore[arg-type]


def _forged(payload: dict[str, object], header: dict[str, object]) -> str:
    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64(header)}.{b64(payload)}."


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {"iss": "lakehouse", "sub": "alice", "tenant": "acme",
                                 "role": "admin", "jti": "j" * 32, "iat": now,
                                 "exp": now + 600, "typ": "access"}
    claims.update(overrides)
    return claims


def test_bad_tokens_are_refused(auth_client: TestClient, core: Core,
                                make_user: Callable[..., str]) -> None:
    make_user("alice")
    secret = core.settings.jwt_secret
    cases = {
        "garbage": "not-a-jwt",
        "alg none": _forged(_claims(), {"alg": "none", "typ": "JWT"}),
        "other key": jwt.encode(_claims(), "another-secret-" + "y" * 40, algorithm="HS256"),
        "expired": jwt.encode(_claims(exp=int(time.time()) - 5), secret, algorithm="HS256"),
        "no exp": jwt.encode({k: v for k, v in _claims().items() if k != "exp"}, secret,
                             algorithm="HS256"),
        "refresh typ": jwt.encode(_claims(typ="refresh"), secret, algorithm="HS256"),
        "unknown role": jwt.encode(_claims(role="root"), secret, algorithm="HS256"),
        "HS512": jwt.encode(_claims(), secret + "z" * 40, algorithm="HS512"),
        "deleted user": jwt.encode(_claims(sub="ghost"), secret, algorithm="HS256"),
    }
    for name, token in cases.items():
        response = auth_client.post("/auth/validate", headers=bearer(token))
        body = assert_error(response, 401)
        assert response.headers["www-authenticate"] == "Bearer", name
        assert body["error"] in {"invalid_token", "token_expired"}, (name, body)
    assert_error(auth_client.post("/auth/validate"), 401, "missing_token")
    assert_error(auth_client.post("/auth/validate", headers={"Authorization": "Basic abc"}),
                 401, "invalid_authorization_header")
    assert_error(auth_client.post("/auth/validate", json={"token": 42}), 422)


def test_bad_refresh_and_logout(auth_client: TestClient) -> None:
    assert_error(auth_client.post("/auth/refresh", json={"refresh_token": "rt_unknown"}),
                 401, "invalid_refresh_token")
    assert_error(auth_client.post("/auth/refresh", json={}), 422, "invalid_request")
    assert_error(auth_client.post("/auth/refresh", content=b"[]",
                                  headers={"Content-Type": "application/json"}), 422)
    assert_error(auth_client.post("/auth/logout"), 401, "nothing_to_revoke")
    assert_error(auth_client.post("/auth/logout", json={"refresh_token": "rt_unknown"}),
                 401, "invalid_refresh_token")


def test_development_bootstrap_admin(tmp_path: Path) -> None:
    """In development the seed's `admin` / `password` works; elsewhere it does not exist."""
    for env, expected in ((Environment.DEVELOPMENT, 200), (Environment.TEST, 401)):
        settings = Settings.for_tests(tmp_path / env.value, environment=env)
        core = build_core(settings)
        with TestClient(create_app(Service.AUTH, core)) as client:
            response = client.post("/auth/login",
                                   json={"username": "admin", "password": "password"})
            assert response.status_code == expected, response.text
            if expected == 200:
                assert response.json()["tenant"] == "default"
                assert response.json()["role"] == "admin"
        core.close()


def test_the_bootstrap_admin_stops_working_once_deployed(tmp_path: Path) -> None:
    """A development run creates admin/password; the same DATA_DIR run in production disables
    it (it still has its bootstrap password), and leaves other admins alone."""
    development = Settings.for_tests(tmp_path, environment=Environment.DEVELOPMENT)
    core = build_core(development)
    assert core.auth.login("admin", "password").access_token
    core.auth.create_user("real-admin", "a good long password", "ops", Role.ADMIN)
    core.close()
    production = Settings.for_tests(tmp_path, environment=Environment.PRODUCTION,
                                    jwt_secret="p" * 48)
    deployed = build_core(production)
    try:
        with pytest.raises(Unauthenticated):
            deployed.auth.login("admin", "password")
        assert deployed.auth.login("real-admin", "a good long password").access_token
        assert deployed.auth.store.get_user("admin").disabled  # type: ignore[union-attr]
    finally:
        deployed.close()


def test_concurrent_requests_with_one_token_share_one_validation(core: Core) -> None:
    """A busy client's requests all miss the validation cache at once when it expires: they
    wait for one validation (three catalog reads), not one each; a bad token's refusal is
    shared the same way."""
    core.auth.create_user("busy", PASSWORD, "acme", Role.WRITER)
    token = core.auth.login("busy", PASSWORD).access_token
    validations: list[str] = []
    real = core.auth.authenticate

    def counted(access_token: str) -> Caller:
        validations.append(access_token)
        time.sleep(0.05)  # a slow catalog, so the requests overlap
        return real(access_token)

    core.auth.authenticate = counted  # type: ignore[method-assign]

    async def many(value: str) -> list[Caller | BaseException]:
        return await asyncio.gather(*(authenticate(core, f"Bearer {value}", None)
                                      for _ in range(50)), return_exceptions=True)

    callers = asyncio.run(many(token))
    assert validations == [token]
    assert all(isinstance(c, Caller) and c.tenant == "acme" for c in callers)
    refused = asyncio.run(many("not-a-token"))
    assert validations == [token, "not-a-token"]
    assert all(isinstance(r, Unauthenticated) for r in refused)
