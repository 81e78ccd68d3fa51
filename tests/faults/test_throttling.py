"""Faults above botocore's retries: 10 % of DynamoDB calls throttled, 5 % of SQS sends
failing with a 500, and some of S3's, while 50 runs of the reference workflows go on.

All complete as they would without faults; none fails, none starts a duplicate child. A
step runs again only when the write of its checkpoint failed after its side effect (the
invocation ends there, at least once): each such re-run is matched to its failed write.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from durable import TaskRegistry
from durable.errors import CallbackAlreadyCompletedError
from durable.faults import Faults
from durable.records import RunStatus
from durable.testing import Backend, TestEnvironment

from .conftest import Production
from .workflows import PAYLOADS, Effects, register

RUNS = 50
MIX = ["ref-steps", "ref-waits", "ref-children", "ref-saga"]
EXPECTED = {
    "ref-steps": RunStatus.COMPLETED,
    "ref-waits": RunStatus.COMPLETED,
    "ref-children": RunStatus.COMPLETED,
    "ref-saga": RunStatus.FAILED,  # by design: its payment is declined, the booking undone
}


def play_many(backend: Backend, faults: Faults | None) -> dict[str, Any]:
    registry = TaskRegistry()
    effects = Effects(faults)
    register(registry, effects)
    with TestEnvironment(backend=backend, registry=registry, faults=faults) as env:
        production = Production(env, sweep_every=timedelta(minutes=5))
        handles = []
        for n in range(RUNS):
            task_id = MIX[n % len(MIX)]
            handles.append(
                production.call(
                    lambda task_id=task_id, n=n: env.trigger(
                        task_id, PAYLOADS.get(task_id), idempotency_key=f"load-{n}"
                    )
                )
            )
        sent: set[tuple[str, str]] = set()

        def outside(production: Production) -> None:
            for handle in handles:
                info = env.get(handle.run_id)
                if info.status is not RunStatus.WAITING:
                    continue
                run_id = handle.run_id
                if info.waiting_for == "approval" and (run_id, "approval") not in sent:
                    production.call(
                        lambda run_id=run_id: env.send_event(
                            run_id, "approval", {"by": "ada"}, event_id="approval-1"
                        )
                    )
                    sent.add((run_id, "approval"))
            for run_id, step, _ in list(effects.log):
                if not step.startswith("hand-out:") or (run_id, step) in sent:
                    continue
                token = step.split(":", 1)[1]

                def complete(token: str = token) -> None:
                    with contextlib.suppress(CallbackAlreadyCompletedError):
                        env.complete_callback(token, {"ok": True})

                production.call(complete)
                sent.add((run_id, step))

        ids = [handle.run_id for handle in handles]
        production.run(lambda: ids, outside=outside, max_time=timedelta(days=3))
        production.run(lambda: [run.run_id for run in env.list(limit=1000).runs])
        infos = {handle.run_id: env.get(handle.run_id) for handle in handles}
        all_runs = env.list(limit=1000).runs
    by_task = Counter(run.task_id for run in all_runs)
    unexpected = [
        (info.task_id, str(info.status), info.error.type if info.error else None)
        for info in infos.values()
        if info.status is not EXPECTED[info.task_id]
    ]
    return {
        "unexpected": unexpected,
        "lost": sum(1 for info in infos.values() if not info.status.is_terminal),
        "runs": dict(by_task),
        "effects": Counter(step.split(":")[0] for _, step, _ in effects.log),
        "lost_effects": Counter(
            step.split(":")[0]
            for _, step, calls in effects.log
            if faults is not None and calls < len(faults.log) and faults.log[calls].injected
        ),
        "caller_retries": production.caller_retries,
        "infrastructure_errors": env.infrastructure_errors,
    }


@functools.cache
def calm() -> dict[str, Any]:
    """The same runs without faults (on memory: the outcome does not depend on the backend)."""
    return play_many("memory", None)


@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_fifty_runs_through_throttling_and_server_errors(backend: Backend) -> None:
    calm_runs = calm()
    faults = Faults(seed=11).throttle("dynamodb", 0.10).server_error("sqs", 0.05)
    faults.server_error("s3", 0.05)
    stormy = play_many(backend, faults)

    print(  # the figures the closing note quotes (pytest -s)
        f"\nthrottling {backend}: runs={RUNS} injected={dict(faults.injected)} "
        f"lost={stormy['lost']} unexpected={len(stormy['unexpected'])} "
        f"caller retries={stormy['caller_retries']} "
        f"redelivered={stormy['infrastructure_errors']} "
        f"re-run after a failed checkpoint write={sum(stormy['lost_effects'].values())}"
    )
    assert faults.injected["dynamodb:throttle"] > 50
    # How many of the ~250 SQS calls fail follows the seeded draws along the sequence of
    # calls (3 on memory since the inbox is pruned, 6 to 8 before; other seeds give 11, 17).
    assert faults.injected["sqs:server_error"] > 2
    assert stormy["lost"] == 0
    assert stormy["unexpected"] == []
    assert stormy["runs"] == calm_runs["runs"]  # no duplicate child, no duplicate run
    # Every extra side effect is one whose checkpoint write (the next call) failed.
    extra = stormy["effects"] - calm_runs["effects"]
    assert not (extra - stormy["lost_effects"]), (extra, stormy["lost_effects"])
