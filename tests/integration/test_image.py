"""Integration: labctl.labs.image builds a real image, and it boots once under QEMU/TCG (the pure
helpers: tests/unit/test_image.py).

The boot test starts the image the way the libvirt lab will (qcow2 overlay on the cached base,
NoCloud seed ISO labelled `cidata`, virtio disk, two virtio NICs named by MAC with
network-config v2) and reads only the serial log. The NICs sit on QEMU-internal hubs with
nothing else attached, so no packet leaves the QEMU process (no user-mode networking).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from labctl.errors import LabError
from labctl.labs import image
from labctl.labs.image import (
    ImageSpec,
    image_key,
)

# ------------------------------------------------------------------- integration: build + boot

QEMU = "qemu-system-x86_64"
BOOT_TIMEOUT = 300.0     # 65 s when the machine is idle, 139 s at load average 11
MGMT_MAC, DATA_MAC, DATA_ADDRESS = "52:54:00:1a:b0:01", "52:54:00:1a:b0:02", "198.18.0.1/24"


@pytest.fixture(scope="module")
def guest_image() -> image.ImageInfo:
    missing = [tool for tool in ("qemu-img", "debootstrap", "sfdisk") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: apt-get install qemu-utils debootstrap fdisk "
                    "(scripts/setup.sh)")
    lines: list[str] = []
    info = image.build_image(progress=lines.append)     # cached after the first run (~2 min)
    print("\n".join(lines))
    return info


@pytest.mark.integration
def test_second_build_returns_the_cached_image(guest_image: image.ImageInfo) -> None:
    started = time.monotonic()
    again = image.build_image()
    assert time.monotonic() - started < 2
    assert again.path == guest_image.path and again.key == guest_image.key
    other = ImageSpec(cmdline=ImageSpec().cmdline + " quiet")
    assert image_key(other, image.host_mirror()) != guest_image.key
    manifest = guest_image.manifest
    assert manifest["key"] == guest_image.key and str(manifest["kernel"]).endswith("-amd64")
    packages = manifest["packages"]
    assert isinstance(packages, dict) and all(packages[p] for p in ImageSpec().packages)


@pytest.mark.integration
def test_a_failed_build_leaves_nothing_mounted_or_attached(guest_image: image.ImageInfo,
                                                           tmp_path: Path) -> None:
    (tmp_path / "debs").symlink_to(image.cache_root() / "debs")   # no downloads: cached above
    spec = ImageSpec(packages=ImageSpec().packages + ("labctl-no-such-package",))
    with pytest.raises(LabError, match="Unable to locate package labctl-no-such-package") as failed:
        image.build_image(spec, cache=tmp_path)
    images = tmp_path / "images"
    assert "build log:" in str(failed.value) and list(images.glob("*.failed.log"))
    assert not list(images.glob(".build-*")) and not list(images.glob("*.qcow2"))
    assert image.find_image(spec, cache=tmp_path) is None
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()
    loops = subprocess.run(["losetup", "--list"], capture_output=True, text=True, check=True)
    assert str(tmp_path) not in loops.stdout


def _ssh_host_key(directory: Path) -> tuple[str, str, str]:
    key = directory / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "imgtest", "-f", str(key)],
                   check=True)
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(key)], check=True, capture_output=True,
                                 text=True).stdout.split()[1]
    return key.read_text(), Path(f"{key}.pub").read_text().strip(), fingerprint


GUEST_SCRIPT = r"""
say() { echo "LABCTL $*" > /dev/ttyS0; }
say FP $(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)
say HOSTKEYS $(ls /etc/ssh/ | grep -c '^ssh_host_.*_key$')
say NET eth1 $(ip -o -4 addr show dev eth1 | awk '{print $4}')
say NETFILES $(ls /etc/systemd/network/ | tr '\n' ' ')
say DS $(cat /run/cloud-init/cloud.cfg 2>/dev/null | tr '\n' ' ')
say MACHINEID $(cat /etc/machine-id)
(while [ ! -e /var/lib/cloud/instance/boot-finished ]; do sleep 0.2; done
 say BOOT-FINISHED uptime $(cut -d' ' -f1 /proc/uptime)
 say SSHD $(systemctl is-active ssh)
 say FAILED $(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')
 say DONE) > /dev/null 2>&1 < /dev/null &
"""


def _seed_files(private: str, public: str) -> dict[str, str]:
    user = {"hostname": "imgtest", "disable_root": False, "ssh_deletekeys": True,
            "ssh_genkeytypes": ["ed25519"], "ssh_pwauth": False,
            "ssh_keys": {"ed25519_private": private, "ed25519_public": public},
            "runcmd": [["bash", "-c", GUEST_SCRIPT]]}
    network = {"version": 2, "ethernets": {
        "eth0": {"match": {"macaddress": MGMT_MAC}, "set-name": "eth0", "dhcp4": True},
        "eth1": {"match": {"macaddress": DATA_MAC}, "set-name": "eth1", "addresses": [DATA_ADDRESS]}}}
    return {"user-data": "#cloud-config\n" + yaml.safe_dump(user, sort_keys=False),
            "meta-data": yaml.safe_dump({"instance-id": f"imgtest-{time.time_ns()}",
                                         "local-hostname": "imgtest"}),
            "network-config": yaml.safe_dump(network, sort_keys=False)}


def _write_seed_iso(path: Path, files: dict[str, str]) -> None:
    pytest.importorskip("pycdlib", reason="the seed ISO is written with pycdlib (pip)")
    from labctl.labs.seed import write_seed_iso
    write_seed_iso(path, files)


def _qemu_argv(overlay: Path, seed: Path, log: Path) -> list[str]:
    return [QEMU, "-accel", "tcg", "-cpu", "qemu64", "-m", "768", "-smp", "2",
            "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
            "-serial", f"file:{log}",
            "-drive", f"file={overlay},if=virtio,format=qcow2",
            "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
            # NICs on QEMU-internal hubs with nothing else attached: no traffic leaves QEMU
            "-netdev", "hubport,id=mgmt,hubid=0", "-device", f"virtio-net-pci,netdev=mgmt,mac={MGMT_MAC}",
            "-netdev", "hubport,id=data,hubid=1", "-device", f"virtio-net-pci,netdev=data,mac={DATA_MAC}"]


def _wait_for(log: Path, marker: str, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if marker in text:
            return text
        if proc.poll() is not None:
            pytest.fail(f"qemu exited {proc.returncode}; serial log tail:\n{text[-3000:]}")
        time.sleep(0.5)
    text = log.read_text(errors="replace") if log.exists() else ""
    pytest.fail(f"no {marker!r} on the serial console within {timeout:.0f} s; tail:\n{text[-3000:]}")


def _markers(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        match = re.search(r"LABCTL (\S+) ?(.*)", line.strip("\r\x00"))
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


@pytest.mark.integration
def test_image_boots_under_tcg_with_a_nocloud_seed(guest_image: image.ImageInfo, tmp_path: Path) -> None:
    if not shutil.which(QEMU):
        pytest.skip("needs qemu-system-x86_64: apt-get install qemu-system-x86 (scripts/setup.sh)")
    private, public, fingerprint = _ssh_host_key(tmp_path)
    seed, overlay, log = tmp_path / "seed.iso", tmp_path / "overlay.qcow2", tmp_path / "serial.log"
    _write_seed_iso(seed, _seed_files(private, public))
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    str(guest_image.path), str(overlay)], check=True)
    started = time.monotonic()
    proc = subprocess.Popen(_qemu_argv(overlay, seed, log), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "qemu.err").open("wb"))
    try:
        text = _wait_for(log, "LABCTL DONE", proc, BOOT_TIMEOUT)
        seconds = time.monotonic() - started
    finally:
        proc.kill()
        proc.wait()
        overlay.unlink(missing_ok=True)
    found = _markers(text)
    print(f"\nboot to cloud-init final: {seconds:.0f} s on the host clock; guest says {found}")
    command_line = re.search(r"Command line: (.*)", text)
    assert command_line and "net.ifnames=0" in command_line.group(1).split()
    assert "root=UUID=" in command_line.group(1)
    assert fingerprint in found["FP"] and found["HOSTKEYS"] == "1"   # the seed's key, and only it
    assert found["NET"] == f"eth1 {DATA_ADDRESS}"
    assert "10-cloud-init-eth0.network" in found["NETFILES"]
    assert "NoCloud" in found["DS"] and found["MACHINEID"]
    assert found["SSHD"] == "active" and "BOOT-FINISHED" in found
    # /dev/console is the serial port: cloud-init's own report reaches libvirt's console log
    assert re.search(r"Cloud-init v\. \S+ finished at .*DataSourceNoCloud", text)
    assert "Invalid cloud-config" not in text
