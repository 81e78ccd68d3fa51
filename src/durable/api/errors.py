"""How the HTTP API reports errors: one body shape, one status per error code.

Every error body is `{"error": {"code", "message", "details"?}}`. The rule for statuses:

    400 malformed_json          the body is not JSON
    400 invalid_request         the request's envelope is wrong: body not an object, unknown
                                or mistyped fields, bad path or query values (limit outside
                                1..1000, unknown status, ...); `details` lists each problem
    400 bad_request             any other caller error the library refuses (a bad cursor)
    404 unknown_task            no task registered under that id
    404 run_not_found           no run with that id
    404 unknown_callback        no callback with that token
    404 not_found               no such route
    409 run_finished            the run has ended: it takes no more events or cancels
    409 callback_completed      the callback was completed before, or its wait timed out
    413 payload_too_large       the body (or a value in it) is over Lambda's 6 MB limit
    415 unsupported_media_type  the body is not JSON by its Content-Type
    422 invalid_payload         the envelope is fine but the payload does not fit the task;
                                `details` holds pydantic's errors
    500 internal_error          anything unexpected (logged; details stay in the logs)

So: 400 when the request itself is malformed, 422 only when a well-formed request carries a
payload the task's annotation refuses. All of these are raised before anything is stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from durable.api.models import ErrorDetail, ErrorResponse
from durable.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    InputError,
    PayloadTooLargeError,
    PayloadValidationError,
    RunFinishedError,
    RunNotFoundError,
    UnknownTaskError,
)
from durable.logs import library_logger
from durable.values import REQUEST_LIMIT

# Statuses of the library's own errors, most specific first (looked up along the MRO).
_STATUS: dict[type[Exception], HTTPStatus] = {
    UnknownTaskError: HTTPStatus.NOT_FOUND,
    PayloadValidationError: HTTPStatus.UNPROCESSABLE_ENTITY,
    PayloadTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    InputError: HTTPStatus.BAD_REQUEST,
    RunNotFoundError: HTTPStatus.NOT_FOUND,
    RunFinishedError: HTTPStatus.CONFLICT,
    CallbackNotFoundError: HTTPStatus.NOT_FOUND,
    CallbackAlreadyCompletedError: HTTPStatus.CONFLICT,
}


def error_response(
    status: HTTPStatus | int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
) -> Response[str]:
    """A JSON error response in the API's one shape."""
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, details=details))
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json(exclude_none=True),
    )


def parse_json_body(text: str) -> Any:
    """Parse a request body, refusing one over the request limit before reading it.

    The resolver calls this (as its `json_body_deserializer`) before validating the body,
    so an oversized request is never parsed. `json.JSONDecodeError` is left to the
    resolver, which reports it as a validation error of type `json_invalid`.
    """
    # A character is at most 4 bytes in UTF-8: only measure bytes near the limit.
    if len(text) > REQUEST_LIMIT or (
        len(text) * 4 > REQUEST_LIMIT and len(text.encode("utf-8")) > REQUEST_LIMIT
    ):
        raise PayloadTooLargeError(
            f"the request body is over {REQUEST_LIMIT:,} bytes (Lambda's request limit)"
        )
    return json.loads(text)


def _details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """pydantic-style errors without their `input` (which may be a whole payload)."""
    details = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        entry: dict[str, Any] = {"loc": [str(part) for part in error.get("loc", ())]}
        for key in ("type", "msg"):
            if key in error:
                entry[key] = str(error[key])
        details.append(entry)
    return details


def _describe(detail: dict[str, Any], root: str | None = None) -> str:
    """`body.payload: Field required`: where the problem is, then what it is."""
    parts = [root, *detail.get("loc", [])] if root else detail.get("loc", [])
    where = ".".join(parts) or "request"
    return f"{where}: {detail.get('msg', detail.get('type', 'invalid'))}"


def _invalid_request(exc: RequestValidationError) -> Response[str]:
    errors = list(exc.errors())
    for error in errors:
        if isinstance(error, dict) and error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "invalid JSON")
            return error_response(
                HTTPStatus.BAD_REQUEST,
                "malformed_json",
                f"the request body is not valid JSON: {reason}",
            )
    details = _details(errors)
    message = "; ".join(_describe(detail) for detail in details[:3]) or "invalid request"
    return error_response(HTTPStatus.BAD_REQUEST, "invalid_request", message, details)


def _unsupported_media_type(exc: RequestUnsupportedContentType) -> Response[str]:
    return error_response(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON (Content-Type: application/json)",
    )


def _invalid_payload(exc: PayloadValidationError) -> Response[str]:
    details = _details(exc.details) if isinstance(exc.details, list) else []
    problems = "; ".join(_describe(detail, "payload") for detail in details[:3])
    message = f"the payload does not fit task {exc.task_id!r}: {problems or exc}"
    return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, exc.code, message, details or None)


def _library_error(exc: Exception) -> Response[str]:
    status = next(
        (_STATUS[cls] for cls in type(exc).__mro__ if cls in _STATUS), HTTPStatus.BAD_REQUEST
    )
    return error_response(status, getattr(exc, "code", "bad_request"), str(exc))


def _internal_error(exc: Exception) -> Response[str]:
    library_logger().exception("the HTTP API failed", error_type=type(exc).__name__)
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "internal_error",
        "internal error; the details are in the logs",
    )


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    """Map every exception a route can raise to the API's error shape.

    The resolver looks handlers up along the exception's MRO, so the most specific wins
    and `Exception` only catches what nothing else does.
    """

    def not_found(exc: NotFoundError) -> Response[str]:
        event = app.current_event
        message = f"no route for {event.http_method} {event.path}"
        return error_response(HTTPStatus.NOT_FOUND, "not_found", message)

    app.exception_handler(RequestValidationError)(_invalid_request)
    app.exception_handler(RequestUnsupportedContentType)(_unsupported_media_type)
    app.exception_handler(PayloadValidationError)(_invalid_payload)
    app.exception_handler(
        [
            InputError,
            RunNotFoundError,
            RunFinishedError,
            CallbackNotFoundError,
            CallbackAlreadyCompletedError,
        ]
    )(_library_error)
    app.exception_handler(NotFoundError)(not_found)
    app.exception_handler(Exception)(_internal_error)
