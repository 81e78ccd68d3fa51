"""Retries: step-level retries re-run only the step, task-level retries replay the run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from durable import (
    Context,
    NonRetryableError,
    RetryPolicy,
    RunStatus,
    StepFailedError,
    TaskRegistry,
    task,
)
from durable.engine.retry import RetryPolicy as EngineRetryPolicy
from durable.testing import TestEnvironment


class Flaky:
    """Fails the first `failures` calls, then returns how many calls it took."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return self.calls


def test_a_step_retries_with_exponential_backoff_on_the_virtual_clock(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    flaky = Flaky(failures=3)
    policy = RetryPolicy(max_attempts=5, factor=2.0, min_delay=timedelta(seconds=1))

    @task(id="retrying-step", registry=registry)
    def retrying(ctx: Context, payload: None) -> int:
        return ctx.step("call", flaky, retry=policy)

    run = env.trigger("retrying-step")
    start = env.now()
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == 4
    history = env.history(run.run_id)
    assert [(entry.kind, entry.attempt) for entry in history] == [
        ("step_failed", 1),
        ("step_failed", 2),
        ("step_failed", 3),
        ("step_completed", 4),
    ]
    previous = start
    for entry, base in zip(history[:3], (1.0, 2.0, 4.0), strict=True):
        assert entry.wake_at is not None
        delay = (entry.wake_at - entry.at).total_seconds()
        assert base * 0.8 <= delay <= base  # jitter shortens by at most 20 %
        assert entry.at >= previous
        previous = entry.wake_at
    assert info.attempts == 1  # the task attempt never failed


def test_backoff_is_capped_by_max_delay() -> None:
    policy = EngineRetryPolicy(
        max_attempts=10,
        factor=10.0,
        min_delay=timedelta(seconds=1),
        max_delay=timedelta(seconds=60),
    )
    assert policy.base_delay(1) == timedelta(seconds=1)
    assert policy.base_delay(2) == timedelta(seconds=10)
    assert policy.base_delay(3) == timedelta(seconds=60)
    assert policy.delay(3, "run:0") <= timedelta(seconds=60)
    assert policy.delay(3, "run:0") == policy.delay(3, "run:0")  # deterministic


def test_a_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="min_delay"):
        RetryPolicy(min_delay=timedelta(seconds=5), max_delay=timedelta(seconds=1))


def test_a_step_that_exhausts_its_retries_raises_into_the_task(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    flaky = Flaky(failures=10)
    errors: list[str] = []

    @task(id="fallback", registry=registry, retry=RetryPolicy(max_attempts=1))
    def fallback(ctx: Context, payload: None) -> str:
        try:
            ctx.step("primary", flaky, retry=RetryPolicy(max_attempts=2))
        except StepFailedError as error:
            errors.append(error.error_type)
            ctx.sleep("pause", timedelta(minutes=5))  # the failure replays identically
            return ctx.step("secondary", lambda: "secondary")
        return "primary"

    run = env.trigger("fallback")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == "secondary"
    assert flaky.calls == 2
    assert errors == ["ConnectionError", "ConnectionError"]  # fresh, then replayed


def test_task_retry_replays_completed_steps_and_reruns_the_failed_one(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    fetches: list[int] = []
    charge = Flaky(failures=1)

    @task(id="multi-step", registry=registry, retry=RetryPolicy(max_attempts=3))
    def multi_step(ctx: Context, payload: None) -> dict[str, int]:
        user = ctx.step("fetch-user", lambda: fetches.append(1) or 7)
        charged = ctx.step("charge", charge)
        return {"user": user, "charge": charged}

    run = env.trigger("multi-step")
    env.run_until_idle()
    assert env.get(run.run_id).status == RunStatus.RETRYING
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == {"user": 7, "charge": 2}
    assert fetches == [1]
    assert charge.calls == 2
    assert info.attempts == 2
    kinds = [(entry.kind, entry.task_attempt) for entry in env.history(run.run_id)]
    assert kinds == [
        ("step_completed", 1),
        ("step_failed", 1),
        ("attempt_failed", 1),
        ("step_completed", 2),
    ]


def test_a_task_that_keeps_failing_ends_failed_with_the_error(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="doomed", registry=registry, retry=RetryPolicy(max_attempts=3))
    def doomed(ctx: Context, payload: None) -> None:
        ctx.step("fetch", lambda: 1)
        raise ValueError("bad data")

    run = env.trigger("doomed")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.FAILED
    assert info.attempts == 3
    assert info.error is not None
    assert (info.error.type, info.error.message) == ("ValueError", "bad data")


def test_non_retryable_errors_fail_at_once(registry: TaskRegistry, env: TestEnvironment) -> None:
    card = Flaky(failures=10, error=NonRetryableError)
    lookups = Flaky(failures=10, error=KeyError)

    @task(id="card-declined", registry=registry, retry=RetryPolicy(max_attempts=5))
    def declined(ctx: Context, payload: None) -> None:
        ctx.step("charge", card, retry=RetryPolicy(max_attempts=5))

    @task(
        id="listed-type",
        registry=registry,
        retry=RetryPolicy(max_attempts=5, non_retryable=(LookupError,)),
    )
    def listed(ctx: Context, payload: None) -> None:
        lookups()

    first = env.trigger("card-declined")
    second = env.trigger("listed-type")
    assert env.run_until_complete(first.run_id).status == RunStatus.FAILED
    assert env.run_until_complete(second.run_id).status == RunStatus.FAILED
    assert card.calls == 1
    assert lookups.calls == 1
    assert env.get(first.run_id).attempts == 1
