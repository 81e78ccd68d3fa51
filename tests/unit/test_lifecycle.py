"""A run's life: triggering, idempotency, cancellation, timeouts, crashes and lost messages."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from durable import (
    Context,
    PayloadTooLargeError,
    PayloadValidationError,
    RetryPolicy,
    RunFinishedError,
    RunStatus,
    TaskRegistry,
    UnknownTaskError,
    task,
)
from durable.records import WakeReason
from durable.testing import SimulatedCrash, TestEnvironment
from durable.worker import Handled


class OrderIn(BaseModel):
    order_id: str
    amount: int


def test_a_bad_payload_is_refused_and_nothing_is_stored(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="typed-order", registry=registry)
    def typed_order(ctx: Context, payload: OrderIn) -> int:
        return payload.amount

    with pytest.raises(PayloadValidationError) as caught:
        env.trigger("typed-order", {"order_id": "o-1", "amount": "lots"})
    assert caught.value.details[0]["loc"] == ("amount",)
    with pytest.raises(UnknownTaskError):
        env.trigger("no-such-task", {})
    assert env.list().runs == []
    assert len(env.queue) == 0

    run = env.trigger("typed-order", {"order_id": "o-1", "amount": "12"})
    assert env.run_until_complete(run.run_id).result == 12
    assert env.get(run.run_id).payload == {"order_id": "o-1", "amount": 12}


def test_the_same_idempotency_key_gives_the_same_run(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    executions: list[int] = []

    @task(id="once", registry=registry)
    def once(ctx: Context, payload: int) -> int:
        return ctx.step("work", lambda: executions.append(payload) or payload)

    first = env.trigger("once", 1, idempotency_key="k-1")
    second = env.trigger("once", 1, idempotency_key="k-1")
    other = env.trigger("once", 2, idempotency_key="k-2")
    env.run_until_idle()

    assert first.run_id == second.run_id
    assert (first.created, second.created) == (True, False)
    assert other.run_id != first.run_id
    assert sorted(executions) == [1, 2]
    assert len(env.list().runs) == 2


def test_a_delayed_trigger_starts_after_its_delay(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="later", registry=registry)
    def later(ctx: Context, payload: None) -> str:
        return ctx.now().isoformat()

    start = env.now()
    run = env.trigger("later", delay=timedelta(hours=2))
    env.advance(timedelta(hours=1, minutes=59))
    assert env.get(run.run_id).status == RunStatus.QUEUED
    env.advance(timedelta(minutes=1))
    info = env.get(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == (start + timedelta(hours=2)).isoformat()


def test_cancelling_a_waiting_run(registry: TaskRegistry, env: TestEnvironment) -> None:
    after: list[str] = []

    @task(id="cancellable", registry=registry)
    def cancellable(ctx: Context, payload: None) -> None:
        ctx.sleep("nap", timedelta(hours=1))
        ctx.step("after", lambda: after.append("ran"))

    run = env.trigger("cancellable")
    env.run_until_idle()
    info = env.cancel(run.run_id)
    assert info.status == RunStatus.CANCELLED
    env.advance(timedelta(hours=2))

    assert env.get(run.run_id).status == RunStatus.CANCELLED
    assert after == []
    with pytest.raises(RunFinishedError):
        env.cancel(run.run_id)
    with pytest.raises(RunFinishedError):
        env.send_event(run.run_id, "anything", None)


def test_cancelling_a_running_run_stops_it_at_its_next_step(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    steps: list[str] = []

    @task(id="self-cancel", registry=registry)
    def self_cancel(ctx: Context, payload: None) -> None:
        ctx.step("first", lambda: steps.append("first") or (env.cancel(ctx.run.id) and None))
        ctx.step("second", lambda: steps.append("second"))

    env.worker.config = dataclasses.replace(env.worker.config, cancel_check_interval=0.0)
    run = env.trigger("self-cancel")
    env.run_until_idle()

    assert env.get(run.run_id).status == RunStatus.CANCELLED
    assert steps == ["first"]


def test_a_run_that_outlives_its_task_timeout_is_timed_out(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="slowpoke", registry=registry, timeout=timedelta(hours=1))
    def slowpoke(ctx: Context, payload: None) -> None:
        ctx.sleep("too-long", timedelta(hours=5))

    run = env.trigger("slowpoke")
    start = env.now()
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.TIMED_OUT
    assert info.finished_at == start + timedelta(hours=1)


def test_duplicate_and_late_messages_change_nothing(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    executions: list[str] = []

    @task(id="dup", registry=registry)
    def dup(ctx: Context, payload: None) -> None:
        ctx.step("work", lambda: executions.append("work"))
        ctx.sleep("nap", timedelta(minutes=5))

    run = env.trigger("dup")
    env.send_raw(run.run_id, WakeReason.START)  # a duplicate delivery
    env.run_until_idle()
    env.send_raw(run.run_id, WakeReason.TIMER, token="an-old-token")  # a late timer
    env.run_until_idle()
    info = env.run_until_complete(run.run_id)
    env.send_raw(run.run_id, WakeReason.START)  # after the end
    env.run_until_idle()

    assert info.status == RunStatus.COMPLETED
    assert executions == ["work"]
    outcomes = [handled for _, handled in env.handled]
    assert Handled.STALE in outcomes
    assert outcomes[-1] == Handled.FINISHED


def test_a_crash_after_a_step_resumes_without_repeating_it(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    charges: list[int] = []
    crashed: list[bool] = []

    def charge(amount: int) -> dict[str, Any]:
        charges.append(amount)
        return {"charge_id": "ch_1", "amount": amount}

    def update_order() -> str:
        if not crashed:
            crashed.append(True)
            raise SimulatedCrash("power cut")
        return "updated"

    @task(id="crashing-order", registry=registry)
    def crashing_order(ctx: Context, payload: None) -> str:
        ctx.step("charge", charge, 100)
        return ctx.step("update-order", update_order)

    run = env.trigger("crashing-order")
    info = env.run_until_complete(run.run_id)

    assert env.crashes == 1
    assert info.status == RunStatus.COMPLETED
    assert charges == [100]


def test_an_at_most_once_step_that_crashed_is_never_run_again(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    sent: list[str] = []

    def send_email() -> None:
        sent.append("email")
        raise SimulatedCrash("died after the side effect")

    @task(id="email", registry=registry, retry=RetryPolicy(max_attempts=1))
    def email(ctx: Context, payload: None) -> None:
        ctx.step("send", send_email, semantics="at_most_once")

    run = env.trigger("email")
    info = env.run_until_complete(run.run_id)

    assert sent == ["email"]
    assert info.status == RunStatus.FAILED
    assert info.error is not None and info.error.type == "CrashedAfterStartError"
    kinds = [entry.kind for entry in env.history(run.run_id)]
    assert kinds == ["step_started", "step_failed"]


def test_an_invocation_low_on_time_hands_over(registry: TaskRegistry, env: TestEnvironment) -> None:
    counts: dict[str, int] = {}

    def count(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1

    @task(id="long-job", registry=registry)
    def long_job(ctx: Context, payload: None) -> int:
        for index in range(5):
            ctx.step(f"part-{index}", count, f"part-{index}")
        return len(counts)

    run = env.trigger("long-job")
    message = env.queue.pop_due(env.now())
    assert message is not None
    # given: Lambda says only 5 s are left, less than the 10 s safety margin
    handled = env.deliver(message, time_left=lambda: timedelta(seconds=5))
    assert handled == Handled.EXECUTED
    assert env.get(run.run_id).status == RunStatus.QUEUED
    assert counts == {}
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert all(value == 1 for value in counts.values())
    assert len(counts) == 5


def test_the_sweeper_recovers_a_lost_message(registry: TaskRegistry, env: TestEnvironment) -> None:
    @task(id="lost", registry=registry)
    def lost(ctx: Context, payload: None) -> str:
        ctx.sleep("nap", timedelta(minutes=10))
        return "done"

    run = env.trigger("lost")
    env.run_until_idle()
    # given: the timer message is lost
    while env.queue.pop_due(env.now() + timedelta(days=1)) is not None:
        pass
    env.clock.advance(timedelta(minutes=11))
    env.run_until_idle()
    assert env.get(run.run_id).status == RunStatus.WAITING

    assert env.sweep() == 1
    env.run_until_idle()
    assert env.get(run.run_id).status == RunStatus.COMPLETED


def test_large_values_go_to_the_blob_store_and_round_trip(registry: TaskRegistry) -> None:
    big = "x" * 300_000

    @task(id="big", registry=registry)
    def big_task(ctx: Context, payload: str) -> str:
        echoed = ctx.step("echo", lambda: payload + "!")
        return echoed.upper()

    with TestEnvironment(registry=registry, inline_limit=100_000) as env:
        run = env.trigger("big", big)
        info = env.run_until_complete(run.run_id)
        stored = env.store.get_run(run.run_id)
        history = env.history(run.run_id)

    assert info.result == big.upper() + "!"
    assert stored is not None and stored.payload.startswith("@blob:")
    assert stored.result is not None and stored.result.startswith("@blob:")
    assert history[0].value == big + "!"
    with TestEnvironment(registry=registry) as env, pytest.raises(PayloadTooLargeError):
        env.trigger("big", "y" * (6 * 1024 * 1024 + 1))


def test_a_thousand_step_run_writes_once_per_step(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="thousand", registry=registry)
    def thousand(ctx: Context, payload: None) -> int:
        return sum(ctx.step(f"step-{index}", lambda i=index: i) for index in range(1000))

    run = env.trigger("thousand")
    info = env.run_until_complete(run.run_id)

    assert info.result == sum(range(1000))
    assert len(env.history(run.run_id)) == 1000
    writes = env.store.writes  # type: ignore[attr-defined]
    assert writes <= 1000 * 1.1


def test_a_step_that_always_kills_its_invocation_stops_the_run(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    attempts: list[int] = []

    def always_dies() -> None:
        attempts.append(1)
        raise SimulatedCrash("out of memory, every time")

    @task(id="crash-loop", registry=registry)
    def crash_loop(ctx: Context, payload: None) -> None:
        ctx.step("harmless", lambda: None)
        ctx.step("dies", always_dies)  # at-least-once, no timeout: nothing else bounds it

    run = env.trigger("crash-loop")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.FAILED
    assert info.error is not None and info.error.type == "InvocationCrashLoop"
    # the first death came after progress (`harmless`), then max_crash_streak with none
    assert len(attempts) == env.worker.config.max_crash_streak + 1
    assert env.store.get_run(run.run_id).crash_streak == 0  # type: ignore[union-attr]


def test_a_crash_streak_ends_with_any_invocation_that_finishes(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    deaths: list[int] = []

    def dies_sometimes() -> str:
        deaths.append(1)
        if len(deaths) in (1, 2, 3, 4, 6, 7, 8, 9):  # never five in a row with progress between
            raise SimulatedCrash("flaky host")
        return "ok"

    @task(id="flaky-host", registry=registry)
    def flaky_host(ctx: Context, payload: None) -> list[str]:
        return [ctx.step(f"part-{i}", dies_sometimes) for i in range(3)]

    run = env.trigger("flaky-host")
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.COMPLETED
