"""What every `lakehouse` command shares: its settings, its error console, and one way to say
what went wrong (the message, then each detail on a line of its own) and exit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

err = Console(stderr=True)

EXIT_FAILED = 1  # the command ran and failed: bad input, a conflict
EXIT_USAGE = 2  # the command could not start: settings, arguments


def fail(message: str, details: object = None, code: int = EXIT_FAILED) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    if isinstance(details, dict):
        for key, value in details.items():
            err.print(f"  {key}: {value}")
    elif details:
        err.print(f"  {details}")
    raise typer.Exit(code)


@contextmanager
def failing(code: int = EXIT_FAILED) -> Iterator[None]:
    """A LakehouseError raised inside is printed and exits with `code`."""
    try:
        yield
    except LakehouseError as exc:
        fail(exc.message, exc.details, code)


def load_settings() -> Settings:
    """The settings from the environment and `.env`, checked; exits 2 with the reason."""
    with failing(EXIT_USAGE):
        try:
            settings = Settings()
        except ValueError as exc:  # pydantic's ValidationError: a setting with a wrong value
            fail(f"in settings: {exc}", code=EXIT_USAGE)
        settings.check_secrets()
    return settings


POLL_S = 0.2


def follow(watch: Any, label: str, unit: str) -> dict[str, Any]:
    """A progress bar of a run (a flows.runs.RunWatch) until it ends; its result, or its
    error raised."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn(unit), TimeElapsedColumn(), console=err) as bar:
        shown = bar.add_task(label, total=None)
        while not watch.finished:
            bar.update(shown, total=watch.total, completed=watch.done)
            time.sleep(POLL_S)
        bar.update(shown, total=watch.total, completed=watch.done)
    result: dict[str, Any] = watch.wait()
    return result
