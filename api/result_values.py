"""Result values JSON, CSV and Parquet cannot take as Arrow hands them over, and what each gets.

DuckDB answers values that Python's datetime, pyarrow's CSV writer and Parquet have no room for:

- **Infinity.** `'infinity'::DATE` and `::TIMESTAMP` (and `-infinity`) reach Arrow as the type's
  largest value (2^31 - 1 days; 2^63 - 1 in a timestamp's unit) and its negation. JSON and CSV
  write `"infinity"` and `"-infinity"`, DuckDB's own words for them.
- **Years outside 1–9999** (`DATE '10000-01-01'`, `'294247-01-01'::DATE`, 5001 BC): past
  Python's datetime. They are ISO 8601 text with astronomical years, as DuckDB reads them back:
  four digits at least, and a minus sign before year 0 (which is 1 BC): `10000-01-01`,
  `-5000-01-01T10:00:00`. One with a time zone is written in UTC (`+00:00`).
- **Intervals** (`INTERVAL 3 DAY`): Arrow's month-day-nanosecond interval keeps months, days and
  time apart (a month is no fixed number of days). JSON and CSV write an ISO 8601 duration with
  the three apart, each signed on its own as PostgreSQL's `iso_8601` style does: `P3D`, `P1Y2M`,
  `PT1H30M`, `P1Y2M-3DT4H5M6.000007S`, `PT0S`. Parquet has no such type: a struct
  `{months: int32, days: int32, nanoseconds: int64}`.
- **Nanosecond timestamps** in JSON: ISO 8601 text, with 9 decimals when they are not all 0.

Arrow carries every value as DuckDB exported it. Years 1–9999 keep the encodings they had.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import pyarrow as pa

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
_EPOCH = dt.datetime(1970, 1, 1)  # naive: a column's zone is applied after
_EPOCH_DATE = _EPOCH.date()
PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_DAY_S = 86_400
_MS_PER_DAY = 86_400_000
INTERVAL_STRUCT = pa.struct([("months", pa.int32()), ("days", pa.int32()),
                             ("nanoseconds", pa.int64())])

Leaf = Callable[[Any, pa.DataType], Any]


def is_temporal(kind: pa.DataType) -> bool:
    return bool(pa.types.is_date(kind) or pa.types.is_timestamp(kind))


def _is_list(kind: pa.DataType) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind)
                or pa.types.is_fixed_size_list(kind))


def has(kind: pa.DataType, leaf: Callable[[pa.DataType], bool]) -> bool:
    """Whether `kind` or a type nested in it (any depth) is one `leaf` accepts."""
    if leaf(kind):
        return True
    if pa.types.is_dictionary(kind):
        return has(kind.value_type, leaf)
    return any(has(kind.field(i).type, leaf) for i in range(kind.num_fields))


def rebuilt(kind: pa.DataType, leaf: Callable[[pa.DataType], pa.DataType]) -> pa.DataType:
    """`kind` with each type nested in it (lists, structs, maps) replaced by `leaf`'s."""
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(rebuilt(f.type, leaf)) for f in kind])
    if pa.types.is_map(kind):
        return pa.map_(kind.key_field.with_type(rebuilt(kind.key_type, leaf)),
                       kind.item_field.with_type(rebuilt(kind.item_type, leaf)))
    if _is_list(kind):
        field = kind.value_field.with_type(rebuilt(kind.value_type, leaf))
        if pa.types.is_fixed_size_list(kind):
            return pa.list_(field, kind.list_size)
        return pa.large_list(field) if pa.types.is_large_list(kind) else pa.list_(field)
    return leaf(kind)


def stored_type(kind: pa.DataType) -> pa.DataType:
    """Dates and timestamps as the integers they are stored as (no conversion can fail)."""
    if pa.types.is_date32(kind):
        return pa.int32()
    return pa.int64() if is_temporal(kind) else kind


def _walk(value: Any, kind: pa.DataType, leaf: Leaf) -> Any:
    if value is None:
        return None
    if pa.types.is_struct(kind):
        return {f.name: _walk(value[f.name], f.type, leaf) for f in kind}
    if pa.types.is_map(kind):
        return [(_walk(k, kind.key_type, leaf), _walk(v, kind.item_type, leaf)) for k, v in value]
    if _is_list(kind):
        return [_walk(v, kind.value_type, leaf) for v in value]
    return leaf(value, kind)


def walked(column: pa.ChunkedArray | pa.Array, leaf: Leaf) -> list[Any]:
    """The column's values as Python values, each date and timestamp (at any depth) given to
    `leaf` as the integer it is stored as, with its type."""
    kind = column.type
    return [_walk(v, kind, leaf) for v in column.cast(rebuilt(kind, stored_type)).to_pylist()]


# Text -------------------------------------------------------------------------------------


def _infinity(raw: int, kind: pa.DataType) -> str | None:
    limit = INT32_MAX if pa.types.is_date32(kind) else INT64_MAX
    return "infinity" if raw == limit else "-infinity" if raw == -limit else None


def _civil(days: int) -> str:
    """The proleptic Gregorian date `days` after 1970-01-01, any year (H. Hinnant's
    civil_from_days); astronomical years, at least four digits."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9  # the algorithm counts months from March
    year = yoe + era * 400 + (month <= 2)
    sign = "-" if year < 0 else ""
    return f"{sign}{abs(year):04d}-{month:02d}-{day:02d}"


def temporal_text(raw: int, kind: pa.DataType, *, csv: bool = False) -> str:
    """A date or timestamp stored as `raw`, as text for any value: infinity, any year. JSON's
    form (`T`, decimals only when not 0, `+00:00`) or pyarrow's CSV form (a space, the unit's
    decimals, `+0000`); a timestamp with a zone is given in UTC."""
    infinite = _infinity(raw, kind)
    if infinite is not None:
        return infinite
    if pa.types.is_date(kind):
        return _civil(raw if pa.types.is_date32(kind) else raw // _MS_PER_DAY)
    per = PER_SECOND[kind.unit]
    seconds, fraction = divmod(raw, per)
    days, second = divmod(seconds, _DAY_S)
    clock = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
    digits = len(str(per)) - 1
    if csv:
        decimals = f".{fraction:0{digits}d}" if digits else ""
    elif per == PER_SECOND["ns"]:
        decimals = f".{fraction:09d}" if fraction else ""
    else:  # as Python writes microseconds
        micros = fraction * 1_000_000 // per
        decimals = f".{micros:06d}" if micros else ""
    zone = ("+0000" if csv else "+00:00") if kind.tz else ""
    return f"{_civil(days)}{' ' if csv else 'T'}{clock}{decimals}{zone}"


def iso_duration(value: pa.MonthDayNano) -> str:
    """An interval as an ISO 8601 duration, its months, days and time kept apart."""
    months, days, nanos = value.months, value.days, value.nanoseconds
    years, months = _toward_zero(months, 12)
    text = "P" + "".join(f"{n}{unit}" for n, unit in ((years, "Y"), (months, "M"),
                                                      (days, "D")) if n)
    if nanos:
        sign = "-" if nanos < 0 else ""
        hours, rest = divmod(abs(nanos), 3_600_000_000_000)
        minutes, rest = divmod(rest, 60_000_000_000)
        seconds, fraction = divmod(rest, 1_000_000_000)
        decimals = f".{fraction:09d}".rstrip("0") if fraction else ""
        text += "T" + "".join(f"{sign}{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"))
                              if n)
        if seconds or fraction:
            text += f"{sign}{seconds}{decimals}S"
    return text if text != "P" else "PT0S"


def _toward_zero(value: int, unit: int) -> tuple[int, int]:
    whole = abs(value) // unit * (-1 if value < 0 else 1)
    return whole, value - whole * unit


# JSON -------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _zone(kind: pa.DataType) -> dt.tzinfo | None:
    if not kind.tz:
        return None
    moment = pa.scalar(0, type=kind).as_py()
    return moment.tzinfo if isinstance(moment, dt.datetime) else None


def _json_temporal(raw: int, kind: pa.DataType) -> Any:
    """What to_pylist gives (a date or datetime, orjson writes it) where Python can hold it;
    text where it cannot, and for nanoseconds (which Python's datetime does not keep)."""
    if _infinity(raw, kind) is not None:
        return temporal_text(raw, kind)
    try:
        if pa.types.is_date(kind):
            days = raw if pa.types.is_date32(kind) else raw // _MS_PER_DAY
            return _EPOCH_DATE + dt.timedelta(days=days)
        per = PER_SECOND[kind.unit]
        seconds, fraction = divmod(raw, per)
        moment = _EPOCH + dt.timedelta(seconds=seconds, microseconds=fraction * 1_000_000 // per)
        zone = _zone(kind)
        if zone is not None:
            moment = moment.replace(tzinfo=dt.UTC).astimezone(zone)
    except OverflowError:
        return temporal_text(raw, kind)
    if per != PER_SECOND["ns"]:
        return moment
    text = moment.replace(microsecond=0).isoformat()
    return text[:19] + (f".{fraction:09d}" if fraction else "") + text[19:]


def _nanoseconds(kind: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(kind) and kind.unit == "ns")


def json_values(column: pa.ChunkedArray) -> list[Any]:
    """The column's values for orjson (intervals are left to the encoder's default)."""
    if has(column.type, _nanoseconds):
        return walked(column, _temporal_leaf)
    try:
        values: list[Any] = column.to_pylist()  # the fast path: every date in Python's years
        return values
    except (OverflowError, ValueError):  # a value past them, or infinity
        return walked(column, _temporal_leaf)


def _temporal_leaf(value: Any, kind: pa.DataType) -> Any:
    return _json_temporal(value, kind) if is_temporal(kind) else value
