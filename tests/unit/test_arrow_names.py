"""A result's names as DuckDB has them: its Arrow export cuts names at a NUL (C strings), and
`as_duckdb_names` puts back the whole names, at every depth, without touching the values."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from lakehouse.executor.arrow_names import as_duckdb_names

CUT = ("SELECT 1 AS \"\u0000x\", 2 AS \"a\u0000b\", {'k\u0000z': 3, 'b': 'x'} AS s, "
       "[{'q\u0000': 4}] AS l, [{'q\u0000': 5}, {'q\u0000': 6}]::STRUCT(\"q\u0000\" INT)[2] AS a, "
       "MAP {'key': {'v\u0000': 7}} AS m, union_value(\"t\u0000\" := 8) AS u")


def _relation(sql: str) -> duckdb.DuckDBPyRelation:
    return duckdb.connect().sql(sql)


def test_the_export_cuts_names_at_a_nul() -> None:
    """What the fix is for: if DuckDB's export stops cutting, this says so."""
    exported = _relation(CUT).to_arrow_table()
    assert exported.column_names[:2] == ["", "a"]
    assert exported.schema.field("s").type.field(0).name == "k"


def test_whole_names_come_back_at_every_depth_with_the_values() -> None:
    relation = _relation(CUT)
    table = as_duckdb_names(relation.to_arrow_table(), relation.columns, relation.types)
    assert table.column_names == ["\u0000x", "a\u0000b", "s", "l", "a", "m", "u"]
    assert table.to_pylist() == [{
        "\u0000x": 1, "a\u0000b": 2, "s": {"k\u0000z": 3, "b": "x"}, "l": [{"q\u0000": 4}],
        "a": [{"q\u0000": 5}, {"q\u0000": 6}], "m": [("key", {"v\u0000": 7})], "u": 8}]
    assert table.schema.field("u").type.field(0).name == "t\u0000"


def test_a_result_without_a_nul_is_left_as_it_is() -> None:
    relation = _relation("SELECT 1 AS a, [1] AS b, {'x': [{'y': 2}]} AS c, MAP {'k': 1} AS d")
    exported = relation.to_arrow_table()
    assert as_duckdb_names(exported, relation.columns, relation.types) is exported


def test_many_chunks_keep_their_rows() -> None:
    relation = _relation("SELECT {'k\u0000': i} AS s FROM range(5) t(i)")
    exported = relation.to_arrow_table()
    chunked = pa.Table.from_batches(exported.to_batches(max_chunksize=2))
    table = as_duckdb_names(chunked, relation.columns, relation.types)
    assert table.column("s").to_pylist() == [{"k\u0000": i} for i in range(5)]
