"""Lambda entry point of the scheduled sweeper (EventBridge): re-enqueue overdue runs, and
send the workers a purge message per expiry shard with runs past retention."""

from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from durable.bootstrap import get_runtime
from durable.logs import library_logger

logger = library_logger()
metrics = Metrics(namespace="durable", service="durable")
tracer = Tracer(service="durable")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sent = get_runtime().sweep(metrics)
    logger.info("sweep done", runs_enqueued=sent)
    return {"runs_enqueued": sent}
