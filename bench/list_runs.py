"""The runs list (`GET /runs`) with 10,000 runs on in-process moto: load time and bytes a page.

Run:  .venv/bin/python bench/list_runs.py [--runs 10000] [--shards 64] [--repeat 5]

The table has the production shard count (64 by default): a page queries every shard of an
index and reads its runs with one BatchGetItem. Runs are stored directly (real run ids, one
a minute), over four tasks and four statuses, each with a 1 KB payload and (when finished)
a 1 KB result; the newest also has a 5 MB payload, in S3 (the issue's case). Each figure is
the median of `--repeat` (3) requests through the API's own code (`durable.api.handle`):

- a page of 50: the first, and one 100 pages deep (from the cursor a walk there ends on,
  made as the listing makes it; checked against the first page's);
- with the filters: task, status, both, and a creation-time range (one day in the middle);
- bytes a page "before" (the run bodies the list used to answer, payload and result
  included, decoded, the 5 MB blob read from S3) and "after" (the summaries it answers now).

In-process moto is one process answering one request at a time: the times say how the
listing scales (shard queries, pages deep, filters), not what DynamoDB answers in. Nothing
here asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from request_tally import counting_aws_requests

from durable.api import handle
from durable.api.models import RunBody
from durable.client import Client
from durable.clock import VirtualClock
from durable.ids import new_run_id
from durable.local.gateway import build_event
from durable.queues.memory import MemoryWakeQueue
from durable.records import ErrorInfo, RunRecord, RunStatus
from durable.storage._shards import ListingCursor
from durable.testing import MotoBackend
from durable.values import ValueCodec

T0 = datetime(2030, 1, 1, tzinfo=UTC)
TASKS = ("process-order", "send-email", "price-sku", "nightly-report")
STATUSES = [RunStatus.COMPLETED] * 7 + [RunStatus.FAILED, RunStatus.WAITING, RunStatus.QUEUED]
PAGE = 50


def make_runs(client: Client, count: int) -> list[str]:
    """`count` runs, one a minute from T0 (their ids, oldest first); the newest carries a
    5 MB payload."""
    made: list[str] = []
    small = {"order_id": "o-1", "lines": ["x" * 60] * 14}  # about 1 KB of JSON
    for n in range(count):
        created = T0 + timedelta(minutes=n)
        run_id = new_run_id(created)
        made.append(run_id)
        status = STATUSES[n % len(STATUSES)]
        payload: Any = {"blob": "y" * (5 * 1024 * 1024)} if n == count - 1 else small
        finished = status in (RunStatus.COMPLETED, RunStatus.FAILED)
        client.store.create_run(
            RunRecord(
                run_id=run_id,
                task_id=TASKS[n % len(TASKS)],
                status=status,
                payload=client.codec.encode(payload, f"{run_id}/payload"),
                created_at=created,
                updated_at=created,
                started_at=created,
                finished_at=created + timedelta(seconds=3) if finished else None,
                result=(
                    client.codec.encode(small, f"{run_id}/result")
                    if status is RunStatus.COMPLETED
                    else None
                ),
                error=ErrorInfo("ValueError", "bad card") if status is RunStatus.FAILED else None,
                waiting_for="approval" if status is RunStatus.WAITING else None,
            )
        )
    return made


def get(client: Client, query: dict[str, str]) -> tuple[float, dict[str, Any], int]:
    """One `GET /runs` through the API: (seconds, body, bytes)."""
    event = build_event(method="GET", target="/runs?" + urlencode(query), headers=[], body=b"")
    started = time.perf_counter()
    response = handle(event, None, client)
    elapsed = time.perf_counter() - started
    assert response["statusCode"] == 200, response["body"]
    text = str(response["body"])
    return elapsed, json.loads(text), len(text.encode())


def deep_cursor(client: Client, listing: dict[str, Any], after: str) -> str:
    """The cursor a listing's page ending at run `after` hands out (what walking there
    gives while no shard has run out: `durable.storage._shards.ListingCursor`)."""
    shards = client.store.index_shards
    return ListingCursor(after=after, done=frozenset()).encode({**listing, "shards": shards})


def timed(client: Client, query: dict[str, str], repeat: int) -> tuple[float, int, int, str]:
    """Median seconds, bytes, runs and DynamoDB requests (and read units) of a page over
    `repeat` requests."""
    with counting_aws_requests() as tally:
        results = [get(client, query) for _ in range(repeat)]
    _, body, size = results[-1]
    queries = tally.calls["dynamodb.Query"] / repeat
    batches = tally.calls["dynamodb.BatchGetItem"] / repeat
    requests = f"{queries:.0f} Query + {batches:.0f} BatchGet, {tally.rru / repeat:.1f} RRU"
    return statistics.median(r[0] for r in results), size, len(body["runs"]), requests


def old_page_bytes(client: Client, query: dict[str, Any]) -> tuple[float, int]:
    """What the list answered before summaries: full run bodies (payload, result)."""
    started = time.perf_counter()
    page = client.list(**query)
    text = json.dumps(
        {
            "runs": [RunBody.of(view).model_dump(mode="json") for view in page.runs],
            "next_cursor": page.next_cursor,
        }
    )
    return time.perf_counter() - started, len(text.encode())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    with MotoBackend(index_shards=args.shards) as moto:
        store, blobs = moto.fresh()
        clock = VirtualClock(T0 + timedelta(minutes=args.runs))
        client = Client(
            store=store, queue=MemoryWakeQueue(clock), codec=ValueCodec(blobs), clock=clock
        )
        started = time.perf_counter()
        made = make_runs(client, args.runs)
        print(
            f"stored {args.runs:,} runs on in-process moto ({args.shards} index shards) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        limit = {"limit": str(PAGE)}
        middle = T0 + timedelta(minutes=args.runs // 2)
        window = {
            "created_after": middle.isoformat(),
            "created_before": (middle + timedelta(days=1)).isoformat(),
        }
        scenarios: list[tuple[str, dict[str, str]]] = [
            ("first page", limit),
            ("first page, task", {**limit, "task_id": TASKS[0]}),
            ("first page, status COMPLETED", {**limit, "status": "COMPLETED"}),
            ("first page, task + status", {**limit, "task_id": TASKS[1], "status": "COMPLETED"}),
            ("first page, one day's range", {**limit, **window}),
            ("first page, range + task", {**limit, **window, "task_id": TASKS[2]}),
        ]
        # Page 101 of the whole list starts after its 5,000th run (newest first): its cursor
        # is made as the listing makes one, checked against the first page's.
        deep_pages = min(100, args.runs // PAGE - 1)
        newest_first = made[::-1]
        no_filter = {"task": None, "status": None}
        deep = deep_cursor(client, no_filter, newest_first[deep_pages * PAGE - 1])
        handed_out = get(client, limit)[1]["next_cursor"]
        listing = {**no_filter, "shards": client.store.index_shards}
        after = ListingCursor.decode(handed_out, listing, client.store.index_shards).after
        assert after == newest_first[PAGE - 1], "the cursor format changed"
        scenarios.append(
            (f"page {deep_pages + 1} (runs {deep_pages * PAGE + 1:,}+)", {**limit, "cursor": deep})
        )
        of_task = [run_id for n, run_id in enumerate(made) if n % len(TASKS) == 3][::-1]
        task_pages = min(deep_pages // 4, len(of_task) // PAGE - 1)
        if task_pages >= 1:  # a deep page of one task's runs (25 pages in, with 10,000)
            task_deep = deep_cursor(
                client, {"task": TASKS[3], "status": None}, of_task[task_pages * PAGE - 1]
            )
            scenarios.append(
                (
                    f"page {task_pages + 1}, task",
                    {**limit, "task_id": TASKS[3], "cursor": task_deep},
                )
            )

        print(f"\nGET /runs, a page of {PAGE}, median of {args.repeat}:")
        print(f"  {'listing':<30} {'ms':>8} {'bytes':>7} {'runs':>4}  DynamoDB requests")
        for name, query in scenarios:
            seconds, size, count, requests = timed(client, query, args.repeat)
            print(f"  {name:<30} {seconds * 1000:8.0f} {size:7,} {count:4}  {requests}", flush=True)

        print("\nbytes of the first page, before (run bodies) and after (summaries):")
        before_s, before = old_page_bytes(client, {"limit": PAGE})
        after_s, after, _, _ = timed(client, limit, args.repeat)
        print(f"  before: {before:>12,} bytes  ({before_s * 1000:.0f} ms, payloads decoded)")
        print(f"  after:  {after:>12,} bytes  ({after_s * 1000:.0f} ms)")
        _, deep_before = old_page_bytes(client, {"limit": PAGE, "cursor": deep})
        _, _, deep_after = get(client, {**limit, "cursor": deep})
        print(f"  page {deep_pages + 1}: {deep_before:,} bytes before, {deep_after:,} after")
    print(f"\ncommand: .venv/bin/python bench/list_runs.py {' '.join(argv)}".rstrip())


if __name__ == "__main__":
    main(sys.argv[1:])
