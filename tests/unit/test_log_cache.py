"""A warm worker reads each entry of a run's log once (`durable.storage.log_cache`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable import Context, RunStatus, TaskRegistry, task
from durable.faults import SimulatedCrash, When
from durable.records import Checkpoint, CheckpointKind, RunRecord
from durable.storage.log_cache import LogCache
from durable.storage.memory import MemoryRunStore
from durable.testing import TestEnvironment

STEPS = 30
T0 = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class LogReads:
    """What the store's `load_history` returned, entry by entry."""

    calls: int = 0
    entries: int = 0
    seqs: list[int] = field(default_factory=list)


def count_log_reads(monkeypatch: pytest.MonkeyPatch, store: Any) -> LogReads:
    reads = LogReads()
    load = store.load_history

    def counted(run_id: str, after_seq: int = 0) -> list[Checkpoint]:
        history: list[Checkpoint] = load(run_id, after_seq)
        reads.calls += 1
        reads.entries += len(history)
        reads.seqs += [entry.seq for entry in history]
        return history

    monkeypatch.setattr(store, "load_history", counted)
    return reads


def _stepper(registry: TaskRegistry) -> None:
    @task(id="stepper", registry=registry)
    def stepper(ctx: Context, payload: None) -> int:
        total = 0
        for i in range(STEPS):
            total += ctx.step(f"add-{i}", lambda i=i: i)
            ctx.sleep(f"pause-{i}", timedelta(minutes=1))
        return total


def _run_stepper(env: TestEnvironment) -> str:
    run = env.trigger("stepper")
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == sum(range(STEPS))
    return run.run_id


@pytest.fixture
def uncached_env(registry: TaskRegistry) -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=registry) as environment:
        environment.worker.log_cache = LogCache(environment.runtime_store, max_runs=0)
        yield environment


def test_a_run_of_many_invocations_reads_each_log_entry_once(
    registry: TaskRegistry, env: TestEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a run that sleeps between each of its steps: an invocation per step
    _stepper(registry)
    reads = count_log_reads(monkeypatch, env.store)

    # when
    run_id = _run_stepper(env)

    # then every entry came from the store once, though each invocation replayed them all
    monkeypatch.undo()  # the test's own read is not counted
    log_length = len(env.store.load_history(run_id))
    assert reads.calls > STEPS
    assert sorted(reads.seqs) == list(range(1, log_length + 1))
    assert reads.entries == log_length
    assert len(env.worker.log_cache) == 0  # the run ended: dropped


def test_without_the_cache_each_invocation_reads_the_whole_log(
    registry: TaskRegistry, uncached_env: TestEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stepper(registry)
    reads = count_log_reads(monkeypatch, uncached_env.store)

    run_id = _run_stepper(uncached_env)

    monkeypatch.undo()
    log_length = len(uncached_env.store.load_history(run_id))
    # Quadratic: the i-th of STEPS invocations reads the 2 i entries before it.
    assert reads.entries > STEPS * (STEPS - 1)
    assert reads.entries > 10 * log_length


def test_a_run_gives_the_same_result_and_log_with_and_without_the_cache(
    registry: TaskRegistry, env: TestEnvironment, uncached_env: TestEnvironment
) -> None:
    _stepper(registry)

    cached_run, uncached_run = _run_stepper(env), _run_stepper(uncached_env)

    def log_of(environment: TestEnvironment, run_id: str) -> list[tuple[Any, ...]]:
        return [
            (cp.seq, cp.kind, cp.op, cp.name, cp.value, cp.wake_at)
            for cp in environment.store.load_history(run_id)
        ]

    assert log_of(env, cached_run) == log_of(uncached_env, uncached_run)
    assert env.get(cached_run).result == uncached_env.get(uncached_run).result


def _run(run_id: str = "run_1", created_at: datetime = T0) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        task_id="t",
        status=RunStatus.QUEUED,
        payload="null",
        created_at=created_at,
        updated_at=created_at,
    )


def _entry(seq: int, value: str = "null") -> Checkpoint:
    return Checkpoint(
        seq=seq,
        kind=CheckpointKind.STEP_COMPLETED,
        op=seq - 1,
        name=f"step-{seq}",
        task_attempt=1,
        at=T0,
        value=value,
    )


def test_two_stores_with_the_same_run_id_never_share_entries() -> None:
    # given two stores in one process, each with a run of the same id and its own log
    first, second = MemoryRunStore(), MemoryRunStore()
    for store, value in ((first, '"first"'), (second, '"second"')):
        store.create_run(_run())
        store.append_checkpoint("run_1", _entry(1, value))
    first_cache, second_cache = LogCache(first), LogCache(second)

    # when each reads it, then reads again after an append to the other
    assert [cp.value for cp in first_cache.load("run_1", T0)] == ['"first"']
    second.append_checkpoint("run_1", _entry(2, '"second again"'))

    # then
    assert [cp.value for cp in first_cache.load("run_1", T0)] == ['"first"']
    assert [cp.value for cp in second_cache.load("run_1", T0)] == ['"second"', '"second again"']


def test_a_run_created_again_under_the_same_id_is_read_whole() -> None:
    store = MemoryRunStore()
    store.create_run(_run())
    store.append_checkpoint("run_1", _entry(1, '"old"'))
    store.update_run("run_1", {"status": RunStatus.COMPLETED})
    cache = LogCache(store)
    cache.load("run_1", T0)

    # the run is purged and a new one is created with the same id (a caller-given id)
    store.delete_run("run_1")
    store.create_run(_run(created_at=T0 + timedelta(days=1)))
    store.append_checkpoint("run_1", _entry(1, '"new"'))
    store.append_checkpoint("run_1", _entry(2, '"new"'))

    history = cache.load("run_1", T0 + timedelta(days=1))

    assert [cp.value for cp in history] == ['"new"', '"new"']


def test_a_tail_that_does_not_follow_what_is_held_falls_back_to_a_full_load() -> None:
    store = MemoryRunStore()
    store.create_run(_run())
    for seq in (1, 2):
        store.append_checkpoint("run_1", _entry(seq))
    cache = LogCache(store)
    cache.load("run_1", T0)

    # a gap: slot 3 is missing, 4 is there (no adapter does this; the cache must not trust it)
    store.append_checkpoint("run_1", _entry(4))
    history = cache.load("run_1", T0)

    assert [cp.seq for cp in history] == [1, 2, 4]  # what the store holds, read whole
    assert cache.held("run_1") == ()  # and not kept: it does not run on from 1


def test_the_cache_keeps_at_most_its_runs_and_entries() -> None:
    store = MemoryRunStore()
    for n in range(5):
        store.create_run(_run(f"run_{n}"))
        for seq in range(1, 4):
            store.append_checkpoint(f"run_{n}", _entry(seq))
    by_runs, by_entries = LogCache(store, max_runs=2), LogCache(store, max_entries=7)

    for n in range(5):
        by_runs.load(f"run_{n}", T0)
        by_entries.load(f"run_{n}", T0)

    assert len(by_runs) == 2 and by_runs.held("run_0") == () and by_runs.held("run_4")
    assert len(by_entries) == 2  # 3 entries each: a third would make 9


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_between_a_load_and_an_append_leaves_no_unconfirmed_entry_cached(
    registry: TaskRegistry, env: TestEnvironment, monkeypatch: pytest.MonkeyPatch, when: When
) -> None:
    # given a process that dies at the first append after the second load of the log,
    # before the write or after it (the write landed, its answer never came)
    _stepper(registry)
    store = env.store
    load, append = store.load_history, store.append_checkpoint
    loads: list[int] = []
    after_crash: dict[str, list[int]] = {}

    def loading(run_id: str, after_seq: int = 0) -> list[Checkpoint]:
        if len(loads) == 2 and not after_crash:
            # The next invocation, before it reads: what the dead one left cached.
            after_crash["held"] = [cp.seq for cp in env.worker.log_cache.held(run_id)]
            after_crash["stored"] = [cp.seq for cp in load(run_id)]
        loads.append(after_seq)
        history: list[Checkpoint] = load(run_id, after_seq)
        return history

    def appending(run_id: str, checkpoint: Checkpoint) -> None:
        crash_here = len(loads) == 2 and not after_crash and env.crashes == 0
        if crash_here and when == "before":
            raise SimulatedCrash("before the append")
        append(run_id, checkpoint)
        if crash_here:
            raise SimulatedCrash("after the append")

    monkeypatch.setattr(store, "load_history", loading)
    monkeypatch.setattr(store, "append_checkpoint", appending)

    # when
    run = env.trigger("stepper")
    info = env.run_until_complete(run.run_id)

    # then the cache held what the load read, never the append
    assert env.crashes == 1
    held, stored = after_crash["held"], after_crash["stored"]
    assert held and held == list(range(1, len(held) + 1))
    assert stored == held + ([len(held) + 1] if when == "after" else [])
    # and the run ended as it would have, its log whole and contiguous
    assert info.status == RunStatus.COMPLETED
    assert info.result == sum(range(STEPS))
    log = load(run.run_id)
    assert [cp.seq for cp in log] == list(range(1, 2 * STEPS + 1))
