"""`durable replay`: recorded histories against today's code, with nothing executed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from durable import Context, NonRetryableError, RetryPolicy, RunStatus, TaskRegistry, task
from durable.cli import main
from durable.records import WakeReason, WakeUp
from durable.replayer import (
    HistoryFileError,
    Operation,
    RecordedRun,
    ReplayReport,
    ReplayStatus,
    format_report,
    load_history_file,
    replay_run,
    save_history_file,
)
from durable.testing import SimulatedCrash, TestEnvironment

Body = Callable[[Context, Any], Any]


def recorded(env: TestEnvironment, run_id: str) -> RecordedRun:
    """The run and its log as the HTTP API shows them (what `--save` writes)."""
    return RecordedRun(
        run=env.get(run_id).to_dict(), history=[entry.to_dict() for entry in env.history(run_id)]
    )


def replay(env: TestEnvironment, run_id: str, code: Body | None = None) -> ReplayReport:
    """Replay a run of env's registry against `code` (default: the code it ran with)."""
    run = env.store.get_run(run_id)
    assert run is not None
    registry = env.registry
    if code is not None:
        registry = TaskRegistry()
        task(id=run.task_id, registry=registry)(code)
    return replay_run(run, env.store.load_history(run_id), env.codec, registry)


class Counter:
    """A step body whose calls are counted: the side effect a replay must never cause."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, value: Any = None) -> Any:
        self.calls += 1
        return value


# -- the order workflow, in versions ----------------------------------------------------


def order_v1(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
    order = ctx.step("fetch", lambda: {"id": payload["id"], "total": 42})
    ctx.sleep("cool-off", timedelta(hours=1))
    charge = ctx.step("charge", lambda total: {"charged": total}, order["total"])
    approval = ctx.wait_for_event("approval", timeout=timedelta(days=1))
    stamp = ctx.now()
    return {"charge": charge, "approval": approval, "at": stamp.isoformat()}


def order_renamed(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
    order = ctx.step("fetch", lambda: {"id": payload["id"], "total": 42})
    ctx.sleep("cool-off", timedelta(hours=1))
    ctx.step("charge-v2", lambda total: {"charged": total}, order["total"])
    return {}


@pytest.fixture
def order_registry(registry: TaskRegistry) -> TaskRegistry:
    task(id="order", registry=registry)(order_v1)
    return registry


def complete_order(env: TestEnvironment) -> str:
    run = env.trigger("order", {"id": "o-1"})
    env.run_until_complete(run.run_id)
    env.send_event(run.run_id, "approval", {"by": "ada"})
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.COMPLETED
    return run.run_id


# -- same code: clean ---------------------------------------------------------------------


def test_a_completed_run_replays_cleanly_against_the_code_that_recorded_it(
    order_registry: TaskRegistry, env: TestEnvironment
) -> None:
    run_id = complete_order(env)

    report = replay(env, run_id)

    assert report == ReplayReport(run_id, "order", ReplayStatus.OK, positions_replayed=5)
    assert report.ok
    assert format_report(report) == f"OK {run_id} (order, 5 operations replayed)"


def test_open_runs_replay_cleanly_while_sleeping_and_waiting(
    order_registry: TaskRegistry, env: TestEnvironment
) -> None:
    run = env.trigger("order", {"id": "o-2"})
    env.run_until_idle()
    assert env.get(run.run_id).status == RunStatus.WAITING  # sleeping
    sleeping = replay(env, run.run_id)
    env.run_until_complete(run.run_id)
    assert env.get(run.run_id).waiting_for == "approval"
    waiting = replay(env, run.run_id)

    assert (sleeping.ok, sleeping.positions_replayed) == (True, 2)
    assert (waiting.ok, waiting.positions_replayed) == (True, 4)


def test_a_wait_that_timed_out_replays_as_a_timeout(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="patient", registry=registry)
    def patient(ctx: Context, payload: None) -> str:
        try:
            ctx.wait_for_event("approval", timeout=timedelta(minutes=5))
        except Exception:
            ctx.step("escalate", lambda: "escalated")
            return "timed out"
        return "approved"

    run = env.trigger("patient")
    env.run_until_idle()
    env.advance(timedelta(minutes=6))
    assert env.get(run.run_id).result == "timed out"

    assert replay(env, run.run_id).ok


# -- changed code: divergences --------------------------------------------------------------


def test_a_renamed_step_is_reported_at_its_position_with_both_sides(
    order_registry: TaskRegistry, env: TestEnvironment
) -> None:
    run_id = complete_order(env)

    report = replay(env, run_id, order_renamed)

    assert report.status is ReplayStatus.DIVERGED
    assert not report.ok
    assert (report.position, report.attempt) == (2, 1)
    assert report.recorded == Operation("step", "charge")
    assert report.requested == Operation("step", "charge-v2")
    assert report.positions_replayed == 2
    assert format_report(report).splitlines() == [
        f"DIVERGED {run_id} (order, task attempt 1)",
        "position  recorded       requested",
        "2         step 'charge'  step 'charge-v2'",
    ]


def test_a_divergence_in_an_open_run_is_reported_too(
    order_registry: TaskRegistry, env: TestEnvironment
) -> None:
    run = env.trigger("order", {"id": "o-3"})
    env.run_until_complete(run.run_id)  # waits for the approval

    report = replay(env, run.run_id, order_renamed)

    assert (report.status, report.position) == (ReplayStatus.DIVERGED, 2)


def two_steps(ctx: Context, payload: None) -> str:
    ctx.step("a", lambda: 1)
    ctx.step("b", lambda: 2)
    return "done"


def test_a_step_removed_at_the_end_is_reported_against_the_task_returning(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    task(id="steps", registry=registry)(two_steps)
    run = env.trigger("steps")
    env.run_until_complete(run.run_id)

    def only_a(ctx: Context, payload: None) -> str:
        ctx.step("a", lambda: 1)
        return "done"

    report = replay(env, run.run_id, only_a)

    assert (report.status, report.position) == (ReplayStatus.DIVERGED, 1)
    assert report.recorded == Operation("step", "b")
    assert (report.requested, report.requested_end) == (None, "returned")
    assert format_report(report).splitlines()[2] == "1         step 'b'  end (task returned)"


def test_a_step_removed_before_the_wait_of_an_open_run_is_reported(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="gate", registry=registry)
    def gate(ctx: Context, payload: None) -> None:
        ctx.step("a", lambda: 1)
        ctx.step("b", lambda: 2)
        ctx.wait_for_event("go")

    run = env.trigger("gate")
    env.run_until_idle()

    def without_b(ctx: Context, payload: None) -> None:
        ctx.step("a", lambda: 1)
        ctx.wait_for_event("go")

    report = replay(env, run.run_id, without_b)

    assert report.position == 1
    assert report.recorded == Operation("step", "b")
    assert report.requested == Operation("wait_for_event", "go")


def test_a_step_appended_in_the_middle_is_reported(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    task(id="steps", registry=registry)(two_steps)
    run = env.trigger("steps")
    env.run_until_complete(run.run_id)

    def inserted(ctx: Context, payload: None) -> str:
        ctx.step("a", lambda: 1)
        ctx.step("audit", lambda: None)
        ctx.step("b", lambda: 2)
        return "done"

    report = replay(env, run.run_id, inserted)

    assert report.position == 1
    assert (report.recorded, report.requested) == (
        Operation("step", "b"),
        Operation("step", "audit"),
    )


def three_steps(ctx: Context, payload: None) -> str:
    ctx.step("a", lambda: 1)
    ctx.step("b", lambda: 2)
    ctx.step("c", lambda: 3)
    return "done"


def test_a_step_appended_at_the_end_of_a_finished_run_is_reported(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    task(id="steps", registry=registry)(two_steps)
    run = env.trigger("steps")
    env.run_until_complete(run.run_id)

    report = replay(env, run.run_id, three_steps)

    assert (report.status, report.position) == (ReplayStatus.DIVERGED, 2)
    assert (report.recorded, report.recorded_end) == (None, "returned")
    assert report.requested == Operation("step", "c")
    assert format_report(report).splitlines()[2] == "2         end (task returned)  step 'c'"


def test_a_step_appended_past_where_an_open_run_waits_is_its_future_not_a_divergence(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="nap", registry=registry)
    def nap(ctx: Context, payload: None) -> None:
        ctx.step("a", lambda: 1)
        ctx.sleep("nap", timedelta(days=1))

    def nap_then_more(ctx: Context, payload: None) -> None:
        ctx.step("a", lambda: 1)
        ctx.sleep("nap", timedelta(days=1))
        ctx.step("more", lambda: 2)

    run = env.trigger("nap")
    env.run_until_idle()

    assert replay(env, run.run_id, nap_then_more).ok


def test_a_changed_operation_kind_is_a_divergence(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    task(id="steps", registry=registry)(two_steps)
    run = env.trigger("steps")
    env.run_until_complete(run.run_id)

    def sleeps_instead(ctx: Context, payload: None) -> str:
        ctx.step("a", lambda: 1)
        ctx.sleep("b", timedelta(seconds=1))
        return "done"

    report = replay(env, run.run_id, sleeps_instead)

    assert (report.recorded, report.requested) == (Operation("step", "b"), Operation("sleep", "b"))


def test_each_task_attempt_is_checked_against_its_own_recording(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    flaky = iter([True, False])

    def unstable() -> str:
        if next(flaky):
            raise RuntimeError("flaky")
        return "ok"

    @task(id="retried", registry=registry, retry=RetryPolicy(max_attempts=2))
    def retried(ctx: Context, payload: None) -> str:
        ctx.step("a", lambda: 1)
        return ctx.step("b", unstable)

    run = env.trigger("retried")
    info = env.run_until_complete(run.run_id)
    assert (info.status, info.attempts) == (RunStatus.COMPLETED, 2)
    assert [(e.kind, e.task_attempt) for e in env.history(run.run_id)] == [
        ("step_completed", 1),
        ("step_failed", 1),
        ("attempt_failed", 1),
        ("step_completed", 2),
    ]

    def renamed_b(ctx: Context, payload: None) -> str:
        ctx.step("a", lambda: 1)
        return ctx.step("b2", unstable)

    def stops_early(ctx: Context, payload: None) -> str:
        ctx.step("a", lambda: 1)
        return "early"

    assert replay(env, run.run_id).ok
    diverged = replay(env, run.run_id, renamed_b)
    assert (diverged.position, diverged.attempt) == (1, 1)
    assert diverged.recorded == Operation("step", "b")
    early = replay(env, run.run_id, stops_early)
    assert (early.position, early.requested_end) == (1, "returned")


def test_a_run_failed_by_its_own_code_replays_cleanly(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    def refuse() -> None:
        raise NonRetryableError("no")

    @task(id="refusing", registry=registry)
    def refusing(ctx: Context, payload: None) -> None:
        ctx.step("check", lambda: 1)
        ctx.step("refuse", refuse)

    def refusing_then_more(ctx: Context, payload: None) -> None:
        ctx.step("check", lambda: 1)
        try:
            ctx.step("refuse", refuse)
        except Exception:
            ctx.step("recover", lambda: 2)

    run = env.trigger("refusing")
    assert env.run_until_complete(run.run_id).status == RunStatus.FAILED

    assert replay(env, run.run_id).ok
    report = replay(env, run.run_id, refusing_then_more)
    assert (report.position, report.requested) == (2, Operation("step", "recover"))
    assert report.recorded_end == "raised NonRetryableError"


def test_a_run_of_a_task_not_in_todays_code_is_reported_as_such(
    order_registry: TaskRegistry, env: TestEnvironment
) -> None:
    run_id = complete_order(env)
    run = env.store.get_run(run_id)
    assert run is not None

    report = replay_run(run, env.store.load_history(run_id), env.codec, TaskRegistry())

    assert report.status is ReplayStatus.UNKNOWN_TASK
    assert not report.ok
    assert format_report(report).startswith(f"UNKNOWN TASK {run_id} (order)")


# -- nothing executes ------------------------------------------------------------------------


def test_no_step_function_runs_during_a_replay(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    counter = Counter()

    @task(id="counted", registry=registry)
    def counted(ctx: Context, payload: None) -> int:
        total = 0
        for index in range(3):
            total += ctx.step(f"count-{index}", counter, index)
        ctx.sleep("nap", timedelta(hours=1))
        last: int = ctx.step("last", counter, 10)
        return total + last

    run = env.trigger("counted")
    env.run_until_complete(run.run_id)
    assert counter.calls == 4
    counter.calls = 0

    def renamed(ctx: Context, payload: None) -> int:
        ctx.step("count-0", counter, 0)
        ctx.step("other", counter, 1)
        return 0

    assert replay(env, run.run_id).ok
    assert replay(env, run.run_id, renamed).status is ReplayStatus.DIVERGED
    assert recorded(env, run.run_id).replay(registry).ok
    assert counter.calls == 0


def test_the_first_fresh_operation_ends_the_replay_without_running(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    fresh = Counter()

    def slow() -> int:
        env.clock.advance(timedelta(seconds=60))  # the invocation runs out of time here
        return 1

    @task(id="handed-over", registry=registry)
    def handed_over(ctx: Context, payload: None) -> int:
        first: int = ctx.step("slow", slow)
        ctx.step("next", fresh)
        return first

    run = env.trigger("handed-over")
    # given: the invocation hands over after the first step, its successor not yet run
    env.deliver(WakeUp(run.run_id, WakeReason.START), time_left=lambda: timedelta(seconds=40))
    assert [entry.name for entry in env.history(run.run_id)] == ["slow"]
    assert env.get(run.run_id).status == RunStatus.QUEUED

    report = replay(env, run.run_id)

    assert (report.ok, report.positions_replayed) == (True, 1)
    assert fresh.calls == 0


def test_an_at_most_once_step_that_died_is_not_run_again_by_a_replay(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    calls = Counter()

    def dies() -> None:
        calls()
        raise SimulatedCrash

    @task(id="charging", registry=registry)
    def charging(ctx: Context, payload: None) -> None:
        ctx.step("prepare", lambda: 1)
        ctx.step("charge", dies, semantics="at_most_once")

    run = env.trigger("charging")
    env.run_until_idle()
    assert calls.calls == 1
    assert [entry.kind for entry in env.history(run.run_id)][-1] == "step_started"

    report = replay(env, run.run_id)

    assert report.ok
    assert calls.calls == 1


# -- history files -------------------------------------------------------------------------


def test_a_saved_history_file_replays_as_the_stored_log_does(
    registry: TaskRegistry, tmp_path: Path
) -> None:
    task(id="order", registry=registry)(order_v1)
    big = "x" * 5000
    with TestEnvironment(registry=registry, inline_limit=1024) as env:  # values go to blobs

        @task(id="big", registry=registry)
        def big_values(ctx: Context, payload: None) -> int:
            value: str = ctx.step("big", lambda: big)
            data = ctx.wait_for_event("data")
            return len(value) + len(data)

        order = complete_order(env)
        run = env.trigger("big")
        env.run_until_idle()
        env.send_event(run.run_id, "data", big)
        env.run_until_complete(run.run_id)
        files = {}
        for run_id in (order, run.run_id):
            files[run_id] = tmp_path / f"{run_id}.json"
            save_history_file(files[run_id], recorded(env, run_id))
        direct = {run_id: replay(env, run_id) for run_id in files}
        stored = {run_id: env.store.load_history(run_id) for run_id in files}

    for run_id, path in files.items():
        loaded = load_history_file(path)
        assert set(json.loads(path.read_text())) == {"run", "history"}
        assert loaded.run_id == run_id
        assert loaded.replay(registry) == direct[run_id]
        assert direct[run_id].ok
        # the checkpoints rebuilt from the file are the stored ones, values included
        codec = env.codec
        run_record, history = loaded.decode(codec)
        assert run_record.task_id in ("order", "big")
        assert [(c.seq, c.kind, c.op, c.name, c.at, c.wake_at) for c in history] == [
            (c.seq, c.kind, c.op, c.name, c.at, c.wake_at) for c in stored[run_id]
        ]
        values = [codec.decode(c.value) if c.value else None for c in history]
        assert values == [env.codec.decode(c.value) if c.value else None for c in stored[run_id]]


def test_an_edited_history_file_diverges(
    order_registry: TaskRegistry, env: TestEnvironment, tmp_path: Path
) -> None:
    run_id = complete_order(env)
    path = tmp_path / "run.json"
    save_history_file(path, recorded(env, run_id))
    data = json.loads(path.read_text())
    data["history"][2]["name"] = "charge-v0"
    path.write_text(json.dumps(data))

    report = load_history_file(path).replay(order_registry)

    assert report.position == 2
    assert report.recorded == Operation("step", "charge-v0")
    assert report.requested == Operation("step", "charge")
    assert report.to_dict()["divergence"] == {
        "position": 2,
        "attempt": 1,
        "recorded": {"kind": "step", "name": "charge-v0"},
        "requested": {"kind": "step", "name": "charge"},
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", '"run"'),
        ('{"run": {}, "history": {}}', '"history" must be a list'),
        ('{"run": {"run_id": "r"}, "history": []}', "missing field"),
    ],
)
def test_unusable_history_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)

    with pytest.raises(HistoryFileError, match=message):
        load_history_file(path)


def test_a_missing_history_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HistoryFileError, match="cannot read"):
        load_history_file(tmp_path / "missing.json")


def test_a_history_entry_of_an_unknown_kind_is_refused(
    order_registry: TaskRegistry, env: TestEnvironment, tmp_path: Path
) -> None:
    saved = recorded(env, complete_order(env))
    saved.history[0]["kind"] = "teleported"
    path = tmp_path / "run.json"
    save_history_file(path, saved)

    with pytest.raises(HistoryFileError, match="teleported"):
        load_history_file(path)


# -- the command line (bad input; the rest runs end to end) --------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay"], "give a RUN_ID"),
        (["replay", "run_1", "--open"], "--open replays every open run"),
        (["replay", "--history", "f.json", "--save", "g.json"], "--save FILE needs a RUN_ID"),
        (["replay", "--history", "missing.json", "--tasks", "json"], "cannot read"),
        (["replay", "--history", "f.json", "--tasks", "no_such_module_x"], "no_such_module_x"),
    ],
)
def test_bad_input_exits_2(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))

    code = main(argv)

    assert code == 2
    assert message in capsys.readouterr().err


# -- the other durable operations ------------------------------------------------------------


def replays_cleanly(env: TestEnvironment, run_id: str) -> bool:
    """Clean from the store's log and from the API's view of it (a history file's)."""
    direct = replay(env, run_id)
    via_file = recorded(env, run_id).replay(env.registry)
    assert direct == via_file
    return direct.ok


def test_patched_code_replays_runs_recorded_before_and_after_the_change(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    def v1(ctx: Context, payload: None) -> None:
        ctx.step("old-charge", lambda: "old")
        ctx.sleep("wait", timedelta(hours=1))

    def v2(ctx: Context, payload: None) -> None:
        if ctx.patched("new-charge"):
            ctx.step("new-charge", lambda: "new")
        else:
            ctx.step("old-charge", lambda: "old")
        ctx.sleep("wait", timedelta(hours=1))

    def v2_unguarded(ctx: Context, payload: None) -> None:
        ctx.step("new-charge", lambda: "new")
        ctx.sleep("wait", timedelta(hours=1))

    task(id="charger", registry=registry)(v1)
    old = env.trigger("charger")
    env.run_until_idle()

    assert replay(env, old.run_id, v2).ok
    assert replay(env, old.run_id, v2_unguarded).status is ReplayStatus.DIVERGED
    new_registry = TaskRegistry()
    task(id="charger", registry=new_registry)(v2)
    with TestEnvironment(registry=new_registry) as new_env:
        new = new_env.trigger("charger")
        new_env.run_until_complete(new.run_id)
        assert replays_cleanly(new_env, new.run_id)
        report = replay(new_env, new.run_id, v1)
    assert (report.position, report.recorded) == (0, Operation("patch", "new-charge"))


def test_child_runs_replay_without_starting_children(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="child", registry=registry)
    def child(ctx: Context, payload: int) -> int:
        ctx.sleep("think", timedelta(minutes=1))
        return payload * 2

    @task(id="parent", registry=registry)
    def parent(ctx: Context, payload: int) -> dict[str, Any]:
        doubled = ctx.invoke("child", payload)
        fired = ctx.trigger("child", 0)
        return {"doubled": doubled, "fired": fired}

    run = env.trigger("parent", 21)
    env.run_until_idle()
    assert env.get(run.run_id).status == RunStatus.WAITING  # on its child
    assert replays_cleanly(env, run.run_id)
    env.advance(timedelta(minutes=1))
    assert env.get(run.run_id).result["doubled"] == 42
    runs_before = len(env.list(limit=100).runs)

    assert replays_cleanly(env, run.run_id)
    assert all(replays_cleanly(env, r.run_id) for r in env.list(task_id="child").runs)
    assert len(env.list(limit=100).runs) == runs_before


def test_callbacks_replay_without_creating_tokens(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    outbox: list[str] = []

    @task(id="callback-approval", registry=registry)
    def approval(ctx: Context, payload: None) -> Any:
        return ctx.wait_for_callback("approval", submit=outbox.append, timeout=timedelta(hours=1))

    run = env.trigger("callback-approval")
    env.run_until_idle()
    assert replays_cleanly(env, run.run_id)
    env.complete_callback(outbox[0], {"approved": True})
    assert env.run_until_complete(run.run_id).result == {"approved": True}

    assert replays_cleanly(env, run.run_id)
    assert len(outbox) == 1


def test_compensations_of_a_failed_run_replay_without_running(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    undo = Counter()

    def no_cars() -> None:
        raise LookupError("no cars left")

    @task(id="trip", registry=registry, retry=RetryPolicy(max_attempts=1))
    def trip(ctx: Context, payload: None) -> None:
        ctx.step("book-flight", lambda: "FL-1", compensate=undo)
        ctx.step("book-hotel", lambda: "HO-2", compensate=undo)
        ctx.step("book-car", no_cars)

    def trip_without_hotel(ctx: Context, payload: None) -> None:
        ctx.step("book-flight", lambda: "FL-1", compensate=undo)
        ctx.step("book-car", no_cars)

    run = env.trigger("trip")
    assert env.run_until_complete(run.run_id).status == RunStatus.FAILED
    assert undo.calls == 2
    undo.calls = 0

    assert replays_cleanly(env, run.run_id)
    assert replay(env, run.run_id, trip_without_hotel).position == 1
    assert undo.calls == 0
