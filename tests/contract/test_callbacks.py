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
from durable.records import CheckpointKind
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
