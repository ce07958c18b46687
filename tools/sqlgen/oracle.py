"""The reference: plain DuckDB holding the same rows, in the same types, as plain tables.

Time zone UTC (what the platform's sandboxes see on a UTC machine), one thread (answers must
not depend on it), the same DuckDB the platform runs. Only the user's columns exist here: a
platform that shows its own (data_id, _timestamp) where the user wrote `*` differs.
"""

from __future__ import annotations

import time
from typing import Any

import duckdb
import pyarrow as pa

from tools.sqlgen.compare import Answer, from_arrow
from tools.sqlgen.schema import Column, Dataset, Kind, Table

ARROW = {Kind.FLOAT: pa.float64(), Kind.TEXT: pa.string(), Kind.DATE: pa.date32(),
         Kind.TIMESTAMP: pa.timestamp("us"), Kind.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
         Kind.BOOL: pa.bool_()}


def arrow_type(column: Column) -> pa.DataType:
    if column.kind is Kind.INT:
        return pa.int32() if column.narrow else pa.int64()
    if column.kind is Kind.DECIMAL:
        return pa.decimal128(column.precision, column.scale)
    return ARROW[column.kind]


def arrow_table(table: Table, rows: Any = None) -> pa.Table:
    rows = table.rows if rows is None else rows
    return pa.table({c.name: pa.array([r[i] for r in rows], arrow_type(c))
                     for i, c in enumerate(table.columns)})


def answer_of(relation: Any, started: float) -> Answer:
    """A DuckDB relation's answer, read by position (two columns of one name stay two)."""
    result = relation.to_arrow_table()
    columns = [[from_arrow(v) for v in result.column(i).to_pylist()]
               for i in range(result.num_columns)]
    rows = tuple(zip(*columns, strict=True)) if columns else ()
    return Answer(tuple(relation.columns), tuple(str(f.type) for f in result.schema), rows,
                  elapsed_s=time.perf_counter() - started)


class Oracle:
    def __init__(self, dataset: Dataset) -> None:
        self.con = duckdb.connect(config={"threads": 1})
        self.con.execute("SET TimeZone = 'UTC'")
        for table in dataset.tables:
            self.con.register("_source", arrow_table(table))
            self.con.execute(f'CREATE TABLE "{table.name}" AS SELECT * FROM _source')
            self.con.unregister("_source")

    def run(self, sql: str) -> Answer:
        started = time.perf_counter()
        try:
            relation = self.con.sql(sql)
            if relation is None:
                return Answer(status=400, error="not a query")
            return answer_of(relation, started)
        except duckdb.Error as exc:
            return Answer(status=400, error=f"{type(exc).__name__}: {exc}".splitlines()[0])

    def close(self) -> None:
        self.con.close()
