"""Durable execution for AWS Lambda: checkpointed steps on DynamoDB, wake-ups through SQS.

What users write and catch, all from here: `@task` and `@step`, the contexts a task gets,
`RetryPolicy`, the `Client` that starts and reads runs, and every exception the library
raises into user code or at a caller (internal ones, such as a lost conditional write,
stay in `durable.errors`).
"""

from durable.client import Client, HistoryEntry, RunInfoView, RunList
from durable.context import AsyncContext, BaseContext, Context
from durable.engine.retry import RetryPolicy
from durable.errors import (
    AnnotationError,
    BatchFailedError,
    CallbackAlreadyCompletedError,
    CallbackFailedError,
    CallbackNotFoundError,
    ChildRunFailedError,
    CrashedAfterStartError,
    DurableError,
    HeartbeatTimeoutError,
    IdempotencyConflictError,
    InfrastructureError,
    InputError,
    InvalidNameError,
    NonDeterminismError,
    NonRetryableError,
    PayloadTooLargeError,
    PayloadValidationError,
    QueueFullError,
    RunCancelled,
    RunCancelledError,
    RunFinishedError,
    RunNotFoundError,
    RunNotHeldError,
    StepFailedError,
    StepTimeoutError,
    TableLayoutError,
    TaskFailedError,
    TaskTimeoutError,
    UnknownTaskError,
    UnresolvedAnnotationError,
    WaitTimeout,
    WaitTimeoutError,
)
from durable.flow import Queue, RateLimit
from durable.operations.attempt import RunInfo
from durable.operations.step_decorator import step
from durable.records import RunStatus
from durable.services.runs import RunHandle
from durable.task import TaskDefinition, TaskRegistry, default_registry, task

__all__ = [
    "AnnotationError",
    "AsyncContext",
    "BaseContext",
    "BatchFailedError",
    "CallbackAlreadyCompletedError",
    "CallbackFailedError",
    "CallbackNotFoundError",
    "ChildRunFailedError",
    "Client",
    "Context",
    "CrashedAfterStartError",
    "DurableError",
    "HeartbeatTimeoutError",
    "HistoryEntry",
    "IdempotencyConflictError",
    "InfrastructureError",
    "InputError",
    "InvalidNameError",
    "NonDeterminismError",
    "NonRetryableError",
    "PayloadTooLargeError",
    "PayloadValidationError",
    "Queue",
    "QueueFullError",
    "RateLimit",
    "RetryPolicy",
    "RunCancelled",
    "RunCancelledError",
    "RunFinishedError",
    "RunHandle",
    "RunInfo",
    "RunInfoView",
    "RunList",
    "RunNotFoundError",
    "RunNotHeldError",
    "RunStatus",
    "StepFailedError",
    "StepTimeoutError",
    "TableLayoutError",
    "TaskDefinition",
    "TaskFailedError",
    "TaskRegistry",
    "TaskTimeoutError",
    "UnknownTaskError",
    "UnresolvedAnnotationError",
    "WaitTimeout",
    "WaitTimeoutError",
    "default_registry",
    "step",
    "task",
]
