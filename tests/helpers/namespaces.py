"""Test helpers: network namespaces — the named ones of this machine, creating one, running a
command in one, which namespace a process or thread is in, and the processes inside given ones."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

from labctl.local.nsexec import netns_argv, run_in_netns
from tests.helpers.processes import cmdline, pids

NetnsId = tuple[int, int]          # (st_dev, st_ino) of a namespace file: equal means same namespace


def namespaces() -> set[str]:
    """The named network namespaces (`ip netns list`)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@contextlib.contextmanager
def created_namespace(name: str) -> Iterator[str]:
    """A new named namespace with lo up, deleted at the end (also on failure)."""
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, stdin=subprocess.DEVNULL)
    try:
        subprocess.run(netns_argv(name, ["ip", "link", "set", "lo", "up"]), check=True,
                       capture_output=True, stdin=subprocess.DEVNULL)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def in_ns(ns: str, *argv: str) -> str:
    """Run ``argv`` in namespace ``ns`` (its own /sys mounted), return its stdout."""
    return run_in_netns(ns, list(argv), own_sysfs=True).stdout


def netns_id(path: str) -> NetnsId | None:
    """Which namespace a namespace file is (/run/netns/NAME, /proc/PID/ns/net); None if gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def named_netns_ids(names: list[str]) -> set[NetnsId]:
    """The namespaces called ``names`` that exist."""
    return {i for i in (netns_id(f"/run/netns/{name}") for name in names) if i}


def processes_in(names: list[str]) -> dict[int, str]:
    """PID -> command line of every process whose network namespace is one of ``names``."""
    inside = named_netns_ids(names)
    found = {}
    for pid in pids():
        if netns_id(f"/proc/{pid}/ns/net") in inside:
            line = cmdline(pid)
            if line is not None:
                found[pid] = line
    return found


def pid_in_netns(pid: int, name: str) -> bool:
    """Whether process ``pid`` is in the network namespace called ``name`` (both must exist)."""
    inside, named = netns_id(f"/proc/{pid}/ns/net"), netns_id(f"/run/netns/{name}")
    assert inside and named, f"process {pid} or namespace {name} is gone"
    return inside == named
