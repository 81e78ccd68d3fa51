"""Concurrency slots (`durable.services.slots`), on memory and moto, through the test kit's
worker: never more runs of a queue inside at once than its limit per key, every run
completes, waiters start in priority order, a wait gives the slot back, and nothing is
left holding a slot once all is done."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from durable import Context, Queue, TaskRegistry, task
from durable.faults import Faults
from durable.records import RunStatus
from durable.testing import Backend, TestEnvironment


class Inside:
    """Which runs are between their first step and their last (holding their slot)."""

    def __init__(self) -> None:
        self.now: dict[str | None, set[str]] = {}
        self.most: dict[str | None, int] = {}
        self.order: list[str] = []

    def enter(self, key: str | None, run_id: str) -> None:
        runs = self.now.setdefault(key, set())
        runs.add(run_id)
        self.most[key] = max(self.most.get(key, 0), len(runs))
        self.order.append(run_id)

    def leave(self, key: str | None, run_id: str) -> None:
        self.now[key].discard(run_id)


def _registry(queue: Queue, inside: Inside) -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="held", registry=registry, queue=queue)
    def held(ctx: Context, payload: Any) -> Any:
        key = payload.get("key")
        ctx.step("enter", inside.enter, key, ctx.run.id)
        ctx.sleep("work", timedelta(seconds=payload.get("seconds", 1)))
        if payload.get("event"):
            ctx.wait_for_event("go")
        ctx.step("leave", inside.leave, key, ctx.run.id)
        return ctx.run.id

    @task(id="plain", registry=registry)
    def plain(ctx: Context, payload: Any) -> Any:
        return ctx.step("echo", lambda: payload)

    return registry


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    return backend


def _no_slot_held(env: TestEnvironment, queue: str, keys: list[str | None]) -> None:
    for key in keys:
        assert env.runtime_store.slot_holders(queue, key) == {}
        assert env.runtime_store.count_waiters(queue, key, 100) == 0


def test_never_more_than_the_limit_inside_and_all_complete(backend: Backend) -> None:
    inside = Inside()
    queue = Queue("pool", concurrency=3, release_on_wait=False)
    with TestEnvironment(backend=backend, registry=_registry(queue, inside)) as env:
        runs = [env.trigger("held", {}) for _ in range(12)]
        env.run_until_idle()
        statuses = [env.get(run.run_id) for run in runs]
        waiting = [info for info in statuses if info.waiting_for == "queue:pool"]
        assert len(waiting) == 9 and all(info.status is RunStatus.QUEUED for info in waiting)
        assert len(env.runtime_store.slot_holders("pool", None)) == 3
        for run in runs:
            assert env.run_until_complete(run.run_id).status is RunStatus.COMPLETED
        assert inside.most[None] == 3
        _no_slot_held(env, "pool", [None])


def test_each_concurrency_key_has_its_own_slots(backend: Backend) -> None:
    inside = Inside()
    queue = Queue("tenants", concurrency=2, release_on_wait=False)
    with TestEnvironment(backend=backend, registry=_registry(queue, inside)) as env:
        runs = [env.trigger("held", {"key": key}, concurrency_key=key) for key in ("a", "b") * 4]
        env.run_until_idle()
        # A busy key does not take the other's slots: two of each run at once.
        assert inside.now == {"a": inside.now["a"], "b": inside.now["b"]}
        assert len(inside.now["a"]) == 2 and len(inside.now["b"]) == 2
        for run in runs:
            assert env.run_until_complete(run.run_id).status is RunStatus.COMPLETED
        assert inside.most == {"a": 2, "b": 2}
        _no_slot_held(env, "tenants", ["a", "b"])


def test_waiting_runs_start_by_priority_then_age(backend: Backend) -> None:
    inside = Inside()
    queue = Queue("one", concurrency=1, release_on_wait=False)
    with TestEnvironment(backend=backend, registry=_registry(queue, inside)) as env:
        first = env.trigger("held", {"event": True})
        env.run_until_idle()
        runs = []
        for priority in (0, 90, 50, 50):  # a millisecond apart: run ids sort by creation
            env.advance(timedelta(milliseconds=1))
            runs.append(env.trigger("held", {"event": True}, priority=priority))
        low, high, mid, mid_later = runs
        env.run_until_idle()
        assert env.get(high.run_id).waiting_for == "queue:one"
        # Ahead of `mid_later`: `high`, then `mid`, older at the same priority.
        assert env.runtime_store.count_waiters("one", None, 100, before=(50, mid_later.run_id)) == 2
        for run in (first, high, mid, mid_later, low):
            env.advance(timedelta(seconds=2))
            env.send_event(run.run_id, "go", {})
            assert env.run_until_complete(run.run_id).status is RunStatus.COMPLETED
        expected = [first, high, mid, mid_later, low]
        assert inside.order == [run.run_id for run in expected]
        _no_slot_held(env, "one", [None])


def test_a_sleeping_run_gives_its_slot_back(backend: Backend) -> None:
    inside = Inside()
    queue = Queue("shared", concurrency=1)  # release_on_wait: the default
    with TestEnvironment(backend=backend, registry=_registry(queue, inside)) as env:
        sleeper = env.trigger("held", {"seconds": 60})
        env.run_until_idle()
        assert env.get(sleeper.run_id).status is RunStatus.WAITING
        assert env.runtime_store.slot_holders("shared", None) == {}  # released while asleep
        # So another run of the queue executes meanwhile: two inside, one executing.
        other = env.trigger("held", {"seconds": 1})
        assert env.run_until_complete(other.run_id).status is RunStatus.COMPLETED
        assert inside.most[None] == 2
        assert env.run_until_complete(sleeper.run_id).status is RunStatus.COMPLETED
        _no_slot_held(env, "shared", [None])


def test_a_run_waking_from_a_sleep_waits_for_a_slot(backend: Backend) -> None:
    inside = Inside()
    queue = Queue("strict", concurrency=1)
    with TestEnvironment(backend=backend, registry=_registry(queue, inside)) as env:
        sleeper = env.trigger("held", {"seconds": 10})
        env.run_until_idle()
        assert env.get(sleeper.run_id).status is RunStatus.WAITING
        # While it sleeps, a run due in an hour holds the slot (as if between its acquire
        # and its lease: it can come back, so it keeps it).
        later = env.trigger("held", {"seconds": 1}, delay=timedelta(hours=1))
        store = env.runtime_store
        assert store.acquire_slot("strict", None, later.run_id, 1, env.now())
        env.advance(timedelta(minutes=5))
        info = env.get(sleeper.run_id)
        assert info.status is RunStatus.QUEUED and info.waiting_for == "queue:strict"
        assert store.waiters("strict", None, 10) == [(0, sleeper.run_id)]
        # The slot given back wakes it, and it goes on where it was.
        store.release_slot("strict", None, later.run_id)
        env.worker.endings.slots.wake(queue, None, 1)
        env.run_until_idle()
        assert env.get(sleeper.run_id).status is RunStatus.COMPLETED
        assert [entry.name for entry in env.history(sleeper.run_id)].count("enter") == 1
        assert env.run_until_complete(later.run_id).status is RunStatus.COMPLETED
        _no_slot_held(env, "strict", [None])


def test_a_cancelled_queued_run_leaves_the_waiters(backend: Backend) -> None:
    inside = Inside()
    queue = Queue("c", concurrency=1, release_on_wait=False)
    with TestEnvironment(backend=backend, registry=_registry(queue, inside)) as env:
        first = env.trigger("held", {"event": True})
        second = env.trigger("held", {})
        third = env.trigger("held", {})
        env.run_until_idle()
        assert env.runtime_store.count_waiters("c", None, 100) == 2
        env.cancel(second.run_id)
        assert env.runtime_store.count_waiters("c", None, 100) == 1
        env.advance(timedelta(seconds=2))
        env.send_event(first.run_id, "go", {})
        assert env.run_until_complete(third.run_id).status is RunStatus.COMPLETED
        assert env.get(second.run_id).status is RunStatus.CANCELLED
        assert second.run_id not in inside.order
        _no_slot_held(env, "c", [None])


@pytest.mark.parametrize("declared", [Queue("free"), None])
def test_runs_of_a_queue_without_a_limit_make_no_extra_call(
    backend: Backend, declared: Queue | None
) -> None:
    def calls(queue: Queue | None) -> list[tuple[str, str]]:
        registry = TaskRegistry()

        @task(id="plain", registry=registry, queue=queue)
        def plain(ctx: Context, payload: Any) -> Any:
            ctx.sleep("nap", timedelta(seconds=1))
            return ctx.step("echo", lambda: payload)

        faults = Faults()
        with TestEnvironment(backend=backend, registry=registry, faults=faults) as env:
            run = env.trigger("plain", {"x": 1})
            assert env.run_until_complete(run.run_id).status is RunStatus.COMPLETED
        return [(call.service, call.operation) for call in faults.log]

    unlimited = calls(declared)
    assert unlimited == calls(None)
    # A limit costs the acquires and releases (and the end's crash-proof follow-up).
    assert len(calls(Queue("lim", concurrency=5))) > len(unlimited)


def test_a_run_arriving_while_others_wait_queues_behind_them(backend: Backend) -> None:
    inside = Inside()
    queue = Queue("fair", concurrency=1, release_on_wait=False)
    with TestEnvironment(backend=backend, registry=_registry(queue, inside)) as env:
        first = env.trigger("held", {"event": True})
        env.run_until_idle()
        waiting = []
        for _ in range(2):
            env.advance(timedelta(seconds=2))
            waiting.append(env.trigger("held", {}))
        env.advance(timedelta(seconds=2))
        # The slot frees as a new run arrives: its start message is handled before the
        # wake-up of the first waiter, and still it does not take the slot.
        env.send_event(first.run_id, "go", {})
        late = env.trigger("held", {})
        for run in (*waiting, late):
            assert env.run_until_complete(run.run_id).status is RunStatus.COMPLETED
        assert inside.order == [first.run_id, *[run.run_id for run in waiting], late.run_id]
        _no_slot_held(env, "fair", [None])


def test_a_slot_left_with_a_finished_run_is_taken_back_when_the_queue_is_full(
    backend: Backend,
) -> None:
    inside = Inside()
    queue = Queue("leaky", concurrency=2, release_on_wait=False)
    with TestEnvironment(backend=backend, registry=_registry(queue, inside)) as env:
        done = env.trigger("held", {})
        assert env.run_until_complete(done.run_id).status is RunStatus.COMPLETED
        later = env.trigger("held", {}, delay=timedelta(hours=1))  # can come back: kept
        store = env.runtime_store
        # A crash between a run's end and its release, twice over: both slots taken.
        assert store.acquire_slot("leaky", None, done.run_id, 2, env.now())
        assert store.acquire_slot("leaky", None, later.run_id, 2, env.now())
        env.advance(timedelta(minutes=2))  # past the holders' grace
        fresh = env.trigger("held", {})
        assert env.run_until_complete(fresh.run_id).status is RunStatus.COMPLETED
        holders = store.slot_holders("leaky", None)
        assert done.run_id not in holders and later.run_id in holders
        assert env.run_until_complete(later.run_id).status is RunStatus.COMPLETED
        _no_slot_held(env, "leaky", [None])


def test_a_waiter_item_whose_run_is_gone_never_blocks_the_line(backend: Backend) -> None:
    inside = Inside()
    queue = Queue("ghosts", concurrency=1, release_on_wait=False)
    with TestEnvironment(backend=backend, registry=_registry(queue, inside)) as env:
        first = env.trigger("held", {"event": True})
        env.run_until_idle()
        second = env.trigger("held", {})
        env.run_until_idle()
        store = env.runtime_store
        # Left ahead of it by a crash: a run since purged, and one that finished.
        store.add_waiter("ghosts", None, "run_gone", 100)
        store.add_waiter("ghosts", None, first.run_id, 90)
        env.advance(timedelta(seconds=2))  # first is at its event wait
        assert env.get(second.run_id).waiting_for == "queue:ghosts"
        env.send_event(first.run_id, "go", {})
        env.run_until_idle()  # no sweeper, no clock moved: the release's wake-up alone
        assert env.get(first.run_id).status is RunStatus.COMPLETED
        assert inside.order == [first.run_id, second.run_id]
        assert env.run_until_complete(second.run_id).status is RunStatus.COMPLETED
        _no_slot_held(env, "ghosts", [None])
