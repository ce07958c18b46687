"""Whether to take a write now: backpressure on the unflushed backlog and per-tenant rates.

Pure decisions over explicit state and time, so they are tested with tables of cases; `Admission`
keeps the state they need (each tenant's bucket) and turns a refusal into the error the client
gets (a 503 or a 429, with Retry-After).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from lakehouse.errors import RateLimited, Unavailable


@dataclass(frozen=True, slots=True)
class BacklogLimits:
    max_unflushed_bytes: int
    max_unflushed_age_s: float  # 0 turns the age limit off


@dataclass(frozen=True, slots=True)
class IngestLimits:
    backlog: BacklogLimits
    tenant_rate: float  # records per second; 0 means unlimited
    tenant_burst: float


@dataclass(frozen=True, slots=True)
class Backlog:
    unflushed_bytes: int
    oldest_unflushed_age_s: float


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    retry_after_s: int


def decide_backlog(backlog: Backlog, limits: BacklogLimits) -> Refusal | None:
    if backlog.unflushed_bytes >= limits.max_unflushed_bytes:
        return Refusal(f"{backlog.unflushed_bytes} bytes wait to be flushed (limit "
                       f"{limits.max_unflushed_bytes}); retry after the next flush", 5)
    if limits.max_unflushed_age_s and backlog.oldest_unflushed_age_s > limits.max_unflushed_age_s:
        return Refusal(f"the oldest unflushed record is {backlog.oldest_unflushed_age_s:.0f}s old "
                       f"(limit {limits.max_unflushed_age_s:.0f}s); flushing is behind", 5)
    return None


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: `tokens` available at time `at`."""

    tokens: float
    at: float


def take_tokens(bucket: Bucket | None, wanted: int, now: float, rate: float,
                burst: float) -> tuple[Bucket, Refusal | None]:
    """Take `wanted` tokens (records) if the bucket has them; else say when it will.

    A request larger than the burst is allowed when the bucket is full, so a big batch is slow,
    never impossible.
    """
    if rate <= 0:
        return Bucket(burst, now), None
    current = burst if bucket is None else min(burst, bucket.tokens + (now - bucket.at) * rate)
    if current >= wanted or current >= burst:
        return Bucket(current - wanted, now), None
    wait = (min(wanted, burst) - current) / rate
    return Bucket(current, now), Refusal(
        f"over this tenant's write rate of {rate:.0f} records/s", max(1, math.ceil(wait)))


class Admission:
    """Not thread-safe by itself: the ingest service admits under its lock, so a tenant's
    concurrent requests take their tokens one after the other."""

    def __init__(self, limits: IngestLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self.buckets: dict[str, Bucket] = {}

    def admit(self, tenant: str, records: int, backlog: Backlog) -> None:
        """Take `records` from the tenant's rate, or raise why not (Unavailable while the
        backlog is over its limits, RateLimited over the tenant's rate)."""
        refusal = decide_backlog(backlog, self.limits.backlog)
        if refusal is not None:
            raise Unavailable(refusal.reason, code="backlog_full",
                              headers={"Retry-After": str(refusal.retry_after_s)})
        bucket, refused = take_tokens(self.buckets.get(tenant), records, self._clock(),
                                      self.limits.tenant_rate, self.limits.tenant_burst)
        self.buckets[tenant] = bucket
        if refused is not None:
            raise RateLimited(refused.reason, headers={"Retry-After": str(refused.retry_after_s)},
                              details={"tenant": tenant, "records": records})
