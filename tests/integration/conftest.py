"""Figures that tests want a reader of the run's output to see (how many requests a fuzzer sent,
how many answers a schema does not declare): shown at the end of the run, captured or not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

FIGURES = pytest.StashKey[dict[str, list[str]]]()


def report_figures(config: pytest.Config, title: str, lines: list[str]) -> None:
    """Show `lines` under `title` in the run's closing summary (the last call per title wins)."""
    config.stash.setdefault(FIGURES, {})[title] = lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    for title, lines in config.stash.get(FIGURES, {}).items():
        terminalreporter.section(title, sep="-")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def prefect_api_url() -> Iterator[str]:
    """A real, temporary Prefect server for the tests that reach every endpoint, the run
    endpoints among them (without one they only answer "Prefect is unreachable"). Per module:
    the harness points Prefect's settings at itself while it runs, and the modules after must
    find them as they were (test_load's runs use Prefect's ephemeral server)."""
    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()
