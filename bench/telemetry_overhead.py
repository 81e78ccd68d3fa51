"""What monitoring costs a worker invocation: metrics (one EMF line) and X-Ray subsegments.

Run:  .venv/bin/python bench/telemetry_overhead.py [--runs 400]

Each run is one invocation of a task of ten steps on the memory adapters (virtual clock),
through `Runtime.process_wake_up` as the worker handler calls it, in three modes:
- `off`: no metrics, no tracer (what `durable dev` and the test kit do);
- `metrics`: Powertools' EMF line per invocation (printed to /dev/null here);
- `metrics+tracing`: also an X-Ray subsegment per invocation and per step (a real
  aws_xray_sdk recorder; its documents go to an emitter that drops them).
The modes take turns, run by run, so that the machine's drift falls on all three alike.
Prints the median and p95 wall time per invocation and the difference from `off`. Nothing
here asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import time
from typing import Any

from aws_lambda_powertools import Metrics
from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core.context import Context as XRayContext
from aws_xray_sdk.core.recorder import AWSXRayRecorder

from durable import Context, TaskRegistry, task
from durable.blobs.memory import MemoryBlobStore
from durable.bootstrap import Runtime
from durable.clock import VirtualClock
from durable.queues.memory import MemoryWakeQueue
from durable.storage.memory import MemoryRunStore

STEPS = 10


class DroppingEmitter:
    def send_entity(self, entity: Any) -> None:
        entity.serialize()  # what the UDP emitter does before sending

    def set_daemon_address(self, address: str) -> None:
        pass


class EnabledTracer:
    """What `recorder_of` reads from an enabled Powertools tracer (an enabled Tracer would
    patch botocore and configure the process's global recorder)."""

    disabled = False

    def __init__(self, provider: AWSXRayRecorder) -> None:
        self.provider = provider


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args()

    registry = TaskRegistry()

    @task(id="ten-steps", registry=registry)
    def ten_steps(ctx: Context, payload: None) -> int:
        return sum(ctx.step(f"s{i}", lambda i=i: i) for i in range(STEPS))

    clock = VirtualClock()
    queue = MemoryWakeQueue(clock)
    runtime = Runtime.from_parts(
        store=MemoryRunStore(), queue=queue, blobs=MemoryBlobStore(), clock=clock, registry=registry
    )
    global_sdk_config.set_sdk_enabled(True)
    recorder = AWSXRayRecorder()
    recorder.configure(
        sampling=False,
        context=XRayContext(),
        emitter=DroppingEmitter(),
        context_missing="LOG_ERROR",
    )
    metrics = Metrics(namespace="durable", service="durable")
    modes: dict[str, tuple[Metrics | None, Any]] = {
        "off": (None, None),
        "metrics": (metrics, None),
        "metrics+tracing": (metrics, EnabledTracer(recorder)),
    }
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for _ in range(args.runs):
            for mode, (mode_metrics, tracer) in modes.items():
                runtime.client.trigger("ten-steps", None)
                message = queue.pop_due(clock.now())
                assert message is not None
                if tracer is not None:
                    recorder.begin_segment("worker")
                begun = time.perf_counter()
                outcome = runtime.process_wake_up(message.to_json(), None, mode_metrics, tracer)
                times[mode].append((time.perf_counter() - begun) * 1000)
                if tracer is not None:
                    recorder.end_segment()
                if mode_metrics is not None:
                    mode_metrics.clear_metrics()  # the handler's flush, for the wakeup_* counts
                assert outcome == "executed"

    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"# {args.runs} invocations per mode, {STEPS} steps each, memory adapters")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, rev {revision}")
    base = statistics.median(times["off"])
    print("| mode | median ms | p95 ms | median over off |")
    print("|---|---|---|---|")
    for mode, samples in times.items():
        median = statistics.median(samples)
        p95 = statistics.quantiles(samples, n=20)[-1]
        print(f"| {mode} | {median:.3f} | {p95:.3f} | {median - base:+.3f} ms |")


if __name__ == "__main__":
    main()
