"""Test helpers (a pytest plugin, loaded by tests/conftest.py): the ``no_host_touched`` fixture,
which makes every way labctl has to a host, a process or a socket fail loudly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from labctl import runner
from labctl.labs import providers
from labctl.transport import netns_socket


@pytest.fixture
def no_host_touched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every way to a host (or to any process or socket) fail loudly; returns the calls."""
    calls: list[str] = []

    def refusing(name: str) -> Callable[..., Any]:
        def refuse(*args: object, **kwargs: object) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} called while the input was invalid")
        return refuse

    from labctl.transport import ssh as transport
    targets: list[tuple[Any, str]] = [
        (runner, "open_transports"), (runner, "connected"), (runner, "load_state"),
        (runner, "provider_for"), (runner, "gather_facts"), (runner, "Executor"),
        (providers, "provider_for"), (providers, "load_state"), (transport, "open_all"),
        (netns_socket, "connect_in_netns"), (subprocess, "Popen"), (os, "system"),
        (socket, "create_connection"), (socket.socket, "connect"),
    ]
    for owner, attr in targets:
        monkeypatch.setattr(owner, attr, refusing(f"{getattr(owner, '__name__', owner)}.{attr}"))
    # the lab's lock (a file beside the inventory), where this version of the runner has one
    monkeypatch.setattr(runner, "locked", refusing("runner.locked"), raising=False)
    monkeypatch.setitem(sys.modules, "libvirt", None)      # `import libvirt` fails
    return calls
