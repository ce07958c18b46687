"""Login throttling: how many failed logins a user name, or a client address, may have before
each next attempt must wait, and how long.

`decide` is a pure decision over explicit state and time, tested with a table of cases;
`LoginThrottle` keeps the state and turns a refusal into the error the client gets (429 with
Retry-After).

The rules: each key (a user name as given, a client address) may fail `free_failures` times;
after that each attempt waits `first_backoff_s` after the last one, doubling with every further
failure up to `max_backoff_s`. A key with no attempt for `window_s` starts again from nothing. A
success resets the user name's count; it only cancels its own attempt from the address's, so
one address cannot try many user names by mixing in logins to an account of its own. Addresses
get more free failures than user names (several people may share one address), and still stop
one address from trying many user names.

An attempt counts as failed from the moment it is admitted until its password is found right:
concurrent attempts see each other, so a burst of parallel guesses is throttled like a sequence
of them, and every attempt past the limits is refused before any password is hashed.

Unknown user names are counted exactly as known ones, before the user is looked up, and the
refusal never names the user: a 429 says nothing about whether a user exists.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from lakehouse.errors import RateLimited

MAX_KEYS = 10_000  # user names (and as many addresses) remembered; the oldest go first
FIRST_BACKOFF_S = 1.0


class Event(enum.Enum):
    ATTEMPT = "attempt"  # a login is about to verify a password: failed until SUCCESS says not
    SUCCESS = "success"  # that attempt's password was right


@dataclass(frozen=True, slots=True)
class ThrottleRules:
    free_failures: int  # failures a key may have before its attempts must wait
    window_s: float  # a key with no attempt for this long starts again from nothing
    first_backoff_s: float
    max_backoff_s: float
    success_resets: bool  # a success clears the count (user names), or cancels one (addresses)


@dataclass(frozen=True, slots=True)
class Strikes:
    """A key's failed attempts so far, and when it last attempted."""

    failures: int
    last_at: float


def backoff_s(failures: int, rules: ThrottleRules) -> float:
    """How long after its last attempt a key with `failures` failures must wait."""
    over = failures - rules.free_failures
    if over < 0:
        return 0.0
    return min(rules.max_backoff_s, rules.first_backoff_s * 2.0 ** min(over, 64))


def decide(state: Strikes | None, event: Event, now: float,
           rules: ThrottleRules) -> tuple[Strikes | None, int | None]:
    """A key's next state and, for an attempt that must wait, the refusal: how many seconds to
    wait (Retry-After), else None. A refused attempt changes nothing: hammering during a
    back-off neither lengthens nor shortens it."""
    if state is not None and now - state.last_at >= rules.window_s:
        state = None  # quiet for a whole window: forgotten
    if event is Event.SUCCESS:
        if state is None or rules.success_resets or state.failures <= 1:
            return None, None
        return Strikes(state.failures - 1, state.last_at), None
    if state is None:
        return Strikes(1, now), None
    wait = state.last_at + backoff_s(state.failures, rules) - now
    if wait > 0:
        return state, max(1, math.ceil(wait))
    return Strikes(state.failures + 1, now), None


class LoginThrottle:
    """The throttle's state for every user name and client address, in this process's memory.

    In memory because the Auth Gateway runs in one process (in the monolith and in a split
    deployment alike), so every login passes here; a restart forgets the counts, which only
    gives an attacker a fresh set of free failures per restart. Bounded: at most `max_keys`
    user names and as many addresses, the least recently attempted evicted first, so a storm of
    made-up names cannot grow it. Thread-safe: logins complete on worker threads.
    """

    def __init__(self, users: ThrottleRules, addresses: ThrottleRules, *,
                 max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic) -> None:
        self.users = users
        self.addresses = addresses
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._by_user: OrderedDict[str, Strikes] = OrderedDict()
        self._by_address: OrderedDict[str, Strikes] = OrderedDict()

    def admit(self, username: str, address: str | None) -> None:
        """Count an attempt for `username` from `address` (None: unknown, only the user name
        counts), or raise RateLimited with Retry-After if either must wait; a refused attempt
        is not counted against either."""
        now = self._clock()
        with self._lock:
            keys = self._keys(username, address)
            decided = [(table, key, *decide(table.get(key), Event.ATTEMPT, now, rules))
                       for table, key, rules in keys]
            waits = [wait for *_, wait in decided if wait is not None]
            if waits:
                retry_after = max(waits)
                raise RateLimited(
                    f"too many failed logins; try again in {retry_after} s",
                    code="login_throttled", details={"retry_after_s": retry_after},
                    headers={"Retry-After": str(retry_after)})
            for table, key, state, _ in decided:
                self._store(table, key, state)

    def succeeded(self, username: str, address: str | None) -> None:
        """The attempt `admit` counted had the right password."""
        now = self._clock()
        with self._lock:
            for table, key, rules in self._keys(username, address):
                state, _ = decide(table.get(key), Event.SUCCESS, now, rules)
                self._store(table, key, state)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_user) + len(self._by_address)

    def _keys(self, username: str, address: str | None,
              ) -> list[tuple[OrderedDict[str, Strikes], str, ThrottleRules]]:
        keys = [(self._by_user, username, self.users)]
        if address is not None:
            keys.append((self._by_address, address, self.addresses))
        return keys

    def _store(self, table: OrderedDict[str, Strikes], key: str, state: Strikes | None) -> None:
        if state is None:
            table.pop(key, None)
            return
        table[key] = state
        table.move_to_end(key)
        while len(table) > self._max_keys:
            table.popitem(last=False)


def login_throttle(*, user_failures: int, address_failures: int, window_s: float,
                   max_backoff_s: float) -> LoginThrottle:
    """The throttle of the settings: the same window and back-off for both kinds of key."""
    def rules(free_failures: int, success_resets: bool) -> ThrottleRules:
        return ThrottleRules(free_failures, window_s, FIRST_BACKOFF_S, max_backoff_s,
                             success_resets)

    return LoginThrottle(rules(user_failures, True), rules(address_failures, False))
