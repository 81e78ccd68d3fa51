"""A trigger whose idempotency key has expired, crashed at every AWS call it makes.

The key started a run a day and more ago; the trigger now starts a new run under it (the
store replaces the expired claim in the transaction that creates the run). For each call k
of an uncrashed trigger and both sides of it, a fresh environment dies right there; the
caller retries, as API callers do, and production recovers the rest (SQS redelivery, the
sweeper). Every time: exactly one new run, completed; the old run as it was; the key
naming the new run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from durable import Context, TaskRegistry, task
from durable.faults import Faults, When
from durable.records import RunStatus
from durable.testing import Backend, MotoBackend, TestEnvironment

from .conftest import Production, crash_sides

KEY = "order-7"


def registry() -> TaskRegistry:
    made = TaskRegistry()

    @task(id="echo", registry=made)
    def echo(ctx: Context, payload: Any) -> Any:
        return ctx.step("echo", lambda: payload)

    return made


def play(
    backend: Backend, crash: tuple[int, When] | None, moto: MotoBackend | None
) -> dict[str, Any]:
    faults = Faults()
    with TestEnvironment(backend=backend, registry=registry(), faults=faults, moto=moto) as env:
        with faults.paused():  # the old run, a day and an hour ago
            old = env.trigger("echo", "old", idempotency_key=KEY)
            env.run_until_idle()
            old_run = env.get(old.run_id)
            env.clock.advance(timedelta(hours=25))
        if crash is not None:
            faults.crash(*crash)
        production = Production(env)
        handle = production.call(lambda: env.trigger("echo", "new", idempotency_key=KEY))
        production.run(lambda: [handle.run_id])
        calls = faults.calls
        with faults.paused():
            runs = env.list(limit=100).runs
            again = env.trigger("echo", "new", idempotency_key=KEY)
            return {
                "calls": calls,
                "runs": len(runs),
                "old_unchanged": env.get(old.run_id) == old_run,
                "new_status": env.get(handle.run_id).status,
                "new_is_new": handle.run_id != old.run_id,
                "key_names_new": (again.run_id, again.created) == (handle.run_id, False),
                "retries": production.caller_retries,
            }


EXPECTED = {
    "runs": 2,
    "old_unchanged": True,
    "new_status": RunStatus.COMPLETED,
    "new_is_new": True,
    "key_names_new": True,
}


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    with MotoBackend() as backend:
        yield backend


@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_a_crash_at_any_call_of_a_trigger_with_an_expired_key_makes_one_new_run(
    backend: Backend, moto: MotoBackend
) -> None:
    reference = play(backend, None, moto if backend == "moto" else None)
    assert {key: reference[key] for key in EXPECTED} == EXPECTED
    tried = 0
    problems = []
    for call in range(1, reference["calls"] + 1):
        for when in crash_sides(call, backend):
            outcome = play(backend, (call, when), moto if backend == "moto" else None)
            tried += 1
            seen = {key: outcome[key] for key in EXPECTED}
            if seen != EXPECTED:
                problems.append(f"crash {when} call {call}: {seen}")
    print(f"\nexpired-key trigger ({backend}): calls={reference['calls']} tried={tried}")
    assert problems == []
    sides = sum(len(crash_sides(call, backend)) for call in range(1, reference["calls"] + 1))
    assert tried == sides >= reference["calls"] > 0
