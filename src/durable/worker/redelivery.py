"""How soon SQS delivers a failed wake-up again: a backoff instead of the visibility timeout.

The worker's queue keeps a message hidden for its visibility timeout (ten times the worker's
timeout in the template, as AWS advises for an event source mapping: 2.5 hours with the
default 15 minutes). A record that failed for an infrastructure error would wait that long.
`WakeUpBatchProcessor` is Powertools' SQS batch processor with one addition: each record it
reports failed is made visible again after a backoff by its receive count (10 s, 20 s,
40 s... up to 15 minutes), with `ChangeMessageVisibility`. Best effort: if that call fails
too, the message comes back after the visibility timeout, and the sweeper re-enqueues the
run sooner anyway (a failed invocation gives its lease back and leaves the run due).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from durable.queues.base import WakeQueue

FIRST_RETRY = timedelta(seconds=10)
LAST_RETRY = timedelta(minutes=15)


def retry_delay(receive_count: int) -> timedelta:
    """How long a record that failed on its `receive_count`-th delivery stays hidden."""
    doublings = min(max(receive_count, 1) - 1, 10)
    delay: timedelta = FIRST_RETRY * 2**doublings
    return min(delay, LAST_RETRY)


class WakeUpBatchProcessor(BatchProcessor):
    """Powertools' SQS partial-batch processor; failed records come back after a backoff.

    `queue` returns the runtime's wake-up queue when a record fails (the runtime is built
    on the first invocation, after this processor).
    """

    def __init__(self, queue: Callable[[], WakeQueue]) -> None:
        super().__init__(event_type=EventType.SQS)
        self._queue = queue

    def failure_handler(self, record: Any, exception: Any) -> Any:
        entry = super().failure_handler(record, exception)
        redeliver = getattr(self._queue(), "redeliver_after", None)
        if redeliver is not None and record is not None:
            count = int(record.attributes.approximate_receive_count or 1)
            with contextlib.suppress(Exception):
                redeliver(record.receipt_handle, retry_delay(count))
        return entry
