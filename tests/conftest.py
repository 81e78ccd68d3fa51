"""Settings for every test: in-process moto serves one request at a time (the runtime's
thread pools would otherwise race on moto's dicts; see `durable.testing`)."""

from __future__ import annotations

import pytest

from durable.testing import serialize_moto_requests


@pytest.fixture(autouse=True, scope="session")
def _moto_one_request_at_a_time() -> None:
    serialize_moto_requests()
