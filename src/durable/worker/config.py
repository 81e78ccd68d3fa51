"""What the worker did with a message (`Handled`) and how it times invocations (`WorkerConfig`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from durable.services.bulk import BULK_BUDGET, BULK_THREADS
from durable.services.purge import PURGE_BUDGET, PURGE_THREADS
from durable.storage.log_cache import DEFAULT_MAX_ENTRIES, DEFAULT_MAX_RUNS

# How often a run held for a code fix is looked at again by default.
HOLD_RECHECK = timedelta(minutes=5)


class Handled(StrEnum):
    """What the worker did with a message (logged, and asserted on in tests)."""

    EXECUTED = "executed"
    UNKNOWN_RUN = "unknown_run"
    FINISHED = "finished"
    STALE = "stale"
    NOT_DUE = "not_due"
    REHOPPED = "rehopped"
    PARKED = "parked"  # an early timer of a far wake-up: parked for the sweeper, dropped
    BUSY = "busy"
    ABANDONED = "abandoned"
    ROUTED = "routed"  # handed to the code version the run is pinned to
    VERSION_MISMATCH = "version_mismatch"  # pinned to a version nobody here runs: held
    FOLLOWED_UP = "followed_up"  # a finished run's pending follow-ups were carried out
    PURGED = "purged"  # a PURGE message: its shard's expired runs were purged
    PURGE_CONTINUED = "purge_continued"  # ... some of them; a continuation was sent
    PURGE_HELD = "purge_held"  # ... another purger holds the shard: dropped
    BULK = "bulk"  # a BULK message: its bulk job was worked on (`durable.services.bulk`)
    HELD = "held"  # held for a code fix that this worker's code is not: not replayed
    EXPIRED = "expired"  # not started within its ttl: ended CANCELLED (`services.expiry`)
    READMITTED = "readmitted"  # came after its rate window: waits for a later one (idem)
    QUEUED = "queued"  # its queue's slots are full: it waits for one (`durable.services.slots`)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Timing of invocations."""

    lease: timedelta = timedelta(minutes=15)
    margin: timedelta = timedelta(seconds=10)
    cancel_check_interval: float = 1.0  # seconds of wall time between cancellation reads
    code_version: str = "dev"  # the code this worker runs; recorded on child runs it starts
    # Invocations in a row that may die before persisting anything (a crash, Lambda's
    # timeout, memory) before the run is stopped instead of looping forever.
    max_crash_streak: int = 5
    retention: timedelta | None = None  # how long a finished run is kept; None: forever
    # A run held for a code version nobody here runs is looked at again this often (its
    # wake_at moves on, so held runs never crowd the head of the sweeper's due index).
    version_recheck: timedelta = timedelta(minutes=5)
    # A run held for a code fix (a divergence, an unknown task) is looked at this often:
    # one read and one write, no replay, until other code comes (`durable.worker.holds`).
    hold_recheck: timedelta = HOLD_RECHECK
    # A PURGE message's purger (`durable.services.purge`): its budget (also bounded by the
    # invocation's time left) and its deletes in flight.
    purge_budget: timedelta = PURGE_BUDGET
    purge_threads: int = PURGE_THREADS
    bulk_budget: timedelta = BULK_BUDGET  # a BULK message's worker: as the purger's
    bulk_threads: int = BULK_THREADS
    # Logs of runs this worker served kept to read only their tail next time
    # (`durable.storage.log_cache`): runs at most, entries at most; 0 runs turns it off.
    log_cache_runs: int = DEFAULT_MAX_RUNS
    log_cache_entries: int = DEFAULT_MAX_ENTRIES

    def expires_at(self, finished_at: datetime) -> datetime | None:
        """When a run that finished at `finished_at` is purged; None keeps it forever."""
        return None if self.retention is None else finished_at + self.retention
