"""The dashboard's runs list (`GET /`) in a real headless browser: Debian's Chromium driven
by Playwright, against the session's `durable dev`. A person triggers a run from the form
built from the task's schema, watches it wait, sends the approval event and sees it
complete; the form refuses what the schema refuses; messages stay until dismissed; the list
pages and filters on the server and its refresh keeps what was typed; the queue panel shows
a backlog while the workers are busy; everything fits a 1,280 px screen."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.e2e.browser import chromium, fits_the_screen, new_page, screenshot, under_a_stage
from tests.e2e.conftest import WaitFor
from tests.e2e.devserver import DevServer

pytestmark = pytest.mark.e2e

REFRESH = 3.0  # seconds between two refreshes of the runs list and the metrics


@pytest.fixture(scope="module")
def browser(dev_server: DevServer) -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Any, dev_server: DevServer) -> Iterator[Any]:
    page = new_page(browser, dev_server.url + "/")
    yield page
    assert page.script_errors == []
    page.close()


def trigger(api: httpx.Client, task_id: str, payload: Any) -> str:
    reply = api.post(f"/tasks/{task_id}/runs", json={"payload": payload})
    assert reply.status_code == 202, reply.text
    run_id: str = reply.json()["run_id"]
    return run_id


def test_trigger_watch_and_approve_a_run_from_the_dashboard(page: Any) -> None:
    p = page
    p.fill("#trigger-task", "approval-gate")
    # The form is built from the task's payload schema, prefilled with its example.
    expect(p.locator("#payload-request_id")).to_be_visible()
    expect(p.locator("#payload-amount_cents")).to_have_attribute("type", "number")
    expect(p.locator("#trigger-json")).to_be_hidden()
    p.fill("#payload-request_id", "dash-1")
    p.fill("#payload-amount_cents", "1200")
    p.click("#trigger button[type=submit]")

    # The page moves to the new run's own URL.
    expect(p).to_have_url(re.compile(r"/runs/run_[0-9a-f]+$"))
    status = p.locator("#run-status")
    expect(status).to_have_text("WAITING")
    expect(p.locator("#run-waiting")).to_contain_text('event "approval"')
    expect(p.locator("#messages .message.info")).to_contain_text("Started approval-gate")
    expect(p.locator("#cancel")).to_be_visible()
    expect(p.locator("#event-form")).to_be_visible()
    expect(p.locator("#event-name")).to_have_value("approval")
    expect(p.locator("#run-payload")).to_contain_text('"amount_cents": 1200')

    p.fill("#event-data", '{"approved": true, "approver": "dashboard"}')
    p.click("#send-event")

    expect(status).to_have_text("COMPLETED")
    expect(p.locator("#cancel")).to_be_hidden()  # nothing to cancel any more
    expect(p.locator("#event-form")).to_be_hidden()
    expect(p.locator("#history")).to_contain_text("event_received approval")
    expect(p.locator("#run-result")).to_contain_text('"approver": "dashboard"')


def test_the_trigger_form_validates_against_the_schema(page: Any, api: httpx.Client) -> None:
    p = page
    query = {"task_id": "approval-gate", "limit": 1000}
    before = len(api.get("/runs", params=query).json()["runs"])
    p.fill("#trigger-task", "approval-gate")
    p.fill("#payload-request_id", "")  # required, at least one character
    p.fill("#payload-amount_cents", "-5")  # minimum 0
    p.click("#trigger button[type=submit]")

    expect(p.locator('[data-error-for="request_id"]')).to_contain_text("at least 1 character")
    expect(p.locator('[data-error-for="amount_cents"]')).to_contain_text("≥ 0")
    expect(p).to_have_url(re.compile(r"/$"))
    after = len(api.get("/runs", params=query).json()["runs"])
    assert after == before  # nothing was sent

    # Fixed in the form, it goes through.
    p.fill("#payload-request_id", "dash-2")
    p.fill("#payload-amount_cents", "5")
    p.click("#trigger button[type=submit]")
    expect(p).to_have_url(re.compile(r"/runs/run_[0-9a-f]+$"))


def test_the_servers_refusal_is_shown_and_messages_stay_until_dismissed(page: Any) -> None:
    p = page
    p.fill("#trigger-task", "no-such-task")
    expect(p.locator("#trigger-json")).to_be_visible()  # no schema: the payload is JSON
    p.fill("#trigger-payload", "{}")
    p.click("#trigger button[type=submit]")

    message = p.locator("#messages .message.error")
    expect(message).to_contain_text("unknown_task")
    expect(message).to_contain_text("no-such-task")
    p.wait_for_timeout((REFRESH + 1.5) * 1000)  # a refresh or two later
    expect(message).to_have_count(1)

    message.locator("button.close").click()
    expect(message).to_have_count(0)


def test_the_list_pages_and_filters_on_the_server_and_keeps_what_was_typed(
    page: Any, api: httpx.Client, wait_for: WaitFor
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    runs = [trigger(api, "e2e-hello", {"name": f"page-{index}"}) for index in range(12)]
    for run_id in runs:
        wait_for(run_id, {"COMPLETED"})
    p = page
    p.fill("#filter-task", "e2e-hello")
    p.fill("#filter-after", since.strftime("%Y-%m-%dT%H:%M:%S"))
    p.select_option("#page-size", "10")
    p.click("#filters button[type=submit]")

    rows = p.locator("#runs tr")
    expect(rows).to_have_count(10)
    expect(p.locator(f"#runs tr[data-run-id='{runs[-1]}']")).to_have_count(1)  # newest first
    p.click("#next")
    expect(rows).to_have_count(2)
    expect(p.locator(f"#runs tr[data-run-id='{runs[0]}']")).to_have_count(1)
    p.click("#prev")
    expect(rows).to_have_count(10)

    # The refresh re-reads the filters that were applied, never what is being typed.
    p.fill("#filter-task", "half-typed")
    p.wait_for_timeout((REFRESH + 1.5) * 1000)
    expect(p.locator("#filter-task")).to_have_value("half-typed")
    expect(rows).to_have_count(10)

    # A run's row links to its page; back returns to the list as it was.
    p.click(f"#runs tr[data-run-id='{runs[-1]}'] a")
    expect(p).to_have_url(re.compile(f"/runs/{runs[-1]}$"))
    expect(p.locator("#run-status")).to_have_text("COMPLETED")
    p.go_back()
    expect(p.locator("#list-view")).to_be_visible()
    expect(p.locator("#filter-task")).to_have_value("half-typed")


def test_a_sleeping_run_says_what_it_waits_for_and_can_be_cancelled(
    page: Any, api: httpx.Client, wait_for: WaitFor
) -> None:
    run_id = trigger(api, "e2e-sleep", {"seconds": 600})
    wait_for(run_id, {"WAITING"})
    p = page
    p.fill("#filter-task", "e2e-sleep")
    p.click("#filters button[type=submit]")
    row = p.locator(f"#runs tr[data-run-id='{run_id}']")
    expect(row.locator(".status")).to_have_text("WAITING")
    expect(row.locator("td.info")).to_contain_text("sleep until 20")

    row.locator("a").click()
    expect(p.locator("#run-waiting")).to_contain_text("until")
    expect(p.locator("#event-form")).to_be_hidden()  # it waits for a timer, not an event
    asked: list[str] = []
    p.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    p.click("#cancel")
    expect(p.locator("#run-status")).to_have_text("CANCELLED")
    expect(p.locator("#cancel")).to_be_hidden()
    expect(p.locator("#messages .message.info")).to_contain_text("Cancelled")
    assert asked == [f"Cancel run {run_id} (and its child runs)?"]
    assert api.get(f"/runs/{run_id}").json()["status"] == "CANCELLED"


def test_the_queue_panel_shows_a_backlog_while_the_workers_are_held(
    page: Any, api: httpx.Client, tmp_path: Path, wait_for: WaitFor
) -> None:
    # The e2e server has 4 worker processes: 8 runs of a 3-second step hold them for two
    # rounds, and the runs behind them wait in the queue.
    slow = [
        trigger(api, "e2e-slow-steps", {"dir": str(tmp_path), "steps": 1, "seconds": 3})
        for _ in range(8)
    ]
    deadline = time.monotonic() + 10
    while api.get("/metrics").json()["queue"]["depth"] == 0:
        assert time.monotonic() < deadline, "no backlog formed"
        time.sleep(0.1)
    p = page
    p.reload()
    depth = p.locator('#metrics [data-figure="depth"] .value')
    expect(depth).not_to_have_text("0")
    expect(p.locator('#metrics [data-figure="depth"]')).to_have_class(re.compile("warn"))
    expect(p.locator('#metrics tr[data-task="e2e-slow-steps"]')).to_be_visible()
    screenshot(page, "metrics-panel", locator=p.locator("#metrics-panel"))
    for run_id in slow:
        wait_for(run_id, {"COMPLETED"})
    p.wait_for_timeout((REFRESH + 0.5) * 1000)
    expect(depth).to_have_text("0")


def test_the_runs_list_fits_a_1280_px_screen(
    page: Any, api: httpx.Client, wait_for: WaitFor
) -> None:
    # Runs in a few states, for the screenshot: failed, waiting for an event, sleeping.
    wait_for(trigger(api, "e2e-fail", None), {"FAILED"})
    waiting = trigger(api, "e2e-wait-event", {"timeout_seconds": 600})
    sleeping = trigger(api, "e2e-sleep", {"seconds": 600})
    wait_for(waiting, {"WAITING"})
    wait_for(sleeping, {"WAITING"})
    page.reload()
    expect(page.locator(f"#runs tr[data-run-id='{sleeping}'] td.info")).to_contain_text("sleep")
    expect(page.locator("#metrics .figures")).to_be_visible()
    assert fits_the_screen(page)
    screenshot(page, "runs-list")


def test_the_dashboard_works_under_an_api_gateway_stage(
    browser: Any, dev_server: DevServer, api: httpx.Client, wait_for: WaitFor
) -> None:
    run_id = trigger(api, "e2e-hello", {"name": "stage"})
    wait_for(run_id, {"COMPLETED"})
    stage = f"{dev_server.url}/prod"
    with under_a_stage(browser, dev_server.url) as page:
        page.goto(f"{stage}/runs/{run_id}")  # a deep link under the stage
        expect(page.locator("#run-status")).to_have_text("COMPLETED")
        expect(page.locator(".tl-row.kind-step")).to_have_count(1)
        page.click("a[data-nav][href='./']")
        expect(page).to_have_url(f"{stage}/")
        row = page.locator(f"#runs tr[data-run-id='{run_id}'] a")
        expect(row).to_have_attribute("href", f"runs/{run_id}")
        row.click()
        expect(page).to_have_url(f"{stage}/runs/{run_id}")
        expect(page.locator("#run-result")).to_contain_text("hello, stage")
