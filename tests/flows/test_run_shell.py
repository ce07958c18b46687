"""The run shell (flows/runs.py): one job's steps under Prefect (the test harness) and, when the
Prefect API cannot be reached, as the policy table says. "Unreachable" is a real closed port."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.runs import POLICY, Job, StepNames, WhenPrefectIsDown, filed, run_steps, start
from lakehouse.errors import InvalidInput, Unavailable

CLOSED = "http://127.0.0.1:9/api"  # the discard port: nothing listens there


@flow(name="shell-test", flow_run_name="shell test")
def shell_test(job: str) -> dict[str, Any]:
    return run_steps(filed(job))


def _job(kind: str, parts: int = 3, failures: dict[int, int] | None = None,
         refused: set[int] | None = None) -> tuple[Job[Any, Any, Any], list[int]]:
    """A job whose part `n` fails `failures[n]` times (an error that may pass), or always with
    InvalidInput when in `refused` (one that will not)."""
    calls: list[int] = []
    left = dict(failures or {})

    def part(n: int) -> int:
        calls.append(n)
        if n in (refused or set()):
            raise InvalidInput(f"part {n} is bad")
        if left.get(n, 0) > 0:
            left[n] -= 1
            raise OSError(f"part {n} failed once")
        return n * 10

    return Job(kind=kind, names=StepNames("plan-test", "part-test", "finish-test"),
               plan=lambda: list(range(parts)), parts=lambda plan: plan, run_part=part,
               finish=lambda plan, results: {"sum": sum(results), "parts": len(plan)},
               part_label=lambda n: f"part {n}", parallel=2, retries=2,
               retry_if=lambda exc: not isinstance(exc, InvalidInput)), calls


def test_the_policy_names_every_kind_of_run() -> None:
    assert POLICY == {"ingest": WhenPrefectIsDown.RUN_HERE, "load": WhenPrefectIsDown.RUN_HERE,
                      "query": WhenPrefectIsDown.RUN_HERE,
                      "compaction": WhenPrefectIsDown.REFUSE,
                      "mirror": WhenPrefectIsDown.RUN_HERE}


def test_under_prefect_each_step_is_a_task_and_the_run_is_named() -> None:
    job, _ = _job("load", parts=3, failures={1: 1})
    watch = start(job, shell_test, name="shell test", parameters={}, tags=["tenant:acme"])
    assert not watch.run_id.startswith("local-")
    result = watch.wait(timeout_s=60)
    assert result["sum"] == 30 and result["flow"] == "load" and result["run_id"] == watch.run_id
    assert (watch.done, watch.total) == (3, 3)

    async def tasks() -> list[str]:
        async with get_client() as client:
            return sorted(t.name for t in await client.read_task_runs()
                          if str(t.flow_run_id) == watch.run_id)

    assert asyncio.run(tasks()) == ["finish-test", "part 0", "part 1", "part 2", "plan-test"]
    assert filed("load-" + uuid.uuid4().hex[:12]) is None


class _Counted(list[int]):
    """A list that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Any:
        _Counted.walks += 1
        return super().__iter__()


def test_steps_get_their_arguments_unwalked() -> None:
    """Prefect walks a task's arguments for futures, every element of every nested collection
    in Python holding the interpreter lock; a flush's parts and plan carry every unflushed
    record, and walking them stalled the whole process for seconds. The shell hands them over
    opaque: the steps get them as they are, and Prefect never iterates them."""
    plan = [_Counted(range(1000)) for _ in range(3)]
    seen: list[Any] = []

    def part(rows: _Counted) -> int:
        seen.append(rows)
        return len(rows)

    def finish(planned: list[_Counted], results: list[int]) -> dict[str, Any]:
        seen.append(planned)
        return {"rows": sum(results)}

    job: Job[Any, Any, Any] = Job(
        kind="load", names=StepNames("plan-test", "part-test", "finish-test"),
        plan=lambda: plan, parts=lambda planned: planned, run_part=part, finish=finish,
        part_label=lambda rows: f"part of {len(rows)}")
    _Counted.walks = 0
    watch = start(job, shell_test, name="shell test", parameters={}, tags=[])
    assert not watch.run_id.startswith("local-")  # run under Prefect, as tasks
    assert watch.wait(timeout_s=60)["rows"] == 3000
    assert _Counted.walks == 0
    assert sorted(map(id, seen)) == sorted([*map(id, plan), id(plan)])


def test_without_prefect_a_load_runs_here_with_the_same_retries() -> None:
    job, calls = _job("load", parts=4, failures={2: 2})
    with temporary_settings(updates={PREFECT_API_URL: CLOSED}):
        watch = start(job, shell_test, name="shell test", parameters={}, tags=[])
    assert watch.run_id.startswith("local-")
    result = watch.wait(timeout_s=60)
    assert result == {"run_id": watch.run_id, "flow": "load", "sum": 60, "parts": 4,
                      "state": "COMPLETED"}
    assert sorted(calls) == [0, 1, 2, 2, 2, 3] and (watch.done, watch.total) == (4, 4)


def test_an_error_that_will_not_pass_is_not_tried_again() -> None:
    job, calls = _job("load", parts=2, refused={1})
    with temporary_settings(updates={PREFECT_API_URL: CLOSED}):
        watch = start(job, shell_test, name="shell test", parameters={}, tags=[])
    with pytest.raises(InvalidInput, match="part 1 is bad"):
        watch.wait(timeout_s=60)
    assert calls.count(1) == 1


def test_without_prefect_a_compaction_is_refused_and_nothing_runs() -> None:
    job, calls = _job("compaction")
    with temporary_settings(updates={PREFECT_API_URL: CLOSED}), \
            pytest.raises(Unavailable) as refused:
        start(job, shell_test, name="shell test", parameters={}, tags=[])
    assert refused.value.code == "prefect_unavailable" and calls == []
