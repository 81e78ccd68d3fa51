"""Bounded items and reads: the inbox loses what the log consumed, and a batch's end refers
to its children's result items (read a page at a time) instead of copying them.

Logs written by the code before (consumption by count, batch ends with every outcome) must
still replay: a run in flight across the deploy carries one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from durable import Context, TaskRegistry, task
from durable.batch_results import PAGE_SIZE, BatchResults
from durable.errors import BatchFailedError, CallbackAlreadyCompletedError, NonRetryableError
from durable.records import BatchItemResult, Checkpoint, CheckpointKind, InboxEvent
from durable.replayer import ReplayStatus, replay_run
from durable.serialization import dumps
from durable.testing import TestEnvironment


def _two_approvals(registry: TaskRegistry, effects: list[str]) -> None:
    @task(id="two-approvals", registry=registry)
    def two_approvals(ctx: Context, payload: None) -> list[Any]:
        first = ctx.wait_for_event("approval")
        ctx.step("between", lambda: effects.append("between"))
        second = ctx.wait_for_event("approval")
        return [first, second]


def _entries(env: TestEnvironment, run_id: str, kind: CheckpointKind) -> list[Checkpoint]:
    return [cp for cp in env.store.load_history(run_id) if cp.kind is kind]


# -- the inbox --------------------------------------------------------------------------


def test_a_consumed_event_leaves_the_inbox_and_its_entry_names_it(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    effects: list[str] = []
    _two_approvals(registry, effects)
    run = env.trigger("two-approvals")
    env.run_until_idle()

    env.send_event(run.run_id, "approval", {"n": 1})
    (first,) = env.store.list_inbox(run.run_id)
    env.run_until_idle()
    assert env.store.list_inbox(run.run_id) == []  # consumed: deleted by that invocation
    env.send_event(run.run_id, "approval", {"n": 2})
    (second,) = env.store.list_inbox(run.run_id)
    info = env.run_until_complete(run.run_id)

    assert info.result == [{"n": 1}, {"n": 2}]
    assert env.store.list_inbox(run.run_id) == []
    received = _entries(env, run.run_id, CheckpointKind.EVENT_RECEIVED)
    assert [cp.inbox_id for cp in received] == [first.inbox_id, second.inbox_id]


def test_events_sent_before_the_waits_are_taken_in_order_and_deleted(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    effects: list[str] = []
    _two_approvals(registry, effects)
    run = env.trigger("two-approvals")
    for n in (1, 2, 3):
        env.send_event(run.run_id, "approval", {"n": n})
        env.clock.set(env.now() + timedelta(milliseconds=1))  # inbox ids sort by the ms

    info = env.run_until_complete(run.run_id)

    assert info.result == [{"n": 1}, {"n": 2}]
    assert [env.codec.decode(e.data) for e in env.store.list_inbox(run.run_id)] == [{"n": 3}]


def test_a_consumed_event_left_behind_by_a_crash_is_never_delivered_again(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    # given: the first event was consumed (its entry written), and its delete never happened
    effects: list[str] = []
    _two_approvals(registry, effects)
    run = env.trigger("two-approvals")
    env.run_until_idle()
    env.send_event(run.run_id, "approval", {"n": 1})
    (first,) = env.store.list_inbox(run.run_id)
    env.run_until_idle()
    env.store.put_inbox(first)  # back, as if the process died before deleting it

    # when: the second event comes
    env.send_event(run.run_id, "approval", {"n": 2})
    info = env.run_until_complete(run.run_id)

    # then: the second wait got the second event, and the left-over one is gone too
    assert info.result == [{"n": 1}, {"n": 2}]
    assert effects == ["between"]
    assert env.store.list_inbox(run.run_id) == []


def test_an_old_log_that_consumed_by_count_still_replays(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    # given: a run in flight across the deploy, whose log consumed the first event the old
    # way (an entry naming no inbox event; the old code never deleted the event)
    effects: list[str] = []
    _two_approvals(registry, effects)
    run = env.trigger("two-approvals")
    events = [
        InboxEvent(run.run_id, f"00000000000{n}-aa", "approval", dumps({"n": n}), env.now())
        for n in (1, 2)
    ]
    for event in events:
        env.store.put_inbox(event)
    env.store.append_checkpoint(
        run.run_id,
        Checkpoint(
            seq=1,
            kind=CheckpointKind.EVENT_RECEIVED,
            op=0,
            name="approval",
            task_attempt=1,
            at=env.now(),
            value=events[0].data,
        ),
    )

    # when: today's code runs it
    info = env.run_until_complete(run.run_id)

    # then: the first wait replays the old entry, the second takes the next event, by id;
    # the event the old entry consumed is left for the retention purge
    assert info.result == [{"n": 1}, {"n": 2}]
    assert env.store.list_inbox(run.run_id) == [events[0]]
    received = _entries(env, run.run_id, CheckpointKind.EVENT_RECEIVED)
    assert [cp.inbox_id for cp in received] == [None, events[1].inbox_id]


def test_a_callback_completion_leaves_the_inbox_once_consumed(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    tokens: list[str] = []

    @task(id="callback-gate", registry=registry)
    def callback_gate(ctx: Context, payload: None) -> Any:
        return ctx.wait_for_callback("approval", submit=tokens.append)

    run = env.trigger("callback-gate")
    env.run_until_idle()
    env.complete_callback(tokens[0], {"ok": True})
    assert len(env.store.list_inbox(run.run_id)) == 1

    info = env.run_until_complete(run.run_id)

    assert info.result == {"ok": True}
    assert env.store.list_inbox(run.run_id) == []
    (completed,) = _entries(env, run.run_id, CheckpointKind.CALLBACK_COMPLETED)
    assert completed.inbox_id is not None and completed.inbox_id.startswith("cb-")
    # a retry of the same completion, after the run consumed it, is refused and stores nothing
    with pytest.raises(CallbackAlreadyCompletedError):
        env.complete_callback(tokens[0], {"ok": True})
    assert env.store.list_inbox(run.run_id) == []


def test_a_retried_send_after_consumption_stores_nothing(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    effects: list[str] = []
    _two_approvals(registry, effects)
    run = env.trigger("two-approvals")
    env.run_until_idle()
    env.send_event(run.run_id, "approval", {"n": 1}, event_id="delivery-1")
    env.run_until_idle()
    assert env.store.list_inbox(run.run_id) == []

    env.send_event(run.run_id, "approval", {"n": 1}, event_id="delivery-1")  # the caller retries
    env.send_event(run.run_id, "approval", {"n": 2}, event_id="delivery-2")
    info = env.run_until_complete(run.run_id)

    assert info.result == [{"n": 1}, {"n": 2}]
    assert env.store.list_inbox(run.run_id) == []


# -- batches ----------------------------------------------------------------------------


def _count_batch_reads(env: TestEnvironment) -> list[tuple[int, int | None]]:
    """Record each `list_batch_results` call's (start, limit) from now on."""
    reads: list[tuple[int, int | None]] = []
    original = env.store.list_batch_results

    def counted(
        run_id: str,
        task_attempt: int,
        position: int,
        *,
        start: int = 0,
        limit: int | None = None,
    ) -> list[BatchItemResult]:
        reads.append((start, limit))
        return original(run_id, task_attempt, position, start=start, limit=limit)

    env.store.list_batch_results = counted  # type: ignore[method-assign]
    return reads


def _big_map(registry: TaskRegistry, seen: list[Any], reads: Callable[[], int]) -> None:
    @task(id="square", registry=registry)
    def square(ctx: Context, payload: int) -> int:
        return payload * payload

    @task(id="squares-of", registry=registry)
    def squares_of(ctx: Context, payload: int) -> dict[str, Any]:
        results = ctx.map("square", list(range(payload)), max_concurrency=100)
        seen.append(("after map", reads()))
        count = len(results)
        seen.append(("after len", reads()))
        values = list(results)
        seen.append(("after list", reads()))
        again = [results[0], results[-1], *results[10:12]]
        seen.append(("after reuse", reads()))
        return {"count": count, "values": values, "again": again, "same": results == values}


def _end_entry(env: TestEnvironment, run_id: str) -> Checkpoint:
    (end,) = _entries(env, run_id, CheckpointKind.BATCH_COMPLETED)
    return end


def test_a_map_of_1000_children_keeps_a_small_end_entry_and_pages_its_results(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    seen: list[Any] = []
    reads = _count_batch_reads(env)
    _big_map(registry, seen, lambda: len(reads))
    small = env.trigger("squares-of", 10)
    env.run_until_complete(small.run_id)
    reads.clear()
    seen.clear()

    run = env.trigger("squares-of", 1000)
    info = env.run_until_complete(run.run_id)

    squares = [i * i for i in range(1000)]
    assert info.result == {
        "count": 1000,
        "values": squares,
        "again": [0, 999 * 999, 100, 121],
        "same": True,
    }
    # read only when looked at, a page at a time, each page once
    last = seen[-4:]  # the invocation that got past the map
    pages = -(-1000 // PAGE_SIZE)
    assert last == [
        ("after map", 0),
        ("after len", 0),
        ("after list", pages),
        ("after reuse", pages),
    ]
    assert reads == [(page * PAGE_SIZE, PAGE_SIZE) for page in range(pages)]
    # the end entry is as small for 1,000 children as for 10 (the digits of the counts)
    big_entry, small_entry = _end_entry(env, run.run_id), _end_entry(env, small.run_id)
    assert big_entry.value is not None and small_entry.value is not None
    assert len(big_entry.value) < 200
    assert len(big_entry.value) - len(small_entry.value) <= 2 * len("1000") + len(run.run_id)


def test_a_replay_that_does_not_look_at_the_results_reads_none(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="square", registry=registry)
    def square(ctx: Context, payload: int) -> int:
        return payload * payload

    @task(id="map-then-sleep", registry=registry)
    def map_then_sleep(ctx: Context, payload: None) -> int:
        results = ctx.map("square", [1, 2, 3])
        total = ctx.step("sum", lambda: sum(results))
        ctx.sleep("later", timedelta(hours=1))
        return total

    reads = _count_batch_reads(env)
    run = env.trigger("map-then-sleep")
    env.run_until_idle()
    assert len(reads) == 1  # the invocation that summed them

    info = env.run_until_complete(run.run_id)  # replays the map and the step

    assert info.result == 14
    assert len(reads) == 1


def test_a_batch_decided_early_replays_the_same_outcome_after_late_children_end(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    seen: list[list[int]] = []

    @task(id="picky-child", registry=registry)
    def picky_child(ctx: Context, payload: str) -> str:
        if payload == "bad":
            raise NonRetryableError("bad item")
        ctx.wait_for_event("go")
        return payload

    @task(id="picky-parent", registry=registry)
    def picky_parent(ctx: Context, payload: None) -> str:
        try:
            ctx.map("picky-child", ["slow", "bad", "slow"], tolerated_failures=0)
        except BatchFailedError as exc:
            seen.append([index for index, _, _ in exc.failures])
        ctx.sleep("later", timedelta(hours=1))
        return "done"

    reads = _count_batch_reads(env)
    run = env.trigger("picky-parent")
    info = env.run_until_complete(run.run_id)
    reads_by_the_run = list(reads)

    assert info.result == "done"
    # the children still running were cancelled after the decision and reported then...
    late = env.store.list_batch_results(run.run_id, 1, 0)
    assert [(item.index, item.ok) for item in late] == [(0, False), (1, False), (2, False)]
    # ...but the batch's outcome is what it was at the decision, on every replay
    assert len(seen) >= 2 and all(failures == [1] for failures in seen)
    # one read each time: what the decision read is not read again for its outcome
    assert reads_by_the_run == [(0, PAGE_SIZE)] * len(seen)
    (end,) = _entries(env, run.run_id, CheckpointKind.BATCH_FAILED)
    assert end.value is not None and '"ended"' in end.value


def test_an_old_log_with_every_outcome_in_the_batch_end_still_replays(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="square", registry=registry)
    def square(ctx: Context, payload: int) -> int:
        return payload * payload

    @task(id="old-map", registry=registry)
    def old_map(ctx: Context, payload: None) -> list[Any]:
        results = ctx.map("square", [1, 2, 3], tolerated_failures=1)
        return [type(r).__name__ if isinstance(r, Exception) else r for r in results]

    # given: a log whose batch end copies every child's outcome, as the code before wrote
    run = env.trigger("old-map")
    outcomes = [
        {"state": "ok", "value": 1, "run_id": f"{run.run_id}.1.0.0"},
        {"state": "failed", "run_id": f"{run.run_id}.1.0.1", "type": "X", "message": "no"},
        {"state": "ok", "value": 9, "run_id": f"{run.run_id}.1.0.2"},
    ]
    for seq, kind, value in [
        (1, CheckpointKind.BATCH_STARTED, {"total": 3}),
        (2, CheckpointKind.BATCH_COMPLETED, outcomes),
    ]:
        env.store.append_checkpoint(
            run.run_id,
            Checkpoint(
                seq=seq,
                kind=kind,
                op=0,
                name="map:square",
                task_attempt=1,
                at=env.now(),
                value=dumps(value),
            ),
        )

    info = env.run_until_complete(run.run_id)

    assert info.result == [1, "ChildRunFailedError", 9]
    assert env.list(task_id="square").runs == []  # answered from the log: nothing started


def test_map_results_are_a_read_only_sequence_that_equals_its_list(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    kept: list[Any] = []

    @task(id="square", registry=registry)
    def square(ctx: Context, payload: int) -> int:
        return payload * payload

    @task(id="keep-map", registry=registry)
    def keep_map(ctx: Context, payload: None) -> Any:
        results = ctx.map("square", [1, 2, 3])
        kept.append(results)
        return results  # stored as the list it stands for

    run = env.trigger("keep-map")
    info = env.run_until_complete(run.run_id)

    results = kept[-1]
    assert isinstance(results, BatchResults)
    assert info.result == [1, 4, 9]
    assert results == [1, 4, 9] and results != [1, 4] and results == (1, 4, 9)
    assert list.__eq__([1, 4, 9], results) is NotImplemented  # so Python asks `results`
    assert (results[-1], results[1:], len(results), 4 in results) == (9, [4, 9], 3, True)
    with pytest.raises(IndexError):
        results[3]
    with pytest.raises(TypeError):
        results[0] = 0  # type: ignore[index]


def test_durable_replay_checks_a_map_up_to_where_the_code_reads_its_results(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    """A history does not carry the batch's result items: the replay of a recorded run
    ends, as at the end of its history, where the code first reads them."""

    @task(id="square", registry=registry)
    def square(ctx: Context, payload: int) -> int:
        return payload * payload

    @task(id="map-then-steps", registry=registry)
    def map_then_steps(ctx: Context, payload: None) -> int:
        results = ctx.map("square", [1, 2])
        ctx.step("before-reading", lambda: None)
        total = sum(results)
        return int(ctx.step("after-reading", lambda: total))

    run = env.trigger("map-then-steps")
    assert env.run_until_complete(run.run_id).result == 5
    stored = env.store.get_run(run.run_id)
    assert stored is not None

    report = replay_run(stored, env.store.load_history(run.run_id), env.codec, registry)

    assert (report.status, report.positions_replayed) == (ReplayStatus.OK, 2)


def test_large_child_results_stay_in_the_blob_store_and_are_read_when_looked_at(
    registry: TaskRegistry,
) -> None:
    @task(id="big-text", registry=registry)
    def big_text(ctx: Context, payload: int) -> str:
        return str(payload) * 3000  # over the inline limit below: stored in the blob store

    @task(id="big-texts", registry=registry)
    def big_texts(ctx: Context, payload: None) -> list[int]:
        results = ctx.map("big-text", [1, 2, 3])
        return [len(text) + int(text[0]) for text in results]

    with TestEnvironment(registry=registry, inline_limit=1024) as env:
        run = env.trigger("big-texts")
        info = env.run_until_complete(run.run_id)
        items = env.store.list_batch_results(run.run_id, 1, 0)
        (end,) = _entries(env, run.run_id, CheckpointKind.BATCH_COMPLETED)

    assert info.result == [3001, 3002, 3003]
    assert all(item.result is not None and item.result.startswith("@blob:") for item in items)
    assert end.value is not None and not end.value.startswith("@blob:") and len(end.value) < 200
