"""Whom to probe (lakehouse/worker_storage.py `to_probe`): a table of cases."""

from __future__ import annotations

import pytest

from lakehouse.worker_storage import RECHECK_EXCLUDED_S, Verdict, to_probe

NOW = 10_000.0
OK = Verdict("tcp://a:1", True, "", "a", NOW - 5, "p1")
FRESH_NO = Verdict("tcp://b:1", False, "own disk", "b", NOW - 5, "p1")
OLD_NO = Verdict("tcp://c:1", False, "own disk", "c", NOW - RECHECK_EXCLUDED_S, "p1")
OLD_OK = Verdict("tcp://d:1", True, "", "d", NOW - 10 * RECHECK_EXCLUDED_S, "p1")

CASES = [
    # (known verdicts, connected workers (address → process), expected probes, why)
    ({}, {}, [], "no workers: nothing to probe"),
    ({}, {"tcp://b:1": "p1", "tcp://a:1": "p1"}, ["tcp://a:1", "tcp://b:1"],
     "new workers, in order"),
    ({OK.worker: OK}, {OK.worker: "p1"}, [], "a verified worker is not probed again"),
    ({OLD_OK.worker: OLD_OK}, {OLD_OK.worker: "p1"}, [], "however long ago it was verified"),
    ({OK.worker: OK}, {OK.worker: "p2"}, [OK.worker],
     "a new process at a verified address: it may not see what the old one saw"),
    ({FRESH_NO.worker: FRESH_NO}, {FRESH_NO.worker: "p1"}, [], "excluded a moment ago: wait"),
    ({OLD_NO.worker: OLD_NO}, {OLD_NO.worker: "p1"}, [OLD_NO.worker],
     "excluded long enough: again"),
    ({OK.worker: OK, FRESH_NO.worker: FRESH_NO},
     {OK.worker: "p1", FRESH_NO.worker: "p1", "tcp://e:1": "p1"}, ["tcp://e:1"],
     "only the newcomer"),
    ({OK.worker: OK}, {}, [], "a verdict on a worker that left asks for nothing"),
]


@pytest.mark.parametrize(("known", "workers", "expected", "why"), CASES,
                         ids=[case[-1] for case in CASES])
def test_to_probe(known: dict[str, Verdict], workers: dict[str, str], expected: list[str],
                  why: str) -> None:
    assert to_probe(known, workers, NOW) == expected, why
