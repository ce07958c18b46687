"""Repair tables whose data files disagree with their types (see lakehouse/storage/type_repair)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lakehouse.catalog.engine import catalog_engine
from lakehouse.catalog.lake_sql import SqlCatalog
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.type_repair import repair_tables


@task(name="repair-table-types", cache_policy=NO_CACHE)
def repair_table_types(catalog_url: str, storage_uri: str) -> list[dict[str, Any]]:
    engine = catalog_engine(catalog_url)
    try:
        repairs = repair_tables(SqlCatalog(engine), StorageRoot.parse(storage_uri))
    finally:
        engine.dispose()
    logger = get_run_logger()
    for repair in repairs:
        logger.warning("repaired %s: types %s, %d files rewritten, %d quarantined",
                       f"{repair.tenant}/{repair.table}", repair.upgraded,
                       len(repair.rewritten), len(repair.quarantined))
    return [r.to_json() for r in repairs]
