"""What `GET /tasks` and the OpenAPI document cost, for the example tasks, in process.

Run:  .venv/bin/python -m bench.tasks_listing [--requests 200]

A fresh process (a cold Lambda container) works out every task's schemas and example on the
first `GET /tasks` and keeps them; later requests only copy them. The OpenAPI document,
with one trigger operation per task, is built on its first request and kept too. Printed:
the first request, the median and p95 of the next ones, the document's first build, and
the sizes of both answers. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="warm requests to time")
    args = parser.parse_args()

    import tasks  # noqa: F401  (registers the example tasks)
    from durable.api import handle
    from durable.local.gateway import build_event
    from durable.task import default_registry
    from durable.testing import TestEnvironment

    with TestEnvironment(registry=default_registry) as env:

        def get(path: str) -> tuple[float, int]:
            event = build_event(method="GET", target=path, headers=[], body=b"")
            started = time.perf_counter()
            response = handle(event, None, env.client)
            elapsed = time.perf_counter() - started
            assert response["statusCode"] == 200, response
            return elapsed, len(str(response["body"]).encode())

        first, listing_size = get("/tasks")
        warm = sorted(get("/tasks")[0] for _ in range(args.requests))
        document, document_size = get("/openapi.json")
        document_warm, _ = get("/openapi.json")

    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    count = len(default_registry.ids())
    print(f"GET /tasks, {count} example tasks, in process (memory backend)")
    print(f"  first request (schemas and examples worked out): {first * 1000:.1f} ms")
    print(
        f"  next {args.requests}: p50 {statistics.median(warm) * 1000:.2f} ms, "
        f"p95 {warm[int(len(warm) * 0.95) - 1] * 1000:.2f} ms; body {listing_size:,} bytes"
    )
    print(
        f"GET /openapi.json: first {document * 1000:.1f} ms, then {document_warm * 1000:.2f} ms;"
        f" body {document_size:,} bytes"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; revision {revision}; "
        f"command: .venv/bin/python -m bench.tasks_listing --requests {args.requests}"
    )


if __name__ == "__main__":
    main()
