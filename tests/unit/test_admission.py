"""Backpressure and per-tenant rate decisions, as tables of cases; and `Admission`, which keeps
the buckets and answers a refusal with the error the client gets."""

from __future__ import annotations

import pytest

from lakehouse.errors import RateLimited, Unavailable
from lakehouse.ingest.admission import (
    Admission,
    Backlog,
    BacklogLimits,
    Bucket,
    IngestLimits,
    decide_backlog,
    take_tokens,
)

LIMITS = BacklogLimits(max_unflushed_bytes=1000, max_unflushed_age_s=60)


@pytest.mark.parametrize(
    ("backlog", "limits", "refused"),
    [
        (Backlog(0, 0), LIMITS, False),
        (Backlog(999, 59), LIMITS, False),
        (Backlog(1000, 0), LIMITS, True),
        (Backlog(10, 61), LIMITS, True),
        (Backlog(10, 10_000), BacklogLimits(1000, 0), False),  # 0 turns the age limit off
    ],
)
def test_backlog(backlog: Backlog, limits: BacklogLimits, refused: bool) -> None:
    refusal = decide_backlog(backlog, limits)
    assert (refusal is not None) is refused
    if refusal is not None:
        assert refusal.retry_after_s >= 1 and refusal.reason


@pytest.mark.parametrize(
    ("bucket", "wanted", "now", "allowed", "tokens_after", "retry_after"),
    [
        (None, 10, 0.0, True, 90.0, None),  # a new tenant starts with a full burst
        (Bucket(5, 0.0), 10, 0.0, False, 5.0, 1),  # 5 short at 10/s: half a second, rounded up
        (Bucket(5, 0.0), 10, 0.5, True, 0.0, None),  # refilled by then
        (Bucket(0, 0.0), 1000, 0.0, False, 0.0, 10),  # larger than the burst: wait for a full one
        (Bucket(100, 0.0), 1000, 0.0, True, -900.0, None),  # ...then it goes, and owes the rest
        (Bucket(0, 0.0), 5, 100.0, True, 95.0, None),  # refill is capped at the burst
    ],
)
def test_token_bucket(bucket: Bucket | None, wanted: int, now: float, allowed: bool,
                      tokens_after: float, retry_after: int | None) -> None:
    after, refusal = take_tokens(bucket, wanted, now, rate=10.0, burst=100.0)
    assert (refusal is None) is allowed
    assert after.tokens == pytest.approx(tokens_after)
    if refusal is not None:
        assert refusal.retry_after_s == retry_after


def test_rate_zero_means_unlimited() -> None:
    _after, refusal = take_tokens(Bucket(0, 0.0), 10**9, 0.0, rate=0, burst=1)
    assert refusal is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _admission(clock: Clock, rate: float = 10.0, burst: float = 10.0) -> Admission:
    return Admission(IngestLimits(LIMITS, rate, burst), clock)


def test_a_full_backlog_is_refused_with_retry_after_and_takes_no_tokens() -> None:
    admission = _admission(Clock())
    with pytest.raises(Unavailable) as refused:
        admission.admit("acme", 10, Backlog(1000, 0))
    assert (refused.value.code, refused.value.http_status) == ("backlog_full", 503)
    assert refused.value.headers == {"Retry-After": "5"}
    admission.admit("acme", 10, Backlog(0, 0))  # the whole burst is still there


def test_over_the_rate_is_refused_with_retry_after_until_the_bucket_refills() -> None:
    clock = Clock()
    admission = _admission(clock)
    admission.admit("acme", 10, Backlog(0, 0))
    with pytest.raises(RateLimited) as refused:
        admission.admit("acme", 5, Backlog(0, 0))
    assert refused.value.http_status == 429
    assert refused.value.headers == {"Retry-After": "1"}  # 5 short at 10/s, rounded up
    assert refused.value.details == {"tenant": "acme", "records": 5}
    admission.admit("globex", 10, Backlog(0, 0))  # another tenant has its own bucket
    clock.now = 0.5
    admission.admit("acme", 5, Backlog(0, 0))


def test_rate_zero_admits_anything_the_backlog_allows() -> None:
    admission = _admission(Clock(), rate=0, burst=0)
    for _ in range(3):
        admission.admit("acme", 10**6, Backlog(999, 0))
