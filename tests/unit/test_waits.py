"""Sleeps and events: any length, no Lambda held, on the virtual clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from durable import Context, RunFinishedError, RunStatus, TaskRegistry, WaitTimeoutError, task
from durable.testing import TestEnvironment


def test_a_thirty_hour_sleep_wakes_on_time(registry: TaskRegistry, env: TestEnvironment) -> None:
    @task(id="long-sleep", registry=registry)
    def long_sleep(ctx: Context, payload: None) -> str:
        ctx.sleep("cool-off", timedelta(hours=30))
        return ctx.now().isoformat()

    run = env.trigger("long-sleep")
    started = env.now()
    env.run_until_idle()
    info = env.get(run.run_id)
    assert info.status == RunStatus.WAITING
    assert info.wake_at == started + timedelta(hours=30)

    env.advance(timedelta(hours=29, minutes=59))
    assert env.get(run.run_id).status == RunStatus.WAITING
    env.advance(timedelta(minutes=1))
    info = env.get(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == (started + timedelta(hours=30)).isoformat()


def test_sleep_until_an_instant(registry: TaskRegistry, env: TestEnvironment) -> None:
    target = env.now() + timedelta(days=3, hours=2)

    @task(id="until", registry=registry)
    def until(ctx: Context, payload: None) -> None:
        ctx.sleep_until("deadline", target)

    run = env.trigger("until")
    env.advance(timedelta(days=3))
    assert env.get(run.run_id).status == RunStatus.WAITING
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.finished_at == target


def _approval_task(registry: TaskRegistry) -> None:
    @task(id="approval", registry=registry)
    def approval(ctx: Context, payload: None) -> Any:
        try:
            decision = ctx.wait_for_event("approval", timeout=timedelta(hours=24))
        except WaitTimeoutError:
            return "expired"
        return decision


def test_an_event_resumes_a_waiting_run(registry: TaskRegistry, env: TestEnvironment) -> None:
    _approval_task(registry)
    run = env.trigger("approval")
    env.run_until_idle()
    assert env.get(run.run_id).waiting_for == "approval"

    env.advance(timedelta(hours=3))
    env.send_event(run.run_id, "approval", {"approved": True})
    env.run_until_idle()

    info = env.get(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == {"approved": True}


def test_an_event_sent_before_the_wait_is_kept(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="late-wait", registry=registry)
    def late_wait(ctx: Context, payload: None) -> Any:
        ctx.sleep("first", timedelta(hours=1))
        return ctx.wait_for_event("go")

    run = env.trigger("late-wait")
    env.run_until_idle()
    env.send_event(run.run_id, "go", 1)
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == 1


def test_the_wait_times_out(registry: TaskRegistry, env: TestEnvironment) -> None:
    _approval_task(registry)
    run = env.trigger("approval")
    env.advance(timedelta(hours=24))
    info = env.get(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == "expired"
    assert [entry.kind for entry in env.history(run.run_id)] == ["wait_started", "wait_timed_out"]


def test_an_uncaught_wait_timeout_fails_without_retrying(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="strict", registry=registry)
    def strict(ctx: Context, payload: None) -> Any:
        return ctx.wait_for_event("approval", timeout=timedelta(minutes=30))

    run = env.trigger("strict")
    env.advance(timedelta(hours=1))
    info = env.get(run.run_id)
    assert info.status == RunStatus.FAILED
    assert info.error is not None and info.error.type == "WaitTimeoutError"
    assert info.attempts == 1


def test_waits_of_one_name_consume_events_in_order(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="collector", registry=registry)
    def collector(ctx: Context, payload: None) -> list[Any]:
        return [ctx.wait_for_event("item") for _ in range(3)]

    run = env.trigger("collector")
    env.run_until_idle()
    for value in ("a", "b"):
        env.advance(timedelta(seconds=1))
        env.send_event(run.run_id, "item", value)
    env.run_until_idle()
    assert env.get(run.run_id).status == RunStatus.WAITING
    env.advance(timedelta(seconds=1))
    env.send_event(run.run_id, "item", "c")
    info = env.run_until_complete(run.run_id)
    assert info.result == ["a", "b", "c"]


def test_events_for_a_finished_run_are_refused(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    _approval_task(registry)
    run = env.trigger("approval")
    env.send_event(run.run_id, "approval", "yes")
    env.run_until_idle()
    assert env.get(run.run_id).status == RunStatus.COMPLETED
    with pytest.raises(RunFinishedError):
        env.send_event(run.run_id, "approval", "again")
