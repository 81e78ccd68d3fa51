"""Retrying an ended run in place (`durable.services.repair.retry_run`), on memory and moto:
from its failure point, completed steps not run again, a fresh attempt budget and timeout."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from durable import Context, RetryPolicy, RunStatus, TaskRegistry, task
from durable.errors import (
    ParentWaitsError,
    RunCompletedError,
    RunExpiringError,
    RunNotEndedError,
)
from durable.records import CheckpointKind
from durable.services.audit import action_details
from durable.testing import TestEnvironment


@pytest.fixture(params=["memory", "moto"])
def backend_env(
    request: pytest.FixtureRequest, registry: TaskRegistry
) -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=registry, backend=request.param) as environment:
        yield environment


class World:
    """Side effects counted per step, and the flag that makes step 3 fail."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.broken = True

    def effect(self, name: str) -> str:
        self.calls[name] = self.calls.get(name, 0) + 1
        if name == "s3" and self.broken:
            raise RuntimeError("step 3 is broken")
        return name


def _five_steps(registry: TaskRegistry, world: World, max_attempts: int = 1) -> None:
    @task(id="five", registry=registry, retry=RetryPolicy(max_attempts=max_attempts))
    def five(ctx: Context, payload: None) -> list[str]:
        return [
            ctx.step(name, world.effect, name, retry=RetryPolicy(max_attempts=1))
            for name in ("s1", "s2", "s3", "s4", "s5")
        ]


def _retries(env: TestEnvironment, run_id: str) -> list[Any]:
    return [
        cp
        for cp in env.store.load_history(run_id)
        if cp.kind is CheckpointKind.RUN_ACTION and cp.name == "retry"
    ]


def test_a_failed_run_retried_goes_on_from_its_failure_point(
    registry: TaskRegistry, backend_env: TestEnvironment
) -> None:
    env, world = backend_env, World()
    _five_steps(registry, world)
    run = env.trigger("five")
    failed = env.run_until_complete(run.run_id)
    assert failed.status == RunStatus.FAILED
    assert world.calls == {"s1": 1, "s2": 1, "s3": 1}

    world.broken = False
    retried = env.client.retry(run.run_id, by="unverified:cli ada@box")
    assert (retried.status, retried.attempts, retried.error) == (RunStatus.QUEUED, 2, None)
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == ["s1", "s2", "s3", "s4", "s5"]
    # steps 1-2 replayed from the log, step 3 ran again, 4-5 for the first time
    assert world.calls == {"s1": 1, "s2": 1, "s3": 2, "s4": 1, "s5": 1}
    [boundary] = _retries(env, run.run_id)
    details = action_details(boundary)
    assert details["by"] == "unverified:cli ada@box"
    assert details["attempt"] == 2
    assert details["previous"]["status"] == "FAILED"
    assert details["previous"]["error"]["type"] == "RuntimeError"
    history = env.history(run.run_id)
    action = next(entry for entry in history if entry.kind == "run_action")
    assert action.value["by"] == "unverified:cli ada@box"  # readable in the history
    timeline = env.client.timeline(run.run_id)
    assert [(a["name"], a["by"]) for a in timeline["actions"]] == [
        ("retry", "unverified:cli ada@box")
    ]
    bands = timeline["attempts"]
    assert [(b["task_attempt"], b["outcome"]) for b in bands] == [(1, "failed"), (2, "completed")]
    assert bands[0]["error"]["type"] == "RuntimeError"


def test_the_retry_budget_is_fresh(registry: TaskRegistry, backend_env: TestEnvironment) -> None:
    env, world = backend_env, World()
    _five_steps(registry, world, max_attempts=2)
    run = env.trigger("five")
    assert env.run_until_complete(run.run_id).status == RunStatus.FAILED
    assert world.calls["s3"] == 2  # two task attempts, each failing at step 3

    env.client.retry(run.run_id)
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.FAILED
    assert world.calls["s3"] == 4  # two more attempts: the budget counts from the retry
    assert info.attempts == 4
    assert world.calls["s1"] == 1


def test_a_timed_out_run_retried_gets_a_new_timeout(
    registry: TaskRegistry, backend_env: TestEnvironment
) -> None:
    env = backend_env
    done: list[str] = []

    @task(id="slow", registry=registry, timeout=timedelta(hours=1))
    def slow(ctx: Context, payload: None) -> str:
        ctx.step("before", done.append, "before")
        ctx.sleep("nap", timedelta(minutes=50))
        ctx.step("after", done.append, "after")
        ctx.sleep("nap-2", timedelta(minutes=50))
        return "ok"

    run = env.trigger("slow")
    timed_out = env.run_until_complete(run.run_id)
    assert timed_out.status == RunStatus.TIMED_OUT
    env.advance(timedelta(hours=3))

    env.client.retry(run.run_id)
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.COMPLETED  # an hour from the retry is enough
    assert done == ["before", "after"]


def test_a_cancelled_run_is_retried(registry: TaskRegistry, backend_env: TestEnvironment) -> None:
    env = backend_env
    done: list[str] = []

    @task(id="gate", registry=registry)
    def gate(ctx: Context, payload: None) -> Any:
        ctx.step("first", done.append, "first")
        return ctx.wait_for_event("go")

    run = env.trigger("gate")
    env.run_until_idle()
    env.cancel(run.run_id)
    env.run_until_idle()
    env.client.retry(run.run_id)
    env.run_until_idle()
    assert env.get(run.run_id).status == RunStatus.WAITING
    env.send_event(run.run_id, "go", 7)
    info = env.run_until_complete(run.run_id)
    assert (info.status, info.result, done) == (RunStatus.COMPLETED, 7, ["first"])


def test_what_cannot_be_retried_is_refused(registry: TaskRegistry, env: TestEnvironment) -> None:
    world = World()
    _five_steps(registry, world)

    @task(id="waits", registry=registry)
    def waits(ctx: Context, payload: None) -> Any:
        return ctx.wait_for_event("never")

    waiting = env.trigger("waits")
    env.run_until_idle()
    with pytest.raises(RunNotEndedError) as not_ended:
        env.client.retry(waiting.run_id)
    assert not_ended.value.code == "run_not_ended"

    world.broken = False
    completed = env.trigger("five")
    env.run_until_complete(completed.run_id)
    with pytest.raises(RunCompletedError):
        env.client.retry(completed.run_id)
    assert _retries(env, completed.run_id) == []


def test_a_run_past_its_retention_is_refused(registry: TaskRegistry) -> None:
    world = World()
    _five_steps(registry, world)
    with TestEnvironment(registry=registry, retention=timedelta(days=1)) as env:
        run = env.trigger("five")
        env.run_until_complete(run.run_id)
        env.clock.set(env.now() + timedelta(days=2))
        with pytest.raises(RunExpiringError):
            env.client.retry(run.run_id)


def test_a_child_is_retried_through_its_parent(
    registry: TaskRegistry, backend_env: TestEnvironment
) -> None:
    env, world = backend_env, World()
    _five_steps(registry, world)

    @task(id="parent", registry=registry, retry=RetryPolicy(max_attempts=1))
    def parent(ctx: Context, payload: None) -> Any:
        first = ctx.step("p1", lambda: "p1")
        return [first, ctx.invoke("five", None)]

    run = env.trigger("parent")
    failed = env.run_until_complete(run.run_id)
    assert failed.status == RunStatus.FAILED
    [child] = [r for r in env.list(task_id="five").runs]
    assert child.status == RunStatus.FAILED

    world.broken = False
    env.client.retry(run.run_id)
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.COMPLETED
    children = env.list(task_id="five").runs
    assert len(children) == 2  # the retried attempt called the child again: a new child
    assert info.result == ["p1", ["s1", "s2", "s3", "s4", "s5"]]


def test_a_child_whose_parent_waits_is_refused(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    world = World()
    _five_steps(registry, world)

    @task(id="parent", registry=registry)
    def parent(ctx: Context, payload: None) -> Any:
        with contextlib.suppress(Exception):
            ctx.invoke("five", None)
        return ctx.wait_for_event("later")

    run = env.trigger("parent")
    env.run_until_complete(run.run_id)
    [child] = env.list(task_id="five").runs
    with pytest.raises(ParentWaitsError) as refused:
        env.client.retry(child.run_id)
    assert run.run_id in str(refused.value)


def test_a_retry_cut_short_reuses_its_boundary(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    world = World()
    _five_steps(registry, world)
    run = env.trigger("five")
    env.run_until_complete(run.run_id)
    from durable.services.audit import record_action

    # a retry that died after its entry: the run is still FAILED
    record_action(env.store, env.clock, run.run_id, "retry", "anonymous", {"attempt": 2})
    world.broken = False
    env.client.retry(run.run_id)
    # a second call once queued answers the run again and sends its wake-up
    assert env.client.retry(run.run_id).status == RunStatus.QUEUED
    info = env.run_until_complete(run.run_id)
    assert (info.status, info.attempts) == (RunStatus.COMPLETED, 2)
    assert len(_retries(env, run.run_id)) == 1
    assert world.calls["s1"] == 1


def test_a_saga_retried_keeps_its_compensations_done(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    undone: list[str] = []
    broken = [True]

    def book(what: str) -> str:
        if what == "car" and broken[0]:
            raise RuntimeError("no cars")
        return what

    @task(id="trip", registry=registry, retry=RetryPolicy(max_attempts=1))
    def trip(ctx: Context, payload: None) -> list[str]:
        flight = ctx.step("flight", book, "flight", compensate=undone.append)
        hotel = ctx.step("hotel", book, "hotel", compensate=undone.append)
        car = ctx.step("car", book, "car", retry=RetryPolicy(max_attempts=1))
        return [flight, hotel, car]

    run = env.trigger("trip")
    assert env.run_until_complete(run.run_id).status == RunStatus.FAILED
    assert undone == ["hotel", "flight"]
    broken[0] = False
    env.client.retry(run.run_id)
    info = env.run_until_complete(run.run_id)
    assert (info.status, info.result) == (RunStatus.COMPLETED, ["flight", "hotel", "car"])
    assert undone == ["hotel", "flight"]  # not undone again, and not redone either
    [boundary] = _retries(env, run.run_id)
    assert action_details(boundary)["compensated"] == ["hotel", "flight"]
