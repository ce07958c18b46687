"""Error texts in the caller's names, without the platform's or a library's internals.

DuckDB and sqlglot describe a failure in terms of the query they were given, which is not the
query the caller wrote: its tables are bound to the tenant's internal schema
(`"tenant_acme"."orders"`, lakehouse/sql/bind.py), the executor registers relations under random
names (`r_<hex>`, lakehouse/executor/sandbox.py), DuckDB prefixes its own error class (`Catalog
Error: `) and names its in-memory catalog (`memory.`), and sqlglot's assertions print Python
classes (`<class 'sqlglot.expressions.core.Alias'>`). `scrub` turns such a text into one that
speaks of the caller's tables; every error text from DuckDB or sqlglot passes through it on its
way to a response (tests/integration/test_sql_regressions.py pins it over HTTP).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MAX_MESSAGE = 300
_CATALOGS = r'(?:"?(?:memory|temp|system)"?\.)?'
_PYTHON_CLASS = re.compile(r"<class '(?:\w+\.)*(\w+)'>")
_ENGINE_PREFIX = re.compile(r"^(?:[A-Z][a-z]+ )+Error: ")  # "Catalog Error: ", "Binder Error: "
_MISSING_SCHEMA = re.compile(r' because schema "[^"]*" does not exist')
_HIDDEN_RELATION = re.compile(r"\br_[0-9a-f]{32}\b")


def scrub(text: str, *, schemas: Iterable[str] = (), relations: Mapping[str, str] | None = None,
          ) -> str:
    """`text` with internal names replaced by the caller's: the internal `schemas` (see
    lakehouse/sql/bind.py) dropped from qualified names, hidden relation names replaced by the
    table they stand for (`relations`: hidden name → "schema.table"), DuckDB's error class
    prefix and catalog names and Python class paths removed; its first line only, at most
    MAX_MESSAGE characters. Only the exact schema names given are touched: a caller's own table
    may be called `tenant_x`."""
    lines = text.strip().splitlines()
    out = lines[0] if lines else ""
    for hidden, relation in (relations or {}).items():
        out = out.replace(hidden, relation.rpartition(".")[2])
    out = _HIDDEN_RELATION.sub("a table", out)
    out = _MISSING_SCHEMA.sub("", out)
    for schema in schemas:
        name = re.escape(schema)
        out = re.sub(rf'{_CATALOGS}"{name}"\.', "", out)  # "tenant_acme"."t"
        out = re.sub(rf'\b(?:(?:memory|temp|system)\.)?{name}\.', "", out)  # "tenant_acme.t"
        out = re.sub(rf'\bschema "?{name}"?', "your tables", out)
    out = _PYTHON_CLASS.sub(r"\1", out)
    out = _ENGINE_PREFIX.sub("", out)
    return out if len(out) <= MAX_MESSAGE else out[:MAX_MESSAGE - 1] + "…"
