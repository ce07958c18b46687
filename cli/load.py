"""`lakehouse load SOURCE --table T --tenant X`: a bulk load, with a progress bar.

The load runs in this process as the `load` flow, reported to the Prefect server of the
settings (PREFECT_API_URL, the one `lakehouse up` starts) so it shows in its UI; with no server
to be had it runs without Prefect. Parts go to the Dask cluster of the settings when
LOAD_ON_DASK is true and one answers, else they are converted here.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.common import fail, follow, load_settings
from lakehouse.errors import LakehouseError

POLL_S = 0.1


def load(
    source: Annotated[str, typer.Argument(help="A file, folder, glob (quote it) or s3:// URI, "
                                          "under LOAD_ROOTS.")],
    *,
    table: Annotated[str, typer.Option("--table", help="The table to load into.")],
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="The table's tenant.")],
    format: Annotated[str | None, typer.Option(
        "--format", "-f", help="parquet, csv or ndjson (default: from the extensions).")] = None,
    data_id_column: Annotated[str | None, typer.Option(
        "--data-id-column", help="Column of record keys (default: file stem:row number).")
    ] = None,
    timestamp_column: Annotated[str | None, typer.Option(
        "--timestamp-column", help="Column of row times (default: the load time).")] = None,
) -> None:
    """Bulk-load Parquet, CSV or NDJSON files into a table as one snapshot."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.load import start_load
    from lakehouse.catalog.declarations import SqlDeclarations
    from lakehouse.catalog.engine import catalog_engine
    from lakehouse.catalog.lake_sql import SqlCatalog
    from lakehouse.load.loader import Loader, LoadRequest
    from lakehouse.load.sources import roots_for
    from lakehouse.storage.location import StorageRoot

    settings = load_settings()
    engine = catalog_engine(settings.catalog_url)
    try:
        storage = StorageRoot.parse(settings.storage_root)
        if storage.is_local:
            storage.fs.create_dir(storage.base, recursive=True)
        loader = Loader(SqlCatalog(engine), storage, roots_for(settings),
                        SqlDeclarations(engine))
        request = LoadRequest(tenant, table, source, format, data_id_column, timestamp_column)
        dask = settings.dask_scheduler_address if settings.load_on_dask else ""
        with temporary_settings(updates={PREFECT_API_URL: settings.prefect_api_url}):
            watch = start_load(request, loader, dask)
        result = follow(watch, f"load {tenant}/{table}", "parts")
    except LakehouseError as exc:
        fail(exc.message, exc.details)
    finally:
        engine.dispose()
    _print(result)


def _print(result: dict[str, Any]) -> None:
    table = Table("run", "snapshot", "rows", "files", "bytes", "partitions")
    table.add_row(str(result["run_id"]), str(result["snapshot"]), f"{result['rows']:,}",
                  str(result["files"]), f"{result['bytes']:,}", str(result["partitions"]))
    Console().print(table)
