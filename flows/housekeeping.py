"""Housekeeping: small periodic clean-ups of the catalog, run as a scheduled deployment."""

from __future__ import annotations

import datetime as dt

from prefect import flow
from prefect.runtime import flow_run

from flows.run_results import publish
from lakehouse.config import Settings
from tasks.auth_maintenance import purge_expired_tokens


def _run_name() -> str:
    return f"housekeeping {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}"


@flow(name="housekeeping", flow_run_name=_run_name,
      description="Purge expired refresh tokens and deny-listed access tokens from the catalog.")
def housekeeping(catalog_url: str | None = None) -> dict[str, int]:
    # Settings are read here, at run time on the worker, never at import time.
    url = catalog_url or Settings().catalog_url
    result = {"expired_tokens_purged": purge_expired_tokens(url)}
    # Attached to the run, so GET /metadata/stats can show what the last one did.
    publish(str(flow_run.id), {"run_id": str(flow_run.id), "flow": "housekeeping", **result})
    return result
