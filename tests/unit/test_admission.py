"""Backpressure and per-tenant rate decisions, as tables of cases."""

from __future__ import annotations

import pytest

from lakehouse.ingest.admission import (
    Backlog,
    BacklogLimits,
    Bucket,
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
