"""The scheduled housekeeping flow purges expired tokens, checks table types and is a named
Prefect run. (The repair itself: tests/integration/test_type_repair.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

from flows.housekeeping import housekeeping
from lakehouse.auth.store import RefreshToken
from lakehouse.catalog.auth_store import SqlAuthStore
from lakehouse.catalog.engine import catalog_engine


def test_housekeeping_purges_expired_tokens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    engine = catalog_engine(url)
    store = SqlAuthStore(engine)
    store.add_refresh_token(RefreshToken("expired", "f", "alice", 1, expires_at=10))
    store.add_refresh_token(RefreshToken("live", "f", "alice", 1, expires_at=2**40))
    store.revoke_access_token("old-jti", expires_at=10)

    state = housekeeping(catalog_url=url, storage_root=str(tmp_path / "warehouse"),
                         return_state=True)
    assert state.is_completed()
    assert state.result() == {"expired_tokens_purged": 2, "tables_repaired": []}
    assert store.get_refresh_token("expired") is None
    assert store.get_refresh_token("live") is not None
    engine.dispose()

    async def runs() -> list[str]:
        async with get_client() as client:
            found = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(like_="housekeeping 2")))
        return [run.name for run in found]

    assert any(name.startswith("housekeeping 20") for name in asyncio.run(runs()))
