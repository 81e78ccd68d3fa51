"""A bulk cancel of 10,000 waiting runs in `durable dev`: how long until the job completes.

Run:  .venv/bin/python bench/bulk_cancel.py [--runs 10000] [--others 1000]
      (or `make bench-bulk`)

Starts `durable dev --ephemeral` as a subprocess (its moto server, its worker pool), with
the example tasks, then:

1. writes `--runs` WAITING runs of `approval-gate` (waiting for their approval event, as
   a run that called `wait_for_event` is) and `--others` WAITING runs of `process-order`
   into the dev server's table through the store's own item layout, in batches of 25
   (`BatchWriteItem` to its moto, every index key as `create_run` writes it), one a
   second back from now; no `wake_at`, so the sweeper leaves them alone;
2. `POST /bulk {"action": "cancel", "filter": {"task_id": "approval-gate", "status":
   "WAITING"}}` and polls `GET /bulk/{id}` every two seconds, printing its progress,
   until the job is done;
3. prints the total time, runs cancelled a second, the job's counts, the AWS requests
   moto served per run cancelled, and checks a sample: each cancelled, with its audit
   entry, and the other task's runs untouched.

Everything runs on this one machine (the API, moto, the workers share its cores; moto
serves one request at a time): the figures are what `durable dev` does, not DynamoDB.
Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import httpx
from dev_throughput import moto_requests, start_dev, stop_dev

from durable.ids import new_run_id
from durable.records import RunRecord, RunStatus
from durable.storage.dynamodb import DynamoDBRunStore

TARGET = "approval-gate"
OTHER = "process-order"


def fill(info: dict[str, str], runs: int, others: int, now: datetime) -> tuple[list[str], float]:
    """`runs` waiting runs of TARGET and `others` of OTHER; the target ids, and seconds."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    store = DynamoDBRunStore(
        info["table_name"], region=info["region"], endpoint_url=info["moto_url"]
    )
    targets: list[str] = []
    started = time.perf_counter()
    with store._models.run.batch_write() as batch:
        for n in range(runs + others):
            created = now - timedelta(seconds=n + 1)
            run_id = new_run_id(created)
            target = n < runs
            if target:
                targets.append(run_id)
            run = RunRecord(
                run_id=run_id,
                task_id=TARGET if target else OTHER,
                status=RunStatus.WAITING,
                payload=json.dumps({"request_id": f"r-{n}"}),
                created_at=created,
                updated_at=created,
                started_at=created,
                waiting_for="approval" if target else "queue:none",
                checkpoints=1,
            )
            batch.save(store._run_item(run))
    return targets, time.perf_counter() - started


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--others", type=int, default=1_000)
    parser.add_argument("--sample", type=int, default=50)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="durable-bulk-bench-") as scratch:
        dev = start_dev(2, ["--tasks", "tasks", "--quiet"], os.path.join(scratch, "f"))
        try:
            api = httpx.Client(base_url=dev.url, timeout=60)
            info = api.get("/.well-known/durable-dev").json()
            targets, seconds = fill(info, args.runs, args.others, datetime.now(UTC))
            print(
                f"stored {args.runs:,} waiting {TARGET} runs and {args.others:,} waiting "
                f"{OTHER} runs in durable dev's table in {seconds:.1f} s",
                flush=True,
            )
            before = moto_requests(dev.moto_url)
            started = time.perf_counter()
            reply = api.post(
                "/bulk",
                json={"action": "cancel", "filter": {"task_id": TARGET, "status": "WAITING"}},
                headers={"x-durable-caller": "bench"},
            )
            assert reply.status_code == 202, reply.text
            job_id = reply.json()["job_id"]
            while True:
                time.sleep(2)
                job = api.get(f"/bulk/{job_id}").json()
                elapsed = time.perf_counter() - started
                print(
                    f"  {elapsed:6.0f} s  {job['state']:<9} matched {job['matched']:>6,}  "
                    f"acted {job['acted']:>6,}  skipped {job['skipped']:>4}  "
                    f"errors {job['errors']}",
                    flush=True,
                )
                if job["done"]:
                    break
            total = time.perf_counter() - started
            after = moto_requests(dev.moto_url)
            print(
                f"\nbulk cancel of {job['acted']:,} runs: {total:.0f} s "
                f"({total / 60:.1f} min), {job['acted'] / total:.0f} runs/s; "
                f"job {job['state']}, matched {job['matched']:,}, skipped {job['skipped']}, "
                f"errors {job['errors']} {job['error_messages']}"
            )
            dynamo = {
                op.split()[-1]: after[op] - before.get(op, 0)
                for op in after
                if op.startswith("dynamodb") and after[op] - before.get(op, 0)
            }
            if dynamo and job["acted"]:
                per_run = ", ".join(
                    f"{count / job['acted']:.1f} {op}" for op, count in sorted(dynamo.items())
                )
                print(f"DynamoDB requests a run cancelled (moto's counter): {per_run}")
            sample = random.Random(7).sample(targets, min(args.sample, len(targets)))
            cancelled = sum(
                api.get(f"/runs/{run_id}").json()["status"] == "CANCELLED" for run_id in sample
            )
            audited = sum(
                any(
                    entry.get("kind") == "run_action" and entry.get("name") == "cancel"
                    for entry in api.get(f"/runs/{run_id}/history").json()["history"]
                )
                for run_id in sample
            )
            others = api.get(
                "/runs", params={"task_id": OTHER, "status": "WAITING", "limit": "1000"}
            ).json()["runs"]
            print(
                f"sample of {len(sample)}: {cancelled} cancelled, {audited} with their audit "
                f"entry; {OTHER}: {len(others):,} still waiting (of {args.others:,})"
            )
        finally:
            stop_dev(dev)
    print(f"\ncommand: .venv/bin/python bench/bulk_cancel.py {' '.join(argv)}".rstrip())


if __name__ == "__main__":
    main(sys.argv[1:])
