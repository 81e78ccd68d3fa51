"""RunStore contract, callbacks: single-use claims, expiry, tokens kept only as hashes,
and purged with their run. Every test runs on memory and on moto."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from tests.contract.conftest import REGION, TABLE
from tests.contract.test_retention import finish
from tests.contract.test_run_store import T0, make_checkpoint, make_run

from durable.errors import CallbackAlreadyCompletedError, CallbackNotFoundError
from durable.records import BatchItemResult, BatchRecord, CheckpointKind, ErrorInfo
from durable.storage.base import RunStore

TOKEN = "tok-" + "a" * 40


def test_a_callback_is_claimed_once(store: RunStore) -> None:
    store.create_run(make_run(1))
    store.put_callback(TOKEN, "run_000001", "approval", None)

    assert store.claim_callback(TOKEN, T0) == "run_000001"
    with pytest.raises(CallbackAlreadyCompletedError):
        store.claim_callback(TOKEN, T0)


def test_an_unknown_token_is_not_found(store: RunStore) -> None:
    with pytest.raises(CallbackNotFoundError):
        store.claim_callback("never-issued", T0)


def test_an_expired_callback_cannot_be_claimed(store: RunStore) -> None:
    store.create_run(make_run(1))
    store.put_callback(TOKEN, "run_000001", "approval", T0 + timedelta(hours=1))

    with pytest.raises(CallbackAlreadyCompletedError):
        store.claim_callback(TOKEN, T0 + timedelta(hours=1))
    other = TOKEN + "-2"
    store.put_callback(other, "run_000001", "approval", T0 + timedelta(hours=1))
    assert store.claim_callback(other, T0 + timedelta(minutes=59)) == "run_000001"


def test_the_token_itself_is_never_stored(backend: str, store: RunStore) -> None:
    store.create_run(make_run(1))
    store.put_callback(TOKEN, "run_000001", "approval", None)
    if backend == "moto":
        items: list[dict[str, Any]] = (
            boto3.resource("dynamodb", region_name=REGION).Table(TABLE).scan()["Items"]
        )
        assert TOKEN not in json.dumps(items, default=str)
        assert any(str(item["pk"]).startswith("CALLBACK#") for item in items)


def test_purging_a_run_deletes_its_callbacks(store: RunStore) -> None:
    run_id = finish(store, 1, checkpoints=0, events=0)
    store.append_checkpoint(
        run_id,
        make_checkpoint(
            1, kind=CheckpointKind.CALLBACK_CREATED, value=json.dumps(TOKEN), wake_at=None
        ),
    )
    store.put_callback(TOKEN, run_id, "approval", None)

    assert store.delete_run(run_id) >= 3  # run item, checkpoint, callback
    with pytest.raises(CallbackNotFoundError):
        store.claim_callback(TOKEN, T0)


# -- fan-out batches ---------------------------------------------------------------------


def _batch(total: int = 3, **fields: Any) -> BatchRecord:
    values: dict[str, Any] = {
        "run_id": "run_000001",
        "position": 4,
        "task_attempt": 1,
        "total": total,
        "calls": json.dumps([["square", i] for i in range(total)]),
        "max_concurrency": 2,
        "tolerated_failures": 0,
        "first_success": False,
    }
    values.update(fields)
    return BatchRecord(**values)


def test_a_batch_is_created_once_and_counts_each_child_once(store: RunStore) -> None:
    store.create_run(make_run(1))
    assert store.create_batch(_batch()) == _batch()
    assert store.create_batch(_batch(total=99)) == _batch()  # the stored one wins

    ok = BatchItemResult(index=1, run_id="run_000001.1.4.1", ok=True, result="4")
    batch, recorded = store.record_batch_result("run_000001", 1, 4, ok)
    assert recorded and (batch.succeeded, batch.failed) == (1, 0)
    batch, recorded = store.record_batch_result("run_000001", 1, 4, ok)
    assert not recorded and (batch.succeeded, batch.failed) == (1, 0)

    failed = BatchItemResult(
        index=0, run_id="run_000001.1.4.0", ok=False, error=ErrorInfo("ValueError", "no")
    )
    batch, recorded = store.record_batch_result("run_000001", 1, 4, failed)
    assert recorded and (batch.succeeded, batch.failed) == (1, 1)
    assert batch.decided  # one failure, none tolerated
    assert store.list_batch_results("run_000001", 1, 4) == [failed, ok]
    assert store.get_batch("run_000001", 2, 4) is None


def test_purging_a_run_deletes_its_batches(store: RunStore) -> None:
    run_id = finish(store, 1, checkpoints=0, events=0)
    store.create_batch(_batch())
    store.record_batch_result(run_id, 1, 4, BatchItemResult(0, "c", True, "1"))
    store.delete_run(run_id)
    assert store.get_batch(run_id, 1, 4) is None
    assert store.list_batch_results(run_id, 1, 4) == []
