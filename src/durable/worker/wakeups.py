"""The worker: one wake-up message in, one invocation of a run out.

    message ─► drop if stale/finished/busy ─► lease ─► load log ─► execute ─► persist ─► enqueue

The parts it glues: the lease and the attempt's window on storage
(`durable.worker.invocation`), what a wait waits for (`durable.worker.waits`), runs of
other code versions (`durable.worker.versions`), children started and runs ended or
cancelled by the run services (`durable.services.runs`, `durable.services.batches`,
`durable.services.endings`).

Rules, each making a duplicate, late or lost message harmless:
- A finished run, or a timer message whose token is not the run's current `wake_token`,
  is dropped. A wait longer than the queue's delay is parked, not sent: the sweeper sends
  it on time (`durable.services.timers`); an early timer of an old deploy parks it.
- The lease (a conditional update) lets one invocation own a run at a time; a message for
  a run whose lease is live is dropped: the owner schedules what comes next, and if it dies
  its lease expires and the sweeper re-enqueues the run.
- Each checkpoint is a conditional put at the next log slot; losing it abandons the
  invocation without writing anything else.
- A replay that diverges from the log, or a run whose task is not here, is held, never
  failed (`durable.worker.holds`): rechecked without a replay until other code comes.
- A run of a queue with a concurrency limit takes a slot before the lease, and a full
  queue leaves it QUEUED waiting for one (`durable.services.slots`).
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
  batch report, the cancellation of its children (`durable.services.endings`);
- an event or a callback completion is put in the inbox, then the run, if it waits for it,
  is marked due (`wake_at` now), then woken: a crash after the put is recovered by the
  sweeper, or by the caller retrying the call that failed;
- a wake-up that arrives while the run is busy is dropped, but the busy invocation, once it
  has persisted its wait, looks again at what it waits for (child, batch, inbox) and wakes
  itself if that happened meanwhile; if it dies before, its own message comes back, and a
  message for a waiting run whose wait is over is never dropped as stale.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from durable.clock import Clock
from durable.engine.outcomes import (
    Abandoned,
    AnyOutcome,
    Completed,
    Failed,
    Held,
    InfrastructureInterrupt,
    Suspended,
)
from durable.errors import ConflictError, InfrastructureError, UnknownTaskError
from durable.executor import execute_attempt
from durable.ids import new_owner_id
from durable.inbox import consumed_inbox_ids
from durable.logs import library_logger
from durable.operations.observer import AttemptObserver
from durable.queues.base import WakeQueue
from durable.records import (
    HOLD_UNKNOWN_TASK,
    CheckpointKind,
    ErrorInfo,
    RunRecord,
    RunStatus,
    WakeReason,
    WakeUp,
)
from durable.services.bulk import BulkPorts, work_on_message
from durable.services.endings import RunEndings
from durable.services.expiry import check_start
from durable.services.purge import LEASE_MARGIN, purge_shard
from durable.services.runs import RunStarter
from durable.services.stats import count_ended, count_held, count_retries
from durable.services.timers import parks, rehop_or_park
from durable.storage.base import RunStore
from durable.storage.log_cache import LogCache
from durable.task import TaskRegistry
from durable.values import ValueCodec
from durable.worker.config import Handled, WorkerConfig
from durable.worker.holds import code_fingerprint, hold_changes, recheck_hold, still_held
from durable.worker.invocation import ACTIVE, InterruptingBlobs, RunEnvironment, give_back_lease
from durable.worker.report import InvocationFigures, InvocationReport
from durable.worker.versions import VersionRouter, hold_for_version
from durable.worker.waits import wait_satisfied


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
        self.attempt_codec = codec.over(InterruptingBlobs(codec.blobs))
        # Child runs are started the way callers start runs: validated, idempotent.
        self.starter = RunStarter(
            store=store,
            queue=queue,
            codec=codec,
            clock=clock,
            registry=registry,
            code_version=self.config.code_version,
        )
        # Cancelled children are kept forever (no retention), as they always were here.
        self.endings = RunEndings(self.starter)

    def handle(self, message: WakeUp, time_left: Callable[[], timedelta] | None = None) -> Handled:
        """Process one wake-up; returns what was done.

        Raises only on infrastructure errors (`InfrastructureError`), after giving back the
        lease: the message should then be delivered again.
        """
        return self.process(message, time_left).handled

    def process(
        self,
        message: WakeUp,
        time_left: Callable[[], timedelta] | None = None,
        observer: AttemptObserver | None = None,
    ) -> InvocationReport:
        """`handle`, reporting what the invocation did in figures (`durable.worker.report`);
        `observer` is told of each step attempt the invocation runs (a tracer)."""
        figures = InvocationFigures(observer)
        handled = self._handle(message, time_left, figures)
        return figures.report(handled, persisted=handled is Handled.EXECUTED)

    def _handle(
        self,
        message: WakeUp,
        time_left: Callable[[], timedelta] | None,
        figures: InvocationFigures,
    ) -> Handled:
        if message.reason is WakeReason.PURGE:
            return self._purge(message, time_left)
        if message.reason is WakeReason.BULK and message.job is not None:  # no run's either
            endings = RunEndings(self.starter, self.config.retention)
            ports = BulkPorts(self.store, self.queue, self.clock, endings, self.config.code_version)
            config = self.config
            budget, threads = config.bulk_budget, config.bulk_threads
            work_on_message(ports, message.job, time_left, config.margin, budget, threads)
            return Handled.BULK
        run = self.store.get_run(message.run_id)
        if run is None:
            return Handled.UNKNOWN_RUN
        now = self.clock.now()
        if run.status.is_terminal:
            self.log_cache.forget(run.run_id)
            if run.wake_at is not None and run.wake_at <= now:
                self.endings.follow_up(run)  # a crash cut them short: finish them
                return Handled.FOLLOWED_UP
            if message.reason is WakeReason.QUEUE:
                self.endings.slots.dismiss(run)
            return Handled.FINISHED
        waiting = run.status in (RunStatus.QUEUED, RunStatus.WAITING, RunStatus.RETRYING)
        if message.reason is WakeReason.TIMER and message.token != run.wake_token:
            if not self._wait_is_over(run):
                return Handled.STALE
        elif waiting and run.wake_at is not None and now < run.wake_at:
            if message.reason is WakeReason.TIMER:  # an old deploy's hop: parked if far
                parked = rehop_or_park(self.store, self.queue, self.clock, run)
                return Handled.PARKED if parked else Handled.REHOPPED
            if message.reason is WakeReason.SWEEP and not self._wait_is_over(run):
                return Handled.NOT_DUE
        if run.code_version != self.config.code_version:
            return self._pinned_elsewhere(run, message)
        if still_held(run, self.registry, self.config.code_version):
            # This code held it: a replay would diverge again (`durable.worker.holds`).
            recheck_hold(self.store, self.clock, run, self.config.hold_recheck)
            return Handled.HELD
        expiring = RunEndings(self.starter, self.config.retention)  # an expired run's
        held_back = check_start(expiring, self.registry, run)
        if held_back is not None:
            return Handled(held_back)  # expired, or waits for a later rate window
        limit = self.endings.slots.limit_of(run)  # a queue's slot first (`services.slots`)
        if limit and not self.endings.slots.enter(run, limit, message.reason is WakeReason.QUEUE):
            return Handled.QUEUED
        owner = new_owner_id()
        first_start = run.started_at is None
        try:
            run = self.store.acquire_lease(run.run_id, owner, now, now + self.config.lease)
        except ConflictError:
            return Handled.BUSY
        try:
            return self._execute(run, owner, time_left, figures, first_start)
        except InfrastructureInterrupt as interrupt:
            give_back_lease(self.store, self.clock, run, owner)
            raise interrupt.error from None
        except Exception:
            give_back_lease(self.store, self.clock, run, owner)
            raise

    def _purge(self, message: WakeUp, time_left: Callable[[], timedelta] | None) -> Handled:
        """Purge the expired runs of the message's shard (`durable.services.purge`). A PURGE message
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

    def _wait_is_over(self, run: RunRecord) -> bool:
        """Whether what a WAITING run waits for has happened (a message that would be
        dropped as stale or early must then run it: its own wake-up may have been lost)."""
        if run.status is not RunStatus.WAITING or run.waiting_for is None:
            return False
        return wait_satisfied(self.store, run.run_id, run.waiting_for, seen=None)

    def _pinned_elsewhere(self, run: RunRecord, message: WakeUp) -> Handled:
        """A run started by another code version is never replayed with this code: it is
        routed to its own version's deployment, or held (`durable.worker.versions`)."""
        if self.router is not None and self.router.route(run.code_version, message):
            return Handled.ROUTED
        hold_for_version(
            self.store, self.clock, run, self.config.code_version, self.config.version_recheck
        )
        return Handled.VERSION_MISMATCH

    def _execute(
        self,
        run: RunRecord,
        owner: str,
        time_left: Callable[[], timedelta] | None,
        figures: InvocationFigures,
        first_start: bool,
    ) -> Handled:
        history = self.log_cache.load(run.run_id, run.created_at)
        figures.loaded(run, first_start, history)
        environment = RunEnvironment(
            self.store,
            run.run_id,
            self.config.cancel_check_interval,
            owner,
            run.lease_expires,
            self.endings,
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
            figures.finished(outcome, environment.appended, environment.retries)
            return self._persist(run, owner, outcome, environment)
        try:
            definition = self.registry.get(run.task_id)
        except UnknownTaskError as exc:
            # Held until code that has the task is deployed (`durable.worker.holds`).
            message = f"{exc}; this code version cannot run it: the run waits for one that can"
            error = ErrorInfo(type="UnknownTaskError", message=message)
            outcome = Held(error, HOLD_UNKNOWN_TASK)
        else:
            deadline = None
            if time_left is not None:
                deadline = self.clock.now() + time_left() - self.config.margin
            figures.max_attempts = definition.retry.max_attempts
            outcome = execute_attempt(
                definition,
                run,
                history,
                environment=environment,
                clock=self.clock,
                codec=self.attempt_codec,
                deadline=deadline,
                observer=figures,
            )
        figures.finished(outcome, environment.appended, environment.retries)
        library_logger().debug(
            "invocation ended",
            run_id=run.run_id,
            task_id=run.task_id,
            outcome=type(outcome).__name__,
        )
        return self._persist(run, owner, outcome, environment)

    def _persist(
        self, run: RunRecord, owner: str, outcome: AnyOutcome, environment: RunEnvironment
    ) -> Handled:
        now = self.clock.now()
        base: dict[str, Any] = {
            "updated_at": now,
            "lease_owner": None,
            "lease_expires": None,
            "crash_streak": 0,
            "checkpoints": environment.logged + environment.appended,
            "held_code": None,  # set again below if it is held again
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
                        "wake_at": now if self.endings.has_follow_ups(run, status) else None,
                        "wake_token": None,
                        "waiting_for": None,
                    },
                    expect_owner=owner,
                    expect_status=ACTIVE,
                )
            elif isinstance(outcome, Suspended):
                token = secrets.token_hex(8) if outcome.wake_at is not None else None
                parked = parks(outcome.wake_at, now, self.queue)  # sent by the sweeper
                self.store.update_run(
                    run.run_id,
                    {
                        **base,
                        "status": outcome.status,
                        "attempt": outcome.attempt,
                        "error": None,  # e.g. a VersionMismatch it was held with before
                        "wake_at": outcome.wake_at,
                        "wake_token": token,
                        "wake_parked": parked,
                        "waiting_for": outcome.waiting_for,
                    },
                    expect_owner=owner,
                    expect_status=ACTIVE,
                )
            elif isinstance(outcome, Held):
                code = code_fingerprint(self.registry, run.task_id, self.config.code_version)
                changes = hold_changes(outcome, code, now, self.config.hold_recheck)
                self.store.update_run(
                    run.run_id, {**base, **changes}, expect_owner=owner, expect_status=ACTIVE
                )
            else:
                self.store.update_run(
                    run.run_id,
                    {
                        **base,
                        "status": RunStatus.QUEUED,
                        "wake_at": now,
                        "wake_token": None,
                        "waiting_for": None,
                        "error": None,
                    },
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
            try:
                if ended.wake_at is not None:
                    self.endings.follow_up(ended)
            finally:
                count_ended(self.store, self.clock, ended)  # best effort: never raises
        elif isinstance(outcome, Suspended):
            self.endings.slots.release_waiting(run, held=False)
            if outcome.wake_at is not None and not parked:
                self._send_timer(run.run_id, outcome.wake_at, token)
            if outcome.waiting_for is not None:
                self._recheck_wait(run.run_id, outcome.waiting_for, environment)
        elif isinstance(outcome, Held):
            library_logger().warning(
                "run held: its code cannot go on", run_id=run.run_id, error=outcome.error.message
            )
            count_held(self.store, self.clock, run)  # best effort: never raises
            self.endings.slots.release_waiting(run, held=True)
        else:
            self.queue.send(WakeUp(run.run_id, WakeReason.CONTINUE))
        if not ends:
            self._prune_inbox(run.run_id, environment, ended=False)
        if environment.retries:  # best effort, last
            count_retries(
                self.store,
                self.clock,
                run,
                environment.retries.get(CheckpointKind.STEP_FAILED, 0),
                environment.retries.get(CheckpointKind.ATTEMPT_FAILED, 0),
            )
        return Handled.EXECUTED

    def _prune_inbox(self, run_id: str, environment: RunEnvironment, ended: bool) -> None:
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

    def _recheck_wait(self, run_id: str, waiting_for: str, environment: RunEnvironment) -> None:
        """What the run waits for may have happened while this invocation held the lease.

        Its sender's wake-up may have been dropped as BUSY meanwhile. Looking again after
        the run is marked WAITING closes the window: anything that happens later finds the
        run waiting and wakes it.
        """
        try:
            seen = environment.inbox()
        except InfrastructureInterrupt as interrupt:
            raise interrupt.error from None
        if wait_satisfied(self.store, run_id, waiting_for, seen):
            self.queue.send(WakeUp(run_id, WakeReason.CHILD))
