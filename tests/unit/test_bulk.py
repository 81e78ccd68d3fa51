"""Bulk jobs (`durable.services.bulk`) through the test kit's worker, on memory and on moto:
which runs a job acts on, its counts and audit entries, repeats, duplicate and late
messages, a budget that runs out, a lease held by another worker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from durable import Context, RunStatus, TaskRegistry, task
from durable.errors import (
    BulkActionUnavailableError,
    BulkFilterRequiredError,
    BulkJobNotFoundError,
    UnknownBulkActionError,
)
from durable.records import CheckpointKind, WakeReason, WakeUp
from durable.services.audit import action_details
from durable.services.bulk import BulkPorts, Target, run_bulk_job, start_bulk
from durable.services.endings import RunEndings
from durable.storage.bulk_jobs import BulkFilter, BulkJob, BulkState
from durable.testing import Backend, TestEnvironment

ORDERS = 50  # waiting runs of "order": the ones to cancel
DONE_ORDERS = 10  # "order" runs that completed
OTHERS = 20  # waiting runs of "other"


def _registry() -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="order", registry=registry)
    def order(ctx: Context, payload: int) -> Any:
        if payload < 0:
            return "done"
        return ctx.wait_for_event("approve")

    @task(id="other", registry=registry)
    def other(ctx: Context, payload: int) -> Any:
        return ctx.wait_for_event("approve")

    return registry


@pytest.fixture(params=["memory", "moto"])
def env(request: pytest.FixtureRequest) -> Iterator[TestEnvironment]:
    backend: Backend = request.param
    with TestEnvironment(backend=backend, registry=_registry()) as environment:
        yield environment


@pytest.fixture
def memory_env() -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=_registry()) as environment:
        yield environment


def _fill(env: TestEnvironment) -> tuple[list[str], list[str]]:
    """80 runs: 50 waiting orders, 10 completed orders, 20 other runs waiting; returns
    the ids of the 50 and of the 30 others."""
    targets = [env.trigger("order", n).run_id for n in range(ORDERS)]
    others = [env.trigger("order", -1 - n).run_id for n in range(DONE_ORDERS)]
    others += [env.trigger("other", n).run_id for n in range(OTHERS)]
    env.run_until_idle()
    return targets, others


def _cancel_entries(env: TestEnvironment, run_id: str) -> list[dict[str, object]]:
    return [
        action_details(entry)
        for entry in env.store.load_history(run_id)
        if entry.kind is CheckpointKind.RUN_ACTION and entry.name == "cancel"
    ]


WAITING_ORDERS = BulkFilter(task_id="order", status=RunStatus.WAITING)


def _assert_cancelled_once(env: TestEnvironment, job: BulkJob, targets: list[str]) -> None:
    for run_id in targets:
        assert env.get(run_id).status is RunStatus.CANCELLED
        assert _cancel_entries(env, run_id) == [{"by": "tester", "bulk": job.job_id}]


def test_a_bulk_cancel_cancels_exactly_the_matching_runs_each_audited(
    env: TestEnvironment,
) -> None:
    targets, others = _fill(env)
    before = {run_id: env.get(run_id).status for run_id in others}

    job = env.client.bulk("cancel", WAITING_ORDERS, by="tester")
    assert job.state is BulkState.RUNNING and job.matched == 0
    env.run_until_idle()

    done = env.client.bulk_job(job.job_id)
    assert done.state is BulkState.COMPLETED and done.finished_at is not None
    assert (done.matched, done.acted, done.skipped, done.errors) == (ORDERS, ORDERS, 0, 0)
    assert done.lease_owner is None and done.pending == ()
    _assert_cancelled_once(env, done, targets)
    assert {run_id: env.get(run_id).status for run_id in others} == before
    assert all(_cancel_entries(env, run_id) == [] for run_id in others)


def test_running_it_again_is_safe_every_match_is_skipped(env: TestEnvironment) -> None:
    targets, _ = _fill(env)
    first = env.client.bulk("cancel", WAITING_ORDERS, by="tester")
    env.run_until_idle()

    # the same filter: nothing waits any more
    again = env.client.bulk("cancel", WAITING_ORDERS, by="tester")
    # every order, ended: each one skipped, none audited again
    orders = env.client.bulk("cancel", BulkFilter(task_id="order"), by="tester")
    env.run_until_idle()

    again = env.client.bulk_job(again.job_id)
    assert (again.state, again.matched, again.acted, again.skipped) == (
        BulkState.COMPLETED,
        0,
        0,
        0,
    )
    orders = env.client.bulk_job(orders.job_id)
    assert orders.state is BulkState.COMPLETED
    assert (orders.matched, orders.acted, orders.skipped) == (ORDERS + DONE_ORDERS, 0, 60)
    _assert_cancelled_once(env, env.client.bulk_job(first.job_id), targets)


def test_duplicate_and_late_bulk_messages_change_nothing(env: TestEnvironment) -> None:
    targets, _ = _fill(env)
    job = env.client.bulk("cancel", WAITING_ORDERS, by="tester")
    env.queue.send(WakeUp.bulk(job.job_id))  # a duplicate beside the first
    env.run_until_idle()
    done = env.client.bulk_job(job.job_id)

    env.queue.send(WakeUp.bulk(job.job_id))  # late ones, after the end
    env.queue.send(WakeUp.bulk(job.job_id))
    env.run_until_idle()

    assert env.client.bulk_job(job.job_id) == done
    assert (done.matched, done.acted, done.skipped) == (ORDERS, ORDERS, 0)
    _assert_cancelled_once(env, done, targets)


def _ports(env: TestEnvironment) -> BulkPorts:
    endings = RunEndings(env.worker.starter, None)
    return BulkPorts(env.runtime_store, env.runtime_queue, env.clock, endings)


def test_a_job_cut_by_its_budget_goes_on_by_its_message(env: TestEnvironment) -> None:
    targets, _ = _fill(env)
    job = env.client.bulk("cancel", WAITING_ORDERS, by="tester")
    env.queue.pop_due(env.now())  # its message: this test works the job by hand

    cut = run_bulk_job(_ports(env), job.job_id, budget=timedelta(0), page_size=20)

    assert cut.handling == "continued" and cut.job is not None
    assert (cut.job.matched, cut.job.acted, cut.job.pages) == (20, 20, 1)
    assert cut.job.lease_owner is None  # freed for the continuation
    continuation = env.queue.pop_due(env.now())
    assert continuation == WakeUp.bulk(job.job_id)
    assert env.queue.pop_due(env.now()) is None

    env.queue.send(continuation)
    env.run_until_idle()
    done = env.client.bulk_job(job.job_id)
    assert (done.state, done.matched, done.acted) == (BulkState.COMPLETED, ORDERS, ORDERS)
    _assert_cancelled_once(env, done, targets)


def test_a_message_for_a_held_job_comes_back_when_the_lease_ends(
    memory_env: TestEnvironment,
) -> None:
    env = memory_env
    targets, _ = _fill(env)
    job = env.client.bulk("cancel", WAITING_ORDERS, by="tester")
    # another worker took it and died with its message
    until = env.now() + timedelta(seconds=90)
    assert env.store.claim_bulk_job(job.job_id, "dead-worker", env.now(), until) is not None

    env.run_until_idle()
    assert env.client.bulk_job(job.job_id).matched == 0
    assert env.queue.next_due() == until + timedelta(seconds=1)

    env.advance(timedelta(seconds=91))
    done = env.client.bulk_job(job.job_id)
    assert (done.state, done.acted) == (BulkState.COMPLETED, ORDERS)
    _assert_cancelled_once(env, done, targets)


def test_a_worker_that_lost_its_lease_writes_nothing(memory_env: TestEnvironment) -> None:
    env = memory_env
    _fill(env)
    job = env.client.bulk("cancel", WAITING_ORDERS, by="tester")
    now = env.now()
    claimed = env.store.claim_bulk_job(job.job_id, "first", now, now + timedelta(seconds=1))
    assert claimed is not None
    later = now + timedelta(seconds=2)
    assert env.store.claim_bulk_job(job.job_id, "second", later, later) is not None
    with pytest.raises(Exception, match="lease"):
        env.store.save_bulk_job(claimed.with_changes(acted=99), "first")
    assert env.client.bulk_job(job.job_id).acted == 0


def test_what_start_refuses(memory_env: TestEnvironment) -> None:
    env = memory_env
    with pytest.raises(UnknownBulkActionError):
        env.client.bulk("delete", WAITING_ORDERS)
    with pytest.raises(BulkActionUnavailableError):  # a deployment serving only cancel
        start_bulk(
            env.store, env.queue, env.clock, "retry", WAITING_ORDERS, "t", available=["cancel"]
        )
    with pytest.raises(BulkFilterRequiredError):
        env.client.bulk("cancel", BulkFilter())
    with pytest.raises(BulkJobNotFoundError):
        env.client.bulk_job("bulk_" + "0" * 32)
    with pytest.raises(BulkJobNotFoundError):
        env.client.bulk_job("not a job id")
    assert env.queue.pop_due(env.now() + timedelta(days=1)) is None


def test_all_runs_takes_an_explicit_all(memory_env: TestEnvironment) -> None:
    env = memory_env
    _fill(env)
    job = env.client.bulk("cancel", BulkFilter(), by="tester", all_runs=True)
    env.run_until_idle()
    done = env.client.bulk_job(job.job_id)
    assert (done.matched, done.acted, done.skipped) == (80, ORDERS + OTHERS, DONE_ORDERS)


def test_an_action_nobody_serves_fails_the_job_with_its_reason(memory_env: TestEnvironment) -> None:
    env = memory_env
    _fill(env)
    job = env.client.bulk("cancel", WAITING_ORDERS, by="tester")
    env.queue.pop_due(env.now())
    progress = run_bulk_job(_ports(env), job.job_id, actions={})
    assert progress.handling == "failed"
    failed = env.client.bulk_job(job.job_id)
    assert failed.state is BulkState.FAILED and failed.reason is not None
    assert "cancel" in failed.reason and failed.matched == 0


def test_errors_are_counted_with_their_first_messages(memory_env: TestEnvironment) -> None:
    env = memory_env
    targets, _ = _fill(env)
    job = env.client.bulk("cancel", WAITING_ORDERS, by="tester")
    env.queue.pop_due(env.now())

    def refuse(target: Target, job: BulkJob) -> Any:
        raise ValueError(f"no {target.run_id[-4:]}")

    progress = run_bulk_job(_ports(env), job.job_id, actions={job.action: refuse})
    assert progress.handling == "completed" and progress.job is not None
    assert (progress.job.errors, progress.job.acted) == (ORDERS, 0)
    assert len(progress.job.error_messages) == 5
    assert all("ValueError: no" in message for message in progress.job.error_messages)
    assert all(env.get(run_id).status is RunStatus.WAITING for run_id in targets)


def test_a_stalled_job_is_sent_again_when_read() -> None:
    with TestEnvironment(registry=_registry()) as env:
        _fill(env)
        job = env.client.bulk("cancel", WAITING_ORDERS, by="tester")
        env.queue.pop_due(env.now())  # its message, lost
        env.clock.advance(timedelta(minutes=6))
        env.client.bulk_job(job.job_id)
        message = env.queue.pop_due(env.now())
        assert message is not None and message.reason is WakeReason.BULK
        env.queue.send(message)
        env.run_until_idle()
        assert env.client.bulk_job(job.job_id).acted == ORDERS


def test_bulk_messages_are_validated() -> None:
    message = WakeUp.bulk("bulk_" + "a" * 32)
    assert WakeUp.from_json(message.to_json()) == message
    for body in (
        '{"run_id": "BULK#x", "reason": "bulk", "job": "x"}',
        '{"run_id": "run_1", "reason": "bulk", "job": "bulk_' + "a" * 32 + '"}',
        '{"run_id": "BULK#bulk_' + "a" * 32 + '", "reason": "bulk"}',
        '{"run_id": "run_1", "reason": "start", "job": "bulk_' + "a" * 32 + '"}',
    ):
        with pytest.raises(ValueError, match=r"wake-up|bulk"):
            WakeUp.from_json(body)


def test_the_worker_config_bounds_the_budget_by_the_time_left() -> None:
    with TestEnvironment(registry=_registry()) as env:
        _fill(env)
        env.worker.config = replace(env.worker.config, bulk_threads=2)
        job = env.client.bulk("cancel", WAITING_ORDERS, by="tester")
        message = env.queue.pop_due(env.now())
        assert message is not None
        env.deliver(message, time_left=lambda: timedelta(seconds=1))  # no budget: one page
        assert env.client.bulk_job(job.job_id).state is BulkState.COMPLETED
