"""The libvirt provider's refusals and faults, against the real private libvirtd: fast (no
guest boots to the end) and each leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import cli
from tests.helpers import ROOT
from tests.helpers.processes import kill_if_running, processes_mentioning

pytestmark = pytest.mark.integration


def _inventory(directory: Path, libvirt_host: Any, lab: str, **libvirt: Any) -> Path:
    data = yaml.safe_load((ROOT / "inventory.yaml").read_text())
    data["lab"] = lab
    data["libvirt"].update({"netns": libvirt_host.netns, "uri": libvirt_host.uri, **libvirt})
    path = directory / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _virsh(uri: str, *args: str) -> str:
    return subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True).stdout


def test_foreign_network_is_refused_and_untouched(tmp_path: Path, libvirt_host: Any,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    xml = tmp_path / "net.xml"
    xml.write_text("<network><name>lfx-mgmt</name><bridge name='lfx-x'/></network>")
    subprocess.run(["virsh", "-c", libvirt_host.uri, "net-define", str(xml)], check=True,
                   capture_output=True)
    try:
        inventory = _inventory(tmp_path, libvirt_host, "lfx", image=str(tmp_path / "any.qcow2"))
        assert cli.main(["-i", str(inventory), "up"]) == 1
        err = capsys.readouterr().err
        assert "network lfx-mgmt" in err and "did not create" in err and "Traceback" not in err
        assert "lfx-mgmt" in _virsh(libvirt_host.uri, "net-list", "--all", "--name")
        assert "lfx-data" not in _virsh(libvirt_host.uri, "net-list", "--all", "--name")
    finally:
        subprocess.run(["virsh", "-c", libvirt_host.uri, "net-undefine", "lfx-mgmt"],
                       capture_output=True)
        cli.main(["-i", str(tmp_path / "inventory.yaml"), "down"])


def test_not_enough_memory_is_refused_before_anything_is_defined(
        tmp_path: Path, libvirt_host: Any, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "1G"], check=True)
    inventory = _inventory(tmp_path, libvirt_host, "lmem", image=str(image))
    data = yaml.safe_load(inventory.read_text())
    data["hosts"]["dut"]["vm"]["memory_mib"] = 1_000_000
    inventory.write_text(yaml.safe_dump(data))
    assert cli.main(["-i", str(inventory), "up"]) == 1
    err = capsys.readouterr().err
    assert "not enough memory" in err and "memory_mib" in err
    assert "lmem" not in _virsh(libvirt_host.uri, "list", "--all", "--name")
    assert "lmem" not in _virsh(libvirt_host.uri, "net-list", "--all", "--name")
    assert cli.main(["-i", str(inventory), "down"]) == 0


def test_missing_image_names_the_build_command(tmp_path: Path, libvirt_host: Any,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCTL_CACHE", str(tmp_path / "empty-cache"))
    inventory = _inventory(tmp_path, libvirt_host, "limg")
    assert cli.main(["-i", str(inventory), "up"]) == 1
    assert "labctl image build" in capsys.readouterr().err
    assert cli.main(["-i", str(inventory), "down"]) == 0


def test_unreachable_libvirt_is_one_message(tmp_path: Path, libvirt_host: Any,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    inventory = _inventory(tmp_path, libvirt_host, "luri", uri="qemu+unix:///system?socket=/nonexistent")
    assert cli.main(["-i", str(inventory), "up"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach libvirt at qemu+unix:///system?socket=/nonexistent" in err
    assert "Traceback" not in err


def _blank_lab(directory: Path, libvirt_host: Any, lab: str, boot_timeout: int) -> Path:
    """A lab of two small guests whose disk boots nothing (SeaBIOS finds no bootable disk)."""
    image = directory / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "1G"], check=True)
    inventory = _inventory(directory, libvirt_host, lab, image=str(image), boot_timeout=boot_timeout)
    data = yaml.safe_load(inventory.read_text())
    for host in data["hosts"].values():
        host["vm"] = {"vcpus": 1, "memory_mib": 256}
    inventory.write_text(yaml.safe_dump(data))
    return inventory


def test_guest_never_ready_times_out_with_console_tail_and_down_cleans(
        tmp_path: Path, libvirt_host: Any, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = _blank_lab(tmp_path, libvirt_host, "lnrd", boot_timeout=8)
    assert cli.main(["-i", str(inventory), "up"]) == 1
    err = capsys.readouterr().err
    assert "not ready after 8 s" in err and "Console log tail" in err
    # half-way it was taken for stuck (a kernel wedged early in boot) and started again once
    assert "warning: dut: not ready 4 s after it started (console: " in err
    assert "starting it again (1 of at most 2)" in err
    assert "lnrd-dut" in _virsh(libvirt_host.uri, "list", "--all", "--name")
    assert cli.main(["-i", str(inventory), "down"]) == 0
    assert "lnrd" not in _virsh(libvirt_host.uri, "list", "--all", "--name")
    assert "lnrd" not in _virsh(libvirt_host.uri, "net-list", "--all", "--name")
    assert not (tmp_path / ".labctl").exists()


def test_down_after_a_killed_up_removes_everything(tmp_path: Path, libvirt_host: Any) -> None:
    """`up` killed with SIGKILL while its guests boot: `down` removes the domains, networks and
    files it had recorded; a second `down` has nothing to do."""
    inventory = _blank_lab(tmp_path, libvirt_host, "lkup", boot_timeout=300)
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "-i", str(inventory), "up"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while "lkup-loadgen" not in _virsh(libvirt_host.uri, "list", "--name"):
            assert proc.poll() is None and time.monotonic() < deadline, "up never started the guests"
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    lock = tmp_path / ".labctl" / "lkup.lock"
    assert lock.exists(), "SIGKILL leaves the lock file (a stale one)"
    assert cli.main(["-i", str(inventory), "down"]) == 0
    assert "lkup" not in _virsh(libvirt_host.uri, "list", "--all", "--name")
    assert "lkup" not in _virsh(libvirt_host.uri, "net-list", "--all", "--name")
    assert not (tmp_path / ".labctl").exists()
    assert cli.main(["-i", str(inventory), "down"]) == 0


def _kill_qemu_when_running(guest: str, previous: int | None, deadline: float) -> int:
    """SIGKILL the guest's QEMU (started by this test's libvirtd for this test's lab) once a new
    one runs: QEMU 7.2's TCG was seen to segfault like this while a guest booted."""
    while time.monotonic() < deadline:
        pid = next(iter(processes_mentioning(f"guest={guest},")), None)
        if pid and pid != previous:
            time.sleep(1.0)                  # booting, as the segfault came 22 s into a boot
            subprocess.run(["kill", "-KILL", str(pid)], check=True)
            return pid
        time.sleep(0.2)
    raise AssertionError(f"no new QEMU of {guest} in time")


def test_a_guest_whose_qemu_dies_while_booting_is_started_again_twice_then_said(
        tmp_path: Path, libvirt_host: Any) -> None:
    inventory = _blank_lab(tmp_path, libvirt_host, "lcrs", boot_timeout=240)
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "-i", str(inventory), "up"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 200
        pid = None
        for _ in range(3):
            pid = _kill_qemu_when_running("lcrs-dut", pid, deadline)
        _, err = proc.communicate(timeout=240)
    finally:
        kill_if_running(proc)
    try:
        assert proc.returncode == 1
        assert "warning: dut: its QEMU stopped while booting (shut off" in err
        assert "starting it again (1 of at most 2)" in err and "starting it again (2 of at most 2)" in err
        assert "dut: its QEMU stopped while booting (shut off" in err and "3 times" in err
        assert "Traceback" not in err
        state = yaml.safe_load((tmp_path / ".labctl" / "lcrs" / "state.json").read_text())
        assert state["facts"]["guest_restarts_while_booting"] == {"dut": 2}
    finally:
        assert cli.main(["-i", str(inventory), "down"]) == 0
    assert "lcrs" not in _virsh(libvirt_host.uri, "list", "--all", "--name")
    assert not (tmp_path / ".labctl").exists()
