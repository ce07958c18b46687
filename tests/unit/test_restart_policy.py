"""The supervisor's restart decision, as a table of crash histories."""

from __future__ import annotations

import pytest

from cli.restart_policy import GiveUp, Restart, RestartPolicy, decide_restart

POLICY = RestartPolicy(first_delay_s=1.0, max_delay_s=8.0, give_up_after=5, window_s=60.0)


@pytest.mark.parametrize(("crashes", "now", "expected"), [
    ([100.0], 100.0, Restart(1.0, 1)),  # the first crash: a second's pause
    ([90.0, 100.0], 100.0, Restart(2.0, 2)),
    ([80.0, 90.0, 100.0], 100.0, Restart(4.0, 3)),
    ([70.0, 80.0, 90.0, 100.0], 100.0, Restart(8.0, 4)),  # capped at max_delay_s
    ([60.0, 70.0, 80.0, 90.0, 100.0], 100.0, "give up"),  # five in a minute
    ([0.0, 10.0, 20.0, 30.0, 100.0], 100.0, Restart(1.0, 1)),  # the old ones are forgotten
    ([], 100.0, Restart(1.0, 1)),
])
def test_restart_or_give_up(crashes: list[float], now: float,
                            expected: Restart | str) -> None:
    decided = decide_restart(crashes, now, POLICY)
    if expected == "give up":
        assert isinstance(decided, GiveUp) and "5 times" in decided.reason
    else:
        assert decided == expected
