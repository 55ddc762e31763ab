"""Shared pytest setup: the real-sshd fixtures, and skipping root-only tests for non-root."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.conftest_sshd", "tests.conftest_libvirt"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="integration test: needs root (network namespaces, sshd)")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)
