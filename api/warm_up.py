"""Modules the services' first query and first flush would import, imported at start instead.

Imported on first use, they were imported under load: `pyarrow.acero` (loaded by the first
`Table.filter` with an expression) takes about 215 ms, with the interpreter lock held while its
shared library loads, so every request in flight waited that long; the DuckDB dialect of
sqlglot (the first plan) about 20 ms; Prefect's task engine and flow-visualisation modules (the
first flow run) some 40 modules more. Found by recording which modules a running services'
process added after it started, under the overload bench (docs/scaling.md, "Overload").

Dask's `distributed` (close to 300 modules) was imported by the first health round's probe of
the scheduler, on the event loop itself: 250 ms in which no request was answered, just after the
services began to answer, which is when clients retrying through a restart come back."""

from __future__ import annotations

import importlib

LAZY_IMPORTS = (
    "pyarrow.acero",
    "pyarrow.dataset",
    "sqlglot.dialects.duckdb",
    "sqlglot.dialects.clickhouse",
    "prefect.task_engine",
    "prefect.utilities.visualization",
    "email.policy",
    "distributed.core",
)


def warm_up() -> None:
    for name in LAZY_IMPORTS:
        importlib.import_module(name)
