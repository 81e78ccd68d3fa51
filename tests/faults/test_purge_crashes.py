"""Crash at every AWS call of the fanned-out retention purge (`durable.services.purge`).

Runs end (with a log, an inbox event and, some, an idempotency claim and a callback) and
expire; others must stay: one that ended later and has not expired, and one still waiting.
Then only production's recovery runs: the sweeper every minute (it sends a PURGE message
per expiry shard), the workers take the messages (a crashed invocation's message comes
back after the worker's lease). For every call the purge makes, on both sides of it, a
fresh environment dies right there. Afterwards every expired run is gone with all its items
and the other runs kept everything. Duplicate and late purge messages change nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest

from durable import Context, TaskRegistry, task
from durable.errors import InfrastructureError
from durable.faults import Faults, When
from durable.records import InboxEvent, WakeUp
from durable.services.purge import SETTLE
from durable.testing import Backend, MotoBackend, SimulatedCrash, TestEnvironment

from .conftest import crash_sides

RETENTION = timedelta(days=1)
EXPIRING = 6
SHARDS = 2


@dataclass
class Purged:
    expired_left: dict[str, list[str]]  # run id -> what is left of it
    keepers: dict[str, tuple[str, int]]  # run id -> (status, log length)
    calls: list[tuple[int, str]]


def _register(registry: TaskRegistry) -> None:
    @task(id="order", registry=registry)
    def order(ctx: Context, payload: int) -> int:
        first = ctx.step("reserve", lambda: payload)
        if payload % 2:
            ctx.create_callback("confirm")  # a callback item to purge with the run
        return ctx.step("charge", lambda: first * 2)

    @task(id="approval", registry=registry)
    def approval(ctx: Context, payload: None) -> Any:
        return ctx.wait_for_event("approve")


def _left_of(env: TestEnvironment, run_id: str) -> list[str]:
    """What is stored for `run_id`: through the store, and the table's items on moto."""
    left: list[str] = []
    if env.store.get_run(run_id) is not None:
        left.append("run")
    left += [f"checkpoint {cp.seq}" for cp in env.store.load_history(run_id)]
    left += [f"inbox {event.inbox_id}" for event in env.store.list_inbox(run_id)]
    if env.backend == "moto":
        table = boto3.resource("dynamodb", region_name="us-east-1").Table(
            env.store.table_name  # type: ignore[attr-defined]
        )
        items = table.scan()["Items"]
        left += [
            f"item {item['pk']} {item['sk']}"
            for item in items
            if item["pk"] == f"RUN#{run_id}" or item.get("run_id") == run_id
        ]
    return left


def play(
    backend: Backend,
    crash: tuple[int, When] | None = None,
    moto: MotoBackend | None = None,
    faults: Faults | None = None,
    threads: int = 1,
) -> Purged:
    registry = TaskRegistry()
    _register(registry)
    faults = faults if faults is not None else Faults()
    if crash is not None:
        faults.crash(*crash)
    with TestEnvironment(
        backend=backend,
        registry=registry,
        faults=faults,
        moto=moto,
        retention=RETENTION,
        index_shards=SHARDS,
        purge_threads=threads,
    ) as env:
        with faults.paused():
            expiring = [
                env.trigger("order", n, idempotency_key=f"order-{n}" if n % 3 else None).run_id
                for n in range(EXPIRING)
            ]
            env.run_until_idle()
            # an inbox event nobody consumes (it came as the run ended)
            env.store.put_inbox(
                InboxEvent(expiring[0], "000000000001-aa", "late", "null", env.now())
            )
            env.clock.advance(timedelta(hours=12))
            later = env.trigger("order", 100).run_id
            waiting = env.trigger("approval", None).run_id
            env.run_until_idle()
            env.clock.advance(RETENTION - timedelta(hours=12) + SETTLE)
            keepers = [later, waiting]
            before = {run_id: _keeper(env, run_id) for run_id in keepers}
        # only production's recovery: a sweep a minute, the workers on the queue
        for _ in range(60):
            with contextlib.suppress(SimulatedCrash, InfrastructureError):
                env.sweep()
            env.run_until_idle()
            with faults.paused():
                if all(env.store.get_run(run_id) is None for run_id in expiring):
                    break
            env.clock.advance(timedelta(minutes=1))
            env.run_until_idle()
        with faults.paused():
            left = {run_id: _left_of(env, run_id) for run_id in expiring}
            after = {run_id: _keeper(env, run_id) for run_id in keepers}
            assert before == after or crash is not None, (before, after)
            return Purged(
                expired_left={run_id: what for run_id, what in left.items() if what},
                keepers=after if after != before else {},
                calls=[(call.number, call.operation) for call in faults.log],
            )


def _keeper(env: TestEnvironment, run_id: str) -> tuple[str, int]:
    info = env.get(run_id)
    return str(info.status), len(env.store.load_history(run_id))


def _sweep(backend: Backend, calls: list[int], moto: MotoBackend | None) -> None:
    problems: list[str] = []
    for number in calls:
        for when in crash_sides(number, backend):
            played = play(backend, (number, when), moto=moto)
            if played.expired_left:
                problems.append(f"crash {when} call {number}: left {played.expired_left}")
            if played.keepers:
                problems.append(f"crash {when} call {number}: changed {played.keepers}")
    assert problems == []


def test_the_uncrashed_purge_deletes_exactly_the_expired_runs() -> None:
    played = play("memory")
    assert played.expired_left == {} and played.keepers == {}
    operations = {operation for _, operation in played.calls}
    assert {"claim_purge_lease", "expired_runs", "delete_run", "release_purge_lease"} <= (
        operations
    )


def test_a_crash_at_any_call_of_the_purge_on_memory_loses_nothing_else() -> None:
    reference = play("memory")
    _sweep("memory", [number for number, _ in reference.calls], None)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    with MotoBackend(index_shards=SHARDS) as backend:
        yield backend


def test_a_crash_at_any_call_of_the_purge_on_moto_loses_nothing_else(moto: MotoBackend) -> None:
    reference = play("moto", moto=moto)
    assert reference.expired_left == {} and reference.keepers == {}
    operations = {operation for _, operation in reference.calls}
    assert {"Query", "BatchGetItem", "BatchWriteItem", "DeleteItem", "UpdateItem"} <= operations
    _sweep("moto", [number for number, _ in reference.calls], moto)


@pytest.mark.parametrize("seed", range(1, 4))
def test_purgers_in_threads_meet_server_errors_and_timeouts_and_finish(seed: int) -> None:
    faults = Faults(seed=seed).server_error(rate=0.3).timeout(rate=0.1)
    played = play("memory", faults=faults, threads=8)
    assert played.expired_left == {} and played.keepers == {}
    assert faults.injected


def test_duplicate_and_late_purge_messages_change_nothing() -> None:
    registry = TaskRegistry()
    _register(registry)
    with TestEnvironment(registry=registry, retention=RETENTION, index_shards=SHARDS) as env:
        expiring = [env.trigger("order", n).run_id for n in range(EXPIRING)]
        env.run_until_idle()
        env.clock.advance(RETENTION + SETTLE)
        kept = env.trigger("order", 7).run_id
        env.run_until_idle()
        for shard in range(SHARDS):  # duplicates, beside the sweep's own
            env.queue.send(WakeUp.purge(shard))
            env.queue.send(WakeUp.purge(shard))
        env.sweep()
        env.run_until_idle()
        assert all(env.store.get_run(run_id) is None for run_id in expiring)
        # late ones, after everything was purged
        env.queue.send(WakeUp.purge(0), timedelta(minutes=10))
        env.queue.send(WakeUp.purge(SHARDS + 5))  # a shard the table does not have
        env.advance(timedelta(minutes=11))
        assert env.get(kept).result == 14
        assert len(env.store.load_history(kept)) > 0
        outcomes = [str(handled) for message, handled in env.handled if message.shard is not None]
        assert outcomes.count("purged") >= SHARDS + 2
