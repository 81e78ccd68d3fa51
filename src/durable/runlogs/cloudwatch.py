"""`CloudWatchRunLogSource`: the `RunLogSource` port on the worker's CloudWatch log group.

Lambda writes what the worker function prints to `/aws/lambda/<function>`; every line a
run logs is a Powertools JSON record with its `run_id` (see `durable.logs`). A read is
`FilterLogEvents` on that group:

- filter pattern `{ $.run_id = "<run id>" }`: CloudWatch matches the JSON field exactly.
  moto does not know JSON patterns and returns every event; either way each line is parsed
  and its `run_id` compared here, so a child run (`run_x.1.2.0`) never shows in its
  parent's lines, whatever the backend's matching did.
- `startTime`: the cursor's position, or the run's creation (less a minute of clock skew)
  for a first read, so the search never scans the group's whole retention.
- pages of `nextToken` are followed within one read until `limit` lines are found or the
  search is complete (at most `MAX_CALLS` calls: then the cursor says where to go on).

Costs and delays are CloudWatch's: a `FilterLogEvents` call per page (API request
pricing, a per-account rate limit: throttling past botocore's retries is an
`InfrastructureError`, 503 in the API), and lines become searchable a few seconds after
they are printed (ingestion delay).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from durable.errors import InfrastructureError
from durable.runlogs.base import (
    DEFAULT_LIMIT,
    LogPage,
    Position,
    RawEvent,
    check_limit,
    collect,
)

# FilterLogEvents calls one read may make before it returns what it found so far.
MAX_CALLS = 20
# FilterLogEvents' own page limit.
MAX_PAGE = 10_000
# A first read searches from the run's creation less this (clocks of hosts differ).
CLOCK_SKEW = timedelta(minutes=1)


def log_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A CloudWatch Logs client configured like the runtime's other clients."""
    import boto3

    from durable.aws import client_config

    session = boto3.session.Session()
    return session.client(
        "logs", region_name=region, endpoint_url=endpoint_url, config=client_config("logs")
    )


def filter_pattern(run_id: str) -> str:
    """CloudWatch's JSON filter for lines whose `run_id` is exactly `run_id`."""
    return f"{{ $.run_id = {json.dumps(run_id)} }}"


class _Search:
    """How one read's search ended."""

    cut_short = False


class CloudWatchRunLogSource:
    """Reads a run's lines from one log group (the worker function's).

    Without a `client`, one is made on the first read (from `region` and `endpoint_url`):
    the worker, which never reads logs, pays nothing for it at cold start.
    """

    def __init__(
        self,
        log_group: str,
        client: Any = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.log_group = log_group
        self._client = client
        self._region = region
        self._endpoint_url = endpoint_url
        self.calls = 0  # FilterLogEvents calls made, for tests and benchmarks

    def read(
        self,
        run_id: str,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
        since: datetime | None = None,
    ) -> LogPage:
        position = Position.decode(cursor)
        check_limit(limit)
        start: int | None = position.millis
        if start is None and since is not None:
            start = max(0, int((since - CLOCK_SKEW).timestamp() * 1000))
        # Past `seen`, at most `limit` of ours: the page may hold no more than that.
        page = min(MAX_PAGE, limit + len(position.seen))
        search = _Search()
        events = self._events(run_id, start, page, search)
        lines, reached, left = collect(run_id, events, position, limit)
        return LogPage(run_id, lines, reached.encode(), more=left or search.cut_short)

    def _events(
        self, run_id: str, start: int | None, page: int, search: _Search
    ) -> Iterator[RawEvent]:
        """The group's events from `start` on, in timestamp order, page after page (at
        most `MAX_CALLS`: then `search.cut_short`)."""
        request: dict[str, Any] = {
            "logGroupName": self.log_group,
            "filterPattern": filter_pattern(run_id),
            "limit": page,
            # What CloudWatch always does now; moto returns stream after stream without it.
            "interleaved": True,
        }
        if start is not None:
            request["startTime"] = start
        for _ in range(MAX_CALLS):
            response = self._filter(request)
            if response is None:
                return
            for event in response.get("events", []):
                yield RawEvent(
                    int(event["timestamp"]), str(event["eventId"]), str(event["message"])
                )
            token = response.get("nextToken")
            if not token:
                return
            request["nextToken"] = token
        search.cut_short = True

    def _filter(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """One FilterLogEvents call; None when the group does not exist (nothing logged)."""
        self.calls += 1
        if self._client is None:
            self._client = log_client(self._region, self._endpoint_url)
        try:
            response: dict[str, Any] = self._client.filter_log_events(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise InfrastructureError(f"CloudWatch Logs FilterLogEvents failed: {exc}") from exc
        except BotoCoreError as exc:
            raise InfrastructureError(f"CloudWatch Logs FilterLogEvents failed: {exc}") from exc
        return response
