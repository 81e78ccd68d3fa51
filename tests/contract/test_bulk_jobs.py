"""The `BulkJobs` contract on both stores: a job is created once, read back whole, and its
lease lets one worker at a time save progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from durable.errors import ConflictError
from durable.records import RunStatus
from durable.storage.base import RunStore
from durable.storage.bulk_jobs import BulkAction, BulkFilter, BulkJob, BulkState

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
JOB_ID = "bulk_" + "0123456789abcdef" * 2


def _job(**changes: object) -> BulkJob:
    job = BulkJob(
        job_id=JOB_ID,
        action=BulkAction.CANCEL,
        filter=BulkFilter(
            task_id="order",
            status=RunStatus.WAITING,
            created_after=NOW - timedelta(days=1),
            created_before=NOW,
            tag="vip",
        ),
        by="unverified:ana",
        created_at=NOW,
        updated_at=NOW,
    )
    return job.with_changes(**changes)


def test_a_job_is_created_once_and_read_back_whole(store: RunStore) -> None:
    assert store.get_bulk_job(JOB_ID) is None
    store.create_bulk_job(_job())
    with pytest.raises(ConflictError):
        store.create_bulk_job(_job(by="someone else"))
    stored = store.get_bulk_job(JOB_ID)
    assert stored == _job()
    assert stored is not None and stored.lease_owner is None and stored.lease_until is None


def test_one_lease_at_a_time_until_it_expires(store: RunStore) -> None:
    store.create_bulk_job(_job())
    until = NOW + timedelta(seconds=90)

    first = store.claim_bulk_job(JOB_ID, "a", NOW, until)
    assert first is not None and (first.lease_owner, first.lease_until) == ("a", until)
    assert store.claim_bulk_job(JOB_ID, "b", NOW + timedelta(seconds=89), until) is None
    again = store.claim_bulk_job(JOB_ID, "a", NOW, until + timedelta(seconds=1))
    assert again is not None  # its holder may renew it
    later = until + timedelta(seconds=1)
    taken = store.claim_bulk_job(JOB_ID, "b", later, later + timedelta(seconds=90))
    assert taken is not None and taken.lease_owner == "b"
    assert store.claim_bulk_job("bulk_" + "f" * 32, "a", NOW, until) is None  # unknown


def test_only_the_lease_holder_saves_and_a_free_lease_can_be_claimed(store: RunStore) -> None:
    store.create_bulk_job(_job())
    claimed = store.claim_bulk_job(JOB_ID, "a", NOW, NOW + timedelta(seconds=90))
    assert claimed is not None

    with pytest.raises(ConflictError):
        store.save_bulk_job(claimed.with_changes(acted=5), "b")
    progress = claimed.with_changes(
        acted=3,
        skipped=1,
        matched=4,
        errors=1,
        error_messages=("run_1: boom",),
        cursor="eyJjdXJzb3IiOiAxfQ",
        pending=("run_2", "run_3"),
        pages=1,
        updated_at=NOW + timedelta(seconds=1),
    )
    assert store.save_bulk_job(progress, "a") == progress
    stored = store.get_bulk_job(JOB_ID)
    assert stored == progress and stored is not None and stored.lease_owner == "a"

    # freed by its holder: anyone may claim it, and the old holder saves nothing more
    store.save_bulk_job(progress.with_changes(lease_owner=None, lease_until=None), "a")
    with pytest.raises(ConflictError):
        store.save_bulk_job(progress.with_changes(acted=99), "a")
    assert store.claim_bulk_job(JOB_ID, "b", NOW, NOW + timedelta(seconds=90)) is not None


def test_a_finished_job_cannot_be_claimed(store: RunStore) -> None:
    store.create_bulk_job(_job())
    claimed = store.claim_bulk_job(JOB_ID, "a", NOW, NOW + timedelta(seconds=90))
    assert claimed is not None
    done = claimed.with_changes(
        state=BulkState.COMPLETED, finished_at=NOW, lease_owner=None, lease_until=None
    )
    store.save_bulk_job(done, "a")
    assert store.claim_bulk_job(JOB_ID, "a", NOW, NOW + timedelta(seconds=90)) is None
    stored = store.get_bulk_job(JOB_ID)
    assert stored is not None and stored.state is BulkState.COMPLETED and stored.done
