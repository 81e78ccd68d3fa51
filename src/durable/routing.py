"""Routing a wake-up to the code version its run is pinned to (a Lambda version or alias).

`DURABLE_VERSION_ROUTES` maps code versions to Lambda functions, e.g.
`{"3": "arn:aws:lambda:eu-west-1:123456789012:function:durable-worker:v3"}` (publish each
worker version with its own alias and keep the aliases of versions that still have runs).
The routed wake-up is invoked asynchronously with the same SQS-shaped event the queue would
deliver, so the pinned worker handles it exactly like one from its queue.
"""

from __future__ import annotations

import json
from typing import Any

from durable.records import WakeUp
from durable.settings import Settings


class LambdaVersionRouter:
    """Invokes the worker of another code version with the wake-up (asynchronously)."""

    def __init__(self, routes: dict[str, str], settings: Settings) -> None:
        self.routes = dict(routes)
        self._settings = settings
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LambdaVersionRouter | None:
        return cls(settings.version_routes, settings) if settings.version_routes else None

    def route(self, code_version: str, message: WakeUp) -> bool:
        target = self.routes.get(code_version)
        if target is None:
            return False
        if self._client is None:
            from durable.aws import boto3_client

            self._client = boto3_client("lambda", self._settings)
        event = {
            "Records": [
                {
                    "messageId": f"routed-{message.run_id}",
                    "body": message.to_json(),
                    "eventSource": "aws:sqs",
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                }
            ]
        }
        self._client.invoke(
            FunctionName=target, InvocationType="Event", Payload=json.dumps(event).encode()
        )
        return True
