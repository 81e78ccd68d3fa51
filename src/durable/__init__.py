"""Durable execution for AWS Lambda: checkpointed steps on DynamoDB, wake-ups through SQS."""

from durable.client import Client, HistoryEntry, RunInfoView, RunList
from durable.context import Context, RunInfo
from durable.engine.retry import RetryPolicy
from durable.errors import (
    AnnotationError,
    ConflictError,
    DurableError,
    IdempotencyConflictError,
    InfrastructureError,
    InputError,
    InvalidNameError,
    NonDeterminismError,
    NonRetryableError,
    PayloadTooLargeError,
    PayloadValidationError,
    RunCancelled,
    RunFinishedError,
    RunNotFoundError,
    StepFailedError,
    TableLayoutError,
    TaskFailedError,
    UnknownTaskError,
    UnresolvedAnnotationError,
    WaitTimeout,
)
from durable.records import RunStatus
from durable.runs import RunHandle
from durable.task import TaskDefinition, TaskRegistry, default_registry, step, task

__all__ = [
    "AnnotationError",
    "Client",
    "ConflictError",
    "Context",
    "DurableError",
    "HistoryEntry",
    "IdempotencyConflictError",
    "InfrastructureError",
    "InputError",
    "InvalidNameError",
    "NonDeterminismError",
    "NonRetryableError",
    "PayloadTooLargeError",
    "PayloadValidationError",
    "RetryPolicy",
    "RunCancelled",
    "RunFinishedError",
    "RunHandle",
    "RunInfo",
    "RunInfoView",
    "RunList",
    "RunNotFoundError",
    "RunStatus",
    "StepFailedError",
    "TableLayoutError",
    "TaskDefinition",
    "TaskFailedError",
    "TaskRegistry",
    "UnknownTaskError",
    "UnresolvedAnnotationError",
    "WaitTimeout",
    "default_registry",
    "step",
    "task",
]
