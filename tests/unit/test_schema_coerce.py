"""JSON values into exact column types (lakehouse/schema/coerce.py): a table of cases, and the
exact types' stored, Arrow and SQL forms."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from lakehouse.errors import InvalidInput
from lakehouse.schema.coerce import coerce_payload, coerce_value
from lakehouse.schema.types import (
    DATE_TYPE,
    TIME_TYPE,
    FieldType,
    decimal_type,
    from_arrow,
    list_of,
    struct_of,
    timestamp_type,
)
from lakehouse.sql.schema_view import sql_type

D = decimal_type(10, 2)
UTC = dt.UTC

CASES: list[tuple[FieldType, Any, Any]] = [  # (column type, JSON value, converted or None)
    (D, 7, Decimal("7.00")),
    (D, 2.5, Decimal("2.50")),
    (D, "12.34", Decimal("12.34")),
    (D, "-1e2", Decimal("-100.00")),
    (D, 12.30, Decimal("12.30")),
    (D, 12.345, None),  # never rounded
    (D, "12.345", None),
    (D, 99999999.99, Decimal("99999999.99")),
    (D, 100000000, None),  # nine whole digits do not fit decimal(10, 2)
    (D, 0.1234567890123456, None),  # more digits than a double keeps exactly
    (D, "NaN", None),
    (D, "1_000", None),
    (D, True, None),
    (decimal_type(38, 0), "12345678901234567890123456789012345678",
     Decimal("12345678901234567890123456789012345678")),
    (timestamp_type(), "2026-01-03T10:00:00", dt.datetime(2026, 1, 3, 10)),
    (timestamp_type(), "2026-01-03T10:00:00+02:00", dt.datetime(2026, 1, 3, 8)),
    (timestamp_type("UTC"), "2026-01-03T10:00:00Z", dt.datetime(2026, 1, 3, 10, tzinfo=UTC)),
    (timestamp_type("UTC"), "2026-01-03", dt.datetime(2026, 1, 3, tzinfo=UTC)),
    (timestamp_type(), "yesterday", None),
    (timestamp_type(), "2026-01-03T10:00:00.1234567", None),  # never truncated
    (timestamp_type(), "2026-01-03T10:00:00.1234560", dt.datetime(2026, 1, 3, 10, 0, 0, 123456)),
    (timestamp_type("Europe/Oslo"), "2026-01-03T09:00:00",  # wall-clock time in its zone
     dt.datetime(2026, 1, 3, 8, tzinfo=UTC)),
    (D, 1e300, None),  # refused, not an arithmetic error
    (D, "-1E+250", None),
    (D, "1e-300", None),
    (timestamp_type(), 1767225600, None),  # epoch numbers: seconds or microseconds? refused
    (DATE_TYPE, "2026-01-03", dt.date(2026, 1, 3)),
    (DATE_TYPE, "2026-01-03T10:00:00", None),
    (DATE_TYPE, "2026-02-30", None),
    (TIME_TYPE, "10:30", dt.time(10, 30)),
    (TIME_TYPE, "10:30:00.5", dt.time(10, 30, 0, 500000)),
    (TIME_TYPE, "12.34", None),
    (TIME_TYPE, "10:30:00+02:00", None),
    (list_of(D), ["1.5", 2], [Decimal("1.50"), Decimal("2.00")]),
    (list_of(D), ["1.555"], None),
    (struct_of((("at", DATE_TYPE),)), {"at": "2026-01-03"}, {"at": dt.date(2026, 1, 3)}),
]


@pytest.mark.parametrize(("kind", "value", "expected"), CASES,
                         ids=[f"{k.describe()}<-{v!r}" for k, v, _ in CASES])
def test_values_convert_exactly_or_are_refused_naming_path_value_and_type(
        kind: FieldType, value: Any, expected: Any) -> None:
    if expected is None:
        with pytest.raises(InvalidInput) as refused:
            coerce_value(value, kind, "payload.v")
        assert refused.value.code == "invalid_value"
        assert refused.value.details["path"].startswith("payload.v")
        assert kind.short() in refused.value.message or "[]" in refused.value.details["path"]
    else:
        assert coerce_value(value, kind, "payload.v") == expected
        assert pa.array([coerce_value(value, kind, "payload.v")], kind.to_arrow())[0].as_py(
            ) == expected


def test_a_payload_keeps_the_values_of_other_columns_as_they_are() -> None:
    schema = struct_of((("n", D), ("s", FieldType.from_json("string"))))
    assert coerce_payload({"n": "1", "s": "x", "extra": 1}, schema) == {
        "n": Decimal("1.00"), "s": "x", "extra": 1}


@pytest.mark.parametrize("arrow", [pa.decimal128(10, 2), pa.decimal256(50, 10),
                                   pa.timestamp("us"), pa.timestamp("us", tz="Europe/Paris"),
                                   pa.date32(), pa.time64("us"),
                                   pa.list_(pa.struct([("d", pa.decimal128(5, 1))]))])
def test_exact_types_round_trip_through_the_catalog_and_arrow(arrow: pa.DataType) -> None:
    kind = from_arrow(arrow)
    assert kind.to_arrow() == arrow
    assert FieldType.from_json(kind.to_json()) == kind
    assert kind.exact
    assert sql_type(kind.to_json())  # every stored type has a SQL type


@pytest.mark.parametrize("stored", [{"type": "decimal", "precision": 0, "scale": 0},
                                    {"type": "decimal", "precision": 5, "scale": 6},
                                    {"type": "decimal", "precision": "5", "scale": 1},
                                    {"type": "timestamp", "unit": "ns", "tz": None},
                                    {"type": "timestamp", "tz": 5}])
def test_bad_stored_exact_types_are_refused(stored: Any) -> None:
    with pytest.raises(InvalidInput):
        FieldType.from_json(stored)
