"""Integration: labctl.labs.libvirtd, a private libvirtd in a network namespace (the parts that
need no daemon: tests/unit/test_libvirtd.py).

The tests (root) run a real libvirtd + virtlogd in namespace ``lvt-<pid>``
(fixture ``libvirt_host`` from tests/helpers/libvirt_fixtures.py) and drive it with ``virsh`` from
the root namespace: networks from the templates, whose bridges and dnsmasq must exist only
inside the namespace, and a tiny TCG guest that boots nothing but has a 4-queue virtio NIC.
They use virsh, not libvirt-python, so they run under any Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.errors import LabError
from labctl.labs import libvirtd
from labctl.labs.libvirtd import LibvirtHost
from labctl.labs.xmlrender import METADATA_NS, render
from labctl.local.nsexec import NETNS_DIR, run_in_netns
from tests.helpers import ROOT
from tests.helpers.libvirt_fixtures import assert_all_gone, host_state
from tests.helpers.namespaces import pid_in_netns
from tests.helpers.processes import pids_named

DATA_NET, DATA_BRIDGE = "lvt-data", "lvt-d"
MGMT_NET, MGMT_BRIDGE = "lvt-mgmt", "lvt-m"
MGMT_ADDRESS = "198.19.250.1"
VHOST_REFUSAL = "vhost-net was requested for an interface, but is unavailable"
RUN_DIR_TEXT = str(libvirtd.RUN_DIR)


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["virsh", "-q", "-c", libvirtd.SYSTEM_URI, *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    if check:
        assert done.returncode == 0, f"virsh {' '.join(args)}: {done.stderr.strip()}"
    return done


def link_exists_in_root_namespace(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


def link_in_netns(netns: str, name: str) -> str:
    done = run_in_netns(netns, ["ip", "-d", "addr", "show", "dev", name], check=False)
    return done.stdout if done.returncode == 0 else ""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl.labs.libvirtd", *args], cwd=ROOT,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180)


@pytest.mark.integration
def test_cli_start_status_stop_leaves_nothing_behind(
        libvirt_workdir: Path, host_state_before: dict[str, object]) -> None:
    """Runs before the session daemon starts (it needs /run/libvirt for itself); its start
    probes QEMU into libvirt_workdir/cache, so the session daemon starts warm."""
    if libvirtd.find_running_libvirtd() is not None:
        pytest.skip("the session's libvirtd already runs (an earlier module started it): "
                    "run this module alone to test a start/stop cycle")
    netns = f"lvc-{os.getpid()}"
    started = run_cli("start", "--netns", netns, "--workdir", str(libvirt_workdir))
    assert started.returncode == 0, started.stderr
    handle = libvirt_workdir / libvirtd.HANDLE_NAME
    host = LibvirtHost.from_json(handle.read_text())
    try:
        assert pid_in_netns(host.libvirtd_pid, netns) and pid_in_netns(host.virtlogd_pid, netns)
        assert run_cli("status", "--workdir", str(libvirt_workdir)).returncode == 0
        assert virsh("version").returncode == 0
    finally:
        stopped = run_cli("stop", "--workdir", str(libvirt_workdir))
    assert stopped.returncode == 0, stopped.stderr
    assert_all_gone(host)
    assert not handle.exists()
    assert not libvirtd.libvirtd_running()
    assert host_state() == host_state_before


@pytest.mark.integration
def test_a_failed_start_undoes_itself(libvirt_workdir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if libvirtd.find_running_libvirtd() is not None:
        pytest.skip("the session's libvirtd already runs (an earlier module started it)")
    host_paths = [RUN_DIR_TEXT] + [target for _, target in libvirtd.BIND_DIRS]
    existed = {path: Path(path).exists() for path in host_paths}

    def refuse(*args: object) -> None:
        raise LabError("injected failure after both daemons started")

    monkeypatch.setattr(libvirtd, "_wait_until_answering", refuse)
    netns = f"lvf-{os.getpid()}"
    with pytest.raises(LabError, match="injected"):
        libvirtd.start_libvirtd_in_netns(netns, libvirt_workdir)
    assert not Path(NETNS_DIR, netns).exists()
    assert pids_named("libvirtd") == [] and pids_named("virtlogd") == []
    assert {path: Path(path).exists() for path in host_paths} == existed


@pytest.mark.integration
def test_daemons_run_inside_the_namespace(libvirt_host: LibvirtHost) -> None:
    assert pid_in_netns(libvirt_host.libvirtd_pid, libvirt_host.netns)
    assert pid_in_netns(libvirt_host.virtlogd_pid, libvirt_host.netns)
    assert libvirtd.find_running_libvirtd() == libvirt_host.libvirtd_pid
    assert libvirtd.host_alive(libvirt_host)
    assert virsh("list", "--all").returncode == 0      # from the root namespace


@pytest.mark.integration
def test_private_config_is_seen_by_the_daemon_only(
        libvirt_host: LibvirtHost, host_state_before: dict[str, object]) -> None:
    daemon_root = Path(f"/proc/{libvirt_host.libvirtd_pid}/root")
    assert 'user = "root"' in (daemon_root / "etc/libvirt/qemu.conf").read_text()
    assert f"\n{libvirtd.QEMU_USER}:" in (daemon_root / "etc/passwd").read_text()
    ours = Path("/proc/self/mountinfo").read_text()
    for target in ("/etc/libvirt", "/var/lib/libvirt", "/var/log/libvirt", "/etc/passwd"):
        assert f" {target} " not in ours, f"{target} is mounted in the root mount namespace"
    assert host_state() == host_state_before


@pytest.fixture(scope="module")
def lab_networks(libvirt_host: LibvirtHost, tmp_path_factory: Any) -> Iterator[LibvirtHost]:
    """A data network and a management network from the templates, defined and started."""
    folder = tmp_path_factory.mktemp("networks")
    mgmt = {"address": MGMT_ADDRESS, "prefix": 24, "dhcp_range_start": "198.19.250.100",
            "dhcp_range_end": "198.19.250.200",
            "hosts": [{"mac": "52:54:00:fa:00:01", "ip": "198.19.250.10", "name": "tiny"}]}
    for name, bridge, ip in ((DATA_NET, DATA_BRIDGE, None), (MGMT_NET, MGMT_BRIDGE, mgmt)):
        path = folder / f"{name}.xml"
        path.write_text(render("network.xml.j2", name=name, bridge=bridge, ip=ip))
        virsh("net-define", str(path))
        virsh("net-start", name)
    try:
        yield libvirt_host
    finally:
        for name in (DATA_NET, MGMT_NET):
            virsh("net-destroy", name, check=False)
            virsh("net-undefine", name, check=False)


@pytest.mark.integration
def test_bridges_exist_only_inside_the_namespace(lab_networks: LibvirtHost) -> None:
    for bridge in (DATA_BRIDGE, MGMT_BRIDGE):
        assert link_in_netns(lab_networks.netns, bridge), f"{bridge} missing in the namespace"
        assert not link_exists_in_root_namespace(bridge), f"{bridge} leaked to the root ns"
    assert f"inet {MGMT_ADDRESS}/24" in link_in_netns(lab_networks.netns, MGMT_BRIDGE)
    assert "inet " not in link_in_netns(lab_networks.netns, DATA_BRIDGE)


@pytest.mark.integration
def test_dnsmasq_serves_the_management_network_inside_the_namespace(
        lab_networks: LibvirtHost) -> None:
    dnsmasqs = {pid: Path(f"/proc/{pid}/cmdline").read_text() for pid in pids_named("dnsmasq")}
    ours = {pid: cmd for pid, cmd in dnsmasqs.items() if f"{MGMT_NET}.conf" in cmd}
    assert ours, f"no dnsmasq for {MGMT_NET}: {dnsmasqs}"
    assert all(pid_in_netns(pid, lab_networks.netns) for pid in ours)
    assert not any(f"{DATA_NET}.conf" in cmd for cmd in dnsmasqs.values())   # no DHCP there
    conf = lab_networks.workdir / "lib" / "dnsmasq" / f"{MGMT_NET}.hostsfile"
    assert "52:54:00:fa:00:01,198.19.250.10,tiny" in conf.read_text()


def tiny_domain_xml(host: LibvirtHost, name: str, *, domain_type: str = "qemu",
                    driver: str | None = "qemu") -> str:
    disk = host.workdir / "tiny.qcow2"
    if not disk.exists():
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1M"], check=True)
    return render("domain.xml.j2", name=name, lab="lvt", role="dut", domain_type=domain_type,
                  cpu_model="qemu64", vcpus=1, memory_mib=64, disk=str(disk), seed_iso=None,
                  console_log=str(host.workdir / f"{name}-console.log"), interfaces=[
                      {"network": MGMT_NET, "mac": "52:54:00:fa:00:01", "model": "virtio",
                       "queues": None, "driver": None},
                      {"network": DATA_NET, "mac": "52:54:00:fb:00:01", "model": "virtio",
                       "queues": 4, "driver": driver}])


@pytest.fixture
def defined(lab_networks: LibvirtHost, tmp_path: Path) -> Iterator[list[str]]:
    """Names appended here are destroyed and undefined after the test."""
    names: list[str] = []
    try:
        yield names
    finally:
        for name in names:
            virsh("destroy", name, check=False)
            virsh("undefine", name, check=False)


def define(host: LibvirtHost, names: list[str], tmp_path: Path, name: str, **kw: Any) -> None:
    path = tmp_path / f"{name}.xml"
    path.write_text(tiny_domain_xml(host, name, **kw))
    names.append(name)
    virsh("define", str(path))


def qemu_pid(name: str) -> int:
    return int(Path(f"/run/libvirt/qemu/{name}.pid").read_text().strip())


@pytest.mark.integration
def test_tiny_tcg_guest_runs_with_a_four_queue_nic(
        lab_networks: LibvirtHost, defined: list[str], tmp_path: Path) -> None:
    started = time.monotonic()
    define(lab_networks, defined, tmp_path, "lvt-tiny")
    virsh("start", "lvt-tiny")
    elapsed = time.monotonic() - started
    assert virsh("domstate", "lvt-tiny").stdout.strip() == "running"
    assert elapsed < 30, f"define + start took {elapsed:.1f}s (capability re-probe trap?)"
    pid = qemu_pid("lvt-tiny")
    assert pid_in_netns(pid, lab_networks.netns)
    cmdline = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    assert '"mq":true' in cmdline and '"vectors":10' in cmdline       # 2 * 4 queues + 2
    ports = run_in_netns(lab_networks.netns, ["ip", "-d", "link", "show", "master",
                                              DATA_BRIDGE]).stdout
    assert "multi_queue" in ports, ports
    mark = virsh("metadata", "lvt-tiny", "--uri", METADATA_NS).stdout
    assert 'role="dut"' in mark and 'name="lvt"' in mark


@pytest.mark.integration
def test_vhost_is_not_used_for_tcg_guests(
        lab_networks: LibvirtHost, defined: list[str], tmp_path: Path) -> None:
    """libvirt opens /dev/vhost-net only for KVM guests: under TCG driver='vhost' is
    accepted and quietly means the userspace backend (even where /dev/vhost-net exists)."""
    define(lab_networks, defined, tmp_path, "lvt-vhost-tcg", driver="vhost")
    virsh("start", "lvt-vhost-tcg")
    cmdline = Path(f"/proc/{qemu_pid('lvt-vhost-tcg')}/cmdline").read_text()
    assert '"vhost":true' not in cmdline


@pytest.mark.integration
def test_vhost_without_dev_vhost_net_is_refused_for_kvm(
        lab_networks: LibvirtHost, defined: list[str], tmp_path: Path) -> None:
    """The refusal comes while libvirt opens the NIC's file descriptors, before QEMU runs."""
    if libvirtd.vhost_net_available():
        pytest.skip("/dev/vhost-net exists here: a KVM guest would really start")
    if "<domain type='kvm'" not in virsh("capabilities").stdout:
        pytest.skip("libvirt offers no KVM domains on this machine")
    define(lab_networks, defined, tmp_path, "lvt-vhost-kvm", domain_type="kvm",
           driver="vhost")
    done = virsh("start", "lvt-vhost-kvm", check=False)
    assert done.returncode != 0
    assert VHOST_REFUSAL in done.stderr
    assert virsh("domstate", "lvt-vhost-kvm").stdout.strip() == "shut off"
