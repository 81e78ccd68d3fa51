"""Crash at every AWS call of a bulk cancel (`durable.services.bulk`), and let production's
recovery alone finish it: the worker's message comes back after a dead invocation's lease
(the test kit redelivers it), and a job whose lease is held sends itself again for the
lease's end. For every call the job makes, on both sides of it, a fresh environment dies
right there. Afterwards every match is cancelled, with exactly one audit entry of the job,
the other runs are untouched, and the job completed with the right counts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

import durable.services.bulk as bulk
from durable import Context, RunStatus, TaskRegistry, task
from durable.errors import InfrastructureError
from durable.faults import Faults, When
from durable.records import CheckpointKind
from durable.services.audit import action_details
from durable.storage.bulk_jobs import BulkFilter, BulkState
from durable.testing import Backend, MotoBackend, SimulatedCrash, TestEnvironment

from .conftest import crash_sides

MATCHES = 10
OTHERS = 3
PAGE = 4  # a small page, so that the job takes several pages and saves between them


@dataclass
class Played:
    problems: list[str]
    calls: list[tuple[int, str]]
    pages: int
    crashes: int


def _registry() -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="order", registry=registry)
    def order(ctx: Context, payload: int) -> Any:
        return ctx.wait_for_event("approve")

    @task(id="other", registry=registry)
    def other(ctx: Context, payload: int) -> Any:
        return ctx.wait_for_event("approve")

    return registry


def play(
    backend: Backend,
    crash: tuple[int, When] | None = None,
    moto: MotoBackend | None = None,
    matches: int = MATCHES,
    page: int = PAGE,
) -> Played:
    faults = Faults()
    if crash is not None:
        faults.crash(*crash)
    with TestEnvironment(backend=backend, registry=_registry(), faults=faults, moto=moto) as env:
        # one thread, so that calls come in the same order on every play
        env.worker.config = replace(env.worker.config, bulk_threads=1)
        with faults.paused():
            # A millisecond apart: run ids begin with their creation's millisecond, so the
            # listings' order (and the queries a page takes, matches and others mixed in
            # the status index) is the same on every play, not the ids' random tails'.
            targets: list[str] = []
            others: list[str] = []
            for task_id, ids, count in (("order", targets, matches), ("other", others, OTHERS)):
                for n in range(count):
                    ids.append(env.trigger(task_id, n).run_id)
                    env.clock.advance(timedelta(milliseconds=1))
            env.run_until_idle()
            job = env.client.bulk(
                "cancel", BulkFilter(task_id="order", status=RunStatus.WAITING), by="tester"
            )
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(bulk, "BULK_PAGE", page)
            for _ in range(30):
                with contextlib.suppress(SimulatedCrash, InfrastructureError):
                    env.run_until_idle()
                with faults.paused():
                    if env.client.bulk_job(job.job_id).done:
                        break
                env.advance(timedelta(minutes=5))
        with faults.paused():
            problems = _problems(env, job.job_id, targets, others)
            pages = env.client.bulk_job(job.job_id).pages
            return Played(problems, _calls(faults), pages, env.crashes)


def _calls(faults: Faults) -> list[tuple[int, str]]:
    return [(call.number, call.operation) for call in faults.log]


def _problems(
    env: TestEnvironment, job_id: str, matches: list[str], others: list[str]
) -> list[str]:
    problems: list[str] = []
    job = env.client.bulk_job(job_id)
    counts = (job.state, job.matched, job.acted, job.skipped, job.errors)
    if counts != (BulkState.COMPLETED, len(matches), len(matches), 0, 0):
        problems.append(f"job {counts} {job.error_messages}")
    for run_id in matches:
        status = env.get(run_id).status
        entries = [
            action_details(entry)
            for entry in env.store.load_history(run_id)
            if entry.kind is CheckpointKind.RUN_ACTION
        ]
        if status is not RunStatus.CANCELLED or entries != [{"by": "tester", "bulk": job_id}]:
            problems.append(f"{run_id}: {status} {entries}")
    for run_id in others:
        if env.get(run_id).status is not RunStatus.WAITING:
            problems.append(f"{run_id} (no match) is {env.get(run_id).status}")
    return problems


def _sweep(backend: Backend, calls: list[int], moto: MotoBackend | None, **sizes: int) -> None:
    problems: list[str] = []
    for number in calls:
        for when in crash_sides(number, backend):
            played = play(backend, (number, when), moto=moto, **sizes)
            assert played.crashes == 1, (number, when)
            problems += [f"crash {when} call {number}: {problem}" for problem in played.problems]
    assert problems == []


def test_the_uncrashed_bulk_cancel_is_right() -> None:
    played = play("memory")
    assert played.problems == [] and played.crashes == 0
    assert played.pages == 3  # 4 + 4 + 2 matches
    operations = {operation for _, operation in played.calls}
    assert {"list_runs", "get_run", "load_history", "append_checkpoint", "update_run"} <= operations


def test_a_crash_at_any_call_of_a_bulk_cancel_on_memory_loses_nothing() -> None:
    reference = play("memory")
    _sweep("memory", [number for number, _ in reference.calls], None)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    # One index shard: a listing's queries then do not depend on which shard each run's
    # random id falls in, so every play makes its calls in the same order, as on memory.
    with MotoBackend(index_shards=1) as backend:
        yield backend


# Fewer runs on moto (each play there costs a fresh table): still two pages and a save
# between them, and every kind of call the job makes.
MOTO_SIZES = {"matches": 3, "page": 2}


def test_a_crash_at_any_call_of_a_bulk_cancel_on_moto_loses_nothing(moto: MotoBackend) -> None:
    reference = play("moto", moto=moto, **MOTO_SIZES)
    assert reference.problems == [] and reference.pages == 2
    operations = {operation for _, operation in reference.calls}
    assert {"GetItem", "UpdateItem", "PutItem", "Query", "BatchGetItem"} <= operations
    _sweep("moto", [number for number, _ in reference.calls], moto, **MOTO_SIZES)
