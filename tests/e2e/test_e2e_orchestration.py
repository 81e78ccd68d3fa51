"""End to end over HTTP: the orchestration primitives on `durable dev` (moto, SQS, worker
processes), one test each: child runs (invoke, trigger), async fan-out, callbacks,
compensation, `ctx.patched`, heartbeats across a crashed invocation, at-most-once steps.

The example tasks call the fakes of `tasks.fakes`, which keep their state in files. The dev
servers of a session keep them in `devserver.FAKES_DIR` (`devserver.clean_env`); the
`server_fakes` fixture points this process's fakes there too, and each test uses ids of its
own, because several servers share that directory.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tests.e2e.devserver import FAKES_DIR
from tests.e2e.e2e_tasks import executions

from durable.storage.base import token_key
from tasks.fakes import mail, payments, reviews, travel

if TYPE_CHECKING:
    from tests.e2e.conftest import WaitFor
    from tests.e2e.devserver import DevServer

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def server_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read the fakes' files where the session's dev servers keep them."""
    monkeypatch.setenv("DURABLE_FAKES_DIR", str(FAKES_DIR))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def trigger(api: httpx.Client, task_id: str, payload: object) -> str:
    response = api.post(f"/tasks/{task_id}/runs", json={"payload": payload})
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


def history(api: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/runs/{run_id}/history")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["history"]
    return entries


def kinds(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(entry["kind"], entry["name"]) for entry in entries]


def children_of(api: httpx.Client, run_id: str, task_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = api.get(
        "/runs", params={"task_id": task_id, "limit": 1000}
    ).json()["runs"]
    # The list carries summaries: each child's payload and result come with the run itself.
    return [
        api.get(f"/runs/{run['run_id']}").json() for run in runs if run["parent_run_id"] == run_id
    ]


# -- child runs ------------------------------------------------------------------------


def test_invoke_returns_the_child_runs_result_to_its_parent(
    api: httpx.Client, wait_for: WaitFor
) -> None:
    item = {"sku": unique("sku"), "quantity": 4}
    run_id = trigger(api, "process-batch", {"batch_id": unique("batch"), "items": [item]})

    run = wait_for(run_id)

    assert run["status"] == "COMPLETED", run
    (child,) = children_of(api, run_id, "process-item")
    assert child["status"] == "COMPLETED"
    assert child["payload"] == item
    assert run["result"]["items"] == [child["result"]]
    assert child["result"]["total_cents"] == child["result"]["unit_cents"] * 4
    assert kinds(history(api, run_id)) == [
        ("child_started", "process-item"),
        ("child_completed", "process-item"),
        ("step_completed", "store-summary"),
    ]


def test_trigger_starts_a_child_run_that_goes_on_by_itself(
    api: httpx.Client, wait_for: WaitFor
) -> None:
    trip_id = unique("trip")
    email = f"{trip_id}@example.com"
    payload = {"trip_id": trip_id, "email": email, "origin": "Oslo", "destination": "Lisbon"}
    run_id = trigger(api, "book-trip", payload)

    run = wait_for(run_id)

    assert run["status"] == "COMPLETED", run
    child_id = run["result"]["itinerary_run_id"]
    child = wait_for(child_id)
    assert child["status"] == "COMPLETED", child
    assert (child["task_id"], child["parent_run_id"]) == ("send-itinerary", run_id)
    assert [message["id"] for message in mail.messages(email)] == [child["result"]]
    assert kinds(history(api, run_id))[-1] == ("child_triggered", "send-itinerary")
    # ctx.step_id was the payment's idempotency key
    (charge,) = [c for c in payments.charges if c["idempotency_key"].startswith(run_id)]
    assert charge["idempotency_key"] == f"{run_id}:charge:3"
    assert run["result"]["charge_id"] == charge["id"]


def test_an_async_task_gathers_children_started_together(
    api: httpx.Client, wait_for: WaitFor
) -> None:
    items = [{"sku": unique("sku"), "quantity": quantity} for quantity in (1, 2, 3)]
    run_id = trigger(api, "process-batch", {"batch_id": unique("batch"), "items": items})

    run = wait_for(run_id)

    assert run["status"] == "COMPLETED", run
    children = children_of(api, run_id, "process-item")
    assert sorted(child["payload"]["quantity"] for child in children) == [1, 2, 3]
    by_sku = {child["payload"]["sku"]: child["result"] for child in children}
    assert run["result"]["items"] == [by_sku[item["sku"]] for item in items]
    assert run["result"]["total_cents"] == sum(r["total_cents"] for r in by_sku.values())
    entries = history(api, run_id)
    # the first invocation started all three before anything was awaited
    started = entries[:3]
    assert [(e["kind"], e["position"], e["task_attempt"]) for e in started] == [
        ("child_started", 0, 1),
        ("child_started", 1, 1),
        ("child_started", 2, 1),
    ]
    assert sorted(e["value"] for e in started) == sorted(child["run_id"] for child in children)
    completed = [e["position"] for e in entries if e["kind"] == "child_completed"]
    assert sorted(completed) == [0, 1, 2]


# -- callbacks -------------------------------------------------------------------------


def test_a_callback_token_completes_a_waiting_run_once(
    api: httpx.Client, wait_for: WaitFor
) -> None:
    url = f"https://docs.example.com/{unique('scan')}-blurry.png"
    run_id = trigger(api, "extract-document", {"document_url": url})
    waiting = wait_for(run_id, {"WAITING"})
    (ticket,) = reviews.tickets(url)  # the submit step handed the token to the review queue
    token = ticket["token"]
    assert (
        waiting["waiting_for"] == f"callback:{token_key(token)[:6]}…"
    )  # redacted: reading runs is not enough

    review = {"approved": True, "reviewer": "ana", "fields": {"total": "99.00"}}
    completed = api.post(f"/callbacks/{token}", json={"data": review})
    assert completed.status_code == 202, completed.text

    run = wait_for(run_id)
    assert run["status"] == "COMPLETED", run
    assert run["result"]["reviewed_by"] == "ana"
    assert run["result"]["fields"] == {"total": "99.00"}
    assert kinds(history(api, run_id))[-3:] == [
        ("step_completed", "submit:review"),
        ("callback_completed", "review"),
        ("step_completed", "save-extraction"),
    ]
    again = api.post(f"/callbacks/{token}", json={"data": review})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "callback_completed"
    unknown = api.post(f"/callbacks/{uuid.uuid4().hex}", json={"data": review})
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"]["code"] == "unknown_callback"


# -- compensation ----------------------------------------------------------------------


def test_a_failed_saga_runs_its_compensations(api: httpx.Client, wait_for: WaitFor) -> None:
    trip_id = unique("trip")
    payload = {
        "trip_id": trip_id,
        "email": f"{trip_id}@example.com",
        "origin": "Oslo",
        "destination": "Venice",  # no rental cars there
    }
    run_id = trigger(api, "book-trip", payload)

    run = wait_for(run_id)

    assert run["status"] == "FAILED", run
    assert run["error"]["type"] == "NoCarsAvailable"
    assert kinds(history(api, run_id)) == [
        ("step_completed", "reserve-flight"),
        ("step_completed", "reserve-hotel"),
        ("step_failed", "reserve-car"),
        ("step_completed", "compensate:reserve-hotel"),
        ("step_completed", "compensate:reserve-flight"),
    ]
    assert [(r["kind"], r["status"]) for r in travel.reservations(trip_id)] == [
        ("flight", "cancelled"),
        ("hotel", "cancelled"),
    ]
    assert children_of(api, run_id, "send-itinerary") == []


# -- versioning ------------------------------------------------------------------------


def test_a_new_run_takes_the_patched_path(api: httpx.Client, wait_for: WaitFor) -> None:
    user_id = unique("user")
    run_id = trigger(api, "process-user", {"user_id": user_id})
    waiting = wait_for(run_id, {"WAITING"})
    assert waiting["waiting_for"] == "email-verified"
    assert waiting["version"]["task"] == "2"

    sent = api.post(f"/runs/{run_id}/events/email-verified", json={"data": {}})
    assert sent.status_code == 202, sent.text
    run = wait_for(run_id)

    assert run["status"] == "COMPLETED", run
    (welcome,) = mail.messages(f"{user_id}@example.com")
    assert run["result"] == {"user_id": user_id, "status": "active", "welcome_email": welcome["id"]}
    assert kinds(history(api, run_id))[:4] == [
        ("step_completed", "fetch-user"),
        ("patch_marker", "send-welcome-email"),
        ("step_started", "send-welcome-email"),
        ("step_completed", "send-welcome-email"),
    ]


# -- heartbeats and at-most-once steps across a crashed invocation ---------------------


def test_a_step_resumes_from_its_last_heartbeat_after_a_crash(
    api: httpx.Client, wait_for: WaitFor, dev_server: DevServer, tmp_path: Path
) -> None:
    # given: a step that heartbeats after each of 10 items, and whose process dies at item 5
    started = time.monotonic()
    run_id = trigger(api, "e2e-heartbeat", {"dir": str(tmp_path), "items": 10, "crash_at": 5})

    run = wait_for(run_id, timeout=40)

    # then: the second attempt started at item 5, the last heartbeat's details
    assert run["status"] == "COMPLETED", run
    assert run["result"] == {"resumed_from": 5, "items": 10}
    assert [executions(tmp_path, f"item-{index}") for index in range(10)] == [
        1, 1, 1, 1, 1, 2, 1, 1, 1, 1,
    ]  # fmt: skip
    assert dev_server.saw(f"{run_id} (start) crashed")
    entries = history(api, run_id)
    failed = [e for e in entries if e["kind"] == "step_failed"]
    assert [(e["attempt"], e["error"]["type"]) for e in failed] == [(1, "HeartbeatTimeoutError")]
    beats = [e["value"] for e in entries if e["kind"] == "step_heartbeat"]
    assert beats == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert time.monotonic() - started < 30


def test_an_at_most_once_step_that_crashed_is_not_run_again(
    api: httpx.Client, wait_for: WaitFor, dev_server: DevServer, tmp_path: Path
) -> None:
    # given: a step whose process dies after its side effect, before recording it
    run_id = trigger(api, "e2e-at-most-once", {"dir": str(tmp_path)})

    run = wait_for(run_id, timeout=40)

    # then: the redelivered invocation finds the start marker and fails the step
    assert run["status"] == "FAILED", run
    assert run["error"]["type"] == "CrashedAfterStartError"
    assert executions(tmp_path, "side-effect") == 1
    assert dev_server.saw(f"{run_id} (start) crashed")
    assert [(e["kind"], e["attempt"]) for e in history(api, run_id)] == [
        ("step_started", 1),
        ("step_failed", 1),
    ]
