"""The `ParkedTimers` contract (`durable.storage.timers`), on every backend: parked runs live
in the due index's second key space, seen by `parked_timers` and never by `due_runs`."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.test_run_store import MINUTE, T0, make_run

from durable.records import RunStatus
from durable.storage.base import RunStore

DAY = timedelta(days=1)


def ids(runs: list) -> list[str]:  # type: ignore[type-arg]
    return [run.run_id for run in runs]


def test_a_parked_run_is_listed_by_parked_timers_only(store: RunStore) -> None:
    store.create_run(make_run(1, wake_at=T0 + 40 * DAY, wake_token="t1", wake_parked=True))
    store.create_run(make_run(2, wake_at=T0 + 10 * MINUTE, wake_token="t2"))

    assert store.get_run("run_000001").wake_parked  # type: ignore[union-attr]
    assert not store.get_run("run_000002").wake_parked  # type: ignore[union-attr]
    far = T0 + 100 * DAY
    assert ids(store.due_runs(far)) == ["run_000002"]
    assert ids(store.parked_timers(far)) == ["run_000001"]
    assert store.parked_timers(T0 + 39 * DAY) == []  # not due by then


def test_parked_timers_page_oldest_first(sharded_store: RunStore) -> None:
    store = sharded_store
    for n in range(1, 31):
        # Two runs per instant: the run id breaks the tie.
        store.create_run(make_run(n, wake_at=T0 + (n // 2) * DAY, wake_parked=True))
    store.create_run(make_run(99, wake_at=T0 + DAY))  # unparked: never listed
    pages: list[str] = []
    after = None
    while page := store.parked_timers(T0 + 100 * DAY, limit=7, after=after):
        pages.extend(ids(page))
        after = page[-1]
    assert pages == [f"run_{n:06d}" for n in range(1, 31)]


def test_set_timer_parked_holds_only_on_the_wake_up_as_read(store: RunStore) -> None:
    wake = T0 + 40 * DAY
    store.create_run(make_run(1, wake_at=wake, wake_token="t1", wake_parked=True))

    assert not store.set_timer_parked("run_000001", False, wake_at=wake, wake_token="other")
    assert not store.set_timer_parked("run_000001", False, wake_at=wake + MINUTE, wake_token="t1")
    assert not store.set_timer_parked("run_000001", True, wake_at=wake, wake_token="t1")
    assert store.get_run("run_000001").wake_parked  # type: ignore[union-attr]

    assert store.set_timer_parked("run_000001", False, wake_at=wake, wake_token="t1")
    run = store.get_run("run_000001")
    assert run is not None and not run.wake_parked and run.wake_at == wake
    assert ids(store.due_runs(wake)) == ["run_000001"]
    assert store.parked_timers(wake) == []
    assert not store.set_timer_parked("run_000001", False, wake_at=wake, wake_token="t1")

    assert store.set_timer_parked("run_000001", True, wake_at=wake, wake_token="t1")
    assert ids(store.parked_timers(wake)) == ["run_000001"]


def test_set_timer_parked_matches_an_absent_token_and_skips_a_missing_run(
    store: RunStore,
) -> None:
    wake = T0 + 2 * DAY
    store.create_run(make_run(1, wake_at=wake, wake_parked=True))
    assert not store.set_timer_parked("run_000001", False, wake_at=wake, wake_token="t")
    assert store.set_timer_parked("run_000001", False, wake_at=wake, wake_token=None)
    assert not store.set_timer_parked("run_000404", False, wake_at=wake, wake_token=None)


def test_update_run_parks_and_un_parks_with_the_wake_up(store: RunStore) -> None:
    store.create_run(make_run(1, wake_at=T0))
    store.update_run(
        "run_000001",
        {"status": RunStatus.WAITING, "wake_at": T0 + 3 * DAY, "wake_parked": True},
    )
    assert ids(store.parked_timers(T0 + 3 * DAY)) == ["run_000001"]
    assert store.due_runs(T0 + 3 * DAY) == []

    store.update_run("run_000001", {"wake_at": T0 + MINUTE, "wake_parked": False})
    assert ids(store.due_runs(T0 + MINUTE)) == ["run_000001"]
    assert store.parked_timers(T0 + 3 * DAY) == []


def test_a_wake_up_moved_earlier_stays_parked_until_handed_off(store: RunStore) -> None:
    """An event delivered to a parked wait marks it due without touching `wake_parked`:
    the hand-off, which lists parked runs due within its window, still finds it."""
    store.create_run(make_run(1, wake_at=T0 + 7 * DAY, wake_token="t", wake_parked=True))
    store.update_run("run_000001", {"wake_at": T0})
    assert ids(store.parked_timers(T0 + 15 * MINUTE)) == ["run_000001"]


def test_the_lease_un_parks_the_run(store: RunStore) -> None:
    store.create_run(make_run(1, wake_at=T0 + 7 * DAY, wake_token="t", wake_parked=True))
    leased = store.acquire_lease("run_000001", "owner", T0, T0 + 15 * MINUTE)
    assert (leased.wake_parked, leased.wake_at) == (False, T0 + 15 * MINUTE)
    assert ids(store.due_runs(T0 + 15 * MINUTE)) == ["run_000001"]
    assert store.parked_timers(T0 + 100 * DAY) == []


def test_the_lease_un_parks_a_run_already_due(store: RunStore) -> None:
    store.create_run(make_run(1, wake_at=T0, wake_token="t", wake_parked=True))
    leased = store.acquire_lease("run_000001", "owner", T0, T0 + 15 * MINUTE)
    assert (leased.wake_parked, leased.wake_at) == (False, T0)
    assert store.get_run("run_000001").wake_parked is False  # type: ignore[union-attr]
