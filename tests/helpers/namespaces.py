"""Test helpers: network namespaces — the named ones of this machine, running a command in
one, which namespace a process or thread is in, and the processes inside given ones."""

from __future__ import annotations

import os
import subprocess

from labctl.local.nsexec import run_in_netns
from tests.helpers.processes import cmdline, pids

NetnsId = tuple[int, int]          # (st_dev, st_ino) of a namespace file: equal means same namespace


def namespaces() -> set[str]:
    """The named network namespaces (`ip netns list`)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


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
