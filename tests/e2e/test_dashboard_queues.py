"""Queues in the dashboard, in Debian's Chromium against a `durable dev` of its own running
`tests.e2e.e2e_dashboard_queue_tasks` (a queue of concurrency 1 whose runs hold their slot
while they wait for the event "go"): three runs under one key show 1 slot in use and 2 runs
waiting in the Queues panel, whose click opens the key; a waiting run's page shows its queue,
key, priority and place in line (the higher priority one 1st, the other 2nd), and the runs
list says it waits for a slot; as the events come the panel drains to 0 in use and 0 waiting.
The trigger form sends a concurrency key, a priority and a ttl, refuses a negative priority
before sending anything, and shows a full queue's 429 `queue_full` message; a run it
started with a ttl of 1 s, behind a held slot, ends CANCELLED RunExpired on its page. A run pushed
back by a rate limit or waiting out a debounce says so, until when; on the session's stack,
whose tasks declare no queue, the panel is hidden.
Screenshots go to `$DURABLE_SCREENSHOTS` (`docs/screenshots/queues-*.png` are copies)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.e2e.browser import chromium, fits_the_screen, new_page, screenshot, tabs
from tests.e2e.devserver import DevServer, start_dev_server

pytestmark = pytest.mark.e2e

GATE, FULL = "dash-gate", "dash-full"


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    server = start_dev_server(tasks="tests.e2e.e2e_dashboard_queue_tasks")
    yield server
    assert server.stop() == 0, server.output[-3000:]


@pytest.fixture(scope="module")
def api(server: DevServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def browser(server: DevServer) -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def open_page(browser: Any, server: DevServer) -> Iterator[Any]:
    """`open_page(path)`: a tab at the dashboard's `path`; the bodies of the POSTs it makes
    are kept in `page.posts` as (url, JSON body)."""
    with tabs(browser, server.url) as open_tab:

        def open_one(path: str) -> Any:
            page = open_tab(path)
            page.posts = []
            page.on("request", lambda request: record(page, request))
            return page

        yield open_one


def record(page: Any, request: Any) -> None:
    if request.method == "POST":
        page.posts.append((request.url, json.loads(request.post_data or "null")))


def trigger(api: httpx.Client, task_id: str, **options: Any) -> str:
    reply = api.post(f"/tasks/{task_id}/runs", json={"payload": None, **options})
    assert reply.status_code == 202, reply.text
    return str(reply.json()["run_id"])


def wait_run(api: httpx.Client, run_id: str, check: Any, what: str, timeout: float = 30) -> Any:
    """Poll `GET /runs/{run_id}` until `check(run)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        run = api.get(f"/runs/{run_id}").json()
        if check(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} not {what} after {timeout}s: {run}"
        time.sleep(0.2)


def holds_slot(run: dict[str, Any]) -> bool:
    return bool(run["status"] == "WAITING" and run["waiting_for"] == "go")


def queue_row(page: Any, name: str) -> Any:
    return page.locator(f'#queues tr.queue-row[data-queue="{name}"]')


def release(api: httpx.Client, run_id: str) -> None:
    """Wait until the run holds the slot and waits for "go", send it, see it complete."""
    wait_run(api, run_id, holds_slot, "holding the slot")
    reply = api.post(f"/runs/{run_id}/events/go", json={"data": {"ok": True}})
    assert reply.status_code in (200, 202), reply.text
    wait_run(api, run_id, lambda run: run["status"] == "COMPLETED", "completed")


def test_the_queues_panel_shows_slots_and_waiting_runs_and_drains(
    open_page: Any, api: httpx.Client
) -> None:
    key = "tenant:acme"
    first = trigger(api, GATE, concurrency_key=key)
    wait_run(api, first, holds_slot, "holding the slot")
    second = trigger(api, GATE, concurrency_key=key)
    third = trigger(api, GATE, concurrency_key=key, priority=5)
    for run_id in (second, third):
        wait_run(api, run_id, lambda run: run["waiting_for"] == "queue:dash-llm", "queued")

    p = open_page("/")
    row = queue_row(p, "dash-llm")
    expect(row.locator('[data-cell="slots"]')).to_contain_text("1 / 1")
    expect(row.locator('[data-cell="waiting"]')).to_have_text("2")
    expect(row.locator('[data-cell="concurrency"]')).to_have_text("1")
    expect(row.locator('[data-cell="release"]')).to_have_text("no")
    expect(row.locator('[data-cell="tasks"]')).to_have_text(GATE)
    # The small queue's settings: its max size and its rate limit (10 a minute).
    small = queue_row(p, "dash-small")
    expect(small.locator('[data-cell="max_size"]')).to_have_text("1")
    expect(small.locator('[data-cell="rate"]')).to_have_text("10 / 1 min")
    expect(small.locator('[data-cell="slots"]')).to_contain_text("0 / 1")

    # A click opens the queue's keys (GET /queues/{name}); they refresh with the panel.
    row.locator("button").click()
    keys = p.locator('#queues tr.keys-row[data-keys-of="dash-llm"]')
    acme = keys.locator(f'tr[data-key="{key}"]')
    expect(acme).to_contain_text("1 / 1")
    expect(acme.locator("td").nth(2)).to_have_text("2")
    # The runs list says what the queued runs wait for.
    expect(p.locator(f'#runs tr[data-run-id="{second}"] td.info')).to_have_text(
        "a slot in queue dash-llm"
    )
    assert fits_the_screen(p)
    screenshot(p, "queues-panel")

    # A waiting run's page: its queue, key, priority and place (priority 5 went ahead).
    run_page = open_page(f"/runs/{second}")
    expect(run_page.locator("#run-status")).to_have_text("QUEUED")
    expect(run_page.locator("#run-queue")).to_have_text("dash-llm")
    expect(run_page.locator("#run-key")).to_have_text(key)
    expect(run_page.locator("#run-priority")).to_have_text("0")
    expect(run_page.locator("#run-waiting")).to_have_text(
        "Waiting for a slot in queue dash-llm, 2nd in line"
    )
    assert fits_the_screen(run_page)
    screenshot(run_page, "queues-run-waiting")
    ahead = open_page(f"/runs/{third}")
    expect(ahead.locator("#run-priority")).to_have_text("5")
    expect(ahead.locator("#run-waiting")).to_have_text(
        "Waiting for a slot in queue dash-llm, 1st in line"
    )

    # The events come one by one, in the queue's order; the panel drains.
    release(api, first)
    expect(ahead.locator("#run-status")).to_have_text("WAITING")
    expect(ahead.locator("#run-waiting")).to_contain_text('event "go"')
    expect(run_page.locator("#run-waiting")).to_have_text(
        "Waiting for a slot in queue dash-llm, 1st in line"
    )
    expect(row.locator('[data-cell="waiting"]')).to_have_text("1")
    release(api, third)
    release(api, second)
    expect(row.locator('[data-cell="slots"]')).to_contain_text("0 / 1")
    expect(row.locator('[data-cell="waiting"]')).to_have_text("0")
    expect(acme).to_contain_text("0 / 1")
    expect(acme.locator("td").nth(2)).to_have_text("0")
    expect(run_page.locator("#run-status")).to_have_text("COMPLETED")
    expect(run_page.locator("#run-waiting")).to_be_hidden()

    # A second click closes the keys.
    row.locator("button").click()
    expect(keys).to_have_count(0)


def test_the_trigger_form_sends_a_key_a_priority_and_a_ttl(
    open_page: Any, api: httpx.Client
) -> None:
    p = open_page("/")
    p.fill("#trigger-task", GATE)
    p.fill("#trigger-key", "tenant:form")
    p.fill("#trigger-priority", "-1")
    p.click("#trigger button[type=submit]")
    expect(p.locator('#trigger .field-error[data-error-for="flow"]')).to_have_text(
        "priority must be a whole number ≥ 0"
    )
    assert p.posts == []

    p.fill("#trigger-priority", "3")
    p.fill("#trigger-ttl", "600")
    p.click("#trigger button[type=submit]")
    expect(p).to_have_url(re.compile(r"/runs/run_[0-9a-f]+$"))
    ((url, body),) = p.posts
    assert url.endswith(f"/tasks/{GATE}/runs")
    assert body == {
        "payload": {},
        "concurrency_key": "tenant:form",
        "priority": 3,
        "ttl_seconds": 600,
    }
    expect(p.locator("#run-key")).to_have_text("tenant:form")
    expect(p.locator("#run-priority")).to_have_text("3")
    expect(p.locator("#run-queue")).to_have_text("dash-llm")
    run_id = p.url.rsplit("/", 1)[-1]
    release(api, run_id)
    expect(p.locator("#run-status")).to_have_text("COMPLETED")


def test_a_run_from_the_form_not_started_within_its_ttl_ends_expired(
    open_page: Any, api: httpx.Client
) -> None:
    holder = trigger(api, GATE, concurrency_key="tenant:ttl")
    wait_run(api, holder, holds_slot, "holding the slot")
    p = open_page("/")
    p.fill("#trigger-task", GATE)
    p.fill("#trigger-key", "tenant:ttl")
    p.fill("#trigger-ttl", "1")
    p.click("#trigger button[type=submit]")
    expect(p).to_have_url(re.compile(r"/runs/run_[0-9a-f]+$"))
    expect(p.locator("#run-waiting")).to_have_text(
        "Waiting for a slot in queue dash-llm, 1st in line"
    )
    run_id = p.url.rsplit("/", 1)[-1]
    expect(p.locator("#run-start-by")).to_be_visible()  # its ttl's end, while not started
    time.sleep(1.5)  # its ttl passes while the holder keeps the slot
    release(api, holder)  # the slot comes to it too late: it is ended, not started
    expect(p.locator("#run-status")).to_have_text("CANCELLED")
    expect(p.locator("#run-error")).to_contain_text("RunExpired: not started by")
    expect(p.locator("#run-waiting")).to_be_hidden()
    assert api.get(f"/runs/{run_id}").json()["error"]["type"] == "RunExpired"


def test_a_full_queue_answers_the_form_with_its_message(open_page: Any, api: httpx.Client) -> None:
    holder = trigger(api, FULL)
    wait_run(api, holder, holds_slot, "holding the slot")
    waiter = trigger(api, FULL)  # max_size 1: the only place in line
    wait_run(api, waiter, lambda run: run["waiting_for"] == "queue:dash-small", "queued")

    p = open_page("/")
    p.fill("#trigger-task", FULL)
    p.click("#trigger button[type=submit]")
    message = "queue 'dash-small' has 1 runs waiting, its max_size"
    expect(p.locator("#messages .message.error")).to_contain_text("queue_full: " + message)
    expect(p.locator('#trigger .field-error[data-error-for="flow"]')).to_contain_text(message)
    expect(p).to_have_url(re.compile(r"/$"))
    assert fits_the_screen(p)
    screenshot(p, "queues-full", locator=p.locator("#trigger-panel"))

    release(api, holder)
    release(api, waiter)
    listed = api.get("/queues/dash-small").json()
    assert (listed["running"], listed["waiting"]) == (0, 0)


def test_runs_held_back_by_a_rate_limit_or_a_debounce_say_so(
    open_page: Any, api: httpx.Client
) -> None:
    # One start an hour: the first run of the key takes this hour's place, the next waits
    # (a run triggered just as the hour turns may take the new hour's: trigger until one waits).
    for _ in range(3):
        pushed = api.get(f"/runs/{trigger(api, 'dash-rated', concurrency_key='user:1')}").json()
        if pushed["waiting_for"] == "rate:dash-rate":
            break
    assert pushed["status"] == "QUEUED" and pushed["wake_at"], pushed
    quiet = trigger(api, "dash-debounced", concurrency_key="doc:7")

    p = open_page("/")
    rated = queue_row(p, "dash-rate")
    expect(rated.locator('[data-cell="rate"]')).to_have_text("1 / 1 h")
    expect(rated.locator('[data-cell="slots"]')).to_have_text("no limit")
    expect(rated.locator('[data-cell="release"]')).to_have_text("–")
    expect(queue_row(p, "dash-quiet").locator('[data-cell="debounce"]')).to_have_text("10 min")
    until = re.escape(pushed["wake_at"][:19].replace("T", " "))
    expect(p.locator(f'#runs tr[data-run-id="{pushed["run_id"]}"] td.info')).to_have_text(
        re.compile(rf"^its turn under queue dash-rate's rate limit until {until}$")
    )
    expect(p.locator(f'#runs tr[data-run-id="{quiet}"] td.info')).to_have_text(
        re.compile(r"^queue dash-quiet's debounce until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
    )

    run_page = open_page(f"/runs/{pushed['run_id']}")
    expect(run_page.locator("#run-key")).to_have_text("user:1")
    expect(run_page.locator("#run-waiting")).to_have_text(
        re.compile(rf"^Waiting for its turn under queue dash-rate's rate limit until {until}$")
    )


def test_the_queues_panel_is_hidden_when_no_task_declares_a_queue(
    browser: Any, dev_server: DevServer
) -> None:
    page = new_page(browser, dev_server.url + "/")  # the session's stack: tests.e2e.e2e_tasks
    try:
        expect(page.locator("#metrics .figure").first).to_be_visible()
        assert httpx.get(dev_server.url + "/queues").json() == {"queues": []}
        expect(page.locator("#queues")).to_contain_text("No task declares a queue")
        expect(page.locator("#queues-panel")).to_be_hidden()
        assert page.script_errors == []
    finally:
        page.close()
