"""The worker: one wake-up message in, one invocation of a run out.

    message ─► drop if stale/finished/busy ─► lease ─► load log ─► execute ─► persist ─► enqueue

Rules, each making a duplicate, late or lost message harmless:
- A finished run, or a timer message whose token is not the run's current `wake_token`,
  is dropped. A timer that is early (waits over 15 minutes re-hop) is sent on again.
- The lease (a conditional update) lets one invocation own a run at a time; a message for
  a run whose lease is live is dropped: the owner schedules what comes next, and if it dies
  its lease expires and the sweeper re-enqueues the run.
- Each checkpoint is a conditional put at the next log slot; losing it abandons the
  invocation without writing anything else.
- Infrastructure errors (DynamoDB, SQS, S3 failing beyond botocore's retries) are never a
  failure of the task: inside an attempt they unwind past task code as
  `InfrastructureInterrupt`, the invocation gives its lease back and ends with the error,
  and SQS delivers the message again. No attempt is spent.

No wake-up can be lost. The rule: every run that waits either has a `wake_at` the sweeper
sees (sleeps, retries, timeouts, a running invocation's lease), or its wake-up is written
in the same DynamoDB write as the change that causes it, or by the one who makes it:
- the run record is written, then the next wake-up is sent: if the process dies between
  the two, the run's `wake_at` is overdue and the sweeper sends it again;
- a run that ends writes its end and, in that same write, a `wake_at` that keeps it in the
  sweeper's index until the follow-ups of its end are done: its parent's wake-up, its
  batch report, the cancellation of its children (`durable.endings`);
- an event or a callback completion is put in the inbox, then the run, if it waits for it,
  is marked due (`wake_at` now), then woken: a crash after the put is recovered by the
  sweeper, or by the caller retrying the call that failed;
- a wake-up that arrives while the run is busy is dropped, but the busy invocation, once it
  has persisted its wait, looks again at what it waits for (child, batch, inbox) and wakes
  itself if that happened meanwhile; if it dies before, its own message comes back, and a
  message for a waiting run whose wait is over is never dropped as stale.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ParamSpec, Protocol, TypeVar

from durable.batches import start_batch
from durable.blobs.base import BlobStore
from durable.client import Client
from durable.clock import Clock
from durable.endings import follow_up_end, has_follow_ups
from durable.engine.executor import execute_attempt
from durable.engine.outcomes import (
    Abandoned,
    AnyOutcome,
    Completed,
    Failed,
    InfrastructureInterrupt,
    Suspended,
)
from durable.errors import (
    ConflictError,
    InfrastructureError,
    RunFinishedError,
    RunNotFoundError,
    UnknownTaskError,
)
from durable.ids import new_owner_id
from durable.inbox import consumed_inbox_ids
from durable.log_cache import DEFAULT_MAX_ENTRIES, DEFAULT_MAX_RUNS, LogCache
from durable.logs import library_logger
from durable.purge import LEASE_MARGIN, PURGE_BUDGET, PURGE_THREADS, purge_shard
from durable.queues.base import WakeQueue
from durable.records import (
    BatchItemResult,
    BatchRecord,
    Checkpoint,
    ErrorInfo,
    InboxEvent,
    RunRecord,
    RunStatus,
    WakeReason,
    WakeUp,
)
from durable.storage.base import RunStore
from durable.task import TaskRegistry
from durable.values import ValueCodec

ACTIVE = (RunStatus.RUNNING,)
# Pauses after each failed try to give a lease back (see `Worker._give_back`), in seconds.
GIVE_BACK_PAUSES = (0.01, 0.05, 0.2)
P = ParamSpec("P")
R = TypeVar("R")


class Handled(StrEnum):
    """What the worker did with a message (logged, and asserted on in tests)."""

    EXECUTED = "executed"
    UNKNOWN_RUN = "unknown_run"
    FINISHED = "finished"
    STALE = "stale"
    NOT_DUE = "not_due"
    REHOPPED = "rehopped"
    BUSY = "busy"
    ABANDONED = "abandoned"
    ROUTED = "routed"  # handed to the code version the run is pinned to
    VERSION_MISMATCH = "version_mismatch"  # pinned to a version nobody here runs: held
    FOLLOWED_UP = "followed_up"  # a finished run's pending follow-ups were carried out
    PURGED = "purged"  # a PURGE message: its shard's expired runs were purged
    PURGE_CONTINUED = "purge_continued"  # ... some of them; a continuation was sent
    PURGE_HELD = "purge_held"  # ... another purger holds the shard: dropped


class VersionRouter(Protocol):
    """Hands a wake-up to the deployment that runs `code_version` (a Lambda version/alias).

    Returns False when it knows no such deployment.
    """

    def route(self, code_version: str, message: WakeUp) -> bool: ...


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
    # A PURGE message's purger (`durable.purge`): its budget (also bounded by the
    # invocation's time left) and its deletes in flight.
    purge_budget: timedelta = PURGE_BUDGET
    purge_threads: int = PURGE_THREADS
    # Logs of runs this worker served kept to read only their tail next time
    # (`durable.log_cache`): runs at most, entries at most; 0 runs turns it off.
    log_cache_runs: int = DEFAULT_MAX_RUNS
    log_cache_entries: int = DEFAULT_MAX_ENTRIES

    def expires_at(self, finished_at: datetime) -> datetime | None:
        """When a run that finished at `finished_at` is purged; None keeps it forever."""
        return None if self.retention is None else finished_at + self.retention


def _interrupting(method: Callable[P, R]) -> Callable[P, R]:
    """Turn an `InfrastructureError` into `InfrastructureInterrupt`, which task code cannot
    catch (see `durable.engine.outcomes`)."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except InfrastructureError as exc:
            raise InfrastructureInterrupt(exc) from exc

    return guarded


class _InterruptingBlobs:
    """The blob store as an attempt sees it: failures interrupt the attempt."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    @_interrupting
    def put(self, key: str, data: bytes) -> None:
        self._blobs.put(key, data)

    @_interrupting
    def get(self, key: str) -> bytes:
        return self._blobs.get(key)


class _RunEnvironment:
    """The attempt's window on storage: checkpoint writes, cancellation, inbox.

    Every method that reaches AWS raises `InfrastructureInterrupt` when AWS fails.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        check_interval: float,
        owner: str,
        lease_expires: datetime | None,
        client: Client,
    ) -> None:
        self._client = client
        self._store = store
        self._run_id = run_id
        self._owner = owner
        self._lease_expires = lease_expires
        self._check_interval = check_interval
        self._last_check = time.monotonic()
        self._cancelled = False
        self._inbox: list[InboxEvent] | None = None
        self.appended = 0
        self.logged = 0  # checkpoints in the log when the invocation loaded it
        # Inbox events the log has consumed: as loaded, then as this invocation appends.
        self.consumed: set[str] = set()

    @_interrupting
    def append(self, checkpoint: Checkpoint) -> None:
        self._store.append_checkpoint(self._run_id, checkpoint)
        self.appended += 1
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

    @_interrupting
    def cancelled(self) -> bool:
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._last_check >= self._check_interval:
            self._last_check = now
            run = self._store.get_run(self._run_id)
            self._cancelled = run is None or run.status is RunStatus.CANCELLED
        return self._cancelled

    @_interrupting
    def start_child(
        self, task_id: str, payload: Any, idempotency_key: str, parent_run_id: str
    ) -> str:
        handle = self._client.trigger(
            task_id, payload, idempotency_key=idempotency_key, parent_run_id=parent_run_id
        )
        return handle.run_id

    @_interrupting
    def get_run(self, run_id: str) -> RunRecord | None:
        return self._store.get_run(run_id)

    @_interrupting
    def create_callback(
        self, token: str, run_id: str, name: str, expires_at: datetime | None
    ) -> None:
        self._store.put_callback(token, run_id, name, expires_at)

    @_interrupting
    def start_batch(self, batch: BatchRecord) -> None:
        start_batch(self._client, self._client.codec, self._store, batch)

    @_interrupting
    def get_batch(self, run_id: str, task_attempt: int, position: int) -> BatchRecord | None:
        return self._store.get_batch(run_id, task_attempt, position)

    @_interrupting
    def batch_results(
        self, run_id: str, task_attempt: int, position: int, start: int, limit: int
    ) -> list[BatchItemResult]:
        return self._store.list_batch_results(
            run_id, task_attempt, position, start=start, limit=limit
        )

    @_interrupting
    def cancel_runs(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            with contextlib.suppress(RunFinishedError, RunNotFoundError):
                self._client.cancel(run_id)

    @_interrupting
    def extend_lease(self, until: datetime | None) -> None:
        """Renew (or shorten) the lease to `until`, the invocation's own lease when None.

        The sweeper must see the run by the time its lease expires, so the run's `wake_at`
        must never be later than `lease_expires`. A renewal that keeps it so writes
        `lease_expires` alone, which no index holds: a heartbeat costs no index write (the
        sweeper moves `wake_at` on when it meets a live lease, see `durable.sweeper`). Only
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

    @_interrupting
    def inbox(self) -> list[InboxEvent]:
        if self._inbox is None:
            self._inbox = self._store.list_inbox(self._run_id)
        return self._inbox


class Worker:
    """Handles wake-up messages for the tasks of one registry."""

    def __init__(
        self,
        *,
        store: RunStore,
        queue: WakeQueue,
        codec: ValueCodec,
        clock: Clock,
        registry: TaskRegistry,
        config: WorkerConfig | None = None,
        router: VersionRouter | None = None,
    ) -> None:
        self.router = router
        self.store = store
        self.queue = queue
        self.codec = codec
        self.clock = clock
        self.registry = registry
        self.config = config or WorkerConfig()
        self.log_cache = LogCache(
            store,
            max_runs=self.config.log_cache_runs,
            max_entries=self.config.log_cache_entries,
        )
        # What attempts decode and encode values with: an S3 failure interrupts the attempt.
        self.attempt_codec = codec.over(_InterruptingBlobs(codec.blobs))
        # Child runs are started the way callers start runs: validated, idempotent.
        self.client = Client(
            store=store,
            queue=queue,
            codec=codec,
            clock=clock,
            registry=registry,
            code_version=self.config.code_version,
        )

    def handle(self, message: WakeUp, time_left: Callable[[], timedelta] | None = None) -> Handled:
        """Process one wake-up; returns what was done.

        Raises only on infrastructure errors (`InfrastructureError`), after giving back the
        lease: the message should then be delivered again.
        """
        if message.reason is WakeReason.PURGE:
            return self._purge(message, time_left)
        run = self.store.get_run(message.run_id)
        if run is None:
            return Handled.UNKNOWN_RUN
        now = self.clock.now()
        if run.status.is_terminal:
            self.log_cache.forget(run.run_id)
            if run.wake_at is not None and run.wake_at <= now:
                follow_up_end(self.client, run)  # a crash cut them short: finish them
                return Handled.FOLLOWED_UP
            return Handled.FINISHED
        waiting = run.status in (RunStatus.QUEUED, RunStatus.WAITING, RunStatus.RETRYING)
        if message.reason is WakeReason.TIMER and message.token != run.wake_token:
            if not self._wait_is_over(run):
                return Handled.STALE
        elif waiting and run.wake_at is not None and now < run.wake_at:
            if message.reason is WakeReason.TIMER:
                self._send_timer(run.run_id, run.wake_at, message.token)
                return Handled.REHOPPED
            if message.reason is WakeReason.SWEEP and not self._wait_is_over(run):
                return Handled.NOT_DUE
        if run.code_version != self.config.code_version:
            return self._pinned_elsewhere(run, message)
        owner = new_owner_id()
        try:
            run = self.store.acquire_lease(run.run_id, owner, now, now + self.config.lease)
        except ConflictError:
            return Handled.BUSY
        try:
            return self._execute(run, owner, time_left)
        except InfrastructureInterrupt as interrupt:
            self._give_back(run, owner)
            raise interrupt.error from None
        except Exception:
            self._give_back(run, owner)
            raise

    def _purge(self, message: WakeUp, time_left: Callable[[], timedelta] | None) -> Handled:
        """Purge the expired runs of the message's shard (`durable.purge`). A PURGE message
        belongs to no run: it is never held or routed by code version."""
        assert message.shard is not None  # `WakeUp.from_json` refuses a PURGE without one
        budget = self.config.purge_budget
        if time_left is not None:
            # The last page's deletes, the lease's release and the continuation fit after.
            budget = min(budget, time_left() - self.config.margin - LEASE_MARGIN)
        done = purge_shard(
            self.store,
            self.queue,
            self.clock,
            message.shard,
            budget=max(budget, timedelta(0)),
            threads=self.config.purge_threads,
        )
        if done.held:
            return Handled.PURGE_HELD
        if done.purged:
            library_logger().info(
                "purged finished runs past retention", shard=done.shard, runs=done.purged
            )
        return Handled.PURGE_CONTINUED if done.continued else Handled.PURGED

    def _give_back(self, run: RunRecord, owner: str) -> None:
        """Release the lease of an invocation that ends in an error, so that the message
        SQS delivers again finds the run free instead of busy until the lease runs out.
        The invocation did not die: it does not count toward the run's crash streak.

        A few tries, a moment apart (botocore has retried each already): a release that is
        lost leaves the lease to expire and counts as a crash, and five in a row would end
        the run as a crash loop. If every try fails, the sweeper goes on after the lease.
        """
        for pause in GIVE_BACK_PAUSES:
            try:
                self.store.update_run(
                    run.run_id,
                    {
                        "lease_owner": None,
                        "lease_expires": None,
                        "wake_at": self.clock.now(),
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

    def _wait_is_over(self, run: RunRecord) -> bool:
        """Whether what a WAITING run waits for has happened (a message that would be
        dropped as stale or early must then run it: its own wake-up may have been lost)."""
        if run.status is not RunStatus.WAITING or run.waiting_for is None:
            return False
        return self._wait_satisfied(run.run_id, run.waiting_for, seen=None)

    def _pinned_elsewhere(self, run: RunRecord, message: WakeUp) -> Handled:
        """A run started by another code version is never replayed with this code.

        It goes to the deployment of its own version when the router knows one; otherwise
        it is held, visibly: `waiting_for` names the version it needs and its error names
        both. Its wake-ups keep coming (the sweeper's, every `version_recheck`), so it
        resumes by itself once that version is deployed again or routed; its `wake_at`
        moves on each time, so held runs never crowd the sweeper's due index.
        """
        if self.router is not None and self.router.route(run.code_version, message):
            return Handled.ROUTED
        needed = f"code-version:{run.code_version}"
        now = self.clock.now()
        if run.waiting_for != needed or run.wake_at is None or run.wake_at <= now:
            error = ErrorInfo(
                type="VersionMismatch",
                message=f"run {run.run_id} is pinned to code version {run.code_version!r}; "
                f"this worker runs {self.config.code_version!r}. Deploy {run.code_version!r} "
                "again or route it (DURABLE_VERSION_ROUTES); the run waits meanwhile",
                non_retryable=True,
            )
            with contextlib.suppress(ConflictError):
                self.store.update_run(
                    run.run_id,
                    {
                        "waiting_for": needed,
                        "error": error,
                        "updated_at": now,
                        "wake_at": now + self.config.version_recheck,
                    },
                    expect_status=[run.status],
                )
        return Handled.VERSION_MISMATCH

    def _execute(
        self, run: RunRecord, owner: str, time_left: Callable[[], timedelta] | None
    ) -> Handled:
        history = self.log_cache.load(run.run_id, run.created_at)
        environment = _RunEnvironment(
            self.store,
            run.run_id,
            self.config.cancel_check_interval,
            owner,
            run.lease_expires,
            self.client,
        )
        environment.logged = len(history)
        environment.consumed = consumed_inbox_ids(history)
        if run.crash_streak > 1 and len(history) > run.checkpoints:
            # The invocations that died made progress: only dead ones with none count.
            run = self.store.update_run(
                run.run_id,
                {"crash_streak": 1, "checkpoints": len(history)},
                expect_owner=owner,
            )
        if run.crash_streak > self.config.max_crash_streak:
            streak = run.crash_streak - 1
            outcome: AnyOutcome = Failed(
                ErrorInfo(
                    type="InvocationCrashLoop",
                    message=f"{streak} invocations in a row died before they finished (a "
                    "crash, Lambda's timeout, memory); the run is stopped instead of looping. "
                    "Give the step that dies a `timeout` so that its attempts count",
                    non_retryable=True,
                )
            )
            return self._persist(run, owner, outcome, environment)
        try:
            definition = self.registry.get(run.task_id)
        except UnknownTaskError as exc:
            outcome = Failed(
                ErrorInfo(
                    type="UnknownTaskError",
                    message=f"{exc}; this code version cannot run it",
                    non_retryable=True,
                )
            )
        else:
            deadline = None
            if time_left is not None:
                deadline = self.clock.now() + time_left() - self.config.margin
            outcome = execute_attempt(
                definition,
                run,
                history,
                environment=environment,
                clock=self.clock,
                codec=self.attempt_codec,
                deadline=deadline,
            )
        library_logger().debug(
            "invocation ended",
            run_id=run.run_id,
            task_id=run.task_id,
            outcome=type(outcome).__name__,
        )
        return self._persist(run, owner, outcome, environment)

    def _persist(
        self, run: RunRecord, owner: str, outcome: AnyOutcome, environment: _RunEnvironment
    ) -> Handled:
        now = self.clock.now()
        base: dict[str, Any] = {
            "updated_at": now,
            "lease_owner": None,
            "lease_expires": None,
            "crash_streak": 0,
            "checkpoints": environment.logged + environment.appended,
        }
        if isinstance(outcome, Abandoned):
            return Handled.ABANDONED
        ends = isinstance(outcome, Completed | Failed)
        if ends:
            # Before the end is written: an invocation that dies here is run again, and
            # prunes again, so no run ends with a consumed event left in its inbox.
            self._prune_inbox(run.run_id, environment, ended=True)
        try:
            if isinstance(outcome, Completed | Failed):
                status = outcome.status if isinstance(outcome, Failed) else RunStatus.COMPLETED
                ended = self.store.update_run(
                    run.run_id,
                    {
                        **base,
                        "status": status,
                        "result": outcome.result if isinstance(outcome, Completed) else None,
                        "error": outcome.error if isinstance(outcome, Failed) else None,
                        "finished_at": now,
                        "expires_at": self.config.expires_at(now),
                        # Pending follow-ups keep the run in the sweeper's index (the outbox).
                        "wake_at": now if has_follow_ups(run, status) else None,
                        "wake_token": None,
                        "waiting_for": None,
                    },
                    expect_owner=owner,
                    expect_status=ACTIVE,
                )
            elif isinstance(outcome, Suspended):
                token = secrets.token_hex(8) if outcome.wake_at is not None else None
                self.store.update_run(
                    run.run_id,
                    {
                        **base,
                        "status": outcome.status,
                        "attempt": outcome.attempt,
                        "error": None,  # e.g. a VersionMismatch it was held with before
                        "wake_at": outcome.wake_at,
                        "wake_token": token,
                        "waiting_for": outcome.waiting_for,
                    },
                    expect_owner=owner,
                    expect_status=ACTIVE,
                )
            else:
                self.store.update_run(
                    run.run_id,
                    {**base, "status": RunStatus.QUEUED, "wake_at": now, "wake_token": None},
                    expect_owner=owner,
                    expect_status=ACTIVE,
                )
        except ConflictError:
            # The run was cancelled (or taken over) while this invocation ran.
            return Handled.ABANDONED
        # The lease is given back: what follows is safe to repeat, and what is lost if the
        # process dies here is recovered by the sweeper (the run's wake_at is set).
        if isinstance(outcome, Completed | Failed):
            self.log_cache.forget(run.run_id)
            if ended.wake_at is not None:
                follow_up_end(self.client, ended)
        elif isinstance(outcome, Suspended):
            if outcome.wake_at is not None:
                self._send_timer(run.run_id, outcome.wake_at, token)
            if outcome.waiting_for is not None:
                self._recheck_wait(run.run_id, outcome.waiting_for, environment)
        else:
            self.queue.send(WakeUp(run.run_id, WakeReason.CONTINUE))
        if not ends:
            self._prune_inbox(run.run_id, environment, ended=False)
        return Handled.EXECUTED

    def _prune_inbox(self, run_id: str, environment: _RunEnvironment, ended: bool) -> None:
        """Delete the inbox events the log has consumed (see `durable.inbox`).

        Best effort, after the run is persisted (before, when it ends): an event left
        behind is already marked consumed by the log, so it is never delivered again; the
        next invocation that reads the inbox deletes it, or the one that ends the run.
        """
        try:
            consumed = environment.consumed_in_inbox(run_ended=ended)
            if consumed:
                self.store.delete_inbox(run_id, consumed)
        except InfrastructureError as exc:
            library_logger().warning(
                "consumed inbox events not deleted", run_id=run_id, error=str(exc)
            )

    def _send_timer(self, run_id: str, wake_at: datetime, token: str | None) -> None:
        delay = max(wake_at - self.clock.now(), timedelta(0))
        self.queue.send(WakeUp(run_id, WakeReason.TIMER, token), min(delay, self.queue.max_delay))

    def _recheck_wait(self, run_id: str, waiting_for: str, environment: _RunEnvironment) -> None:
        """What the run waits for may have happened while this invocation held the lease.

        Its sender's wake-up may have been dropped as BUSY meanwhile. Looking again after
        the run is marked WAITING closes the window: anything that happens later finds the
        run waiting and wakes it.
        """
        try:
            seen = environment.inbox()
        except InfrastructureInterrupt as interrupt:
            raise interrupt.error from None
        if self._wait_satisfied(run_id, waiting_for, seen):
            self.queue.send(WakeUp(run_id, WakeReason.CHILD))

    def _wait_satisfied(self, run_id: str, waiting_for: str, seen: list[InboxEvent] | None) -> bool:
        """Whether what `waiting_for` names has happened.

        Waits are told apart by prefix: `batch:ATTEMPT:POSITION`, `child:RUN_ID`,
        `callback:TOKEN_HASH`, `code-version:V` (nothing to look at); an event name never
        holds a colon (see `durable.names`). For an inbox wait, `seen` is the inbox the attempt
        read: an event that arrived since counts; without it, any event of that name does
        (one consumed by a run that died before deleting it too: the run then runs, finds
        it consumed and waits again, and deletes it).
        """
        kind, _, detail = waiting_for.partition(":")
        if not detail:
            name = waiting_for  # an event
        elif kind == "batch":
            attempt, _, position = detail.partition(":")
            batch = self.store.get_batch(run_id, int(attempt), int(position))
            return batch is None or batch.decided
        elif kind == "child":
            child = self.store.get_run(detail)
            return child is None or child.status.is_terminal
        elif kind == "callback":
            name = waiting_for
        else:
            return False
        # By id, not by count: the inbox loses the events the invocation consumed.
        known = {event.inbox_id for event in seen or []}
        return any(
            event.name == name and event.inbox_id not in known
            for event in self.store.list_inbox(run_id)
        )
