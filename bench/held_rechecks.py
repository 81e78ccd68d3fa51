"""What a held run costs: AWS calls of the invocation that holds it, of each recheck while
the same code is deployed, and of the replay once a fix is.

Run:  .venv/bin/python bench/held_rechecks.py [RUNS]

RUNS runs (default 50) of a task with two steps and an hour's sleep are recorded by v1 on
moto (the test kit's backend, virtual clock); v2, which renames a step, is deployed and
their sleep ends: each is held. Then the sweeper's recheck comes (5 minutes later) with v2
still deployed, then again after v3 (the rename behind `ctx.patched`) is deployed. The AWS
calls of each phase are counted at botocore (`durable.faults.Faults`, injecting nothing),
by service and operation, per run; the sweeper's own queries (one per index shard and
page, whatever the number of runs) are shown apart. Nothing here asserts.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from durable import Context, TaskRegistry, task
from durable.faults import Faults
from durable.testing import TestEnvironment

TASK = "bench-held"


def v1(ctx: Context, payload: Any) -> str:
    ctx.step("reserve", lambda: 1)
    ctx.step("charge", lambda: 2)
    ctx.sleep("cool-off", timedelta(hours=1))
    ctx.step("ship", lambda: 3)
    return "shipped"


def v2(ctx: Context, payload: Any) -> str:  # the charge step renamed
    ctx.step("reserve", lambda: 1)
    ctx.step("charge-card", lambda: 2)
    ctx.sleep("cool-off", timedelta(hours=1))
    ctx.step("ship", lambda: 3)
    return "shipped"


def v3(ctx: Context, payload: Any) -> str:  # the rename behind ctx.patched
    ctx.step("reserve", lambda: 1)
    if ctx.patched("charge-card"):
        ctx.step("charge-card", lambda: 2)
    else:
        ctx.step("charge", lambda: 2)
    ctx.sleep("cool-off", timedelta(hours=1))
    ctx.step("ship", lambda: 3)
    return "shipped"


def deployed(fn: Any) -> TaskRegistry:
    registry = TaskRegistry()
    task(id=TASK, registry=registry)(fn)
    return registry


def measure(faults: Faults, runs: int, label: str, action: Any) -> None:
    first = len(faults.log)
    began = time.perf_counter()
    action()
    seconds = time.perf_counter() - began
    calls = Counter(f"{call.service}:{call.operation}" for call in faults.log[first:])
    total = sum(calls.values()) / runs
    print(f"{label}: {total:.2f} calls per run ({seconds * 1000 / runs:.1f} ms per run on moto)")
    for name, count in sorted(calls.items()):
        print(f"    {name:40} {count / runs:.2f}   ({count} in all)")


def main(runs: int) -> None:
    faults = Faults()
    with TestEnvironment(backend="moto", registry=deployed(v1), faults=faults) as env:
        ids = [env.trigger(TASK, {"n": n}).run_id for n in range(runs)]
        env.run_until_idle()
        env.deploy(deployed(v2))
        env.advance(timedelta(minutes=59, seconds=59))  # the sleep's hops: not the hold's
        holding = "the invocation that holds a run (the sleep's end)"
        measure(faults, runs, holding, lambda: env.advance(timedelta(seconds=1)))
        held = sum(env.get(run_id).waiting_for == "fix:nondeterminism" for run_id in ids)

        def sweep() -> None:
            env.clock.set(env.now() + timedelta(minutes=5, seconds=1))
            env.sweep()

        measure(faults, runs, "the sweep that finds them due (one per recheck)", sweep)
        measure(faults, runs, "a recheck, the same code deployed (no replay)", env.run_until_idle)
        env.deploy(deployed(v3))
        measure(faults, runs, "the next sweep", sweep)
        fixed = "the recheck after a fix is deployed (replay, ship, end)"
        measure(faults, runs, fixed, env.run_until_idle)
        done = sum(env.get(run_id).status == "COMPLETED" for run_id in ids)
    print(f"{runs} runs: {held} held, then {done} completed")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
