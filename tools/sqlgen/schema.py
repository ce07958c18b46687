"""Random tables for the differential suite: schemas, rows, and how each table reaches the
platform (pure: a seed in, plain Python values out).

Values are chosen to make engines disagree where they can: many NULLs, small integer and text
domains shared across tables (so joins and IN lists match), floats that are multiples of 1/4
(sums are exact in binary, so a distributed sum equals a single-node one bit for bit), decimals
at several scales, dates and timestamps over a few days (several day partitions) and a few far
away, text with spaces, case, digits and LIKE wildcards (partition names and statistics of
text are where pruning slips).
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class Kind(enum.StrEnum):
    INT = "int"
    FLOAT = "float"
    DECIMAL = "decimal"
    TEXT = "text"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIMESTAMPTZ = "timestamptz"
    BOOL = "bool"


# Tuples, not sets: the generator picks from them, and a set's order changes with the hash seed
# of the process, so one seed would not give the same queries twice.
NUMERIC = (Kind.INT, Kind.FLOAT, Kind.DECIMAL)
TEMPORAL = (Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ)


class Path(enum.StrEnum):
    """How a table's rows reach the platform."""

    LOAD = "load"  # Parquet files through the load path, one snapshot per file
    RECORDS = "records"  # a declared table, records in batches, a flush after each
    MIXED = "mixed"  # a load, then records: some flushed, an upsert, the last batch in the log


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    precision: int = 0  # decimals only
    scale: int = 0
    narrow: bool = False  # INT: a 32-bit column (loaded tables only)

    @property
    def sql_type(self) -> str:
        return {
            Kind.INT: "INTEGER" if self.narrow else "BIGINT", Kind.FLOAT: "DOUBLE",
            Kind.DECIMAL: f"DECIMAL({self.precision}, {self.scale})", Kind.TEXT: "VARCHAR",
            Kind.DATE: "DATE", Kind.TIMESTAMP: "TIMESTAMP", Kind.TIMESTAMPTZ: "TIMESTAMPTZ",
            Kind.BOOL: "BOOLEAN"}[self.kind]

    @property
    def declared_type(self) -> str:
        """The type as a table declaration (POST /metadata/tables) names it."""
        return {
            Kind.INT: "int64", Kind.FLOAT: "float64",
            Kind.DECIMAL: f"decimal({self.precision}, {self.scale})", Kind.TEXT: "string",
            Kind.DATE: "date", Kind.TIMESTAMP: "timestamp", Kind.TIMESTAMPTZ: "timestamptz",
            Kind.BOOL: "bool"}[self.kind]


Row = tuple[Any, ...]
KEY = "data_id"  # the record key, as writers give it


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    path: Path
    partition_by: str | None = None  # a declared partition column (RECORDS, MIXED, LOAD)
    timestamp_column: str | None = None  # LOAD: the column whose day partitions the rows
    # How the rows are cut: LOAD files / record batches, in order (sizes sum to len(rows)).
    batches: tuple[int, ...] = ()
    # MIXED/RECORDS: row indexes first written with other values, then upserted.
    upserted: tuple[int, ...] = ()
    # MIXED: how many of the leading batches are a load (the rest are records).
    loaded_batches: int = 0

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def keyed(self) -> bool:
        """Its rows carry the writer's `data_id` (records, and the mixed table's loaded file):
        an ordinary column, the table's first, which `*` shows (issue 20, class 3)."""
        return bool(self.columns) and self.columns[0].name == KEY

    @property
    def declared(self) -> bool:
        return self.path is not Path.LOAD or self.partition_by is not None

    def declaration(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"table": self.name,
                                "columns": {c.name: c.declared_type for c in self.columns
                                            if c.name != KEY}}
        if self.partition_by is not None:
            spec["partition_by"] = self.partition_by
        return spec


@dataclass(frozen=True)
class Dataset:
    seed: int
    tables: tuple[Table, ...]
    prefix: str = ""

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)


@dataclass(frozen=True)
class DataOptions:
    tables: int = 5
    min_rows: int = 0
    max_rows: int = 60
    max_columns: int = 6
    null_share: float = 0.25
    paths: tuple[Path, ...] = (Path.LOAD, Path.RECORDS, Path.MIXED)
    kinds: tuple[Kind, ...] = tuple(Kind)
    extra: dict[str, Any] = field(default_factory=dict)


KIND_WEIGHTS = {Kind.INT: 3.0, Kind.TEXT: 2.0, Kind.FLOAT: 1.5, Kind.DECIMAL: 1.5, Kind.DATE: 1.0,
                Kind.TIMESTAMP: 0.7, Kind.TIMESTAMPTZ: 0.5, Kind.BOOL: 1.0}
NAMES = ("a", "b", "c", "d", "e", "k", "v", "x", "y", "name", "value", "id")
TEXTS = ("", "a", "b", "ab", "A", "B", "b c", "a b", "x_y", "a%", "10", "2", "zz", "ä")
DAYS = (*(dt.date(2026, 1, d) for d in range(1, 8)), dt.date(1999, 12, 31),
        dt.date(2030, 6, 15))


def _value(rng: random.Random, column: Column) -> Any:  # noqa: PLR0911 - one return per kind
    kind = column.kind
    if kind is Kind.INT:
        if rng.random() < 0.05:
            return rng.choice((-1000, 1000)) if column.narrow else rng.choice(
                (-(2**40), 2**40, 1000))
        return rng.randint(0, 7) if rng.random() < 0.8 else rng.randint(-3, 12)
    if kind is Kind.FLOAT:
        return rng.randint(-20, 40) / 4
    if kind is Kind.DECIMAL:
        scale = column.scale
        limit = 10 ** (column.precision - scale) - 1
        whole = (limit if rng.random() < 0.03 and column.precision <= 9
                 else max(-limit, min(limit, rng.randint(-2, 8))))
        frac = rng.choice((0, 0, 1, 5 * 10 ** (scale - 1), 10**scale - 1)) if scale else 0
        units = whole * 10**scale + (frac if whole >= 0 else -frac)
        return Decimal(units).scaleb(-scale)
    if kind is Kind.TEXT:
        return rng.choice(TEXTS)
    if kind is Kind.DATE:
        return rng.choice(DAYS)
    if kind in (Kind.TIMESTAMP, Kind.TIMESTAMPTZ):
        day = rng.choice(DAYS[:5]) if rng.random() < 0.9 else rng.choice(DAYS)
        stamp = dt.datetime(day.year, day.month, day.day, rng.choice((0, 6, 12, 23)),
                            rng.choice((0, 0, 30, 59)), rng.choice((0, 0, 1)),
                            rng.choice((0, 0, 0, 500_000)))
        return stamp.replace(tzinfo=dt.UTC) if kind is Kind.TIMESTAMPTZ else stamp
    return rng.random() < 0.5


def _columns(rng: random.Random, options: DataOptions, path: Path) -> tuple[Column, ...]:
    count = rng.randint(2, options.max_columns)
    names = rng.sample(NAMES, count)
    weights = [KIND_WEIGHTS[k] for k in options.kinds]
    kinds = [Kind.INT, *rng.choices(options.kinds, weights, k=count - 1)]
    rng.shuffle(kinds)
    columns = []
    for name, kind in zip(names, kinds, strict=True):
        if kind is Kind.DECIMAL:
            precision = rng.choice((5, 9, 12, 18, 38))
            scale = rng.randint(0, min(4, precision - 1))
            columns.append(Column(name, kind, precision, scale))
        else:
            columns.append(Column(name, kind,
                                  narrow=kind is Kind.INT and path is Path.LOAD
                                  and rng.random() < 0.3))
    return tuple(columns)


def _cut(rng: random.Random, rows: int, pieces: int) -> tuple[int, ...]:
    if rows == 0:
        return (0,)
    pieces = max(1, min(pieces, rows))
    cuts = sorted(rng.sample(range(1, rows), pieces - 1)) if pieces > 1 else []
    bounds = [0, *cuts, rows]
    return tuple(b - a for a, b in itertools.pairwise(bounds))


def make_table(rng: random.Random, name: str, options: DataOptions, path: Path) -> Table:
    columns = _columns(rng, options, path)
    roll = rng.random()
    count = (options.min_rows if roll < 0.04 else min(1, options.max_rows) if roll < 0.08
             else rng.randint(max(options.min_rows, 12), max(12, options.max_rows)))
    null_share = options.null_share * rng.choice((0.0, 0.5, 1.0, 1.5))
    rows = []
    for _ in range(count):
        rows.append(tuple(None if rng.random() < null_share else _value(rng, c)
                          for c in columns))
    partition_by = None
    candidates = [c for c in columns if c.kind is not Kind.FLOAT]
    if candidates and rng.random() < 0.35:
        partition_by = rng.choice(candidates).name
    timestamp_column = None
    stamps = [c.name for c in columns if c.kind in (Kind.TIMESTAMP, Kind.TIMESTAMPTZ)
              and all(r[columns.index(c)] is not None for r in rows)]
    if path is Path.LOAD and stamps and partition_by is None and rng.random() < 0.7:
        timestamp_column = rng.choice(stamps)
    batches = _cut(rng, count, rng.randint(2, 3) if partition_by is None else 2)
    upserted: tuple[int, ...] = ()
    loaded = 0
    if path is Path.MIXED:
        loaded = 1
    if path is not Path.LOAD and count:
        first_record_row = batches[0] if path is Path.MIXED else 0
        candidates_rows = list(range(first_record_row, count))
        if candidates_rows:
            upserted = tuple(sorted(rng.sample(candidates_rows,
                                               min(len(candidates_rows), rng.randint(0, 3)))))
    # Records carry their keys; so does the mixed table's file. A declared table no record was
    # ever written to has none: `*` shows the declared columns only.
    if path is Path.MIXED or (path is Path.RECORDS and count):
        columns = (Column(KEY, Kind.TEXT), *columns)
        rows = [(f"r{index}", *row) for index, row in enumerate(rows)]
    return Table(name, columns, tuple(rows), path, partition_by, timestamp_column, batches,
                 upserted, loaded)


def make_dataset(seed: int, options: DataOptions | None = None, prefix: str = "t") -> Dataset:
    """`options.tables` tables named `{prefix}0`, `{prefix}1`, …; each path at least once when
    there are enough tables."""
    options = options or DataOptions()
    rng = random.Random(f"dataset:{seed}")
    paths = [options.paths[i % len(options.paths)] for i in range(options.tables)]
    rng.shuffle(paths)
    tables = tuple(make_table(rng, f"{prefix}{i}", options, path)
                   for i, path in enumerate(paths))
    return Dataset(seed, tables, prefix)


def stale_value(rng: random.Random, column: Column, value: Any) -> Any:
    """Another value of the column's kind: what an upserted row held before its upsert."""
    for _ in range(5):
        other = _value(rng, column)
        if other != value:
            return other
    return None if value is not None else _value(rng, column)
