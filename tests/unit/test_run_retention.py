"""Retention: a finished run is kept for the retention period after it ends, then purged whole.

`TestEnvironment.sweep()` does what the scheduled sweeper does (re-enqueue overdue runs,
then send a purge message per expiry shard with expired runs, which the workers take when
the queue is run); `purge()` only purges, serially, and says how many runs went.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from durable import Context, RunNotFoundError, RunStatus, TaskRegistry, task
from durable.blobs.memory import MemoryBlobStore
from durable.bootstrap import Runtime
from durable.clock import VirtualClock
from durable.errors import ConflictError
from durable.queues.memory import MemoryWakeQueue
from durable.records import WakeReason
from durable.services.sweeper import SETTLE
from durable.settings import Settings
from durable.storage.memory import MemoryRunStore
from durable.testing import SimulatedCrash, TestEnvironment

RETENTION = timedelta(days=30)
SECOND = timedelta(seconds=1)


@pytest.fixture
def tasks(registry: TaskRegistry) -> TaskRegistry:
    @task(id="quick", registry=registry)
    def quick(ctx: Context, payload: Any) -> Any:
        return ctx.step("echo", lambda: payload)

    @task(id="boom", registry=registry)
    def boom(ctx: Context, payload: Any) -> Any:
        raise ValueError("no")

    @task(id="approval", registry=registry)
    def approval(ctx: Context, payload: Any) -> Any:
        return ctx.wait_for_event("approved")

    crashes: list[int] = []

    @task(id="crashy", registry=registry)
    def crashy(ctx: Context, payload: Any) -> Any:
        def work() -> str:
            if not crashes:
                crashes.append(1)
                raise SimulatedCrash
            return "done"

        return ctx.step("work", work)

    @task(id="slow", registry=registry)
    def slow(ctx: Context, payload: Any) -> Any:
        ctx.sleep("nap", timedelta(days=60))
        return "woke"

    return registry


@pytest.fixture(params=["memory", "moto"])
def kept_30_days(tasks: TaskRegistry, request: pytest.FixtureRequest) -> Iterator[TestEnvironment]:
    with TestEnvironment(request.param, registry=tasks, retention=RETENTION) as environment:
        yield environment


def test_a_completed_run_is_kept_until_30_days_after_it_finished(
    kept_30_days: TestEnvironment,
) -> None:
    env = kept_30_days
    run = env.trigger("quick", {"n": 1}, idempotency_key="order-1")
    finished = env.run_until_complete(run.run_id)
    assert finished.status is RunStatus.COMPLETED
    assert finished.finished_at is not None
    stored = env.store.get_run(run.run_id)
    assert stored is not None
    assert stored.expires_at == finished.finished_at + RETENTION

    # a second short of 30 days: still there, with its history
    env.advance(RETENTION - SECOND)
    assert env.sweep() == 0
    assert env.get(run.run_id).result == {"n": 1}
    assert [entry.name for entry in env.history(run.run_id)] == ["echo"]

    # at 30 days: the sweep sends its shard's purge, and a worker purges it, log and
    # idempotency key included
    env.advance(SECOND)
    env.sweep()
    env.run_until_idle()
    with pytest.raises(RunNotFoundError):
        env.get(run.run_id)
    assert env.store.load_history(run.run_id) == []
    again = env.trigger("quick", {"n": 2}, idempotency_key="order-1")
    assert again.created
    assert again.run_id != run.run_id


def test_failed_and_cancelled_runs_expire_too(kept_30_days: TestEnvironment) -> None:
    env = kept_30_days
    failed = env.trigger("boom", None)
    assert env.run_until_complete(failed.run_id).status is RunStatus.FAILED
    waiting = env.trigger("approval", None)
    env.run_until_complete(waiting.run_id)
    cancelled = env.cancel(waiting.run_id)
    assert cancelled.status is RunStatus.CANCELLED

    env.advance(RETENTION)

    assert env.purge() == 2
    assert env.list().runs == []


def test_running_waiting_and_sleeping_runs_are_never_purged(tasks: TaskRegistry) -> None:
    # (memory only: a 60-day sleep re-hops through the queue every 15 minutes)
    with TestEnvironment(registry=tasks, retention=RETENTION) as env:
        running = env.trigger("crashy", None)
        waiting = env.trigger("approval", None)
        sleeping = env.trigger("slow", None)
        env.run_until_idle()
        assert env.get(running.run_id).status is RunStatus.RUNNING  # its invocation died
        assert env.get(waiting.run_id).status is RunStatus.WAITING
        assert env.purge() == 0
        with pytest.raises(ConflictError):
            env.store.delete_run(running.run_id)
        assert env.get(running.run_id).status is RunStatus.RUNNING

        # 59 days later, swept every day: both still there, neither has an expiry
        for _ in range(59):
            env.advance(timedelta(days=1))
            env.sweep()
        assert env.get(waiting.run_id).status is RunStatus.WAITING
        assert env.get(sleeping.run_id).status is RunStatus.WAITING
        assert env.store.expired_runs(env.now() + timedelta(days=3650)) == []

        # the sleeper ends on day 60 and is kept 30 days from then, not from when it started
        env.advance(timedelta(days=1))
        assert env.get(sleeping.run_id).result == "woke"
        env.advance(RETENTION - SECOND)
        env.sweep()
        assert env.get(sleeping.run_id).status is RunStatus.COMPLETED
        env.advance(SECOND)
        assert env.purge() == 1
        with pytest.raises(RunNotFoundError):
            env.get(sleeping.run_id)
        assert env.get(waiting.run_id).status is RunStatus.WAITING


def test_without_a_retention_finished_runs_are_kept_forever(
    tasks: TaskRegistry,
) -> None:
    with TestEnvironment(registry=tasks) as env:
        run = env.trigger("quick", 1)
        env.run_until_complete(run.run_id)
        env.advance(timedelta(days=3650))
        assert env.purge() == 0
        assert env.get(run.run_id).status is RunStatus.COMPLETED


def test_a_run_is_purged_no_sooner_than_an_hour_after_it_finished(tasks: TaskRegistry) -> None:
    # A retention shorter than that still waits: a request that saw the run live a moment
    # ago (an event, a dying invocation) must not write into a run that is gone.
    with TestEnvironment(registry=tasks, retention=timedelta(minutes=1)) as env:
        run = env.trigger("quick", 1)
        env.run_until_complete(run.run_id)
        env.advance(SETTLE - SECOND)
        assert env.purge() == 0
        env.advance(SECOND)
        assert env.purge() == 1


def test_the_runtime_sweep_purges_with_the_configured_retention(tasks: TaskRegistry) -> None:
    clock = VirtualClock()
    store = MemoryRunStore()
    queue = MemoryWakeQueue(clock)
    runtime = Runtime.from_parts(
        store=store,
        queue=queue,
        blobs=MemoryBlobStore(),
        clock=clock,
        registry=tasks,
        settings=Settings(retention_days=7),
    )
    # given: a run the worker completes, and one the client cancels
    completed = runtime.client.trigger("quick", 1)
    cancelled = runtime.client.trigger("approval", 1)
    for run_id in (completed.run_id, cancelled.run_id):
        runtime.process_wake_up(f'{{"run_id": "{run_id}", "reason": "start"}}')
    runtime.client.cancel(cancelled.run_id)
    for run_id in (completed.run_id, cancelled.run_id):
        stored = store.get_run(run_id)
        assert stored is not None and stored.finished_at is not None
        assert stored.expires_at == stored.finished_at + timedelta(days=7)

    # when: the scheduled sweep runs 7 days later, and a worker takes its purge message
    clock.advance(timedelta(days=7))
    runtime.sweep()
    queued = list(iter(lambda: queue.pop_due(clock.now()), None))
    purges = [message for message in queued if message.reason is WakeReason.PURGE]
    assert [message.shard for message in purges] == [0]
    purge = purges[0]
    assert store.get_run(completed.run_id) is not None  # the sweeper itself deletes nothing
    assert runtime.process_wake_up(purge.to_json()) == "purged"

    # then
    assert store.get_run(completed.run_id) is None
    assert store.get_run(cancelled.run_id) is None


def test_a_retention_of_zero_days_keeps_runs_forever() -> None:
    assert Settings(retention_days=0).retention is None
    assert Settings().retention == timedelta(days=30)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Settings(retention_days=-1)
