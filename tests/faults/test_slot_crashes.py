"""Queue slots under crashes and a delivery storm (`durable.services.slots`).

Two runs share a queue of concurrency 1 that releases its slot on waits: each runs a
step, sleeps 30 minutes (giving its slot back), takes a slot again and runs a step, twice.
So the uncrashed play acquires slots at starts and wakes, writes waiter items, releases
on waits and at ends, and wakes waiters. For each AWS call k of it and both sides of it
(`crash_sides`), a fresh environment dies there (`SimulatedCrash`) and recovers as
production does (SQS redelivery after the lease, the sweeper, nothing else). Then, and
under every message delivered three times plus a late copy:

- every run completes (none lost, none failed), each step checkpointed once;
- no step ever runs in a run that does not hold a slot, and never more holders than 1;
- once all is done no slot is held and no run waits (no leak);
- a slot a crash left with a sleeping run is not kept for its 30 minutes: the runs end
  at most 15 minutes (a lease of 2, a slot's recheck, sweeps every 5) after they do
  uncrashed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from durable import Context, Queue, TaskRegistry, task
from durable.faults import Faults, When
from durable.records import RunStatus
from durable.testing import Backend, MotoBackend, TestEnvironment

from .conftest import Production, crash_sides
from .test_delivery import chaotic

QUEUE = Queue("slots", concurrency=1)
RUNS = 2
SLEEP = timedelta(minutes=30)
LEASE = timedelta(minutes=2)
SWEEP_EVERY = timedelta(minutes=5)  # fewer calls per play than the template's minute
# How much later than uncrashed a crashed play may end: a lease, a slot's recheck and
# sweeps; less than the sleep, so that a slot kept by a sleeping run is seen.
LATE = timedelta(minutes=15)


def _registry(env_box: list[TestEnvironment], faults: Faults, problems: list[str]) -> TaskRegistry:
    registry = TaskRegistry()

    def inside(run_id: str, where: str) -> str:
        with faults.paused():  # the check's reads are no calls of the play
            holders = env_box[0].store.slot_holders(QUEUE.name, None)
        if run_id not in holders:
            problems.append(f"{run_id} ran {where} without a slot (holders {sorted(holders)})")
        if len(holders) > 1:
            problems.append(f"{len(holders)} holders at {where}")
        return where

    @task(id="slotted", registry=registry, queue=QUEUE)
    def slotted(ctx: Context, payload: Any) -> Any:
        ctx.step("first", inside, ctx.run.id, "first")
        ctx.sleep("pause", SLEEP)
        ctx.step("middle", inside, ctx.run.id, "middle")
        ctx.sleep("pause-again", SLEEP)  # a crash here leaves a slot that no redelivery frees
        return ctx.step("last", inside, ctx.run.id, "last")

    return registry


def play(
    backend: Backend,
    moto: MotoBackend | None,
    crash: tuple[int, When] | None = None,
    storm: int | None = None,
) -> tuple[int, timedelta, list[str]]:
    """The play's AWS calls when uncrashed, how long its runs took to end, and what went
    wrong (empty: nothing)."""
    faults = Faults()
    problems: list[str] = []
    box: list[TestEnvironment] = []
    registry = _registry(box, faults, problems)
    with TestEnvironment(
        backend=backend, registry=registry, faults=faults, moto=moto, lease=LEASE
    ) as env:
        box.append(env)
        if storm is not None:
            chaotic(env, storm)
        with faults.paused():
            run_ids = []
            for n in range(RUNS):
                env.clock.set(env.now() + timedelta(milliseconds=1))
                run_ids.append(env.trigger("slotted", n).run_id)
        start = env.now()
        before = faults.calls
        if crash is not None:
            faults.crash(before + crash[0], crash[1])
        production = Production(env, SWEEP_EVERY)
        production.run(lambda: run_ids, max_time=timedelta(days=1))
        calls = faults.calls - before
        took = timedelta(0)
        with faults.paused():
            env.advance(timedelta(minutes=30))  # late copies, to finished runs
            for run_id in run_ids:
                info = env.get(run_id)
                if info.status is not RunStatus.COMPLETED:
                    problems.append(f"{run_id} ended {info.status} {info.waiting_for} {info.error}")
                    continue
                took = max(took, (info.finished_at or start) - start)
                steps = [e.name for e in env.history(run_id) if e.kind == "step_completed"]
                if steps != ["first", "middle", "last"]:
                    problems.append(f"{run_id} steps {steps}")
            holders = env.store.slot_holders(QUEUE.name, None)
            waiting = env.store.count_waiters(QUEUE.name, None, 100)
            if holders or waiting:
                problems.append(f"left behind: holders {sorted(holders)}, {waiting} waiting")
    return calls, took, problems


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    with MotoBackend() as backend:
        yield backend


# On moto (about 125 plays of 2 s each on 2 busy cores) the calls are swept in parts, each
# its own test: every PARTS-th call from a first one, so the parts share two workers evenly.
PARTS = 3


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("backend", "part"), [("memory", 0), *[("moto", part) for part in range(PARTS)]]
)
def test_a_crash_at_any_call_loses_no_run_and_leaks_no_slot(
    backend: Backend, part: int, moto: MotoBackend
) -> None:
    shared = moto if backend == "moto" else None
    every = PARTS if backend == "moto" else 1
    calls, calm, problems = play(backend, shared)
    assert problems == []
    assert calls > 0 and 2 * SLEEP <= calm < 2 * SLEEP + LATE
    tried = 0
    for call in range(1 + part, calls + 1, every):
        for when in crash_sides(call, backend):
            _, took, found = play(backend, shared, (call, when))
            tried += 1
            if took > calm + LATE:
                found.append(f"ended {took} after the start, uncrashed {calm}")
            problems.extend(f"crash {when} call {call}: {problem}" for problem in found)
    print(f"\nslot crash points ({backend}, part {part}): {tried} tried, {len(problems)} problems")
    assert problems == []


@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_duplicate_and_late_messages_hand_out_no_slot_twice(
    backend: Backend, moto: MotoBackend
) -> None:
    shared = moto if backend == "moto" else None
    for seed in range(3):
        _, _, problems = play(backend, shared, storm=seed)
        assert problems == [], f"seed {seed}"
