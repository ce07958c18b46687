"""Whether to restart a supervised process that exited on its own, and after how long (pure).

A crash is answered with a restart after a back-off that doubles with each crash in the window
(1 s, 2 s, 4 s … up to a cap), so a process that crashes at once is not restarted in a tight loop;
after too many crashes in the window the supervisor gives up, since restarting will not help.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    give_up_after: int = 5  # crashes within `window_s`
    window_s: float = 120.0


@dataclass(frozen=True, slots=True)
class Restart:
    delay_s: float
    attempt: int  # this crash's number within the window


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


def decide_restart(crashes: Sequence[float], now: float,
                   policy: RestartPolicy = RestartPolicy()) -> Restart | GiveUp:
    """`crashes`: when this process crashed so far, this crash included (at `now`)."""
    recent = [t for t in crashes if now - t <= policy.window_s]
    count = max(1, len(recent))
    if count >= policy.give_up_after:
        return GiveUp(f"it crashed {count} times in {policy.window_s:.0f} s; restarting it "
                      "again would not help: read its log")
    return Restart(min(policy.max_delay_s, policy.first_delay_s * 2 ** (count - 1)), count)
