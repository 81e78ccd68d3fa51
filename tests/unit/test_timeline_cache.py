"""The run page's polls read a live run's log once, then only its tail, and each of its
blobs once (`Client.timeline` on `durable.storage.log_cache` and `durable.blobs.cache`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable import Context, RunStatus, TaskRegistry, task
from durable.blobs.cache import CachedBlobs
from durable.blobs.memory import MemoryBlobStore
from durable.client import Client
from durable.clock import VirtualClock
from durable.errors import DurableError, InfrastructureError
from durable.queues.memory import MemoryWakeQueue
from durable.records import Checkpoint, CheckpointKind, RunRecord
from durable.storage.memory import MemoryRunStore
from durable.testing import TestEnvironment
from durable.values import BLOB_PREFIX, ValueCodec

TICKS = 8
INLINE_LIMIT = 256  # a value over 256 bytes is a blob
T0 = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class Reads:
    """The warm client's reads while `counting`: `load_history` calls and blob gets."""

    after_seqs: list[int] = field(default_factory=list)
    entries: list[int] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    active: bool = False

    @contextmanager
    def counting(self) -> Iterator[None]:
        self.active = True
        try:
            yield
        finally:
            self.active = False


def count_reads(monkeypatch: pytest.MonkeyPatch, env: TestEnvironment) -> Reads:
    reads = Reads()
    load, get = env.store.load_history, env.blobs.get

    def loading(run_id: str, after_seq: int = 0) -> list[Checkpoint]:
        history: list[Checkpoint] = load(run_id, after_seq)
        if reads.active:
            reads.after_seqs.append(after_seq)
            reads.entries += [cp.seq for cp in history]
        return history

    def getting(key: str) -> bytes:
        if reads.active:
            reads.blobs.append(key)
        data: bytes = get(key)
        return data

    monkeypatch.setattr(env.store, "load_history", loading)
    monkeypatch.setattr(env.blobs, "get", getting)
    return reads


def cold_client(env: TestEnvironment) -> Client:
    """A client that has read nothing yet: what a cold API container answers."""
    return Client(
        store=env.runtime_store,
        queue=env.runtime_queue,
        codec=env.codec,
        clock=env.clock,
        registry=env.registry,
    )


def blob_keys(log: list[Checkpoint]) -> list[str]:
    return sorted(
        cp.value.removeprefix(BLOB_PREFIX)
        for cp in log
        if cp.value is not None and cp.value.startswith(BLOB_PREFIX)
    )


@pytest.fixture
def blob_env(registry: TaskRegistry) -> Iterator[TestEnvironment]:
    @task(id="ticker", registry=registry)
    def ticker(ctx: Context, payload: None) -> int:
        for i in range(TICKS):
            # Every other tick's output is too large for an item: a blob.
            ctx.step(f"tick-{i}", lambda i=i: {"i": i, "pad": "x" * 400} if i % 2 == 0 else i)
            ctx.sleep(f"wait-{i}", timedelta(minutes=1))
        return TICKS

    with TestEnvironment(registry=registry, inline_limit=INLINE_LIMIT) as environment:
        yield environment


def test_a_live_run_polled_reads_its_log_head_once_then_only_the_tail(
    blob_env: TestEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a live run that writes a step and a sleep a minute, polled every minute
    env = blob_env
    reads = count_reads(monkeypatch, env)
    run_id = env.trigger("ticker").run_id
    env.run_until_idle()
    held: list[int] = []  # the log's length at each poll

    # when
    for _ in range(TICKS + 1):
        with reads.counting():
            timeline = env.client.timeline(run_id)
        # then each poll shows what a cold container would
        assert timeline == cold_client(env).timeline(run_id)
        held.append(len(env.store.load_history(run_id)))
        env.advance(timedelta(minutes=1))

    # then the first poll read the log whole; each later one the entries after the last
    assert env.get(run_id).status is RunStatus.COMPLETED and timeline["live"] is False
    assert reads.after_seqs == [0, *held[:-1]]
    log = env.store.load_history(run_id)
    assert reads.entries == [cp.seq for cp in log]  # each entry read once
    # and each blob-stored output was fetched once, though every poll decoded it
    assert len(blob_keys(log)) == TICKS // 2
    assert sorted(reads.blobs) == blob_keys(log)


def test_history_reads_only_what_the_timeline_did_not(
    blob_env: TestEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = blob_env
    run_id = env.trigger("ticker").run_id
    env.run_until_complete(run_id)
    env.client.timeline(run_id)
    reads = count_reads(monkeypatch, env)

    with reads.counting():
        history = env.client.history(run_id)

    log = env.store.load_history(run_id)
    assert reads.after_seqs == [len(log)] and reads.entries == [] and reads.blobs == []
    assert [entry.to_dict() for entry in history] == [
        entry.to_dict() for entry in cold_client(env).history(run_id)
    ]
    assert history[0].value == {"i": 0, "pad": "x" * 400}


def test_a_purged_run_created_again_under_its_id_is_not_served_from_the_cache(
    registry: TaskRegistry,
) -> None:
    @task(id="echo", registry=registry)
    def echo(ctx: Context, payload: dict[str, Any]) -> int:
        for i in range(payload["steps"]):
            ctx.step(f"say-{i}", lambda: payload["word"] * 200)  # a blob
        return int(payload["steps"])

    retention = timedelta(hours=1)
    with TestEnvironment(registry=registry, inline_limit=INLINE_LIMIT, retention=retention) as env:
        # given a finished run with a caller-given id, its timeline read (and cached)
        env.client.trigger("echo", {"steps": 3, "word": "old"}, run_id="report-42")
        env.run_until_complete("report-42")
        old = env.client.timeline("report-42")
        assert [op["value"] for op in old["operations"]] == ["old" * 200] * 3

        # when it is purged and a shorter run is created under the same id
        env.advance(retention * 2)
        assert env.purge() == 1
        env.client.trigger("echo", {"steps": 1, "word": "new"}, run_id="report-42")
        env.run_until_complete("report-42")

        # then the timeline is the new run's, as a cold container reads it
        new = env.client.timeline("report-42")
        assert [op["value"] for op in new["operations"]] == ["new" * 200]
        assert new == cold_client(env).timeline("report-42")
        assert [e.value for e in env.client.history("report-42")] == ["new" * 200]


def test_a_poll_whose_tail_read_fails_leaves_the_next_poll_right(
    blob_env: TestEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = blob_env
    run_id = env.trigger("ticker").run_id
    env.run_until_idle()
    env.client.timeline(run_id)
    env.advance(timedelta(minutes=1))
    load = env.store.load_history

    def failing(run_id: str, after_seq: int = 0) -> list[Checkpoint]:
        raise InfrastructureError("DynamoDB throttled the read")

    monkeypatch.setattr(env.store, "load_history", failing)
    with pytest.raises(InfrastructureError):
        env.client.timeline(run_id)
    monkeypatch.setattr(env.store, "load_history", load)
    env.advance(timedelta(minutes=1))

    assert env.client.timeline(run_id) == cold_client(env).timeline(run_id)


def _record(run_id: str = "run_1") -> RunRecord:
    return RunRecord(
        run_id=run_id,
        task_id="t",
        status=RunStatus.RUNNING,
        payload="null",
        created_at=T0,
        updated_at=T0,
        attempt=1,
    )


def test_a_client_given_another_store_reads_that_store() -> None:
    # given two stores, each with a run of the same id and creation, a value in a blob each
    codecs, stores = [], []
    for word in ("first", "second"):
        store, codec = MemoryRunStore(), ValueCodec(MemoryBlobStore(), inline_limit=64)
        store.create_run(_record())
        stored = codec.encode(word * 50, "run_1/step")
        entry = Checkpoint(
            seq=1,
            kind=CheckpointKind.STEP_COMPLETED,
            op=0,
            name="s",
            task_attempt=1,
            at=T0,
            value=stored,
        )
        store.append_checkpoint("run_1", entry)
        stores.append(store)
        codecs.append(codec)
    clock = VirtualClock(T0)
    client = Client(store=stores[0], queue=MemoryWakeQueue(clock), codec=codecs[0], clock=clock)
    assert [e.value for e in client.history("run_1")] == ["first" * 50]

    # when its store and codec are swapped (as tests and tools do)
    client.store, client.codec = stores[1], codecs[1]

    # then it reads the new ones, nothing of the first
    assert [e.value for e in client.history("run_1")] == ["second" * 50]
    (step,) = client.timeline("run_1")["operations"]
    assert step["value"] == "second" * 50


@dataclass
class CountedBlobs:
    """A memory blob store that counts its gets and can be told to fail them."""

    inner: MemoryBlobStore = field(default_factory=MemoryBlobStore)
    gets: list[str] = field(default_factory=list)
    failing: bool = False

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        self.gets.append(key)
        if self.failing:
            raise InfrastructureError("S3 is down")
        return self.inner.get(key)


def test_cached_blobs_read_each_key_once_and_keep_at_most_their_bytes() -> None:
    store = CountedBlobs()
    for name in "abcd":
        store.put(name, name.encode() * 100)
    cached = CachedBlobs(store, max_bytes=250)

    assert [cached.get(name) for name in "aab"] == [b"a" * 100, b"a" * 100, b"b" * 100]
    assert store.gets == ["a", "b"]
    cached.get("c")  # 300 bytes: "a", the least recently used, goes
    assert len(cached) == 2 and cached.held_bytes == 200
    cached.get("a")
    assert store.gets == ["a", "b", "c", "a"]


def test_cached_blobs_keep_neither_what_was_put_nor_a_failed_read_nor_a_blob_too_large() -> None:
    store = CountedBlobs()
    cached = CachedBlobs(store, max_bytes=150)
    cached.put("small", b"s" * 10)
    cached.put("large", b"l" * 200)
    assert len(cached) == 0

    store.failing = True
    with pytest.raises(InfrastructureError):
        cached.get("small")
    store.failing = False
    assert cached.get("small") == b"s" * 10 and cached.get("small") == b"s" * 10
    assert cached.get("large") == b"l" * 200 and cached.get("large") == b"l" * 200
    assert store.gets == ["small", "small", "large", "large"]
    with pytest.raises(DurableError, match="missing"):
        cached.get("absent")
