"""Idempotency claims that expire, in the `RunRecords` contract, on every backend.

A run created with `idempotency_expires_at` claims its key until then; a run created at or
after it replaces the claim (atomically: of two such creations one wins, the other finds
its run) and the old run is left as it was. A claim without an expiry (the library's own
keys) never lapses. The purge deletes a claim only while it still names the purged run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from tests.contract.test_retention import finish, leftovers, table_keys  # noqa: F401
from tests.contract.test_run_store import T0, make_run

from durable.records import RunRecord
from durable.storage.base import RunStore

HOUR = timedelta(hours=1)


def keyed(n: int, created_hours: float, ttl_hours: float | None = 24) -> RunRecord:
    created = T0 + created_hours * HOUR
    return make_run(
        n,
        created_at=created,
        updated_at=created,
        idempotency_key="order-7",
        idempotency_expires_at=created + ttl_hours * HOUR if ttl_hours is not None else None,
    )


def test_the_same_key_gives_the_same_run_until_it_expires(store: RunStore) -> None:
    first, created = store.create_run(keyed(1, 0))
    assert created
    again, created_again = store.create_run(keyed(2, 23.9))
    assert (again.run_id, created_again) == (first.run_id, False)
    assert store.get_run("run_000002") is None


def test_after_the_expiry_the_key_starts_a_new_run_and_the_old_one_stays(
    store: RunStore,
) -> None:
    first, _ = store.create_run(keyed(1, 0))
    second, created = store.create_run(keyed(2, 24))  # at the expiry: expired
    assert created and second.run_id == "run_000002"
    assert store.get_run(first.run_id) == first
    # the new claim holds for its own 24 hours
    third, created_third = store.create_run(keyed(3, 47))
    assert (third.run_id, created_third) == (second.run_id, False)
    fourth, created_fourth = store.create_run(keyed(4, 48))
    assert (fourth.run_id, created_fourth) == ("run_000004", True)


def test_of_two_creations_after_the_expiry_one_wins(store: RunStore) -> None:
    store.create_run(keyed(1, 0))
    winner, created = store.create_run(keyed(2, 30))
    loser, created_loser = store.create_run(keyed(3, 30))
    assert created and not created_loser
    assert loser.run_id == winner.run_id
    assert store.get_run("run_000003") is None


def test_a_claim_without_expiry_never_lapses(store: RunStore) -> None:
    first, _ = store.create_run(keyed(1, 0, ttl_hours=None))
    again, created = store.create_run(keyed(2, 24 * 3650))
    assert (again.run_id, created) == (first.run_id, False)


def test_purging_the_old_run_keeps_the_new_claim(
    store: RunStore,
    leftovers: Callable[[str], list[str]],  # noqa: F811
) -> None:
    old = finish(store, 1, idempotency_key="order-7", idempotency_expires_at=T0 + 24 * HOUR)
    new, created = store.create_run(keyed(2, 25))
    assert created
    store.delete_run(old)
    assert leftovers(old) == []
    # the key still names the new run
    again, created_again = store.create_run(keyed(3, 26))
    assert (again.run_id, created_again) == (new.run_id, False)
