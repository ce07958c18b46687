"""Housekeeping: small periodic clean-ups and checks of the catalog, a scheduled deployment."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from flows.run_results import publish
from lakehouse.config import Settings
from tasks.auth_maintenance import purge_expired_tokens
from tasks.type_repair import repair_table_types


def _run_name() -> str:
    return f"housekeeping {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}"


@flow(name="housekeeping", flow_run_name=_run_name,
      description="Purge expired refresh tokens and deny-listed access tokens from the catalog; "
                  "repair tables whose files disagree with their column types.")
def housekeeping(catalog_url: str | None = None, storage_root: str | None = None,
                 ) -> dict[str, Any]:
    # Settings are read here, at run time on the worker, never at import time.
    settings = Settings() if catalog_url is None or storage_root is None else None
    url = catalog_url or (settings.catalog_url if settings else "")
    storage = storage_root or (settings.storage_root if settings else "")
    result = {"expired_tokens_purged": purge_expired_tokens(url),
              "tables_repaired": repair_table_types(url, storage)}
    # Attached to the run, so GET /metadata/stats can show what the last one did.
    publish(str(flow_run.id), {"run_id": str(flow_run.id), "flow": "housekeeping", **result})
    return result
