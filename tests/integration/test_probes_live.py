"""Integration: the probes' commands on this machine's kernel, and on a veth pair between two
namespaces the test creates (their parsers are tested against captures in tests/unit/test_probes.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.analysis.deltas import nic_queue_deltas
from labctl.host.probes import (
    PROBES,
    Probe,
    ethtool_channels,
    ethtool_info,
    ethtool_rss,
    ethtool_stats,
    rps_cpus,
    supports_combined,
)
from labctl.local.nsexec import netns_argv
from tests.helpers.namespaces import created_namespace

pytestmark = pytest.mark.integration


def run_probe(command: str, netns: str | None = None) -> str:
    """Run a probe command like the executor would (through a shell), return its stdout."""
    argv = ["sh", "-c", command]
    if netns is not None:
        argv = netns_argv(netns, argv, own_sysfs=True)
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout


def test_host_probes_parse_this_kernel() -> None:
    if not Path("/proc/interrupts").exists():
        pytest.skip("no /proc/interrupts: not a Linux host")
    parsed = {name: probe.parse(run_probe(probe.command)) for name, probe in PROBES.items()}
    online = sorted(parsed["cpus_online"])
    assert parsed["interrupts"].cpus == tuple(online)
    assert sorted(parsed["stat"]) == online
    assert set(parsed["softnet_stat"]) == set(online)
    assert set(online) <= set(parsed["softirqs"]["NET_RX"])


@pytest.fixture
def veth_pair() -> Iterator[tuple[str, str]]:
    """Namespaces lcfxt<pid>a/b joined by a 4-queue veth (GRO + UDP GRO forwarding on B)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    if shutil.which("ip") is None or shutil.which("ethtool") is None:
        pytest.skip("needs iproute2 and ethtool")
    ns_a, ns_b = f"lcfxt{os.getpid()}a", f"lcfxt{os.getpid()}b"
    setup = [
        ["ip", "link", "add", "lcfxt0", "netns", ns_a, "numrxqueues", "4", "numtxqueues", "4",
         "type", "veth", "peer", "name", "lcfxt1", "netns", ns_b, "numrxqueues", "4",
         "numtxqueues", "4"],
        netns_argv(ns_a, ["ip", "addr", "add", "10.251.1.1/30", "dev", "lcfxt0"]),
        netns_argv(ns_b, ["ip", "addr", "add", "10.251.1.2/30", "dev", "lcfxt1"]),
        netns_argv(ns_b, ["ethtool", "-K", "lcfxt1", "gro", "on"]),
        netns_argv(ns_a, ["ip", "link", "set", "lcfxt0", "up"]),
        netns_argv(ns_b, ["ip", "link", "set", "lcfxt1", "up"]),
        netns_argv(ns_b, ["ethtool", "-K", "lcfxt1", "rx-udp-gro-forwarding", "on"]),
    ]
    with created_namespace(ns_a), created_namespace(ns_b):
        for argv in setup:
            subprocess.run(argv, check=True, capture_output=True, timeout=10)
        yield ns_a, ns_b


SEND_UDP = """
import socket
for port in range(41000, 41032):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.251.1.1", port))
    for _ in range(5):
        s.sendto(b"lcfx", ("10.251.1.2", 9))
    s.close()
"""


def test_veth_probes_live(veth_pair: tuple[str, str]) -> None:
    ns_a, ns_b = veth_pair

    def probe_b(probe: Probe) -> Any:
        return probe.parse(run_probe(probe.command, ns_b))

    channels = probe_b(ethtool_channels("lcfxt1"))
    assert channels.current["rx"] == 4 and not supports_combined(channels)
    assert probe_b(ethtool_info("lcfxt1"))["driver"] == "veth"
    assert probe_b(ethtool_rss("lcfxt1")).indirection is None  # ethtool -x exits 1 on veth
    assert probe_b(rps_cpus("lcfxt1", 0)) == frozenset()
    before = probe_b(ethtool_stats("lcfxt1"))
    send = netns_argv(ns_a, [sys.executable, "-c", SEND_UDP])
    subprocess.run(send, check=True, timeout=30, capture_output=True)
    after = probe_b(ethtool_stats("lcfxt1"))
    received = sum(
        counters.get("xdp_packets", 0)
        for (direction, _), counters in nic_queue_deltas(before, after).items()
        if direction == "rx"
    )
    assert received >= 160  # 32 flows x 5 datagrams (plus perhaps IPv6 noise)
