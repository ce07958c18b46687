"""Rows split into day partitions by `_timestamp` (lakehouse/ingest/flush_rows.py), at every
instant a record may carry: before 1970, at midnight, and past 2255, where microseconds no
longer fit a float64 exactly (one such record once stopped every flush); and the rows as a flush
ships them to a Dask worker (tasks/flush.py)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from lakehouse.ingest.flush_rows import days_since_epoch, partitions
from tasks.flush import shipped

DAY_US = 86_400_000_000


def _us(text: str) -> int:
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


@pytest.mark.parametrize("text", [
    "1970-01-01T00:00:00", "1969-12-31T23:59:59.999999", "1969-12-31T00:00:00",
    "1900-03-01T12:00:00", "2026-12-05T23:59:59.999999", "2255-06-05T23:47:34.740992",
    "2651-08-04T15:42:42.437416", "2999-12-31T23:59:59.999999", "0001-01-01T00:00:00",
])
def test_a_timestamp_falls_on_its_own_day(text: str) -> None:
    micros = _us(text)
    [day] = days_since_epoch(pa.chunked_array([[micros]], pa.int64())).to_pylist()
    assert day == (dt.date.fromisoformat(text[:10]) - dt.date(1970, 1, 1)).days


def test_rows_of_far_future_days_are_split_by_day() -> None:
    stamps = [_us("2651-08-04T15:42:42.437416"), _us("2651-08-04T00:00:00"),
              _us("2999-12-31T23:59:59"), _us("1969-12-31T23:00:00")]
    rows = pa.table({"_timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                     "_seq": pa.array([1, 2, 3, 4], pa.int64())})
    found = {p.name: p.rows.column("_seq").to_pylist() for p in partitions(rows)}
    assert found == {"day=1969-12-31": [4], "day=2651-08-04": [1, 2], "day=2999-12-31": [3]}


def test_rows_shipped_to_a_worker_are_one_chunk_a_column_and_the_same_rows() -> None:
    entries = [pa.table({"id": [f"e{i}-{j}" for j in range(3)], "n": [i, i, None]})
               for i in range(50)]
    rows = pa.concat_tables(entries)
    assert rows.column("id").num_chunks == 50
    sent = shipped(rows)
    assert all(column.num_chunks == 1 for column in sent.columns)
    assert sent.equals(rows) and sent.schema == rows.schema
