"""labctl.labs.libvirtd without a daemon: the handle, refusals, stopping only its own processes
(the private libvirtd itself: tests/integration/test_libvirtd.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.labs import libvirtd
from labctl.labs.libvirtd import LibvirtHost


def test_handle_round_trips_through_json(tmp_path: Path) -> None:
    host = LibvirtHost("ns1", tmp_path, 10, 11, created_netns=False,
                       created_paths=("/run/libvirt", "/var/lib/libvirt"))
    assert LibvirtHost.from_json(host.to_json()) == host
    assert host.qemu_log("lab-dut") == tmp_path / "log" / "qemu" / "lab-dut.log"


@pytest.mark.parametrize("text", ["", "{}", '{"netns": "x"}', "[1]",
                                  '{"netns": "n", "workdir": "/w", "libvirtd_pid": 1, '
                                  '"virtlogd_pid": 2, "uri": "u", "created_netns": true, '
                                  '"created_paths": "/run/libvirt"}'])
def test_malformed_handle_is_a_lab_error(text: str) -> None:
    with pytest.raises(LabError, match="not a libvirtd handle"):
        LibvirtHost.from_json(text)


def test_stop_leaves_a_process_that_is_not_our_daemon_alone(tmp_path: Path) -> None:
    """A recycled PID (here: a sleep) must survive stop_libvirtd."""
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        host = LibvirtHost(f"lvt-absent-{os.getpid()}", tmp_path, stranger.pid, stranger.pid,
                           created_netns=False)
        libvirtd.stop_libvirtd(host)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_bad_namespace_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="namespace name"):
        libvirtd.start_libvirtd_in_netns("no/slash", tmp_path)


def test_cli_status_and_stop_without_a_handle(tmp_path: Path) -> None:
    assert libvirtd.main(["status", "--workdir", str(tmp_path)]) == 1
    assert libvirtd.main(["stop", "--workdir", str(tmp_path)]) == 0


def test_cli_start_needs_a_namespace(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        libvirtd.main(["start", "--workdir", str(tmp_path)])
