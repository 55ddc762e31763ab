"""Integration: the libvirt lab with two real QEMU guests booted from the image labctl builds.

A private libvirtd runs in a network namespace the test session creates (tests/
conftest_libvirt.py); guests' networks and all their traffic live inside it, and SSH to the
guests is opened from inside it. up -> checks inside the DUT -> re-up (no-op) -> a scenario
with channels, IRQ affinity and RPS -> collect -> down, and nothing is left behind.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import cli

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


def _labctl(directory: Path, *args: str) -> int:
    return cli.main(["-i", str(directory / "inventory.yaml"), "--runs-dir",
                     str(directory / "runs"), *args])


@pytest.fixture(scope="module")
def vm_lab(libvirt_host: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from labctl.image import build_image
    build_image(progress=lambda m: print(f"image: {m}", flush=True))   # cached after the first
    directory = tmp_path_factory.mktemp("vmlab")
    data = yaml.safe_load((ROOT / "inventory.yaml").read_text())
    data["lab"] = "lvm"
    data["libvirt"]["netns"] = libvirt_host.netns
    data["libvirt"]["uri"] = libvirt_host.uri
    (directory / "inventory.yaml").write_text(yaml.safe_dump(data))
    shutil.copytree(ROOT / "scenarios", directory / "scenarios")
    yield directory
    _labctl(directory, "down")


def _virsh_names(uri: str, *args: str) -> list[str]:
    import subprocess
    out = subprocess.run(["virsh", "-c", uri, *args, "--name"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def test_vm_lab_up_run_down(vm_lab: Path, libvirt_host: Any, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    assert _labctl(vm_lab, "up") == 0, capsys.readouterr().err
    up_seconds = time.monotonic() - started
    state = json.loads((vm_lab / ".labctl" / "lvm" / "state.json").read_text())
    assert state["facts"]["accelerator"] in ("tcg", "kvm")
    assert state["facts"]["virtio_net_backend"] in ("vhost", "qemu")

    from labctl.labstate import SshTarget
    from labctl.transport import SshTransport
    with SshTransport(SshTarget.from_dict(state["targets"]["dut"])) as dut:
        channels = dut.run("ethtool -l eth1").stdout
        assert channels.split("Current hardware settings:")[1].split("Combined:")[1].split()[0] == "4"
        interrupts = dut.run("cat /proc/interrupts").stdout
        device = dut.run("basename $(readlink -e /sys/class/net/eth1/device)").stdout.strip()
        for queue in range(4):
            assert f"{device}-input.{queue}" in interrupts
        assert dut.run("nproc").stdout.strip() == "8"

    started = time.monotonic()
    assert _labctl(vm_lab, "up") == 0
    assert time.monotonic() - started <= 2.0, "re-up of a running lab is a no-op"

    capsys.readouterr()
    assert _labctl(vm_lab, "run", str(vm_lab / "scenarios" / "vm_irq_rps.yaml")) == 0, \
        capsys.readouterr().out[-3000:]
    run = max((vm_lab / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    summary = json.loads((run / "summary.json").read_text())
    assert all(e["passed"] for e in summary["expectations"])
    rows = {r["queue"]: r["per_cpu"] for r in summary["hosts"]["dut"]["nic_irqs"]}
    for queue, cpu in {0: "2", 1: "3"}.items():          # JSON: CPU keys are strings
        per_cpu = rows[queue]
        total = sum(per_cpu.values())
        assert total > 100 and per_cpu[cpu] >= 0.95 * total, (queue, per_cpu)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["lab"]["facts"]["virtio_net_backend"] == state["facts"]["virtio_net_backend"]
    print(f"up took {up_seconds:.0f} s")

    assert _labctl(vm_lab, "down") == 0
    assert not [n for n in _virsh_names(libvirt_host.uri, "list", "--all") if n.startswith("lvm-")]
    assert not [n for n in _virsh_names(libvirt_host.uri, "net-list", "--all") if n.startswith("lvm-")]
    assert not (vm_lab / ".labctl").exists()          # overlays, seeds, keys, console logs
    assert not _qemu_processes("guest=lvm-"), "no QEMU of this lab left"


def _qemu_processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        if b"qemu-system" in cmdline and marker.encode() in cmdline:
            found.append(int(entry.name))
    return found
