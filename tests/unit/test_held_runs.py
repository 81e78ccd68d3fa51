"""A bad deploy holds runs instead of failing them (`durable.worker.holds`), and a good one
lets them go on: deploy-shaped tests on memory and moto, through `TestEnvironment.deploy`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from durable import Context, RunStatus, TaskRegistry, task
from durable.cli.stats import format_stats
from durable.records import HOLD_NONDETERMINISM, HOLD_UNKNOWN_TASK, WakeReason
from durable.testing import Backend, TestEnvironment
from durable.worker import Handled

RECHECK = timedelta(minutes=5)
TASK = "held-order"


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> Backend:
    value: Backend = request.param
    return value


@pytest.fixture
def effects() -> list[str]:
    return []


def _effect(effects: list[str], name: str) -> Callable[[], str]:
    def run() -> str:
        effects.append(name)
        return name

    return run


def v1(effects: list[str]) -> TaskRegistry:
    """Reserve, charge, an hour's cool-off, ship."""
    registry = TaskRegistry()

    @task(id=TASK, registry=registry)
    def order(ctx: Context, payload: Any) -> str:
        ctx.step("reserve", _effect(effects, "reserve"))
        ctx.step("charge", _effect(effects, "charge"))
        ctx.sleep("cool-off", timedelta(hours=1))
        ctx.step("ship", _effect(effects, "ship"))
        return "shipped"

    return registry


def v2(effects: list[str]) -> TaskRegistry:
    """The charge step renamed: runs recorded by v1 diverge at it."""
    registry = TaskRegistry()

    @task(id=TASK, registry=registry)
    def order(ctx: Context, payload: Any) -> str:
        ctx.step("reserve", _effect(effects, "reserve"))
        ctx.step("charge-card", _effect(effects, "charge-card"))
        ctx.sleep("cool-off", timedelta(hours=1))
        ctx.step("ship", _effect(effects, "ship"))
        return "shipped"

    return registry


def v3(effects: list[str]) -> TaskRegistry:
    """The rename behind `ctx.patched`: v1's runs keep the old step."""
    registry = TaskRegistry()

    @task(id=TASK, registry=registry)
    def order(ctx: Context, payload: Any) -> str:
        ctx.step("reserve", _effect(effects, "reserve"))
        if ctx.patched("charge-card"):
            ctx.step("charge-card", _effect(effects, "charge-card"))
        else:
            ctx.step("charge", _effect(effects, "charge"))
        ctx.sleep("cool-off", timedelta(hours=1))
        ctx.step("ship", _effect(effects, "ship"))
        return "shipped"

    return registry


@pytest.fixture
def env(backend: Backend, effects: list[str]) -> Iterator[TestEnvironment]:
    with TestEnvironment(backend=backend, registry=v1(effects)) as environment:
        yield environment


def recheck(env: TestEnvironment) -> None:
    """The hold's recheck comes: the clock moves past it and the sweeper runs."""
    env.advance(RECHECK + timedelta(seconds=1))
    env.sweep()
    env.run_until_idle()


class LogReads:
    """Counts the worker's loads of run logs (a replay loads the log; a recheck must not)."""

    def __init__(self, env: TestEnvironment, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.env = env
        self.monkeypatch = monkeypatch
        self.watch()

    def watch(self) -> None:
        """Watch the current worker's log cache (again after a deploy: a new worker)."""
        cache = self.env.worker.log_cache
        load = cache.load

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return load(*args, **kwargs)

        self.monkeypatch.setattr(cache, "load", counted)


def test_a_deploy_that_renames_a_step_holds_its_runs_and_a_patched_deploy_completes_them(
    env: TestEnvironment, effects: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: three runs of v1, each past its charge and asleep
    runs = [env.trigger(TASK, {"n": n}).run_id for n in range(3)]
    env.run_until_idle()
    assert effects == ["reserve", "charge"] * 3
    # when: v2 (the charge step renamed) is deployed and their sleep ends
    env.deploy(v2(effects))
    env.advance(timedelta(hours=1))
    # then: each is held for a fix, not failed; nothing of v2 ran; no attempt was spent
    for run_id in runs:
        info = env.get(run_id)
        assert info.status is RunStatus.WAITING
        assert info.waiting_for == HOLD_NONDETERMINISM
        assert info.error is not None and info.error.type == "NonDeterminismError"
        assert "'charge'" in info.error.message and "'charge-card'" in info.error.message
        assert info.attempts == 1
        assert info.held is not None and info.held.reason == "nondeterminism"
        assert info.wake_at == env.now() + RECHECK
        assert [entry.kind for entry in env.history(run_id)] == [
            "step_completed",
            "step_completed",
            "sleep_started",
        ]
    assert effects == ["reserve", "charge"] * 3
    stats = {task.task_id: task for task in env.client.stats().tasks}
    assert stats[TASK].held == 3 and stats[TASK].last_hour.held == 3
    assert stats[TASK].last_hour.failed == 0
    table = format_stats(env.client.stats().to_dict()).splitlines()
    header = next(line.split() for line in table if line.startswith("TASK"))
    row = next(line.split() for line in table if line.startswith(TASK))
    assert header[-1] == "HELD" and row[-1] == "3"

    # when: the hold's recheck comes with v2 still deployed
    reads = LogReads(env, monkeypatch)
    handled_before = len(env.handled)
    held_wake = env.get(runs[0]).wake_at
    recheck(env)
    # then: each run is looked at without a replay: no log read, its wake-up moved on
    rechecks = env.handled[handled_before:]
    assert [handled for _, handled in rechecks] == [Handled.HELD] * 3
    assert reads.count == 0
    assert held_wake is not None and env.get(runs[0]).wake_at == env.now() + RECHECK
    assert env.get(runs[0]).waiting_for == HOLD_NONDETERMINISM
    assert env.client.stats().tasks[0].held == 3  # a recheck is no new hold

    # when: v3 (the rename behind ctx.patched) is deployed, at the next recheck
    env.deploy(v3(effects))
    reads.watch()
    recheck(env)
    # then: they go on from their log and complete; no completed step ran twice
    for run_id in runs:
        info = env.get(run_id)
        assert info.status is RunStatus.COMPLETED, (info.status, info.waiting_for, info.error)
        assert info.result == "shipped" and info.error is None and info.held is None
        assert env.store.get_run(run_id).held_code is None  # type: ignore[union-attr]
    assert reads.count == 3
    assert sorted(effects) == sorted(["reserve", "charge"] * 3 + ["ship"] * 3)


def test_a_run_whose_task_is_removed_is_held_until_the_task_is_back(
    env: TestEnvironment, effects: list[str]
) -> None:
    run_id = env.trigger(TASK).run_id
    env.run_until_idle()
    # when: a deploy without the task
    env.deploy(TaskRegistry())
    env.advance(timedelta(hours=1, seconds=1))
    info = env.get(run_id)
    assert (info.status, info.waiting_for) == (RunStatus.WAITING, HOLD_UNKNOWN_TASK)
    assert info.error is not None and info.error.type == "UnknownTaskError"
    assert info.held is not None and info.held.reason == "unknown-task"
    # a recheck without the task: held again, without an invocation of the run
    handled_before = len(env.handled)
    recheck(env)
    assert [handled for _, handled in env.handled[handled_before:]] == [Handled.HELD]
    # when: the task is deployed again
    env.deploy(v1(effects))
    recheck(env)
    info = env.get(run_id)
    assert info.status is RunStatus.COMPLETED and info.result == "shipped"
    assert effects == ["reserve", "charge", "ship"]


def test_an_event_for_a_held_run_waits_in_its_inbox_until_the_fix(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {"step": "prepare"}
    registry = TaskRegistry()

    @task(id="gate", registry=registry)
    def gate(ctx: Context, payload: Any) -> Any:
        ctx.step(names["step"], lambda: "ready")
        return ctx.wait_for_event("go", timeout=timedelta(days=1))

    with TestEnvironment(backend=backend, registry=registry) as env:
        run_id = env.trigger("gate").run_id
        env.run_until_idle()
        # given: a deploy renames the step; the event wakes the run, which is held
        names["step"] = "prepare-v2"
        renamed = TaskRegistry()
        task(id="gate", registry=renamed)(gate.fn)
        env.deploy(renamed)
        env.send_event(run_id, "go", {"n": 1})
        env.run_until_idle()
        assert env.get(run_id).waiting_for == HOLD_NONDETERMINISM
        # when: more wake-ups come (a second event, a duplicate message)
        reads = LogReads(env, monkeypatch)
        env.clock.set(env.now() + timedelta(seconds=1))  # the events in order
        env.send_event(run_id, "go", {"n": 2})
        env.send_raw(run_id, WakeReason.EVENT)
        env.run_until_idle()
        # then: none replays the run: the same code would diverge again
        assert reads.count == 0
        assert env.handled[-1][1] is Handled.HELD
        assert env.get(run_id).waiting_for == HOLD_NONDETERMINISM
        # when: the fix (the old name again) is deployed
        names["step"] = "prepare"
        fixed = TaskRegistry()

        @task(id="gate", registry=fixed)
        def gate_fixed(ctx: Context, payload: Any) -> Any:
            ctx.step("prepare", lambda: "ready")
            return ctx.wait_for_event("go", timeout=timedelta(days=1))

        env.deploy(fixed)
        recheck(env)
        info = env.get(run_id)
        # then: the event that was waiting is consumed
        assert info.status is RunStatus.COMPLETED and info.result == {"n": 1}


def test_a_held_child_keeps_its_parent_waiting_and_a_cancel_ends_both(
    registry: TaskRegistry,
) -> None:
    names = {"step": "work"}

    @task(id="child", registry=registry)
    def child(ctx: Context, payload: Any) -> str:
        ctx.step(names["step"], lambda: "done")
        ctx.sleep("nap", timedelta(minutes=10))
        return "child done"

    @task(id="parent", registry=registry)
    def parent(ctx: Context, payload: Any) -> Any:
        return ctx.invoke("child", None)

    with TestEnvironment(registry=registry) as env:
        parent_id = env.trigger("parent").run_id
        env.run_until_idle()
        names["step"] = "work-v2"  # the same registry: the code changed under the run
        env.worker.registry = TaskRegistry()
        task(id="child", registry=env.worker.registry)(child.fn)
        task(id="parent", registry=env.worker.registry)(parent.fn)
        env.advance(timedelta(minutes=11))
        children = [run for run in env.list(task_id="child").runs]
        assert len(children) == 1 and children[0].waiting_for == HOLD_NONDETERMINISM
        assert env.get(parent_id).status is RunStatus.WAITING
        assert env.get(parent_id).waiting_for == f"child:{children[0].run_id}"
        # a cancel of the parent ends the held child too
        env.cancel(parent_id)
        env.run_until_idle()
        assert env.get(parent_id).status is RunStatus.CANCELLED
        assert env.get(children[0].run_id).status is RunStatus.CANCELLED
        assert env.get(children[0].run_id).held is None


def test_the_code_fingerprint_follows_the_code_and_the_label(effects: list[str]) -> None:
    first, again, renamed = (
        registry.get(TASK) for registry in (v1(effects), v1(effects), v2(effects))
    )
    assert first.fingerprint("v1") == again.fingerprint("v1")  # the same code
    assert first.fingerprint("v1") != first.fingerprint("v2")  # another label
    assert first.fingerprint("v1") != renamed.fingerprint("v1")  # other code


def test_a_held_run_can_be_cancelled(env: TestEnvironment, effects: list[str]) -> None:
    run_id = env.trigger(TASK).run_id
    env.run_until_idle()
    env.deploy(v2(effects))
    env.advance(timedelta(hours=1))
    assert env.get(run_id).waiting_for == HOLD_NONDETERMINISM
    cancelled = env.cancel(run_id)
    assert cancelled.status is RunStatus.CANCELLED and cancelled.held is None
    recheck(env)  # its old wake-up finds it ended
    assert env.get(run_id).status is RunStatus.CANCELLED
    assert effects == ["reserve", "charge"]


def test_the_recheck_interval_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from durable.blobs.memory import MemoryBlobStore
    from durable.bootstrap import Runtime
    from durable.clock import VirtualClock
    from durable.queues.memory import MemoryWakeQueue
    from durable.settings import Settings
    from durable.storage.memory import MemoryRunStore

    monkeypatch.setenv("DURABLE_HOLD_RECHECK_SECONDS", "60")
    assert Settings().hold_recheck == timedelta(seconds=60)
    clock = VirtualClock()
    runtime = Runtime.from_parts(
        store=MemoryRunStore(), queue=MemoryWakeQueue(clock), blobs=MemoryBlobStore(), clock=clock
    )
    assert runtime.worker.config.hold_recheck == timedelta(seconds=60)
    monkeypatch.setenv("DURABLE_HOLD_RECHECK_SECONDS", "0")
    with pytest.raises(ValueError, match="hold_recheck_seconds"):
        Settings()


def _saga(undone: list[str], compensate_b: bool) -> TaskRegistry:
    """Steps a (undone by a flaky undo) and b (undone too when `compensate_b`), then a
    failure for good: the compensations run, newest first."""
    from durable import NonRetryableError

    registry = TaskRegistry()

    def undo_a(result: str) -> None:
        undone.append("undo-a")
        if undone.count("undo-a") == 1:
            raise RuntimeError("the undo service is down")

    def undo_b(result: str) -> None:
        undone.append("undo-b")

    if compensate_b:

        @task(id="saga", registry=registry)
        def saga_v2(ctx: Context, payload: Any) -> None:
            ctx.step("a", lambda: "a", compensate=undo_a)
            ctx.step("b", lambda: "b", compensate=undo_b)
            raise NonRetryableError("no car")

    else:

        @task(id="saga", registry=registry)
        def saga_v1(ctx: Context, payload: Any) -> None:
            ctx.step("a", lambda: "a", compensate=undo_a)
            ctx.step("b", lambda: "b")
            raise NonRetryableError("no car")

    return registry


def test_a_divergence_in_a_compensation_holds_the_run(backend: Backend) -> None:
    undone: list[str] = []
    with TestEnvironment(backend=backend, registry=_saga(undone, False)) as env:
        # given: the run failed for good; its undo of a failed once and waits for its retry
        run_id = env.trigger("saga").run_id
        env.run_until_idle()
        assert env.get(run_id).status is RunStatus.RETRYING and undone == ["undo-a"]
        # when: a deploy gives b a compensation: newest first, it comes where the log has a's
        env.deploy(_saga(undone, True))
        env.advance(timedelta(minutes=1))
        info = env.get(run_id)
        # then: held, not failed; no compensation ran
        assert (info.status, info.waiting_for) == (RunStatus.WAITING, HOLD_NONDETERMINISM)
        assert info.error is not None and "compensate:b" in info.error.message
        assert undone == ["undo-a"]
        # when: the code that recorded it is deployed again
        env.deploy(_saga(undone, False))
        recheck(env)
        info = env.run_until_complete(run_id)
        # then: the compensation is retried and the run ends as designed
        assert info.status is RunStatus.FAILED and info.error is not None
        assert info.error.type == "NonRetryableError"
        assert undone == ["undo-a", "undo-a"]
