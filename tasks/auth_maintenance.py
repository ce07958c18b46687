"""Forget expired refresh tokens and deny-list entries, so the auth tables stay small."""

from __future__ import annotations

import time

from prefect import get_run_logger, task

from lakehouse.catalog.auth_store import SqlAuthStore
from lakehouse.catalog.engine import catalog_engine


@task(name="purge-expired-tokens", retries=2, retry_delay_seconds=5)
def purge_expired_tokens(catalog_url: str) -> int:
    engine = catalog_engine(catalog_url)
    try:
        purged = SqlAuthStore(engine).purge_expired(int(time.time()))
    finally:
        engine.dispose()
    get_run_logger().info("purged %d expired tokens from %s", purged,
                          engine.url.render_as_string(hide_password=True))
    return purged
