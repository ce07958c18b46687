"""What the write path tells whoever measures it (the Monitoring service's metrics), without
knowing who that is: called on the commit thread, so it must be quick and must not raise."""

from __future__ import annotations

from typing import Protocol


class WriteMeter(Protocol):
    def committed(self, synced_s: float, waited_s: float, requests: int) -> None:
        """A group commit is durable: its synced append took `synced_s`, its oldest request
        waited `waited_s` from being queued, `requests` shared it."""

    def written(self, tenant: str, records: int, bytes_: int, rejected: int) -> None:
        """A write of `tenant` is durable: `records` records of `bytes_` bytes, `rejected` of
        them kept as rejects."""


class NoMeter:
    def committed(self, synced_s: float, waited_s: float, requests: int) -> None:
        pass

    def written(self, tenant: str, records: int, bytes_: int, rejected: int) -> None:
        pass
