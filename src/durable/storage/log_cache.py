"""Logs read from a store, kept so that the next read of a run reads only its tail.

Replay starts at the top of a run's log, so every invocation needs the whole log; but a
Lambda container serves many invocations, often of the same run (a run with a sleep, a
retry, an event wakes up again). The worker (`durable.worker.wakeups`) keeps the logs it
has read and, serving the same run again, reads only the entries after the last one it
holds: `store.load_history(run_id, after_seq=last)`. A run of N invocations then reads
each entry once instead of N times. The client (`Client.timeline`, `Client.history`) does
the same for the run page, which polls a live run's timeline every 1.5 s: each poll reads
the run's new entries only.

Why this is correct, and the rules that keep it so:
- A log entry never changes once written: each is a conditional put on an empty slot
  (`RunStore.append_checkpoint`). A log never shrinks or is rewritten while its run exists:
  nothing deletes checkpoints but the retention purge (`durable.services.purge`), and it deletes
  only finished runs. A run id can be given again after its run was purged, so an entry
  is also keyed by the run's `created_at`: a run created again is a new log.
- Only what was read from the store is cached, never an append of the worker's own: an
  append whose write failed, or whose answer was lost, may or may not be in the log.
- The part read is checked against the part held: seqs run on from the last one held, by
  one, from 1. Anything else (a gap, a seq not expected) drops the entry and reads the
  whole log again: correctness first.
- The cache is bounded (least recently used runs go first, and past a total number of
  entries), and owned by one worker or client, so by one store: stores in one process
  never share entries. The worker drops a run that ends; the client keeps it until it is
  evicted (each read still reads its tail, as for any run).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from durable.records import Checkpoint
from durable.storage.base import RunStore

DEFAULT_MAX_RUNS = 256
DEFAULT_MAX_ENTRIES = 50_000


@dataclass(frozen=True)
class _CachedLog:
    created_at: datetime
    entries: tuple[Checkpoint, ...]


def _runs_on(entries: list[Checkpoint] | tuple[Checkpoint, ...], after_seq: int) -> bool:
    """Whether `entries` are the slots after `after_seq`, one by one, without a gap."""
    return all(entry.seq == after_seq + 1 + i for i, entry in enumerate(entries))


class LogCache:
    """Logs read from one store, by run, least recently used dropped first."""

    def __init__(
        self,
        store: RunStore,
        *,
        max_runs: int = DEFAULT_MAX_RUNS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._store = store
        self._max_runs = max_runs
        self._max_entries = max_entries
        self._logs: OrderedDict[str, _CachedLog] = OrderedDict()
        self._entries = 0
        # Held while the dict changes, never across a read of the store: a worker served
        # by several threads (`durable dev`) keeps whichever contiguous read came last.
        self._lock = threading.Lock()

    @property
    def store(self) -> RunStore:
        """The store the logs are read from."""
        return self._store

    def __len__(self) -> int:
        return len(self._logs)

    def held(self, run_id: str) -> tuple[Checkpoint, ...]:
        """The entries held for a run (none if it is not cached)."""
        with self._lock:
            cached = self._logs.get(run_id)
        return cached.entries if cached is not None else ()

    def load(self, run_id: str, created_at: datetime) -> list[Checkpoint]:
        """The run's whole log: the entries held, and the ones after them read from the store."""
        with self._lock:
            cached = self._logs.get(run_id)
        if cached is not None and cached.created_at == created_at and cached.entries:
            last = cached.entries[-1].seq
            tail = self._store.load_history(run_id, after_seq=last)
            if _runs_on(tail, last):
                history = [*cached.entries, *tail]
                self._keep(run_id, created_at, history)
                return history
        self.forget(run_id)
        history = self._store.load_history(run_id)
        if _runs_on(history, 0):
            self._keep(run_id, created_at, history)
        return history

    def forget(self, run_id: str) -> None:
        """Drop a run (it ended, or what was read of it does not fit what is held)."""
        with self._lock:
            self._drop(run_id)

    def _drop(self, run_id: str) -> None:
        cached = self._logs.pop(run_id, None)
        if cached is not None:
            self._entries -= len(cached.entries)

    def _keep(self, run_id: str, created_at: datetime, history: list[Checkpoint]) -> None:
        with self._lock:
            self._drop(run_id)  # kept again last: the most recently used
            if not history or len(history) > self._max_entries:
                return
            self._logs[run_id] = _CachedLog(created_at, tuple(history))
            self._entries += len(history)
            while len(self._logs) > self._max_runs or self._entries > self._max_entries:
                _, evicted = self._logs.popitem(last=False)
                self._entries -= len(evicted.entries)
