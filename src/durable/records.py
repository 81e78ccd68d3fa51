"""The records the library stores and passes around: runs, checkpoints, inbox events, wake-ups.

All frozen dataclasses; statuses and kinds are `StrEnum`s. Values (payloads, results, step
results, event data) travel as *encoded* JSON text (see `durable.values`): a record never
holds a live Python object, so any adapter can store it as it is.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    """Where a run is in its life. The last four are terminal."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    RETRYING = "RETRYING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT}
)


class CheckpointKind(StrEnum):
    """What a log entry records."""

    STEP_STARTED = "step_started"  # at-most-once marker, written before the side effect
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"  # one failed attempt of a step (final or with a retry time)
    STEP_HEARTBEAT = "step_heartbeat"  # value is the details of ctx.heartbeat
    SLEEP_STARTED = "sleep_started"  # wake_at is when the sleep ends
    WAIT_STARTED = "wait_started"  # wake_at is the timeout, if any
    EVENT_RECEIVED = "event_received"  # value is the event data; name the event name
    WAIT_TIMED_OUT = "wait_timed_out"
    VALUE_RECORDED = "value_recorded"  # ctx.now / ctx.random / ctx.uuid4
    PATCH_MARKER = "patch_marker"  # ctx.patched(change_id) took the new code path
    CHILD_STARTED = "child_started"  # ctx.invoke started a child run; value is its run id
    CHILD_TRIGGERED = "child_triggered"  # ctx.trigger started a child run; value is its run id
    CHILD_COMPLETED = "child_completed"  # value is the child's result
    CHILD_FAILED = "child_failed"  # error is the child's error
    CALLBACK_CREATED = "callback_created"  # value is the token; wake_at the timeout
    CALLBACK_COMPLETED = "callback_completed"  # value is the data an outside system sent
    CALLBACK_FAILED = "callback_failed"  # error is what the outside system reported
    CALLBACK_TIMED_OUT = "callback_timed_out"
    BATCH_STARTED = "batch_started"  # ctx.map / ctx.parallel started its children
    # The batch's end: value refers to its per-child result items (`durable.batch_results`);
    # logs written before hold every child's outcome in the value, in input order.
    BATCH_COMPLETED = "batch_completed"
    BATCH_FAILED = "batch_failed"  # too many children failed; value as for BATCH_COMPLETED
    ATTEMPT_FAILED = "attempt_failed"  # the task attempt failed; wake_at is the retry time
    # Someone acted on the run (`durable.services.audit`): name is the action (resume,
    # retry, cancel...), value a JSON object {"by": caller, ...details}. Replay never reads it.
    RUN_ACTION = "run_action"


# What an error may take of a DynamoDB item (400 KB in all, with a payload and a result of
# up to `values.DEFAULT_INLINE_LIMIT` each beside it): its message and traceback are cut to
# these many characters, keeping the start of the message and the end of the traceback
# (where the failing frame is). The worker logs the whole traceback when it cuts one.
MAX_ERROR_MESSAGE = 4096
MAX_TRACEBACK = 16384


def _cut(text: str, limit: int, keep_end: bool) -> str:
    if len(text) <= limit:
        return text
    note = f"\n… [{len(text) - limit:,} characters cut; the whole text is in the worker's log]\n"
    return note + text[-limit:] if keep_end else text[:limit] + note


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An exception as stored: its type name, message and (optionally) traceback.

    The message and traceback are bounded (`MAX_ERROR_MESSAGE`, `MAX_TRACEBACK`), so that
    no error can push a run or a log entry past DynamoDB's item size.
    """

    type: str
    message: str
    traceback: str | None = None
    non_retryable: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", _cut(self.type, 256, keep_end=False))
        object.__setattr__(self, "message", _cut(self.message, MAX_ERROR_MESSAGE, False))
        if self.traceback is not None:
            object.__setattr__(self, "traceback", _cut(self.traceback, MAX_TRACEBACK, True))

    @classmethod
    def from_exception(
        cls, exc: BaseException, traceback: str | None = None, non_retryable: bool = False
    ) -> ErrorInfo:
        error_type = getattr(exc, "error_type", None) or type(exc).__name__
        message = getattr(exc, "message", None)
        if not isinstance(message, str):
            message = str(exc)
        if len(message) > MAX_ERROR_MESSAGE or len(traceback or "") > MAX_TRACEBACK:
            # What is stored is cut: the whole of it goes to the log (CloudWatch on AWS).
            logging.getLogger("durable").warning(
                "error cut for storage: %s: %s\n%s", error_type, message, traceback or ""
            )
        return cls(
            type=str(error_type), message=message, traceback=traceback, non_retryable=non_retryable
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.traceback is not None:
            data["traceback"] = self.traceback
        if self.non_retryable:
            data["non_retryable"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ErrorInfo:
        return cls(
            type=data["type"],
            message=data["message"],
            traceback=data.get("traceback"),
            non_retryable=bool(data.get("non_retryable", False)),
        )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One entry of a run's append-only log.

    `seq` (1-based) is the entry's slot in the log and the fence: two invocations can never
    both write the same slot. `op` is the position of the operation in the task's code
    (the n-th durable call), -1 for attempt-level entries. `inbox_id` names the inbox event
    an entry consumed (EVENT_RECEIVED, CALLBACK_COMPLETED, CALLBACK_FAILED): that event is
    never delivered again, and its inbox item is deleted once the entry is written. Entries
    written before ids were recorded have none (see `durable.inbox`). `started_at` is when
    the step attempt an entry ends began (step ends only); `input` is that attempt's
    arguments as bounded JSON text (`durable.operations.step_input`).
    """

    seq: int
    kind: CheckpointKind
    op: int
    name: str
    task_attempt: int
    at: datetime
    step_attempt: int = 1
    value: str | None = None
    error: ErrorInfo | None = None
    wake_at: datetime | None = None
    inbox_id: str | None = None
    # When the step attempt this entry ends began (STEP_COMPLETED, STEP_FAILED): metadata
    # for the run's timeline; replay never compares it. Older logs have none.
    started_at: datetime | None = None
    # A fresh step attempt's arguments (STEP_COMPLETED, STEP_FAILED): JSON text of at most
    # `step_input.MAX_INPUT_PREVIEW` bytes, or a note of why they were left out; None for
    # a step without arguments and in older logs. Metadata: replay never reads it.
    input: str | None = None

    @property
    def operation_kind(self) -> str:
        """The kind of operation this entry belongs to (step, sleep, wait, value)."""
        return _OPERATION_OF_KIND[self.kind]


_OPERATION_OF_KIND = {
    CheckpointKind.STEP_STARTED: "step",
    CheckpointKind.STEP_COMPLETED: "step",
    CheckpointKind.STEP_FAILED: "step",
    CheckpointKind.STEP_HEARTBEAT: "step",
    CheckpointKind.SLEEP_STARTED: "sleep",
    CheckpointKind.WAIT_STARTED: "wait_for_event",
    CheckpointKind.EVENT_RECEIVED: "wait_for_event",
    CheckpointKind.WAIT_TIMED_OUT: "wait_for_event",
    CheckpointKind.VALUE_RECORDED: "value",
    CheckpointKind.PATCH_MARKER: "patch",
    CheckpointKind.CHILD_STARTED: "invoke",
    CheckpointKind.CHILD_TRIGGERED: "trigger",
    CheckpointKind.CHILD_COMPLETED: "invoke",
    CheckpointKind.CHILD_FAILED: "invoke",
    CheckpointKind.CALLBACK_CREATED: "callback",
    CheckpointKind.CALLBACK_COMPLETED: "callback_wait",
    CheckpointKind.CALLBACK_FAILED: "callback_wait",
    CheckpointKind.CALLBACK_TIMED_OUT: "callback_wait",
    CheckpointKind.BATCH_STARTED: "batch",
    CheckpointKind.BATCH_COMPLETED: "batch",
    CheckpointKind.BATCH_FAILED: "batch",
    CheckpointKind.ATTEMPT_FAILED: "attempt",
    CheckpointKind.RUN_ACTION: "action",
}


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as stored: the head item under the run's key.

    `wake_at` is when the run next needs an invocation (a sleep's end, a retry, a wait's
    timeout, or a running invocation's lease expiry); the sweeper re-enqueues runs whose
    `wake_at` is overdue. `wake_token` names the one timer message that is current; a timer
    message carrying another token is stale and dropped. A `wake_at` further away than the
    queue's longest delay is parked (`wake_parked`): no message is in flight for it until
    the sweeper hands it off. `expires_at` is set when the run
    ends (finish time + retention); the sweeper then deletes the run with its log and inbox.
    """

    run_id: str
    task_id: str
    status: RunStatus
    payload: str
    created_at: datetime
    updated_at: datetime
    attempt: int = 1
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: str | None = None
    error: ErrorInfo | None = None
    idempotency_key: str | None = None
    task_version: str = "1"
    code_version: str = "dev"
    wake_at: datetime | None = None
    wake_token: str | None = None
    # A far `wake_at` with no message sent: the sweeper sends its timer once it is within
    # the queue's longest delay (`durable.services.timers`); `due_runs` leaves it out.
    wake_parked: bool = False
    waiting_for: str | None = None
    lease_owner: str | None = None
    lease_expires: datetime | None = None
    checkpoints: int = 0
    cancel_requested: bool = False
    parent_run_id: str | None = None
    # Labels given at trigger (`durable.services.labels`): the tags are indexed (a listing
    # by tag), the metadata only shown.
    tags: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None  # a finished run is purged after this (None: kept)
    batch_slot: str | None = None  # a ctx.map/parallel child: "attempt:position:index"
    crash_streak: int = 0  # invocations in a row that took the lease and never finished
    # A held run (`HOLD_NONDETERMINISM`, `HOLD_UNKNOWN_TASK`): the fingerprint of the code
    # that held it (`durable.worker.holds`); workers with that same code do not replay it.
    held_code: str | None = None
    # Where a repaired run came from: "rerun:<run id>" or "fork:<run id>@<entries copied>"
    # (`durable.services.repair`); None for a run started any other way.
    origin: str | None = None
    # When the idempotency claim stops holding (None: never, as for the keys the library
    # makes itself); a trigger after it starts a new run under the key.
    idempotency_expires_at: datetime | None = None
    # Flow control (`durable.flow`), fixed at trigger: the queue the run starts in (its
    # task's at the time), the concurrency key its limits apply per, its priority among the
    # runs waiting in that queue and key (higher first), and the instant after which it is
    # not started any more (its trigger's ttl).
    queue: str | None = None
    concurrency_key: str | None = None
    priority: int = 0
    start_by: datetime | None = None

    def with_changes(self, **changes: Any) -> RunRecord:
        return replace(self, **changes)


# A run held instead of failed (WAITING, `waiting_for` one of these, `error` says why):
# its replay diverged from its log, or its task is not in the deployed code. A run pinned
# to a code version nobody runs waits with `code-version:V` (`HOLD_CODE_VERSION` + V).
HOLD_NONDETERMINISM = "fix:nondeterminism"
HOLD_UNKNOWN_TASK = "fix:unknown-task"
HOLD_CODE_VERSION = "code-version:"


def is_fix_hold(waiting_for: str | None) -> bool:
    """Whether a run waits for a code fix (a divergence, an unknown task)."""
    return waiting_for in (HOLD_NONDETERMINISM, HOLD_UNKNOWN_TASK)


def is_held(waiting_for: str | None) -> bool:
    """Whether a run is held: for a code fix, or for a code version nobody runs."""
    return is_fix_hold(waiting_for) or (waiting_for or "").startswith(HOLD_CODE_VERSION)


def hold_reason(waiting_for: str | None) -> str | None:
    """Why a run is held: `nondeterminism`, `unknown-task`, `code-version`; None if it is not."""
    if waiting_for == HOLD_NONDETERMINISM:
        return "nondeterminism"
    if waiting_for == HOLD_UNKNOWN_TASK:
        return "unknown-task"
    if (waiting_for or "").startswith(HOLD_CODE_VERSION):
        return "code-version"
    return None


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """An event sent to a run, kept until a `wait_for_event` of that name consumes it."""

    run_id: str
    inbox_id: str
    name: str
    data: str
    received_at: datetime


class WakeReason(StrEnum):
    """Why a wake-up message was sent."""

    START = "start"
    TIMER = "timer"  # a sleep ended, a retry is due or a wait timed out
    EVENT = "event"  # an event arrived
    CONTINUE = "continue"  # the last invocation ran low on time and handed over
    SWEEP = "sweep"  # the sweeper found the run overdue
    CANCEL = "cancel"
    CHILD = "child"  # a child run ended
    PURGE = "purge"  # not a run's: purge one expiry shard's expired runs (`durable.services.purge`)
    BULK = "bulk"  # not a run's: work on one bulk job (`durable.services.bulk`)
    QUEUE = "queue"  # a slot of the run's queue was released (`durable.services.slots`)


@dataclass(frozen=True, slots=True)
class WakeUp:
    """The body of a wake-up message on the queue.

    A PURGE message is no run's wake-up: it names an expiry shard (`shard`) whose expired
    runs a worker purges (`durable.services.purge`); its `run_id` is `purge_message_id(shard)`, a
    name no run id can have, so a worker that did not know the kind would find no run
    and drop it. Only a PURGE message has a shard. A BULK message is no run's either: it
    names a bulk job (`job`), its `run_id` is `bulk_message_id(job)`; only it has a job.
    """

    run_id: str
    reason: WakeReason
    token: str | None = None
    shard: int | None = None
    job: str | None = None

    @classmethod
    def purge(cls, shard: int) -> WakeUp:
        """The message that asks a worker to purge the expired runs of `shard`."""
        return cls(purge_message_id(shard), WakeReason.PURGE, shard=shard)

    @classmethod
    def bulk(cls, job_id: str) -> WakeUp:
        """The message that asks a worker to carry on with the bulk job `job_id`."""
        return cls(bulk_message_id(job_id), WakeReason.BULK, job=job_id)

    def to_json(self) -> str:
        body: dict[str, object] = {
            "run_id": self.run_id,
            "reason": self.reason,
            "token": self.token,
        }
        if self.shard is not None:
            body["shard"] = self.shard
        if self.job is not None:
            body["job"] = self.job
        return json.dumps(body)

    @classmethod
    def from_json(cls, body: str) -> WakeUp:
        """Parse a message body; raises ValueError on anything that is not a wake-up."""
        try:
            data = json.loads(body)
            message = cls(
                run_id=str(data["run_id"]),
                reason=WakeReason(data.get("reason", WakeReason.SWEEP)),
                token=data.get("token"),
                shard=data.get("shard"),
                job=data.get("job"),
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a wake-up message: {body[:200]!r}") from exc
        if message.reason is WakeReason.PURGE:
            shard = message.shard
            # bool is an int: refuse it too.
            if not isinstance(shard, int) or isinstance(shard, bool) or shard < 0:
                raise ValueError(f"a purge message without a valid shard: {body[:200]!r}")
            if message.run_id != purge_message_id(shard):
                raise ValueError(f"a purge message names a run: {body[:200]!r}")
        elif message.shard is not None:
            raise ValueError(f"a run's wake-up with a shard: {body[:200]!r}")
        if message.reason is WakeReason.BULK:
            job = message.job
            if not isinstance(job, str) or not BULK_JOB_ID.fullmatch(job):
                raise ValueError(f"a bulk message without a valid job: {body[:200]!r}")
            if message.run_id != bulk_message_id(job):
                raise ValueError(f"a bulk message names a run: {body[:200]!r}")
        elif message.job is not None:
            raise ValueError(f"a run's wake-up with a bulk job: {body[:200]!r}")
        return message


def purge_message_id(shard: int) -> str:
    """What a PURGE message carries as its `run_id` (run ids never contain '#')."""
    return f"PURGE#{shard}"


# A bulk job's id: `bulk_` and the hex digits of a run id (time-ordered, random).
BULK_JOB_ID = re.compile(r"bulk_[0-9a-f]{32}")


def bulk_message_id(job_id: str) -> str:
    """What a BULK message carries as its `run_id` (run ids never contain '#')."""
    return f"BULK#{job_id}"


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A fan-out (`ctx.map` / `ctx.parallel`) of one run, kept beside the run's log.

    `calls` is the encoded JSON list of `[task_id, payload]`, one per child. Children are
    started `max_concurrency` at a time: child `i + max_concurrency` is started when child
    `i` ends. Counters move with each child's end (one transaction: its result item + these
    counters), and the parent is woken only when the batch is decided.
    """

    run_id: str
    position: int
    task_attempt: int
    total: int
    calls: str
    max_concurrency: int
    tolerated_failures: int
    first_success: bool
    succeeded: int = 0
    failed: int = 0

    @property
    def decided(self) -> bool:
        """Whether the parent can go on: all ended, too many failed, or one succeeded."""
        return (
            self.succeeded + self.failed >= self.total
            or self.failed > self.tolerated_failures
            or (self.first_success and self.succeeded > 0)
        )


@dataclass(frozen=True, slots=True)
class BatchItemResult:
    """How one child of a batch ended."""

    index: int
    run_id: str
    ok: bool
    result: str | None = None
    error: ErrorInfo | None = None
