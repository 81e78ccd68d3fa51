"""The `QueueSlots` port (a record family of `RunStore`, see `durable.storage.base`): the
concurrency slots of queues and the runs waiting for one (`durable.services.slots`)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from durable.records import RunRecord


class QueueSlots(Protocol):
    """Concurrency slots of a queue per concurrency key (`key` None: the runs triggered
    without one), and the runs waiting for a slot (`durable.services.slots` says how they
    are used). Every write is one conditional write of one item; no scan.

    - `acquire_slot(queue, key, run_id, limit, now)` makes `run_id` a holder of one of the
      key's slots (since `now`) if it is not one already and fewer than `limit` runs hold
      one; True when the run holds a slot after the call (it did already, or does now),
      False when the slots are full. A run can never hold two, and `limit` holders can
      never become more by racing acquires.
    - `release_slot(queue, key, run_id)` removes `run_id` from the holders if it is one;
      returns whether it was, and how many hold a slot after the call.
    - `drop_holder(queue, key, run_id, acquired_at)` removes `run_id` only if it holds a slot
      acquired at exactly `acquired_at` (a holder found not to need it, which has not
      acquired again since); whether it did.
    - `slot_holders(queue, key)`: the holders and when each acquired its slot, read
      strongly consistent.
    - `add_waiter` / `remove_waiter(queue, key, run_id, priority)` put and delete the
      entry of a run waiting for a slot (idempotent: a repeat changes nothing).
    - `waiters(queue, key, limit)`: the first `limit` waiting runs, each as (priority,
      run id), in start order: higher priority first, then older first (run ids sort by
      creation).
    - `count_waiters(queue, key, limit, before=None)` counts the waiting runs (up to
      `limit`: it stops there), or with `before=(priority, run_id)` those ahead of that run.
    - `queue_keys(queue, limit)`: the keys a queue's slots or waiters have been used
      under (the first write of a key in a process records it), up to `limit`.
    - `get_runs(run_ids)`: the runs that exist among `run_ids` (one batch read).
    """

    def acquire_slot(
        self, queue: str, key: str | None, run_id: str, limit: int, now: datetime
    ) -> bool: ...

    def release_slot(self, queue: str, key: str | None, run_id: str) -> tuple[bool, int]: ...

    def drop_holder(
        self, queue: str, key: str | None, run_id: str, acquired_at: datetime
    ) -> bool: ...

    def slot_holders(self, queue: str, key: str | None) -> dict[str, datetime]: ...

    def add_waiter(self, queue: str, key: str | None, run_id: str, priority: int) -> None: ...

    def remove_waiter(self, queue: str, key: str | None, run_id: str, priority: int) -> None: ...

    def waiters(self, queue: str, key: str | None, limit: int) -> list[tuple[int, str]]: ...

    def count_waiters(
        self,
        queue: str,
        key: str | None,
        limit: int,
        before: tuple[int, str] | None = None,
    ) -> int: ...

    def queue_keys(self, queue: str, limit: int) -> list[str | None]: ...

    def get_runs(self, run_ids: Collection[str]) -> list[RunRecord]: ...


def waiter_order(priority: int, run_id: str) -> str:
    """Where a waiting run sorts among its key's waiters: higher priority first (the
    priority inverted, fixed width), then by run id (creation time)."""
    return f"{999 - priority:03d}#{run_id}"


def waiter_of(order: str) -> tuple[int, str]:
    """(priority, run id) back from a `waiter_order`."""
    inverted, _, run_id = order.partition("#")
    return 999 - int(inverted), run_id
