"""The orchestration examples in `src/tasks`, run through the test kit on a virtual clock.

extract-document (fallback steps, a callback), process-user (ctx.patched, at-most-once),
process-batch (async fan-out over child runs), book-trip (compensation, ctx.step_id,
ctx.trigger) and import-rows (heartbeats). Each test reads the fakes' state (the outside
world) and the run's checkpoint log (what the engine recorded).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import tasks
from durable import Context, RunStatus, TaskRegistry, WaitTimeoutError, default_registry, task
from durable.client import HistoryEntry
from durable.errors import CallbackAlreadyCompletedError
from durable.replayer import ReplayStatus, replay_run
from durable.storage.base import token_key
from durable.testing import TestEnvironment
from tasks import fakes
from tasks.fakes import (
    FLAKY_CARD,
    documents,
    exports,
    extractor,
    llm,
    mail,
    ocr,
    payments,
    pricing,
    reviews,
    travel,
    users,
    warehouse,
)
from tasks.process_user import VERIFY_TIMEOUT

ORCHESTRATION_EXAMPLES = {
    "extract-document",
    "process-user",
    "process-batch",
    "process-item",
    "book-trip",
    "send-itinerary",
    "import-rows",
}
PDF = "https://docs.example.com/invoices/inv-1.pdf"
SCAN = "https://docs.example.com/invoices/inv-2-scan.png"
BLURRY = "https://docs.example.com/invoices/inv-3-blurry.png"


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


def test_importing_tasks_registers_the_orchestration_examples() -> None:
    assert tasks.__name__ == "tasks"
    assert set(default_registry.ids()) >= ORCHESTRATION_EXAMPLES


# -- extract-document: fallback steps and a human review through a callback -------------


def test_a_pdf_is_read_by_the_primary_extractor(env: TestEnvironment) -> None:
    run = env.trigger("extract-document", {"document_url": PDF})

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.result["source"] == "primary"
    assert info.result["fields"] == fakes.document_fields(PDF)
    assert (ocr.calls, llm.calls) == (0, 0)
    assert kinds(env.history(run.run_id)) == [
        ("step_completed", "primary-extract"),
        ("step_completed", "save-extraction"),
    ]
    assert documents.document(PDF) == {
        "url": PDF,
        "status": "processed",
        "fields": fakes.document_fields(PDF),
        "source": "primary",
        "reviewed_by": None,
    }


def test_a_scan_falls_back_to_ocr_and_llm_and_the_refusal_is_not_retried(
    env: TestEnvironment,
) -> None:
    # given: the OCR service times out twice; its step retries on its own policy
    ocr.fail_next(2)
    run = env.trigger("extract-document", {"document_url": SCAN})

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.result["source"] == "fallback"
    assert info.result["fields"] == fakes.document_fields(SCAN)
    assert info.result["confidence"] >= 0.8  # sure enough: nobody was asked
    assert extractor.calls == 1  # UnsupportedDocument is non-retryable
    assert (ocr.calls, llm.calls) == (3, 1)
    assert [(e.kind, e.name, e.attempt) for e in env.history(run.run_id)] == [
        ("step_failed", "primary-extract", 1),
        ("step_failed", "ocr", 1),
        ("step_failed", "ocr", 2),
        ("step_completed", "ocr", 3),
        ("step_completed", "llm-extract", 1),
        ("step_completed", "save-extraction", 1),
    ]
    assert reviews.tickets() == []


def test_a_task_retry_does_not_ask_again_what_the_log_already_answers(
    env: TestEnvironment,
) -> None:
    # given: the LLM fails past its step's budget, so the task attempt fails and is retried
    llm.fail_next(3)
    run = env.trigger("extract-document", {"document_url": SCAN})

    info = env.run_until_complete(run.run_id)

    # then (the seed's promise): the refused primary extraction is logged, not re-attempted,
    # and the OCR text comes from the log; only the failed LLM step runs again
    assert info.status is RunStatus.COMPLETED
    assert info.attempts == 2
    assert (extractor.calls, ocr.calls, llm.calls) == (1, 1, 4)


def _waiting_for_review(env: TestEnvironment, url: str = BLURRY) -> tuple[str, str]:
    """Start an extraction that needs a person; (run id, the review ticket's token)."""
    run = env.trigger("extract-document", {"document_url": url})
    info = env.run_until_complete(run.run_id)
    assert info.status is RunStatus.WAITING
    (ticket,) = reviews.tickets(url)
    # The run waits for the token's hash, never the token; views show a prefix of the hash.
    assert info.waiting_for == f"callback:{token_key(ticket['token'])[:6]}…"
    assert ticket["token"][:6] not in info.waiting_for
    assert ticket["extraction"]["confidence"] < 0.8
    return run.run_id, str(ticket["token"])


def test_a_low_confidence_extraction_waits_for_a_reviewer_and_saves_the_corrections(
    env: TestEnvironment,
) -> None:
    run_id, token = _waiting_for_review(env)
    assert documents.document(BLURRY) is None  # nothing saved while a person looks
    corrected = {"invoice_number": "INV-00003", "vendor": "Globex", "total": "12.50"}

    env.complete_callback(token, {"approved": True, "reviewer": "ana", "fields": corrected})
    info = env.run_until_complete(run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.result["fields"] == corrected
    assert info.result["reviewed_by"] == "ana"
    saved = documents.document(BLURRY)
    assert saved is not None and saved["fields"] == corrected
    assert kinds(env.history(run_id))[-4:] == [
        ("callback_created", "review"),
        ("step_completed", "submit:review"),
        ("callback_completed", "review"),
        ("step_completed", "save-extraction"),
    ]
    with pytest.raises(CallbackAlreadyCompletedError):  # tokens are single-use
        env.complete_callback(token, {"approved": False})


def test_a_rejected_extraction_fails_the_run_without_retrying(env: TestEnvironment) -> None:
    run_id, token = _waiting_for_review(env)

    env.complete_callback(token, {"approved": False, "reviewer": "bo", "comment": "wrong"})
    info = env.run_until_complete(run_id)

    assert info.status is RunStatus.FAILED
    assert info.error is not None and info.error.type == "NonRetryableError"
    assert info.attempts == 1
    document = documents.document(BLURRY)
    assert document is not None and document["status"] == "rejected"


def test_an_unanswered_review_leaves_the_document_for_manual_handling(
    env: TestEnvironment,
) -> None:
    run_id, token = _waiting_for_review(env)

    env.advance(timedelta(hours=24))

    info = env.get(run_id)
    assert info.status is RunStatus.COMPLETED
    assert info.result["status"] == "needs_manual_handling"
    document = documents.document(BLURRY)
    assert document is not None
    assert document["status"] == "needs_manual_handling"
    assert document["reason"] == "no review within 24 hours"
    with pytest.raises(CallbackAlreadyCompletedError):  # too late: the token has expired
        env.complete_callback(token, {"approved": True})


def test_a_review_tool_error_leaves_the_document_for_manual_handling(
    env: TestEnvironment,
) -> None:
    run_id, token = _waiting_for_review(env)

    env.complete_callback(token, error={"type": "ReviewerUnavailable", "message": "on leave"})
    info = env.run_until_complete(run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.result["status"] == "needs_manual_handling"
    document = documents.document(BLURRY)
    assert document is not None and "on leave" in document["reason"]


def test_the_review_callback_on_moto() -> None:
    with TestEnvironment(backend="moto") as env:
        run_id, token = _waiting_for_review(env)
        env.complete_callback(token, {"approved": True, "reviewer": "cy"})
        info = env.run_until_complete(run_id)
        with pytest.raises(CallbackAlreadyCompletedError):
            env.complete_callback(token, {"approved": True})

    assert info.status is RunStatus.COMPLETED
    assert info.result["reviewed_by"] == "cy"
    assert info.result["fields"] == ocr_then_llm_fields(BLURRY)


def ocr_then_llm_fields(url: str) -> dict[str, str]:
    """What the fallback pipeline reads from a blurry document (illegible values and all)."""
    text = ocr.process(url)["text"]
    answer = llm.generate(model="m", prompt="Extract:\n" + text)["text"]
    fields: dict[str, str] = json.loads(answer)["fields"]
    return fields


# -- process-user: ctx.patched serves runs of v1 and v2 ----------------------------------


def process_user_v1(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
    """What `process-user` looked like before the welcome email (see its docstring)."""
    ctx.step("fetch-user", users.get, payload["user_id"])
    try:
        ctx.wait_for_event("email-verified", timeout=VERIFY_TIMEOUT)
    except WaitTimeoutError:
        return {"user_id": payload["user_id"], "status": "unverified"}
    ctx.step("mark-processed", users.mark_processed, payload["user_id"])
    return {"user_id": payload["user_id"], "status": "active"}


def process_user_v2_unpatched(ctx: Context, payload: dict[str, Any]) -> None:
    """The welcome email inserted without `ctx.patched`: what not to deploy."""
    user = ctx.step("fetch-user", users.get, payload["user_id"])
    ctx.step("send-welcome-email", mail.send, to=user["email"], subject="Welcome!", body="hi")
    ctx.wait_for_event("email-verified", timeout=VERIFY_TIMEOUT)
    ctx.step("mark-processed", users.mark_processed, payload["user_id"])


def _deploy(env: TestEnvironment, registry: TaskRegistry) -> None:
    env.registry = registry
    env.client.registry = env.worker.registry = env.worker.starter.registry = registry


def test_a_new_run_takes_the_patched_path(env: TestEnvironment) -> None:
    run = env.trigger("process-user", {"user_id": "u-new"})
    assert env.run_until_complete(run.run_id).waiting_for == "email-verified"
    (welcome,) = mail.messages("u-new@example.com")

    env.send_event(run.run_id, "email-verified", {})
    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.task_version == "2"
    assert info.result == {"user_id": "u-new", "status": "active", "welcome_email": welcome["id"]}
    assert users.processed("u-new")
    assert kinds(env.history(run.run_id)) == [
        ("step_completed", "fetch-user"),
        ("patch_marker", "send-welcome-email"),
        ("step_started", "send-welcome-email"),  # at-most-once: the start is recorded first
        ("step_completed", "send-welcome-email"),
        ("wait_started", "email-verified"),
        ("event_received", "email-verified"),
        ("step_completed", "mark-processed"),
    ]


def test_a_v1_run_waiting_when_v2_is_deployed_finishes_on_the_old_path() -> None:
    v1 = TaskRegistry()
    task(id="process-user", version="1", registry=v1)(process_user_v1)
    unpatched = TaskRegistry()
    task(id="process-user", version="2", registry=unpatched)(process_user_v2_unpatched)
    with TestEnvironment(registry=v1) as env:
        # given: a run started under v1 waits for its verification
        old = env.trigger("process-user", {"user_id": "u-old"})
        assert env.run_until_complete(old.run_id).waiting_for == "email-verified"
        run, history = env.store.get_run(old.run_id), env.store.load_history(old.run_id)
        assert run is not None

        # then: today's v2 replays its log cleanly; inserting the step plainly would not
        assert replay_run(run, history, env.codec, default_registry).ok
        naive = replay_run(run, history, env.codec, unpatched)
        assert naive.status is ReplayStatus.DIVERGED and naive.position == 1

        # when: v2 is deployed and the run resumes
        _deploy(env, default_registry)
        env.send_event(old.run_id, "email-verified", {})
        info = env.run_until_complete(old.run_id)
        new = env.trigger("process-user", {"user_id": "u-new"})
        env.run_until_complete(new.run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.result == {"user_id": "u-old", "status": "active", "welcome_email": None}
    assert mail.messages("u-old@example.com") == []  # v1 runs never sent one
    assert len(mail.messages("u-new@example.com")) == 1  # runs started under v2 do
    assert "patch_marker" not in [kind for kind, _ in kinds(env.history(old.run_id))]


def test_a_crash_after_the_welcome_email_does_not_send_it_again(env: TestEnvironment) -> None:
    # given: the invocation dies after the mail went out, before the step recorded it
    mail.crash_after_next_send()
    run = env.trigger("process-user", {"user_id": "u-crash"})

    info = env.run_until_complete(run.run_id)

    assert env.crashes == 1
    assert info.waiting_for == "email-verified"  # the run went on without it
    assert len(mail.messages("u-crash@example.com")) == 1
    failed = [e for e in env.history(run.run_id) if e.kind == "step_failed"]
    assert [(e.name, e.error.type if e.error else None) for e in failed] == [
        ("send-welcome-email", "CrashedAfterStartError")
    ]


def test_an_unverified_user_is_not_processed_after_a_week(env: TestEnvironment) -> None:
    run = env.trigger("process-user", {"user_id": "u-quiet"})
    env.run_until_idle()

    env.advance(VERIFY_TIMEOUT)

    info = env.get(run.run_id)
    assert info.status is RunStatus.COMPLETED
    assert info.result["status"] == "unverified"
    assert not users.processed("u-quiet")


# -- process-batch: an async task gathers child runs ------------------------------------

BATCH: dict[str, Any] = {
    "batch_id": "b-1",
    "items": [
        {"sku": "apple", "quantity": 3},
        {"sku": "pear", "quantity": 1},
        {"sku": "plum", "quantity": 12},
    ],
}


def test_a_batch_fans_out_one_child_per_item_and_sums_their_results(
    env: TestEnvironment,
) -> None:
    pricing.fail_next(1)  # one child's quote fails once and is retried by its step
    run = env.trigger("process-batch", BATCH)

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    expected = [pricing.quote(item["sku"], item["quantity"]) for item in BATCH["items"]]
    assert info.result["items"] == expected
    assert info.result["total_cents"] == sum(item["total_cents"] for item in expected)
    children = env.list(task_id="process-item").runs
    assert len(children) == 3
    assert {child.parent_run_id for child in children} == {run.run_id}
    assert {child.status for child in children} == {RunStatus.COMPLETED}
    history = env.history(run.run_id)
    # every child was started by the first invocation, before any result came back
    assert kinds(history)[:3] == [("child_started", "process-item")] * 3
    assert {entry.task_attempt for entry in history[:3]} == {1}
    assert sorted(e.position for e in history if e.kind == "child_completed") == [0, 1, 2]
    assert kinds(history)[-1] == ("step_completed", "store-summary")
    assert fakes.reports.get("batches/b-1.json") is not None


def test_a_child_that_fails_for_good_fails_the_batch_after_one_parent_retry(
    env: TestEnvironment,
) -> None:
    items = [{"sku": "apple", "quantity": 1}, {"sku": "discontinued-pear", "quantity": 2}]
    run = env.trigger("process-batch", {"batch_id": "b-2", "items": items})

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.FAILED
    assert info.error is not None and info.error.type == "UnknownSku"
    assert info.attempts == 2
    children = env.list(task_id="process-item").runs
    # the parent's retry kept the apple's result and invoked the pear's child again
    assert sorted((c.payload["sku"], c.status) for c in children) == [
        ("apple", RunStatus.COMPLETED),
        ("discontinued-pear", RunStatus.FAILED),
        ("discontinued-pear", RunStatus.FAILED),
    ]
    assert {child.parent_run_id for child in children} == {run.run_id}


# -- book-trip: a saga with compensations, ctx.step_id and ctx.trigger --------------------


def trip(trip_id: str, destination: str = "Lisbon", **extra: Any) -> dict[str, Any]:
    return {
        "trip_id": trip_id,
        "email": f"{trip_id}@example.com",
        "origin": "Paris",
        "destination": destination,
        **extra,
    }


def test_a_trip_books_everything_charges_once_and_fires_the_itinerary(
    env: TestEnvironment,
) -> None:
    run = env.trigger("book-trip", trip("t-1"))

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    reservations = travel.reservations("t-1")
    assert [(r["kind"], r["status"]) for r in reservations] == [
        ("flight", "active"),
        ("hotel", "active"),
        ("car", "active"),
    ]
    (charge,) = payments.charges
    assert charge["amount_cents"] == info.result["total_cents"]
    assert charge["idempotency_key"] == f"{run.run_id}:charge:3"  # ctx.step_id
    itinerary = env.get(info.result["itinerary_run_id"])
    assert itinerary.task_id == "send-itinerary"
    assert itinerary.parent_run_id == run.run_id
    assert itinerary.status is RunStatus.COMPLETED
    (email,) = mail.messages("t-1@example.com")
    assert itinerary.result == email["id"]


def test_a_trip_without_a_car_is_unwound_newest_first(env: TestEnvironment) -> None:
    run = env.trigger("book-trip", trip("t-venice", "Venice"))

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.FAILED
    assert info.error is not None and info.error.type == "NoCarsAvailable"
    assert info.attempts == 1  # non-retryable: no task retry
    assert [(r["kind"], r["status"]) for r in travel.reservations("t-venice")] == [
        ("flight", "cancelled"),
        ("hotel", "cancelled"),
    ]
    assert kinds(env.history(run.run_id)) == [
        ("step_completed", "reserve-flight"),
        ("step_completed", "reserve-hotel"),
        ("step_failed", "reserve-car"),
        ("step_completed", "compensate:reserve-hotel"),
        ("step_completed", "compensate:reserve-flight"),
    ]
    assert payments.calls == 0
    assert env.list(task_id="send-itinerary").runs == []


def test_a_card_that_cannot_be_charged_cancels_all_three_reservations(
    env: TestEnvironment,
) -> None:
    payments.fail_next(1000)
    run = env.trigger("book-trip", trip("t-broke"))

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.FAILED
    assert info.error is not None and info.error.type == "ServiceUnavailable"
    assert payments.calls == 6  # the charge step's budget, in each of two task attempts
    assert {r["status"] for r in travel.reservations("t-broke")} == {"cancelled"}
    compensations = [name for kind, name in kinds(env.history(run.run_id)) if "compensate" in name]
    assert compensations == [
        "compensate:reserve-car",
        "compensate:reserve-hotel",
        "compensate:reserve-flight",
    ]


def test_the_step_id_keeps_a_retried_charge_from_charging_twice(env: TestEnvironment) -> None:
    # given: a card whose first charge per key fails, and a crash right after the next one
    run = env.trigger("book-trip", trip("t-flaky", card_token=FLAKY_CARD))
    payments.crash_after_next_charge()

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert env.crashes == 1
    assert payments.calls == 3  # failed, charged (then crashed), answered from the key
    (charge,) = payments.charges
    assert charge["idempotency_key"] == f"{run.run_id}:charge:3"
    assert info.result["charge_id"] == charge["id"]


def test_the_saga_on_moto() -> None:
    with TestEnvironment(backend="moto") as env:
        run = env.trigger("book-trip", trip("t-hydra", "Hydra"))
        info = env.run_until_complete(run.run_id)
        names = [entry.name for entry in env.history(run.run_id)]

    assert info.status is RunStatus.FAILED
    assert names[-2:] == ["compensate:reserve-hotel", "compensate:reserve-flight"]
    assert {r["status"] for r in travel.reservations("t-hydra")} == {"cancelled"}


# -- import-rows: heartbeats and resuming from their details ----------------------------


def test_an_import_runs_in_one_attempt_and_heartbeats_each_batch(env: TestEnvironment) -> None:
    run = env.trigger("import-rows", {"source": "crm.csv"})

    info = env.run_until_complete(run.run_id)

    assert info.result == {
        "source": "crm.csv",
        "table": "customers",
        "rows": 250,
        "resumed_from": 0,
    }
    beats = [e.value for e in env.history(run.run_id) if e.kind == "step_heartbeat"]
    assert beats == [{"next_row": 100}, {"next_row": 200}, {"next_row": 250}]
    assert warehouse.row_count("customers") == 250


def test_an_import_cut_off_resumes_from_its_last_heartbeat(env: TestEnvironment) -> None:
    # given: 1,000 rows, and an invocation that dies after writing the 4th batch of 100
    exports.publish("big.csv", 1000)
    warehouse.crash_after_batches(4)
    run = env.trigger("import-rows", {"source": "big.csv"})
    env.run_until_idle()
    assert env.crashes == 1

    # when: the heartbeat timeout passes, the sweeper hands the run to a new invocation
    env.advance(timedelta(seconds=31))
    assert env.sweep() == 1
    info = env.run_until_complete(run.run_id)

    # then: attempt 2 started at row 300, the last heartbeat of attempt 1
    assert info.status is RunStatus.COMPLETED
    assert info.result["resumed_from"] == 300
    assert warehouse.row_count("customers") == 1000
    assert warehouse.rows_written == 1100  # only the batch in flight was written twice
    failed = [e for e in env.history(run.run_id) if e.kind == "step_failed"]
    assert [(e.attempt, e.error.type if e.error else None) for e in failed] == [
        (1, "HeartbeatTimeoutError")
    ]
    assert failed[0].at - env.history(run.run_id)[0].at < timedelta(minutes=1)


def test_the_heartbeating_import_on_moto() -> None:
    exports.publish("moto.csv", 500)
    warehouse.crash_after_batches(2)
    with TestEnvironment(backend="moto") as env:
        run = env.trigger("import-rows", {"source": "moto.csv", "batch_size": 100})
        info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.result["resumed_from"] == 100
    assert warehouse.row_count("customers") == 500


# -- price-catalog and fastest-quote: fan-out with ctx.map and ctx.parallel ---------------


def unit_cents(sku: str) -> int:
    """What the pricing fake charges for one unit of `sku` (the same on every call)."""
    return int(pricing.quote(sku, 1)["unit_cents"])


def parent_invocations(env: TestEnvironment, run_id: str) -> int:
    return sum(1 for message, _ in env.handled if message.run_id == run_id)


def test_importing_tasks_registers_the_fan_out_examples() -> None:
    assert set(default_registry.ids()) >= {
        "price-catalog",
        "price-sku",
        "fastest-quote",
        "carrier-quote",
    }


def test_a_catalog_is_priced_in_input_order_and_unknown_skus_are_tolerated(
    env: TestEnvironment,
) -> None:
    skus = ["plum", "discontinued-zebra", "apple", "pear", "discontinued-aardvark", "fig"]
    run = env.trigger("price-catalog", {"catalog_id": "c-1", "skus": skus})

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    known = [sku for sku in skus if not sku.startswith("discontinued")]
    assert info.result == {
        "catalog_id": "c-1",
        "total_cents": sum(unit_cents(sku) for sku in known),
        "priced": 4,
        "failed": ["discontinued-zebra", "discontinued-aardvark"],  # input order, not sorted
    }
    # one child per SKU, child i priced SKU i; the unknown ones failed once, for good
    children = sorted(env.list(task_id="price-sku").runs, key=lambda c: c.run_id)
    assert [child.payload for child in children] == skus
    assert [child.run_id for child in children] == [f"{run.run_id}.1.0.{i}" for i in range(6)]
    assert {child.parent_run_id for child in children} == {run.run_id}
    for child, sku in zip(children, skus, strict=True):
        if sku in known:
            assert (child.status, child.result) == (RunStatus.COMPLETED, unit_cents(sku))
        else:
            assert child.status is RunStatus.FAILED
            assert child.error is not None and child.error.type == "UnknownSku"
            assert child.attempts == 1
    history = env.history(run.run_id)
    assert kinds(history) == [
        ("batch_started", "map:price-sku"),
        ("batch_completed", "map:price-sku"),
    ]
    # the batch's end refers to the children's result items, which hold each outcome
    assert history[1].value == {
        "batch": {"run_id": run.run_id, "task_attempt": 1, "position": 0},
        "total": 6,
        "succeeded": 4,
        "failed": 2,
    }
    outcomes = env.store.list_batch_results(run.run_id, 1, 0)
    assert [item.ok for item in outcomes] == [True, False, True, True, False, True]
    assert parent_invocations(env, run.run_id) == 2


def test_a_catalog_with_too_many_unknown_skus_fails_at_once(env: TestEnvironment) -> None:
    skus = [f"discontinued-{i}" for i in range(6)] + ["apple", "pear"]
    run = env.trigger("price-catalog", {"catalog_id": "c-bad", "skus": skus})

    info = env.run_until_complete(run.run_id)

    # six failures are one more than tolerated: BatchFailedError, listed non-retryable
    assert info.status is RunStatus.FAILED
    assert info.error is not None and info.error.type == "BatchFailedError"
    assert "6 of 8 children failed" in info.error.message
    assert "UnknownSku" in info.error.message
    assert info.attempts == 1  # no second batch of children
    assert len(env.list(task_id="price-sku").runs) == 8
    assert kinds(env.history(run.run_id)) == [
        ("batch_started", "map:price-sku"),
        ("batch_failed", "map:price-sku"),
    ]


def test_cancelling_a_catalog_cancels_the_children_still_pending(env: TestEnvironment) -> None:
    run = env.trigger("price-catalog", {"catalog_id": "c-cancel", "skus": ["a", "b", "c"]})
    first = env.queue.pop_due(env.now())
    assert first is not None and first.run_id == run.run_id
    env.deliver(first)  # the parent starts the batch; no child has run yet

    env.cancel(run.run_id)
    env.run_until_idle()

    children = env.list(task_id="price-sku").runs
    assert len(children) == 3
    assert {child.status for child in children} == {RunStatus.CANCELLED}
    assert pricing.calls == 0


def test_a_catalog_of_a_thousand_skus_wakes_its_parent_twice(env: TestEnvironment) -> None:
    skus = [f"sku-{i:04d}" for i in range(1000)]
    for i in (17, 500, 999):
        skus[i] = f"discontinued-{i}"
    run = env.trigger("price-catalog", {"catalog_id": "c-big", "skus": skus})

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.result["priced"] == 997
    assert info.result["failed"] == ["discontinued-17", "discontinued-500", "discontinued-999"]
    assert info.result["total_cents"] == sum(
        unit_cents(sku) for sku in skus if not sku.startswith("discontinued")
    )
    # the parent ran to start the batch and once it was decided; never for each child
    assert parent_invocations(env, run.run_id) == 2
    assert len(env.list(task_id="price-sku", limit=1000).runs) == 1000


SHIPMENT = {"destination": "Lisbon", "weight_grams": 1200}


def test_the_fastest_quote_is_the_first_carrier_that_answers(env: TestEnvironment) -> None:
    run = env.trigger("fastest-quote", SHIPMENT)

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.result == fakes.carriers.quote("swiftship", "Lisbon", 1200)
    children = env.list(task_id="carrier-quote").runs
    assert sorted(child.payload["carrier"] for child in children) == sorted(fakes.CARRIERS)
    assert {child.parent_run_id for child in children} == {run.run_id}
    assert kinds(env.history(run.run_id)) == [
        ("batch_started", "quotes"),
        ("batch_completed", "quotes"),
    ]


def test_a_carrier_that_is_down_loses_the_race(env: TestEnvironment) -> None:
    fakes.carriers.take_down("swiftship")
    run = env.trigger("fastest-quote", SHIPMENT)

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert info.result["carrier"] == "parcelpost"  # the first success in input order
    assert fakes.carriers.calls("swiftship") == 1  # no retry in the child: the race is one
    (down,) = [c for c in env.list(task_id="carrier-quote").runs if c.status is RunStatus.FAILED]
    assert down.payload["carrier"] == "swiftship"
    assert down.error is not None and down.error.type == "ServiceUnavailable"


def test_no_quote_at_all_fails_the_run(env: TestEnvironment) -> None:
    fakes.carriers.take_down(*fakes.CARRIERS)
    run = env.trigger("fastest-quote", SHIPMENT)

    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.FAILED
    assert info.error is not None and info.error.type == "BatchFailedError"
    assert "3 of 3 children failed" in info.error.message
    assert [fakes.carriers.calls(name) for name in fakes.CARRIERS] == [1, 1, 1]


def test_cancelling_a_catalog_starts_no_further_children(env: TestEnvironment) -> None:
    # given: 150 SKUs, of which the first 100 (max_concurrency) are started
    skus = [f"sku-{i}" for i in range(150)]
    run = env.trigger("price-catalog", {"catalog_id": "c-cancel-big", "skus": skus})
    first = env.queue.pop_due(env.now())
    assert first is not None and first.run_id == run.run_id
    env.deliver(first)

    env.cancel(run.run_id)
    env.run_until_idle()

    children = env.list(task_id="price-sku", limit=1000).runs
    assert {child.status for child in children} == {RunStatus.CANCELLED}
    assert len(children) == 100
    assert pricing.calls == 0
