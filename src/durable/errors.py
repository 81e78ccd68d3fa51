"""Every public exception of `durable`, stdlib only.

DurableError                      base of everything raised by the library
├── NonRetryableError             raised by user code: fail now, skip the retry budget
├── NonDeterminismError           replay asked for another operation than the log holds
├── WaitTimeoutError              wait_for_event / wait_for_callback ran out of time
├── RunCancelledError             the run was cancelled while it ran
├── TaskTimeoutError              the run outlived its task timeout (a run's error type only)
├── StepFailedError               a step failed for good; carries the original type and message
├── StepTimeoutError              a step attempt outlived its start-to-close timeout
│   └── HeartbeatTimeoutError     a step attempt stopped heartbeating (its invocation died)
├── CrashedAfterStartError        an at-most-once step's invocation died while it ran
├── ChildRunFailedError           ctx.invoke: the child run ended without a result
├── BatchFailedError              ctx.map / ctx.parallel: more children failed than tolerated
├── CallbackFailedError           the outside system completed a callback with an error
├── CallbackNotFoundError         no pending callback has this token
├── CallbackAlreadyCompletedError the callback was completed (or expired) already
├── TaskFailedError               Client.result on a run that did not complete
├── AnnotationError               a task's or step's annotation cannot validate or decode values
│   └── UnresolvedAnnotationError an annotation names something not defined where the function is
├── InputError                    bad input from a caller; nothing was stored
│   ├── UnknownTaskError          no task registered under that id
│   ├── PayloadValidationError    the payload does not fit the task's annotation
│   ├── IdempotencyConflictError  an idempotency key reused with another payload
│   ├── InvalidForkPointError     fork: a cut inside an operation that has not ended (422)
│   ├── PayloadTooLargeError      over Lambda's 6 MB request limit
│   ├── UnknownBulkActionError    a bulk action that is none of cancel, retry, resume
│   ├── BulkFilterRequiredError   a bulk job with an empty filter and no `all`
│   ├── InvalidTagsError          tags outside their limits (count, length, characters)
│   ├── InvalidMetadataError      metadata outside its limits (keys, value sizes, total)
│   └── QueueFullError            the queue's key has `max_size` runs waiting (429 queue_full)
├── BulkActionUnavailableError    a bulk action no worker serves (yet)
├── BulkJobNotFoundError          no bulk job with that id
├── RunNotFoundError              no run with that id
├── QueueNotFoundError            no task declares a queue of that name
├── RunFinishedError              the run has ended: it takes no more events or cancels
├── RunNotHeldError               resume: the run is not held (409 run_not_held)
├── RepairRefusedError            retry / rerun / fork does not apply to the run as it is (409)
│   ├── RunNotEndedError          retry: the run has not ended (or its end is being followed up)
│   ├── RunCompletedError         retry: the run completed (rerun or fork it instead)
│   ├── RunExpiringError          the run is past its retention, being purged
│   └── ParentWaitsError          retry: a child run whose parent has not ended (retry the parent)
├── ConflictError                 a conditional write lost: another invocation owns the run
├── TableLayoutError              the table has an older layout: run `durable migrate`
└── InfrastructureError           DynamoDB, SQS or S3 failed (throttled, 5xx, timed out, a
                                  transaction conflict) beyond botocore's own retries

The naming rule: every exception ends in `Error`, and the error type a run or step reports
(`error.type` in the API, the CLI and the dashboard) is the name of the exception that
ended it. Failures noticed by the engine rather than raised by code (a task timeout, a lost
step attempt) report the name of the class above that describes them. `WaitTimeout` and
`RunCancelled` are the old names of `WaitTimeoutError` and `RunCancelledError`, kept as
aliases so that code written against them still runs.
"""

from __future__ import annotations

from typing import Any


class DurableError(Exception):
    """Base class of every exception raised by `durable`."""


class NonRetryableError(DurableError):
    """Raise from a step or task to fail at once, whatever the retry policy says."""


class NonDeterminismError(DurableError):
    """A replay asked for a different operation than the log holds at that position."""

    def __init__(
        self,
        run_id: str,
        position: int,
        recorded: str | None,
        requested: str | None,
    ) -> None:
        self.run_id = run_id
        self.position = position
        self.recorded = recorded
        self.requested = requested
        super().__init__(
            f"run {run_id}: at operation #{position} the log holds {recorded or 'nothing'} "
            f"but the code asked for {requested or 'nothing (the task returned)'}; "
            "the task's code changed under a running run"
        )


class WaitTimeoutError(DurableError):
    """`ctx.wait_for_event` or `ctx.wait_for_callback` reached its timeout first."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no event {name!r} arrived before the timeout")


class RunCancelledError(DurableError):
    """The run was cancelled; raised inside the task at its next durable operation."""


class TaskTimeoutError(DurableError):
    """The run exceeded its task `timeout`; the run ends TIMED_OUT with this error type."""


WaitTimeout = WaitTimeoutError  # its old name, kept for code that catches it
RunCancelled = RunCancelledError  # its old name, kept for code that catches it


class StepFailedError(DurableError):
    """A step failed for good (its retry budget is spent or the error was non-retryable).

    Raised into the task at the step's call site, on the first execution and on every replay,
    so that task code sees the same thing both times. `error_type` is the original
    exception's type name.
    """

    def __init__(
        self, step_name: str, error_type: str, message: str, non_retryable: bool = False
    ) -> None:
        self.step_name = step_name
        self.error_type = error_type
        self.message = message
        self.non_retryable = non_retryable
        super().__init__(f"step {step_name!r} failed: {error_type}: {message}")


class StepTimeoutError(DurableError):
    """A step attempt ran longer than its `timeout` (start to close); its result is dropped.

    Also the error type of an attempt whose invocation died before it finished."""

    def __init__(self, step_name: str, timeout: Any, elapsed: Any) -> None:
        self.step_name = step_name
        super().__init__(f"step {step_name!r} took {elapsed}, longer than its timeout {timeout}")


class HeartbeatTimeoutError(StepTimeoutError):
    """The error type of a step attempt that stopped heartbeating within its
    `heartbeat_timeout` (its invocation died or hung)."""


class CrashedAfterStartError(DurableError):
    """The error type of an at-most-once step whose invocation died after it started: the
    side effect may have happened, so it is not run again (final, never retried)."""


class ChildRunFailedError(DurableError):
    """`ctx.invoke`: the child run ended FAILED, CANCELLED or TIMED_OUT."""

    def __init__(self, run_id: str, status: str, error_type: str, message: str) -> None:
        self.run_id = run_id
        self.status = status
        self.error_type = error_type
        self.message = message
        super().__init__(f"child run {run_id} ended {status}: {error_type}: {message}")


class BatchFailedError(DurableError):
    """`ctx.map` / `ctx.parallel`: more children failed than the completion policy tolerates.

    `failures` lists (index, error type, message) of each failed child, in input order.
    """

    def __init__(self, name: str, failures: list[tuple[int, str, str]], total: int) -> None:
        self.name = name
        self.failures = failures
        self.total = total
        self.error_type = "BatchFailedError"
        first = failures[0] if failures else (0, "?", "?")
        self.message = (
            f"{name}: {len(failures)} of {total} children failed "
            f"(first: #{first[0]} {first[1]}: {first[2]})"
        )
        super().__init__(self.message)


class CallbackFailedError(DurableError):
    """The outside system completed the callback with an error instead of data."""

    def __init__(self, name: str, error: Any) -> None:
        self.name = name
        self.error = error
        self.error_type = "CallbackFailedError"
        self.message = f"callback {name!r} failed: {error}"
        super().__init__(self.message)


class CallbackNotFoundError(DurableError):
    """No callback has this token."""

    code = "unknown_callback"


class CallbackAlreadyCompletedError(DurableError):
    """The callback was completed already, or its wait timed out: tokens are single-use."""

    code = "callback_completed"


class TaskFailedError(DurableError):
    """The run ended without a result (failed, cancelled or timed out)."""

    def __init__(self, run_id: str, status: str, error: Any) -> None:
        self.run_id = run_id
        self.status = status
        self.error = error
        super().__init__(f"run {run_id} ended {status}: {error}")


class AnnotationError(DurableError, TypeError):
    """A task's or step's type annotation cannot be used to validate or decode values."""

    def __init__(self, owner: str, what: str, annotation: object, reason: str) -> None:
        self.owner = owner
        self.what = what
        self.annotation = annotation
        super().__init__(f"{owner}: its {what} {_shown(annotation)} {reason}")


class UnresolvedAnnotationError(AnnotationError, NameError):
    """An annotation names something that is not defined where the function is."""

    def __init__(self, owner: str, what: str, annotation: object, name: str) -> None:
        subject = "is" if annotation == name else f"names {name!r}, which is"
        super().__init__(
            owner,
            what,
            annotation,
            f"{subject} not defined where the function is (define or import it before "
            "the function is declared; an import under `if TYPE_CHECKING:` does not exist "
            "at run time)",
        )
        self.name = name


def _shown(annotation: object) -> str:
    if isinstance(annotation, str):
        return repr(annotation)
    if isinstance(annotation, type):
        return annotation.__qualname__
    return repr(annotation)


class InputError(DurableError):
    """Bad input from a caller; nothing was stored."""

    code = "bad_request"


class UnknownTaskError(InputError):
    """No task is registered under this id."""

    code = "unknown_task"

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"no task registered with id {task_id!r}")


class InvalidNameError(InputError, ValueError):
    """An event name (or wait name) outside what names may hold.

    Names are 1 to 128 printable characters without a colon (and no space at either end):
    so no name can reach the engine's own namespaces (`callback:`, `child:`, `batch:`).
    """

    code = "invalid_event_name"


class IdempotencyConflictError(InputError):
    """An idempotency key was reused with a different payload; nothing was started.

    `run_id` names the run the key started first.
    """

    code = "idempotency_conflict"

    def __init__(self, task_id: str, key: str, run_id: str) -> None:
        self.task_id = task_id
        self.key = key
        self.run_id = run_id
        super().__init__(
            f"idempotency key {key!r} of task {task_id!r} already started run {run_id} "
            "with another payload; use a new key for a different payload"
        )


class QueueFullError(InputError):
    """A trigger refused because its queue already has `max_size` runs waiting for a slot
    under its concurrency key; nothing was stored. Try again later."""

    code = "queue_full"

    def __init__(self, queue: str, key: str | None, max_size: int) -> None:
        self.queue = queue
        self.key = key
        self.max_size = max_size
        under = f" under concurrency key {key!r}" if key is not None else ""
        super().__init__(
            f"queue {queue!r} has {max_size} runs waiting{under}, its max_size: "
            "nothing was started; try again later"
        )


class InvalidTagsError(InputError, ValueError):
    """A run's tags outside their limits (`durable.services.labels`); nothing was stored."""

    code = "invalid_tags"


class InvalidMetadataError(InputError, ValueError):
    """A run's metadata outside its limits (`durable.services.labels`); nothing was stored."""

    code = "invalid_metadata"


class PayloadValidationError(InputError):
    """The payload does not fit the task's payload annotation."""

    code = "invalid_payload"

    def __init__(self, task_id: str, details: Any) -> None:
        self.task_id = task_id
        self.details = details
        super().__init__(f"invalid payload for task {task_id!r}: {details}")


class InvalidForkPointError(InputError):
    """Fork: the cut falls inside an operation that has not ended (a step started without
    its end, a child run or a callback waited for, a fan-out), or past the log, or names
    no step. `valid` lists the cut points near it (log entry counts a fork may copy)."""

    code = "invalid_fork_point"

    def __init__(self, run_id: str, message: str, valid: list[int]) -> None:
        self.run_id = run_id
        self.valid = valid
        super().__init__(message)


class PayloadTooLargeError(InputError):
    """A value is over Lambda's 6 MB request limit."""

    code = "payload_too_large"


class UnknownBulkActionError(InputError):
    """A bulk job's action is none of those bulk jobs take."""

    code = "unknown_bulk_action"


class BulkFilterRequiredError(InputError):
    """A bulk job without a filter would act on every run: it needs `all` to say so."""

    code = "bulk_filter_required"

    def __init__(self) -> None:
        super().__init__(
            "the filter is empty: it would act on every run; give a filter, or all=true "
            "to mean every run"
        )


class BulkActionUnavailableError(DurableError):
    """A bulk action this deployment does not serve (yet)."""

    code = "bulk_action_unavailable"

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__(f"the bulk action {action!r} is not available in this deployment")


class BulkJobNotFoundError(DurableError):
    """No bulk job has this id."""

    code = "bulk_job_not_found"

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no bulk job with id {job_id!r}")


class RunNotFoundError(DurableError):
    """No run has this id."""

    code = "run_not_found"

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"no run with id {run_id!r}")


class QueueNotFoundError(DurableError):
    """No task declares a queue of this name (`GET /queues/{name}`)."""

    code = "queue_not_found"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no task declares a queue named {name!r}")


class RunFinishedError(DurableError):
    """The run has already ended; it takes no more events."""

    code = "run_finished"

    def __init__(self, run_id: str, status: str) -> None:
        self.run_id = run_id
        self.status = status
        super().__init__(f"run {run_id} has already ended ({status})")


class RunNotHeldError(DurableError):
    """`resume` of a run that is not held (for a code fix or a code version): nothing to do."""

    code = "run_not_held"

    def __init__(self, run_id: str, doing: str) -> None:
        self.run_id = run_id
        self.doing = doing
        super().__init__(f"run {run_id} is not held: it is {doing}")


class RepairRefusedError(DurableError):
    """A repair (retry, rerun, fork: `durable.services.repair`) that does not apply to the
    run as it is now; nothing was changed. `code` says why."""

    code = "repair_refused"

    def __init__(self, run_id: str, message: str) -> None:
        self.run_id = run_id
        super().__init__(message)


class RunNotEndedError(RepairRefusedError):
    """Retry: the run has not ended (retry applies to FAILED, TIMED_OUT and CANCELLED runs)."""

    code = "run_not_ended"


class RunCompletedError(RepairRefusedError):
    """Retry: the run completed; rerun it (a new run) or fork it instead."""

    code = "run_completed"


class RunExpiringError(RepairRefusedError):
    """The run is past its retention (`expires_at`): it is being purged."""

    code = "run_expiring"


class ParentWaitsError(RepairRefusedError):
    """Retry: a child run (`ctx.invoke`, `ctx.map`, `ctx.parallel`) whose parent has not
    ended: the parent records this child's end. Retry the parent run once it has ended:
    its retried attempt calls the child again, as a new child run."""

    code = "parent_waits"

    def __init__(self, run_id: str, parent_run_id: str, message: str) -> None:
        self.parent_run_id = parent_run_id
        super().__init__(run_id, message)


class ConflictError(DurableError):
    """A conditional write lost: another invocation owns the run or wrote this slot first."""


class TableLayoutError(DurableError):
    """The table was made by an older version of durable (its indexes are not the ones this
    version queries): `durable migrate` brings it to the current layout."""

    def __init__(self, table_name: str, detail: str) -> None:
        self.table_name = table_name
        super().__init__(
            f"table {table_name!r} has an older layout ({detail}): "
            f"run `durable migrate --table {table_name}` to bring it to the current one"
        )


class InfrastructureError(DurableError):
    """A call to DynamoDB, SQS or S3 failed after botocore's own retries.

    Never a failure of the task's code: it consumes no attempt. Inside an attempt it
    unwinds past task code (which cannot catch it), the invocation ends with it, and SQS
    delivers the wake-up again. Callers of `Client` may simply retry the call.
    """
