"""Patches 5 (its SQS half), 11 and 13: SQS without passes over a queue per message.

5. Per-request constants computed once (the server's half is in `server`): an SQS queue's
   retention period, which moto reads per received message through
   `get_queue_attributes`, computing every attribute of the queue,
   `ApproximateNumberOfMessages` included (a pass over the queue).

11. SQS reads the clock cheaply. moto's SQS asks `unix_time()` (or `unix_time_millis()`)
    for every message it looks at, several times per message per receive (is it visible?
    delayed? retained?), and each call builds two datetimes and subtracts them. Called
    without an argument it is the wall clock in seconds since the epoch, which
    `time.time()` reads directly; with one, moto's function still answers.

13. A send to a standard queue does not compute every attribute of the queue. moto's
    `send_message` reads `queue.attributes["ContentBasedDeduplication"]`, and building
    `queue.attributes` counts the queue's messages (a pass over every message: a send
    cost that grows with the backlog). That attribute exists on FIFO queues only; while a
    standard queue's send runs, its `attributes` answers without it (an empty map), which
    is what the lookup saw. FIFO queues, and every other reader of `attributes`
    (`GetQueueAttributes`), get moto's full map.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from durable.local.moto_patches.originals import original, patch

_sending = threading.local()


def install() -> None:
    from moto.sqs import models as sqs_models
    from moto.sqs.models import Queue, SQSBackend

    patch(SQSBackend, "is_message_valid_based_on_retention_period", _retained)
    patch(sqs_models, "unix_time", _unix_time)
    patch(sqs_models, "unix_time_millis", _unix_time_millis)
    patch(SQSBackend, "send_message", _send_message)
    patch(Queue, "attributes", property(_queue_attributes))


def _retained(self: Any, queue_name: str, message: Any) -> bool:
    """moto's retention check, reading the one attribute it needs."""
    from moto.core.utils import unix_time

    queue = self.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
    return bool(retain_until > unix_time())


# -- 11. SQS's clock ---------------------------------------------------------------------


def _unix_time(dt: Any = None) -> float:
    """moto's `unix_time`: seconds since the epoch, now unless `dt` is given."""
    from moto.core.utils import unix_time

    return time.time() if dt is None else unix_time(dt)


def _unix_time_millis(dt: Any = None) -> float:
    return _unix_time(dt) * 1000.0


# -- 13. a send to a standard queue without every queue attribute ------------------------


def _send_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
    from moto.sqs.models import SQSBackend

    _sending.queue = self.get_queue(queue_name)
    try:
        return original(SQSBackend, "send_message")(self, queue_name, *args, **kwargs)
    finally:
        _sending.queue = None


def _queue_attributes(self: Any) -> dict[str, Any]:
    from moto.sqs.models import Queue

    if not self.fifo_queue and getattr(_sending, "queue", None) is self:
        return {}
    attributes: dict[str, Any] = original(Queue, "attributes").fget(self)
    return attributes
