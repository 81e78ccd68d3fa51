"""Parked timers under crashes: the process dies before or after each AWS call of the
invocation that parks a run's sleep, and of the sweep that hands it off.

For a run that sleeps 20 minutes (parked: past SQS's 15-minute delay) then does one step,
an uncrashed play records which calls belong to the sleeping invocation and which to the
hand-off sweep; then, for each of those calls, a fresh environment crashes there (both
sides on memory and in `make faults-sweep`, one side of each call, alternating, on moto:
`crash_sides`) and recovers only as production does (`Production`: SQS redelivery after
the lease, the sweeper every minute, nothing else hands off). The run must never be lost,
wake once, run its step once, and wake on time (at the end its log entry records): the
sweeper's next pass falls well within the 15 minutes a hand-off leaves. A delayed start
is crashed the same way (the trigger's calls, then the hand-off's).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from durable import Context, TaskRegistry, task
from durable.faults import Faults, When
from durable.records import RunStatus, WakeReason
from durable.testing import Backend, MotoBackend, TestEnvironment
from durable.worker import Handled

from .conftest import Production, crash_sides

# Past SQS's 15 minutes, so both are parked; short, so that a play sweeps ~20 times.
SLEEP = timedelta(minutes=20)
DELAY = timedelta(minutes=25)


@dataclass
class Play:
    """What one play did: the run's end, its step's executions, and its call phases."""

    status: RunStatus
    woke: list[datetime]  # when the step after the sleep ran (its side effect)
    wake_at: datetime
    handled: list[Handled]
    phases: list[tuple[str, int, int]] = field(default_factory=list)  # (what, first, last)


def register(registry: TaskRegistry, env_of: dict[str, TestEnvironment], woke: list[Any]) -> None:
    @task(id="sleeper", registry=registry)
    def sleeper(ctx: Context, payload: None) -> str:
        ctx.sleep("long", SLEEP)
        return ctx.step("after", lambda: woke.append(env_of["env"].now()) or "done")

    @task(id="later", registry=registry)
    def later(ctx: Context, payload: None) -> str:
        return ctx.step("after", lambda: woke.append(env_of["env"].now()) or "done")


def play(
    task_id: str,
    backend: Backend,
    crash: tuple[int, When] | None = None,
    moto: MotoBackend | None = None,
) -> Play:
    registry = TaskRegistry()
    woke: list[datetime] = []
    env_of: dict[str, TestEnvironment] = {}
    register(registry, env_of, woke)
    faults = Faults()
    if crash is not None:
        faults.crash(*crash)
    with TestEnvironment(backend, registry=registry, faults=faults, moto=moto) as env:
        env_of["env"] = env
        phases: list[tuple[str, int, int]] = []
        deliver, sweep = env.deliver, env.sweep

        def delivering(message: Any, time_left: Any = None) -> Handled:
            first = faults.calls + 1
            try:
                return deliver(message, time_left)
            finally:
                phases.append((f"deliver {message.reason}", first, faults.calls))

        def sweeping() -> int:
            first, sent = faults.calls + 1, env.queue.sent
            try:
                return sweep()
            finally:
                what = "hand-off" if env.queue.sent > sent else "sweep"
                phases.append((what, first, faults.calls))

        env.deliver = delivering  # type: ignore[method-assign]
        env.sweep = sweeping  # type: ignore[method-assign]
        production = Production(env)
        env.hands_off_timers = False  # the sweeps alone hand off, as in AWS
        delay = DELAY if task_id == "later" else None
        started = env.now()
        handle = production.call(lambda: env.trigger(task_id, delay=delay, idempotency_key="k"))
        production.run(lambda: [handle.run_id], max_time=timedelta(hours=3))
        info = env.get(handle.run_id)
        # The sleep's end as its log entry has it: a crash before that entry was written
        # starts the sleep later, on the invocation that SQS delivers again.
        ends = [entry.wake_at for entry in env.history(handle.run_id) if entry.wake_at]
        wake_at = ends[0] if ends else started + DELAY
        return Play(info.status, woke, wake_at, [h for _, h in env.handled], phases)


def crash_points(reference: Play, task_id: str) -> list[int]:
    """The calls of the invocation that parks the run (none for a delayed start: the
    trigger parks it, and its calls come first) and of the sweep that hands it off."""
    calls: list[int] = []
    if task_id == "later":
        first_phase = reference.phases[0][1]
        calls.extend(range(1, first_phase))  # the trigger's own calls
    else:
        start = next(p for p in reference.phases if p[0] == f"deliver {WakeReason.START}")
        calls.extend(range(start[1], start[2] + 1))
    hand_off = [p for p in reference.phases if p[0] == "hand-off"]
    assert len(hand_off) == 1, reference.phases
    calls.extend(range(hand_off[0][1], hand_off[0][2] + 1))
    return calls


def check(task_id: str, backend: Backend, moto: MotoBackend | None = None) -> int:
    reference = play(task_id, backend, moto=moto)
    assert reference.status is RunStatus.COMPLETED
    assert reference.woke == [reference.wake_at]
    assert reference.handled.count(Handled.EXECUTED) == (2 if task_id == "sleeper" else 1)
    problems: list[str] = []
    points = crash_points(reference, task_id)
    for call in points:
        for when in crash_sides(call, backend):
            crashed = play(task_id, backend, (call, when), moto=moto)
            where = f"crash {when} call {call}"
            if crashed.status is not RunStatus.COMPLETED:
                problems.append(f"{where}: the run is {crashed.status}")
            elif len(crashed.woke) != 1:
                problems.append(f"{where}: the step after the wait ran {len(crashed.woke)} times")
            elif crashed.woke[0] - crashed.wake_at > timedelta(seconds=1):
                problems.append(f"{where}: woke {crashed.woke[0] - crashed.wake_at} late")
    assert problems == []
    return len(points)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    with MotoBackend() as backend:
        yield backend


@pytest.mark.parametrize("task_id", ["sleeper", "later"])
def test_a_crash_parking_or_handing_off_a_timer_changes_nothing_on_memory(task_id: str) -> None:
    assert check(task_id, "memory") >= 5


@pytest.mark.parametrize("task_id", ["sleeper", "later"])
def test_a_crash_parking_or_handing_off_a_timer_changes_nothing_on_moto(
    task_id: str, moto: MotoBackend
) -> None:
    assert check(task_id, "moto", moto) >= 5


def test_duplicate_and_late_timers_of_a_handed_off_run_change_nothing() -> None:
    registry = TaskRegistry()
    woke: list[datetime] = []
    env_of: dict[str, TestEnvironment] = {}
    register(registry, env_of, woke)
    with TestEnvironment(registry=registry) as env:
        env_of["env"] = env
        env.hands_off_timers = False
        handle = env.trigger("sleeper")
        env.run_until_idle()
        run = env.store.get_run(handle.run_id)
        assert run is not None and run.wake_at is not None
        token = run.wake_token
        env.clock.set(run.wake_at - timedelta(minutes=14))
        env.sweep()
        for _ in range(3):  # duplicates while it is still asleep: each sent on once, as
            env.send_raw(handle.run_id, WakeReason.TIMER, token)  # an old deploy's hop is
        env.run_until_idle()
        assert [h for _, h in env.handled][-3:] == [Handled.REHOPPED] * 3
        assert env.get(handle.run_id).status is RunStatus.WAITING
        env.advance(timedelta(minutes=14))
        for _ in range(3):  # and late ones once it has run
            env.send_raw(handle.run_id, WakeReason.TIMER, token)
        env.run_until_idle()
        assert env.get(handle.run_id).status is RunStatus.COMPLETED
        assert woke == [run.wake_at]
        handled = [h for _, h in env.handled]
        assert handled.count(Handled.EXECUTED) == 2
        assert handled[-6:] == [Handled.FINISHED] * 6  # the 3 sent on, the 3 late: dropped
        assert len(env.queue) == 0
