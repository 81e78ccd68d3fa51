"""Settings for every test: in-process moto serves one request at a time (the runtime's
thread pools would otherwise race on moto's dicts; see `durable.testing`)."""

from __future__ import annotations

import pytest

from durable.testing import serialize_moto_requests


@pytest.fixture(autouse=True, scope="session")
def _moto_one_request_at_a_time() -> None:
    serialize_moto_requests()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `pytest -n 2 --dist loadgroup` (`make test`): the tests that start a stack
    (`durable dev` in tests/e2e, containers in tests/sam) run one after the other on one
    worker, sharing its session's dev server and build, while the other worker runs the
    in-process tests. Without xdist the mark does nothing."""
    for item in items:
        if {"e2e", "sam"} & set(item.path.relative_to(config.rootpath).parts[:2]):
            item.add_marker(pytest.mark.xdist_group("stack"))
