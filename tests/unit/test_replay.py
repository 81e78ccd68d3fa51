"""Replay: completed steps return their recorded result; divergent code stops the run."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from durable import Context, NonDeterminismError, RunStatus, TaskRegistry, task
from durable.testing import TestEnvironment


class Order(BaseModel):
    id: str
    total: int


def test_completed_steps_do_not_run_again_after_a_sleep(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    calls: list[str] = []

    @task(id="two-steps", registry=registry)
    def two_steps(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
        first = ctx.step("first", lambda: calls.append("first") or 1)
        ctx.sleep("nap", timedelta(hours=2))
        second = ctx.step("second", lambda: calls.append("second") or 2)
        return {"sum": first + second}

    run = env.trigger("two-steps", {})
    env.run_until_idle()
    assert env.get(run.run_id).status == RunStatus.WAITING
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == {"sum": 3}
    assert calls == ["first", "second"]
    assert [entry.kind for entry in env.history(run.run_id)] == [
        "step_completed",
        "sleep_started",
        "step_completed",
    ]


def test_step_results_have_the_same_type_fresh_and_replayed(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    seen: list[tuple[str, str]] = []

    def fetch_order() -> Order:
        return Order(id="o-1", total=42)

    @task(id="typed", registry=registry)
    def typed(ctx: Context, payload: None) -> int:
        order = ctx.step("fetch", fetch_order)
        seen.append((type(order).__name__, "replay" if ctx.is_replaying else "fresh"))
        ctx.sleep("nap", timedelta(minutes=1))
        return order.total

    run = env.trigger("typed")
    info = env.run_until_complete(run.run_id)

    assert info.result == 42
    assert seen == [("Order", "fresh"), ("Order", "replay")]


def test_recorded_values_are_the_same_on_every_replay(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    observed: list[tuple[str, float, str]] = []

    @task(id="values", registry=registry)
    def values(ctx: Context, payload: None) -> None:
        now, number, ident = ctx.now(), ctx.random(), ctx.uuid4()
        observed.append((now.isoformat(), number, str(ident)))
        ctx.sleep("nap", timedelta(hours=1))

    run = env.trigger("values")
    env.run_until_complete(run.run_id)

    assert len(observed) == 2
    assert observed[0] == observed[1]
    assert 0 <= observed[0][1] < 1


def test_a_renamed_step_stops_the_run_before_executing_anything(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    executed: list[str] = []
    version = {"step": "charge"}

    @task(id="changing", registry=registry)
    def changing(ctx: Context, payload: None) -> None:
        ctx.step("fetch", lambda: executed.append("fetch"))
        ctx.sleep("nap", timedelta(hours=1))
        ctx.step(version["step"], lambda: executed.append(version["step"]))

    run = env.trigger("changing")
    env.run_until_idle()
    # given: the code is redeployed with the first step renamed while the run sleeps
    version["step"] = "charge-v2"
    redeployed = TaskRegistry()

    @task(id="changing", registry=redeployed)
    def changed(ctx: Context, payload: None) -> None:
        ctx.step("fetch-v2", lambda: executed.append("fetch-v2"))

    env.worker.registry = redeployed
    info = env.run_until_complete(run.run_id)

    # then: it is held for a fix, not failed, and nothing of the new code ran
    assert info.status == RunStatus.WAITING
    assert info.waiting_for == "fix:nondeterminism"
    assert info.error is not None and info.error.type == "NonDeterminismError"
    assert "fetch" in info.error.message and "fetch-v2" in info.error.message
    assert executed == ["fetch"]


def test_a_step_removed_at_the_end_is_a_divergence(registry: TaskRegistry) -> None:
    def long_version(ctx: Context, payload: None) -> str:
        ctx.step("a", lambda: 1)
        ctx.step("b", lambda: 2)
        ctx.sleep("nap", timedelta(hours=1))
        return "done"

    def short_version(ctx: Context, payload: None) -> str:
        ctx.step("a", lambda: 1)
        return "done"

    with TestEnvironment(registry=registry) as env:
        task(id="shrinking", registry=registry)(long_version)
        run = env.trigger("shrinking")
        env.run_until_idle()
        registry_v2 = TaskRegistry()
        task(id="shrinking", registry=registry_v2)(short_version)
        env.worker.registry = registry_v2
        info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.WAITING and info.waiting_for == "fix:nondeterminism"
    assert info.error is not None and info.error.type == "NonDeterminismError"


def test_user_code_cannot_swallow_a_divergence(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    names = iter(["original", "renamed"])

    @task(id="swallow", registry=registry)
    def swallow(ctx: Context, payload: None) -> str:
        name = next(names)
        with contextlib.suppress(Exception):  # a careless task
            ctx.step(name, lambda: None)
        ctx.sleep("nap", timedelta(seconds=5))
        return "finished"

    run = env.trigger("swallow")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.WAITING and info.waiting_for == "fix:nondeterminism"
    assert info.error is not None and info.error.type == NonDeterminismError.__name__


def test_the_task_logger_is_silent_on_replay(
    registry: TaskRegistry, env: TestEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    @task(id="logging", registry=registry)
    def logging_task(ctx: Context, payload: None) -> None:
        ctx.step("fetch", lambda: "user@example.com")
        ctx.logger.info("Fetched user")
        ctx.sleep("nap", timedelta(hours=1))
        ctx.logger.info("Woke up")

    run = env.trigger("logging")
    env.run_until_complete(run.run_id)

    messages = [record.getMessage() for record in caplog.records]
    assert messages.count("Fetched user") == 1
    assert messages.count("Woke up") == 1
