"""Finding runs by tag and finish time (`GET /runs?tag=...`), and what tags cost a trigger.

Run:  .venv/bin/python bench/search.py [--runs 2000] [--shards 64] [--repeat 3]

On in-process moto with the production shard count. Runs are stored directly (real run
ids, one a minute) over four tasks, every one tagged `tenant:<n % 20>` (100 runs a
tenant with the default 2,000: a run stored with its tags is a transaction, which
in-process moto makes slow), one in 100 also `vip`; 7 in 10 completed, finished 3 s
after their creation. Each figure is the median of `--repeat` requests through the API's code, with
the DynamoDB requests they made (`request_tally`): a tag listing queries every shard of
`by-task` under the tag's key, then reads its page with one BatchGetItem; a tag with a
task, or a finish-time range, checks the runs it reads, at most 1,000 index entries a
page. Then the write side: a trigger through the client with 0, 3 and 10 tags (requests,
write units as `request_tally` estimates them: a transaction's items count double).
In-process moto answers one request at a time: the times show how a listing scales, not
what DynamoDB answers in. Nothing here asserts.
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

from durable import Context, TaskRegistry, task
from durable.api import handle
from durable.client import Client
from durable.clock import VirtualClock
from durable.ids import new_run_id
from durable.local.gateway import build_event
from durable.queues.memory import MemoryWakeQueue
from durable.records import RunRecord, RunStatus
from durable.testing import MotoBackend
from durable.values import ValueCodec

T0 = datetime(2030, 1, 1, tzinfo=UTC)
TASKS = ("process-order", "send-email", "price-sku", "nightly-report")
STATUSES = [RunStatus.COMPLETED] * 7 + [RunStatus.FAILED, RunStatus.WAITING, RunStatus.QUEUED]
PAGE = 50


def make_runs(client: Client, count: int) -> None:
    for n in range(count):
        created = T0 + timedelta(minutes=n)
        status = STATUSES[n % len(STATUSES)]
        finished = status in (RunStatus.COMPLETED, RunStatus.FAILED)
        client.store.create_run(
            RunRecord(
                run_id=new_run_id(created),
                task_id=TASKS[n % len(TASKS)],
                status=status,
                payload='{"order_id": "o-1"}',
                created_at=created,
                updated_at=created,
                finished_at=created + timedelta(seconds=3) if finished else None,
                tags=(f"tenant:{n % 20}", *(["vip"] if n % 100 == 0 else [])),
            )
        )


def timed(client: Client, query: dict[str, str], repeat: int) -> tuple[float, int, str, bool]:
    """Median seconds, runs, DynamoDB requests of a page, and whether it has a cursor."""
    target = "/runs?" + urlencode(query)
    results = []
    with counting_aws_requests() as tally:
        for _ in range(repeat):
            event = build_event(method="GET", target=target, headers=[], body=b"")
            started = time.perf_counter()
            response = handle(event, None, client)
            results.append(time.perf_counter() - started)
            assert response["statusCode"] == 200, response["body"]
    body = json.loads(str(response["body"]))
    queries = tally.calls["dynamodb.Query"] / repeat
    batches = tally.calls["dynamodb.BatchGetItem"] / repeat
    requests = f"{queries:.0f} Query + {batches:.0f} BatchGet, {tally.rru / repeat:.1f} RRU"
    return statistics.median(results), len(body["runs"]), requests, bool(body["next_cursor"])


def trigger_cost(client: Client, tags: int) -> str:
    with counting_aws_requests() as tally:
        client.trigger("echo", {"n": tags}, tags=[f"t{i}" for i in range(tags)])
    calls = ", ".join(f"{n} {name}" for name, n in sorted(tally.calls.items()))
    return f"{calls}; {tally.wru:.0f} WRU"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2_000)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    registry = TaskRegistry()

    @task(id="echo", registry=registry)
    def echo(ctx: Context, payload: Any) -> Any:
        return payload

    with MotoBackend(index_shards=args.shards) as moto:
        store, blobs = moto.fresh()
        clock = VirtualClock(T0 + timedelta(minutes=args.runs))
        client = Client(
            store=store,
            queue=MemoryWakeQueue(clock),
            codec=ValueCodec(blobs),
            clock=clock,
            registry=registry,
        )
        started = time.perf_counter()
        make_runs(client, args.runs)
        print(
            f"stored {args.runs:,} tagged runs on in-process moto ({args.shards} index shards) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        limit = {"limit": str(PAGE)}
        middle = T0 + timedelta(minutes=args.runs // 2)
        day = {
            "finished_after": middle.isoformat(),
            "finished_before": (middle + timedelta(days=1)).isoformat(),
        }
        scenarios: list[tuple[str, dict[str, str]]] = [
            ("tag tenant:3 (1 run in 20)", {**limit, "tag": "tenant:3"}),
            ("tag vip (1 in 100)", {**limit, "tag": "vip"}),
            ("tag + status COMPLETED", {**limit, "tag": "tenant:3", "status": "COMPLETED"}),
            ("tag + task, matching all", {**limit, "tag": "tenant:3", "task_id": TASKS[3]}),
            ("tag + task, matching none", {**limit, "tag": "tenant:3", "task_id": TASKS[0]}),
            ("finished in one day", {**limit, **day}),
            ("finished in a day + COMPLETED", {**limit, **day, "status": "COMPLETED"}),
            ("finished before (1st day)", {**limit, "finished_before": day["finished_after"]}),
        ]
        print(f"\nGET /runs, a page of {PAGE}, median of {args.repeat}:")
        print(f"  {'listing':<32} {'ms':>7} {'runs':>4} {'more':>4}  DynamoDB requests")
        for name, query in scenarios:
            seconds, count, requests, more = timed(client, query, args.repeat)
            print(
                f"  {name:<32} {seconds * 1000:7.0f} {count:4} {'yes' if more else 'no':>4}"
                f"  {requests}",
                flush=True,
            )

        print("\na trigger (run item, claim-less), by its tags:")
        for tags in (0, 3, 10):
            print(f"  {tags:2} tags: {trigger_cost(client, tags)}")


if __name__ == "__main__":
    main(sys.argv[1:])
