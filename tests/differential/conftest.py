"""The differential harness, once per test session: a fixed seed's tables in the platform (in
this process: the load path, records, a flush after each batch but the last of the mixed
tables) and in plain DuckDB, and the runner that puts generated queries to both."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tools.sqlgen.oracle import Oracle
from tools.sqlgen.runner import Failure, Runner
from tools.sqlgen.schema import Dataset, make_dataset
from tools.sqlgen.targets import InProcess

SEED = 20_260_104  # the suite's fixed seed (tools/sqlfuzz.py runs any other)


@dataclass
class Harness:
    dataset: Dataset
    target: InProcess
    oracle: Oracle
    runner: Runner


@pytest.fixture(scope="session")
def differential(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    logging.getLogger("distributed").setLevel(logging.ERROR)
    dataset = make_dataset(SEED)
    target = InProcess(dataset, tmp_path_factory.mktemp("differential"))
    oracle = Oracle(dataset)
    try:
        yield Harness(dataset, target, oracle, Runner(target, oracle))
    finally:
        target.close()
        oracle.close()


def explain(harness: Harness, failures: list[Failure], *, reduce: int = 2) -> str:
    """The failures as the fuzz report groups them, the first of each group reduced."""
    from tools.sqlgen.report import to_markdown
    from tools.sqlgen.runner import classify

    for failure in failures:
        classify(failure)
    harness.runner.reduce(failures, per_signature=reduce, max_checks=100, max_seconds=20)
    by_check: dict[str, list[Failure]] = {}
    for failure in failures:
        by_check.setdefault(failure.check, []).append(failure)
    report = to_markdown(SEED, by_check, harness.runner.tallies,
                         len({f.query.id for f in failures}), {}, examples=2)
    return report[:20_000]
