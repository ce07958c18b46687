"""How two answers to one query are judged the same (pure).

The rules, stated once:
- Columns: the same number, the same names in the same order (names as written; a name may
  repeat), and each of the same type family (integer, float, decimal, text, date, timestamp,
  timestamp with time zone, boolean; NULL-typed matches any).
- Rows: as a multiset, unless the query orders. With an ORDER BY and a LIMIT the generator
  orders by every output column, so the answer is one sequence and is compared in order; with
  an ORDER BY and no LIMIT (ties possible) the rows are compared as a multiset and the
  platform's rows must be sorted by the ORDER BY's keys.
- Values: NULL equals NULL; integers and decimals exactly (1.50 = 1.5, but 1.5 ≠ 1.49);
  a float against any number to a relative tolerance of 1e-9 (absolute 1e-12 near zero);
  dates and timestamps exactly (a zone-aware one never equals a naive one); text and booleans
  exactly.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

REL_TOL = 1e-9
ABS_TOL = 1e-12
Cell = Any
Rows = tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Answer:
    """One engine's answer: its columns and rows (canonical values), or its error."""

    columns: tuple[str, ...] = ()
    types: tuple[str, ...] = ()  # Arrow type names
    rows: Rows = ()
    status: int = 200
    error: str = ""  # code and message when the engine refused or failed
    strategy: str | None = None
    elapsed_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200

    def brief(self, rows: int = 8) -> dict[str, Any]:
        if not self.ok:
            return {"status": self.status, "error": self.error[:500]}
        return {"columns": list(self.columns), "types": list(self.types),
                "row_count": len(self.rows), "rows": [[_show(v) for v in r]
                                                      for r in self.rows[:rows]],
                "strategy": self.strategy}


def _show(value: Cell) -> Any:
    if isinstance(value, Decimal | dt.date | dt.datetime):
        return str(value)
    return value


# Types ---------------------------------------------------------------------------------------

def family(arrow_type: str) -> str:  # noqa: PLR0911 - one return per family
    t = arrow_type.lower()
    if t.startswith(("int", "uint")):
        return "integer"
    if t.startswith("decimal"):
        return "decimal"
    if t in ("double", "float", "halffloat") or t.startswith("float"):
        return "float"
    if t.startswith(("string", "large_string", "utf8")):
        return "text"
    if t.startswith("date"):
        return "date"
    if t.startswith("timestamp"):
        return "timestamptz" if "tz=" in t else "timestamp"
    if t == "bool":
        return "bool"
    if t == "null":
        return "null"
    return t


# Values from JSON ----------------------------------------------------------------------------

_DECIMAL = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


def from_json(value: Any, arrow_type: str) -> Cell:  # noqa: PLR0911
    """A JSON cell of the platform's answer as the value its column type says it is."""
    if value is None:
        return None
    kind = family(arrow_type)
    if kind == "decimal":
        if isinstance(value, str) and _DECIMAL.match(value):
            return Decimal(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return Decimal(value)
        return value
    if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "date" and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return value
    if kind in ("timestamp", "timestamptz") and isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def from_arrow(value: Any) -> Cell:
    """A value DuckDB's Arrow answer holds, in the form from_json gives."""
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, list):
        return [from_arrow(v) for v in value]
    return value


# Comparing -----------------------------------------------------------------------------------

def _number(value: Cell) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def same_value(a: Cell, b: Cell) -> bool:  # noqa: PLR0911 - one return per kind of value
    if a is None or b is None:
        return a is None and b is None
    if _number(a) and _number(b):
        if isinstance(a, float) or isinstance(b, float):
            x, y = float(a), float(b)
            if math.isnan(x) or math.isnan(y):
                return math.isnan(x) and math.isnan(y)
            return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=ABS_TOL)
        try:
            return Decimal(a) == Decimal(b)
        except InvalidOperation:
            return False
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return (a.tzinfo is None) == (b.tzinfo is None) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(type(a) is type(b) and a == b)


def same_row(a: Sequence[Cell], b: Sequence[Cell]) -> bool:
    return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))


def _key(value: Cell) -> tuple[Any, ...]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if _number(value):
        number = float(value)
        # Floats to 8 digits (near-equal ones sort together); integers and decimals exactly
        # after that, or 2**40 and 2**40 + 1 would tie, sort in arrival order and pair wrongly.
        exact = value if isinstance(value, int | Decimal) else 0
        return (2, 0.0 if number == 0 else float(f"{number:.8g}"), exact)
    if isinstance(value, dt.datetime | dt.date):
        return (3, value.isoformat())
    if isinstance(value, str):
        return (4, value)
    return (5, repr(value))


def row_key(row: Sequence[Cell]) -> tuple[tuple[Any, ...], ...]:
    return tuple(_key(v) for v in row)


def same_multiset(a: Rows, b: Rows) -> bool:
    if len(a) != len(b):
        return False
    left, right = sorted(a, key=row_key), sorted(b, key=row_key)
    if all(same_row(x, y) for x, y in zip(left, right, strict=True)):
        return True
    if len(left) > 2000:
        return False
    # Near-equal floats may sort apart: match each row with any equal one left unmatched.
    unmatched = list(right)
    for row in left:
        for i, other in enumerate(unmatched):
            if same_row(row, other):
                del unmatched[i]
                break
        else:
            return False
    return True


def _order(a: Cell, b: Cell) -> int:
    """Exactly, not to a tolerance: the platform orders by its own values."""
    try:
        return 0 if a == b else -1 if a < b else 1
    except TypeError:
        ka, kb = _key(a), _key(b)
        return 0 if ka == kb else -1 if ka < kb else 1


def sorted_by(rows: Rows, keys: Sequence[tuple[int, bool, bool]]) -> int | None:
    """The first index whose row is out of order by (position, descending, nulls_first)
    keys, or None when the rows are sorted."""
    for i in range(1, len(rows)):
        for position, descending, nulls_first in keys:
            a, b = rows[i - 1][position], rows[i][position]
            if a is None or b is None:
                if a is None and b is None:
                    continue
                first_is_null = a is None
                if first_is_null != nulls_first:
                    return i
                break
            order = _order(a, b)
            if order == 0:
                continue
            if (order > 0) != descending:
                return i
            break
    return None


@dataclass(frozen=True)
class Difference:
    what: str  # "columns", "types", "rows", "order"
    detail: str


def compare(got: Answer, want: Answer, *, ordered: bool,  # noqa: PLR0911
            order_keys: Sequence[tuple[int, bool, bool]] = ()) -> Difference | None:
    """How the platform's answer `got` differs from the reference `want` (both answered)."""
    if got.columns != want.columns:
        return Difference("columns", f"{list(got.columns)} != {list(want.columns)}")
    families = [(family(g), family(w)) for g, w in zip(got.types, want.types, strict=False)]
    if len(got.types) != len(want.types) or any(
            g != w and "null" not in (g, w) for g, w in families):
        return Difference("types", f"{list(got.types)} != {list(want.types)}")
    if ordered:
        if len(got.rows) != len(want.rows):
            return Difference("rows", f"{len(got.rows)} rows != {len(want.rows)}")
        for i, (g, w) in enumerate(zip(got.rows, want.rows, strict=True)):
            if not same_row(g, w):
                return Difference("rows", f"row {i}: {g} != {w}")
        return None
    if not same_multiset(got.rows, want.rows):
        return Difference("rows", _multiset_detail(got.rows, want.rows))
    if order_keys:
        bad = sorted_by(got.rows, order_keys)
        if bad is not None:
            return Difference("order", f"row {bad} is out of ORDER BY order: "
                                       f"{got.rows[bad - 1]} then {got.rows[bad]}")
    return None


def _multiset_detail(got: Rows, want: Rows) -> str:
    mine, theirs = Counter(map(row_key, got)), Counter(map(row_key, want))
    extra = [r for r in got if mine[row_key(r)] > theirs[row_key(r)]]
    missing = [r for r in want if theirs[row_key(r)] > mine[row_key(r)]]
    return (f"{len(got)} rows != {len(want)}; only in platform: {extra[:3]}"
            f"{'…' if len(extra) > 3 else ''}; only in reference: {missing[:3]}"
            f"{'…' if len(missing) > 3 else ''}")


def multiset_union(parts: Sequence[Rows]) -> Rows:
    return tuple(row for part in parts for row in part)


def distinct_rows(rows: Rows) -> Rows:
    out: list[tuple[Cell, ...]] = []
    for row in sorted(rows, key=row_key):
        if not out or not same_row(out[-1], row):
            out.append(row)
    return tuple(out)
