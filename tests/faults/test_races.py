"""Races, truly concurrent (threads): two workers on one run, sibling batch children
reporting at once, a cancel racing a run's finish. Whoever wins, nothing runs twice and
nothing is left waiting."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from typing import Any

import pytest

from durable import Context, RunStatus, TaskRegistry, task
from durable.errors import ChildRunFailedError, RunFinishedError
from durable.records import WakeReason, WakeUp
from durable.testing import Backend, TestEnvironment
from durable.worker import Handled

from .conftest import Production


def in_threads(*actions: Any) -> list[Any]:
    """Start every action at once (a barrier), wait for all; their results or exceptions."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(index: int, action: Any) -> None:
        barrier.wait()
        try:
            results[index] = action()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


# Memory only: moto's conditional writes are not atomic across threads (two threads can
# both pass one condition), which DynamoDB's are; on moto the log slot's fence still keeps
# the log whole (a loser is ABANDONED), but a side effect could run twice.
@pytest.mark.parametrize("backend", ["memory"])
def test_workers_racing_on_one_run_execute_it_once(backend: Backend) -> None:
    registry = TaskRegistry()
    effects: list[str] = []
    lock = threading.Lock()

    @task(id="charge", registry=registry)
    def charge(ctx: Context, payload: None) -> str:
        def pay() -> str:
            with lock:
                effects.append(ctx.run.id)
            return "ch_1"

        return str(ctx.step("pay", pay))

    with TestEnvironment(backend=backend, registry=registry) as env:
        run = env.trigger("charge")
        message = env.queue.pop_due(env.now())
        assert message is not None
        outcomes = in_threads(*[lambda: env.worker.handle(message) for _ in range(8)])
        info = env.get(run.run_id)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert outcomes.count(Handled.EXECUTED) == 1
    assert set(outcomes) <= {Handled.EXECUTED, Handled.BUSY, Handled.FINISHED}
    assert effects == [run.run_id]
    assert info.status is RunStatus.COMPLETED


def test_sibling_batch_children_ending_at_once_are_all_counted() -> None:
    registry = TaskRegistry()

    @task(id="item", registry=registry)
    def item(ctx: Context, payload: int) -> int:
        return payload * 10

    @task(id="fan-out", registry=registry)
    def fan_out(ctx: Context, payload: int) -> list[int]:
        return list(ctx.map("item", list(range(payload)), max_concurrency=payload))

    with TestEnvironment(backend="memory", registry=registry) as env:
        run = env.trigger("fan-out", 12)
        env.deliver(env.queue.pop_due(env.now()))  # type: ignore[arg-type]
        children = []
        while (message := env.queue.pop_due(env.now())) is not None:
            children.append(message)
        assert len(children) == 12
        outcomes = in_threads(*[lambda m=m: env.worker.handle(m) for m in children])
        env.run_until_idle()
        info = env.get(run.run_id)

    assert outcomes.count(Handled.EXECUTED) == 12
    assert info.status is RunStatus.COMPLETED
    assert info.result == [n * 10 for n in range(12)]


@pytest.mark.parametrize("seed", range(12))
def test_a_cancel_racing_a_finish_ends_one_way_and_wakes_the_parent(seed: int) -> None:
    registry = TaskRegistry()
    rng = random.Random(seed)

    @task(id="child", registry=registry)
    def child(ctx: Context, payload: None) -> str:
        threading.Event().wait(rng.random() / 100)  # finish a little sooner or later
        return "done"

    @task(id="parent", registry=registry)
    def parent(ctx: Context, payload: None) -> str:
        try:
            return str(ctx.invoke("child", None))
        except ChildRunFailedError as exc:
            return f"child {exc.status}"

    with TestEnvironment(registry=registry) as env:
        run = env.trigger("parent")
        env.deliver(env.queue.pop_due(env.now()))  # type: ignore[arg-type]  # starts the child
        child_start = env.queue.pop_due(env.now())
        assert child_start is not None and child_start.reason is WakeReason.START
        child_id = child_start.run_id

        def cancel() -> Any:
            threading.Event().wait(rng.random() / 100)
            return env.cancel(child_id)

        outcomes = in_threads(lambda: env.worker.handle(child_start), cancel)
        Production(env).run(lambda: [run.run_id], max_time=timedelta(hours=1))
        info = env.get(run.run_id)
        child_info = env.get(child_id)

    finished, cancelled = outcomes
    if child_info.status is RunStatus.COMPLETED:
        assert isinstance(cancelled, RunFinishedError)
        assert info.result == "done"
    else:
        assert child_info.status is RunStatus.CANCELLED
        # The worker came after the cancel (FINISHED, or FOLLOWED_UP when it found the
        # cancel's follow-ups still pending: a loaded machine can delay its thread that
        # long), met it mid-run (ABANDONED, EXECUTED) or found the lease taken (BUSY).
        assert finished in (
            Handled.ABANDONED,
            Handled.EXECUTED,
            Handled.BUSY,
            Handled.FINISHED,
            Handled.FOLLOWED_UP,
        )
        assert info.result == "child CANCELLED"
    assert info.status is RunStatus.COMPLETED


def test_a_wake_up_for_a_busy_run_is_not_lost() -> None:
    """An event lands while the run's invocation holds the lease (its wake-up is dropped as
    BUSY): the invocation looks again once it has persisted its wait."""
    registry = TaskRegistry()
    entered = threading.Event()
    release = threading.Event()

    @task(id="approval", registry=registry)
    def approval(ctx: Context, payload: None) -> Any:
        def slow() -> None:
            entered.set()
            release.wait(10)

        ctx.step("prepare", slow)
        return ctx.wait_for_event("approve")

    with TestEnvironment(registry=registry) as env:
        run = env.trigger("approval")
        start = env.queue.pop_due(env.now())
        assert start is not None
        worker = threading.Thread(target=env.worker.handle, args=(start,))
        worker.start()
        entered.wait(10)
        env.send_event(run.run_id, "approve", {"ok": True})
        wake = env.queue.pop_due(env.now())
        assert wake == WakeUp(run.run_id, WakeReason.EVENT)
        assert env.worker.handle(wake) is Handled.BUSY  # dropped: the run is busy
        release.set()
        worker.join(10)
        env.run_until_idle()
        info = env.get(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.result == {"ok": True}
