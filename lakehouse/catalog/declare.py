"""Declaring a table: the declaration stored, and the table created in a snapshot of its own.

A declared table is a table with zero rows. It is listed, it can be queried (its columns, no
rows) and time travel sees it from the snapshot that declared it on, because declaring commits
the table the way a first flush would (its declared columns, partitioning and sort key); the
first flush then only adds files to it.

Two stores, two steps: the declaration first, since it is what refuses a second declaration of
the same table, then the commit. A crash between them leaves a declaration whose table appears
at its first flush, which is how every declared table behaved before.
"""

from __future__ import annotations

from lakehouse.catalog.declarations import TableDeclarations
from lakehouse.catalog.lake import Catalog, Commit, EnsureTable
from lakehouse.errors import Conflict
from lakehouse.schema.declared import DeclaredTable


def declare_table(declarations: TableDeclarations, catalog: Catalog, tenant: str,
                  declared: DeclaredTable) -> int:
    """Store the declaration and create its table; the snapshot that created it. Conflict if
    the table is declared already or already has data (a declaration comes before data)."""
    if (declarations.get(tenant, declared.name) is None
            and catalog.table(tenant, declared.name) is not None):
        raise Conflict("this table already has data; declare a table before writing to it",
                       code="table_has_records", details={"table": declared.name})
    declarations.declare(tenant, declared)
    # No keys yet: `SELECT *` answers the declared columns; data_id joins them once records
    # (which carry keys) are written, not when a load makes keys up.
    table = EnsureTable(tenant, declared.name, declared.columns.to_json(),
                        declared.partition_by, declared.sort_key, user_keys=False)
    return catalog.commit(Commit("declare", (table,), {"tenant": tenant,
                                                       "table": declared.name}))
