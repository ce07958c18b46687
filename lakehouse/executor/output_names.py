"""The names DuckDB gives unnamed outputs, from DuckDB's own parser (the namers of
lakehouse/sql/output_names.py). DuckDB names such a column by its expression's text as its
parser writes it back, which is what `json_serialize_sql` and `json_deserialize_sql` give:
parsed and written, nothing bound or run.

- `written_names`: the result's columns, from the query exactly as the user sent it (DuckDB's
  dialect): each item of the first SELECT, its DuckDB name.
- `duckdb_names`: any other output, from sqlglot's DuckDB text of it (close to the text as
  written; what DuckDB cannot parse keeps sqlglot's text).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import duckdb

from lakehouse.executor.sandbox import planning_database

_PREFIX = "SELECT "
_ROUND_TRIP = "SELECT json_deserialize_sql(json_serialize_sql($1))"


def _scalar(sql: str, argument: str) -> str | None:
    try:
        with planning_database() as database:
            row = database.execute(sql, [argument]).fetchone()
    except duckdb.Error:
        return None
    return row[0] if row and isinstance(row[0], str) else None


_CACHED_UP_TO = 4096  # characters: a cache of 100 kB query texts would hold 100 MB


def duckdb_name(text: str) -> str:
    return _duckdb_name(text) if len(text) <= _CACHED_UP_TO else _duckdb_name.__wrapped__(text)


@lru_cache(maxsize=4096)
def _duckdb_name(text: str) -> str:
    written = _scalar(_ROUND_TRIP, _PREFIX + text)
    if written is None or not written.startswith(_PREFIX):
        return text
    return written[len(_PREFIX):]


def duckdb_names(texts: Sequence[str]) -> list[str]:
    return [duckdb_name(text) for text in texts]


def _parsed(sql: str) -> dict[str, Any] | None:
    found = _scalar("SELECT json_serialize_sql($1)", sql)
    if found is None:
        return None
    tree = json.loads(found)
    return None if tree.get("error") or len(tree.get("statements") or []) != 1 else tree


@lru_cache(maxsize=1)
def _one_item_select() -> dict[str, Any] | None:
    return _parsed("SELECT 1")


def written_names(sql: str) -> tuple[str | None, ...] | None:
    """The DuckDB name of each item of the query's first SELECT as written (None for a star;
    None when DuckDB's parser does not read the text); short texts are cached."""
    return _written_names(sql) if len(sql) <= _CACHED_UP_TO else _written_names.__wrapped__(sql)


@lru_cache(maxsize=1024)
def _written_names(sql: str) -> tuple[str | None, ...] | None:
    """The DuckDB name of each item of the query's first SELECT as written (its alias if it
    has one; None for a star), or None when DuckDB's parser does not read the text."""
    tree, template = _parsed(sql), _one_item_select()
    if tree is None or template is None:
        return None
    node = tree["statements"][0]["node"]
    while node.get("type") == "SET_OPERATION_NODE":
        node = (node.get("children") or [node.get("left")])[0] or {}
    if node.get("type") != "SELECT_NODE":
        return None
    names: list[str | None] = []
    for item in node.get("select_list") or []:
        if item.get("alias"):
            names.append(item["alias"])
            continue
        if item.get("class") == "STAR":
            names.append(None)
            continue
        one = copy.deepcopy(template)
        one["statements"][0]["node"]["select_list"] = [item]
        written = _scalar("SELECT json_deserialize_sql($1::JSON)", json.dumps(one))
        names.append(written[len(_PREFIX):] if written and written.startswith(_PREFIX)
                     else None)
    return tuple(names)
