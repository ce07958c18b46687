"""Login throttling as a pure decision (a table of cases), and the bounded state that keeps it."""

from __future__ import annotations

import pytest

from lakehouse.auth.throttle import (
    Event,
    LoginThrottle,
    Strikes,
    ThrottleRules,
    backoff_s,
    decide,
    login_throttle,
)
from lakehouse.errors import RateLimited

USER = ThrottleRules(free_failures=5, window_s=900, first_backoff_s=1, max_backoff_s=300,
                     success_resets=True)
ADDRESS = ThrottleRules(free_failures=20, window_s=900, first_backoff_s=1, max_backoff_s=300,
                        success_resets=False)
ATTEMPT, SUCCESS = Event.ATTEMPT, Event.SUCCESS


# `refusal`: the seconds the attempt must wait (its Retry-After), None if it may go on.
@pytest.mark.parametrize(("state", "event", "now", "rules", "new_state", "refusal"), [
    # A first attempt is counted as failed until it succeeds.
    (None, ATTEMPT, 100.0, USER, Strikes(1, 100.0), None),
    # The free failures: no wait, however fast.
    (Strikes(4, 100.0), ATTEMPT, 100.0, USER, Strikes(5, 100.0), None),
    # Past them, 1 s after the last attempt...
    (Strikes(5, 100.0), ATTEMPT, 100.2, USER, Strikes(5, 100.0), 1),
    (Strikes(5, 100.0), ATTEMPT, 101.0, USER, Strikes(6, 101.0), None),
    # ...doubling with each further failure...
    (Strikes(6, 100.0), ATTEMPT, 101.0, USER, Strikes(6, 100.0), 1),
    (Strikes(6, 100.0), ATTEMPT, 102.0, USER, Strikes(7, 102.0), None),
    (Strikes(9, 100.0), ATTEMPT, 100.5, USER, Strikes(9, 100.0), 16),
    # ...up to the cap.
    (Strikes(40, 100.0), ATTEMPT, 100.0, USER, Strikes(40, 100.0), 300),
    (Strikes(40, 100.0), ATTEMPT, 400.0, USER, Strikes(41, 400.0), None),
    # A whole quiet window forgets a key, even one at the cap.
    (Strikes(40, 100.0), ATTEMPT, 1000.0, USER, Strikes(1, 1000.0), None),
    # A success resets a user name...
    (Strikes(9, 100.0), SUCCESS, 100.1, USER, None, None),
    (None, SUCCESS, 100.0, USER, None, None),
    # ...but only cancels its own attempt from an address.
    (Strikes(9, 100.0), SUCCESS, 100.1, ADDRESS, Strikes(8, 100.0), None),
    (Strikes(1, 100.0), SUCCESS, 100.1, ADDRESS, None, None),
    (Strikes(9, 100.0), SUCCESS, 1000.0, ADDRESS, None, None),
    # An address gets more free failures than a user name.
    (Strikes(19, 100.0), ATTEMPT, 100.0, ADDRESS, Strikes(20, 100.0), None),
    (Strikes(20, 100.0), ATTEMPT, 100.0, ADDRESS, Strikes(20, 100.0), 1),
])
def test_decide(state: Strikes | None, event: Event, now: float, rules: ThrottleRules,
                new_state: Strikes | None, refusal: int | None) -> None:
    assert decide(state, event, now, rules) == (new_state, refusal)


def test_backoff_doubles_from_one_second_to_the_cap() -> None:
    assert [backoff_s(n, USER) for n in range(4, 16)] == [
        0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff_s(10**6, USER) == 300  # no overflow on absurd counts


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(throttle: LoginThrottle, user: str, address: str | None) -> RateLimited | None:
    try:
        throttle.admit(user, address)
    except RateLimited as exc:
        return exc
    return None


def test_a_user_name_is_held_from_any_address_and_freed_by_its_success() -> None:
    clock = Clock()
    throttle = LoginThrottle(USER, ADDRESS, clock=clock)
    for i in range(5):
        assert refused(throttle, "bob", f"10.0.0.{i}") is None
    error = refused(throttle, "bob", "10.0.0.99")
    assert error is not None and error.http_status == 429
    assert error.headers == {"Retry-After": "1"} and error.code == "login_throttled"
    assert "bob" not in error.message and "bob" not in str(error.details)
    assert refused(throttle, "alice", "10.0.0.99") is None  # other names are not held
    clock.now += 1
    assert refused(throttle, "bob", "10.0.0.99") is None
    throttle.succeeded("bob", "10.0.0.99")
    for _ in range(5):  # a fresh set of free failures
        assert refused(throttle, "bob", "10.0.0.1") is None


def test_one_address_trying_many_user_names_is_held() -> None:
    clock = Clock()
    throttle = LoginThrottle(USER, ADDRESS, clock=clock)
    for i in range(20):
        assert refused(throttle, f"user{i}", "10.1.1.1") is None
    error = refused(throttle, "someone-else", "10.1.1.1")
    assert error is not None and error.headers["Retry-After"] == "1"
    assert refused(throttle, "someone-else", "10.1.1.2") is None
    # Logging in to an account of its own does not clear the address's count.
    throttle.succeeded("someone-else", "10.1.1.2")
    clock.now += 1
    assert refused(throttle, "mine", "10.1.1.1") is None
    throttle.succeeded("mine", "10.1.1.1")
    clock.now += 0.5
    assert refused(throttle, "next", "10.1.1.1") is not None


def test_the_state_is_bounded_oldest_first() -> None:
    throttle = LoginThrottle(USER, ADDRESS, max_keys=100, clock=Clock())
    for i in range(1000):
        throttle.admit(f"made-up-{i}", f"10.2.{i // 250}.{i % 250}")
    assert len(throttle) == 200


def test_the_settings_build_the_documented_rules() -> None:
    throttle = login_throttle(user_failures=5, address_failures=20, window_s=900,
                              max_backoff_s=300)
    assert (throttle.users, throttle.addresses) == (USER, ADDRESS)
