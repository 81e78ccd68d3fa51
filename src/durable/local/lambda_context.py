"""`LocalLambdaContext`: what Lambda hands a handler as `context`, for local invocations.

The remaining time counts down from a deadline on the monotonic clock, as Lambda's does
from the function timeout, so a worker handed this context hands over before the limit.
"""

from __future__ import annotations

import time
import uuid

ACCOUNT_ID = "123456789012"


class LocalLambdaContext:
    """The attributes and the one method of `aws_lambda_powertools`' `LambdaContext`."""

    def __init__(
        self,
        function_name: str,
        time_limit: float,
        *,
        region: str = "us-east-1",
        memory_limit_in_mb: int = 1024,
        request_id: str | None = None,
    ) -> None:
        self._deadline = time.monotonic() + time_limit
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
