"""Log files rotated by size (cli/log_rotation.py) while a child keeps writing to them, and read
back across the rotation by GET /logs (lakehouse/telemetry/log_files.py). Real files and a real
child process writing through the descriptor the supervisor gives it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.log_rotation import due, rotate, rotate_due
from lakehouse.telemetry import log_files
from lakehouse.telemetry.log_lines import Wanted


@pytest.mark.parametrize(("sizes", "max_bytes", "expected"), [
    ({}, 10, []),
    ({"a.log": 10}, 10, []),  # at the limit: not yet
    ({"a.log": 11, "b.log": 3}, 10, ["a.log"]),
    ({"b.log": 50, "a.log": 11}, 10, ["a.log", "b.log"]),
])
def test_files_past_the_limit_are_due(sizes: dict[str, int], max_bytes: int,
                                      expected: list[str]) -> None:
    assert due(sizes, max_bytes) == expected


def test_rotation_shifts_the_copies_and_drops_the_oldest(tmp_path: Path) -> None:
    log = tmp_path / "control-plane.log"
    for name, text in [("control-plane.log", "now"), ("control-plane.log.1", "one"),
                       ("control-plane.log.2", "two"), ("control-plane.log.3", "three")]:
        (tmp_path / name).write_text(text)
    rotate(log, keep=3)
    assert log.read_text() == ""
    assert [(tmp_path / f"control-plane.log.{i}").read_text() for i in (1, 2, 3)] == [
        "now", "one", "two"]
    assert not (tmp_path / "control-plane.log.4").exists()


def _line(n: int) -> str:
    return json.dumps({"time": f"2026-12-06T10:00:{n // 1000:02d}.{n % 1000:03d}+00:00",
                       "level": "INFO", "message": f"line {n}"})


def test_a_child_writing_through_a_rotation_loses_at_most_the_moment_of_the_copy(
        tmp_path: Path) -> None:
    log = tmp_path / "dask-workers.log"
    count = 4000
    script = tmp_path / "writer.py"
    script.write_text(
        "import json, sys, time\n"
        f"for n in range({count}):\n"
        "    stamp = f'2026-12-06T10:00:{n // 1000:02d}.{n % 1000:03d}+00:00'\n"
        "    line = json.dumps({'time': stamp, 'level': 'INFO', 'message': f'line {n}'})\n"
        "    sys.stdout.write(line + '\\n'); sys.stdout.flush()\n"
        "    if n % 20 == 0: time.sleep(0.002)\n")
    with log.open("ab") as handle:  # as the supervisor opens a child's log
        child = subprocess.Popen([sys.executable, str(script)], stdout=handle)
    rotations = 0
    while child.poll() is None:
        time.sleep(0.02)
        rotations += len(rotate_due(tmp_path, 20_000, keep=50))
    assert child.wait() == 0 and rotations >= 2
    copies = sorted(tmp_path.glob("dask-workers.log.*"), key=lambda p: -int(p.suffix[1:]))
    text = "".join(p.read_text() for p in [*copies, log])
    assert "\0" not in text  # the child's next line went to the emptied file's start
    numbers = [int(json.loads(line)["message"].split()[1]) for line in text.splitlines()]
    assert numbers == sorted(numbers)  # oldest copy first, nothing out of order
    # Only what the child wrote between a copy and the emptying is lost: a line or two a
    # rotation here, more only if this process is held up right then.
    assert len(numbers) >= count * 0.95, (count - len(numbers), rotations)


def test_logs_are_read_across_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "control-plane.log"
    log.write_text("".join(_line(n) + "\n" for n in range(10)))
    rotate(log, keep=3)
    with log.open("a") as handle:
        handle.write("".join(_line(n) + "\n" for n in range(10, 13)))
    found = log_files.read(tmp_path, Wanted(), limit=100)
    assert [e.message for e in found] == [f"line {n}" for n in range(12, -1, -1)]
    assert log_files.processes(tmp_path) == ["control-plane"]  # the copies are no process
    # A file past what a page reaches back through is read alone.
    only = log_files.read(tmp_path, Wanted(), limit=100, tail_bytes=log.stat().st_size)
    assert [e.message for e in only] == ["line 12", "line 11", "line 10"]
