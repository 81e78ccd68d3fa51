"""Crash at every AWS call of the bounded-items paths: pruning the inbox, reading a batch's
results a page at a time.

Two workflows: `two-approvals` waits for the same event name twice (so an event left in the
inbox by a crash between its consuming entry and its delete would be the next one a wait
could take), and `paged-map` fans out with a tolerated failure and reads its results in
pages of two. For every call of an uncrashed run, a fresh run dies before and after it and
is recovered as production would (`Production`). No run may be lost or end otherwise, no
step may run again once recorded, no event may be delivered twice, and no consumed event
may stay in the inbox once the run has ended.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from durable import Context, RunStatus, TaskRegistry, task
from durable.errors import NonRetryableError
from durable.faults import Faults, When
from durable.testing import Backend, MotoBackend, TestEnvironment

from .conftest import Production


@dataclass
class Played:
    status: str
    result: Any
    steps: list[tuple[str, int]]  # (step, AWS calls made before its side effect ran)
    inbox_left: int
    calls: list[tuple[int, str]]  # (number, operation) of each AWS call made


def _register(registry: TaskRegistry, steps: list[tuple[str, int]], faults: Faults) -> None:
    def counted(name: str, value: Any) -> Callable[[], Any]:
        def run() -> Any:
            steps.append((name, faults.calls))
            return value

        return run

    @task(id="two-approvals", registry=registry)
    def two_approvals(ctx: Context, payload: None) -> list[Any]:
        first = ctx.wait_for_event("approval")
        ctx.step("between", counted("between", None))
        second = ctx.wait_for_event("approval")
        ctx.step("after", counted("after", None))
        return [first, second]

    @task(id="paged-item", registry=registry)
    def paged_item(ctx: Context, payload: int) -> int:
        if payload == 4:
            raise NonRetryableError("four is out")
        return payload * payload

    @task(id="paged-map", registry=registry)
    def paged_map(ctx: Context, payload: None) -> list[Any]:
        results = ctx.map("paged-item", list(range(7)), max_concurrency=3, tolerated_failures=1)
        total = ctx.step("sum", counted("sum", sum(r for r in results if isinstance(r, int))))
        return [total, *(r if isinstance(r, int) else "failed" for r in results)]


def _approver(run_id: str, faults: Faults) -> Callable[[Production], None]:
    """Sends approval n+1 once the run has consumed n and waits again (API callers retry)."""
    sent: list[int] = []

    def act(production: Production) -> None:
        env = production.env
        with faults.paused():
            info = env.get(run_id)
            received = sum(1 for e in env.history(run_id) if e.kind == "event_received")
        waiting = info.status is RunStatus.WAITING and info.waiting_for == "approval"
        if waiting and received == len(sent) < 2:
            n = len(sent) + 1
            production.call(
                lambda: env.send_event(run_id, "approval", {"n": n}, event_id=f"approval-{n}")
            )
            sent.append(n)

    return act


def play(
    task_id: str,
    backend: Backend,
    crash: tuple[int, When] | None = None,
    moto: MotoBackend | None = None,
) -> Played:
    registry = TaskRegistry()
    steps: list[tuple[str, int]] = []
    faults = Faults()
    _register(registry, steps, faults)
    if crash is not None:
        faults.crash(*crash)
    with TestEnvironment(backend=backend, registry=registry, faults=faults, moto=moto) as env:
        production = Production(env)
        handle = production.call(lambda: env.trigger(task_id, None, idempotency_key="k"))
        outside = _approver(handle.run_id, faults) if task_id == "two-approvals" else None
        production.run(lambda: [handle.run_id], outside=outside)
        with faults.paused():
            info = env.get(handle.run_id)
            left = len(env.store.list_inbox(handle.run_id))
        return Played(
            status=str(info.status),
            result=info.result,
            steps=steps,
            inbox_left=left,
            calls=[(call.number, call.operation) for call in faults.log],
        )


REFERENCE = {
    "two-approvals": ("COMPLETED", [{"n": 1}, {"n": 2}]),
    "paged-map": ("COMPLETED", [0 + 1 + 4 + 9 + 25 + 36, 0, 1, 4, 9, "failed", 25, 36]),
}


@pytest.fixture(autouse=True)
def pages_of_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("durable.batch_results.PAGE_SIZE", 2)


def _problems(task_id: str, played: Played, crash: tuple[int, When] | None = None) -> list[str]:
    found: list[str] = []
    if (played.status, played.result) != REFERENCE[task_id]:
        found.append(f"ended {played.status} with {played.result!r}")
    for name, runs in Counter(name for name, _ in played.steps).items():
        # Allowed once: the side effect ran, then the process died before the very next
        # AWS call (the step's checkpoint).
        ran_at = [calls for step, calls in played.steps if step == name]
        died_before_its_checkpoint = crash is not None and crash == (ran_at[0] + 1, "before")
        if runs > 2 or (runs == 2 and not died_before_its_checkpoint):
            found.append(f"step {name!r} ran {runs} times")
    if played.inbox_left:
        found.append(f"{played.inbox_left} consumed events left in the inbox")
    return found


def _sweep(task_id: str, backend: Backend, calls: list[int], moto: MotoBackend | None) -> None:
    problems: list[str] = []
    for number in calls:
        for when in ("before", "after"):
            crash: tuple[int, When] = (number, when)
            played = play(task_id, backend, crash, moto=moto)
            found = _problems(task_id, played, crash)
            problems.extend(f"crash {when} call {number}: {p}" for p in found)
    assert problems == []


@pytest.mark.parametrize("task_id", sorted(REFERENCE))
def test_the_uncrashed_runs_end_as_designed(task_id: str) -> None:
    played = play(task_id, "memory")
    assert _problems(task_id, played) == []
    operations = {operation for _, operation in played.calls}
    assert ("delete_inbox" in operations) == (task_id == "two-approvals")
    assert "list_batch_results" in operations or task_id == "two-approvals"


@pytest.mark.parametrize("task_id", sorted(REFERENCE))
def test_a_crash_at_any_call_on_the_memory_backend_changes_nothing(task_id: str) -> None:
    reference = play(task_id, "memory")
    _sweep(task_id, "memory", [number for number, _ in reference.calls], None)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    with MotoBackend() as backend:
        yield backend


@pytest.mark.parametrize("task_id", sorted(REFERENCE))
def test_a_crash_at_the_new_calls_on_moto_changes_nothing(task_id: str, moto: MotoBackend) -> None:
    """On moto, at each inbox delete (BatchWriteItem) and each Query (the inbox and a
    batch's pages are read with one)."""
    reference = play(task_id, "moto", moto=moto)
    assert _problems(task_id, reference) == []
    new_calls = [n for n, op in reference.calls if op in {"BatchWriteItem", "Query"}]
    assert new_calls
    _sweep(task_id, "moto", new_calls, moto)
