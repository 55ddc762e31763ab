"""Shared pytest setup: the real-sshd fixtures, and skipping root-only tests for non-root."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers import CpuHog

pytest_plugins = ["tests.helpers.sshd_fixtures", "tests.helpers.libvirt_fixtures", "tests.helpers.guards"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="integration test: needs root (network namespaces, sshd)")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def cpu_hog() -> Iterator[CpuHog]:
    """A process that keeps one host core busy for the whole test, killed by PID at its end."""
    with CpuHog() as hog:
        yield hog
