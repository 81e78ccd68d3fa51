"""Reading one run's log lines from a busy log group, measured on moto in this process.

Run:  .venv/bin/python bench/run_logs.py

The worker's log group holds the lines of `RUNS` runs, `LINES` each (Powertools JSON
records as the worker prints them, interleaved in time across 4 streams as 4 containers
would write them, several per millisecond). For one run in the middle it measures, with
`CloudWatchRunLogSource` (the API's reader):

- reading all its lines page by page (`limit` 100), as `durable logs RUN_ID` does;
- a follower's poll when nothing is new (the cursor of the last page).

Printed: wall time per read and FilterLogEvents calls per read, on moto as it ships
(which does not know CloudWatch's JSON filter patterns, so it hands every event of the
group to the reader, which keeps the run's own) and with the dev stack's moto patches
(patch 14 filters `{ $.run_id = "..." }` as CloudWatch does, server side: one call a page,
as on AWS, where CloudWatch's ingestion delay of a few seconds before a line shows comes
on top). Nothing here asserts.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

import boto3
from moto import mock_aws

from durable.runlogs.cloudwatch import CloudWatchRunLogSource

GROUP = "/aws/lambda/durable-worker"
RUNS = 100
LINES = 100
STREAMS = 4


def measure(patched: bool) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)
    start = int(time.time() * 1000) - 600_000
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        client.create_log_group(logGroupName=GROUP)
        events: dict[str, list[dict[str, object]]] = {f"s{n}": [] for n in range(STREAMS)}
        for line in range(LINES):
            for run in range(RUNS):
                record = {
                    "level": "INFO",
                    "message": f"line {line}",
                    "service": "durable",
                    "run_id": f"run_{run:032x}",
                    "task_id": "bench",
                    "attempt": 1,
                }
                stream = f"s{run % STREAMS}"
                events[stream].append(
                    {"timestamp": start + (line * RUNS + run) // 8, "message": json.dumps(record)}
                )
        for stream, batch in events.items():
            client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
            for offset in range(0, len(batch), 5000):
                client.put_log_events(
                    logGroupName=GROUP,
                    logStreamName=stream,
                    logEvents=batch[offset : offset + 5000],
                )
        source = CloudWatchRunLogSource(GROUP, client)
        run_id = f"run_{RUNS // 2:032x}"
        since = datetime.fromtimestamp(start / 1000, tz=UTC)

        began, calls, pages, lines = time.perf_counter(), source.calls, 0, 0
        cursor = None
        while True:
            page = source.read(run_id, cursor=cursor, limit=100, since=since)
            pages += 1
            lines += len(page.lines)
            cursor = page.next_cursor
            if not page.more:
                break
        read_all = time.perf_counter() - began
        read_calls = source.calls - calls

        began, calls = time.perf_counter(), source.calls
        for _ in range(10):
            idle = source.read(run_id, cursor=cursor, limit=100, since=since)
            assert not idle.lines
        idle_poll = (time.perf_counter() - began) / 10
        idle_calls = (source.calls - calls) / 10

    print(f"moto {'with patch 14' if patched else 'as it ships'}:")
    print(
        f"  read one run's {lines} lines: {pages} pages, {read_all * 1000:.0f} ms "
        f"({read_all / pages * 1000:.0f} ms a page), {read_calls} FilterLogEvents calls"
    )
    print(f"  a follower's poll with nothing new: {idle_poll * 1000:.1f} ms, {idle_calls:g} calls")


def main() -> None:
    from durable.local import moto_patches

    print(f"log group: {RUNS * LINES:,} lines of {RUNS} runs in {STREAMS} streams (in process)")
    measure(patched=False)
    moto_patches.apply()
    try:
        measure(patched=True)
    finally:
        moto_patches.revert()


if __name__ == "__main__":
    main()
