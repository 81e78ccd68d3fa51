"""The `Admissions` port: the items that decide when a run of a limited queue may start.

Two record families, both written at trigger (`durable.services.admission`):

- **Rate windows.** A queue's `RateLimit(limit, period)` cuts time into fixed windows of
  `period` (window `w` is `[w * period, (w + 1) * period)` since the epoch); a run takes a
  place in a window at trigger and starts at that window's start at the earliest. Per
  scope (queue and concurrency key) a ring of `RATE_RING` slots holds the count of one
  window each (`slot = w % RATE_RING`), plus a head: a window at which the search for room
  may start, because every window from the current one to it was found full.

  `take_rate_place(scope, window, limit)` adds one to the count of `window` and returns
  True if the count was under `limit` and the slot holds that window, or holds an older one
  (or none: the slot then starts `window` at 1). It returns False, writing nothing, when
  the window is full or its slot holds a newer window (that window's count was overwritten:
  it is treated as full for ever). A slot's window only ever grows and a window's count
  only ever grows while the slot holds it, so no window ever admits more than `limit`,
  whatever the races; a window pushed out of its slot only costs places. One conditional
  write, two when the slot is rolled over to a new window (three when a racing writer
  rolled it first). `rate_head(scope)` reads the head (None when unset);
  `advance_rate_head(scope, window)` sets it to `window` if it is lower (or unset).

- **Debounce items.** Per (task, debounce key) one item naming the run still pending for
  that key. `debounced_run(task_id, key)` reads it. `create_debounced_run(run, key,
  previous)` creates `run` (as `create_run`, without an idempotency key) and sets the item
  to name it, atomically, only if the item still names `previous` (None: absent); otherwise
  `ConflictError` and nothing is written. `replace_pending_run(run_id, token, changes)`
  applies `changes` (RunRecord field names) to a run only while it is QUEUED, has never
  started, and its `wake_token` is `token`; otherwise `ConflictError`. It returns the run
  as stored.

- `claimed_run(task_id, key, at)`: the run an idempotency key names, if its claim holds at
  `at` (a rate-limited trigger retried with its key takes no second place). Reads only.

Both stores pass the same contract (`tests/contract/test_admission_items.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from durable.records import RunRecord

# Slots of a scope's window ring: windows more than this many periods ahead of a window
# with reservations overwrite its slot (its window then counts as full).
RATE_RING = 128


def rate_scope(queue: str, concurrency_key: str | None) -> str:
    """The scope of a queue's rate windows: the queue and the run's concurrency key."""
    return f"{queue}#{concurrency_key or ''}"


class Admissions(Protocol):
    """Rate windows and debounce items (see the module docstring)."""

    def take_rate_place(self, scope: str, window: int, limit: int) -> bool: ...

    def rate_head(self, scope: str) -> int | None: ...

    def advance_rate_head(self, scope: str, window: int) -> None: ...

    def debounced_run(self, task_id: str, key: str) -> str | None: ...

    def create_debounced_run(self, run: RunRecord, key: str, previous: str | None) -> None: ...

    def replace_pending_run(
        self, run_id: str, token: str, changes: Mapping[str, Any]
    ) -> RunRecord: ...

    def claimed_run(self, task_id: str, key: str, at: datetime) -> RunRecord | None: ...
