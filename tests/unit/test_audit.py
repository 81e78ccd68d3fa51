"""Audit entries in a run's log (`durable.services.audit`): recorded, shown, never replayed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from durable import Context, RunStatus, TaskRegistry, task
from durable.errors import RunNotFoundError
from durable.records import CheckpointKind
from durable.services.audit import action_details, record_action
from durable.testing import TestEnvironment


@pytest.fixture(params=["memory", "moto"])
def backend_env(
    request: pytest.FixtureRequest, registry: TaskRegistry
) -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=registry, backend=request.param) as environment:
        yield environment


def _approval(registry: TaskRegistry) -> None:
    @task(id="audited", registry=registry)
    def audited(ctx: Context, payload: None) -> Any:
        first = ctx.step("first", lambda: 1)
        decision = ctx.wait_for_event("approval")
        return [first, decision]


def test_an_action_is_in_the_history_and_replay_goes_past_it(
    registry: TaskRegistry, backend_env: TestEnvironment
) -> None:
    _approval(registry)
    env = backend_env
    run = env.trigger("audited")
    env.run_until_idle()
    assert env.get(run.run_id).status == RunStatus.WAITING

    entry = record_action(
        env.store, env.clock, run.run_id, "note", "unverified:cli alice@laptop", {"why": "test"}
    )
    second = record_action(env.store, env.clock, run.run_id, "note", "anonymous")
    assert second.seq == entry.seq + 1

    env.send_event(run.run_id, "approval", "yes")
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == [1, "yes"]

    history = env.history(run.run_id)
    actions = [item for item in history if item.kind == CheckpointKind.RUN_ACTION]
    assert [item.name for item in actions] == ["note", "note"]
    logged = env.store.load_history(run.run_id)
    audit = [cp for cp in logged if cp.kind is CheckpointKind.RUN_ACTION]
    assert action_details(audit[0]) == {"by": "unverified:cli alice@laptop", "why": "test"}
    assert action_details(audit[1]) == {"by": "anonymous"}
    timeline = env.client.timeline(run.run_id)
    assert [op["name"] for op in timeline["operations"]][:2] == ["first", "approval"]
    # The steps after the action were written after it, in the slots that followed.
    assert [cp.seq for cp in logged] == list(range(1, len(logged) + 1))


def test_an_action_on_an_unknown_run_is_refused(env: TestEnvironment) -> None:
    with pytest.raises(RunNotFoundError):
        record_action(env.store, env.clock, "run_" + "0" * 32, "note", "anonymous")
