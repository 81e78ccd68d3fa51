"""The larger fault sweep: every crash point on both backends, throttling at several rates,
delivery storms over more seeds. Prints the table the README's reliability section quotes.

    .venv/bin/python bench/fault_sweep.py            # or: make faults-sweep
    .venv/bin/python bench/fault_sweep.py --quick    # memory only, fewer seeds

Each line: what was tried, and how many runs completed as the uncrashed run did, were
lost (never finished), failed (ended otherwise than uncrashed) or executed a side effect
twice beyond at-least-once (after its checkpoint was written).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.faults import test_delivery, test_throttling
from tests.faults.test_crash_points import sweep_crash_points
from tests.faults.workflows import REFERENCE_TASKS

from durable.faults import Faults
from durable.testing import MotoBackend


def crash_points(backends: list[str], moto: MotoBackend) -> list[dict[str, Any]]:
    rows = []
    for backend in backends:
        for task_id in REFERENCE_TASKS:
            started = time.monotonic()
            tally = sweep_crash_points(task_id, backend, moto=moto if backend == "moto" else None)  # type: ignore[arg-type]
            rows.append(
                {
                    "part": f"crash before/after each AWS call, {task_id}",
                    "backend": backend,
                    "tried": tally["tried"],
                    "completed": tally["completed"],
                    "lost": tally["lost"],
                    "failed": tally["failed"],
                    "double": tally["double"],
                    "seconds": time.monotonic() - started,
                }
            )
            for problem in tally["problems"][:5]:
                print("   ", problem)
    return rows


def throttling(backends: list[str], rates: list[tuple[float, float]]) -> list[dict[str, Any]]:
    rows = []
    calm = test_throttling.play_many("memory", None)
    for backend in backends:
        for dynamodb, sqs in rates:
            started = time.monotonic()
            faults = Faults(seed=int(dynamodb * 1000)).throttle("dynamodb", dynamodb)
            faults.server_error("sqs", sqs).server_error("s3", sqs)
            stormy = test_throttling.play_many(backend, faults)  # type: ignore[arg-type]
            extra = stormy["effects"] - calm["effects"]
            unexplained = extra - stormy["lost_effects"]
            rows.append(
                {
                    "part": f"{dynamodb * 100:g} % DynamoDB throttled, {sqs * 100:g} % "
                    f"SQS/S3 500s, {test_throttling.RUNS} runs",
                    "backend": backend,
                    "tried": test_throttling.RUNS,
                    "completed": test_throttling.RUNS - stormy["lost"] - len(stormy["unexpected"]),
                    "lost": stormy["lost"],
                    "failed": len(stormy["unexpected"]),
                    "double": sum(unexplained.values())
                    + sum(abs(stormy["runs"][k] - calm["runs"][k]) for k in calm["runs"]),
                    "seconds": time.monotonic() - started,
                }
            )
    return rows


def storms(backends: list[str], seeds: int, moto: MotoBackend) -> list[dict[str, Any]]:
    rows = []
    for backend in backends:
        started = time.monotonic()
        tried = completed = double = 0
        for task_id in REFERENCE_TASKS:
            shared = moto if backend == "moto" else None
            calm = test_delivery.play(task_id, backend, None, shared)  # type: ignore[arg-type]
            for seed in range(seeds):
                stormy = test_delivery.play(task_id, backend, seed, shared)  # type: ignore[arg-type]
                tried += 1
                same = all(stormy[k] == calm[k] for k in ("status", "result", "runs"))
                completed += same
                double += stormy["effects"] != calm["effects"]
        rows.append(
            {
                "part": f"every message 3x + a late copy, {seeds} seeds x 4 workflows",
                "backend": backend,
                "tried": tried,
                "completed": completed,
                "lost": 0,
                "failed": tried - completed,
                "double": double,
                "seconds": time.monotonic() - started,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="memory only, fewer seeds")
    args = parser.parse_args()
    backends = ["memory"] if args.quick else ["memory", "moto"]
    rates = (
        [(0.01, 0.005), (0.10, 0.05)] if args.quick else [(0.01, 0.005), (0.10, 0.05), (0.30, 0.15)]
    )
    with MotoBackend() as moto:
        rows = crash_points(backends, moto)
        rows += throttling(backends, rates)
        rows += storms(backends, 3 if args.quick else 10, moto)
    print()
    print("| part | backend | tried | completed | lost | failed | double-executed | s |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['part']} | {row['backend']} | {row['tried']} | {row['completed']} | "
            f"{row['lost']} | {row['failed']} | {row['double']} | {row['seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()
