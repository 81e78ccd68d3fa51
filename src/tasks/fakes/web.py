"""A fake website: a made-up page for any URL, failing first when the URL asks to."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from tasks.fakes.base import Fake, ServiceUnavailable


class FakeWebsite(Fake):
    """Serves a made-up page for any URL. A `fail=N` query parameter fails the first N fetches."""

    name = "website"

    def fetch(self, url: str) -> dict[str, Any]:
        """The page at `url`; raises ServiceUnavailable while the URL's failures last."""
        failures = int(parse_qs(urlsplit(url).query).get("fail", ["0"])[0])
        with self._state.edit() as state:
            fetches: dict[str, int] = state.setdefault("fetches", {})
            fetches[url] = fetches.get(url, 0) + 1
            count = fetches[url]
        if count <= failures:
            raise ServiceUnavailable(f"GET {url}: 503 (simulated failure {count} of {failures})")
        path = urlsplit(url).path or "/"
        html = f"<html><head><title>Fake page {path}</title></head><body>{url}</body></html>"
        return {"url": url, "status": 200, "title": f"Fake page {path}", "html": html}

    def fetches(self, url: str) -> int:
        return int(self._state.read().get("fetches", {}).get(url, 0))
