"""The log lines of every process `lakehouse up` runs, read into one shape (pure: text in,
entries out). Our own processes write JSON lines; Dask writes
`2026-12-06 03:05:21,314 - distributed.worker - INFO - …`; Prefect
`03:05:21.314 | INFO    | prefect.server - …` (no date: the file's date is assumed, the day
before when the time is later than the file's last write). A line with no time of its own (a
traceback, a banner) belongs to the entry before it, or to the next one at the top of a file.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_MESSAGE = 8192  # an entry's message (with its continuation lines) is cut here
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50,
          "FATAL": 50}
_DASK = re.compile(r"^(?P<date>\d{4}-\d\d-\d\d) (?P<time>\d\d:\d\d:\d\d),(?P<ms>\d{3}) - "
                   r"(?P<logger>[\w.\-]+) - (?P<level>[A-Z]+) - (?P<message>.*)$")
_PREFECT = re.compile(r"^(?P<time>\d\d:\d\d:\d\d)\.(?P<ms>\d{3}) \| (?P<level>[A-Z]+)\s*\| "
                      r"(?:(?P<thread>[^|]*?)\s*\| )?(?P<logger>[\w.\-]+) - (?P<message>.*)$")
_UVICORN = re.compile(r"^(?P<level>[A-Z]+):\s+(?P<message>.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(slots=True)
class Entry:
    """One log entry; `key` orders them (newest first when sorted in reverse) and is the
    paging cursor: the time, the process, the entry's place in its file."""

    at: float  # seconds since the epoch, UTC
    process: str
    offset: int  # the byte offset of its first line in the file (or its place in memory)
    level: str
    message: str
    logger: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # the JSON line's other fields

    @property
    def key(self) -> tuple[float, str, int]:
        return (self.at, self.process, self.offset)

    @property
    def level_number(self) -> int:
        return LEVELS.get(self.level, 20)

    def to_json(self) -> dict[str, Any]:
        return {**self.fields, "time": _iso(self.at), "level": self.level,
                "process": self.process, "logger": self.logger, "message": self.message}


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")


def _local(date: str, time: str, ms: str) -> float:
    """A local time as these processes write it (logging's asctime), in epoch seconds."""
    parsed = dt.datetime.strptime(f"{date} {time}", "%Y-%m-%d %H:%M:%S")
    return parsed.astimezone().timestamp() + int(ms) / 1000


def _json_entry(text: str, process: str, offset: int) -> Entry | None:
    try:
        found = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return from_record(found, process, offset) if isinstance(found, dict) else None


def from_record(record: dict[str, Any], process: str, offset: int) -> Entry | None:
    """An entry of one of our JSON log records (a line read back, or the ring buffer's)."""
    found = dict(record)
    if "time" not in found or "message" not in found:
        return None
    try:
        at = dt.datetime.fromisoformat(str(found.pop("time"))).timestamp()
    except ValueError:
        return None
    level = str(found.pop("level", "INFO")).upper()
    message = str(found.pop("message"))
    logger = found.pop("logger", None)
    return Entry(at, process, offset, level, message, str(logger) if logger else None, found)


def parse(lines: Iterable[tuple[int, str]], process: str, written_at: float) -> Iterator[Entry]:
    """Entries of (byte offset, line) pairs of one file, in file order; `written_at`: when
    the file was last written (dates Prefect's times, places lines with no time at all)."""
    last_day = dt.datetime.fromtimestamp(written_at).astimezone()
    pending: Entry | None = None
    orphans: list[tuple[int, str]] = []  # untimed lines before the first timed one
    for offset, raw in lines:
        line = _ANSI.sub("", raw.rstrip("\r\n"))
        entry = _timed(line, process, offset, last_day)
        if entry is None:
            if not line.strip():
                continue
            if pending is not None and len(pending.message) < MAX_MESSAGE:
                pending.message = (pending.message + "\n" + line)[:MAX_MESSAGE]
            elif pending is None:
                orphans.append((offset, line))
            continue
        if orphans:
            yield _joined(orphans, process, entry.at)
            orphans = []
        if pending is not None:
            yield pending
        pending = entry
    if pending is not None:
        yield pending
    if orphans:
        yield _joined(orphans, process, written_at)


def _joined(lines: list[tuple[int, str]], process: str, at: float) -> Entry:
    level = "INFO"
    first = _UVICORN.match(lines[0][1])
    if first is not None and first["level"] in LEVELS:
        level = first["level"]
    text = "\n".join(line for _, line in lines)[:MAX_MESSAGE]
    return Entry(at, process, lines[0][0], level, text)


def _timed(line: str, process: str, offset: int, last_day: dt.datetime) -> Entry | None:
    if line.startswith("{"):
        return _json_entry(line, process, offset)
    found = _DASK.match(line)
    if found is not None:
        return Entry(_local(found["date"], found["time"], found["ms"]), process, offset,
                     found["level"], found["message"], found["logger"])
    found = _PREFECT.match(line)
    if found is not None:
        day = last_day.date()
        at = _local(day.isoformat(), found["time"], found["ms"])
        if at > last_day.timestamp() + 1:  # written before midnight, the file after it
            at -= 86400
        return Entry(at, process, offset, found["level"], found["message"], found["logger"])
    return None


@dataclass(frozen=True, slots=True)
class Wanted:
    """What GET /logs asks for. `tenant`: only entries that name this tenant (a caller who is
    not an admin); `before`: entries older than this key (the previous page's cursor)."""

    processes: frozenset[str] = frozenset()
    level: int = 20
    since: float | None = None
    until: float | None = None
    request_id: str | None = None
    query_id: str | None = None
    text: str | None = None
    tenant: str | None = None
    before: tuple[float, str, int] | None = None

    def keeps(self, entry: Entry) -> bool:
        return (not (self.processes and entry.process not in self.processes)
                and entry.level_number >= self.level
                and (self.since is None or entry.at >= self.since)
                and (self.until is None or entry.at <= self.until)
                and (self.before is None or entry.key < self.before)
                and (self.tenant is None or entry.fields.get("tenant") == self.tenant)
                and _names(entry, "request_id", self.request_id)
                and _names(entry, "query_id", self.query_id)
                and (self.text is None or self.text.lower() in entry.message.lower()))


def _names(entry: Entry, field_name: str, wanted: str | None) -> bool:
    """Whether the entry is about `wanted`: its field says so, or (a line with no such field,
    a text line of Dask or Prefect) its message names it."""
    if wanted is None:
        return True
    if field_name in entry.fields:
        return bool(entry.fields[field_name] == wanted)
    return wanted in entry.message


def cursor(entry: Entry) -> str:
    return f"{entry.at!r}~{entry.process}~{entry.offset}"


def parse_cursor(text: str) -> tuple[float, str, int] | None:
    at, _, rest = text.partition("~")
    process, _, offset = rest.rpartition("~")
    try:
        return (float(at), process, int(offset)) if process else None
    except ValueError:
        return None
