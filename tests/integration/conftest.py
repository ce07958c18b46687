"""A real Prefect server for the integration tests that need one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.settings import PREFECT_API_URL

from tools.prefect_harness import bounded_prefect_harness


@pytest.fixture(scope="module")
def prefect_api_url() -> Iterator[str]:
    """A real, temporary Prefect server for the tests that reach every endpoint, the run
    endpoints among them (without one they only answer "Prefect is unreachable"). Per module:
    the harness points Prefect's settings at itself while it runs, and the modules after must
    find them as they were (test_load's runs use Prefect's ephemeral server)."""
    with bounded_prefect_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()
