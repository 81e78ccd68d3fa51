"""From PynamoDB and botocore errors to `durable.errors`, at the edge of the DynamoDB store.

`translated` wraps the requests; `response_code` and `cancellation_codes` read why DynamoDB
refused a write (a condition that did not hold is the store's to answer, anything else an
error to translate); `index_of_this_layout` recognises a table of the first layout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException, TransactWriteError

from durable.errors import DurableError, InfrastructureError, InputError, TableLayoutError
from durable.storage._items import ALL_RUNS_INDEX, DUE_INDEX, EXPIRY_INDEX, STATUS_INDEX, TASK_INDEX

CONDITION_FAILED = "ConditionalCheckFailedException"
# A transaction cancelled only because it raced another transaction may simply be retried
# (botocore retries throttling and 5xx, not TransactionConflict): this many tries in all,
# the n-th after n times this pause.
TRANSACTION_ATTEMPTS = 5
CONFLICT_BACKOFF = 0.02

# The indexes of this version: a query naming one the table lacks meets a table of the first
# layout.
_INDEXES = (
    TASK_INDEX,
    STATUS_INDEX,
    ALL_RUNS_INDEX,
    DUE_INDEX,
    EXPIRY_INDEX,
)


@contextmanager
def translated(operation: str, *, caller_input: bool = False) -> Iterator[None]:
    """Turn whatever PynamoDB or botocore raises into a `DurableError`.

    A request DynamoDB rejects as invalid is not worth repeating: with `caller_input` it is
    the caller's fault (a cursor from another listing, say) and becomes an `InputError`,
    otherwise a plain `DurableError`. Everything else (throttling, 5xx, timeouts, a
    transaction cancelled by a conflict) is an `InfrastructureError`: retried by
    redelivery, never a task's failure.
    """
    try:
        yield
    except DurableError:
        raise
    except (PynamoDBException, BotoCoreError, ClientError) as exc:
        code = response_code(exc)
        if code == "ValidationException":
            if caller_input:
                raise InputError(f"DynamoDB rejected {operation}") from exc
            raise DurableError(f"DynamoDB rejected {operation}: {exc}") from exc
        raise InfrastructureError(f"DynamoDB {operation} failed: {exc}") from exc


def response_code(exc: Exception) -> str | None:
    """DynamoDB's error code behind a PynamoDB or botocore error; None when there was no
    answer (a timeout, a dropped connection: PynamoDB's own `cause_response_code` then
    raises AttributeError)."""
    cause = getattr(exc, "cause", None) or exc
    response = getattr(cause, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code is not None else None


def cancellation_codes(exc: TransactWriteError) -> list[str | None]:
    """Why each action of a cancelled transaction failed; empty when it was not cancelled."""
    return [reason.code if reason else None for reason in exc.cancellation_reasons or []]


@contextmanager
def index_of_this_layout(table_name: str) -> Iterator[None]:
    """Turn DynamoDB's answer to a query on an index the table lacks (a table of the first
    layout) into `TableLayoutError`, which says what to do."""
    try:
        yield
    except (PynamoDBException, ClientError) as exc:
        message = str(getattr(exc, "cause", None) or exc)
        names_an_index = any(name in message for name in _INDEXES)
        # AWS answers ValidationException ("The table does not have the specified index"),
        # moto ResourceNotFoundException ("Invalid index").
        missing = response_code(exc) in ("ValidationException", "ResourceNotFoundException")
        if missing and names_an_index:
            raise TableLayoutError(table_name, "an index of this version is missing") from exc
        raise
