"""Run figures (`durable.services.stats`): counted by the real write paths of the test kit,
read back by `Client.stats()`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from durable import Context, RetryPolicy, RunStatus, TaskRegistry, task
from durable.services.stats import duration_bin, percentile
from durable.testing import TestEnvironment

NO_BACKOFF = RetryPolicy(max_attempts=3, min_delay=timedelta(seconds=1), factor=1.0)


def _define(registry: TaskRegistry) -> None:
    @task(id="slow", registry=registry)
    def slow(ctx: Context, seconds: int) -> int:
        ctx.sleep("nap", timedelta(seconds=seconds))
        return seconds

    @task(id="broken", registry=registry, retry=RetryPolicy(max_attempts=2))
    def broken(ctx: Context, payload: None) -> None:
        def fail() -> None:
            raise ConnectionError("down")

        ctx.step("call", fail, retry=NO_BACKOFF)

    @task(id="patient", registry=registry)
    def patient(ctx: Context, payload: None) -> None:
        ctx.wait_for_event("go")

    @task(id="idle", registry=registry)
    def idle(ctx: Context, payload: None) -> None:
        return None


def test_figures_after_a_completed_a_failed_and_a_cancelled_run(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    _define(registry)
    # given a run that completes after 30 s, one that fails after its retries, one cancelled
    done = env.trigger("slow", 30)
    assert env.run_until_complete(done.run_id).status is RunStatus.COMPLETED
    failed = env.trigger("broken")
    assert env.run_until_complete(failed.run_id).status is RunStatus.FAILED
    waiting = env.trigger("patient")
    env.run_until_idle()
    env.cancel(waiting.run_id)
    queued = env.trigger("patient")  # not run yet: QUEUED

    stats = env.client.stats().to_dict()

    tasks = {task["task_id"]: task for task in stats["tasks"]}
    assert sorted(tasks) == ["broken", "idle", "patient", "slow"]
    slow = tasks["slow"]
    assert slow["by_status"]["COMPLETED"] == 1
    assert slow["last_hour"]["started"] == 1 and slow["last_hour"]["completed"] == 1
    assert slow["last_hour"]["p50_seconds"] == pytest.approx(30, rel=0.1)
    assert slow["last_hour"]["retry_rate"] == 0
    broken = tasks["broken"]
    assert broken["by_status"]["FAILED"] == 1
    # 2 task attempts, each a step of 3 attempts: 2 step retries each, 1 attempt retry
    assert broken["last_hour"]["step_retries"] == 4
    assert broken["last_hour"]["attempt_retries"] == 1
    assert broken["last_hour"]["retry_rate"] == 5
    patient = tasks["patient"]
    assert patient["by_status"]["CANCELLED"] == 1 and patient["by_status"]["QUEUED"] == 1
    assert patient["last_hour"]["started"] == 2 and patient["last_hour"]["cancelled"] == 1
    assert tasks["idle"]["last_hour"]["started"] == 0
    assert tasks["idle"]["last_hour"]["retry_rate"] is None
    assert stats["totals"]["by_status"]["COMPLETED"] == 1
    assert stats["totals"]["by_status"]["QUEUED"] == 1
    assert stats["queue"] == {"name": "memory", "depth": 1, "in_flight": 0, "delayed": 0}
    assert queued.created


def test_runs_older_than_an_hour_leave_the_window_not_the_totals(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    _define(registry)
    env.run_until_complete(env.trigger("idle").run_id)
    env.advance(timedelta(minutes=70))
    env.run_until_complete(env.trigger("idle").run_id)

    [idle] = [t for t in env.client.stats().tasks if t.task_id == "idle"]

    assert idle.last_hour.started == 1 and idle.last_hour.completed == 1
    assert idle.by_status[RunStatus.COMPLETED] == 2


def test_active_runs_are_counted_by_status(registry: TaskRegistry, env: TestEnvironment) -> None:
    _define(registry)
    for _ in range(3):
        env.trigger("patient")
    env.run_until_idle()  # all three wait for their event
    env.trigger("patient")

    stats = env.client.stats(worker_limit=4)

    [patient] = [t for t in stats.tasks if t.task_id == "patient"]
    assert patient.by_status[RunStatus.WAITING] == 3
    assert patient.by_status[RunStatus.QUEUED] == 1
    assert stats.workers.limit == 4 and stats.workers.in_use == 0


def test_percentiles_from_known_durations() -> None:
    # 1..100 seconds, one run each
    histogram: dict[int, int] = {}
    for seconds in range(1, 101):
        index = duration_bin(float(seconds))
        histogram[index] = histogram.get(index, 0) + 1

    assert percentile(histogram, 0.5) == pytest.approx(50, rel=0.1)
    assert percentile(histogram, 0.95) == pytest.approx(95, rel=0.1)
    assert percentile({}, 0.5) is None
    assert percentile({duration_bin(0.001): 4}, 0.5) == pytest.approx(0.005, abs=0.005)
