"""Lambda entry point of the HTTP API (API Gateway HTTP API, payload format 2.0)."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from durable.api import handle
from durable.bootstrap import get_runtime
from durable.logs import library_logger

logger = library_logger()


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context, get_runtime().client)
