"""Duplicate, late and reordered delivery: every message three times, a late copy of each,
their order shuffled by random delays. Not one side effect runs twice."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from durable import TaskRegistry
from durable.records import WakeUp
from durable.testing import Backend, MotoBackend, TestEnvironment

from .conftest import Production
from .workflows import PAYLOADS, REFERENCE_TASKS, Effects, outside_world, register


def chaotic(env: TestEnvironment, seed: int) -> None:
    """Make the queue deliver each message 3 times within seconds, plus once up to 15
    minutes late: SQS's at-least-once, out of order."""
    rng = random.Random(seed)
    send = env.queue.send

    def send_chaotically(message: WakeUp, delay: timedelta = timedelta(0)) -> None:
        for _ in range(3):
            jitter = timedelta(milliseconds=rng.randrange(0, 5000))
            send(message, min(delay + jitter, env.queue.max_delay))
        late = timedelta(seconds=rng.randrange(60, 900))
        send(message, min(delay + late, env.queue.max_delay))

    env.queue.send = send_chaotically  # type: ignore[method-assign]


def play(task_id: str, backend: Backend, chaos: int | None, moto: MotoBackend | None) -> dict:
    registry = TaskRegistry()
    effects = Effects()
    register(registry, effects)
    with TestEnvironment(backend=backend, registry=registry, moto=moto) as env:
        if chaos is not None:
            chaotic(env, chaos)
        production = Production(env)
        handle = env.trigger(task_id, PAYLOADS.get(task_id), idempotency_key="once")
        production.run(lambda: [handle.run_id], outside=outside_world(effects, handle.run_id))
        production.run(lambda: [run.run_id for run in env.list(limit=100).runs])
        env.advance(timedelta(minutes=30))  # every late copy is delivered, to a finished run
        assert len(env.queue) == 0
        info = env.get(handle.run_id)
        result = info.result
        if isinstance(result, dict):
            result = {key: value for key, value in result.items() if key != "at"}
        runs = sorted(run.task_id for run in env.list(limit=100).runs)
        return {
            "status": str(info.status),
            "result": result,
            "runs": runs,
            "effects": sorted(step.split(":")[0] for _, step, _ in effects.log),
            "delivered": env.invocations,
        }


@pytest.fixture(scope="module")
def moto() -> MotoBackend:
    with MotoBackend() as backend:
        yield backend


@pytest.mark.parametrize("backend", ["memory", "moto"])
@pytest.mark.parametrize("task_id", REFERENCE_TASKS)
def test_duplicate_late_and_reordered_messages_change_nothing(
    task_id: str, backend: Backend, moto: MotoBackend
) -> None:
    shared = moto if backend == "moto" else None
    calm = play(task_id, backend, None, shared)
    for seed in range(3):
        stormy = play(task_id, backend, seed, shared)
        assert stormy["delivered"] > 3 * calm["delivered"]  # the storm did happen
        # same end, same runs (no duplicate child), each side effect exactly as often
        assert {key: stormy[key] for key in ("status", "result", "runs", "effects")} == {
            key: calm[key] for key in ("status", "result", "runs", "effects")
        }
