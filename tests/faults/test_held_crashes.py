"""Crash at every AWS call of the invocation that holds a run, and of `resume_run`.

The run (reserve, charge, an hour's sleep, ship) was recorded by v1; v2 renames the charge
step. For each call k of the uncrashed phase and both sides of it, a fresh environment
dies there (`SimulatedCrash`), then recovers as production does (SQS redelivery after the
lease, the sweeper, callers retrying). The run must never fail nor be lost: it ends held
(WAITING fix:nondeterminism), and once v3 (the rename behind `ctx.patched`) is deployed it
completes, with no completed step run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from durable.faults import Faults, When
from durable.records import HOLD_NONDETERMINISM, RunStatus
from durable.testing import Backend, MotoBackend, TestEnvironment
from tests.unit.test_held_runs import TASK, v1, v2, v3

from .conftest import Production, crash_sides

Phase = Callable[[TestEnvironment, Production, str], None]


def _hold(env: TestEnvironment, production: Production, run_id: str) -> None:
    """The sleep ends under v2: the invocation that holds the run."""
    env.advance(timedelta(hours=1))


def _resume(env: TestEnvironment, production: Production, run_id: str) -> None:
    """v3 is deployed, then an operator resumes the held run (retrying what fails)."""
    production.call(lambda: env.resume(run_id, by="test:ops"))


def play(
    phase: Phase, backend: Backend, moto: MotoBackend | None, crash: tuple[int, When] | None
) -> tuple[int, list[str]]:
    """The phase's AWS calls when uncrashed, and what went wrong (empty: nothing)."""
    effects: list[str] = []
    faults = Faults()
    found: list[str] = []
    with TestEnvironment(backend=backend, registry=v1(effects), faults=faults, moto=moto) as env:
        with faults.paused():
            run_id = env.trigger(TASK).run_id
            env.run_until_idle()
            env.deploy(v2(effects))
            if phase is _resume:
                env.advance(timedelta(hours=1))
                env.deploy(v3(effects))
        before = faults.calls
        if crash is not None:
            faults.crash(before + crash[0], crash[1])
        production = Production(env)
        phase(env, production, run_id)
        calls = faults.calls - before
        if phase is _hold:
            # recovery as production has it, for as long as a lease and a few sweeps take
            production.run(lambda: [run_id], max_time=timedelta(hours=1))
            info = env.get(run_id)
            if (info.status, info.waiting_for) != (RunStatus.WAITING, HOLD_NONDETERMINISM):
                found.append(f"after the hold: {info.status} {info.waiting_for} {info.error}")
            env.deploy(v3(effects))
        production.run(lambda: [run_id], max_time=timedelta(days=1))
        info = env.get(run_id)
        if info.status is not RunStatus.COMPLETED or info.result != "shipped":
            found.append(f"ended {info.status} {info.waiting_for} {info.error}")
        if sorted(effects) != ["charge", "reserve", "ship"]:
            found.append(f"side effects {effects}")
        if phase is _resume and not any(e.kind == "run_action" for e in env.history(run_id)):
            found.append("no audit entry")
    return calls, found


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    with MotoBackend() as backend:
        yield backend


@pytest.mark.parametrize("phase", [_hold, _resume], ids=["holding-invocation", "resume"])
@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_a_crash_at_any_call_never_fails_nor_loses_a_held_run(
    phase: Phase, backend: Backend, moto: MotoBackend
) -> None:
    shared = moto if backend == "moto" else None
    calls, found = play(phase, backend, shared, None)
    assert found == []
    assert calls > 0
    problems: list[str] = []
    tried = 0
    for call in range(1, calls + 1):
        for when in crash_sides(call, backend):
            _, found = play(phase, backend, shared, (call, when))
            tried += 1
            problems.extend(f"crash {when} call {call}: {problem}" for problem in found)
    print(f"\nheld-run crash points ({phase.__name__[1:]}, {backend}): {tried} tried")
    assert problems == []
