"""The text of dates, timestamps and intervals past what Python holds (api/result_values.py),
checked against DuckDB: what it reads back from the text is the value that was written."""

from __future__ import annotations

import random
import re

import duckdb
import pyarrow as pa
import pytest

from api.result_values import INT32_MAX, INT64_MAX, iso_duration, temporal_text

_DAYS = 2**31 - 2  # DuckDB's dates: ±(2^31 - 2) days around 1970 (±2^31 - 1 is infinity)
_MICROS = 9_223_371_244_799_000_000  # about DuckDB's last timestamp, 294246-12-31


def _samples(limit: int, count: int = 400) -> list[int]:
    generator = random.Random(20261204)
    edges = [0, 1, -1, 59, 60, 365, -365, 2_932_896, 2_932_897, -719_162, -719_163]
    return [*edges, *(generator.randint(-limit, limit) for _ in range(count))]


def test_dates_of_any_year_read_back_as_the_same_day() -> None:
    samples = _samples(_DAYS)
    texts = [temporal_text(days, pa.date32()) for days in samples]
    oracle = duckdb.connect()
    read = oracle.execute("SELECT list(t::DATE - DATE '1970-01-01' ORDER BY i) "
                          "FROM unnest($1) WITH ORDINALITY u(t, i)", [texts]).fetchone()
    assert read == (samples,)


def test_timestamps_of_any_year_read_back_as_the_same_instant() -> None:
    oracle = duckdb.connect()
    for raw in _samples(_MICROS, 200):
        for kind, text in ((pa.timestamp("us"), temporal_text(raw, pa.timestamp("us"))),
                           (pa.timestamp("us", "UTC"),
                            temporal_text(raw, pa.timestamp("us", "UTC")))):
            cast = "TIMESTAMPTZ" if kind.tz else "TIMESTAMP"
            back = oracle.execute(f"SELECT epoch_us($1::{cast})", [text]).fetchone()
            assert back == (raw,), (raw, text)


def test_the_forms_of_json_and_csv() -> None:
    moment = 253_402_300_800 * 1_000_000 + 123  # 10000-01-01T00:00:00.000123
    assert temporal_text(moment, pa.timestamp("us")) == "10000-01-01T00:00:00.000123"
    assert temporal_text(moment, pa.timestamp("us"), csv=True) == "10000-01-01 00:00:00.000123"
    assert temporal_text(moment // 1000, pa.timestamp("ms", "UTC"), csv=True) == (
        "10000-01-01 00:00:00.000+0000")
    assert temporal_text(moment // 10**6, pa.timestamp("s", "UTC")) == (
        "10000-01-01T00:00:00+00:00")
    assert temporal_text(-719_529, pa.date32()) == "-0001-12-31"  # 2 BC
    for kind, limit in ((pa.date32(), INT32_MAX), (pa.timestamp("ns"), INT64_MAX)):
        assert temporal_text(limit, kind) == "infinity"
        assert temporal_text(-limit, kind, csv=True) == "-infinity"


_PART = re.compile(r"(-?\d+(?:\.\d+)?)([YMDHS])")


def _parts(text: str) -> tuple[int, int, int]:
    """months, days and nanoseconds of an ISO 8601 duration written by iso_duration."""
    assert text.startswith("P")
    date, _, time = text[1:].partition("T")
    months = days = nanos = 0
    for number, unit in _PART.findall(date):
        months += int(number) * (12 if unit == "Y" else 1) if unit in "YM" else 0
        days += int(number) if unit == "D" else 0
    scale = {"H": 3_600 * 10**9, "M": 60 * 10**9}
    for number, unit in _PART.findall(time):
        if unit == "S":
            whole, _, fraction = number.lstrip("-").partition(".")
            value = int(whole) * 10**9 + int(fraction.ljust(9, "0") or 0)
            nanos += -value if number.startswith("-") else value
        else:
            nanos += int(number) * scale[unit]
    return months, days, nanos


@pytest.mark.parametrize("sql", [
    "INTERVAL '1 year 2 months -3 days 04:05:06.000007'", "-INTERVAL 14 MONTH",
    "INTERVAL 0 DAY", "INTERVAL '-1 day 3 hours'", "INTERVAL 123456789 MICROSECOND",
    "INTERVAL '27 months 400 days 100 hours'", "-INTERVAL '1 minute 0.5 seconds'",
])
def test_intervals_keep_months_days_and_time_apart(sql: str) -> None:
    value = duckdb.connect().sql(f"SELECT {sql}").to_arrow_table().column(0)[0].as_py()
    text = iso_duration(value)
    assert _parts(text) == (value.months, value.days, value.nanoseconds), text
