"""Fixtures for engine tests: a fresh task registry and a test environment on memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from durable import TaskRegistry
from durable.testing import TestEnvironment


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry()


@pytest.fixture
def env(registry: TaskRegistry) -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=registry) as environment:
        yield environment
