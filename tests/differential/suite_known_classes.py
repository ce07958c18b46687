"""Run by hand, not by `make test` yet (see README, "SQL differential testing"): on its seed it
still finds answers that differ from DuckDB's, which issue 20 is fixing.

Issue 20's classes 1–4, being fixed elsewhere: each is a construct the suite's generator
leaves out (tools/sqlgen/scope.py, AWAITING_FIX) while these tests, with that one construct
turned on, are expected to fail — only in their own class (issue 20's class, as
runner.known_class tells it).

`strict=True`: once a class is fixed its test passes unexpectedly and fails the run; then take
its name out of AWAITING_FIX, so the main suite generates the construct again. Failures of
other causes in these queries are left to the main suite, whose generator makes everything but
these constructs (were one of them this class after all, misread, the test would pass and so
fail the run: nothing is hidden).
"""

from __future__ import annotations

import pytest

from tests.differential.conftest import Harness
from tools.sqlgen.queries import Query, generate
from tools.sqlgen.runner import Failure, known_class
from tools.sqlgen.scope import AWAITING_FIX, SUITE

SEED = 424_242
PER_CLASS = 24
pytestmark = pytest.mark.timeout(600)


class KnownClassFails(AssertionError):
    """The queries fail, and only in the class the test names."""


def with_construct(harness: Harness, feature: str) -> list[Query]:
    features = SUITE.__class__(**{**SUITE.__dict__, feature: True})
    found = []
    for index in range(5000):
        query = generate(harness.dataset, SEED, index, features)
        if feature in query.uses and query.valid:
            found.append(query)
            if len(found) == PER_CLASS:
                break
    return found


@pytest.mark.parametrize("feature", [
    pytest.param(name, marks=pytest.mark.xfail(
        strict=True, raises=KnownClassFails,
        reason=f"issue 20 class {number}: being fixed; then remove it from AWAITING_FIX"))
    for name, number in AWAITING_FIX.items()])
def test_known_class(differential: Harness, feature: str) -> None:
    number = AWAITING_FIX[feature]
    queries = with_construct(differential, feature)
    assert len(queries) >= PER_CLASS // 2, f"the generator hardly makes {feature}"
    failures: list[Failure] = []
    for plan in ("single", "distributed"):
        failures += differential.runner.check_plan(queries, plan)
    for failure in failures:
        failure.known_class = known_class(failure)
    theirs = [f for f in failures if f.known_class == number]
    if theirs:
        raise KnownClassFails(f"{len(theirs)} failures of class {number}, e.g. "
                              f"{theirs[0].query.sql[:300]}: {theirs[0].detail[:300]}")
