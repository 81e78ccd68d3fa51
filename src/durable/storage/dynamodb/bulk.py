"""Bulk jobs on DynamoDB (`BulkJobs`): one item per job, `BULK#<job_id>` / `BULK`, in no index.

Attributes: `job` the record as JSON (`BulkJob.to_json`, without its lease), `state` (read by
the claim's condition), and the lease: `owner` and `until` (a fixed-width UTC instant, so
that instants compare as strings), absent while the lease is free.

- `create_bulk_job`: one `PutItem`, on the condition that no item has the key.
- `get_bulk_job`: one consistent `GetItem`.
- `claim_bulk_job`: one `UpdateItem` setting `owner` and `until`, on the condition that the
  job exists, runs, and its lease is free, expired or the claimer's own; it returns the item
  as written (`ALL_NEW`). A failed condition writes nothing and answers None.
- `save_bulk_job`: one `PutItem` of the whole item, on the condition `owner = :owner`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException

from durable.errors import ConflictError
from durable.storage import _tables
from durable.storage.bulk_jobs import BulkJob, BulkState
from durable.storage.dynamodb.table import DynamoTable
from durable.storage.dynamodb.translation import CONDITION_FAILED, response_code, translated


def _instant(when: datetime) -> str:
    """PynamoDB's fixed-width UTC form (`durable.storage._tables`): sorts as it compares."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


class DynamoBulkJobs(DynamoTable):
    """`create_bulk_job`, `get_bulk_job`, `claim_bulk_job`, `save_bulk_job`."""

    def _bulk_key(self, job_id: str) -> dict[str, Any]:
        return {"pk": {"S": _tables.bulk_job_pk(job_id)}, "sk": {"S": _tables.BULK_JOB_SK}}

    def _bulk_item(self, job: BulkJob) -> dict[str, Any]:
        item = {
            **self._bulk_key(job.job_id),
            "job": {"S": job.to_json()},
            "state": {"S": str(job.state)},
        }
        if job.lease_owner is not None and job.lease_until is not None:
            item["owner"] = {"S": job.lease_owner}
            item["until"] = {"S": _instant(job.lease_until)}
        return item

    def _conditional(self, operation: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """Send one conditional request; its answer, None when the condition failed."""
        with translated(operation):
            try:
                answer: dict[str, Any] = self._models.connection.dispatch(operation, request)
            except (PynamoDBException, ClientError) as exc:
                if response_code(exc) == CONDITION_FAILED:
                    return None
                raise
        self._wrote()
        return answer

    def create_bulk_job(self, job: BulkJob) -> None:
        free = job.with_changes(lease_owner=None, lease_until=None)
        request = {
            "TableName": self.table_name,
            "Item": self._bulk_item(free),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        if self._conditional("PutItem", request) is None:
            raise ConflictError(f"bulk job {job.job_id} exists")

    def get_bulk_job(self, job_id: str) -> BulkJob | None:
        with translated("get_bulk_job"):
            answer = self._models.connection.dispatch(
                "GetItem",
                {
                    "TableName": self.table_name,
                    "Key": self._bulk_key(job_id),
                    "ConsistentRead": True,
                },
            )
        item = answer.get("Item")
        return _job(item) if item else None

    def claim_bulk_job(
        self, job_id: str, owner: str, now: datetime, until: datetime
    ) -> BulkJob | None:
        request = {
            "TableName": self.table_name,
            "Key": self._bulk_key(job_id),
            "UpdateExpression": "SET #owner = :owner, #until = :until",
            "ConditionExpression": "attribute_exists(pk) AND #state = :running AND "
            "(attribute_not_exists(#owner) OR #until <= :now OR #owner = :owner)",
            "ExpressionAttributeNames": {"#owner": "owner", "#until": "until", "#state": "state"},
            "ExpressionAttributeValues": {
                ":owner": {"S": owner},
                ":until": {"S": _instant(until)},
                ":now": {"S": _instant(now)},
                ":running": {"S": str(BulkState.RUNNING)},
            },
            "ReturnValues": "ALL_NEW",
        }
        answer = self._conditional("UpdateItem", request)
        return _job(answer["Attributes"]) if answer is not None else None

    def save_bulk_job(self, job: BulkJob, owner: str) -> BulkJob:
        request = {
            "TableName": self.table_name,
            "Item": self._bulk_item(job),
            "ConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":owner": {"S": owner}},
        }
        if self._conditional("PutItem", request) is None:
            raise ConflictError(f"bulk job {job.job_id}: lease is not held by {owner}")
        return job


def _job(item: dict[str, Any]) -> BulkJob:
    owner = item.get("owner", {}).get("S")
    until = item.get("until", {}).get("S")
    return BulkJob.from_json(
        item["job"]["S"],
        lease_owner=owner,
        lease_until=_parse(until) if until is not None else None,
    )
