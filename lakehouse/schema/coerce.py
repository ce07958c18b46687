"""JSON values converted into a table's exact column types, exactly or not at all (pure).

A record written to a table whose column is a decimal, a timestamp, a date or a time carries the
JSON value of it: a number or numeric text for a decimal, ISO-8601 text for the rest. Each value
is converted here before the record is acknowledged, and the flush converts the same stored
JSON with the same function, so a record that was accepted can always be written, and one that
could not be is refused at once with the field, the value and the type — never rounded, never
left to fail a later flush or make the table unreadable.

The rules:
- decimal(p, s): an integer; a JSON number of at most 15 significant digits (every such decimal
  survives the JSON parser's double exactly; longer ones may not, so they must come as text);
  or numeric text ("12.34", "-1e3"). Refused if it needs more than `s` decimals (no rounding)
  or more than `p - s` whole digits.
- timestamp: ISO-8601 text, to the microsecond (more digits are refused, not truncated). With a
  zone column, text without an offset is wall-clock time in the column's zone (UTC for a UTC
  column); with a naive column, text with an offset is converted to UTC wall-clock time.
- date: ISO-8601 date text (2026-01-03). time: HH:MM[:SS[.ffffff]], without an offset.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import re
import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any

from lakehouse.errors import InvalidInput
from lakehouse.schema.types import ROOT, FieldType, Kind

FLOAT_EXACT_DIGITS = 15  # DBL_DIG: decimal text of this many digits survives a double exactly
MAX_TEXT = 100  # longer text is no number, date or time anyone writes
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?")
_CONTEXT = decimal.Context(prec=200, Emax=10_000, Emin=-10_000)
# Python also reads "12.34" as a time (a fraction of an hour): only the forms people write.
_SUB_MICROSECOND = re.compile(r"[.,]\d{6}\d*[1-9]")  # a seventh digit that is not zero
_TIME = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?")


def coerce_payload(payload: Mapping[str, Any], schema: FieldType, path: str = ROOT,
                   ) -> dict[str, Any]:
    """`payload` with the values of `schema`'s exact columns converted (Decimal, datetime, date,
    time); other values as they are. InvalidInput(code="invalid_value") names the first value
    that does not convert, its path and the column's type."""
    if not schema.exact:
        return dict(payload)
    out = dict(payload)
    for name, kind in schema.fields:
        value = payload.get(name)
        if value is not None and kind.exact:
            out[name] = coerce_value(value, kind, f"{path}.{name}")
    return out


def coerce_value(value: Any, kind: FieldType, path: str) -> Any:
    """One JSON value as a value of `kind` (see the module's rules); None stays None."""
    if value is None or not kind.exact:
        return value
    if kind.kind is Kind.STRUCT:
        if not isinstance(value, Mapping):
            raise _refuse(value, kind, path, "expected an object")
        return coerce_payload(value, kind, path)
    if kind.kind is Kind.LIST:
        if not isinstance(value, list | tuple):
            raise _refuse(value, kind, path, "expected an array")
        element = kind.element
        assert element is not None  # noqa: S101 - a list type always has one
        return [coerce_value(item, element, f"{path}[]") for item in value]
    return _CONVERTERS[kind.kind](value, kind, path)


def _to_decimal(value: Any, kind: FieldType, path: str) -> decimal.Decimal:
    if type(value) is int:
        number = decimal.Decimal(value)
    elif type(value) is float:
        number = decimal.Decimal(repr(value))  # the shortest text that is this double
        if len(number.normalize(_CONTEXT).as_tuple().digits) > FLOAT_EXACT_DIGITS:
            raise _refuse(value, kind, path, f"a JSON number of more than "
                          f"{FLOAT_EXACT_DIGITS} significant digits may have been rounded "
                          "by the JSON parser; send it as text (\"1.2345…\") to keep every "
                          "digit")
    elif isinstance(value, str) and len(value) <= MAX_TEXT and _NUMBER.fullmatch(value):
        number = decimal.Decimal(value)
    else:
        raise _refuse(value, kind, path, "expected a number or numeric text")
    if not number.is_finite():
        raise _refuse(value, kind, path, "not a finite number")
    whole = kind.precision - kind.scale
    if number and number.adjusted() >= whole:  # 1e300: refused before any arithmetic on it
        raise _refuse(value, kind, path, f"it has more than {whole} digits before the "
                      "decimal point")
    exponent = number.normalize(_CONTEXT).as_tuple().exponent
    if isinstance(exponent, int) and -exponent > kind.scale:
        raise _refuse(value, kind, path, f"it has more than {kind.scale} decimal places; "
                      "round it before sending (values are never rounded here)")
    quantized = number.quantize(decimal.Decimal(1).scaleb(-kind.scale), context=_CONTEXT)
    if abs(quantized) >= decimal.Decimal(10) ** (kind.precision - kind.scale):
        raise _refuse(value, kind, path, f"it has more than {kind.precision - kind.scale} "
                      "digits before the decimal point")
    return quantized


def _to_timestamp(value: Any, kind: FieldType, path: str) -> dt.datetime:
    text = _text(value, kind, path, "ISO-8601 text, e.g. 2026-01-03T10:00:00Z")
    if _SUB_MICROSECOND.search(text):
        raise _refuse(value, kind, path, "timestamps are stored to the microsecond; send at "
                      "most 6 digits after the seconds")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _refuse(value, kind, path, "not an ISO-8601 timestamp, e.g. "
                      "2026-01-03T10:00:00Z") from None
    if kind.tz is not None:
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=_zone(kind.tz))
        return parsed.astimezone(dt.UTC)
    if parsed.tzinfo is not None:
        return parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> dt.tzinfo:
    """A column's time zone: an IANA name, or a fixed offset as Arrow writes it (+02:00)."""
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        offset = dt.datetime.strptime(name, "%z").utcoffset()  # "+02:00"
        return dt.timezone(offset) if offset is not None else dt.UTC


def _to_date(value: Any, kind: FieldType, path: str) -> dt.date:
    text = _text(value, kind, path, "ISO-8601 date text, e.g. 2026-01-03")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _refuse(value, kind, path, "not an ISO-8601 date, e.g. 2026-01-03") from None


def _to_time(value: Any, kind: FieldType, path: str) -> dt.time:
    text = _text(value, kind, path, "ISO-8601 time text, e.g. 10:30:00")
    try:
        if not _TIME.fullmatch(text):
            raise ValueError(text)
        parsed = dt.time.fromisoformat(text)
    except ValueError:
        raise _refuse(value, kind, path, "not an ISO-8601 time, e.g. 10:30:00") from None
    if parsed.tzinfo is not None:
        raise _refuse(value, kind, path, "a time column holds no time zone")
    return parsed


def _text(value: Any, kind: FieldType, path: str, expected: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _refuse(value, kind, path, f"expected {expected}")
    return value


_CONVERTERS: dict[Kind, Callable[[Any, FieldType, str], Any]] = {
    Kind.DECIMAL: _to_decimal,
    Kind.TIMESTAMP: _to_timestamp,
    Kind.DATE: _to_date,
    Kind.TIME: _to_time,
}


def _refuse(value: Any, kind: FieldType, path: str, why: str) -> InvalidInput:
    shown = repr(value) if isinstance(value, int | float | bool) else repr(str(value)[:60])
    if type(value) is int and abs(value) >= 10**60:  # str() of a huge int is slow
        shown = "a very large integer"
    return InvalidInput(f"{path}: {shown} does not fit the column's type {kind.short()}: {why}",
                        code="invalid_value",
                        details={"path": path, "value": shown, "type": kind.short(),
                                 "problem": why})
