"""The dashboard's run page (`/runs/{id}`) in Debian's Chromium, against the session's
`durable dev`: a step that failed twice is three attempt bars with two labelled backoff
gaps, and its details carry the attempt's input (above its output), the error and a
collapsible traceback; a child run's bar links to the child's page and back; a deep link
loads the run; a finished run offers no cancel; the run's log lines appear while it runs;
the page fits a 1,280 px screen."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.e2e.browser import chromium, fits_the_screen, screenshot, tabs
from tests.e2e.conftest import WaitFor
from tests.e2e.devserver import DevServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser(dev_server: DevServer) -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def open_run(browser: Any, dev_server: DevServer) -> Iterator[Any]:
    """`open_run(run_id)`: a tab at the run's own URL (a deep link)."""
    with tabs(browser, dev_server.url) as open_tab:
        yield lambda run_id: open_tab(f"/runs/{run_id}")


def trigger(api: httpx.Client, task_id: str, payload: Any) -> str:
    reply = api.post(f"/tasks/{task_id}/runs", json={"payload": payload})
    assert reply.status_code == 202, reply.text
    run_id: str = reply.json()["run_id"]
    return run_id


def test_a_step_that_failed_twice_shows_three_attempts_and_two_backoff_gaps(
    open_run: Any, api: httpx.Client, tmp_path: Path, wait_for: WaitFor
) -> None:
    run_id = trigger(api, "e2e-flaky-step", {"dir": str(tmp_path), "failures": 2})
    wait_for(run_id, {"COMPLETED"})
    p = open_run(run_id)

    row = p.locator(".tl-row.kind-step", has_text="call-flaky-service")
    bars = row.locator(".tl-bar.tl-attempt")
    expect(bars).to_have_count(3)
    expect(bars.nth(0)).to_have_class(re.compile(r"\bfailed\b"))
    expect(bars.nth(1)).to_have_class(re.compile(r"\bfailed\b"))
    expect(bars.nth(2)).to_have_class(re.compile(r"\bcompleted\b"))
    gaps = row.locator(".tl-gap-label")
    expect(gaps).to_have_count(2)
    expect(gaps.nth(0)).to_have_text(re.compile(r"^backoff \d+(\.\d+)? s$"))
    expect(gaps.nth(1)).to_have_text(re.compile(r"^backoff \d+(\.\d+)? s$"))
    # Each bar starts after the gap before it ends: attempts, gaps and bars in time order.
    lefts = [bars.nth(i).evaluate("node => node.getBoundingClientRect().left") for i in range(3)]
    assert lefts == sorted(lefts) and len(set(lefts)) == 3

    bars.nth(0).click()
    details = p.locator("#op-details")
    expect(details).to_contain_text("step attempt 1")
    expect(details).to_contain_text("ConnectionError")
    expect(details).to_contain_text(f"{run_id}:call-flaky-service:0")  # the step id
    traceback = details.locator("details.traceback").first
    expect(traceback.locator("pre")).to_be_hidden()  # collapsed until asked for
    traceback.locator("summary").click()
    expect(traceback.locator("pre")).to_contain_text("Traceback (most recent call last)")
    # What the attempt was given: the step's arguments (its directory, the failures to make)
    given = details.locator('pre.json[data-part="input"]')
    expect(given).to_contain_text('"args"')
    expect(given).to_contain_text(json.dumps(str(tmp_path)))
    expect(given).to_contain_text(re.compile(r",\s*2\s*\]"))
    bars.nth(2).click()
    expect(details).to_contain_text("step attempt 3")
    expect(details.locator('pre.json[data-part="output"]')).to_contain_text('"calls": 3')
    expect(given).to_contain_text(json.dumps(str(tmp_path)))
    headings = details.locator("h4").all_inner_texts()
    assert headings.index("input") < headings.index("output")  # input above output

    # What the task and the step logged, one line per attempt of the step.
    logs = p.locator("#logs .log-line")
    expect(logs.filter(has_text="calling a service that fails first")).to_have_count(1)
    expect(logs.filter(has_text="calling the flaky service")).to_have_count(3)

    assert fits_the_screen(p)
    screenshot(p, "run-page")


def test_a_child_run_links_to_its_page_and_back(
    open_run: Any, api: httpx.Client, wait_for: WaitFor
) -> None:
    parent_id = trigger(api, "e2e-parent", {"name": "child"})
    wait_for(parent_id, {"COMPLETED"})
    p = open_run(parent_id)

    link = p.locator("a.tl-bar.child")
    expect(link).to_have_count(1)
    child_id = link.get_attribute("data-child-run-id")
    assert child_id and api.get(f"/runs/{child_id}").json()["parent_run_id"] == parent_id

    link.click()
    expect(p).to_have_url(re.compile(f"/runs/{re.escape(child_id)}$"))
    expect(p.locator("#run-id")).to_have_text(child_id)
    expect(p.locator("#run-facts")).to_contain_text("e2e-hello")
    p.click("#run-parent")
    expect(p).to_have_url(re.compile(f"/runs/{parent_id}$"))
    expect(p.locator("#run-id")).to_have_text(parent_id)
    p.go_back()  # the browser's history holds each run page visited
    expect(p.locator("#run-id")).to_have_text(child_id)


def test_a_deep_link_loads_a_finished_run_without_a_cancel_button(
    open_run: Any, api: httpx.Client, wait_for: WaitFor
) -> None:
    run_id = trigger(api, "e2e-hello", {"name": "deep link"})
    wait_for(run_id, {"COMPLETED"})
    p = open_run(run_id)

    expect(p.locator("#run-id")).to_have_text(run_id)
    expect(p.locator("#run-status")).to_have_text("COMPLETED")
    expect(p.locator("#run-result")).to_contain_text('"greeting": "hello, deep link"')
    expect(p.locator(".tl-row.kind-step")).to_have_count(1)
    expect(p.locator("#cancel")).to_be_hidden()
    expect(p.locator("#event-form")).to_be_hidden()
    expect(p.locator("#run-live")).to_have_text("")  # not polling a finished run


def test_the_runs_log_lines_appear_while_it_runs(
    open_run: Any, api: httpx.Client, wait_for: WaitFor
) -> None:
    run_id = trigger(api, "e2e-chatty", {"seconds": 8})
    p = open_run(run_id)

    logs = p.locator("#logs .log-line")
    expect(logs.filter(has_text="before the nap")).to_have_count(1, timeout=8_000)
    # Seen while the run naps: the page follows the log of a live run.
    expect(p.locator("#run-status")).to_have_text("WAITING")
    expect(p.locator("#run-live")).to_have_text("live")
    expect(logs.first.locator(".log-level")).to_have_text("INFO")
    expect(logs.filter(has_text="after the nap")).to_have_count(1, timeout=20_000)
    expect(p.locator("#run-status")).to_have_text("COMPLETED")
    expect(logs.filter(has_text="before the nap")).to_have_count(1)  # each line once
    wait_for(run_id, {"COMPLETED"})


def test_a_batch_shows_its_progress_and_a_sleep_what_ended_it(
    open_run: Any, api: httpx.Client, wait_for: WaitFor
) -> None:
    run_id = trigger(api, "e2e-map-naps", {"naps": 3, "seconds": 0.5})
    wait_for(run_id, {"COMPLETED"}, timeout=60)
    p = open_run(run_id)

    batch = p.locator(".tl-row.kind-batch .tl-bar")
    expect(batch).to_contain_text("3/3 done")
    batch.click()
    children = p.locator("#op-details .links a")
    expect(children).to_have_count(3)

    children.first.click()  # a child run: one durable sleep, ended by its timer
    expect(p).to_have_url(re.compile(r"/runs/run_[0-9a-f]+\.1\.\d+\.\d+$"))
    expect(p.locator(".tl-row.kind-sleep .tl-bar")).to_contain_text("ended by timer")
    expect(p.locator("#run-parent")).to_have_text(run_id)
