"""The `lakehouse` command against a real catalog in a temporary DATA_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.core import build_core
from cli.main import app
from lakehouse.config import Settings


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("JWT_SECRET", "cli-test-secret-" + "z" * 32)
    monkeypatch.setenv("ARGON2_MEMORY_KIB", "64")
    monkeypatch.setenv("ARGON2_TIME_COST", "1")
    return tmp_path


def test_users_create_prompts_then_login_works(env: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["users", "create", "--tenant", "acme", "--role", "writer",
                                 "alice"], input="s3cret-pass\ns3cret-pass\n")
    assert result.exit_code == 0, result.output
    assert "created user alice" in result.output

    core = build_core(Settings())
    pair = core.auth.login("alice", "s3cret-pass")
    assert (pair.claims.tenant, pair.claims.role.value) == ("acme", "writer")
    core.close()

    listed = runner.invoke(app, ["users", "list", "--tenant", "acme"])
    assert "alice" in listed.output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--tenant", "acme", "--role", "writer", "bob"], "short\n", "at least 8"),
        (["--tenant", "Bad Tenant", "--role", "reader", "bob"], "long-enough\n", "tenant names"),
        (["--tenant", "acme", "--role", "root", "bob"], "long-enough\n", "root"),
    ],
)
def test_users_create_refuses_bad_input(env: Path, args: list[str], stdin: str,
                                        message: str) -> None:
    result = CliRunner().invoke(app, ["users", "create", *args, "--password-stdin"], input=stdin)
    assert result.exit_code != 0
    assert message in result.output


def test_duplicate_user_is_refused(env: Path) -> None:
    runner = CliRunner()
    args = ["users", "create", "--tenant", "acme", "--role", "reader", "carol", "--password-stdin"]
    assert runner.invoke(app, args, input="long-enough\n").exit_code == 0
    again = runner.invoke(app, args, input="long-enough\n")
    assert again.exit_code == 1
    assert "exists" in again.output


def test_production_refuses_the_default_secret(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.delenv("JWT_SECRET")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "JWT_SECRET" in result.output


def test_unknown_service_is_refused(env: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--service", "nope"])
    assert result.exit_code == 2
    assert "unknown service" in result.output


def test_tables_declare(env: Path) -> None:
    spec = env / "people.json"
    spec.write_text('{"table": "people", "columns": {"name": "string"}, "required": ["name"]}')
    runner = CliRunner()
    done = runner.invoke(app, ["tables", "declare", str(spec), "--tenant", "acme"])
    assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["tables", "declare", str(spec), "--tenant", "acme"])
    assert again.exit_code == 1 and "declared already" in again.output
    spec.write_text('{"table": "bad", "columns": {"x": "money"}}')
    bad = runner.invoke(app, ["tables", "declare", str(spec), "--tenant", "acme"])
    assert bad.exit_code == 1 and "column type" in bad.output
    spec.write_text("{not json")
    assert runner.invoke(app, ["tables", "declare", str(spec), "--tenant", "acme"]).exit_code == 1
    from lakehouse.catalog.declarations import SqlDeclarations
    from lakehouse.catalog.engine import catalog_engine

    engine = catalog_engine(Settings().catalog_url)
    assert SqlDeclarations(engine).get("acme", "people") is not None
    from lakehouse.catalog.lake_sql import SqlCatalog

    table = SqlCatalog(engine).table("acme", "people")  # a table with no rows, at once
    assert table is not None and table.schema["fields"][0]["name"] == "name"
    engine.dispose()
