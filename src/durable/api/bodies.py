"""How the HTTP API reads request bodies: JSON objects in UTF-8, nothing else.

Powertools' request validation reads the body; `JsonBodyValidation` narrows what it accepts,
and `parse_json_body` (the resolver's `json_body_deserializer`) parses it. The rules, each
checked before the body reaches a route, so a refused body stores nothing:

    Content-Type absent, application/json or */*+json   parsed as JSON
    any other Content-Type (forms and multipart too)     415, never parsed
    over 6 MB in UTF-8                                   413, never parsed
    not UTF-8, not JSON, NaN / Infinity, a number that
    overflows a float or has over 4,300 digits, a
    lone surrogate (\\ud800), nested over 128 levels      400 malformed_json
    an array, `null` or any other non-object             400 invalid_request

Why these limits: what is stored must come back out. JSON has no NaN or Infinity (our own
serializer refuses them), Python will not read back a 5,000-digit integer, DynamoDB and S3
take only valid UTF-8, and pydantic will not serialize a response nested ~250 levels deep:
128 levels for the request leaves room for the envelopes that views wrap around a payload.
"""

from __future__ import annotations

import binascii
import json
import math
from typing import TYPE_CHECKING, Any, NoReturn

from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from durable.api.errors import RequestError
from durable.errors import PayloadTooLargeError
from durable.serialization import JsonData
from durable.values import REQUEST_LIMIT

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.types import EventHandlerInstance

MAX_BODY_DEPTH = 128


class JsonBodyValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, reading JSON bodies only.

    Powertools also parses form-encoded and multipart bodies into fields; an API whose
    bodies are JSON documents must refuse them (415) instead of taking `payload=1` as
    `{"payload": ["1"]}`.
    """

    def _get_body(self, app: EventHandlerInstance) -> dict[str, Any]:
        header = app.current_event.headers.get("content-type") or ""
        media_type = header.split(";", 1)[0].strip().lower()
        if media_type and media_type != "application/json" and not media_type.endswith("+json"):
            raise RequestUnsupportedContentType(
                "Unsupported content type",
                errors=[{"type": "unsupported_content_type", "loc": ("body",), "msg": header}],
            )
        try:
            app.current_event.decoded_body  # noqa: B018 - decodes base64 and UTF-8, once
        except (UnicodeDecodeError, binascii.Error):
            raise RequestError(
                "malformed_json", "the request body is not UTF-8 text (send JSON in UTF-8)"
            ) from None
        body: dict[str, Any] = self._parse_json_data(app)
        return body


def parse_json_body(text: str) -> JsonData:
    """The JSON value of a request body, or the API's error for one it refuses.

    Syntax errors (`json.JSONDecodeError`) are left to the resolver, which reports them as
    a validation error of type `json_invalid`; everything else raises the API's own error.
    """
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _malformed("it holds a lone surrogate, which is not Unicode text") from None
    if size > REQUEST_LIMIT:
        raise PayloadTooLargeError(
            f"the request body is over {REQUEST_LIMIT:,} bytes (Lambda's request limit)"
        )
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError:
        raise
    except _NotJson as exc:
        raise _malformed(str(exc)) from None
    except ValueError:
        # The only other ValueError json raises: an integer over Python's 4,300-digit limit.
        raise _malformed("a number has too many digits") from None
    except RecursionError:
        raise _too_deep() from None
    if not isinstance(value, dict):
        # Checked here, not left to the resolver: it would take a list's first element.
        kind = _JSON_TYPES.get(type(value), "value")
        raise RequestValidationError(
            [{"type": "model_type", "loc": ("body",), "msg": f"send a JSON object, not {kind}"}]
        )
    _check_storable(value)
    return value


_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


class _NotJson(ValueError):
    """A token Python's json reads but JSON does not have."""


def _no_constant(name: str) -> NoReturn:
    raise _NotJson(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotJson(f"the number {text[:20]} is out of range")
    return number


def _malformed(reason: str) -> RequestError:
    return RequestError("malformed_json", f"the request body is not valid JSON: {reason}")


def _too_deep() -> RequestError:
    return RequestError(
        "malformed_json", f"the request body nests arrays and objects over {MAX_BODY_DEPTH} deep"
    )


def _check_storable(value: Any) -> None:
    """Refuse a value nested over MAX_BODY_DEPTH levels or with a string that is not text.

    Iterative, so that the check itself cannot run out of stack.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_BODY_DEPTH:
            raise _too_deep()
        items = [*node, *node.values()] if isinstance(node, dict) else node
        if not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, str):
                if not item.isascii():
                    _check_text(item)
            elif isinstance(item, dict | list):
                stack.append((item, depth + 1))


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # "\\ud800" is valid JSON syntax, but not Unicode text: no store could keep it.
        raise _malformed("a string holds a lone surrogate, which is not Unicode text") from None
