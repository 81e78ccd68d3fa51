"""Fan-out: ctx.map and ctx.parallel over child runs, with concurrency limits and
completion policies; the parent sleeps until the batch is decided."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from durable import Context, RetryPolicy, RunStatus, TaskRegistry, task
from durable.errors import BatchFailedError, ChildRunFailedError
from durable.records import WakeReason
from durable.testing import TestEnvironment


def _tasks(registry: TaskRegistry, *, parent_policy: dict[str, Any] | None = None) -> None:
    policy = parent_policy or {}

    @task(id="square", registry=registry, retry=RetryPolicy(max_attempts=1))
    def square(ctx: Context, payload: int) -> int:
        ctx.sleep("work", timedelta(seconds=payload % 3))
        if payload < 0:
            raise ValueError(f"negative: {payload}")
        return payload * payload

    @task(id="squares", registry=registry, retry=RetryPolicy(max_attempts=1))
    def squares(ctx: Context, payload: list[int]) -> Any:
        try:
            results = ctx.map("square", payload, **policy)
        except BatchFailedError as error:
            return {"failed": [index for index, _, _ in error.failures]}
        return [
            result.error_type if isinstance(result, ChildRunFailedError) else result
            for result in results
        ]


def test_map_returns_results_in_input_order(registry: TaskRegistry, env: TestEnvironment) -> None:
    _tasks(registry, parent_policy={"max_concurrency": 2})
    run = env.trigger("squares", [5, 1, 4, 2, 3])
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == [25, 1, 16, 4, 9]
    children = env.list(task_id="square").runs
    assert len(children) == 5
    assert {child.parent_run_id for child in children} == {run.run_id}
    # the parent ran twice: to start the batch, and once it was decided
    parent_runs = [m for m, _ in env.handled if m.run_id == run.run_id]
    assert len(parent_runs) == 2
    assert [entry.kind for entry in env.history(run.run_id)] == [
        "batch_started",
        "batch_completed",
    ]


def test_an_empty_map_returns_at_once(registry: TaskRegistry, env: TestEnvironment) -> None:
    _tasks(registry)
    run = env.trigger("squares", [])
    env.run_until_idle()
    info = env.get(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == []
    assert env.history(run.run_id) == []


def test_tolerated_failures_hold_their_place(registry: TaskRegistry, env: TestEnvironment) -> None:
    _tasks(registry, parent_policy={"tolerated_failures": 1})
    run = env.trigger("squares", [2, -1, 3])
    info = env.run_until_complete(run.run_id)
    assert info.result == [4, "ValueError", 9]


def test_too_many_failures_fail_the_batch_and_cancel_the_rest(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    _tasks(registry, parent_policy={"max_concurrency": 2})
    # the first child fails at once; the second still works (sleeps 2 s)
    run = env.trigger("squares", [-3, 2, 4, 5])
    info = env.run_until_complete(run.run_id)

    assert info.result == {"failed": [0]}
    statuses = {
        child.run_id.rsplit(".", 1)[1]: child.status
        for child in env.list().runs
        if child.task_id == "square"
    }
    assert statuses["0"] == RunStatus.FAILED
    assert statuses["1"] == RunStatus.CANCELLED
    assert "3" not in statuses  # never started


def test_parallel_first_success(registry: TaskRegistry, env: TestEnvironment) -> None:
    _tasks(registry)

    @task(id="fastest", registry=registry)
    def fastest(ctx: Context, payload: None) -> Any:
        return ctx.parallel([("square", -1), ("square", 2), ("square", 4)], first_success=True)

    run = env.trigger("fastest")
    info = env.run_until_complete(run.run_id)
    assert info.result in (4, 16)


def test_cancelling_the_parent_cancels_the_batch(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    _tasks(registry, parent_policy={"max_concurrency": 3})
    run = env.trigger("squares", [2, 2, 2, 2])
    env.run_until_idle()
    env.cancel(run.run_id)
    children = env.list(task_id="square").runs
    assert len(children) == 3
    assert {child.status for child in children} == {RunStatus.CANCELLED}


def test_a_duplicate_child_end_changes_nothing(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    _tasks(registry, parent_policy={"max_concurrency": 1})
    run = env.trigger("squares", [1, 2])
    env.run_until_idle()
    (first,) = env.list(task_id="square").runs
    env.send_raw(first.run_id, WakeReason.START)  # duplicate deliveries of the children
    info = env.run_until_complete(run.run_id)
    env.send_raw(first.run_id, WakeReason.START)
    env.run_until_idle()
    assert info.result == [1, 4]
    assert len(env.list(task_id="square").runs) == 2


@pytest.mark.parametrize("backend", ["memory"])
def test_a_map_over_ten_thousand_items(registry: TaskRegistry, backend: str) -> None:
    @task(id="double", registry=registry)
    def double(ctx: Context, payload: int) -> int:
        return payload * 2

    @task(id="big-map", registry=registry)
    def big_map(ctx: Context, payload: int) -> int:
        return sum(ctx.map("double", list(range(payload)), max_concurrency=100))

    with TestEnvironment(backend=backend, registry=registry) as env:  # type: ignore[arg-type]
        run = env.trigger("big-map", 10_000)
        info = env.run_until_complete(run.run_id)
        parent_invocations = sum(1 for m, _ in env.handled if m.run_id == run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == 2 * sum(range(10_000))
    assert parent_invocations == 2


def test_a_map_on_moto(registry: TaskRegistry) -> None:
    _tasks(registry, parent_policy={"max_concurrency": 10, "tolerated_failures": 2})
    items = [3, -1, *range(2, 40)]
    with TestEnvironment(backend="moto", registry=registry) as env:
        run = env.trigger("squares", items)
        info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == [9, "ValueError", *(i * i for i in range(2, 40))]
