"""Timers without re-hops: a wait of any length costs O(1) invocations and messages.

A far `wake_at` is parked (no message) and the sweeper hands it off once it is within
SQS's 15-minute delay (`durable.services.timers`). Here the sweeper runs every minute of
virtual time, as the template schedules it, and nothing else hands off (the test kit's own
hand-off is turned off): the run must wake on time to the second, on memory and on moto.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from durable import (
    Context,
    Queue,
    RetryPolicy,
    RunStatus,
    TaskRegistry,
    WaitTimeoutError,
    task,
)
from durable.records import RunRecord, WakeReason
from durable.testing import Backend, MotoBackend, TestEnvironment
from durable.worker import Handled

SWEEP_EVERY = timedelta(minutes=1)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    with MotoBackend() as backend:
        yield backend


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def env(registry: TaskRegistry, backend: Backend, moto: MotoBackend) -> Iterator[TestEnvironment]:
    with TestEnvironment(backend, registry=registry, moto=moto) as environment:
        environment.hands_off_timers = False  # only the sweeps below hand off
        yield environment


def stored(env: TestEnvironment, run_id: str) -> RunRecord:
    run = env.store.get_run(run_id)
    assert run is not None
    return run


def sweep_until(env: TestEnvironment, until: datetime) -> int:
    """Production's schedule, skipping ahead: a sweep every minute from 20 minutes before
    `until` on (once a day before that), each message delivered at its own instant;
    returns the number of sweeps."""
    sweeps = 0
    next_sweep = env.now()
    close = until - timedelta(minutes=20)
    while True:
        env.run_until_idle()
        if env.now() >= next_sweep:
            env.sweep()
            sweeps += 1
            now = env.now()
            next_sweep = min(now + timedelta(days=1), close) if now < close else now + SWEEP_EVERY
            continue
        if env.now() >= until:
            return sweeps
        due = env.queue.next_due()
        env.clock.set(min(next_sweep, until) if due is None else min(due, next_sweep, until))


def sleeper(registry: TaskRegistry, env: TestEnvironment, length: timedelta) -> None:
    @task(id="sleeper", registry=registry)
    def sleep(ctx: Context, payload: None) -> str:
        ctx.sleep("long", length)
        return ctx.step("woke", lambda: env.now().isoformat())


def test_a_forty_day_sleep_takes_two_invocations_and_two_messages(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    sleeper(registry, env, timedelta(days=40))
    run = env.trigger("sleeper")
    env.run_until_idle()
    parked = stored(env, run.run_id)
    end = env.now() + timedelta(days=40)
    assert (parked.status, parked.wake_at, parked.wake_parked) == (RunStatus.WAITING, end, True)
    assert len(env.queue) == 0  # no message in flight for 40 days

    sweeps = sweep_until(env, end + timedelta(minutes=2))

    info = env.get(run.run_id)
    assert info.status is RunStatus.COMPLETED
    assert abs(datetime.fromisoformat(info.result) - end) <= timedelta(seconds=1)
    assert env.invocations == 2  # the start, the wake
    assert env.queue.sent == 2  # START, and the one TIMER the hand-off sent
    assert [handled for _, handled in env.handled] == [Handled.EXECUTED, Handled.EXECUTED]
    assert sweeps > 40  # the sweeps that met it before its window sent nothing


def test_the_overdue_sweep_never_sends_a_parked_run(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    sleeper(registry, env, timedelta(hours=2))
    run = env.trigger("sleeper")
    env.run_until_idle()
    env.clock.set(env.now() + timedelta(minutes=90))
    assert env.sweep() == 0  # not in the window yet: nothing sent, nothing overdue
    assert len(env.queue) == 0 and stored(env, run.run_id).wake_parked
    env.clock.set(env.now() + timedelta(minutes=31))  # a sweeper down for half an hour
    assert env.sweep() == 0  # overdue, yet handed off: its timer, at once, not a SWEEP
    assert env.queue.next_due() == env.now()
    assert not stored(env, run.run_id).wake_parked
    env.run_until_idle()
    assert env.get(run.run_id).status is RunStatus.COMPLETED


def test_a_start_delayed_two_days_sends_nothing_until_its_window(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="later", registry=registry)
    def later(ctx: Context, payload: None) -> str:
        return ctx.step("ran", lambda: env.now().isoformat())

    run = env.trigger("later", delay=timedelta(days=2))
    start = env.now() + timedelta(days=2)
    parked = stored(env, run.run_id)
    assert (parked.status, parked.wake_at, parked.wake_parked) == (RunStatus.QUEUED, start, True)
    assert env.queue.sent == 0

    sweep_until(env, start + timedelta(minutes=2))

    info = env.get(run.run_id)
    assert info.status is RunStatus.COMPLETED
    assert abs(datetime.fromisoformat(info.result) - start) <= timedelta(seconds=1)
    assert (env.invocations, env.queue.sent) == (1, 1)


def test_an_hour_long_debounce_sends_one_message_for_its_start(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="digest", registry=registry, queue=Queue("digest", debounce=timedelta(hours=1)))
    def digest(ctx: Context, payload: Any) -> Any:
        return ctx.step("send", lambda: [payload, env.now().isoformat()])

    first = env.trigger("digest", 1)
    assert stored(env, first.run_id).wake_parked and env.queue.sent == 0
    sweep_until(env, env.now() + timedelta(minutes=40))  # within the hour: replaced
    second = env.trigger("digest", 2)
    assert (second.run_id, second.created) == (first.run_id, False)
    start = env.now() + timedelta(hours=1)
    replaced = stored(env, first.run_id)
    assert (replaced.wake_at, replaced.wake_parked) == (start, True)
    assert env.queue.sent == 0  # neither trigger sent a message: both starts were parked

    sweep_until(env, start + timedelta(minutes=2))

    info = env.get(first.run_id)
    assert info.status is RunStatus.COMPLETED
    assert info.result[0] == 2
    assert abs(datetime.fromisoformat(info.result[1]) - start) <= timedelta(seconds=1)
    assert (env.invocations, env.queue.sent) == (1, 1)  # the hand-off's one message


def test_a_start_delayed_within_the_window_is_sent_at_once(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="soon", registry=registry)
    def soon(ctx: Context, payload: None) -> None:
        return None

    run = env.trigger("soon", delay=timedelta(minutes=10))
    assert not stored(env, run.run_id).wake_parked
    assert env.queue.sent == 1
    env.advance(timedelta(minutes=10))
    assert env.get(run.run_id).status is RunStatus.COMPLETED


def test_a_two_hour_retry_backoff_is_parked_and_kept(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    tries: list[str] = []

    def flaky() -> str:
        tries.append(env.now().isoformat())
        if len(tries) == 1:
            raise RuntimeError("the provider is down")
        return "ok"

    policy = RetryPolicy(
        max_attempts=2, min_delay=timedelta(hours=2), max_delay=timedelta(hours=2), jitter=0
    )

    @task(id="backoff", registry=registry)
    def backoff(ctx: Context, payload: None) -> str:
        return ctx.step("call", flaky, retry=policy)

    run = env.trigger("backoff")
    env.run_until_idle()
    parked = stored(env, run.run_id)
    assert parked.wake_parked and parked.wake_at is not None
    assert parked.wake_at - env.now() == timedelta(hours=2)

    sweep_until(env, parked.wake_at + timedelta(minutes=2))

    assert env.get(run.run_id).status is RunStatus.COMPLETED
    assert abs(datetime.fromisoformat(tries[1]) - parked.wake_at) <= timedelta(seconds=1)
    assert (env.invocations, env.queue.sent) == (2, 2)


def test_a_week_long_wait_times_out_on_time(registry: TaskRegistry, env: TestEnvironment) -> None:
    @task(id="approval", registry=registry)
    def approval(ctx: Context, payload: None) -> Any:
        try:
            return ctx.wait_for_event("approved", timeout=timedelta(days=7))
        except WaitTimeoutError:
            return ctx.step("expired", lambda: env.now().isoformat())

    run = env.trigger("approval")
    env.run_until_idle()
    timeout = env.now() + timedelta(days=7)
    assert stored(env, run.run_id).wake_parked

    sweep_until(env, timeout + timedelta(minutes=2))

    info = env.get(run.run_id)
    assert info.status is RunStatus.COMPLETED
    assert abs(datetime.fromisoformat(info.result) - timeout) <= timedelta(seconds=1)
    assert (env.invocations, env.queue.sent) == (2, 2)


def test_a_three_day_callback_times_out_on_time(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    tokens: list[str] = []

    @task(id="review", registry=registry)
    def review(ctx: Context, payload: None) -> Any:
        try:
            return ctx.wait_for_callback("review", submit=tokens.append, timeout=timedelta(days=3))
        except WaitTimeoutError:
            return ctx.step("expired", lambda: env.now().isoformat())

    run = env.trigger("review")
    env.run_until_idle()
    timeout = env.now() + timedelta(days=3)
    assert len(tokens) == 1 and stored(env, run.run_id).wake_parked

    sweep_until(env, timeout + timedelta(minutes=2))

    info = env.get(run.run_id)
    assert info.status is RunStatus.COMPLETED
    assert abs(datetime.fromisoformat(info.result) - timeout) <= timedelta(seconds=1)
    assert (env.invocations, env.queue.sent) == (2, 2)


def test_an_event_wakes_a_parked_wait_at_once(registry: TaskRegistry, env: TestEnvironment) -> None:
    @task(id="approval", registry=registry)
    def approval(ctx: Context, payload: None) -> Any:
        return ctx.wait_for_event("approved", timeout=timedelta(days=7))

    run = env.trigger("approval")
    env.run_until_idle()
    env.clock.set(env.now() + timedelta(days=3))
    env.send_event(run.run_id, "approved", {"by": "ada"})
    env.run_until_idle()  # no sweep, no timeout: the event's own wake-up

    info = env.get(run.run_id)
    assert (info.status, info.result) == (RunStatus.COMPLETED, {"by": "ada"})
    after = stored(env, run.run_id)
    assert (after.wake_at, after.wake_parked) == (None, False)
    sweep_until(env, env.now() + timedelta(days=5))  # the old timeout passes: nothing
    assert (env.invocations, env.queue.sent) == (2, 2)


def test_an_early_timer_of_an_old_deploy_parks_the_run(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    sleeper(registry, env, timedelta(days=40))
    run = env.trigger("sleeper")
    env.run_until_idle()
    # As an older worker left it: not parked, a 15-minute hop in flight.
    before = stored(env, run.run_id)
    assert env.store.set_timer_parked(
        run.run_id, False, wake_at=before.wake_at, wake_token=before.wake_token
    )
    env.send_raw(run.run_id, WakeReason.TIMER, before.wake_token)
    sent = env.queue.sent
    env.run_until_idle()

    assert env.handled[-1][1] is Handled.PARKED
    assert stored(env, run.run_id).wake_parked
    assert env.queue.sent == sent  # no new hop
    assert before.wake_at is not None
    sweep_until(env, before.wake_at + timedelta(minutes=2))
    assert env.get(run.run_id).status is RunStatus.COMPLETED


def test_an_early_timer_within_the_window_hops_once_more(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    sleeper(registry, env, timedelta(minutes=10))
    run = env.trigger("sleeper")
    env.run_until_idle()
    token = stored(env, run.run_id).wake_token
    env.send_raw(run.run_id, WakeReason.TIMER, token)  # a duplicate, early
    env.run_until_idle()
    assert env.handled[-1][1] is Handled.REHOPPED
    env.advance(timedelta(minutes=10))
    assert env.get(run.run_id).status is RunStatus.COMPLETED
    assert [h for _, h in env.handled].count(Handled.EXECUTED) == 2


def test_duplicate_and_late_hand_offs_change_nothing(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    sleeper(registry, env, timedelta(hours=3))
    run = env.trigger("sleeper")
    env.run_until_idle()
    parked = stored(env, run.run_id)
    assert parked.wake_at is not None
    env.clock.set(parked.wake_at - timedelta(minutes=10))
    env.sweep()
    # A hand-off that died before its un-park: the next sweep sends the timer again.
    assert env.store.set_timer_parked(
        run.run_id, True, wake_at=parked.wake_at, wake_token=parked.wake_token
    )
    env.clock.set(env.now() + SWEEP_EVERY)
    env.sweep()
    env.advance(timedelta(minutes=10))
    env.send_raw(run.run_id, WakeReason.TIMER, parked.wake_token)  # and a late one
    env.run_until_idle()

    assert env.get(run.run_id).status is RunStatus.COMPLETED
    handled = [h for _, h in env.handled]
    assert handled.count(Handled.EXECUTED) == 2
    assert handled[-2:] == [Handled.FINISHED, Handled.FINISHED]
    assert [step.name for step in env.history(run.run_id)].count("woke") == 1


def test_the_test_kit_hands_off_by_itself(registry: TaskRegistry, env: TestEnvironment) -> None:
    sleeper(registry, env, timedelta(days=40))
    env.hands_off_timers = True  # the default: advance and run_until_complete just work
    run = env.trigger("sleeper")
    start = env.now()
    env.advance(timedelta(days=40))
    info = env.get(run.run_id)
    assert info.status is RunStatus.COMPLETED
    assert datetime.fromisoformat(info.result) == start + timedelta(days=40)
    assert (env.invocations, env.queue.sent) == (2, 2)

    second = env.trigger("sleeper")
    assert env.run_until_complete(second.run_id).status is RunStatus.COMPLETED
    assert env.now() == start + timedelta(days=80)
