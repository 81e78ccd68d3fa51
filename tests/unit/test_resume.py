"""Resume a held run on demand (`durable.services.resume`): over the HTTP API in process, the
Client, the CLI; holds for a code fix and for a code version."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.test_api import Api
from tests.unit.test_held_runs import TASK, v1, v2, v3

from durable import RunStatus, TaskRegistry
from durable.cli import console
from durable.cli import resume as resume_cli
from durable.cli import runs as runs_cli
from durable.cli.transport import InProcessTransport
from durable.errors import RunNotFoundError, RunNotHeldError
from durable.records import HOLD_NONDETERMINISM
from durable.testing import Backend, TestEnvironment

CALLER = {"x-durable-caller": "ops alice@laptop"}


@pytest.fixture
def effects() -> list[str]:
    return []


@pytest.fixture(params=["memory", "moto"])
def held(
    request: pytest.FixtureRequest, effects: list[str]
) -> Iterator[tuple[TestEnvironment, str]]:
    """A run of v1 held for non-determinism by v2, on memory and moto."""
    backend: Backend = request.param
    with TestEnvironment(backend=backend, registry=v1(effects)) as env:
        run_id = env.trigger(TASK).run_id
        env.run_until_idle()
        env.deploy(v2(effects))
        env.advance(timedelta(hours=1))
        assert env.get(run_id).waiting_for == HOLD_NONDETERMINISM
        yield env, run_id


def _actions(env: TestEnvironment, run_id: str) -> list[dict[str, Any]]:
    return [
        {"name": entry.name, **json.loads(entry.value)}
        if isinstance(entry.value, str)
        else {"name": entry.name, **entry.value}
        for entry in env.history(run_id)
        if entry.kind == "run_action"
    ]


def test_resume_over_the_api_after_a_fix_completes_the_run_and_is_audited(
    held: tuple[TestEnvironment, str], effects: list[str]
) -> None:
    env, run_id = held
    api = Api(env.client)
    # given: the fix is deployed (the next recheck is 5 minutes away)
    env.deploy(v3(effects))
    # when
    reply = api.post(f"/runs/{run_id}/resume", headers=CALLER)
    # then: 200 with the run, still showing the hold until a worker replays it
    assert reply.status == 200, reply.text
    assert reply.json["run_id"] == run_id
    assert reply.json["held"]["reason"] == "nondeterminism"
    assert reply.json["held"]["error"]["type"] == "NonDeterminismError"
    assert env.store.get_run(run_id).held_code is None  # type: ignore[union-attr]
    # a second resume before the worker ran: the same answer, no second audit entry
    assert api.post(f"/runs/{run_id}/resume", headers=CALLER).status == 200
    env.run_until_idle()  # no clock move: the resume's own wake-up
    info = env.get(run_id)
    assert info.status is RunStatus.COMPLETED and info.held is None
    assert effects == ["reserve", "charge", "ship"]
    actions = _actions(env, run_id)
    assert len(actions) == 1
    assert actions[0]["name"] == "resume"
    assert actions[0]["by"] == "unverified:ops alice@laptop"
    assert actions[0]["held_for"] == HOLD_NONDETERMINISM
    assert "'charge-card'" in actions[0]["error"]
    # a finished run is not held: 409 run_not_held
    again = api.post(f"/runs/{run_id}/resume", headers=CALLER)
    assert (again.status, again.error_code) == (409, "run_not_held")
    assert "COMPLETED" in again.json["error"]["message"]


def test_resume_without_a_fix_replays_and_holds_the_run_again(
    held: tuple[TestEnvironment, str], effects: list[str]
) -> None:
    env, run_id = held
    resumed = env.resume(run_id, by="test:me")
    assert resumed.waiting_for == HOLD_NONDETERMINISM
    env.run_until_idle()
    info = env.get(run_id)
    # the same code replayed it: held again (visibly), never failed, nothing ran
    assert (info.status, info.waiting_for) == (RunStatus.WAITING, HOLD_NONDETERMINISM)
    assert env.store.get_run(run_id).held_code is not None  # type: ignore[union-attr]
    assert effects == ["reserve", "charge"]
    assert [action["by"] for action in _actions(env, run_id)] == ["test:me"]


def test_resume_refuses_runs_that_are_not_held_and_unknown_runs(effects: list[str]) -> None:
    with TestEnvironment(registry=v1(effects)) as env:
        api = Api(env.client)
        run_id = env.trigger(TASK).run_id
        env.run_until_idle()  # asleep: WAITING, not held
        reply = api.post(f"/runs/{run_id}/resume")
        assert (reply.status, reply.error_code) == (409, "run_not_held")
        assert "WAITING" in reply.json["error"]["message"]
        missing = api.post("/runs/run_nope/resume")
        assert (missing.status, missing.error_code) == (404, "run_not_found")
        with pytest.raises(RunNotHeldError):
            env.resume(run_id)
        with pytest.raises(RunNotFoundError):
            env.resume("run_nope")
        assert _actions(env, run_id) == []
        document = api.get("/openapi.json").json
        responses = document["paths"]["/runs/{run_id}/resume"]["post"]["responses"]
        assert {"200", "404", "409"} <= set(responses)
        run_body = document["components"]["schemas"]["RunBody"]
        assert "held" in run_body["properties"]


def test_a_code_version_hold_resumed_is_repinned_and_completes(effects: list[str]) -> None:
    with TestEnvironment(registry=v1(effects), code_version="v1") as env:
        run_id = env.trigger(TASK).run_id
        env.run_until_idle()
        # given: v2 of the code is deployed under another label, with the same task code
        env.deploy(v1(effects), code_version="v2")
        env.advance(timedelta(hours=1))
        info = env.get(run_id)
        assert info.waiting_for == "code-version:v1"
        assert info.held is not None and info.held.reason == "code-version"
        # when
        resumed = env.resume(run_id, by="test:ops")
        # then: re-pinned to the caller's code version, its hold cleared, and it completes
        assert resumed.code_version == "v2" and resumed.waiting_for is None
        assert resumed.held is None
        env.run_until_idle()
        assert env.get(run_id).status is RunStatus.COMPLETED
        assert effects == ["reserve", "charge", "ship"]
        (action,) = _actions(env, run_id)
        assert action == {
            "name": "resume",
            "by": "test:ops",
            "from_code_version": "v1",
            "to_code_version": "v2",
        }
        # a second resume: the hold is gone
        with pytest.raises(RunNotHeldError):
            env.resume(run_id)


def test_a_code_version_hold_resumed_onto_diverging_code_is_held_not_failed(
    effects: list[str],
) -> None:
    with TestEnvironment(registry=v1(effects), code_version="v1") as env:
        run_id = env.trigger(TASK).run_id
        env.run_until_idle()
        env.deploy(v2(effects), code_version="v2")
        env.advance(timedelta(hours=1))
        assert env.get(run_id).waiting_for == "code-version:v1"
        env.resume(run_id)
        env.run_until_idle()
        info = env.get(run_id)
        assert (info.status, info.waiting_for) == (RunStatus.WAITING, HOLD_NONDETERMINISM)
        assert info.code_version == "v2"
        assert effects == ["reserve", "charge"]


def test_the_cli_resumes_and_show_prints_the_hold(
    held: tuple[TestEnvironment, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env, run_id = held
    transport = InProcessTransport.__new__(InProcessTransport)
    transport._client = env.client  # the test kit's client behind the API
    monkeypatch.setattr(resume_cli, "make_transport", lambda args: transport)
    monkeypatch.setattr(runs_cli, "make_transport", lambda args: transport)

    assert console.main(["show", run_id, "--table"]) == 0
    out = capsys.readouterr().out
    assert "HELD since" in out and "its code diverged from its log" in out
    assert f"durable resume {run_id}" in out

    assert console.main(["resume", run_id]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == run_id
    env.deploy(TaskRegistry())  # (any code: the run is held again or goes on, never fails)
    assert console.main(["resume", "run_nope"]) == 2
