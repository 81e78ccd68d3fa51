"""Crash at every I/O boundary: the process dies before, or after, the k-th AWS call.

For each reference workflow (see `workflows.py`) an uncrashed run counts its AWS calls N
(at botocore, on moto); then, for every k in 1..N and both sides of the call, a fresh
environment runs it with the process dying right there (`SimulatedCrash`: no `except`,
no `finally` of ours runs). Recovery is only what production has: SQS redelivery after the
lease, the sweeper every minute, API callers retrying. Every run must end as the uncrashed
one did, with no step run again after its checkpoint was written; a step may run twice
only when its own invocation died between its side effect and its checkpoint.

Here every call is crashed at on moto, on one side of it (before odd calls, after even
ones: `conftest.crash_sides`), and on both sides on the memory backend; `make faults-sweep`
runs both sides of every call on moto too (`DURABLE_FULL_SWEEP=1`), then bench/
fault_sweep.py with more workflows, seeds and a memory backend, and prints the table the
README quotes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from durable import TaskRegistry
from durable.faults import Faults, When
from durable.testing import Backend, MotoBackend, TestEnvironment

from .conftest import BOTH_SIDES, FULL_SWEEP, Production, crash_sides
from .workflows import PAYLOADS, REFERENCE_TASKS, Effects, outside_world, register

# The template's sweeper runs every minute; every five here keeps a crash point's recovery
# short in real time (a lost wake-up is found a few minutes later instead of one).
SWEEP_EVERY = timedelta(minutes=5)


@dataclass
class Outcome:
    """How one run of a reference workflow ended, and what it did on the way."""

    status: str
    result: Any
    error_type: str | None
    runs: dict[str, int]  # task id -> runs of it
    effects: Effects
    calls: int
    crashed_at: tuple[int, When] | None = None
    notes: list[str] = field(default_factory=list)


def play(
    task_id: str,
    backend: Backend,
    crash: tuple[int, When] | None = None,
    seed: int = 0,
    moto: MotoBackend | None = None,
) -> Outcome:
    """One run of `task_id`, crashing at `crash` if given, recovered as production would."""
    registry = TaskRegistry()
    faults = Faults(seed=seed)
    if crash is not None:
        faults.crash(*crash)
    effects = Effects(faults)
    register(registry, effects)
    with TestEnvironment(backend=backend, registry=registry, faults=faults, moto=moto) as env:
        production = Production(env, sweep_every=SWEEP_EVERY)
        handle = production.call(
            lambda: env.trigger(task_id, PAYLOADS.get(task_id), idempotency_key="ref-1")
        )
        production.run(
            lambda: [handle.run_id],
            outside=outside_world(effects, handle.run_id),
            max_time=timedelta(days=3),
        )
        info = env.get(handle.run_id)
        # what it started must end too (a triggered child runs on after its parent)
        production.run(lambda: [run.run_id for run in env.list(limit=100).runs])
        runs: dict[str, int] = {}
        for run in env.list(limit=100).runs:
            runs[run.task_id] = runs.get(run.task_id, 0) + 1
        calls = faults.calls
        with faults.paused():
            notes = _timeline_problems(env, [run.run_id for run in env.list(limit=100).runs])
    result = info.result
    if isinstance(result, dict):
        result = {key: value for key, value in result.items() if key != "at"}
    return Outcome(
        status=str(info.status),
        result=result,
        error_type=info.error.type if info.error else None,
        runs=runs,
        effects=effects,
        calls=calls,
        crashed_at=crash,
        notes=notes,
    )


def problems(reference: Outcome, crashed: Outcome) -> list[str]:
    """What the crashed run did differently from the uncrashed one; empty when nothing."""
    found: list[str] = []
    if (crashed.status, crashed.result, crashed.error_type) != (
        reference.status,
        reference.result,
        reference.error_type,
    ):
        found.append(
            f"ended {crashed.status} {crashed.result!r} {crashed.error_type}, "
            f"not {reference.status} {reference.result!r} {reference.error_type}"
        )
    if crashed.runs != reference.runs:
        found.append(f"runs per task {crashed.runs}, not {reference.runs}")
    found.extend(_double_executions(reference, crashed))
    found.extend(crashed.notes)
    return found


def _timeline_problems(env: TestEnvironment, run_ids: list[str]) -> list[str]:
    """What the run page would draw wrong of the logs a crash left: every entry drawn
    once, each step attempt starting before it ends, one band a task attempt, the input of
    each completed submit and compensation step."""
    found: list[str] = []
    for run_id in run_ids:
        timeline = env.client.timeline(run_id)
        drawn = sorted(seq for op in timeline["operations"] for seq in op["seqs"])
        logged = sorted(entry.seq for entry in env.history(run_id) if entry.position >= 0)
        if drawn != logged:
            found.append(f"timeline of {run_id} draws entries {drawn}, the log has {logged}")
        if len(timeline["attempts"]) != env.get(run_id).attempts:
            found.append(f"timeline of {run_id}: {len(timeline['attempts'])} attempt bands")
        for op in timeline["operations"]:
            for bar in op["attempts"]:
                start, end = bar["started_at"], bar["ended_at"]
                if start and end and datetime.fromisoformat(start) > datetime.fromisoformat(end):
                    found.append(f"timeline of {run_id}: {op['name']} ends before it starts")
                found.extend(_input_problems(run_id, op["name"], bar))
    return found


def _input_problems(run_id: str, name: str, bar: dict[str, Any]) -> list[str]:
    """A submit or compensation step is given one argument: each attempt that completed shows
    it (a callback's token redacted), whatever crash came before."""
    given = bar.get("input")
    if not name.startswith(("submit:", "compensate:")) or bar["outcome"] != "completed":
        return []
    if not isinstance(given, dict) or len(given.get("args", [])) != 1:
        return [f"timeline of {run_id}: {name} attempt {bar['attempt']} shows input {given!r}"]
    if name.startswith("submit:") and not str(given["args"][0]).endswith("…"):
        return [f"timeline of {run_id}: {name} shows its callback token whole"]
    return []


def _double_executions(reference: Outcome, crashed: Outcome) -> list[str]:
    """Side effects that ran more often than uncrashed, beyond the one allowed re-run."""
    assert crashed.crashed_at is not None
    crash_call, when = crashed.crashed_at
    expected = _by_step(reference.effects)
    seen = _by_step(crashed.effects)
    found = []
    for key, count in seen.items():
        extra = count - expected.get(key, 0)
        if extra <= 0:
            continue
        # Allowed once: the step's side effect ran, then the process died before the very
        # next AWS call (its checkpoint) was made.
        executions = [calls for _, step, calls in crashed.effects.log if _name(step) == key]
        died_before_its_checkpoint = when == "before" and crash_call - 1 in executions
        if extra > 1 or not died_before_its_checkpoint:
            found.append(f"step {key} ran {count} times, {expected.get(key, 0)} uncrashed")
    return found


def _by_step(effects: Effects) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, step, _ in effects.log:
        counts[_name(step)] = counts.get(_name(step), 0) + 1
    return counts


def _name(step: str) -> str:
    """A side effect's step, without what differs from run to run (a callback's token)."""
    return "hand-out" if step.startswith("hand-out:") else step


def sweep_crash_points(
    task_id: str,
    backend: Backend,
    every: int = 1,
    moto: MotoBackend | None = None,
    first: int = 1,
    both_sides: bool = True,
) -> dict[str, Any]:
    """Crash before and after calls first, first + every, ... of an uncrashed run (with
    `both_sides` False, on one side of each, as `crash_sides` picks on moto); the tally."""
    reference = play(task_id, backend, moto=moto)
    tally: dict[str, Any] = {
        "workflow": task_id,
        "calls": reference.calls,
        "tried": 0,
        "completed": 0,
        "lost": 0,
        "failed": 0,
        "double": 0,
        "problems": [],
    }
    for call in range(first, reference.calls + 1, every):
        for when in BOTH_SIDES if both_sides else crash_sides(call, "moto"):
            crashed = play(task_id, backend, (call, when), moto=moto)
            tally["tried"] += 1
            found = problems(reference, crashed)
            if crashed.status == reference.status and not found:
                tally["completed"] += 1
            if crashed.status in ("QUEUED", "RUNNING", "WAITING", "RETRYING"):
                tally["lost"] += 1
            elif crashed.status != reference.status:
                tally["failed"] += 1
            if any("ran" in problem for problem in found):
                tally["double"] += 1
            tally["problems"].extend(f"crash {when} call {call}: {p}" for p in found)
    return tally


@pytest.mark.parametrize("task_id", REFERENCE_TASKS)
def test_the_uncrashed_reference_runs_end_as_designed(task_id: str) -> None:
    outcome = play(task_id, "memory")
    expected = {
        "ref-steps": ("COMPLETED", {"reserved": 5, "charged": 50, "settled": "settled"}),
        "ref-waits": ("COMPLETED", {"approval": {"by": "ada"}, "review": {"ok": True}}),
        "ref-children": ("COMPLETED", {"doubled": 42, "squares": [1, 4, 9]}),
        "ref-saga": ("FAILED", None),
    }[task_id]
    assert (outcome.status, outcome.result) == expected


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    with MotoBackend() as backend:
        yield backend


# Each workflow's crash points are split into PARTS interleaved shares (calls 1, 4, 7...;
# 2, 5, 8...; 3, 6, 9...), one test each: together they cover every call.
PARTS = 3


@pytest.mark.parametrize("part", range(1, PARTS + 1))
@pytest.mark.parametrize("task_id", REFERENCE_TASKS)
def test_a_crash_at_any_aws_call_changes_nothing(
    task_id: str, part: int, moto: MotoBackend
) -> None:
    tally = sweep_crash_points(
        task_id, "moto", every=PARTS, moto=moto, first=part, both_sides=FULL_SWEEP
    )
    print(  # the figures the closing note and the README quote (pytest -s)
        f"\ncrash points {task_id} (part {part}/{PARTS}): calls={tally['calls']} "
        f"tried={tally['tried']} completed={tally['completed']} lost={tally['lost']} "
        f"failed={tally['failed']} double={tally['double']}"
    )
    assert tally["problems"] == []
    calls = len(range(part, tally["calls"] + 1, PARTS))
    assert tally["completed"] == tally["tried"] == (2 * calls if FULL_SWEEP else calls)


@pytest.mark.parametrize("task_id", REFERENCE_TASKS)
def test_every_crash_point_on_the_memory_backend_too(task_id: str) -> None:
    """The same at the adapters of the memory backend (other call boundaries: every port
    method is one call), every point in one test: it is fast."""
    tally = sweep_crash_points(task_id, "memory")
    print(
        f"\ncrash points {task_id} (memory): calls={tally['calls']} tried={tally['tried']} "
        f"completed={tally['completed']} lost={tally['lost']} failed={tally['failed']} "
        f"double={tally['double']}"
    )
    assert tally["problems"] == []
    assert tally["completed"] == tally["tried"] == 2 * tally["calls"]
