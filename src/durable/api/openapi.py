"""What the route modules share in the OpenAPI document: the run id path parameter and a
route's response entries (its success body, and the errors it can answer, each an
`ErrorResponse` with `{"error": {"code", "message"}}`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from durable.api.models import ErrorResponse

# Run ids are ours (`run_` + 32 hex digits, plus `.attempt.position.index` per level of
# fan-out): a longer one names no run, and would be over DynamoDB's 2,048-byte key limit.
MAX_ID_LENGTH = 512

RunId = Annotated[str, Path(max_length=MAX_ID_LENGTH, description="the run's id")]


def route_responses(
    status: int, model: type[BaseModel], description: str, errors: Mapping[int, str]
) -> dict[int, OpenAPIResponse]:
    """A route's OpenAPI responses: `status` with `model`, and each error status of
    `errors` (status -> when it is answered) with the error body."""
    json_type = content_types.APPLICATION_JSON
    responses: dict[int, OpenAPIResponse] = {
        status: {"description": description, "content": {json_type: {"model": model}}}
    }
    for error, when in errors.items():
        responses[error] = {
            "description": when,
            "content": {json_type: {"model": ErrorResponse}},
        }
    return responses
