"""pytest plugin (side effects): a private libvirtd in a network namespace, for integration tests.

Register with ``pytest_plugins = ["tests.helpers.libvirt_fixtures"]`` (or ``-p tests.helpers.libvirt_fixtures``).

``libvirt_host`` (session) starts virtlogd + libvirtd inside a namespace ``lvt-<pid>`` with
their config, state and logs in ``libvirt_workdir`` (a temp dir), yields the ``LibvirtHost``
and, at the end (also after failures), stops the daemons by PID, deletes the namespace,
removes what the start created on the host and checks that all of it is really gone.
``libvirt_workdir`` outlives the daemon, so a test that starts and stops its own daemon in it
leaves a warm QEMU capability cache behind (the first start probes QEMU: ~8 s; later: <1 s).
Both skip with the reason when not root or when packages are missing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.labs import libvirtd
from labctl.local.nsexec import NETNS_DIR
from labctl.local.procs import pid_alive

# host files the private daemon must never change (it sees its own copies)
WATCHED_HOST_FILES = ("/etc/libvirt/qemu.conf", "/etc/libvirt/libvirtd.conf",
                      "/etc/libvirt/virtlogd.conf")


def skip_reason() -> str | None:
    """Why this machine cannot host a private libvirtd, or None."""
    if os.geteuid() != 0:
        return "needs root: creates a network namespace, mounts, starts libvirtd"
    missing = libvirtd.missing_programs()
    if missing:
        return ("missing " + ", ".join(missing) + ": run scripts/setup.sh (apt-get install "
                + " ".join(sorted({item.split("(")[1].rstrip(")") for item in missing})) + ")")
    running = libvirtd.find_running_libvirtd()
    if running is not None or libvirtd.libvirtd_running():
        return (f"a libvirtd already runs on this machine (PID {running}); the private one "
                "needs /run/libvirt for itself")
    return None


def host_state() -> dict[str, object]:
    """What the private daemon must leave alone on the host: libvirt's config files (sha256,
    None if absent) and whether /etc/passwd and /etc/group list ``libvirt-qemu`` (other
    tests add and remove users meanwhile, so not their digests)."""
    state: dict[str, object] = {
        path: hashlib.sha256(Path(path).read_bytes()).hexdigest() if Path(path).exists()
        else None for path in WATCHED_HOST_FILES}
    for path in ("/etc/passwd", "/etc/group"):
        lines = Path(path).read_text().splitlines()
        state[path] = any(line.startswith(f"{libvirtd.QEMU_USER}:") for line in lines)
    return state


def assert_all_gone(host: libvirtd.LibvirtHost) -> None:
    """Everything ``start_libvirtd_in_netns`` made is gone (zombies count as gone)."""
    assert not pid_alive(host.libvirtd_pid), f"libvirtd {host.libvirtd_pid} still runs"
    assert not pid_alive(host.virtlogd_pid), f"virtlogd {host.virtlogd_pid} still runs"
    assert not Path(NETNS_DIR, host.netns).exists(), f"namespace {host.netns} still exists"
    left = [path for path in host.created_paths if Path(path).exists()]
    assert not left, f"left on the host: {left}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that start their own daemon (they use ``libvirt_workdir`` but not
    ``libvirt_host``) run first: once the session daemon runs, /run/libvirt is taken."""
    def starts_its_own(item: pytest.Item) -> bool:
        names = getattr(item, "fixturenames", ())
        return "libvirt_workdir" in names and "libvirt_host" not in names

    first = [item for item in items if starts_its_own(item)]
    if first:
        items[:] = first + [item for item in items if not starts_its_own(item)]


@pytest.fixture(scope="session")
def libvirt_workdir() -> Iterator[Path]:
    """The private daemon's config/state/log directory, for the whole session."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    workdir = Path(tempfile.mkdtemp(prefix="labctl-lvt-"))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def host_state_before() -> dict[str, object]:
    """``host_state()`` before any private daemon ran."""
    return host_state()


@pytest.fixture(scope="session")
def libvirt_host(libvirt_workdir: Path,
                 host_state_before: dict[str, object]) -> Iterator[libvirtd.LibvirtHost]:
    """A private libvirtd in namespace ``lvt-<pid>``; ``qemu:///system`` reaches it."""
    if libvirtd.find_running_libvirtd() is not None:
        pytest.skip("a libvirtd already runs on this machine")
    host = libvirtd.start_libvirtd_in_netns(f"lvt-{os.getpid()}", libvirt_workdir)
    try:
        yield host
    finally:
        libvirtd.stop_libvirtd(host)
    assert_all_gone(host)
    assert host_state() == host_state_before
