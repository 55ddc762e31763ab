"""labctl.labs.image: the pure helpers (unit), then a real build and one boot under QEMU/TCG (integration).

The boot test starts the image the way the libvirt lab will (qcow2 overlay on the cached base,
NoCloud seed ISO labelled `cidata`, virtio disk, two virtio NICs named by MAC with
network-config v2) and reads only the serial log. The NICs sit on QEMU-internal hubs with
nothing else attached, so no packet leaves the QEMU process (no user-mode networking).
"""

from __future__ import annotations

import json
import os
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
    LineCondenser,
    classify_apt,
    classify_debootstrap,
    grub_defaults,
    image_key,
    parse_deb822_sources,
    parse_one_line_sources,
    pick_mirror,
    sources_for_suite,
)

MIRROR = "http://deb.example.org/debian"

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.example.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
Enabled: no
URIs: http://old.example.org/debian
Suites: bookworm
Components: main
"""
THIRD_PARTY = """\
Types: deb
URIs: https://deb.nodesource.example/node_20.x
Suites: nodistro
Components: main
Signed-By: /usr/share/keyrings/nodesource.gpg
"""
ONE_LINE = """\
# a comment
deb [arch=amd64 signed-by=/usr/share/keyrings/local.gpg] http://mirror.example/debian bookworm main contrib
deb-src http://mirror.example/debian bookworm main
deb https://packages.cloud.example/apt cloud-sdk-bookworm main
"""


# ------------------------------------------------------------------- apt sources

def test_deb822_entries_keep_their_text_and_skip_disabled() -> None:
    sources = parse_deb822_sources(DEB822)
    assert [s.uris for s in sources] == [("http://deb.example.org/debian",),
                                         ("http://deb.example.org/debian-security",)]
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert sources[0].signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert sources[0].text.startswith("Types: deb\n# http://snapshot") and sources[0].deb822


def test_one_line_entries_with_options() -> None:
    sources = parse_one_line_sources(ONE_LINE)
    assert [(s.types, s.uris[0], s.suites) for s in sources] == [
        (("deb",), "http://mirror.example/debian", ("bookworm",)),
        (("deb-src",), "http://mirror.example/debian", ("bookworm",)),
        (("deb",), "https://packages.cloud.example/apt", ("cloud-sdk-bookworm",))]
    assert sources[0].signed_by == "/usr/share/keyrings/local.gpg"
    assert not sources[0].deb822 and sources[0].text.startswith("deb [arch=amd64")


def test_only_the_suites_own_binary_entries_go_into_the_chroot() -> None:
    sources = (parse_deb822_sources(THIRD_PARTY) + parse_deb822_sources(DEB822)
               + parse_one_line_sources(ONE_LINE))
    chosen = sources_for_suite(sources, "bookworm")
    assert [s.uris[0] for s in chosen] == ["http://deb.example.org/debian",
                                           "http://deb.example.org/debian-security",
                                           "http://mirror.example/debian"]
    assert sources_for_suite(sources, "trixie") == []


def test_mirror_is_the_entry_serving_the_suite_itself() -> None:
    third_first = parse_deb822_sources(THIRD_PARTY) + parse_deb822_sources(DEB822)
    assert pick_mirror(third_first, "bookworm") == "http://deb.example.org/debian"
    # a host on another release still names its Debian archive
    assert pick_mirror(third_first, "trixie") == "http://deb.example.org/debian"
    assert pick_mirror(parse_deb822_sources(THIRD_PARTY), "bookworm") is None


def test_host_sources_read_files_in_apts_order(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(ONE_LINE)
    (tmp_path / "sources.list.d" / "b.sources").write_text(DEB822)
    (tmp_path / "sources.list.d" / "a.list.disabled-by-farm").write_text("deb http://x/ y main\n")
    sources = image.host_sources(tmp_path)
    assert [s.uris[0] for s in sources] == [
        "http://mirror.example/debian", "http://mirror.example/debian",
        "https://packages.cloud.example/apt", "http://deb.example.org/debian",
        "http://deb.example.org/debian-security"]


# ------------------------------------------------------------------- key, cache, grub

def test_key_depends_on_every_input_but_not_on_package_order() -> None:
    spec = ImageSpec()
    key = image_key(spec, MIRROR)
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    assert key == image_key(ImageSpec(packages=tuple(reversed(spec.packages))), MIRROR + "/")
    changed = [ImageSpec(suite="trixie"), ImageSpec(cmdline="quiet"), ImageSpec(disk_gb=8),
               ImageSpec(packages=spec.packages + ("strace",))]
    keys = {image_key(s, MIRROR) for s in changed} | {image_key(spec, "http://other/debian")}
    assert key not in keys and len(keys) == 5


def test_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LABCTL_CACHE", str(tmp_path))
    assert image.cache_root() == tmp_path
    monkeypatch.delenv("LABCTL_CACHE")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert image.cache_root() == Path("/var/cache/labctl")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert image.cache_root() == tmp_path / ".cache" / "labctl"


def test_grub_defaults_edit_debians_file_in_place() -> None:
    debian = ('GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_DISTRIBUTOR=`lsb_release -i -s`\n'
              'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX=""\n#GRUB_TERMINAL=console\n')
    out = grub_defaults(debian, "net.ifnames=0 console=ttyS0,115200 console=tty0")
    assert "GRUB_TIMEOUT=1\n" in out and 'GRUB_CMDLINE_LINUX_DEFAULT=""\n' in out
    assert "GRUB_CMDLINE_LINUX='net.ifnames=0 console=ttyS0,115200 console=tty0'\n" in out
    assert 'GRUB_TERMINAL="console serial"\n' in out and "GRUB_SERIAL_COMMAND=" in out
    assert out.count("GRUB_TERMINAL") == 1 and "GRUB_DEFAULT=0\n" in out
    assert grub_defaults(out, "net.ifnames=0 console=ttyS0,115200 console=tty0") == out


def test_find_image_ignores_missing_or_foreign_manifests(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    monkeypatch.setattr(image, "host_mirror", lambda suite="bookworm": MIRROR)
    key = image_key(ImageSpec(), MIRROR)
    qcow2 = tmp_path / "images" / f"debian12-{key}.qcow2"
    manifest = qcow2.with_name(f"debian12-{key}.manifest.json")
    qcow2.parent.mkdir()
    qcow2.write_bytes(b"QFI")
    assert image.find_image(cache=tmp_path) is None            # no manifest: half built
    manifest.write_text("{not json")
    assert image.find_image(cache=tmp_path) is None
    manifest.write_text(json.dumps({"key": "0" * 16}))
    assert image.find_image(cache=tmp_path) is None
    manifest.write_text(json.dumps({"key": key, "kernel": "6.1.0-x-amd64"}))
    found = image.find_image(cache=tmp_path)
    assert found is not None and found.path == qcow2 and found.manifest["kernel"] == "6.1.0-x-amd64"


def test_building_needs_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(image, "host_mirror", lambda suite="bookworm": MIRROR)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        image.build_image(cache=tmp_path)


def test_no_mirror_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(image, "APT_DIR", tmp_path)
    with pytest.raises(LabError, match="no Debian mirror"):
        image.host_mirror()


# ------------------------------------------------------------------- progress

def test_condenser_shows_group_changes_and_one_line_per_interval() -> None:
    shown: list[str] = []
    now = [0.0]
    condenser = LineCondenser("debootstrap", classify_debootstrap, shown.append,
                              interval=10, clock=lambda: now[0])
    for index in range(100):
        now[0] = index * 0.25
        condenser.feed(f"I: Retrieving pkg{index} 1.0")
        condenser.feed(f"I: Validating pkg{index} 1.0")
    condenser.feed("W: something odd")
    condenser.feed("I: Extracting base-files...")
    condenser.feed("I: Extracting bash...")
    condenser.close()
    assert shown == ["debootstrap: I: Retrieving pkg0 1.0",
                     "debootstrap: I: Retrieving pkg40 1.0  (+79 lines)",
                     "debootstrap: I: Retrieving pkg80 1.0  (+79 lines)",
                     "debootstrap: W: something odd  (+39 lines)",
                     "debootstrap: I: Extracting base-files...",
                     "debootstrap: ... (1 more lines)"]


def test_apt_lines_are_grouped() -> None:
    assert classify_apt("Get:12 http://x bookworm/main amd64 udev 252") == "apt"
    assert classify_apt("Setting up udev (252.39-1) ...") == "apt"
    assert classify_apt("W: No zstd in /usr/bin:/sbin:/bin, using gzip") is None
    assert classify_apt("E: Unable to locate package nope") is None
    assert classify_debootstrap("I: Configuring libc-bin...") == "configure"
    assert classify_debootstrap("I: Base system installed successfully.") == "other"


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
