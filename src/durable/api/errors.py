"""How the HTTP API reports errors: one body shape, one status per error code.

Every error body is `{"error": {"code", "message", "details"?}}`. The rule for statuses:

    400 malformed_json          the body is not JSON this API reads: not JSON, not UTF-8,
                                NaN or Infinity, a number out of range, a lone surrogate,
                                nested over 128 levels (see `durable.api.bodies`)
    400 invalid_request         the request's envelope is wrong: body not an object, unknown
                                or mistyped fields, bad path or query values (limit outside
                                1..1000, unknown status, empty task_id, ...); `details` lists
                                each problem
    400 invalid_event_name      an event name outside 1-128 letters, digits and `-_.`
    400 invalid_cursor          a cursor that is not the `next_cursor` of a listing
    400 invalid_tags            tags outside their limits (at most 10, 1-64 of `A-Za-z0-9_.:/=@+-`)
    400 invalid_metadata        metadata outside its limits (16 keys, 512-character values)
    400 bad_request             any other caller error the library refuses
    404 unknown_task            no task registered under that id
    404 run_not_found           no run with that id
    404 unknown_callback        no callback with that token
    404 bulk_job_not_found      no bulk job with that id
    404 queue_not_found         no task declares a queue of that name
    404 not_found               no such route
    405 method_not_allowed      the route exists, not with this method (`Allow` lists them)
    409 run_finished            the run has ended: it takes no more events or cancels
    409 run_not_held            resume of a run that is not held
    409 callback_completed      the callback was completed before, or its wait timed out
    409 idempotency_conflict    the idempotency key started a run with another payload
    409 run_not_ended, run_completed, run_expiring, parent_waits
                                retry / rerun / fork does not apply to the run as it is
    413 payload_too_large       the body (or a value in it) is over Lambda's 6 MB limit
    415 unsupported_media_type  the body is not JSON by its Content-Type (forms included)
    422 invalid_payload         the envelope is fine but the payload does not fit the task;
                                `details` holds pydantic's errors
    422 invalid_fork_point      a fork's cut inside an operation that has not ended;
                                `details` lists the valid cut points near it
    422 unknown_bulk_action     a bulk job's action is none of cancel, retry, resume
    422 bulk_action_unavailable a bulk action this deployment does not serve yet
    422 bulk_filter_required    a bulk job's filter is empty and `all` is not true
    429 queue_full              the queue has `max_size` runs waiting under the trigger's
                                concurrency key (`Queue.max_size`); try again later
    500 internal_error          anything unexpected (logged; details stay in the logs)
    503 service_unavailable     DynamoDB, SQS or S3 failed past botocore's retries (throttled,
                                their own 5xx): not the caller's fault; `Retry-After` says when

So: 400 when the request itself is malformed, 422 only when a well-formed request carries a
payload the task's annotation refuses. All of these are raised before anything is stored,
and no message carries a backend's own words or a traceback.
"""

from __future__ import annotations

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
    BulkActionUnavailableError,
    BulkFilterRequiredError,
    BulkJobNotFoundError,
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    IdempotencyConflictError,
    InfrastructureError,
    InputError,
    InvalidForkPointError,
    PayloadTooLargeError,
    PayloadValidationError,
    QueueFullError,
    QueueNotFoundError,
    RepairRefusedError,
    RunFinishedError,
    RunNotFoundError,
    RunNotHeldError,
    UnknownBulkActionError,
    UnknownTaskError,
)
from durable.logs import library_logger

# Statuses of the library's own errors, most specific first (looked up along the MRO).
_STATUS: dict[type[Exception], HTTPStatus] = {
    UnknownTaskError: HTTPStatus.NOT_FOUND,
    IdempotencyConflictError: HTTPStatus.CONFLICT,
    QueueFullError: HTTPStatus.TOO_MANY_REQUESTS,
    QueueNotFoundError: HTTPStatus.NOT_FOUND,
    PayloadValidationError: HTTPStatus.UNPROCESSABLE_ENTITY,
    PayloadTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    InputError: HTTPStatus.BAD_REQUEST,
    RunNotFoundError: HTTPStatus.NOT_FOUND,
    RunFinishedError: HTTPStatus.CONFLICT,
    RunNotHeldError: HTTPStatus.CONFLICT,
    CallbackNotFoundError: HTTPStatus.NOT_FOUND,
    CallbackAlreadyCompletedError: HTTPStatus.CONFLICT,
    RepairRefusedError: HTTPStatus.CONFLICT,
    UnknownBulkActionError: HTTPStatus.UNPROCESSABLE_ENTITY,
    BulkFilterRequiredError: HTTPStatus.UNPROCESSABLE_ENTITY,
    BulkActionUnavailableError: HTTPStatus.UNPROCESSABLE_ENTITY,
    BulkJobNotFoundError: HTTPStatus.NOT_FOUND,
}


class RequestError(InputError):
    """A request the API refuses itself, before the client is asked: 400 with `code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def error_response(
    status: HTTPStatus | int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[str]:
    """A JSON error response in the API's one shape."""
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, details=details))
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json(exclude_none=True),
        headers=headers,
    )


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


def _invalid_fork_point(exc: InvalidForkPointError) -> Response[str]:
    details = [{"loc": ["body", "from_step"], "valid_from_steps": exc.valid}]
    return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, exc.code, str(exc), details)


def _library_error(exc: Exception) -> Response[str]:
    status = next(
        (_STATUS[cls] for cls in type(exc).__mro__ if cls in _STATUS), HTTPStatus.BAD_REQUEST
    )
    return error_response(status, getattr(exc, "code", "bad_request"), str(exc))


def _unavailable(exc: InfrastructureError) -> Response[str]:
    # Whatever the backend said stays in the logs: it names tables, queues and requests.
    library_logger().warning("a backend failed the HTTP API", error=str(exc))
    return error_response(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "service_unavailable",
        "a backend (DynamoDB, SQS or S3) failed; nothing was changed, try again",
        headers={"Retry-After": "1"},
    )


def _internal_error(exc: Exception) -> Response[str]:
    library_logger().exception("the HTTP API failed", error_type=type(exc).__name__)
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "internal_error",
        "internal error; the details are in the logs",
    )


def allowed_methods(app: APIGatewayHttpResolver, path: str) -> list[str]:
    """The methods of the routes whose rule matches `path`, by the resolver's own matching.

    Powertools keeps its routes in private lists and has no public way to list them; reading
    them here keeps 404 and 405 decided by the very rules that route requests.
    """
    routes = app._static_routes + app._dynamic_routes
    return sorted({route.method.upper() for route in routes if route.rule.match(path)})


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    """Map every exception a route can raise to the API's error shape.

    The resolver looks handlers up along the exception's MRO, so the most specific wins
    and `Exception` only catches what nothing else does.
    """

    def not_found(exc: NotFoundError) -> Response[str]:
        event = app.current_event
        method, path = event.http_method.upper(), event.path
        allowed = allowed_methods(app, path)
        if allowed:
            return error_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{method} is not allowed on {path}; use {' or '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )
        return error_response(HTTPStatus.NOT_FOUND, "not_found", f"no route for {method} {path}")

    app.exception_handler(RequestValidationError)(_invalid_request)
    app.exception_handler(RequestUnsupportedContentType)(_unsupported_media_type)
    app.exception_handler(PayloadValidationError)(_invalid_payload)
    app.exception_handler(InvalidForkPointError)(_invalid_fork_point)
    app.exception_handler(
        [
            InputError,
            RunNotFoundError,
            RunFinishedError,
            RunNotHeldError,
            CallbackNotFoundError,
            CallbackAlreadyCompletedError,
            RepairRefusedError,
            BulkActionUnavailableError,
            BulkJobNotFoundError,
            QueueNotFoundError,
        ]
    )(_library_error)
    app.exception_handler(NotFoundError)(not_found)
    app.exception_handler(InfrastructureError)(_unavailable)
    app.exception_handler(Exception)(_internal_error)
