"""Crash at every AWS call of a retry and of a fork (`durable.services.repair`), then let the
caller make the call again, as an API client retries a 5xx or a dropped line: one retry
boundary, the run completes once with no completed step run again; one fork run.

Recovery is only what production has (`Production`: SQS redelivery, the sweeper, callers
retrying); the crash is injected into the repair call alone, after the run has failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from durable import Context, RetryPolicy, RunStatus, TaskRegistry, task
from durable.faults import Faults, When
from durable.records import CheckpointKind
from durable.testing import Backend, MotoBackend, TestEnvironment

from .conftest import Production, crash_sides


@dataclass
class World:
    calls: dict[str, int] = field(default_factory=dict)
    broken: bool = True

    def effect(self, name: str) -> str:
        self.calls[name] = self.calls.get(name, 0) + 1
        if name == "s3" and self.broken:
            raise RuntimeError("step 3 is broken")
        return name


def _registry(world: World) -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="five", registry=registry, retry=RetryPolicy(max_attempts=1))
    def five(ctx: Context, payload: None) -> list[str]:
        return [
            ctx.step(name, world.effect, name, retry=RetryPolicy(max_attempts=1))
            for name in ("s1", "s2", "s3", "s4", "s5")
        ]

    return registry


@dataclass
class Played:
    calls: int  # AWS calls the repair made (uncrashed)
    status: str
    world: World
    boundaries: int
    runs: int
    fork_status: str | None = None


def play(
    action: str,
    backend: Backend,
    moto: MotoBackend | None,
    crash: tuple[int, When] | None = None,
) -> Played:
    """Fail a run, then retry or fork it (crashing at the `crash`-th call of that), the caller
    making the call again until it answers; run everything to its end."""
    world = World()
    faults = Faults()
    with TestEnvironment(
        backend=backend, registry=_registry(world), faults=faults, moto=moto
    ) as env:
        production = Production(env)
        handle = production.call(lambda: env.trigger("five", idempotency_key="one"))
        production.run(lambda: [handle.run_id])
        with faults.paused():
            assert env.get(handle.run_id).status == RunStatus.FAILED
        world.broken = False
        before = faults.calls
        if crash is not None:
            faults.crash(before + crash[0], crash[1])
        if action == "retry":
            production.call(lambda: env.client.retry(handle.run_id, by="test"))
            repaired = handle.run_id
        else:
            repaired = production.call(
                lambda: env.client.fork(handle.run_id, 2, by="test", idempotency_key="f")
            ).run_id
        calls = faults.calls - before
        production.run(lambda: [run.run_id for run in env.list(limit=100).runs])
        with faults.paused():
            log = env.store.load_history(handle.run_id)
            boundaries = sum(
                1 for cp in log if cp.kind is CheckpointKind.RUN_ACTION and cp.name == "retry"
            )
            runs = env.list(limit=100).runs
            return Played(
                calls=calls,
                status=str(env.get(handle.run_id).status),
                world=world,
                boundaries=boundaries,
                runs=len(runs),
                fork_status=str(env.get(repaired).status) if action == "fork" else None,
            )


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    with MotoBackend() as backend:
        yield backend


@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_a_crash_at_any_call_of_a_retry_makes_one_retry(
    backend: Backend, moto: MotoBackend
) -> None:
    shared = moto if backend == "moto" else None
    reference = play("retry", backend, shared)
    assert (reference.status, reference.boundaries) == ("COMPLETED", 1)
    print(f"\nretry_run on {backend}: {reference.calls} AWS calls, each crashed")
    problems = []
    for call in range(1, reference.calls + 1):
        for when in crash_sides(call, backend):
            played = play("retry", backend, shared, (call, when))
            calls = played.world.calls
            if (played.status, played.boundaries, played.runs) != ("COMPLETED", 1, 1):
                problems.append(f"{when} {call}: {played.status} {played.boundaries} retries")
            if calls != {"s1": 1, "s2": 1, "s3": 2, "s4": 1, "s5": 1}:
                problems.append(f"{when} {call}: steps ran {calls}")
    assert problems == []


@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_a_crash_at_any_call_of_a_fork_makes_one_fork(backend: Backend, moto: MotoBackend) -> None:
    shared = moto if backend == "moto" else None
    reference = play("fork", backend, shared)
    assert (reference.fork_status, reference.runs) == ("COMPLETED", 2)
    print(f"\nfork_run on {backend}: {reference.calls} AWS calls, each crashed")
    problems = []
    for call in range(1, reference.calls + 1):
        for when in crash_sides(call, backend):
            played = play("fork", backend, shared, (call, when))
            calls = played.world.calls
            if (played.fork_status, played.runs, played.status) != ("COMPLETED", 2, "FAILED"):
                problems.append(f"{when} {call}: fork {played.fork_status}, {played.runs} runs")
            # the fork copied s1 and s2: they never ran again
            if calls != {"s1": 1, "s2": 1, "s3": 2, "s4": 1, "s5": 1}:
                problems.append(f"{when} {call}: steps ran {calls}")
    assert problems == []
