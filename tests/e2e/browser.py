"""Debian's Chromium driven by Playwright, for the dashboard's tests (tests/e2e/test_dashboard*.py).

`chromium()` starts one headless browser; `new_page(browser, url)` opens a tab the size of a
1,280 × 800 screen; `tabs(browser, url)` opens tabs at the dashboard's paths and closes them
at its end, failing on any script error they met; `under_a_stage(browser, url)` is a tab
that reaches the dashboard only under an API Gateway stage prefix; `screenshot(page, name)`
saves a PNG to `$DURABLE_SCREENSHOTS` (default `build/screenshots/`), the test artifacts the
README's pictures are copied from.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api
from tests.e2e.devserver import ROOT

# Two cores shared by a dev server, its workers and the browser: assertions wait longer.
sync_api.expect.set_options(timeout=15_000)

CHROMIUM = "/usr/bin/chromium"
SCREEN = {"width": 1280, "height": 800}


@contextmanager
def chromium() -> Iterator[Any]:
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
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, url: str) -> Any:
    """A tab at `url`, failing the test on any script error of the page."""
    page = browser.new_page(viewport=SCREEN)
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.script_errors = errors
    page.goto(url)
    return page


@contextmanager
def tabs(browser: Any, url: str) -> Iterator[Callable[[str], Any]]:
    """`open(path)`: a tab at `url + path` (`new_page`); at the end each tab is closed,
    failing the test on any script error it met."""
    pages: list[Any] = []

    def open_one(path: str) -> Any:
        page = new_page(browser, url + path)
        pages.append(page)
        return page

    yield open_one
    for page in pages:
        assert page.script_errors == []
        page.close()


@contextmanager
def under_a_stage(browser: Any, url: str, stage: str = "prod") -> Iterator[Any]:
    """A tab (not navigated yet) that reaches the dashboard at `url` only under `url/stage`:
    API Gateway serves a named stage under its prefix and strips it before the function
    sees the path, and the browser plays that part here, forwarding each request. A URL
    that missed the prefix fails (the latest route wins)."""
    prefix = f"{url}/{stage}"

    def forward(route: Any) -> None:
        route.fulfill(response=route.fetch(url=url + route.request.url.removeprefix(prefix)))

    page = browser.new_page(viewport=SCREEN)
    page.route(f"{url}/**", lambda route: route.abort())
    page.route(f"{prefix}/**", forward)
    page.route(prefix, forward)
    try:
        yield page
    finally:
        # The page polls: a forwarded request may still be in flight.
        page.unroute_all(behavior="ignoreErrors")
        page.close()


def fits_the_screen(page: Any) -> bool:
    """No horizontal scrolling of the page on a 1,280 px wide screen."""
    width: int = page.evaluate("document.scrollingElement.scrollWidth")
    return width <= SCREEN["width"]


def screenshot(page: Any, name: str, **options: Any) -> Path:
    """Save `<name>.png` of the page (or of `options["locator"]`) among the test artifacts."""
    directory = Path(os.environ.get("DURABLE_SCREENSHOTS") or ROOT / "build" / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    locator = options.pop("locator", None)
    (locator or page).screenshot(path=str(path), **options)
    return path
