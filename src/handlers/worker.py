"""Lambda entry point of the wake-up queue: each SQS record is one wake-up for the worker
(or a purge message for one expiry shard, `durable.services.purge`)."""

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities import batch
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from durable.bootstrap import get_runtime, time_left_of
from durable.logs import library_logger
from durable.worker.redelivery import WakeUpBatchProcessor

logger = library_logger()
metrics = Metrics(namespace="durable", service="durable")
tracer = Tracer(service="durable")
# Powertools' SQS batch processor; a failed record comes back after a backoff.
processor = WakeUpBatchProcessor(lambda: get_runtime().queue)


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> str:
    time_left = time_left_of(lambda_context)
    return get_runtime().process_wake_up(record.body, time_left, metrics, tracer)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Partial batch response: only the records reported failed come back from SQS.
    return dict(batch.process_partial_response(event, record_handler, processor, context))
