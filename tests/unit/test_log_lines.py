"""Log lines of every process into one shape (pure): our JSON lines, Dask's and Prefect's
text, continuation lines, and the filters and cursor GET /logs pages with."""

from __future__ import annotations

import datetime as dt

import pytest

from lakehouse.telemetry.log_lines import Entry, Wanted, cursor, parse, parse_cursor


def _local(text: str) -> float:
    return dt.datetime.fromisoformat(text).astimezone().timestamp()


WRITTEN = _local("2026-12-06T03:10:00")


def _entries(text: str, process: str = "p", written_at: float = WRITTEN) -> list[Entry]:
    lines, offset = [], 0
    for line in text.splitlines(keepends=True):
        lines.append((offset, line))
        offset += len(line.encode())
    return list(parse(lines, process, written_at))


def test_json_lines_keep_their_fields() -> None:
    [entry] = _entries('{"time":"2026-12-06T03:05:23.725+00:00","level":"WARNING",'
                       '"logger":"api.core","message":"hello","request_id":"r1",'
                       '"tenant":"acme"}\n')
    assert entry.at == dt.datetime(2026, 12, 6, 3, 5, 23, 725000, dt.UTC).timestamp()
    assert (entry.level, entry.logger, entry.message) == ("WARNING", "api.core", "hello")
    assert entry.fields == {"request_id": "r1", "tenant": "acme"}
    assert entry.to_json()["time"] == "2026-12-06T03:05:23.725+00:00"


def test_dask_lines_and_their_tracebacks() -> None:
    first, second = _entries(
        "2026-12-06 03:05:21,314 - distributed.nanny - INFO - Start Nanny at: 'tcp://x'\n"
        "2026-12-06 03:05:22,000 - distributed.worker - ERROR - it broke\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1\n'
        "ValueError: no\n")
    assert first.at == pytest.approx(_local("2026-12-06T03:05:21.314"))
    assert (first.level, first.logger) == ("INFO", "distributed.nanny")
    assert second.level == "ERROR" and second.message.endswith("ValueError: no")
    assert second.message.count("\n") == 3


def test_prefect_times_take_the_files_date_or_the_day_before() -> None:
    today, yesterday = _entries("03:06:12.123 | INFO    | prefect.worker - started\n"
                                "23:59:59.000 | WARNING | prefect.server - late\n")
    assert today.at == pytest.approx(_local("2026-12-06T03:06:12.123"))
    assert yesterday.at == pytest.approx(_local("2026-12-05T23:59:59"))
    assert (today.logger, yesterday.level) == ("prefect.worker", "WARNING")


def test_a_banner_before_the_first_timed_line_takes_its_time() -> None:
    banner, timed = _entries(" ___ ___\n| _ \\ _ \\\n\n"
                             "\x1b[32m03:06:12.123 | INFO    | prefect - up\x1b[0m\n")
    assert banner.message == " ___ ___\n| _ \\ _ \\" and banner.at == timed.at
    assert banner.offset == 0 and timed.message == "up"
    [alone] = _entries("Worker 'lakehouse' started!\n")
    assert alone.at == WRITTEN and alone.level == "INFO"


def _entry(at: float, process: str = "control-plane", level: str = "INFO",
           message: str = "m", **fields: str) -> Entry:
    return Entry(at, process, int(at), level, message, None, dict(fields))


ENTRY = _entry(100.0, message="Query q-7 failed", request_id="r1", tenant="acme")


@pytest.mark.parametrize(("wanted", "keeps"), [
    (Wanted(), True),
    (Wanted(processes=frozenset({"dask-workers"})), False),
    (Wanted(level=30), False),
    (Wanted(since=100.0, until=100.0), True),
    (Wanted(since=100.5), False),
    (Wanted(until=99.0), False),
    (Wanted(request_id="r1"), True),
    (Wanted(request_id="r2"), False),
    (Wanted(query_id="q-7"), True),  # no such field: the message names it
    (Wanted(query_id="q-8"), False),
    (Wanted(text="QUERY Q-7"), True),
    (Wanted(text="nothing"), False),
    (Wanted(tenant="acme"), True),
    (Wanted(tenant="globex"), False),
    (Wanted(before=(100.0, "control-plane", 100)), False),
    (Wanted(before=(100.0, "control-plane", 101)), True),
    (Wanted(before=(100.0, "a", 0)), False),
])
def test_what_a_request_keeps(wanted: Wanted, keeps: bool) -> None:
    assert wanted.keeps(ENTRY) is keeps


def test_a_line_without_a_tenant_is_kept_from_tenants() -> None:
    assert not Wanted(tenant="acme").keeps(_entry(1.0, "dask-scheduler"))


def test_the_cursor_round_trips_and_bad_ones_are_none() -> None:
    entry = _entry(1796526000.123456, "prefect-server")
    assert parse_cursor(cursor(entry)) == entry.key
    for bad in ("", "x", "1.0~~3", "nan-ish~p~x", "1.0~p"):
        assert parse_cursor(bad) is None, bad
