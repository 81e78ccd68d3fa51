"""Patch 10: DynamoDB answers serialized without moto's generic serializer.

10. moto writes each answer by walking the operation's output shape and, for every member
    of every structure (every attribute value of every item), trying half a dozen
    spellings of its name: about a fifth of a request's time. For the item operations
    (`GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`, `Query`, `Scan`, the batch and
    transaction calls), the answer is walked along the same shape here, reading each
    member by its own name. Whenever the answer holds anything this walk is not sure to
    write as moto would (a member under another spelling, a blob, a timestamp, a response
    transformer, an error), moto's serializer writes it, as before. The JSON is the same
    as moto's (the unit tests compare the two, item types of every kind included).
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

from durable.local.moto_patches.originals import patch_attribute


def install() -> None:
    from moto.dynamodb.responses import DynamoHandler

    patch_attribute(DynamoHandler, "serialized", _serialized_dynamodb)


# The operations whose answers are items and counts: what the run store calls all day.
_FAST_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)


class _Unsure(Exception):
    """The answer holds something only moto's serializer is sure to write as moto does."""


def _serialized_dynamodb(self: Any, action_result: Any) -> Any:
    """`BaseResponse.serialized` for DynamoDB: item answers walked here (patch 10)."""
    from moto.core.responses import BaseResponse

    fallback = BaseResponse.serialized
    result = action_result.result
    if (
        isinstance(result, dict)
        and not self.RESPONSE_KEY_PATH_TO_TRANSFORMER
        and type(action_result).execute_result is _dynamodb_execute_result()
    ):
        operation = self._get_action()
        if operation in _FAST_OPERATIONS:
            shape = _output_shape(operation)
            try:
                body = json.dumps(_walk(result, shape))
            except _Unsure:
                return fallback(self, action_result)
            headers = {"Content-Type": "application/x-amz-json-1.0"}
            headers.update(self.response_headers)
            return 200, headers, body
    return fallback(self, action_result)


@functools.cache
def _dynamodb_execute_result() -> Any:
    from moto.core.responses import ActionResult

    return ActionResult.execute_result


@functools.cache
def _output_shape(operation: str) -> Any:
    from moto.core.utils import get_service_model

    return get_service_model("dynamodb").operation_model(operation).output_shape


def _walk(value: Any, shape: Any) -> Any:
    """`value` as moto's JSON serializer writes it along `shape`, or `_Unsure`."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict) or shape.is_document_type:
            raise _Unsure
        members = shape.members
        out = {}
        for name, member in value.items():
            member_shape = members.get(name)
            if member_shape is None or member_shape.serialization.get("name", name) != name:
                raise _Unsure  # moto would drop it, or spell it otherwise
            if member is not None:
                out[name] = _walk(member, member_shape)
        return out
    if kind == "map":
        if not isinstance(value, dict):
            raise _Unsure
        of = shape.value
        return {key: _walk(item, of) for key, item in value.items()}
    if kind == "list":
        if not isinstance(value, list):
            raise _Unsure
        of = shape.member
        return [_list_member(item, of) for item in value]
    if kind == "string":
        if not isinstance(value, str):
            raise _Unsure
        return value
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _Unsure
        return value
    if kind == "blob":
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, bytes):
            raise _Unsure
        return base64.b64encode(value).strip().decode("utf-8")
    raise _Unsure  # timestamps and anything else


def _list_member(item: Any, shape: Any) -> Any:
    if item is None:
        raise _Unsure
    return _walk(item, shape)
