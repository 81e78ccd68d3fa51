"""Callbacks on DynamoDB: one item a callback, keyed by its token's hash (`CALLBACK#<sha256>`).

- `put_callback` is one put.
- `claim_callback` is one conditional update (pending and not expired -> completed, with its
  outcome); only when it fails does a consistent count tell an unknown token from one
  completed already.
- `callback_outcome` reads strongly consistent.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import PynamoDBException

from durable.errors import CallbackAlreadyCompletedError, CallbackNotFoundError
from durable.storage import _tables
from durable.storage.base import token_key
from durable.storage.dynamodb.table import DynamoTable
from durable.storage.dynamodb.translation import CONDITION_FAILED, response_code, translated


class DynamoCallbacks(DynamoTable):
    """The callback items: `put_callback`, `claim_callback`, `callback_outcome`."""

    def put_callback(self, token: str, run_id: str, name: str, expires_at: datetime | None) -> None:
        item = self._models.callback(
            _tables.callback_pk(token_key(token)),
            _tables.CALLBACK_SK,
            run_id=run_id,
            name=name,
            expires_at=expires_at,
            completed=False,
        )
        with translated("put_callback"):
            item.save()
        self._wrote()

    def claim_callback(self, token: str, now: datetime, outcome: str = "") -> str:
        """One conditional update: pending and not expired -> completed, with its outcome."""
        m = self._models.callback
        item = m(_tables.callback_pk(token_key(token)), _tables.CALLBACK_SK)
        condition = (
            m.pk.exists()
            & (m.completed == False)  # noqa: E712 - a PynamoDB condition, not a comparison
            & (m.expires_at.does_not_exist() | (m.expires_at > now))
        )
        try:
            item.update(
                actions=[m.completed.set(True), m.outcome.set(outcome)], condition=condition
            )
        except PynamoDBException as exc:
            if response_code(exc) != CONDITION_FAILED:
                with translated("claim_callback"):
                    raise
            with translated("claim_callback"):
                found = m.count(item.pk, m.sk == _tables.CALLBACK_SK, consistent_read=True)
            if found == 0:
                raise CallbackNotFoundError("no callback has this token") from None
            raise CallbackAlreadyCompletedError(
                "this callback was completed already, or it expired"
            ) from None
        self._wrote()
        return str(item.run_id)

    def callback_outcome(self, token: str) -> tuple[str, str] | None:
        m = self._models.callback
        with translated("callback_outcome"):
            try:
                item = m.get(
                    _tables.callback_pk(token_key(token)), _tables.CALLBACK_SK, consistent_read=True
                )
            except m.DoesNotExist:
                return None
        if not item.completed:
            return None
        return str(item.run_id), str(item.outcome or "")
