"""Whom to probe (lakehouse/worker_storage.py `to_probe`): a table of cases."""

from __future__ import annotations

import pytest

from lakehouse.worker_storage import RECHECK_EXCLUDED_S, Verdict, to_probe

NOW = 10_000.0
OK = Verdict("tcp://a:1", True, "", "a", NOW - 5)
FRESH_NO = Verdict("tcp://b:1", False, "own disk", "b", NOW - 5)
OLD_NO = Verdict("tcp://c:1", False, "own disk", "c", NOW - RECHECK_EXCLUDED_S)
OLD_OK = Verdict("tcp://d:1", True, "", "d", NOW - 10 * RECHECK_EXCLUDED_S)

CASES = [
    # (known verdicts, connected workers, expected probes, why)
    ({}, [], [], "no workers: nothing to probe"),
    ({}, ["tcp://b:1", "tcp://a:1"], ["tcp://a:1", "tcp://b:1"], "new workers, in order"),
    ({OK.worker: OK}, [OK.worker], [], "a verified worker is not probed again"),
    ({OLD_OK.worker: OLD_OK}, [OLD_OK.worker], [], "however long ago it was verified"),
    ({FRESH_NO.worker: FRESH_NO}, [FRESH_NO.worker], [], "excluded a moment ago: wait"),
    ({OLD_NO.worker: OLD_NO}, [OLD_NO.worker], [OLD_NO.worker], "excluded long enough: again"),
    ({OK.worker: OK, FRESH_NO.worker: FRESH_NO}, [OK.worker, FRESH_NO.worker, "tcp://e:1"],
     ["tcp://e:1"], "only the newcomer"),
    ({OK.worker: OK}, [], [], "a verdict on a worker that left asks for nothing"),
]


@pytest.mark.parametrize(("known", "workers", "expected", "why"), CASES,
                         ids=[case[-1] for case in CASES])
def test_to_probe(known: dict[str, Verdict], workers: list[str], expected: list[str],
                  why: str) -> None:
    assert to_probe(known, workers, NOW) == expected, why
