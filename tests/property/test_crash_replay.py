"""Property: random programs x random crash points end exactly as an uncrashed run does.

A program is a random sequence of durable operations (steps, flaky steps with retries,
sleeps, recorded values, waits for events sent up front, and one task-level failure).
Each step may crash its invocation (a `SimulatedCrash`, like a power cut) before or after
its side effect, on its first execution only. Whatever the crashes, the run completes
with the same result as the uncrashed run, every side effect happened, and a side effect
ran twice only when its own invocation died after it and before its checkpoint.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durable import Context, RetryPolicy, RunStatus, TaskRegistry, task
from durable.testing import Backend, MotoBackend, SimulatedCrash, TestEnvironment


@dataclass(frozen=True)
class Op:
    kind: str  # step | flaky | sleep | value | wait | fail_task | child | map
    crash: str  # none | before | after  (steps, and the steps of child runs)
    amount: int


ops = st.builds(
    Op,
    kind=st.sampled_from(
        ["step", "step", "flaky", "sleep", "value", "wait", "fail_task", "child", "map"]
    ),
    crash=st.sampled_from(["none", "none", "before", "after"]),
    amount=st.integers(min_value=1, max_value=3),
)


def child_key(index: int, item: int) -> int:
    """The effect key of item `item` of the child run(s) started by op `index`."""
    return 1000 + index * 100 + item


class World:
    """Side effects of the program, and which crashes are still to happen."""

    def __init__(self, program: list[Op], crashes: bool) -> None:
        self.effects: Counter[str] = Counter()
        # a child's step crashes like the op that started it (keyed by child_key)
        self.pending_crashes = {
            (child_key(index, item) if op.kind in ("child", "map") else index): op.crash
            for index, op in enumerate(program)
            if crashes and op.crash != "none"
            for item in (range(op.amount + 1) if op.kind == "map" else [0])
        }
        self.flaky_failures: Counter[int] = Counter()
        self.task_failed: set[int] = set()

    def effect(self, index: int, kind: str) -> int:
        crash = self.pending_crashes.pop(index, "none")
        if crash == "before":
            raise SimulatedCrash(f"crash before op {index}")
        self.effects[f"{kind}-{index}"] += 1
        if crash == "after":
            raise SimulatedCrash(f"crash after op {index}")
        return index * 10

    def flaky(self, index: int, failures: int) -> int:
        if self.flaky_failures[index] < failures:
            self.flaky_failures[index] += 1
            raise ConnectionError(f"op {index} flaked")
        return self.effect(index, "flaky")


def build(registry: TaskRegistry, program: list[Op], world: World) -> None:
    @task(id="program-child", registry=registry)
    def child(ctx: Context, payload: list[int]) -> int:
        index, item = payload
        ctx.sleep("think", timedelta(seconds=item))
        return int(ctx.step("child-work", world.effect, child_key(index, item), "child"))

    @task(
        id="program", registry=registry, retry=RetryPolicy(max_attempts=16)
    )  # > one failure per op
    def run_program(ctx: Context, payload: None) -> list[Any]:
        results: list[Any] = []
        for index, op in enumerate(program):
            if op.kind == "step":
                results.append(ctx.step(f"step-{index}", world.effect, index, "step"))
            elif op.kind == "flaky":
                policy = RetryPolicy(max_attempts=op.amount + 1, min_delay=timedelta(seconds=1))
                results.append(
                    ctx.step(f"flaky-{index}", world.flaky, index, op.amount, retry=policy)
                )
            elif op.kind == "sleep":
                ctx.sleep(f"sleep-{index}", timedelta(minutes=op.amount * 7))
            elif op.kind == "value":
                results.append(ctx.uuid4().hex[:0] + "value")
            elif op.kind == "child":
                results.append(ctx.invoke("program-child", [index, 0]))
            elif op.kind == "map":
                items = [[index, item] for item in range(op.amount + 1)]
                results.append(ctx.map("program-child", items, max_concurrency=2))
            elif op.kind == "wait":
                results.append(ctx.wait_for_event(f"event-{index}"))
            elif op.kind == "fail_task" and index not in world.task_failed:
                world.task_failed.add(index)
                raise RuntimeError(f"task failed at op {index}")
        return results


def execute(
    program: list[Op], crashes: bool, moto: MotoBackend | None = None
) -> tuple[Any, World, TestEnvironment]:
    registry = TaskRegistry()
    world = World(program, crashes)
    build(registry, program, world)
    backend: Backend = "moto" if moto is not None else "memory"
    with TestEnvironment(
        backend=backend, registry=registry, lease=timedelta(minutes=1), moto=moto
    ) as env:
        run = env.trigger("program")
        for index, op in enumerate(program):
            if op.kind == "wait":
                env.send_event(run.run_id, f"event-{index}", {"event": index})
        info = env.run_until_complete(run.run_id)
        assert info.status == RunStatus.COMPLETED, info.error
        return info.result, world, env


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=st.lists(ops, min_size=1, max_size=12))
def test_crashes_change_nothing_but_duplicate_unsaved_effects(program: list[Op]) -> None:
    check(program, None)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    with MotoBackend() as backend:
        yield backend


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(program=st.lists(ops, min_size=1, max_size=8))
def test_the_same_holds_on_moto(program: list[Op], moto: MotoBackend) -> None:
    check(program, moto)


def check(program: list[Op], moto: MotoBackend | None) -> None:
    expected, clean_world, _ = execute(program, crashes=False, moto=moto)
    result, world, env = execute(program, crashes=True, moto=moto)

    assert result == expected
    assert set(world.effects) == set(clean_world.effects)
    for index, op in enumerate(program):
        names = [f"step-{index}", f"flaky-{index}"]
        names += [f"child-{child_key(index, item)}" for item in range(op.amount + 1)]
        for name in names:
            if name in world.effects:
                allowed = 2 if op.crash == "after" else 1
                assert world.effects[name] <= allowed, (name, world.effects[name])
    crashing = sum(
        (op.amount + 1 if op.kind == "map" else 1)
        for op in program
        if op.kind in ("step", "flaky", "child", "map") and op.crash in ("before", "after")
    )
    assert env.crashes <= crashing
