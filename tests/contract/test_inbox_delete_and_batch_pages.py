"""RunStore contract, bounded items: consumed inbox events are deleted, entries name the
event they consumed, and a batch's results are read in pages. Memory and moto alike."""

from __future__ import annotations

import json

from tests.contract.test_run_store import T0, make_checkpoint, make_run

from durable.records import BatchItemResult, BatchRecord, CheckpointKind, ErrorInfo, InboxEvent
from durable.storage.base import RunStore


def _event(run: int, millis: int, name: str = "approval") -> InboxEvent:
    return InboxEvent(f"run_{run:06d}", f"{millis:012x}-aa", name, f'{{"i": {millis}}}', T0)


def test_delete_inbox_deletes_the_named_events_of_that_run_only(store: RunStore) -> None:
    store.create_run(make_run(1))
    store.create_run(make_run(2))
    mine = [_event(1, millis) for millis in range(1, 31)]  # more than one batch write
    for event in mine:
        store.put_inbox(event)
    store.put_inbox(_event(2, 1))

    doomed = [event.inbox_id for event in mine[:27]] + ["000000000999-zz"]  # one not there
    store.delete_inbox("run_000001", doomed)

    assert store.list_inbox("run_000001") == mine[27:]
    assert store.list_inbox("run_000002") == [_event(2, 1)]


def test_deleting_an_inbox_twice_or_nothing_changes_nothing(store: RunStore) -> None:
    store.create_run(make_run(1))
    store.put_inbox(_event(1, 1))
    store.put_inbox(_event(1, 2))

    store.delete_inbox("run_000001", [_event(1, 1).inbox_id])
    store.delete_inbox("run_000001", [_event(1, 1).inbox_id])
    store.delete_inbox("run_000001", [])
    store.delete_inbox("run_missing", [_event(1, 2).inbox_id])

    assert store.list_inbox("run_000001") == [_event(1, 2)]


def test_a_consuming_checkpoint_keeps_the_inbox_id_it_consumed(store: RunStore) -> None:
    store.create_run(make_run(1))
    received = make_checkpoint(
        1, kind=CheckpointKind.EVENT_RECEIVED, name="approval", inbox_id="000000000001-aa"
    )
    step = make_checkpoint(2)
    store.append_checkpoint("run_000001", received)
    store.append_checkpoint("run_000001", step)

    assert store.load_history("run_000001") == [received, step]
    assert [cp.inbox_id for cp in store.load_history("run_000001")] == ["000000000001-aa", None]


def _batch(total: int) -> BatchRecord:
    return BatchRecord(
        run_id="run_000001",
        position=3,
        task_attempt=2,
        total=total,
        calls=json.dumps([["square", i] for i in range(total)]),
        max_concurrency=total,
        tolerated_failures=total,
        first_success=False,
    )


def _result(index: int) -> BatchItemResult:
    if index % 7 == 3:
        return BatchItemResult(
            index, f"run_000001.2.3.{index}", False, error=ErrorInfo("ValueError", f"no {index}")
        )
    return BatchItemResult(index, f"run_000001.2.3.{index}", True, result=str(index * index))


def test_batch_results_are_read_in_pages_from_an_index(store: RunStore) -> None:
    store.create_run(make_run(1))
    store.create_batch(_batch(120))
    ended = [index for index in range(120) if index % 10 != 9]  # some never ended
    for index in reversed(ended):
        store.record_batch_result("run_000001", 2, 3, _result(index))

    pages: list[list[BatchItemResult]] = []
    start = 0
    while True:
        page = store.list_batch_results("run_000001", 2, 3, start=start, limit=40)
        pages.append(page)
        if len(page) < 40:
            break
        start = page[-1].index + 1

    assert [len(page) for page in pages] == [40, 40, 28]
    assert [item for page in pages for item in page] == [_result(index) for index in ended]
    assert store.list_batch_results("run_000001", 2, 3) == [_result(index) for index in ended]
    # a page may start at any index, present or not
    assert store.list_batch_results("run_000001", 2, 3, start=19, limit=3) == [
        _result(20),
        _result(21),
        _result(22),
    ]
    assert store.list_batch_results("run_000001", 2, 3, start=119, limit=10) == []
    assert store.list_batch_results("run_000001", 2, 3, start=500, limit=10) == []


def test_a_page_of_batch_results_holds_only_that_batch(store: RunStore) -> None:
    store.create_run(make_run(1))
    for position in (3, 30):
        batch = _batch(3)
        store.create_batch(BatchRecord(**{**_as_dict(batch), "position": position}))
        for index in range(3):
            store.record_batch_result("run_000001", 2, position, _result(index))
    store.create_batch(BatchRecord(**{**_as_dict(_batch(3)), "task_attempt": 1}))
    store.record_batch_result("run_000001", 1, 3, _result(0))

    assert store.list_batch_results("run_000001", 2, 3, start=0, limit=10) == [
        _result(index) for index in range(3)
    ]
    assert store.list_batch_results("run_000001", 1, 3, start=0, limit=10) == [_result(0)]


def _as_dict(batch: BatchRecord) -> dict[str, object]:
    return {name: getattr(batch, name) for name in BatchRecord.__dataclass_fields__}
