"""What a fresh step attempt's input preview costs (`durable.operations.step_input`), in
process: microseconds a call for typical arguments, and for large ones that end as a note.

Run:  .venv/bin/python bench/step_input.py [--repeat 200]

Printed per case: the preview's median time a call, what it records (its bytes, or the
note), and for comparison the median time of `serialization.dumps` of the same arguments
(what encoding them whole would cost: the preview stops once its text passes 4 KB).
Nothing here asserts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from durable.operations.step_input import input_preview
from durable.serialization import dumps


class Order(BaseModel):
    order_id: str
    cents: int
    placed: datetime
    lines: list[dict[str, Any]]


def _median_us(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    options = parser.parse_args()
    order = Order(
        order_id="o-1",
        cents=2500,
        placed=datetime(2030, 1, 1, tzinfo=UTC),
        lines=[{"sku": f"sku-{n}", "qty": n} for n in range(3)],
    )
    rows = [{"row": n, "name": f"customer {n}"} for n in range(200_000)]
    cases: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("two ids", ("o-1", 2500), {}),
        ("a pydantic model + kwargs", (order,), {"currency": "EUR", "express": True}),
        ("a 3.9 KB string", ("x" * 4000,), {}),
        ("200,000 rows (6 MB as JSON)", (rows,), {}),
        ("models in a list (1,000)", ([order] * 1000,), {}),
    ]
    print(f"{'case':32} {'preview µs':>11} {'dumps µs':>10}  recorded")
    for name, args, kwargs in cases:
        text = input_preview(args, kwargs) or ""
        preview = _median_us(lambda a=args, k=kwargs: input_preview(a, k), options.repeat)
        whole = _median_us(
            lambda a=args, k=kwargs: dumps({"args": list(a), "kwargs": k}),
            max(3, options.repeat // 20),
        )
        shown = text if text.startswith('{"omitted"') else f"{len(text.encode())} bytes"
        print(f"{name:32} {preview:11.1f} {whole:10.1f}  {shown}")


if __name__ == "__main__":
    main()
