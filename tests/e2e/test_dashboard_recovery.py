"""The dashboard's recovery features in Debian's Chromium, against the session's `durable dev`:
a failed run is retried from its page with the Retry button (asked first) and completes,
its audit marker naming the dashboard as the caller; Rerun goes to the new run's page
(under an API Gateway stage), whose origin links back; a fork at a bad cut shows the API's
422 message and the valid cut points, a fork from a selected bar makes a run; a run held
for non-determinism (a task whose step name the test rewrites between invocations: each
invocation is its own process, so the task reads the file again) shows the held banner and
is resumed with the fix; a run held for a code version (seeded as in test_e2e_versioning)
names it and is re-pinned by Resume; the tag filter narrows the list and a bulk cancel on it
cancels the matching waiting runs only, showing the job until it is done; "Retry all
matching" retries a tag's failed runs and "Resume all matching" its held runs (marked held
in the list) once the code is fixed; an unfiltered bulk action asks about every run; the
trigger form sends tags and metadata. Screenshots go to `$DURABLE_SCREENSHOTS`."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.e2e.browser import chromium, fits_the_screen, screenshot, tabs, under_a_stage
from tests.e2e.conftest import WaitFor
from tests.e2e.devserver import DevServer
from tests.e2e.e2e_tasks import executions
from tests.e2e.test_e2e_versioning import seed_pinned_run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser(dev_server: DevServer) -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def open_page(browser: Any, dev_server: DevServer) -> Iterator[Any]:
    """`open_page(path)`: a tab at the dashboard's `path`; confirmations are accepted (unless
    `page.answers` says otherwise), their questions kept in `page.questions`; the POSTs the
    page made in `page.posts`."""
    with tabs(browser, dev_server.url) as open_tab:

        def open_one(path: str) -> Any:
            page = open_tab(path)
            page.questions = []
            page.posts = []
            page.answers = []  # False: the next confirmation is declined
            page.on("dialog", lambda dialog: answer(page, dialog))
            page.on(
                "request",
                lambda request: (
                    page.posts.append(request.url) if request.method == "POST" else None
                ),
            )
            return page

        yield open_one


def answer(page: Any, dialog: Any) -> None:
    page.questions.append(dialog.message)
    if page.answers and not page.answers.pop(0):
        dialog.dismiss()
    else:
        dialog.accept()


def trigger(api: httpx.Client, task_id: str, payload: Any, **options: Any) -> str:
    reply = api.post(f"/tasks/{task_id}/runs", json={"payload": payload, **options})
    assert reply.status_code == 202, reply.text
    run_id: str = reply.json()["run_id"]
    return run_id


def wait_until(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not {what} after {timeout}s"
        time.sleep(0.2)


def test_a_failed_run_is_retried_from_its_page_and_its_marker_names_the_dashboard(
    open_page: Any, api: httpx.Client, tmp_path: Path, wait_for: WaitFor
) -> None:
    run_id = trigger(
        api,
        "e2e-repairable",
        {"dir": str(tmp_path)},
        tags=["suite:recovery"],
        metadata={"customer": "acme"},
    )
    wait_for(run_id, {"FAILED"})
    p = open_page(f"/runs/{run_id}")
    expect(p.locator("#run-status")).to_have_text("FAILED")
    expect(p.locator("#retry")).to_be_visible()
    expect(p.locator("#rerun")).to_be_visible()
    expect(p.locator("#fork-form")).to_be_visible()
    expect(p.locator("#run-held")).to_be_hidden()
    expect(p.locator("#run-tags")).to_have_text("suite:recovery")
    expect(p.locator("#run-metadata")).to_have_text("customer=acme")
    assert fits_the_screen(p)
    screenshot(p, "recovery-failed-run")

    # A dismissed confirmation does nothing.
    p.answers.append(False)
    p.click("#retry")
    expect(p.locator("#run-status")).to_have_text("FAILED")
    assert p.questions and p.posts == []
    (tmp_path / "fixed").touch()
    p.click("#retry")

    expect(p.locator("#run-status")).to_have_text("COMPLETED")
    expect(p.locator("#retry")).to_be_hidden()  # a completed run is not retried
    assert [url for url in p.posts if url.endswith("/retry")] == [
        f"{p.url.split('/runs/')[0]}/runs/{run_id}/retry"
    ]
    assert any("from its failure point" in question for question in p.questions)
    assert executions(tmp_path, "first") == 1  # completed before the failure: kept
    marker = p.locator(".tl-bar.tl-action")
    expect(marker).to_have_count(1)
    expect(marker).to_have_attribute("title", re.compile(r"^retry by unverified:dashboard at "))
    marker.click()
    expect(p.locator("#op-details h3")).to_have_text("retry")
    expect(p.locator("#op-details")).to_contain_text("unverified:dashboard")
    screenshot(p, "recovery-retried-run")
    history = api.get(f"/runs/{run_id}/history").json()["history"]
    (action,) = [entry for entry in history if entry["kind"] == "run_action"]
    assert action["value"]["by"] == "unverified:dashboard"


def test_rerun_under_a_stage_goes_to_the_new_run_whose_origin_links_back(
    browser: Any, dev_server: DevServer, api: httpx.Client, tmp_path: Path, wait_for: WaitFor
) -> None:
    (tmp_path / "fixed").touch()
    run_id = trigger(api, "e2e-repairable", {"dir": str(tmp_path)})
    wait_for(run_id, {"COMPLETED"})
    stage = f"{dev_server.url}/prod"  # API Gateway's stage prefix, played by the browser
    with under_a_stage(browser, dev_server.url) as p:
        questions: list[str] = []
        p.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
        p.goto(f"{stage}/runs/{run_id}")
        expect(p.locator("#run-status")).to_have_text("COMPLETED")
        expect(p.locator("#retry")).to_be_hidden()
        p.click("#rerun")
        expect(p).not_to_have_url(f"{stage}/runs/{run_id}")
        expect(p).to_have_url(re.compile(re.escape(stage) + r"/runs/run_\w+$"))
        new_id = p.url.rsplit("/", 1)[1]
        expect(p.locator("#run-facts")).to_contain_text(f"rerun of {run_id}")
        assert questions and "as a new run" in questions[0]
        assert wait_for(new_id)["origin"]["run_id"] == run_id
        expect(p.locator("#run-status")).to_have_text("COMPLETED")
        p.click("#run-origin")
        expect(p).to_have_url(f"{stage}/runs/{run_id}")
        marker = p.locator(".tl-bar.tl-action")
        expect(marker).to_have_count(1)
        marker.click()
        expect(p.locator("#op-details")).to_contain_text("rerun")
        expect(p.locator(f"#op-details a[href='runs/{new_id}']")).to_have_count(1)
    assert executions(tmp_path, "first") == 2


def test_a_bad_fork_shows_the_valid_cuts_and_a_fork_from_a_selected_bar_makes_a_run(
    open_page: Any, api: httpx.Client, tmp_path: Path, wait_for: WaitFor
) -> None:
    run_id = trigger(api, "e2e-repairable", {"dir": str(tmp_path)})
    wait_for(run_id, {"FAILED"})
    p = open_page(f"/runs/{run_id}")
    expect(p.locator(".tl-row.kind-step")).to_have_count(2)

    p.fill("#fork-step", "999")
    p.click("#fork")
    problem = p.locator("#fork-problem")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("from_step 999 is outside")
    cuts = problem.locator("button.cut")
    expect(cuts.first).to_be_visible()
    offered = [int(text) for text in cuts.all_text_contents()]
    history = api.get(f"/runs/{run_id}/history").json()["history"]
    assert offered and max(offered) <= len(history)
    assert p.url.endswith(f"/runs/{run_id}")  # no run made
    screenshot(p, "recovery-fork-refused")

    # Selecting the bar of step "second" cuts before its first log entry.
    p.locator(".tl-row.kind-step", has_text="second").locator(".tl-bar").first.click()
    first_of_second = next(entry["seq"] for entry in history if entry["name"] == "second")
    expect(p.locator("#fork-step")).to_have_value(str(first_of_second - 1))
    (tmp_path / "fixed").touch()
    p.click("#fork")
    expect(p).not_to_have_url(re.compile(re.escape(run_id) + "$"))
    fork_id = p.url.rsplit("/", 1)[1]
    expect(p.locator("#run-facts")).to_contain_text(f"fork of {run_id} at {first_of_second - 1}")
    forked = wait_for(fork_id)
    assert forked["status"] == "COMPLETED", forked
    assert forked["result"] == {"first": 1, "second": "fixed"}
    assert executions(tmp_path, "first") == 1  # copied, not run again
    expect(p.locator("#run-status")).to_have_text("COMPLETED")


def test_a_held_run_shows_the_banner_and_is_resumed_with_the_fix(
    open_page: Any, api: httpx.Client, tmp_path: Path, wait_for: WaitFor
) -> None:
    (tmp_path / "step-name").write_text("charge")
    run_id = trigger(api, "e2e-divergent", {"dir": str(tmp_path)})
    wait_for(run_id, {"WAITING"})
    # A "deploy" that renames the step while the run naps: its replay diverges.
    (tmp_path / "step-name").write_text("charge-v2")
    held = wait_until(lambda: api.get(f"/runs/{run_id}").json()["held"], "held")
    assert held["reason"] == "nondeterminism"

    p = open_page(f"/runs/{run_id}")
    banner = p.locator("#run-held")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("non-determinism")
    expect(banner).to_contain_text("since ")
    expect(p.locator("#held-message")).to_contain_text(held["error"]["message"][:40])
    expect(p.locator("#run-waiting")).to_be_hidden()  # the banner says what it waits for
    expect(p.locator("#event-form")).to_be_hidden()  # no event lets it go on
    expect(p.locator("#retry")).to_be_hidden()  # not ended: resumed, not retried
    expect(p.locator("#rerun")).to_be_hidden()
    assert fits_the_screen(p)
    screenshot(p, "recovery-held-run")

    (tmp_path / "step-name").write_text("charge")  # the fix: the step's old name
    p.click("#resume")
    expect(banner).to_be_hidden()
    expect(p.locator("#run-status")).to_have_text("COMPLETED")
    assert any("Resume" in question for question in p.questions)
    assert executions(tmp_path, "charge") == 1 and executions(tmp_path, "charge-v2") == 0
    marker = p.locator(".tl-bar.tl-action")
    expect(marker).to_have_count(1)
    expect(marker).to_have_attribute("title", re.compile(r"^resume by unverified:dashboard "))


def test_the_tag_filter_narrows_the_list_and_a_bulk_cancel_cancels_what_it_shows(
    open_page: Any, api: httpx.Client, wait_for: WaitFor
) -> None:
    tag = f"batch:{uuid.uuid4().hex[:8]}"
    matching = [trigger(api, "e2e-wait-event", {}, tags=[tag, "bulk"]) for _ in range(3)]
    other = trigger(api, "e2e-wait-event", {}, tags=["bulk"])
    for run_id in [*matching, other]:
        wait_for(run_id, {"WAITING"})

    p = open_page("/")
    p.fill("#filter-tag", tag)
    p.click("#filters button[type=submit]")
    rows = p.locator("#runs tr")
    expect(rows).to_have_count(3)
    assert sorted(rows.evaluate_all("rows => rows.map(row => row.dataset.runId)")) == sorted(
        matching
    )
    expect(rows.first.locator(".tag", has_text=tag)).to_have_count(1)

    p.click("#bulk button[data-action=cancel]")
    job = p.locator("#bulk-job")
    expect(job).to_have_attribute("data-state", "completed")
    expect(job.locator("[data-count=matched] strong")).to_have_text("3")
    expect(job.locator("[data-count=acted] strong")).to_have_text("3")
    expect(job.locator("[data-count=errors] strong")).to_have_text("0")
    expect(job.locator(".field-error")).to_have_count(0)
    assert any(tag in question for question in p.questions)
    expect(p.locator("#runs .status.CANCELLED")).to_have_count(3)
    assert fits_the_screen(p)
    screenshot(p, "recovery-bulk-job")
    assert all(api.get(f"/runs/{run_id}").json()["status"] == "CANCELLED" for run_id in matching)
    assert api.get(f"/runs/{other}").json()["status"] == "WAITING"
    assert api.post(f"/runs/{other}/cancel").status_code == 200


def test_an_unfiltered_bulk_action_asks_about_every_run_and_a_no_does_nothing(
    open_page: Any,
) -> None:
    p = open_page("/")
    expect(p.locator("#runs tr").first).to_be_visible()
    p.answers.append(False)
    p.click("#bulk button[data-action=retry]")
    expect(p.locator("#bulk-job")).to_be_hidden()
    assert p.questions == ["No filter is applied: retry EVERY run there is? This cannot be undone."]
    assert p.posts == []


def test_the_trigger_form_sends_tags_and_metadata(open_page: Any, api: httpx.Client) -> None:
    p = open_page("/")
    p.fill("#trigger-task", "e2e-hello")
    p.fill("#payload-name", "tagged")
    p.fill("#trigger-tags", "team:ops, env=dev")
    p.fill("#trigger-metadata", "not a pair")
    p.click("#trigger button[type=submit]")
    expect(p.locator('#trigger .field-error[data-error-for="metadata"]')).to_contain_text(
        "line 1 is not key=value"
    )
    assert p.posts == []
    p.fill("#trigger-metadata", "customer=acme\nsource = form")
    p.click("#trigger button[type=submit]")
    expect(p).to_have_url(re.compile(r"/runs/run_\w+$"))
    expect(p.locator("#run-tags .tag")).to_have_text(["team:ops", "env=dev"])
    expect(p.locator("#run-metadata")).to_have_text("customer=acme, source=form")
    run = api.get(f"/runs/{p.url.rsplit('/', 1)[1]}").json()
    assert (run["tags"], run["metadata"]) == (
        ["team:ops", "env=dev"],
        {"customer": "acme", "source": "form"},
    )


def test_a_run_held_for_a_code_version_says_which_and_resume_repins_it(
    open_page: Any,
    dev_server: DevServer,
    api: httpx.Client,
    tmp_path: Path,
    wait_for: WaitFor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    run_id = f"run_pinned_{uuid.uuid4().hex}"
    seed_pinned_run(dev_server, run_id, tmp_path)  # code version "old": nobody runs it
    wait_until(lambda: api.get(f"/runs/{run_id}").json()["held"], "held")

    p = open_page(f"/runs/{run_id}")
    banner = p.locator("#run-held")
    expect(banner).to_have_attribute("data-reason", "code-version")
    expect(p.locator("#held-title")).to_have_text(
        "Held: pinned to a code version no worker runs: old"
    )
    expect(p.locator("#held-message")).to_contain_text("VersionMismatch")
    p.click("#resume")
    expect(banner).to_be_hidden()
    expect(p.locator("#run-status")).to_have_text("COMPLETED")
    expect(p.locator("#run-facts")).to_contain_text("code dev")
    assert any("this API's code version" in question for question in p.questions)
    assert wait_for(run_id)["version"]["code"] == "dev"


def test_retry_all_matching_retries_the_failed_runs_of_a_tag(
    open_page: Any, api: httpx.Client, tmp_path: Path, wait_for: WaitFor
) -> None:
    tag = f"retry:{uuid.uuid4().hex[:8]}"
    for n in range(2):
        (tmp_path / str(n)).mkdir()
    failed = [
        trigger(api, "e2e-repairable", {"dir": str(tmp_path / str(n))}, tags=[tag])
        for n in range(2)
    ]
    for run_id in failed:
        wait_for(run_id, {"FAILED"})
    for n in range(2):
        (tmp_path / str(n) / "fixed").touch()

    p = open_page("/")
    p.fill("#filter-tag", tag)
    p.select_option("#filter-status", "FAILED")
    p.click("#filters button[type=submit]")
    expect(p.locator("#runs tr")).to_have_count(2)
    p.click("#bulk button[data-action=retry]")
    job = p.locator("#bulk-job")
    expect(job).to_have_attribute("data-state", "completed")
    expect(job.locator("[data-count=acted] strong")).to_have_text("2")
    assert any(f"tag={tag}" in question and "status=FAILED" in question for question in p.questions)
    for run_id in failed:
        assert wait_for(run_id)["status"] == "COMPLETED"


def test_resume_all_matching_resumes_a_tag_s_held_runs_once_the_code_is_fixed(
    open_page: Any, api: httpx.Client, tmp_path: Path, wait_for: WaitFor
) -> None:
    tag = f"held:{uuid.uuid4().hex[:8]}"
    directories = [tmp_path / str(n) for n in range(2)]
    for directory in directories:
        directory.mkdir()
        (directory / "step-name").write_text("charge")
    held = [trigger(api, "e2e-divergent", {"dir": str(d)}, tags=[tag]) for d in directories]
    for run_id in held:
        wait_for(run_id, {"WAITING"})
    for directory in directories:
        (directory / "step-name").write_text("charge-v2")
    for run_id in held:
        wait_until(lambda run_id=run_id: api.get(f"/runs/{run_id}").json()["held"], "held")

    p = open_page("/")
    p.fill("#filter-tag", tag)
    p.click("#filters button[type=submit]")
    rows = p.locator("#runs tr.held")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td.info")).to_contain_text("held: nondeterminism")
    for directory in directories:
        (directory / "step-name").write_text("charge")  # the fix
    p.click("#bulk button[data-action=resume]")
    job = p.locator("#bulk-job")
    expect(job).to_have_attribute("data-state", "completed")
    expect(job.locator("[data-count=acted] strong")).to_have_text("2")
    for run_id in held:
        assert wait_for(run_id)["status"] == "COMPLETED"
    expect(p.locator("#runs tr.held")).to_have_count(0)
    expect(p.locator("#runs .status.COMPLETED")).to_have_count(2)
