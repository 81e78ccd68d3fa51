"""The run counters (`durable.services.stats`) never cost a run anything: the process dies
before, or after, each counter write of the reference workflows, or every counter write is
throttled, and each run still ends as the uncrashed one did, with no step run again; the
figures are at most under-counted.

On the memory backend, where a counter write is one call (`add_stats`) the faults can name;
on moto, every crash point (counter writes among them) is swept by `test_crash_points`.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from durable import TaskRegistry
from durable.faults import Faults, When
from durable.testing import TestEnvironment

from .conftest import Production
from .test_crash_points import Outcome, problems
from .workflows import PAYLOADS, REFERENCE_TASKS, Effects, outside_world, register


def play(
    task_id: str, faults: Faults, crash: tuple[int, When] | None = None
) -> tuple[Outcome, int]:
    """One run of `task_id` on memory under `faults`, recovered as production would; and the
    runs counted as started in the last hour (kept out of the outcome's notes, which
    `problems` reports)."""
    if crash is not None:
        faults.crash(*crash)
    registry = TaskRegistry()
    effects = Effects(faults)
    register(registry, effects)
    with TestEnvironment(backend="memory", registry=registry, faults=faults) as env:
        production = Production(env, sweep_every=timedelta(minutes=5))
        handle = production.call(
            lambda: env.trigger(task_id, PAYLOADS.get(task_id), idempotency_key="ref-1")
        )
        production.run(lambda: [handle.run_id], outside=outside_world(effects, handle.run_id))
        production.run(lambda: [run.run_id for run in env.list(limit=100).runs])
        info = env.get(handle.run_id)
        runs: dict[str, int] = {}
        for run in env.list(limit=100).runs:
            runs[run.task_id] = runs.get(run.task_id, 0) + 1
        with faults.paused():
            stats = env.client.stats()
    result = info.result
    if isinstance(result, dict):
        result = {key: value for key, value in result.items() if key != "at"}
    outcome = Outcome(
        status=str(info.status),
        result=result,
        error_type=info.error.type if info.error else None,
        runs=runs,
        effects=effects,
        calls=faults.calls,
        crashed_at=crash,
    )
    return outcome, sum(task.last_hour.started for task in stats.tasks)


@pytest.mark.parametrize("task_id", REFERENCE_TASKS)
def test_a_crash_at_any_counter_write_costs_the_run_nothing(task_id: str) -> None:
    reference_faults = Faults()
    reference, _ = play(task_id, reference_faults)
    counter_writes = [call.number for call in reference_faults.log if call.operation == "add_stats"]
    assert counter_writes, "the workflow writes counters"
    found: list[str] = []
    for number in counter_writes:
        for when in ("before", "after"):
            crashed, started = play(task_id, Faults(), (number, when))
            if started > sum(reference.runs.values()):
                found.append(f"crash {when} call {number}: {started} runs counted as started")
            found.extend(f"crash {when} call {number}: {p}" for p in problems(reference, crashed))
    assert not found, found


@pytest.mark.parametrize("task_id", REFERENCE_TASKS)
def test_throttled_counter_writes_cost_the_run_nothing(task_id: str) -> None:
    reference, reference_started = play(task_id, Faults())
    faults = Faults().throttle("dynamodb", 1.0, operations={"add_stats"})

    throttled, throttled_started = play(task_id, faults, None)

    assert (throttled.status, throttled.result, throttled.error_type) == (
        reference.status,
        reference.result,
        reference.error_type,
    )
    assert throttled.runs == reference.runs
    assert _per_step(throttled) == _per_step(reference)  # no step ran again
    assert faults.injected["dynamodb:throttle"] > 0
    # nothing was counted, and the reference counted every run it started
    assert throttled_started == 0
    assert reference_started == sum(reference.runs.values())


def _per_step(outcome: Outcome) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, step, _ in outcome.effects.log:
        name = "hand-out" if step.startswith("hand-out:") else step
        counts[name] = counts.get(name, 0) + 1
    return counts
