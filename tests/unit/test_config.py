"""Settings: environment and `.env`, derived addresses under DATA_DIR, the secret rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.config import DEVELOPMENT_JWT_SECRET, Environment, Settings, is_loopback
from lakehouse.errors import ConfigurationError


def test_defaults_put_all_state_under_data_dir(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    root = (tmp_path / "data").resolve()
    assert settings.data_dir == root
    assert settings.catalog_url == f"sqlite:///{root / 'catalog.db'}"
    assert settings.storage_root == (root / "warehouse").as_uri()
    assert settings.clickhouse_dsn == f"chdb://{root / 'clickhouse'}"
    assert settings.prefect_api_url == "http://127.0.0.1:4200/api"
    assert settings.dask_scheduler_address == "tcp://127.0.0.1:8786"
    for path in (settings.wal_dir, settings.prefect_home, settings.dask_dir, settings.log_dir):
        assert path.is_relative_to(root)
    assert (settings.auth_port, settings.tenant_port, settings.operation_port,
            settings.cbo_port, settings.catalog_port, settings.monitoring_port,
            settings.interpreter_port) == (8090, 8000, 8081, 8082, 8083, 8084, 8085)
    assert settings.dask_workers == 2
    assert settings.environment is Environment.DEVELOPMENT


def test_environment_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LOG_LEVEL=DEBUG\nDASK_WORKERS=5\nPREFECT_PORT=4300\n")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "second"))
    monkeypatch.setenv("DASK_WORKERS", "3")  # the environment beats .env
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("DISTRIBUTED_MODE", "true")
    monkeypatch.setenv("CATALOG_URL", "postgresql+psycopg://u:p@db/catalog")
    settings = Settings()
    assert settings.log_level == "DEBUG"
    assert settings.dask_workers == 3
    assert settings.bind_host == "0.0.0.0"
    assert settings.distributed_mode is True
    assert settings.data_dir == tmp_path / "second"
    assert settings.prefect_api_url == "http://127.0.0.1:4300/api"
    assert settings.catalog_url == "postgresql+psycopg://u:p@db/catalog"


def test_every_setting_is_listed_in_env_example() -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    listed = {line.split("=", 1)[0] for line in example.read_text().splitlines()
              if line and not line.startswith("#")}
    assert listed == {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("environment", [Environment.PRODUCTION, Environment.STAGING])
def test_outside_development_a_default_or_short_secret_is_refused(
        tmp_path: Path, environment: Environment) -> None:
    for secret in (DEVELOPMENT_JWT_SECRET, "short-secret"):
        settings = Settings.for_tests(tmp_path, environment=environment, jwt_secret=secret)
        with pytest.raises(ConfigurationError):
            settings.check_secrets()
    Settings.for_tests(tmp_path, environment=environment, jwt_secret="k" * 32).check_secrets()
    Settings.for_tests(tmp_path, environment=Environment.DEVELOPMENT,
                       jwt_secret=DEVELOPMENT_JWT_SECRET).check_secrets()


@pytest.mark.parametrize(("host", "secret", "password", "starts"), [
    ("127.0.0.1", DEVELOPMENT_JWT_SECRET, "password", True),
    ("localhost", DEVELOPMENT_JWT_SECRET, "password", True),
    ("::1", DEVELOPMENT_JWT_SECRET, "password", True),
    ("0.0.0.0", DEVELOPMENT_JWT_SECRET, "password", False),
    ("10.1.2.3", "k" * 40, "password", False),  # the bootstrap admin's public password
    ("10.1.2.3", DEVELOPMENT_JWT_SECRET, "a long local secret", False),
    ("lake.example.com", "k" * 40, "a long local secret", True),  # nothing public left
])
def test_development_serves_its_public_defaults_on_loopback_only(
        tmp_path: Path, host: str, secret: str, password: str, starts: bool) -> None:
    settings = Settings.for_tests(tmp_path, environment=Environment.DEVELOPMENT, bind_host=host,
                                  jwt_secret=secret, bootstrap_admin_password=password)
    if starts:
        settings.check_secrets()
    else:
        with pytest.raises(ConfigurationError) as refused:
            settings.check_secrets()
        assert "BIND_HOST" in refused.value.message
        assert "ENVIRONMENT=production" in refused.value.details["fix"]


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
    ("example.com", False), ("", False),
])
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
