"""The dashboard's files through the API: the page at `/`, its scripts and styles at
`GET /static/<name>`, nothing loaded from elsewhere, nothing served but those files.
(What the page does is tested in a browser: tests/e2e/test_dashboard*.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources

import pytest
from tests.unit.test_api import Api, http_event

from durable import TaskRegistry
from durable.api import handle
from durable.testing import TestEnvironment

STATIC = resources.files("durable.api").joinpath("static")


@pytest.fixture
def api() -> Iterator[Api]:
    with TestEnvironment(registry=TaskRegistry()) as env:
        yield Api(env.client)


def referenced(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="(static/[^"]+)"', page)


def test_the_page_loads_its_scripts_and_styles_from_static_routes(api: Api) -> None:
    reply = api.get("/")

    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
    files = referenced(reply.text)
    assert "static/dashboard.css" in files and "static/app.js" in files
    for path in files:
        served = api.get("/" + path)
        assert served.status == 200, path
        expected = "text/css" if path.endswith(".css") else "text/javascript"
        assert served.headers["Content-Type"].startswith(expected)
        assert served.text == STATIC.joinpath(path.removeprefix("static/")).read_text("utf-8")


def test_every_file_of_the_dashboard_is_served_and_none_is_from_the_network(api: Api) -> None:
    names = sorted(item.name for item in STATIC.iterdir() if item.is_file())
    page = api.get("/").text
    for name in names:
        text = api.get(f"/static/{name}").text
        # No CDN (the machine may be offline) and no absolute URL: a stage prefix must work.
        assert "http://" not in text and "https://" not in text, name
        assert name == "index.html" or f'"static/{name}"' in page, f"{name} is not loaded"


def test_the_scripts_read_the_api_they_draw(api: Api) -> None:
    scripts = "".join(api.get(f"/{path}").text for path in referenced(api.get("/").text))
    for call in ('"runs?"', '"/timeline"', '"/logs"', '"/history"', '"metrics"', '"tasks"'):
        assert call in scripts, call


@pytest.mark.parametrize(
    "name", ["nope.js", "..%2Fapp.py", "app.py", "INDEX.HTML", "dashboard.css.map", "%2e%2e"]
)
def test_other_names_are_404_with_a_json_error(api: Api, name: str) -> None:
    reply = api.get(f"/static/{name}")

    assert reply.status == 404
    assert reply.error_code == "not_found"


def test_the_files_are_served_under_an_api_gateway_stage() -> None:
    # A named stage prefixes every path ("/prod/static/app.js"); the page's <base> is the
    # stage's root, so its relative URLs reach these routes there too.
    event = http_event("GET", "/prod/static/app.js")
    event["requestContext"]["stage"] = "prod"
    with TestEnvironment(registry=TaskRegistry()) as env:
        response = handle(event, None, env.client)

    assert response["statusCode"] == 200
    assert response["body"] == STATIC.joinpath("app.js").read_text("utf-8")
