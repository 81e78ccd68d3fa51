"""Rerun and fork (`durable.services.repair`), on memory and moto: new runs linked to their
original both ways, a fork starting from a copy of the original's first entries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from durable import Context, RetryPolicy, RunStatus, TaskRegistry, task
from durable.errors import (
    IdempotencyConflictError,
    InvalidForkPointError,
    ParentWaitsError,
    PayloadValidationError,
)
from durable.records import CheckpointKind
from durable.services.audit import action_details
from durable.testing import TestEnvironment


@pytest.fixture(params=["memory", "moto"])
def backend_env(
    request: pytest.FixtureRequest, registry: TaskRegistry
) -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=registry, backend=request.param) as environment:
        yield environment


class World:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.broken = True

    def effect(self, name: str, value: Any) -> Any:
        self.calls[name] = self.calls.get(name, 0) + 1
        if name == "s3" and self.broken:
            raise RuntimeError("step 3 is broken")
        return [name, value]


def _tasks(registry: TaskRegistry, world: World) -> None:
    @task(id="five", registry=registry, retry=RetryPolicy(max_attempts=1))
    def five(ctx: Context, payload: dict[str, int]) -> list[Any]:
        return [
            ctx.step(name, world.effect, name, payload["n"], retry=RetryPolicy(max_attempts=1))
            for name in ("s1", "s2", "s3", "s4", "s5")
        ]


def _actions(env: TestEnvironment, run_id: str) -> list[tuple[str, dict[str, object]]]:
    return [
        (cp.name, action_details(cp))
        for cp in env.store.load_history(run_id)
        if cp.kind is CheckpointKind.RUN_ACTION
    ]


def test_a_rerun_is_a_new_run_with_the_same_payload_linked_both_ways(
    registry: TaskRegistry, backend_env: TestEnvironment
) -> None:
    env, world = backend_env, World()
    _tasks(registry, world)
    original = env.trigger("five", {"n": 7})
    assert env.run_until_complete(original.run_id).status == RunStatus.FAILED

    world.broken = False
    rerun = env.client.rerun(original.run_id, by="jwt:u-1")
    assert rerun.run_id != original.run_id
    assert rerun.payload == {"n": 7}
    assert rerun.to_dict()["origin"] == {"kind": "rerun", "run_id": original.run_id}
    info = env.run_until_complete(rerun.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.origin == f"rerun:{original.run_id}"  # kept by the store through the run
    assert world.calls == {"s1": 2, "s2": 2, "s3": 2, "s4": 1, "s5": 1}  # all of it again
    assert _actions(env, rerun.run_id) == [("rerun", {"by": "jwt:u-1", "run_id": original.run_id})]
    assert _actions(env, original.run_id) == [("rerun", {"by": "jwt:u-1", "run_id": rerun.run_id})]
    assert env.get(original.run_id).status == RunStatus.FAILED  # the original is untouched


def test_a_rerun_with_a_key_is_made_once(registry: TaskRegistry, env: TestEnvironment) -> None:
    world = World()
    _tasks(registry, world)
    original = env.trigger("five", {"n": 1})
    env.run_until_complete(original.run_id)
    first = env.client.rerun(original.run_id, idempotency_key="k1")
    again = env.client.rerun(original.run_id, idempotency_key="k1")
    other = env.client.rerun(original.run_id)
    assert again.run_id == first.run_id != other.run_id
    assert len(_actions(env, original.run_id)) == 2
    # the key of another run's rerun is that run's
    second = env.trigger("five", {"n": 2})
    assert env.client.rerun(second.run_id, idempotency_key="k1").run_id != first.run_id


def test_a_rerun_of_a_payload_todays_task_refuses_is_422(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="typed", registry=registry)
    def typed(ctx: Context, payload: Any) -> Any:
        return payload

    run = env.trigger("typed", {"old": "text"})
    env.run_until_complete(run.run_id)

    deployed = TaskRegistry()  # today's code: the payload is now a mapping of ints

    @task(id="typed", registry=deployed)
    def typed(ctx: Context, payload: dict[str, int]) -> Any:  # noqa: F811
        return payload

    env.client.registry = deployed

    with pytest.raises(PayloadValidationError):
        env.client.rerun(run.run_id)
    assert len(env.list(task_id="typed").runs) == 1


def test_a_fork_copies_the_first_entries_and_runs_the_rest(
    registry: TaskRegistry, backend_env: TestEnvironment
) -> None:
    env, world = backend_env, World()
    _tasks(registry, world)
    original = env.trigger("five", {"n": 3})
    env.run_until_complete(original.run_id)
    world.broken = False
    # s1 and s2 completed: entries 1 and 2
    fork = env.client.fork(original.run_id, 2, by="iam:arn:aws:iam::1:user/ada")
    assert fork.to_dict()["origin"] == {
        "kind": "fork",
        "run_id": original.run_id,
        "from_step": 2,
    }
    info = env.run_until_complete(fork.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.origin == f"fork:{original.run_id}@2"
    assert info.result == [["s1", 3], ["s2", 3], ["s3", 3], ["s4", 3], ["s5", 3]]
    assert world.calls == {"s1": 1, "s2": 1, "s3": 2, "s4": 1, "s5": 1}
    log = env.store.load_history(fork.run_id)
    assert [cp.seq for cp in log] == list(range(1, len(log) + 1))
    assert [(cp.name, cp.task_attempt) for cp in log[:2]] == [("s1", 1), ("s2", 1)]
    assert log[2].kind is CheckpointKind.RUN_ACTION
    assert _actions(env, original.run_id) == [
        ("fork", {"by": "iam:arn:aws:iam::1:user/ada", "run_id": fork.run_id, "from_step": 2})
    ]


def test_a_fork_from_a_step_name_starts_before_its_first_entry(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    world = World()
    _tasks(registry, world)
    original = env.trigger("five", {"n": 3})
    env.run_until_complete(original.run_id)
    world.broken = False
    fork = env.client.fork(original.run_id, "s2")
    assert fork.to_dict()["origin"]["from_step"] == 1
    assert env.run_until_complete(fork.run_id).status == RunStatus.COMPLETED
    assert world.calls == {"s1": 1, "s2": 2, "s3": 2, "s4": 1, "s5": 1}


def test_a_cut_inside_an_operation_is_refused_with_the_valid_ones(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="once", registry=registry)
    def once(ctx: Context, payload: None) -> Any:
        first = ctx.step("a", lambda: 1)
        child = ctx.invoke("leaf", None)
        second = ctx.step("b", lambda: 2, semantics="at_most_once")
        return [first, child, second]

    @task(id="leaf", registry=registry)
    def leaf(ctx: Context, payload: None) -> int:
        return 9

    run = env.trigger("once")
    assert env.run_until_complete(run.run_id).result == [1, 9, 2]
    kinds = [(cp.seq, cp.kind) for cp in env.store.load_history(run.run_id)]
    # a, child started, child completed, b started, b completed
    assert [k for _, k in kinds] == [
        CheckpointKind.STEP_COMPLETED,
        CheckpointKind.CHILD_STARTED,
        CheckpointKind.CHILD_COMPLETED,
        CheckpointKind.STEP_STARTED,
        CheckpointKind.STEP_COMPLETED,
    ]
    for cut, valid in ((2, [0, 1, 3, 5]), (4, [0, 1, 3, 5])):
        with pytest.raises(InvalidForkPointError) as refused:
            env.client.fork(run.run_id, cut)
        assert refused.value.valid == valid
    with pytest.raises(InvalidForkPointError):
        env.client.fork(run.run_id, 6)
    with pytest.raises(InvalidForkPointError):
        env.client.fork(run.run_id, "no-such-step")
    assert len(env.list(task_id="once").runs) == 1  # nothing was started

    # after the child's end: the fork never looks at the original's child
    fork = env.client.fork(run.run_id, 3)
    assert env.run_until_complete(fork.run_id).result == [1, 9, 2]
    assert len(env.list(task_id="leaf").runs) == 1


def test_a_fork_with_a_key_is_made_once(registry: TaskRegistry, env: TestEnvironment) -> None:
    world = World()
    _tasks(registry, world)
    original = env.trigger("five", {"n": 3})
    env.run_until_complete(original.run_id)
    first = env.client.fork(original.run_id, 1, idempotency_key="f")
    assert env.client.fork(original.run_id, 1, idempotency_key="f").run_id == first.run_id
    with pytest.raises(IdempotencyConflictError):
        env.client.fork(original.run_id, 2, idempotency_key="f")  # the key, another cut


def test_a_fork_never_copies_a_fan_out_or_an_open_callback(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="item", registry=registry)
    def item(ctx: Context, payload: int) -> int:
        return payload * 2

    @task(id="fans", registry=registry)
    def fans(ctx: Context, payload: None) -> Any:
        first = ctx.step("a", lambda: 1)
        doubled = list(ctx.map("item", [1, 2]))
        token = ctx.create_callback("answer")
        ctx.step("hand-out", lambda t: None, token)
        answer = ctx.wait_for_callback("answer", token=token)
        return [first, doubled, answer]

    run = env.trigger("fans")
    env.run_until_complete(run.run_id)
    log = env.store.load_history(run.run_id)
    created = next(cp.seq for cp in log if cp.kind is CheckpointKind.CALLBACK_CREATED)
    token = next(cp.value for cp in log if cp.kind is CheckpointKind.CALLBACK_CREATED)
    assert token is not None
    env.complete_callback(json.loads(token), "yes")
    assert env.run_until_complete(run.run_id).result == [1, [2, 4], "yes"]
    log = env.store.load_history(run.run_id)

    with pytest.raises(InvalidForkPointError) as fan_out:
        env.client.fork(run.run_id, created - 1)  # after the batch's end
    assert "fan-out" in str(fan_out.value)
    assert fan_out.value.valid == [0, 1]  # before the batch only
    with pytest.raises(InvalidForkPointError):
        env.client.fork(run.run_id, len(log))  # the whole log: past the fan-out too
    fork = env.client.fork(run.run_id, "map:item")  # from before the fan-out: run again
    assert env.run_until_complete(fork.run_id).waiting_for is not None  # a new callback
    assert len(env.list(task_id="item").runs) == 4

    @task(id="calls-back", registry=registry)
    def calls_back(ctx: Context, payload: None) -> Any:
        token = ctx.create_callback("answer")
        ctx.step("hand-out", lambda t: None, token)
        return ctx.wait_for_callback("answer", token=token)

    waits = env.trigger("calls-back")
    env.run_until_complete(waits.run_id)
    with pytest.raises(InvalidForkPointError) as open_callback:
        env.client.fork(waits.run_id, 2)  # created and handed out, not answered
    assert "callback 'answer'" in str(open_callback.value)
    assert open_callback.value.valid == [0]


def test_a_batch_child_whose_parent_waits_is_refused(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="bad-item", registry=registry, retry=RetryPolicy(max_attempts=1))
    def bad_item(ctx: Context, payload: int) -> int:
        raise ValueError("no")

    @task(id="fan", registry=registry)
    def fan(ctx: Context, payload: None) -> Any:
        results = ctx.map("bad-item", [1], tolerated_failures=1)
        return ctx.wait_for_event(f"after-{len(results)}")

    run = env.trigger("fan")
    env.run_until_complete(run.run_id)
    [child] = env.list(task_id="bad-item").runs
    assert child.status == RunStatus.FAILED
    with pytest.raises(ParentWaitsError):
        env.client.retry(child.run_id)
