"""The in-memory store's rate windows and debounce items (`Admissions`), a mixin of
`MemoryRunStore`: the same ring of window slots as DynamoDB's items, each change one step
under the store's lock (as each is one conditional write there)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from durable.errors import ConflictError, RunNotFoundError
from durable.records import RunRecord, RunStatus
from durable.storage.admission import RATE_RING


class MemoryAdmissions:
    """`take_rate_place`, `rate_head`, `advance_rate_head`, `debounced_run`,
    `create_debounced_run`, `replace_pending_run` over dicts."""

    _lock: threading.RLock
    _runs: dict[str, RunRecord]
    _logs: dict[str, Any]
    _tags: dict[str, set[str]]
    _idempotency: dict[tuple[str, str], tuple[str, datetime | None]]
    writes: int

    @property
    def _rate_slots(self) -> dict[tuple[str, int], tuple[int, int]]:
        """(scope, slot) -> (the window it holds, that window's count)."""
        slots: dict[tuple[str, int], tuple[int, int]] = self.__dict__.setdefault(
            "_rate_slot_items", {}
        )
        return slots

    @property
    def _rate_heads(self) -> dict[str, int]:
        heads: dict[str, int] = self.__dict__.setdefault("_rate_head_items", {})
        return heads

    @property
    def _debounce(self) -> dict[tuple[str, str], str]:
        items: dict[tuple[str, str], str] = self.__dict__.setdefault("_debounce_items", {})
        return items

    def take_rate_place(self, scope: str, window: int, limit: int) -> bool:
        with self._lock:
            key = (scope, window % RATE_RING)
            held = self._rate_slots.get(key)
            if held is None or held[0] < window:
                self._rate_slots[key] = (window, 1)  # a rollover to this window
            elif held[0] > window or held[1] >= limit:
                return False
            else:
                self._rate_slots[key] = (window, held[1] + 1)
            self.writes += 1
            return True

    def rate_head(self, scope: str) -> int | None:
        return self._rate_heads.get(scope)

    def advance_rate_head(self, scope: str, window: int) -> None:
        with self._lock:
            head = self._rate_heads.get(scope)
            if head is None or head < window:
                self._rate_heads[scope] = window
                self.writes += 1

    def debounced_run(self, task_id: str, key: str) -> str | None:
        return self._debounce.get((task_id, key))

    def create_debounced_run(self, run: RunRecord, key: str, previous: str | None) -> None:
        if run.idempotency_key is not None:
            raise ValueError("a debounced run has no idempotency key")
        with self._lock:
            if self._debounce.get((run.task_id, key)) != previous:
                raise ConflictError(f"debounce key {key!r} of {run.task_id} moved on")
            if run.run_id in self._runs:
                raise ConflictError(f"run {run.run_id} exists")
            for tag in run.tags:
                self._tags.setdefault(tag, set()).add(run.run_id)
            self._runs[run.run_id] = run
            self._logs[run.run_id] = {}
            self._debounce[(run.task_id, key)] = run.run_id
            self.writes += 1  # one transaction
        return None

    def replace_pending_run(self, run_id: str, token: str, changes: Mapping[str, Any]) -> RunRecord:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise RunNotFoundError(run_id)
            if (
                run.status is not RunStatus.QUEUED
                or run.started_at is not None
                or run.wake_token != token
            ):
                raise ConflictError(f"run {run_id} is no longer pending ({run.status})")
            updated = run.with_changes(**changes)
            self._runs[run_id] = updated
            self.writes += 1
            return updated

    def claimed_run(self, task_id: str, key: str, at: datetime) -> RunRecord | None:
        with self._lock:
            claim = self._idempotency.get((task_id, key))
            if claim is None or (claim[1] is not None and claim[1] <= at):
                return None
            return self._runs.get(claim[0])
