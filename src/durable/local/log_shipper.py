"""`durable dev`'s stand-in for Lambda's log delivery: worker output into moto's CloudWatch Logs.

    container stdout ─► reader thread ─► console (as before)
                                      └► LogShipper.put ─► queue ─► shipper thread ─► PutLogEvents

Lambda writes what a function prints to its log group, `/aws/lambda/<function>`, one log
stream per execution environment, named `YYYY/MM/DD/[$LATEST]<32 hex digits>`. The dev stack
does the same with moto: each container process gets a stream of its own (`stream`), and
the lines its reader thread reads are queued with the instant they were read. One
background thread sends them in batches (every `FLUSH_SECONDS`, or sooner once a batch is
full), so a worker never waits on CloudWatch: the reader only appends to a queue. The group
is created at `start`, each stream before its first batch.

This is what `GET /runs/{id}/logs` reads locally (`durable.runlogs.cloudwatch`, the same code
as on AWS). Shipping is best effort, as it is for a log agent: a batch moto refuses is
reported once on the console and dropped; the console keeps every line regardless. The
lines live in moto's memory: they are not kept across restarts of the stack.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# How often the thread sends what is queued.
FLUSH_SECONDS = 0.2
# PutLogEvents' limits: events per call, bytes per call (each event counts 26 bytes more).
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
# CloudWatch's limit on one event (256 KiB): a longer line is cut.
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD


def lambda_stream_name(now: datetime) -> str:
    """A log stream name as Lambda makes them: `2026/11/30/[$LATEST]0f3a...`."""
    return f"{now:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class _Line:
    stream: str
    millis: int
    message: str


class LogShipper:
    """Queues lines per stream and ships them to one log group from a background thread."""

    def __init__(
        self,
        client: Any,
        log_group: str,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.log_group = log_group
        self._client = client
        self._flush_seconds = flush_seconds
        self._report = report or (lambda message: None)
        # Lines, flush markers, and None to stop.
        self._queue: queue.SimpleQueue[_Line | threading.Event | None] = queue.SimpleQueue()
        self._created: set[str] = set()
        self._thread: threading.Thread | None = None
        self._failed = False
        self.shipped = 0  # lines moto accepted, for tests

    def start(self) -> None:
        """Create the log group (if it is not there) and start the sending thread."""
        self._create("create_log_group", logGroupName=self.log_group)
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self._thread.start()

    def stream(self) -> Callable[[str], None]:
        """A new log stream (one per container process): the function that ships a line."""
        name = lambda_stream_name(datetime.now(UTC))

        def ship(line: str) -> None:
            self.put(name, line)

        return ship

    def put(self, stream: str, line: str) -> None:
        """Queue one printed line of `stream` (blank lines are not events)."""
        message = line.rstrip("\r\n")
        if message.strip():
            self._queue.put(_Line(stream, int(time.time() * 1000), message))

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every line queued so far was sent (tests); whether it was in time."""
        done = threading.Event()
        self._queue.put(done)  # set by the thread once everything before it was sent
        return done.wait(timeout)

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=self._flush_seconds)
            except queue.Empty:
                continue
            items = [first]
            while len(items) < MAX_BATCH_EVENTS:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._send([item for item in items if isinstance(item, _Line)])
            for item in items:
                if item is None:
                    stopping = True
                elif isinstance(item, threading.Event):
                    item.set()

    def _send(self, lines: list[_Line]) -> None:
        by_stream: dict[str, list[_Line]] = {}
        for line in lines:
            by_stream.setdefault(line.stream, []).append(line)
        # Streams in the order of their first line: a run's lines keep their order.
        for stream, events in sorted(by_stream.items(), key=lambda item: item[1][0].millis):
            if stream not in self._created:
                self._create("create_log_stream", logGroupName=self.log_group, logStreamName=stream)
                self._created.add(stream)
            # PutLogEvents takes a batch in time order only (a clock step back would break it).
            events.sort(key=lambda line: line.millis)
            for chunk in _chunks(events):
                self._put(stream, chunk)

    def _put(self, stream: str, events: list[_Line]) -> None:
        try:
            self._client.put_log_events(
                logGroupName=self.log_group,
                logStreamName=stream,
                logEvents=[{"timestamp": line.millis, "message": line.message} for line in events],
            )
        except Exception as exc:  # best effort: the console has the lines
            if not self._failed:
                self._failed = True
                self._report(f"cannot ship worker lines to CloudWatch Logs (moto): {exc}")
            return
        self.shipped += len(events)

    def _create(self, operation: str, **request: str) -> None:
        try:
            getattr(self._client, operation)(**request)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code != "ResourceAlreadyExistsException":
                self._report(f"cannot create {request} in CloudWatch Logs (moto): {exc}")


def _chunks(events: list[_Line]) -> list[list[_Line]]:
    """`events` cut into PutLogEvents batches (messages over CloudWatch's limit cut)."""
    chunks: list[list[_Line]] = [[]]
    size = 0
    for event in events:
        encoded = event.message.encode("utf-8")
        if len(encoded) > MAX_EVENT_BYTES:
            cut = encoded[:MAX_EVENT_BYTES].decode("utf-8", "ignore")
            event = _Line(event.stream, event.millis, cut)
            encoded = cut.encode("utf-8")
        cost = len(encoded) + EVENT_OVERHEAD
        if chunks[-1] and (len(chunks[-1]) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES):
            chunks.append([])
            size = 0
        chunks[-1].append(event)
        size += cost
    return [chunk for chunk in chunks if chunk]


def shipper_for(settings: Any, report: Callable[[str], None] | None = None) -> LogShipper:
    """The dev stack's shipper: to `settings.log_group` on its moto, as background traffic
    (the dev moto serves the API's requests first, see `durable.local.moto_turns`)."""
    import boto3
    from botocore.config import Config

    from durable.aws import client_config, endpoint_url, region_name
    from durable.local.moto_requests import BACKGROUND_APP_ID

    # botocore has the option (1.31+); its stubs do not know it yet.
    appid = Config(user_agent_appid=BACKGROUND_APP_ID)  # type: ignore[call-arg]
    config = client_config("logs").merge(appid)
    client = boto3.session.Session().client(
        "logs",
        region_name=region_name(settings),
        endpoint_url=endpoint_url(settings, "logs"),
        config=config,
    )
    return LogShipper(client, settings.log_group, report=report)
