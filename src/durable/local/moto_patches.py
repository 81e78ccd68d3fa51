"""Targeted patches of moto for the `durable dev` stack's moto server: `apply()` once, early.

Checked against moto 5.2.5 (`moto/dynamodb/models/__init__.py`, `models/table.py`,
`responses.py`, `moto_server/werkzeug_app.py`). Each patch keeps moto's observable
behaviour for the calls the project makes and removes a cost that grows with the table, so
a trigger costs the same on an empty table and on a full one. `apply()` refuses (and patches
nothing) when the moto installed is not the version they were checked against: a new
moto must be re-read first. `revert()` undoes them (tests).

1. One DynamoDB request at a time (`DynamoHandler.call_action` under a lock). The server
   is threaded; without it, a transaction's writes interleave with other requests, which
   then see half a transaction, and moto's own rollback (below) would put back a copy of
   the table taken before the transaction, erasing every write other threads made in the
   meantime. moto's work is pure Python under the GIL, so the lock costs no parallelism.
   With it, a transaction is all-or-nothing *and* isolated, as DynamoDB's are.

2. `TransactWriteItems` without the whole-table copies. moto deep-copies every table a
   transaction names before it starts, to restore on failure: O(table) per transaction,
   and the run store's `create_run` with an idempotency key is a transaction. Here the
   backup is per item: before each action, a deep copy of the one item it targets (or
   "absent"); on failure those items, and only those, are put back. The conditions, the
   order of checks, the errors (`TransactionCanceledException` with one reason per action,
   validation errors re-raised) are moto's, copied from its method. Not restored: stream
   records of the rolled-back writes (moto's rollback dropped those too, by restoring the
   whole table object; the dev stack's table has no stream).

3. A base-table `Query` reads one partition. moto collects and sorts every item of the
   table (`Table.all_items`) and then keeps those with the queried hash key: O(table log
   table) for every history load and inbox read. While a base-table query with a hash key
   runs, `Table.all_items` answers with that partition's items only, sorted as before;
   moto then filters them exactly as it did. An index query still looks at every item (a
   GSI has no partitions in moto), but without the first sort: moto sorts the matching
   items again by the index's keys and the primary key, which leaves no ties, so the
   order of its input cannot show. The indexes are sharded (`durable.storage._tables`):
   a listing or a sweep makes one index query per shard, each a pass over the table,
   which is why `durable dev` creates its table with few shards (`DEV_INDEX_SHARDS`).

4. No Nagle delay on the server's sockets (`WSGIRequestHandler.disable_nagle_algorithm`).
   werkzeug writes a response's headers and its body in two writes; with Nagle's algorithm
   the body waits for the client's ACK of the headers, which a keep-alive client delays by
   up to 40 ms: every request the SDK sends would take 40 ms, whatever moto's work.

5. Per-request constants computed once: the names of a response class's methods (moto
   calls `inspect.getmembers` on every request), and an SQS queue's retention period,
   which moto reads per received message through `get_queue_attributes`, computing every
   attribute of the queue, `ApproximateNumberOfMessages` included (a pass over the queue).

6. A request counter for benchmarks: every request the server answers is counted by
   service and operation, and `GET /moto-api/durable/requests` returns the counts as JSON
   (`bench/dev_throughput.py` reads it for its AWS requests per run).

7. Update expressions parsed once per text. moto parses an `UpdateExpression` twice per
   `UpdateItem` (the handler, then the backend), and the expressions the run store sends
   repeat with new values only (`SET #1 = :5, ...`). `UpdateExpressionParser.make` keeps
   the trees it built, by expression text (a bounded cache; a text that does not parse is
   not kept, so it raises the same error every time). Sharing a tree is safe: the handler
   only reads it (`find_clauses`), and the backend's validator works on a deep copy of it
   (`Validator.__init__`), where the values, the item and the names are put in; the
   cached tree itself never sees them. So two requests with one expression and different
   value maps update their items exactly as moto does without the cache.

8. The update validator's tree walks without per-node overhead. Each of its ten passes
   (`DepthFirstTraverser.traverse`) asked the pass for its node-type table twice per node
   of the tree, building a new dict each time; here it is built once per pass. The walk
   itself is moto's: depth first, children before their parent, the same hooks in the
   same order, a processed node put in its parent's place.

9. The module list behind moto's request routing computed once: `DomainDispatcherApplication`
   asks `moto.backends.list_of_moto_modules()` twice per request, which lists moto's
   package directory and stats every entry. The installed package does not change while
   the server runs.

10. DynamoDB answers serialized without moto's generic serializer. moto writes each
    answer by walking the operation's output shape and, for every member of every
    structure (every attribute value of every item), trying half a dozen spellings of its
    name: about a fifth of a request's time. For the item operations (`GetItem`,
    `PutItem`, `UpdateItem`, `DeleteItem`, `Query`, `Scan`, the batch and transaction
    calls), the answer is walked along the same shape here, reading each member by its
    own name. Whenever the answer holds anything this walk is not sure to write as moto
    would (a member under another spelling, a blob, a timestamp, a response transformer,
    an error), moto's serializer writes it, as before. The JSON is the same as moto's
    (the unit tests compare the two, item types of every kind included).

11. SQS reads the clock cheaply. moto's SQS asks `unix_time()` (or `unix_time_millis()`)
    for every message it looks at, several times per message per receive (is it visible?
    delayed? retained?), and each call builds two datetimes and subtracts them. Called
    without an argument it is the wall clock in seconds since the epoch, which
    `time.time()` reads directly; with one, moto's function still answers.

12. Condition expressions lexed once per text. moto splits a `ConditionExpression` into
    tokens with a dozen regular expressions per token on every conditional write, and the
    run store's conditions repeat (`attribute_not_exists (#0) AND ...`) with new values
    only. The tokens depend on the text alone (names and values are looked up in the next
    pass, `_parse_paths`), are immutable tuples, and no later pass changes them, so the
    token list is kept by text (bounded) and each parse gets a fresh deque of it. A text
    that does not lex raises as before and is not kept.

13. A send to a standard queue does not compute every attribute of the queue. moto's
    `send_message` reads `queue.attributes["ContentBasedDeduplication"]`, and building
    `queue.attributes` counts the queue's messages (a pass over every message: a send
    cost that grows with the backlog). That attribute exists on FIFO queues only; while a
    standard queue's send runs, its `attributes` answers without it (an empty map), which
    is what the lookup saw. FIFO queues, and every other reader of `attributes`
    (`GetQueueAttributes`), get moto's full map.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

CHECKED_MOTO_VERSION = "5.2.5"
COUNTER_PATH = "/moto-api/durable/requests"

_lock = threading.Lock()
_originals: dict[tuple[Any, str], Any] = {}
_dynamodb_lock = threading.RLock()
_partition = threading.local()
_requests: Counter[str] = Counter()
_requests_lock = threading.Lock()
_sending = threading.local()
_lexed_conditions: dict[str, tuple[Any, ...]] = {}
LEXED_CONDITIONS_KEPT = 512
_INHERITED = object()  # an attribute the patched class did not define itself


class MotoVersionError(RuntimeError):
    """The installed moto is not the version these patches were checked against."""


def apply() -> None:
    """Install every patch (idempotent). Call it in the process that serves moto."""
    import moto
    from moto import backends
    from moto.core import responses as moto_responses
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]
    from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]
        UpdateExpressionParser,
    )
    from moto.dynamodb.responses import DynamoHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs import models as sqs_models
    from moto.sqs.models import Queue, SQSBackend
    from werkzeug.serving import WSGIRequestHandler

    if moto.__version__ != CHECKED_MOTO_VERSION:
        raise MotoVersionError(
            f"durable.local.moto_patches was checked against moto {CHECKED_MOTO_VERSION}, "
            f"not {moto.__version__}: re-read moto's DynamoDB backend and update the patches"
        )
    with _lock:
        if _originals:
            return
        _patch(DynamoHandler, "call_action", _serialized_call_action)
        _patch(DynamoDBBackend, "transact_write_items", _transact_write_items)
        _patch(Table, "query", _partition_query)
        _patch(Table, "all_items", _all_items)
        _patch(DomainDispatcherApplication, "__call__", _counting_call)
        _patch_attribute(WSGIRequestHandler, "disable_nagle_algorithm", True)
        _patch(moto_responses, "method_names_from_class", _method_names)
        _patch(SQSBackend, "is_message_valid_based_on_retention_period", _retained)
        _patch(UpdateExpressionParser, "make", classmethod(_parsed_update_expression))
        _patch(DepthFirstTraverser, "traverse", _traverse)
        _patch(backends, "list_of_moto_modules", _moto_modules)
        _patch_attribute(DynamoHandler, "serialized", _serialized_dynamodb)
        _patch(sqs_models, "unix_time", _unix_time)
        _patch(sqs_models, "unix_time_millis", _unix_time_millis)
        _patch(ConditionExpressionParser, "_lex_condition_expression", _lexed_condition)
        _patch(SQSBackend, "send_message", _send_message)
        _patch(Queue, "attributes", property(_queue_attributes))


def revert() -> None:
    """Undo `apply()` (for tests that want moto as it ships)."""
    _update_expressions.cache_clear()
    _lexed_conditions.clear()
    _moto_modules.cache_clear()
    with _lock:
        for (owner, name), original in _originals.items():
            if original is _INHERITED:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        _originals.clear()


def applied() -> bool:
    return bool(_originals)


def request_counts() -> dict[str, int]:
    """Requests answered so far, by "service operation" (the counter of patch 6)."""
    with _requests_lock:
        return dict(_requests)


def _patch(owner: Any, name: str, replacement: Any) -> None:
    _originals[(owner, name)] = owner.__dict__[name]
    setattr(owner, name, replacement)


def _patch_attribute(owner: Any, name: str, value: Any) -> None:
    """Set a class attribute that may be inherited (reverted by deleting it if so)."""
    _originals[(owner, name)] = owner.__dict__.get(name, _INHERITED)
    setattr(owner, name, value)


def _original(owner: Any, name: str) -> Any:
    return _originals[(owner, name)]


# -- 1. one DynamoDB request at a time ---------------------------------------------------


def _serialized_call_action(self: Any) -> Any:
    from moto.dynamodb.responses import DynamoHandler

    with _dynamodb_lock:
        return _original(DynamoHandler, "call_action")(self)


# -- 2. transactions with a per-item backup ----------------------------------------------


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's `DynamoDBBackend.transact_write_items`, backing up items, not tables."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    # (table, hash key, range key, the item before the transaction or None)
    backup: list[tuple[Any, Any, Any, Any]] = []
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    def back_up(table_name: str, key: dict[str, Any]) -> None:
        table = self.get_table(table_name)
        hash_key, range_key = self.get_keys_value(table, key)
        before = table.get_item(hash_key, range_key)
        backup.append((table, hash_key, range_key, copy.deepcopy(before)))

    def roll_back() -> None:
        for table, hash_key, range_key, before in reversed(backup):
            _restore(table, hash_key, range_key, before)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if op_type != "ConditionCheck":
                back_up(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression, expression_attribute_names, expression_attribute_values
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            roll_back()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore[arg-type]
        except Exception as e:
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore[arg-type]

    if any(code is not None for code, _, _ in errors):
        roll_back()
        raise TransactionCanceledException(errors)


def _restore(table: Any, hash_key: Any, range_key: Any, before: Any) -> None:
    """Put one item back as it was (`before`), or remove it if it did not exist."""
    if range_key is not None:
        partition = table.items[hash_key]
        if before is None:
            partition.pop(range_key, None)
        else:
            partition[range_key] = before
    elif before is None:
        table.items.pop(hash_key, None)
    else:
        table.items[hash_key] = before


# -- 3. base-table queries read one partition ---------------------------------------------


_UNSORTED = object()  # the hint of an index query: every item, in no particular order


def _partition_query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    from moto.dynamodb.models.table import Table

    query = _original(Table, "query")
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    if not index_name and hash_key is None:
        return query(self, hash_key, *args, **kwargs)
    _partition.hint = (self, _UNSORTED if index_name else hash_key)
    try:
        return query(self, hash_key, *args, **kwargs)
    finally:
        _partition.hint = None


def _all_items(self: Any) -> list[Any]:
    from moto.dynamodb.models.table import Table

    hint = getattr(_partition, "hint", None)
    if hint is None or hint[0] is not self:
        return _original(Table, "all_items")(self)  # type: ignore[no-any-return]
    _partition.hint = None  # once: the query's own call
    if hint[1] is _UNSORTED:
        if not self.range_key_attr:
            return list(self.items.values())
        return [item for partition in self.items.values() for item in partition.values()]
    partition = self.items.get(hint[1])
    if partition is None:
        return []
    if not self.range_key_attr:
        return [partition]
    return sorted(partition.values(), key=lambda item: item.range_key)


# -- 5. per-request constants computed once -----------------------------------------------


@functools.cache
def _method_names(clazz: object) -> list[str]:
    from moto.core import responses as moto_responses

    names: list[str] = _original(moto_responses, "method_names_from_class")(clazz)
    return names


def _retained(self: Any, queue_name: str, message: Any) -> bool:
    """moto's retention check, reading the one attribute it needs."""
    from moto.core.utils import unix_time

    queue = self.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
    return bool(retain_until > unix_time())


# -- 7. update expressions parsed once per text ------------------------------------------


@functools.lru_cache(maxsize=512)
def _update_expressions(expression: str) -> Any:
    from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]
        UpdateExpressionParser,
    )

    make = _original(UpdateExpressionParser, "make")
    return make.__func__(UpdateExpressionParser, expression)


def _parsed_update_expression(cls: Any, expression: str) -> Any:
    """`UpdateExpressionParser.make`, kept by text (see patch 7: callers never change it)."""
    from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]
        UpdateExpressionParser,
    )

    if cls is not UpdateExpressionParser:  # a subclass: as moto does
        return _original(UpdateExpressionParser, "make").__func__(cls, expression)
    return _update_expressions(expression)


# -- 8. the validator's walks --------------------------------------------------------------


def _traverse(self: Any, node: Any) -> Any:
    """moto's `DepthFirstTraverser.traverse_node_recursively`, its node-type table built once."""
    from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]

    processors = list(self._processing_map().items())
    handled = tuple(kind for kind, _ in processors)
    before_child = self.pre_processing_of_child

    def walk(node: Any, child_id: int = -1) -> Any:
        if isinstance(node, Node):
            parent_node = node.parent
            if node.children is not None:
                for index, child in enumerate(node.children):
                    before_child(node, index)
                    walk(child, index)
            if isinstance(node, handled):
                for kind, process in processors:  # the first that matches, as `process`
                    if isinstance(node, kind):
                        node = process(node)
                        break
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
        return node

    return walk(node)


# -- 9. moto's module list, once -----------------------------------------------------------


@functools.cache
def _moto_modules() -> tuple[str, ...]:
    from moto import backends

    return tuple(_original(backends, "list_of_moto_modules")())


# -- 10. DynamoDB answers without the generic serializer ----------------------------------

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


# -- 11. SQS's clock ---------------------------------------------------------------------


def _unix_time(dt: Any = None) -> float:
    """moto's `unix_time`: seconds since the epoch, now unless `dt` is given."""
    from moto.core.utils import unix_time

    return time.time() if dt is None else unix_time(dt)


def _unix_time_millis(dt: Any = None) -> float:
    return _unix_time(dt) * 1000.0


# -- 6. the request counter ---------------------------------------------------------------


def _counting_call(self: Any, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if environ.get("PATH_INFO") == COUNTER_PATH:
        body = json.dumps(request_counts(), sort_keys=True).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]
    name = _operation(environ)
    with _requests_lock:
        _requests[name] += 1
    return _original(DomainDispatcherApplication, "__call__")(  # type: ignore[no-any-return]
        self, environ, start_response
    )


def _operation(environ: dict[str, Any]) -> str:
    """ "dynamodb PutItem", "sqs ReceiveMessage", "s3 PUT": what one request asks for."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    service = "?"
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            service = scope[3]
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service} {str(target).rsplit('.', 1)[-1]}"
    action = parse_qs(str(environ.get("QUERY_STRING", ""))).get("Action")
    if action:
        return f"{service} {action[0]}"
    return f"{service} {environ.get('REQUEST_METHOD', '?')}"


# -- 12. condition expressions lexed once per text ---------------------------------------


def _lexed_condition(self: Any) -> Any:
    from collections import deque

    from moto.dynamodb.comparisons import ConditionExpressionParser

    text = self.condition_expression
    tokens = _lexed_conditions.get(text)
    if tokens is None:
        lex = _original(ConditionExpressionParser, "_lex_condition_expression")
        tokens = tuple(lex(self))  # raises, and keeps nothing, when the text does not lex
        if len(_lexed_conditions) >= LEXED_CONDITIONS_KEPT:
            _lexed_conditions.clear()
        _lexed_conditions[text] = tokens
    return deque(tokens)


# -- 13. a send to a standard queue without every queue attribute ------------------------


def _send_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
    from moto.sqs.models import SQSBackend

    _sending.queue = self.get_queue(queue_name)
    try:
        return _original(SQSBackend, "send_message")(self, queue_name, *args, **kwargs)
    finally:
        _sending.queue = None


def _queue_attributes(self: Any) -> dict[str, Any]:
    from moto.sqs.models import Queue

    if not self.fifo_queue and getattr(_sending, "queue", None) is self:
        return {}
    attributes: dict[str, Any] = _original(Queue, "attributes").fget(self)
    return attributes
