"""Value checks of declared tables, run by pandera over a whole batch at once (patterns by RE2,
see patterns.py)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from lakehouse.schema.declared import DeclaredTable, ValueCheck
from lakehouse.schema.patterns import matches_at_start


def failing_records(table: DeclaredTable, payloads: list[Mapping[str, Any]]) -> dict[int, str]:
    """Position in `payloads` → why that record fails the table's value checks."""
    if not table.checks or not payloads:
        return {}
    import pandas as pd  # heavy, and only tables with checks need it
    import pandera.errors

    columns = sorted({c.column for c in table.checks})
    frame = pd.DataFrame({c: pd.Series([p.get(c) for p in payloads], dtype="object")
                          for c in columns})
    try:
        _schema(table.checks).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        failures: dict[int, list[str]] = {}
        for case in exc.failure_cases.itertuples():
            index = case.index
            if index is None or pd.isna(index):  # a whole-column failure, not one record's
                continue
            failures.setdefault(int(index), []).append(
                f"payload.{case.column}: {case.failure_case!r} fails {case.check}")
        return {i: "; ".join(reasons) for i, reasons in failures.items()}
    return {}


@functools.lru_cache(maxsize=256)
def _schema(checks: tuple[ValueCheck, ...]) -> Any:
    import pandera.pandas as pa

    by_column: dict[str, list[Any]] = {}
    for check in checks:
        by_column.setdefault(check.column, []).append(_check(pa, check))
    return pa.DataFrameSchema(
        {column: pa.Column(checks=built, nullable=True, required=False)
         for column, built in by_column.items()})


def _check(pa: Any, check: ValueCheck) -> Any:
    value = check.value
    builders = {
        "ge": lambda: pa.Check.ge(value), "gt": lambda: pa.Check.gt(value),
        "le": lambda: pa.Check.le(value), "lt": lambda: pa.Check.lt(value),
        "isin": lambda: pa.Check.isin(value), "notin": lambda: pa.Check.notin(value),
        # Not pandera's own str_matches: that runs Python's backtracking `re`.
        "str_matches": lambda: pa.Check(functools.partial(_matches, pattern=value),
                                        name="str_matches", error=f"str_matches('{value}')"),
        "str_length": lambda: pa.Check.str_length(value[0], value[1]),
    }
    return builders[check.kind]()


def _matches(values: Any, pattern: object) -> Any:
    """Per value of a column (a pandas Series, nulls left out), whether it starts with a match
    of `pattern`, on RE2 in linear time."""
    import pandas as pd

    return pd.Series(matches_at_start(values.tolist(), pattern), index=values.index, dtype=bool)
