"""What a user of `durable dev` waits for with 10,000 runs: `GET /runs` and the dashboard.

Run:  .venv/bin/python bench/dashboard_load.py [--runs 10000] [--steps 200] [--repeat 5]
                                                [--loads 5] [--no-browser]
      (or `make bench-dashboard`)

Starts `durable dev --ephemeral` as a subprocess (its moto server with the patches
`durable.local.moto_patches`, its table with `DEV_INDEX_SHARDS` index shards, its worker
pool), with the example tasks and `bench/dashboard_tasks.py`, then:

1. triggers one `bench-many-steps` run (`--steps` steps, every 20th failing once, a sleep
   halfway, a log line every ten steps) through the API and waits for it to complete;
2. writes `--runs` runs into the dev server's table through the store's own item layout,
   in batches of 25 (`BatchWriteItem` to its moto: every index key as `create_run` writes
   it), one a minute back from now, over four tasks and seven statuses, each with a 1 KB
   payload and (when completed) a 1 KB result; every 100th has a 64 KB payload (kept in
   the item) and every 1,000th a 1 MB one (in S3, through the codec). Active runs get no
   `wake_at` and finished ones no `expires_at`, so the sweeper leaves them alone;
3. times `GET /runs?limit=50` over HTTP (median of `--repeat`): the first page, pages 2 to
   100 walked by the cursors the API hands out (the median of the walk, and page 100 again),
   filtered by task, by status, by both, by one day's creation range; with the bytes of
   each answer and the AWS requests it made (moto's request counter);
4. times what the run page reads (`GET /runs/{id}`, its timeline and its logs) and what the
   metrics panel reads (`GET /metrics`: the active statuses counted from the status index);
5. (unless `--no-browser`) opens the dashboard in Debian's Chromium driven by Playwright (as
   tests/e2e do), `--loads` times each: "/" until the runs table holds its first page (25
   rows) and until the metrics panel is drawn; "/runs/{id}" of the many-step run until its
   timeline has a lane per operation; the median and the slowest.

Everything runs on this one machine (the API, moto, the workers and the browser share its
cores): the figures are what `durable dev` answers, not DynamoDB. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
from dev_throughput import DevProcess, moto_requests, start_dev, stop_dev

from durable.blobs.s3 import S3BlobStore
from durable.ids import new_run_id
from durable.records import ErrorInfo, RunRecord, RunStatus
from durable.storage.dynamodb import DynamoDBRunStore
from durable.values import ValueCodec

TASKS = ("process-order", "send-email", "price-sku", "nightly-report")
STATUSES = (
    [RunStatus.COMPLETED] * 12
    + [RunStatus.FAILED] * 3
    + [RunStatus.CANCELLED, RunStatus.TIMED_OUT, RunStatus.WAITING, RunStatus.QUEUED]
)
PAGE = 50
DASHBOARD_PAGE = 25  # the dashboard's own page size (its "per page" select)
MANY_STEPS = "bench-many-steps"


# -- filling the table ---------------------------------------------------------------------


def fill(info: dict[str, str], count: int, now: datetime) -> tuple[list[str], float]:
    """`count` runs in the dev server's table, newest one minute before `now`; their ids
    (newest first) and the seconds it took."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    store = DynamoDBRunStore(
        info["table_name"], region=info["region"], endpoint_url=info["moto_url"]
    )
    s3 = boto3.client("s3", region_name=info["region"], endpoint_url=info["moto_url"])
    codec = ValueCodec(S3BlobStore(info["bucket_name"], client=s3))
    small = {"order_id": "o-1", "lines": ["x" * 60] * 14}  # about 1 KB of JSON
    medium = {"order_id": "o-2", "blob": "m" * (64 * 1024)}
    large = {"order_id": "o-3", "blob": "L" * (1024 * 1024)}
    made: list[str] = []
    started = time.perf_counter()
    with store._models.run.batch_write() as batch:
        for n in range(count):
            created = now - timedelta(minutes=n + 1)
            run_id = new_run_id(created)
            made.append(run_id)
            status = STATUSES[n % len(STATUSES)]
            payload: Any = large if n % 1000 == 999 else medium if n % 100 == 99 else small
            finished = status.value in {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
            run = RunRecord(
                run_id=run_id,
                task_id=TASKS[n % len(TASKS)],
                status=status,
                payload=codec.encode(payload, f"{run_id}/payload"),
                created_at=created,
                updated_at=created + timedelta(seconds=3),
                started_at=created if status is not RunStatus.QUEUED else None,
                finished_at=created + timedelta(seconds=3) if finished else None,
                result=(
                    codec.encode(small, f"{run_id}/result")
                    if status is RunStatus.COMPLETED
                    else None
                ),
                error=ErrorInfo("ValueError", "bad card") if status is RunStatus.FAILED else None,
                waiting_for="approval" if status is RunStatus.WAITING else None,
            )
            batch.save(store._run_item(run))
    return made, time.perf_counter() - started


# -- the API -------------------------------------------------------------------------------


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f}"


def timed_get(
    api: httpx.Client, path: str, params: dict[str, str], repeat: int, moto_url: str
) -> tuple[list[float], httpx.Response, dict[str, int]]:
    """`repeat` GETs: their seconds, the last answer, moto requests per GET."""
    before = moto_requests(moto_url)
    seconds = []
    response = None
    for _ in range(repeat):
        started = time.perf_counter()
        response = api.get(path, params=params)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    after = moto_requests(moto_url)
    assert response is not None
    # DynamoDB only (the workers' SQS polls are counted too); the sweeper's queries (every
    # 2 s) may land among them.
    per_get = {
        op.split()[-1]: round((after[op] - before.get(op, 0)) / repeat)
        for op in after
        if op.startswith("dynamodb") and round((after[op] - before.get(op, 0)) / repeat)
    }
    return seconds, response, per_get


def requests_text(per_get: dict[str, int]) -> str:
    return ", ".join(f"{count} {op}" for op, count in sorted(per_get.items())) or "none"


def measure_api(dev: DevProcess, middle: datetime, repeat: int, run_id: str) -> None:
    """`GET /runs` pages and filters; what the run page of `run_id` reads. `middle`: a
    creation time halfway through the runs stored."""
    api = httpx.Client(base_url=dev.url, timeout=120)
    limit = {"limit": str(PAGE)}
    window = {
        "created_after": (middle - timedelta(hours=12)).isoformat(),
        "created_before": (middle + timedelta(hours=12)).isoformat(),
    }
    print(f"\nGET /runs?limit={PAGE} over HTTP, median of {repeat}:")
    print(f"  {'listing':<34} {'ms':>7} {'bytes':>7} {'runs':>4}  DynamoDB requests a page")

    def line(name: str, params: dict[str, str], times: int = repeat) -> httpx.Response:
        seconds, response, per_get = timed_get(api, "/runs", params, times, dev.moto_url)
        runs = len(response.json()["runs"])
        size = len(response.content)
        print(
            f"  {name:<34} {median_ms(seconds)} {size:7,} {runs:4}  {requests_text(per_get)}",
            flush=True,
        )
        return response

    first = line("first page", limit)
    # Pages 2 to 100, walked by the cursors the API hands out.
    cursor = first.json()["next_cursor"]
    walk: list[float] = []
    cursor_of_100 = None
    for page in range(2, 101):
        if cursor is None:
            break
        if page == 100:
            cursor_of_100 = cursor
        started = time.perf_counter()
        response = api.get("/runs", params={**limit, "cursor": cursor})
        walk.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        cursor = response.json()["next_cursor"]
    if walk:
        print(
            f"  {'pages 2-' + str(len(walk) + 1) + ' walked by cursor':<34} "
            f"{median_ms(walk)}  (slowest {max(walk) * 1000:.0f} ms)",
            flush=True,
        )
    if cursor_of_100:
        line("page 100 (runs 4,951+)", {**limit, "cursor": cursor_of_100})
    line(f"task {TASKS[0]}", {**limit, "task_id": TASKS[0]})
    line("status COMPLETED", {**limit, "status": "COMPLETED"})
    line("status WAITING", {**limit, "status": "WAITING"})
    line("task + status FAILED", {**limit, "task_id": TASKS[1], "status": "FAILED"})
    line("one day's creation range", {**limit, **window})
    line("range + task", {**limit, **window, "task_id": TASKS[2]})

    print(f"\nwhat the run page of {run_id} reads, and the metrics panel, median of {repeat}:")
    for path in (
        f"/runs/{run_id}",
        f"/runs/{run_id}/timeline",
        f"/runs/{run_id}/logs",
        "/metrics",
    ):
        seconds, response, per_get = timed_get(api, path, {}, repeat, dev.moto_url)
        print(
            f"  GET {path.replace(run_id, '{id}'):<26} {median_ms(seconds)} ms "
            f"{len(response.content):9,} bytes  {requests_text(per_get)}",
            flush=True,
        )


# -- the browser ---------------------------------------------------------------------------


def measure_browser(dev: DevProcess, run_id: str, operations: int, loads: int) -> None:
    sys.path.insert(0, str(ROOT))
    from playwright import sync_api
    from tests.e2e.browser import CHROMIUM, SCREEN

    rows = f"document.querySelectorAll('#runs tr').length >= {DASHBOARD_PAGE}"
    metrics = "document.querySelector('#metrics .metrics-grid') !== null"
    lanes = f"document.querySelectorAll('#timeline .tl-lane').length >= {operations}"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:

            def load(url: str, *conditions: str) -> list[float]:
                """Seconds from navigation until each condition holds, in a fresh tab."""
                page = browser.new_page(viewport=SCREEN)
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                try:
                    started = time.perf_counter()
                    page.goto(url, wait_until="commit")
                    found = []
                    for condition in conditions:
                        page.wait_for_function(condition, timeout=120_000, polling=10)
                        found.append(time.perf_counter() - started)
                    assert not errors, errors
                    return found
                finally:
                    page.close()

            load(dev.url + "/", rows)  # warm: the static files, the browser's first tab
            home = [load(dev.url + "/", rows, metrics) for _ in range(loads)]
            run = [load(f"{dev.url}/runs/{run_id}", lanes)[0] for _ in range(loads)]
        finally:
            browser.close()

    def figure(values: list[float]) -> str:
        return f"median {median_ms(values)} ms, slowest {max(values) * 1000:6.0f} ms"

    print(f"\nthe dashboard in Chromium (Playwright), {loads} loads each, a fresh tab each:")
    print(f"  /  until the runs table shows {DASHBOARD_PAGE} rows:  {figure([h[0] for h in home])}")
    print(f"  /  until the metrics panel is drawn:   {figure([h[1] for h in home])}")
    print(f"  /runs/{{id}} until {operations} timeline lanes:   {figure(run)}")


# -- main ----------------------------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.5)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="durable-dashboard-bench-") as scratch:
        dev = start_dev(
            2, ["--tasks", "tasks,bench.dashboard_tasks", "--quiet"], os.path.join(scratch, "f")
        )
        try:
            api = httpx.Client(base_url=dev.url, timeout=60)
            info = api.get("/.well-known/durable-dev").json()
            started = time.perf_counter()
            reply = api.post(
                f"/tasks/{MANY_STEPS}/runs",
                json={"payload": {"dir": scratch, "steps": args.steps}},
            )
            assert reply.status_code == 202, reply.text
            run_id = reply.json()["run_id"]

            def finished() -> bool:
                status = api.get(f"/runs/{run_id}").json()["status"]
                if status in {"FAILED", "CANCELLED", "TIMED_OUT"}:
                    sys.exit(f"the many-step run ended {status}")
                return bool(status == "COMPLETED")

            wait_until(finished, 600, "the many-step run")
            timeline = api.get(f"/runs/{run_id}/timeline").json()
            operations = len(timeline["operations"])
            print(
                f"a {MANY_STEPS} run of {args.steps} steps ({operations} operations) completed "
                f"in {time.perf_counter() - started:.1f} s"
            )
            now = datetime.now(UTC)
            _, seconds = fill(info, args.runs, now)
            print(
                f"stored {args.runs:,} runs in durable dev's table (moto {info['moto_url']}) "
                f"in {seconds:.1f} s"
            )
            measure_api(dev, now - timedelta(minutes=args.runs // 2), args.repeat, run_id)
            if not args.no_browser:
                measure_browser(dev, run_id, operations, args.loads)
        finally:
            stop_dev(dev)
    print(f"\ncommand: .venv/bin/python bench/dashboard_load.py {' '.join(argv)}".rstrip())


if __name__ == "__main__":
    main(sys.argv[1:])
