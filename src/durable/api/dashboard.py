"""The dashboard's files: `GET /static/<name>` serves the scripts and styles of the page.

    GET /static/<name>    200 a file of `durable/api/static/` (js, css, html, svg)
                          404 {"error": {"code": "not_found", ...}} for any other name

The page itself (`index.html`) is answered at `/` and, for browsers, at `/runs/{id}`; it
sets its `<base>` to the API's root (an API Gateway stage included), so every URL it uses,
these files' among them, is relative to that root. The files ship inside the package
(`package-data` in pyproject.toml) and are read once per process. Only names of files that
exist in that directory are served: nothing else is reachable through `..` or a slash.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from durable.api.errors import error_response
from durable.client import Client

# A file's name: lower-case words joined by dashes and one extension (no dots, no slashes).
STATIC_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\.(js|css|html|svg)")
CONTENT_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "svg": "image/svg+xml; charset=utf-8",
}


@cache
def static_file(name: str) -> str | None:
    """The text of `static/<name>`, or None when the name is not one of its files."""
    if STATIC_NAME.fullmatch(name) is None:
        return None
    resource = resources.files("durable.api").joinpath("static", name)
    if not resource.is_file():
        return None
    return resource.read_text("utf-8")


def register_dashboard_routes(app: APIGatewayHttpResolver, client: Client) -> None:
    """Add `GET /static/<name>` to `app` (`client` is unused: the files are the package's)."""
    del client

    @app.get("/static/<name>", include_in_schema=False)
    def static(name: str) -> Response[str]:
        content = static_file(name)
        if content is None:
            return error_response(404, "not_found", f"no dashboard file named {name[:80]!r}")
        return Response(
            status_code=200,
            content_type=CONTENT_TYPES[name.rsplit(".", 1)[1]],
            body=content,
            # Revalidated on each load: a new deployment's page never runs old scripts.
            headers={"Cache-Control": "no-cache"},
        )
