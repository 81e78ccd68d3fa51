"""What the code asks of AWS, recorded at the botocore level and read as IAM actions.

`CallRecorder` wraps `botocore.client.BaseClient._make_api_call`, the one door every boto3
client and PynamoDB's connection go through, and notes each operation under the role (the
Lambda function) acting at the time. Each operation becomes the IAM actions it needs, on
the resources it touches, named after the template's logical ids:

    PutItem on table durable-runs           -> dynamodb:PutItem  RunsTable
    Query on its index due                  -> dynamodb:Query    RunsTable/index/due
    TransactWriteItems [Put, Update]        -> dynamodb:PutItem, dynamodb:UpdateItem
    SendMessageBatch on the wake-up queue   -> sqs:SendMessage   WakeQueue
    PutObject values/r1/x.json in the bucket -> s3:PutObject     ValuesBucket/values/r1/x.json

IAM has no action for a transaction or a batch of messages: it checks each item's own
action. An operation this module does not know becomes `service:Operation`, which no
policy grants by accident: the test then fails and names it.

`allows(statements, call)` evaluates a role's policy statements from the translated
template against a call, resolving `Fn::GetAtt X.Arn` and `Fn::Sub "${X.Arn}/..."` to the
same logical names.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.client

# Pseudo parameters as the test deploys (`AWS::StackName` is the stack's name).
PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "durable",
    "AWS::URLSuffix": "amazonaws.com",
}

# Operations whose IAM action is not `service:Operation`.
_ACTIONS = {
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "CreateMultipartUpload"): "s3:PutObject",
    ("s3", "UploadPart"): "s3:PutObject",
    ("s3", "CompleteMultipartUpload"): "s3:PutObject",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("lambda", "Invoke"): "lambda:InvokeFunction",
}
# The item actions IAM checks for each member of a DynamoDB transaction.
_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
# Calls moto cannot answer in-process: what AWS would answer instead. (A Lambda invocation
# needs Docker in moto; the worker ignores the answer of an asynchronous one.)
_CANNED = {("lambda", "Invoke"): {"StatusCode": 202}}


@dataclass(frozen=True, order=True)
class Call:
    """One IAM action on one resource (a logical id, with a path for indexes and keys)."""

    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}"


@dataclass
class CallRecorder:
    """Records the AWS calls made while a role acts (`acting_as`), per role.

    `names` maps physical names (table, queue URL, bucket) to the template's logical ids.
    `after(service, operation, when, fn)` runs `fn` once right after the next such call
    whose parameters satisfy `when`: a concurrent actor stepping in between two calls of
    the code under test.
    """

    names: Mapping[str, str]
    calls: dict[str, set[Call]] = field(default_factory=dict)
    _roles: list[str] = field(default_factory=list)
    _after: list[tuple[str, str, Callable[[dict[str, Any]], bool], Callable[[], None]]] = field(
        default_factory=list
    )

    @contextmanager
    def installed(self) -> Iterator[CallRecorder]:
        original = botocore.client.BaseClient._make_api_call
        recorder = self

        def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            if recorder._roles:
                role = recorder._roles[-1]
                recorder.calls.setdefault(role, set()).update(
                    recorder.to_calls(service, operation, params)
                )
            canned = _CANNED.get((service, operation))
            result = dict(canned) if canned is not None else original(client, operation, params)
            for hook in list(recorder._after):
                if hook[:2] == (service, operation) and hook[2](params):
                    recorder._after.remove(hook)
                    hook[3]()
            return result

        botocore.client.BaseClient._make_api_call = recording  # type: ignore[method-assign]
        try:
            yield self
        finally:
            botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]

    @contextmanager
    def acting_as(self, role: str) -> Iterator[None]:
        self._roles.append(role)
        try:
            yield
        finally:
            self._roles.pop()

    def after(
        self,
        service: str,
        operation: str,
        when: Callable[[dict[str, Any]], bool],
        fn: Callable[[], None],
    ) -> None:
        self._after.append((service, operation, when, fn))

    def actions(self, role: str) -> set[str]:
        return {call.action for call in self.calls.get(role, set())}

    # -- operation -> IAM actions ----------------------------------------------------------

    def to_calls(self, service: str, operation: str, params: Mapping[str, Any]) -> set[Call]:
        if service == "dynamodb":
            return self._dynamodb(operation, params)
        action = _ACTIONS.get((service, operation), f"{service}:{operation}")
        return {Call(action, self._resource(service, params))}

    def _dynamodb(self, operation: str, params: Mapping[str, Any]) -> set[Call]:
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return {
                Call(_TRANSACT_ACTIONS.get(kind, f"dynamodb:{kind}"), self._table(request))
                for member in params["TransactItems"]
                for kind, request in member.items()
            }
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return {
                Call(f"dynamodb:{operation}", self.names.get(table, table))
                for table in params["RequestItems"]
            }
        return {Call(f"dynamodb:{operation}", self._table(params))}

    def _table(self, params: Mapping[str, Any]) -> str:
        table = self.names.get(params["TableName"], params["TableName"])
        index = params.get("IndexName")
        return f"{table}/index/{index}" if index else table

    def _resource(self, service: str, params: Mapping[str, Any]) -> str:
        if service == "sqs":
            queue = params.get("QueueUrl") or params.get("QueueName", "*")
            return self.names.get(queue, queue)
        if service == "s3":
            bucket = self.names.get(params.get("Bucket", "*"), params.get("Bucket", "*"))
            return f"{bucket}/{params['Key']}" if "Key" in params else bucket
        if service == "lambda":
            return str(params.get("FunctionName", "*"))
        if service == "logs":
            group = params.get("logGroupName", "*")
            return self.names.get(group, group)
        return "*"


# -- policy statements ---------------------------------------------------------------------


def resource_patterns(resource: Any) -> list[str]:
    """A statement's `Resource` as wildcard patterns over logical ids."""
    if isinstance(resource, list):
        return [pattern for item in resource for pattern in resource_patterns(item)]
    if isinstance(resource, str):
        return [resource]
    if "Fn::GetAtt" in resource:
        name, attribute = resource["Fn::GetAtt"]
        assert attribute == "Arn", resource
        return [name]
    if "Ref" in resource:
        return [PSEUDO_PARAMETERS.get(resource["Ref"], resource["Ref"])]
    if "Fn::Sub" in resource:
        text = resource["Fn::Sub"]
        assert isinstance(text, str), resource  # no variable map in our template
        for name, value in PSEUDO_PARAMETERS.items():
            text = text.replace("${" + name + "}", value)
        return [text.replace(".Arn}", "}").replace("${", "").replace("}", "")]
    raise AssertionError(f"cannot read resource {json.dumps(resource)}")


def statement_actions(statement: Mapping[str, Any]) -> list[str]:
    actions = statement["Action"]
    return list(actions) if isinstance(actions, list) else [actions]


def matches(statement: Mapping[str, Any], call: Call) -> bool:
    """Whether `statement` names the call's action and its resource."""
    return any(
        fnmatch.fnmatchcase(call.action.lower(), action.lower())
        for action in statement_actions(statement)
    ) and any(
        fnmatch.fnmatchcase(call.resource, pattern)
        for pattern in resource_patterns(statement["Resource"])
    )


def allows(statements: list[dict[str, Any]], call: Call) -> bool:
    """Whether an Allow statement grants `call` (and no Deny statement refuses it)."""
    named = [statement for statement in statements if matches(statement, call)]
    return any(s["Effect"] == "Allow" for s in named) and not any(
        s["Effect"] == "Deny" for s in named
    )
