"""Bulk retry and bulk resume (`durable.services.bulk` on `retry_run` and `resume_run`), on
memory and moto: every match acted on once, audited with the job's caller, the rest skipped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from durable import Context, RunStatus, TaskRegistry, task
from durable.records import HOLD_NONDETERMINISM, CheckpointKind
from durable.services.audit import action_details
from durable.storage.bulk_jobs import BulkFilter, BulkState
from durable.testing import Backend, TestEnvironment

BROKEN = {"flag": True}


def _flaky(registry: TaskRegistry, effects: list[str]) -> None:
    @task(id="flaky", registry=registry)
    def flaky(ctx: Context, payload: int) -> int:
        ctx.step("first", lambda: effects.append(f"first-{payload}"))
        if BROKEN["flag"]:
            ctx.step("boom", _boom)
        return payload


def _boom() -> None:
    raise RuntimeError("the outside service is down")


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> Backend:
    value: Backend = request.param
    return value


@pytest.fixture
def effects() -> list[str]:
    return []


@pytest.fixture
def env(backend: Backend, effects: list[str]) -> Iterator[TestEnvironment]:
    registry = TaskRegistry()
    _flaky(registry, effects)
    BROKEN["flag"] = True
    with TestEnvironment(backend=backend, registry=registry) as environment:
        yield environment


def _actions(env: TestEnvironment, run_id: str, name: str) -> list[dict[str, object]]:
    return [
        action_details(entry)
        for entry in env.store.load_history(run_id)
        if entry.kind is CheckpointKind.RUN_ACTION and entry.name == name
    ]


def _finish(env: TestEnvironment, job_id: str) -> Any:
    env.run_until_idle()
    return env.client.bulk_job(job_id)


def test_a_bulk_retry_retries_every_failed_run_once(
    env: TestEnvironment, effects: list[str]
) -> None:
    failed = [env.trigger("flaky", n).run_id for n in range(6)]
    for run_id in failed:
        env.run_until_complete(run_id)
    fine = env.trigger("flaky", 99)
    BROKEN["flag"] = False
    env.run_until_complete(fine.run_id)
    assert {env.get(run_id).status for run_id in failed} == {RunStatus.FAILED}
    first_steps = len(effects)

    job = env.client.bulk("retry", BulkFilter(task_id="flaky"), by="test:ops")
    done = _finish(env, job.job_id)
    assert done.state is BulkState.COMPLETED
    assert (done.acted, done.skipped) == (6, 1)  # the completed run is not retried
    for n, run_id in enumerate(failed):
        info = env.get(run_id)
        assert info.status is RunStatus.COMPLETED and info.result == n
        assert [details["by"] for details in _actions(env, run_id, "retry")] == ["test:ops"]
    assert len(effects) == first_steps  # the completed `first` steps were not run again

    again = _finish(env, env.client.bulk("retry", BulkFilter(task_id="flaky")).job_id)
    assert (again.acted, again.skipped) == (0, 7)
    assert all(len(_actions(env, run_id, "retry")) == 1 for run_id in failed)


def _order(registry: TaskRegistry, step: str) -> None:
    @task(id="order", registry=registry)
    def order(ctx: Context, payload: int) -> int:
        ctx.step(step, lambda: payload)
        ctx.sleep("cool-off", timedelta(minutes=1))
        return payload


def test_a_bulk_resume_lets_every_held_run_go_on(backend: Backend) -> None:
    first, renamed = TaskRegistry(), TaskRegistry()
    _order(first, "charge")
    _order(renamed, "charge-card")
    with TestEnvironment(backend=backend, registry=first) as env:
        runs = [env.trigger("order", n).run_id for n in range(5)]
        env.run_until_idle()
        env.deploy(renamed)
        env.advance(timedelta(minutes=1))
        assert {env.get(run_id).waiting_for for run_id in runs} == {HOLD_NONDETERMINISM}
        env.deploy(first)  # the rename rolled back
        job = env.client.bulk("resume", BulkFilter(task_id="order"), by="test:ops")
        done = _finish(env, job.job_id)  # no clock moved: the resume, not the recheck
        assert (done.state, done.acted, done.skipped) == (BulkState.COMPLETED, 5, 0)
        for n, run_id in enumerate(runs):
            assert env.get(run_id).status is RunStatus.COMPLETED
            assert env.get(run_id).result == n
            assert [details["by"] for details in _actions(env, run_id, "resume")] == ["test:ops"]


def test_a_bulk_cancel_by_tag_cancels_the_tagged_runs_only(backend: Backend) -> None:
    registry = TaskRegistry()

    @task(id="waits", registry=registry)
    def waits(ctx: Context, payload: int) -> Any:
        return ctx.wait_for_event("go")

    with TestEnvironment(backend=backend, registry=registry) as env:
        tagged = [env.trigger("waits", n, tags=["tenant:a"]).run_id for n in range(4)]
        others = [env.trigger("waits", n, tags=["tenant:b"]).run_id for n in range(3)]
        env.run_until_idle()
        job = env.client.bulk(
            "cancel", BulkFilter(tag="tenant:a", status=RunStatus.WAITING), by="test:ops"
        )
        done = _finish(env, job.job_id)
        assert (done.state, done.acted, done.skipped) == (BulkState.COMPLETED, 4, 0)
        assert {env.get(run_id).status for run_id in tagged} == {RunStatus.CANCELLED}
        assert {env.get(run_id).status for run_id in others} == {RunStatus.WAITING}
