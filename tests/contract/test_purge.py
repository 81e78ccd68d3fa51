"""The retention purge fanned out to the workers (`durable.services.purge`), on memory and moto.

Runs are stored as the worker leaves them (a log, an inbox, some with an idempotency
claim) over several index shards; the scheduled sweep then sends one PURGE message per
shard with expired runs and the workers purge them (`Runtime.process_wake_up`, the
Lambda handler's path). On moto the table is scanned for what each run left behind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from moto import mock_aws
from tests.contract.conftest import PAGE_SIZE, REGION, SHARDS, TABLE
from tests.contract.test_retention import DAY, finish, table_keys
from tests.contract.test_run_store import T0, make_checkpoint, make_run

from durable.blobs.memory import MemoryBlobStore
from durable.bootstrap import Runtime
from durable.clock import VirtualClock
from durable.queues.memory import MemoryWakeQueue
from durable.records import RunStatus, WakeReason, WakeUp
from durable.services.purge import LEASE_MARGIN, PURGE_BUDGET, purge_shard, send_purge_messages
from durable.settings import Settings
from durable.storage._shards import shard_of
from durable.storage._tables import create_table
from durable.storage.base import RunStore
from durable.storage.dynamodb import DynamoDBRunStore
from durable.storage.memory import MemoryRunStore
from durable.task import TaskRegistry

EXPIRED = 200
NOW = T0 + 31 * DAY  # past the expiry (T0 + 30 days) and the settling of `finish`'s runs


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest) -> Iterator[RunStore]:
    """A store whose expiry index has `SHARDS` shards, on each backend."""
    if backend == "memory":
        yield MemoryRunStore(index_shards=SHARDS)
        return
    request.getfixturevalue("aws_credentials")
    with mock_aws():
        create_table(TABLE, REGION, shards=SHARDS)
        yield DynamoDBRunStore(TABLE, region=REGION, page_size=PAGE_SIZE)


def keys_left(backend: str, run_id: str) -> list[str]:
    return table_keys(run_id) if backend == "moto" else []


def runtime_on(store: Any, clock: VirtualClock) -> tuple[Runtime, MemoryWakeQueue]:
    queue = MemoryWakeQueue(clock)
    runtime = Runtime.from_parts(
        store=store,
        queue=queue,
        blobs=MemoryBlobStore(),
        clock=clock,
        registry=TaskRegistry(),
        settings=Settings(code_version="v2", version_routes={"v1": "arn:nowhere"}),
    )
    return runtime, queue


def queued(queue: MemoryWakeQueue, clock: VirtualClock) -> list[WakeUp]:
    return list(iter(lambda: queue.pop_due(clock.now()), None))


def work(runtime: Runtime, queue: MemoryWakeQueue, clock: VirtualClock) -> list[str]:
    """Deliver every due message as the worker's Lambda handler would; what each did."""
    return [runtime.process_wake_up(message.to_json()) for message in queued(queue, clock)]


def store_keepers(store: RunStore) -> dict[str, str]:
    """Runs a purge must leave alone, by why."""
    not_expired = finish(store, 9001, expires_at=T0 + 60 * DAY)
    unsettled = finish(store, 9002, expires_at=NOW - timedelta(minutes=1))
    store.update_run(unsettled, {"finished_at": NOW - timedelta(minutes=30)})
    follow_ups_pending = finish(store, 9003)
    store.update_run(follow_ups_pending, {"wake_at": T0})
    running = make_run(9004, status=RunStatus.RUNNING)
    store.create_run(running)
    store.append_checkpoint(running.run_id, make_checkpoint(1))
    return {
        "not expired": not_expired,
        "not settled": unsettled,
        "follow-ups pending": follow_ups_pending,
        "running": running.run_id,
    }


def intact(store: RunStore, run_id: str) -> bool:
    return store.get_run(run_id) is not None and len(store.load_history(run_id)) >= 1


def test_expired_runs_of_one_shard_page_after_a_run(store: RunStore) -> None:
    for n in range(1, 41):
        finish(store, n, checkpoints=0, events=0, expires_at=T0 + DAY + timedelta(seconds=n % 7))
    everything = store.expired_runs(NOW, limit=1000)
    for shard in range(SHARDS):
        expected = [run.run_id for run in everything if shard_of(run.run_id, SHARDS) == shard]
        assert expected, "every shard holds some of 40 runs"
        pages: list[str] = []
        after = None
        while page := store.expired_runs(NOW, limit=3, shard=shard, after=after):
            pages.extend(run.run_id for run in page)
            after = page[-1]
        assert pages == expected


def test_a_shard_lease_keeps_a_second_purger_off_until_it_expires(store: RunStore) -> None:
    until = T0 + timedelta(seconds=90)
    assert store.claim_purge_lease(1, "a", T0, until)
    assert not store.claim_purge_lease(1, "b", T0 + timedelta(seconds=89), until)
    assert store.claim_purge_lease(2, "b", T0, until)  # another shard is another lease
    assert store.claim_purge_lease(1, "a", T0, until)  # its holder may renew it
    store.release_purge_lease(1, "b")  # not b's: nothing happens
    assert not store.claim_purge_lease(1, "c", T0, until)
    assert store.claim_purge_lease(1, "c", until, until + timedelta(seconds=90))  # expired
    store.release_purge_lease(1, "c")
    assert store.claim_purge_lease(1, "d", until, until + timedelta(seconds=90))  # released


def test_the_workers_purge_every_expired_run_of_every_shard_after_a_sweep(
    store: RunStore, backend: str
) -> None:
    # given: 200 expired runs over the shards, some with an idempotency claim, and runs
    # that must stay
    expired = [
        finish(store, n, checkpoints=2, events=1, **({"idempotency_key": f"k{n}"} if n % 5 else {}))
        for n in range(1, EXPIRED + 1)
    ]
    keepers = store_keepers(store)
    assert {shard_of(run_id, SHARDS) for run_id in expired} == set(range(SHARDS))
    clock = VirtualClock(NOW)
    runtime, queue = runtime_on(store, clock)

    # when: the scheduled sweep runs
    runtime.sweep()

    # then: one purge message per shard (and the wake-up of the run whose follow-ups are
    # pending), and the sweeper itself deleted nothing
    sent = queued(queue, clock)
    messages = [message for message in sent if message.reason is WakeReason.PURGE]
    assert sorted(message.shard or 0 for message in messages) == list(range(SHARDS))
    assert [message.run_id for message in sent if message not in messages] == [
        keepers["follow-ups pending"]
    ]
    assert all(store.get_run(run_id) is not None for run_id in expired)

    # when: the workers take them
    outcomes = [runtime.process_wake_up(message.to_json()) for message in messages]

    # then: every expired run is gone with all its items; the others kept everything
    assert outcomes == ["purged"] * SHARDS
    assert store.expired_runs(NOW, limit=10)[0].run_id in keepers.values()
    for run_id in expired:
        assert store.get_run(run_id) is None
        assert store.load_history(run_id) == []
        assert store.list_inbox(run_id) == []
        assert keys_left(backend, run_id) == []
    for why, run_id in keepers.items():
        assert intact(store, run_id), why
    again, created = store.create_run(make_run(1, run_id="run_100001", idempotency_key="k1"))
    assert created and again.run_id == "run_100001"  # the purged run's claim went with it
    assert queued(queue, clock) == []  # no continuation: every shard was done


def test_a_purge_message_for_a_held_shard_is_dropped(store: RunStore) -> None:
    run_ids = [finish(store, n) for n in range(1, 21)]
    shard = shard_of(run_ids[0], SHARDS)
    clock = VirtualClock(NOW)
    runtime, queue = runtime_on(store, clock)
    # another purger is still draining the shard
    assert store.claim_purge_lease(shard, "other", NOW, NOW + PURGE_BUDGET + LEASE_MARGIN)

    # a second message (the next sweep's, or a duplicate) is acknowledged and dropped
    assert runtime.process_wake_up(WakeUp.purge(shard).to_json()) == "purge_held"
    assert runtime.process_wake_up(WakeUp.purge(shard).to_json()) == "purge_held"
    assert store.get_run(run_ids[0]) is not None

    # the other purger died: once its lease has expired, the next sweep's message takes over
    clock.advance(PURGE_BUDGET + LEASE_MARGIN)
    runtime.sweep()
    assert work(runtime, queue, clock).count("purged") == len(
        {shard_of(run_id, SHARDS) for run_id in run_ids}
    )
    assert all(store.get_run(run_id) is None for run_id in run_ids)
    # late and duplicate messages find nothing left, and hold nothing afterwards
    for _ in range(2):
        assert runtime.process_wake_up(WakeUp.purge(shard).to_json()) == "purged"
    assert store.claim_purge_lease(shard, "later", clock.now(), clock.now() + PURGE_BUDGET)


class TickingStore:
    """A store on which every run delete takes a virtual second."""

    def __init__(self, store: RunStore, clock: VirtualClock) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self.deletes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def delete_run(self, run_id: str) -> int:
        with self._lock:
            self.deletes += 1
            self._clock.advance(timedelta(seconds=1))
        return self._store.delete_run(run_id)


def test_a_purger_out_of_budget_hands_over_to_a_continuation(store: RunStore) -> None:
    # given: more runs in one shard than a purger deletes within its budget
    clock = VirtualClock(NOW)
    ticking = TickingStore(store, clock)
    run_ids = [finish(store, n, checkpoints=1, events=0) for n in range(1, 160)]
    shard = shard_of(run_ids[0], SHARDS)
    in_shard = [run_id for run_id in run_ids if shard_of(run_id, SHARDS) == shard]
    assert len(in_shard) > 25
    queue = MemoryWakeQueue(clock)

    # when: a purger gets a budget of 10 (virtual) seconds, pages of 10
    done = purge_shard(ticking, queue, clock, shard, budget=timedelta(seconds=10), page_size=10)

    # then: it stopped after the page that spent it, and sent the shard's message again
    assert done.continued and 10 <= done.purged < len(in_shard)
    assert queued(queue, clock) == [WakeUp.purge(shard)]
    left = [run_id for run_id in in_shard if store.get_run(run_id) is not None]
    assert len(left) == len(in_shard) - done.purged

    # when: the continuation's invocation has a budget that suffices
    rest = purge_shard(ticking, queue, clock, shard, budget=timedelta(hours=1), page_size=10)

    # then: the shard is done, and nothing else was touched
    assert not rest.continued and rest.purged == len(left)
    assert all(store.get_run(run_id) is None for run_id in in_shard)
    assert queued(queue, clock) == []
    others = [run_id for run_id in run_ids if run_id not in in_shard]
    assert all(store.get_run(run_id) is not None for run_id in others)


def test_the_sweep_sends_nothing_when_no_run_has_expired(store: RunStore) -> None:
    keepers = store_keepers(store)
    clock = VirtualClock(T0 + DAY)
    queue = MemoryWakeQueue(clock)
    assert send_purge_messages(store, queue, clock) == 0
    # past the unsettled run's expiry: its shard's message purges nothing yet
    clock.set(NOW)
    assert send_purge_messages(store, queue, clock) >= 1
    runtime, _ = runtime_on(store, clock)
    for message in queued(queue, clock):
        assert runtime.process_wake_up(message.to_json()) == "purged"
    for why, run_id in keepers.items():
        assert intact(store, run_id), why
