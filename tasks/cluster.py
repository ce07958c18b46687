"""The Dask cluster as tasks reach it: one connected client per scheduler address, shared."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

DASK_CONNECT_TIMEOUT_S = 5
RETRY_AFTER_S = 30.0  # an address that did not answer is tried again after this long
_CLIENTS: dict[str, Any] = {}  # scheduler address → distributed.Client
_FAILED: dict[str, float] = {}  # scheduler address → when it last failed to answer
_clients_lock = threading.Lock()


def dask_client(address: str) -> Any:
    """A connected client of the scheduler at `address`, or None when there is none to be had
    (the work then runs here: a missing cluster slows it down, it does not stop it)."""
    with _clients_lock:
        client = _CLIENTS.get(address)
        if client is not None and client.status == "running":
            return client
        if time.monotonic() - _FAILED.get(address, -RETRY_AFTER_S) < RETRY_AFTER_S:
            return None
        try:
            from distributed import Client

            client = _CLIENTS[address] = Client(  # type: ignore[no-untyped-call]
                address, timeout=DASK_CONNECT_TIMEOUT_S, set_as_default=False)
        except Exception as exc:
            log.warning("no Dask scheduler; working here instead",
                        extra={"address": address, "error": str(exc)[:200]})
            _FAILED[address] = time.monotonic()
            return None
        return client
