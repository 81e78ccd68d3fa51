"""The example tasks in `src/tasks`, run through the test kit on a virtual clock.

Each test asserts the behaviour the seed article promises for its example, reading the
fakes' state (the outside world) and the run's checkpoint log (what the engine recorded).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

import tasks
from durable import RunStatus, default_registry
from durable.client import HistoryEntry
from durable.testing import TestEnvironment
from tasks import fakes
from tasks.fakes import approvals, metrics, orders, payments, reports, users, website
from tasks.scrape_with_retries import SCRAPE_RETRY

EXAMPLE_TASKS = {
    "process-order",
    "multi-step-example",
    "scrape-with-retries",
    "daily-report",
    "approval-gate",
}


@pytest.fixture(autouse=True)
def fakes_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets fakes with no state: their files live in the test's own directory."""
    directory = tmp_path / "fakes"
    monkeypatch.setenv("DURABLE_FAKES_DIR", str(directory))
    fakes.reset_all()
    return directory


@pytest.fixture
def env() -> Iterator[TestEnvironment]:
    with TestEnvironment() as environment:
        yield environment


def kinds(history: list[HistoryEntry]) -> list[tuple[str, str]]:
    return [(entry.kind, entry.name) for entry in history]


def test_importing_tasks_registers_every_example() -> None:
    assert tasks.__name__ == "tasks"
    assert set(default_registry.ids()) >= EXAMPLE_TASKS


def test_fakes_keep_their_state_in_the_configured_directory(fakes_dir: Path) -> None:
    payments.charge(amount_cents=5, currency="usd", source="tok_visa", idempotency_key="k")
    assert (fakes_dir / "payments.json").exists()
    assert payments.calls == 1
    payments.reset()
    assert payments.calls == 0


def test_orders_and_charges_are_a_file_each_so_a_call_costs_the_same_with_many(
    fakes_dir: Path,
) -> None:
    # given many orders charged and paid
    for n in range(50):
        charge = payments.charge(
            amount_cents=5, currency="usd", source="tok_visa", idempotency_key=f"k{n}"
        )
        orders.mark_paid(f"o-{n}", charge["id"])

    # then each lives in its own file, and the fakes' own files keep only counts and knobs
    assert len(list((fakes_dir / "orders-by-id").glob("*.json"))) == 50
    assert len(list((fakes_dir / "payments-by-key").glob("*.json"))) == 50
    assert json.loads((fakes_dir / "payments.json").read_text()) == {"calls": 50, "charged": 50}
    assert json.loads((fakes_dir / "orders.json").read_text()) == {"updates": 50}
    assert [charge["id"] for charge in payments.charges][-1] == "ch_000050"
    paid = orders.order("o-7")
    assert paid is not None and (paid["status"], paid["payment_id"]) == ("paid", "ch_000008")
    payments.reset()
    assert payments.charges == []


# -- process-order ---------------------------------------------------------------------


def test_process_order_charges_and_records_the_payment(env: TestEnvironment) -> None:
    run = env.trigger("process-order", {"order_id": "o-1"})

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    order = orders.order("o-1")
    assert order is not None
    [charge] = payments.charges
    assert info.result == {
        "order_id": "o-1",
        "payment_id": charge["id"],
        "amount_cents": order["amount_cents"],
        "status": "paid",
    }
    assert order["status"] == "paid"
    assert order["payment_id"] == charge["id"]
    assert charge["amount_cents"] == order["amount_cents"]
    assert kinds(env.history(run.run_id)) == [
        ("step_completed", "fetch-order"),
        ("step_completed", "charge"),
        ("step_completed", "update-order"),
    ]


def test_process_order_rejects_an_invalid_payload(env: TestEnvironment) -> None:
    from durable import PayloadValidationError

    with pytest.raises(PayloadValidationError):
        env.trigger("process-order", {"order_id": ""})
    assert env.list().runs == []


def test_a_crash_after_the_charge_does_not_charge_again(env: TestEnvironment) -> None:
    # given: the invocation dies after `charge` is recorded, before `update-order` writes
    orders.crash_before_next_update()
    run = env.trigger("process-order", {"order_id": "o-2"})

    # when: the message comes back (after the dead invocation's lease) and the run replays
    info = env.run_until_complete(run.run_id)

    # then: one crash, one charge request, one charge; the replay ran only the update
    assert env.crashes == 1
    assert info.status is RunStatus.COMPLETED
    assert payments.calls == 1
    assert len(payments.charges) == 1
    assert orders.reads == 1
    assert orders.updates == 1
    assert info.result["payment_id"] == payments.charges[0]["id"]
    assert kinds(env.history(run.run_id)) == [
        ("step_completed", "fetch-order"),
        ("step_completed", "charge"),
        ("step_completed", "update-order"),
    ]


def test_a_crash_inside_the_charge_step_is_absorbed_by_the_idempotency_key(
    env: TestEnvironment,
) -> None:
    # given: the provider charges, then the invocation dies before the step is recorded
    payments.crash_after_next_charge()
    run = env.trigger("process-order", {"order_id": "o-3"})

    info = env.run_until_complete(run.run_id)

    # then: the step ran twice (at least once), but the money moved once
    assert env.crashes == 1
    assert info.status is RunStatus.COMPLETED
    assert payments.calls == 2
    assert len(payments.charges) == 1
    assert info.result["payment_id"] == payments.charges[0]["id"]


def test_a_failing_charge_is_retried_by_its_step_policy(env: TestEnvironment) -> None:
    payments.fail_next(2)
    run = env.trigger("process-order", {"order_id": "o-4"})

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.attempts == 1  # step retries do not spend task attempts
    charge_entries = [e for e in env.history(run.run_id) if e.name == "charge"]
    assert [(e.kind, e.attempt) for e in charge_entries] == [
        ("step_failed", 1),
        ("step_failed", 2),
        ("step_completed", 3),
    ]
    assert len(payments.charges) == 1


def test_process_order_cool_off_sleeps_before_release(env: TestEnvironment) -> None:
    run = env.trigger("process-order", {"order_id": "o-5", "cool_off_seconds": 3600})

    env.run_until_idle()
    assert env.get(run.run_id).status is RunStatus.WAITING
    order = orders.order("o-5")
    assert order is not None and order["status"] == "paid"  # paid, not yet released

    env.advance(timedelta(minutes=59))
    assert env.get(run.run_id).status is RunStatus.WAITING
    env.advance(timedelta(minutes=1))

    info = env.get(run.run_id)
    assert info.status is RunStatus.COMPLETED
    assert info.result["status"] == "released"
    assert info.finished_at is not None and info.started_at is not None
    assert info.finished_at - info.started_at == timedelta(hours=1)
    assert len(payments.charges) == 1


# -- multi-step-example --------------------------------------------------------------------


def test_multi_step_example_retries_the_task_without_refetching(env: TestEnvironment) -> None:
    run = env.trigger("multi-step-example", {"user_id": "u-1"})

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.attempts == 2
    assert info.result == {"success": True, "charge_id": payments.charges[0]["id"]}
    assert users.fetches("u-1") == 1  # attempt 2 took the user from the log
    assert users.processed("u-1")
    assert payments.calls == 2  # the flaky card failed once, then charged
    assert len(payments.charges) == 1
    assert [(e.kind, e.name, e.task_attempt) for e in env.history(run.run_id)] == [
        ("step_completed", "fetch-user", 1),
        ("step_failed", "charge", 1),
        ("attempt_failed", "attempt", 1),
        ("step_completed", "charge", 2),
        ("step_completed", "mark-processed", 2),
    ]


def test_multi_step_example_logs_fetched_user_once(
    env: TestEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="durable")
    run = env.trigger("multi-step-example", {"user_id": "u-2"})

    info = env.run_until_complete(run.run_id)

    assert info.attempts == 2
    messages = [record.getMessage() for record in caplog.records if record.name == "durable"]
    assert messages.count("Charge result") == 1
    assert messages.count("Fetched user") == 1  # not logged again by the replay


def test_multi_step_example_fails_after_three_attempts(env: TestEnvironment) -> None:
    payments.fail_next(10)
    run = env.trigger("multi-step-example", {"user_id": "u-3"})

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.FAILED
    assert info.attempts == 3
    assert info.error is not None and "unavailable" in info.error.message
    assert users.fetches("u-3") == 1
    assert payments.calls == 3
    assert not users.processed("u-3")


# -- scrape-with-retries -----------------------------------------------------------------


def test_scrape_retries_with_exponential_backoff_on_the_virtual_clock(
    env: TestEnvironment,
) -> None:
    url = "https://shop.example/pricing?fail=3"
    started = env.now()
    run = env.trigger("scrape-with-retries", {"url": url})

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.result["attempt"] == 4
    assert info.result["url"] == url
    assert website.fetches(url) == 4
    fetch_times = [e.at for e in env.history(run.run_id) if e.name == "fetch-page"]
    assert len(fetch_times) == 4
    assert fetch_times[0] == started
    # delays of 1 s, 2 s, 4 s (min_delay * 2**(n-1)), each jittered into [0.8 * base, base]
    for attempt, (before, after) in enumerate(itertools.pairwise(fetch_times), start=1):
        base = SCRAPE_RETRY.base_delay(attempt)
        assert base == timedelta(seconds=2 ** (attempt - 1))
        assert base * 0.8 <= after - before <= base, (attempt, after - before)
    # no real time passed: the whole run took about 7 virtual seconds
    assert info.finished_at is not None
    assert timedelta(seconds=5.6) <= info.finished_at - started <= timedelta(seconds=7)


def test_scrape_gives_up_after_five_attempts(env: TestEnvironment) -> None:
    url = "https://shop.example/down?fail=5"
    run = env.trigger("scrape-with-retries", {"url": url})

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.FAILED
    assert info.attempts == 5
    assert website.fetches(url) == 5
    assert info.error is not None and "503" in info.error.message
    failures = [e for e in env.history(run.run_id) if e.kind == "attempt_failed"]
    assert [e.task_attempt for e in failures] == [1, 2, 3, 4]  # the 5th failure is final


def test_scrape_succeeds_at_once_when_the_site_is_up(env: TestEnvironment) -> None:
    run = env.trigger("scrape-with-retries", {"url": "https://shop.example/"})
    info = env.run_until_complete(run.run_id)
    assert info.status is RunStatus.COMPLETED
    assert info.result["attempt"] == 1
    assert info.result["title"] == "Fake page /"


# -- daily-report ----------------------------------------------------------------------------


def test_daily_report_is_named_after_the_day_the_run_started() -> None:
    # given: a run that starts one second before midnight, and a warehouse that is down
    start = datetime(2030, 3, 14, 23, 59, 59, tzinfo=UTC)
    metrics.fail_next(1)
    with TestEnvironment(start=start) as env:
        run = env.trigger("daily-report", {})

        # when: the numbers step retries after midnight (backoff of 30 s, jittered)
        info = env.run_until_complete(run.run_id)

    # then: the report still belongs to the 14th, while the run finished on the 15th
    assert info.status is RunStatus.COMPLETED
    assert info.started_at == start
    assert info.finished_at is not None and info.finished_at.date() == date(2030, 3, 15)
    assert info.result["day"] == "2030-03-14"
    assert info.result["report"] == "daily-report/2030-03-14.txt"
    assert reports.names() == ["daily-report/2030-03-14.txt"]
    body = reports.get("daily-report/2030-03-14.txt")
    assert body is not None and body.startswith("Daily report for 2030-03-14")
    assert f"orders: {info.result['orders']}" in body
    assert metrics.calls == 2
    assert reports.puts == 1


def test_daily_report_runs_by_itself_every_day_at_nine_utc() -> None:
    # given: a day and a half with nothing triggered by hand
    with TestEnvironment(start=datetime(2030, 3, 14, tzinfo=UTC)) as env:
        # when: the clock passes 09:00 twice
        env.advance(timedelta(hours=36))
        runs = list(reversed(env.list(task_id="daily-report").runs))

    # then: one run each day, started at 09:00, each filing its own day's report
    nine = datetime(2030, 3, 14, 9, tzinfo=UTC)
    assert [run.started_at for run in runs] == [nine, nine + timedelta(days=1)]
    assert [run.status for run in runs] == [RunStatus.COMPLETED] * 2
    assert [run.payload for run in runs] == [{"title": "Daily report"}] * 2
    assert reports.names() == ["daily-report/2030-03-14.txt", "daily-report/2030-03-15.txt"]


def test_daily_report_uses_the_payload_title() -> None:
    with TestEnvironment(start=datetime(2031, 7, 1, 8, tzinfo=UTC)) as env:
        run = env.trigger("daily-report", {"title": "Ops summary"})
        info = env.run_until_complete(run.run_id)
    assert info.result["day"] == "2031-07-01"
    body = reports.get("daily-report/2031-07-01.txt")
    assert body is not None and body.startswith("Ops summary for 2031-07-01")


# -- approval-gate ---------------------------------------------------------------------------


def _open_request(env: TestEnvironment, request_id: str) -> str:
    run = env.trigger("approval-gate", {"request_id": request_id, "amount_cents": 25_000})
    info = env.run_until_complete(run.run_id)
    assert info.status is RunStatus.WAITING
    assert info.waiting_for == "approval"
    assert approvals.status(request_id) == "pending"
    return run.run_id


def test_approval_gate_continues_when_approved(env: TestEnvironment) -> None:
    run_id = _open_request(env, "r-1")

    env.advance(timedelta(hours=3))
    env.send_event(run_id, "approval", {"approved": True, "approver": "ana"})
    info = env.run_until_complete(run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.result == {"request_id": "r-1", "status": "approved", "approver": "ana"}
    assert approvals.status("r-1") == "approved"
    assert kinds(env.history(run_id)) == [
        ("step_completed", "open-request"),
        ("wait_started", "approval"),
        ("event_received", "approval"),
        ("step_completed", "apply-approval"),
    ]


def test_approval_gate_fails_without_retry_when_rejected(env: TestEnvironment) -> None:
    run_id = _open_request(env, "r-2")

    env.send_event(run_id, "approval", {"approved": False, "approver": "bo", "comment": "no"})
    info = env.run_until_complete(run_id)

    assert info.status is RunStatus.FAILED
    assert info.attempts == 1  # NonRetryableError skips the task's retry budget
    assert info.error is not None
    assert info.error.type == "NonRetryableError"
    assert "rejected by bo: no" in info.error.message
    request = approvals.request("r-2")
    assert request is not None
    assert (request["status"], request["decided_by"], request["comment"]) == (
        "rejected",
        "bo",
        "no",
    )


def test_approval_gate_expires_the_request_after_24_hours(env: TestEnvironment) -> None:
    run_id = _open_request(env, "r-3")

    env.advance(timedelta(hours=23, minutes=59))
    assert env.get(run_id).status is RunStatus.WAITING
    env.advance(timedelta(minutes=1))

    info = env.get(run_id)
    assert info.status is RunStatus.COMPLETED
    assert info.result == {"request_id": "r-3", "status": "expired", "approver": None}
    assert approvals.status("r-3") == "expired"
    assert kinds(env.history(run_id))[-2:] == [
        ("wait_timed_out", "approval"),
        ("step_completed", "expire-request"),
    ]


def test_approval_gate_refuses_a_malformed_decision(env: TestEnvironment) -> None:
    run_id = _open_request(env, "r-4")
    env.send_event(run_id, "approval", {"approve": "yes please"})
    info = env.run_until_complete(run_id)
    assert info.status is RunStatus.FAILED
    assert info.error is not None and "malformed" in info.error.message
    assert approvals.status("r-4") == "pending"


# -- the same examples on moto (DynamoDB + S3 adapters) ------------------------------------


def test_process_order_crash_on_moto_charges_once() -> None:
    orders.crash_before_next_update()
    with TestEnvironment(backend="moto") as env:
        run = env.trigger("process-order", {"order_id": "o-moto"})
        info = env.run_until_complete(run.run_id)
        history = kinds(env.history(run.run_id))

    assert env.crashes == 1
    assert info.status is RunStatus.COMPLETED
    assert payments.calls == 1
    assert len(payments.charges) == 1
    assert history == [
        ("step_completed", "fetch-order"),
        ("step_completed", "charge"),
        ("step_completed", "update-order"),
    ]


def test_approval_gate_on_moto() -> None:
    with TestEnvironment(backend="moto") as env:
        run_id = _open_request(env, "r-moto")
        env.send_event(run_id, "approval", {"approved": True, "approver": "cy"})
        info = env.run_until_complete(run_id)
    assert info.status is RunStatus.COMPLETED
    assert approvals.status("r-moto") == "approved"
