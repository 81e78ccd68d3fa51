"""One invocation's hold on its run: the attempt's window on storage, and the lease.

    acquire (worker) ─► RunEnvironment: checkpoints, inbox, children, extend_lease ─► persist
                                                                   or give_back_lease

An attempt runs task code, which must never catch a failure of AWS: every call here that
reaches AWS turns an `InfrastructureError` into `InfrastructureInterrupt` (a BaseException,
see `durable.engine.outcomes`). The worker catches it, gives the lease back and lets the
message be delivered again.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from durable.blobs.base import BlobStore
from durable.clock import Clock
from durable.engine.outcomes import InfrastructureInterrupt
from durable.errors import ConflictError, InfrastructureError, RunFinishedError, RunNotFoundError
from durable.records import (
    BatchItemResult,
    BatchRecord,
    Checkpoint,
    CheckpointKind,
    InboxEvent,
    RunRecord,
    RunStatus,
)
from durable.services.batches import start_batch
from durable.services.endings import RunEndings
from durable.storage.base import RunStore

# The statuses of a run an invocation holds the lease of.
ACTIVE = (RunStatus.RUNNING,)
# Entries that, with a wake-up time, are a retry to come.
RETRY_KINDS = frozenset({CheckpointKind.STEP_FAILED, CheckpointKind.ATTEMPT_FAILED})
# Pauses after each failed try to give a lease back (see `give_back_lease`), in seconds.
GIVE_BACK_PAUSES = (0.01, 0.05, 0.2)
P = ParamSpec("P")
R = TypeVar("R")


def interrupting(method: Callable[P, R]) -> Callable[P, R]:
    """Turn an `InfrastructureError` into `InfrastructureInterrupt`, which task code cannot
    catch (see `durable.engine.outcomes`)."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except InfrastructureError as exc:
            raise InfrastructureInterrupt(exc) from exc

    return guarded


class InterruptingBlobs:
    """The blob store as an attempt sees it: failures interrupt the attempt."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    @interrupting
    def put(self, key: str, data: bytes) -> None:
        self._blobs.put(key, data)

    @interrupting
    def get(self, key: str) -> bytes:
        return self._blobs.get(key)


class RunEnvironment:
    """The attempt's window on storage: checkpoint writes, cancellation, inbox, children
    (started and cancelled by the run services), the lease.

    Every method that reaches AWS raises `InfrastructureInterrupt` when AWS fails.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        check_interval: float,
        owner: str,
        lease_expires: datetime | None,
        endings: RunEndings,
    ) -> None:
        self._endings = endings
        self._starter = endings.starter
        self._store = store
        self._run_id = run_id
        self._owner = owner
        self._lease_expires = lease_expires
        self._check_interval = check_interval
        self._last_check = time.monotonic()
        self._cancelled = False
        self._inbox: list[InboxEvent] | None = None
        self.appended = 0
        # Failed step and task attempts appended with a retry time, by kind (the
        # invocation's metrics and the run counters of `services.stats`).
        self.retries: dict[CheckpointKind, int] = {}
        self.logged = 0  # checkpoints in the log when the invocation loaded it
        # Inbox events the log has consumed: as loaded, then as this invocation appends.
        self.consumed: set[str] = set()

    @interrupting
    def append(self, checkpoint: Checkpoint) -> None:
        self._store.append_checkpoint(self._run_id, checkpoint)
        self.appended += 1
        if checkpoint.wake_at is not None and checkpoint.kind in RETRY_KINDS:
            self.retries[checkpoint.kind] = self.retries.get(checkpoint.kind, 0) + 1
        if checkpoint.inbox_id is not None:
            self.consumed.add(checkpoint.inbox_id)

    def consumed_in_inbox(self, run_ended: bool) -> list[str]:
        """The events of the inbox that the log has consumed (by this invocation, or by one
        that died before deleting them): to delete. The inbox as this invocation read it;
        read now if it did not and the run has ended having consumed events, so that a
        run never ends with a consumed event left behind by a crash."""
        if self._inbox is None and not (run_ended and self.consumed):
            return []
        inbox = self._inbox if self._inbox is not None else self._store.list_inbox(self._run_id)
        return [event.inbox_id for event in inbox if event.inbox_id in self.consumed]

    @interrupting
    def cancelled(self) -> bool:
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._last_check >= self._check_interval:
            self._last_check = now
            run = self._store.get_run(self._run_id)
            self._cancelled = run is None or run.status is RunStatus.CANCELLED
        return self._cancelled

    @interrupting
    def start_child(
        self, task_id: str, payload: Any, idempotency_key: str, parent_run_id: str
    ) -> str:
        handle = self._starter.trigger(
            task_id, payload, idempotency_key=idempotency_key, parent_run_id=parent_run_id
        )
        return handle.run_id

    @interrupting
    def get_run(self, run_id: str) -> RunRecord | None:
        return self._store.get_run(run_id)

    @interrupting
    def create_callback(
        self, token: str, run_id: str, name: str, expires_at: datetime | None
    ) -> None:
        self._store.put_callback(token, run_id, name, expires_at)

    @interrupting
    def start_batch(self, batch: BatchRecord) -> None:
        start_batch(self._starter, batch)

    @interrupting
    def get_batch(self, run_id: str, task_attempt: int, position: int) -> BatchRecord | None:
        return self._store.get_batch(run_id, task_attempt, position)

    @interrupting
    def batch_results(
        self, run_id: str, task_attempt: int, position: int, start: int, limit: int
    ) -> list[BatchItemResult]:
        return self._store.list_batch_results(
            run_id, task_attempt, position, start=start, limit=limit
        )

    @interrupting
    def cancel_runs(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            with contextlib.suppress(RunFinishedError, RunNotFoundError):
                self._endings.cancel(run_id)

    @interrupting
    def extend_lease(self, until: datetime | None) -> None:
        """Renew (or shorten) the lease to `until`, the invocation's own lease when None.

        The sweeper must see the run by the time its lease expires, so the run's `wake_at`
        must never be later than `lease_expires`. A renewal that keeps it so writes
        `lease_expires` alone, which no index holds: a heartbeat costs no index write (the
        sweeper moves `wake_at` on when it meets a live lease, see `durable.services.sweeper`). Only
        a lease shortened below `wake_at` (a step with a heartbeat timeout) moves it too.
        """
        expires = until or self._lease_expires
        try:
            self._store.update_run(
                self._run_id,
                {"lease_expires": expires},
                expect_owner=self._owner,
                expect_status=ACTIVE,
                expect_wake_by=expires,
            )
        except ConflictError:
            # wake_at is later than the new expiry (or the lease is lost: then this fails too).
            self._store.update_run(
                self._run_id,
                {"lease_expires": expires, "wake_at": expires},
                expect_owner=self._owner,
                expect_status=ACTIVE,
            )

    @interrupting
    def inbox(self) -> list[InboxEvent]:
        if self._inbox is None:
            self._inbox = self._store.list_inbox(self._run_id)
        return self._inbox


def give_back_lease(store: RunStore, clock: Clock, run: RunRecord, owner: str) -> None:
    """Release the lease of an invocation that ends in an error, so that the message
    SQS delivers again finds the run free instead of busy until the lease runs out.
    The invocation did not die: it does not count toward the run's crash streak.

    A few tries, a moment apart (botocore has retried each already): a release that is
    lost leaves the lease to expire and counts as a crash, and five in a row would end
    the run as a crash loop. If every try fails, the sweeper goes on after the lease.
    """
    for pause in GIVE_BACK_PAUSES:
        try:
            store.update_run(
                run.run_id,
                {
                    "lease_owner": None,
                    "lease_expires": None,
                    "wake_at": clock.now(),
                    "crash_streak": max(run.crash_streak - 1, 0),
                },
                expect_owner=owner,
                expect_status=ACTIVE,
            )
        except (ConflictError, RunNotFoundError):
            return  # persisted meanwhile, or taken over: nothing to give back
        except Exception:  # best effort, whatever the store raised
            time.sleep(pause)
            continue
        return
