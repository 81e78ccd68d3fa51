"""PURGE messages: what parses as one, what is refused, and that no code version holds one."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from durable.blobs.memory import MemoryBlobStore
from durable.bootstrap import MALFORMED, Runtime
from durable.clock import VirtualClock
from durable.queues.memory import MemoryWakeQueue
from durable.records import RunRecord, RunStatus, WakeReason, WakeUp
from durable.services.purge import SETTLE
from durable.settings import Settings
from durable.storage.memory import MemoryRunStore
from durable.task import TaskRegistry


def test_a_purge_message_round_trips_and_names_no_run() -> None:
    message = WakeUp.purge(7)
    assert message.reason is WakeReason.PURGE and message.shard == 7
    assert WakeUp.from_json(message.to_json()) == message
    assert "shard" not in json.loads(WakeUp("run_1", WakeReason.START).to_json())


@pytest.mark.parametrize(
    "body",
    [
        {"run_id": "PURGE#1", "reason": "purge"},  # no shard
        {"run_id": "PURGE#-1", "reason": "purge", "shard": -1},
        {"run_id": "PURGE#1", "reason": "purge", "shard": "1"},
        {"run_id": "PURGE#1", "reason": "purge", "shard": True},
        {"run_id": "PURGE#1", "reason": "purge", "shard": 1.0},
        {"run_id": "run_1", "reason": "purge", "shard": 1},  # names a run
        {"run_id": "run_1", "reason": "start", "shard": 1},  # a run's wake-up with a shard
        {"run_id": "PURGE#1", "reason": "purge", "shard": [1]},
    ],
)
def test_a_malformed_purge_message_is_refused_and_dropped(body: dict[str, object]) -> None:
    raw = json.dumps(body)
    with pytest.raises(ValueError, match=r"purge message|wake-up with a shard"):
        WakeUp.from_json(raw)
    clock = VirtualClock()
    runtime = Runtime.from_parts(
        store=MemoryRunStore(),
        queue=MemoryWakeQueue(clock),
        blobs=MemoryBlobStore(),
        clock=clock,
        registry=TaskRegistry(),
    )
    assert runtime.process_wake_up(raw) == MALFORMED


def test_a_purge_message_is_never_routed_to_a_runs_code_version() -> None:
    # given: expired runs of code version v1, and a worker of v2 that routes v1's wake-ups
    clock = VirtualClock()
    store = MemoryRunStore(index_shards=1)
    now = clock.now()
    for n in range(3):
        store.create_run(
            RunRecord(
                run_id=f"run_{n:06d}",
                task_id="t",
                status=RunStatus.COMPLETED,
                payload="null",
                created_at=now,
                updated_at=now,
                finished_at=now,
                expires_at=now + timedelta(days=1),
                code_version="v1",
            )
        )
    runtime = Runtime.from_parts(
        store=store,
        queue=MemoryWakeQueue(clock),
        blobs=MemoryBlobStore(),
        clock=clock,
        registry=TaskRegistry(),
        settings=Settings(code_version="v2", version_routes={"v1": "arn:aws:lambda:nowhere"}),
    )
    clock.advance(timedelta(days=1) + SETTLE)

    # when: it takes the shard's purge message (a route would call Lambda, and fail here)
    outcome = runtime.process_wake_up(WakeUp.purge(0).to_json())

    # then: it purged them itself
    assert outcome == "purged"
    assert store.expired_runs(clock.now(), limit=10) == []
