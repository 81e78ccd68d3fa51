"""The fault-injection suite's tools: recovery only the way production recovers.

`Production` drives a `TestEnvironment` as AWS would: due messages are delivered (an
invocation that crashes has its message come back after the lease, one that ends with an
infrastructure error after SQS's redelivery delay); the sweeper runs every minute of
virtual time; callers of the API retry a call that failed. Nothing else nudges a run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest

from durable import TaskRegistry
from durable.errors import InfrastructureError
from durable.faults import When
from durable.records import RunStatus
from durable.testing import SimulatedCrash, TestEnvironment

T = TypeVar("T")
SWEEP_EVERY = timedelta(minutes=1)  # the EventBridge schedule of the template
# `make faults-sweep` sets it: every crash sweep tries both sides of every call on moto too.
FULL_SWEEP = os.environ.get("DURABLE_FULL_SWEEP") == "1"
BOTH_SIDES: tuple[When, ...] = ("before", "after")


def crash_sides(call: int, backend: str) -> tuple[When, ...]:
    """Where a crash sweep kills the process around AWS call `call`.

    Both sides of every call on the memory backend (fast) and in the full sweep. On moto in
    `make test`, one side of every call, alternating (before odd calls, after even ones):
    every call is still crashed at, for half the environments; a crash after call k and
    one before call k+1 leave the same state unless something ran between the two.
    """
    if backend == "memory" or FULL_SWEEP:
        return BOTH_SIDES
    return ("before",) if call % 2 else ("after",)


class Production:
    """Recovery as in AWS: SQS redelivery, the sweeper on its schedule, callers retrying."""

    def __init__(self, env: TestEnvironment, sweep_every: timedelta = SWEEP_EVERY) -> None:
        self.env = env
        self.sweep_every = sweep_every
        self.caller_retries = 0
        self.sweeps = 0
        self._next_sweep = env.now()

    def call(self, operation: Callable[[], T], attempts: int = 200) -> T:
        """An API caller: a call that fails (an error answer, or the API's process dying
        mid-call) is made again, as clients of an HTTP API retry a 5xx or a dropped line."""
        for _ in range(attempts):
            try:
                return operation()
            except (InfrastructureError, SimulatedCrash):
                self.caller_retries += 1
        raise AssertionError(f"still failing after {attempts} tries")

    def run(
        self,
        run_ids: Callable[[], list[str]],
        *,
        outside: Callable[[Production], None] | None = None,
        max_time: timedelta = timedelta(days=3),
    ) -> None:
        """Deliver, sweep and let `outside` act (send events...) until every run listed by
        `run_ids` has finished, or nothing more can happen within `max_time`."""
        env = self.env
        deadline = env.now() + max_time
        while True:
            env.run_until_idle()
            if outside is not None:
                outside(self)
                env.run_until_idle()
            ids = run_ids()
            if ids and all(env.get(run_id).status.is_terminal for run_id in ids):
                return
            if self._sweep_if_due():
                continue
            target = self._next_moment()
            if target > deadline:
                return
            env.clock.set(max(target, env.now()))

    def advance(self, span: timedelta) -> None:
        """Let production work (deliveries, sweeps) for `span` of the virtual clock."""
        env = self.env
        until = env.now() + span
        while True:
            env.run_until_idle()
            if self._sweep_if_due():
                continue
            if env.now() >= until:
                return
            env.clock.set(max(min(self._next_moment(), until), env.now()))

    def _sweep_if_due(self) -> bool:
        if self.env.now() < self._next_sweep:
            return False
        self.sweeps += 1
        # A sweeper invocation that fails is followed by the next one.
        with contextlib.suppress(InfrastructureError, SimulatedCrash):
            self.env.sweep()
        self._next_sweep = self.env.now() + self.sweep_every
        return True

    def _next_moment(self) -> datetime:
        """When something happens next: a message comes due, or the next sweep."""
        due = self.env.queue.next_due()
        return self._next_sweep if due is None else min(due, self._next_sweep)


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry()


@pytest.fixture
def env(registry: TaskRegistry) -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=registry) as environment:
        yield environment


def statuses(env: TestEnvironment) -> dict[str, RunStatus]:
    """Every run's status, by run id (reads made without faults)."""
    return {run.run_id: run.status for run in env.list(limit=1000).runs}


def finished(env: TestEnvironment, run_id: str) -> Any:
    info = env.get(run_id)
    assert info.status.is_terminal, f"run {run_id} is still {info.status} ({info.waiting_for})"
    return info
