"""The dashboard (`GET /`) in a real headless browser: Debian's Chromium driven by
Playwright, against the session's `durable dev`. A person triggers a run from the page,
watches it wait, sends the approval event, sees it complete with its history, and sees a
clear message for bad input."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from playwright import sync_api
from tests.e2e.devserver import DevServer

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def page(dev_server: DevServer) -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(dev_server.url + "/")
            yield page
        finally:
            browser.close()


def test_trigger_watch_and_approve_a_run_from_the_dashboard(page: Any) -> None:
    p = page
    p.fill("#trigger-task", "approval-gate")
    p.fill("#trigger-payload", '{"request_id": "dash-1", "amount_cents": 1200}')
    p.click("#trigger button[type=submit]")

    status = p.locator("#run-status")
    sync_api.expect(status).to_have_text("WAITING")
    run_id = p.locator("#run-id").inner_text()
    assert run_id.startswith("run_")
    sync_api.expect(p.locator(f"#runs tr[data-run-id='{run_id}']")).to_have_count(1)

    p.fill("#event-name", "approval")
    p.fill("#event-data", '{"approved": true, "approver": "dashboard"}')
    p.click("#send-event")

    sync_api.expect(status).to_have_text("COMPLETED")
    history = p.locator("#history")
    sync_api.expect(history).to_contain_text("event_received approval")
    sync_api.expect(p.locator("#run-json")).to_contain_text('"approver": "dashboard"')


def test_the_dashboard_shows_the_api_error_for_bad_input(page: Any) -> None:
    p = page
    p.fill("#trigger-task", "no-such-task")
    p.fill("#trigger-payload", "{}")
    p.click("#trigger button[type=submit]")
    sync_api.expect(p.locator("#message")).to_contain_text("no-such-task")
