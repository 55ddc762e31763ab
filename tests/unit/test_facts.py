"""Host facts: parse_facts on real facts-script output (tests/fixtures/facts/README.md)."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from labctl.host.facts import SYSCTLS, HostFacts, facts_script, parse_facts
from labctl.host.sections import split_sections
from tests.helpers import fixture


def facts_capture(name: str) -> str:
    return fixture(f"facts/{name}")


@pytest.fixture(scope="module")
def guest() -> HostFacts:
    return parse_facts("dut", facts_capture("debian12-guest-eth1.txt"), "eth1", shared_kernel=False)


@pytest.fixture(scope="module")
def host_lo() -> HostFacts:
    return parse_facts("dut", facts_capture("host-lo.txt"), "lo", shared_kernel=True)


@pytest.fixture(scope="module")
def host_eth0() -> HostFacts:
    return parse_facts("h", facts_capture("host-eth0.txt"), "eth0", shared_kernel=False)


# --------------------------------------------------------------------------- the virtio guest

def test_guest_cpus(guest: HostFacts) -> None:
    assert guest.kernel == "6.1.0-50-amd64"
    assert guest.cpus_online == frozenset(range(8))
    assert guest.cpus_possible == 8
    assert guest.isolated == frozenset({4, 5, 6, 7})
    assert guest.housekeeping == frozenset({0, 1, 2, 3})
    assert guest.pid1_cpus_allowed == frozenset({0, 1, 2, 3})
    assert guest.default_smp_affinity == frozenset({0, 1, 2, 3})
    assert "isolcpus=managed_irq,domain,4-7" in guest.cmdline


def test_guest_missing_sections_have_defaults(guest: HostFacts) -> None:
    assert guest.hostname == "" and guest.python3 == ""


def test_guest_nic_found_through_its_device(guest: HostFacts) -> None:
    nic = guest.nic
    assert nic.exists and nic.interface == "eth1"
    assert nic.driver == "virtio_net" and nic.bus_info == "0000:00:03.0"
    assert nic.device == "virtio1"
    # virtio0-input.0 (IRQ 34, the management NIC) and virtio3-input (46) are not eth1's
    assert nic.rx_irqs == {0: "37", 1: "39", 2: "41", 3: "43"}
    assert nic.tx_irqs == {0: "38", 1: "40", 2: "42", 3: "44"}
    assert nic.has_irqs


def test_guest_channels_and_rps(guest: HostFacts) -> None:
    nic = guest.nic
    assert nic.supports_combined
    assert nic.channels_max == {"rx": None, "tx": None, "other": None, "combined": 4}
    assert nic.channels_current == {"rx": None, "tx": None, "other": None, "combined": 4}
    assert nic.rx_queues == 4
    assert nic.rps_cpus == {q: frozenset() for q in range(4)}


def test_guest_irq_affinity_irqbalance_tuned_sysctls(guest: HostFacts) -> None:
    assert guest.irq_affinity == {"37": frozenset({0, 1}), "39": frozenset({2, 3}),
                                  "41": frozenset(range(4)), "43": frozenset(range(4))}
    assert guest.irqbalance == "inactive"        # `systemctl is-active` exit 3
    assert guest.tuned_profile == "realtime"
    assert guest.sysctls == {"net.core.busy_read": "50", "net.core.busy_poll": "50"}
    assert guest.shared_kernel is False


def test_guest_to_json(guest: HostFacts) -> None:
    data = json.loads(json.dumps(guest.to_json()))
    assert data["cpus_online"] == "0-7" and data["isolated"] == "4-7"
    assert data["pid1_cpus_allowed"] == "0-3" and data["default_smp_affinity"] == "0-3"
    nic = data["nic"]
    assert nic["device"] == "virtio1"
    assert nic["rps_cpus"] == {"rx-0": "", "rx-1": "", "rx-2": "", "rx-3": ""}
    assert nic["rx_irqs"] == {"0": "37", "1": "39", "2": "41", "3": "43"}
    # IRQ affinity of the NIC's own IRQs only; TX affinities were not captured -> ""
    assert nic["irq_affinity"] == {"37": "0-1", "39": "2-3", "41": "0-3", "43": "0-3",
                                   "38": "", "40": "", "42": "", "44": ""}
    assert "irq_affinity" not in data


# --------------------------------------------------------------------------- this machine

def test_host_lo(host_lo: HostFacts) -> None:
    assert host_lo.hostname == "vm"
    assert host_lo.kernel.startswith("6.18.")
    assert host_lo.cpus_online == frozenset({0, 1}) and host_lo.cpus_possible == 2
    assert host_lo.isolated == frozenset()                 # an empty line
    assert host_lo.housekeeping == frozenset({0, 1})
    assert host_lo.pid1_cpus_allowed == frozenset({0, 1})
    assert host_lo.default_smp_affinity == frozenset({0, 1})
    assert host_lo.irq_affinity["38"] == frozenset({0, 1})
    assert len(host_lo.irq_affinity) == 19
    assert host_lo.irqbalance == "absent"
    assert host_lo.tuned_profile == ""                     # "No current active profile."
    assert host_lo.python3.startswith("3.")
    assert set(host_lo.sysctls) == set(SYSCTLS)
    assert host_lo.sysctls["net.core.netdev_budget"] == "300"
    assert host_lo.shared_kernel is True


def test_host_lo_nic_without_device(host_lo: HostFacts) -> None:
    nic = host_lo.nic
    assert nic.exists                       # /sys/class/net/lo exists
    assert nic.driver == "" and nic.device == ""          # ethtool -i and readlink failed
    assert nic.channels_max == {} and not nic.supports_combined
    assert nic.rx_queues == 1 and nic.rps_cpus == {0: frozenset()}
    assert nic.rx_irqs == {} and not nic.has_irqs
    json.dumps(host_lo.to_json())


def test_host_eth0_real_virtio(host_eth0: HostFacts) -> None:
    nic = host_eth0.nic
    assert nic.driver == "virtio_net" and nic.device == "virtio2"
    assert nic.rx_irqs == {0: "38"} and nic.tx_irqs == {0: "39"}
    assert nic.channels_current["combined"] == 1 and nic.supports_combined
    assert host_eth0.irq_affinity["38"] == frozenset({0, 1})
    assert json.loads(json.dumps(host_eth0.to_json()))["nic"]["irq_affinity"] == {"38": "0-1", "39": "0-1"}


def test_nic_missing() -> None:
    text = facts_capture("host-lo.txt").replace("@@labctl-section end nic_exists 0",
                                          "@@labctl-section end nic_exists 1")
    facts = parse_facts("x", text, "eth9", shared_kernel=True)
    assert not facts.nic.exists and facts.nic.interface == "eth9"
    assert facts.nic.rx_queues == 0 and facts.cpus_online == frozenset({0, 1})
    json.dumps(facts.to_json())


def test_empty_output() -> None:
    facts = parse_facts("x", "", "eth1", shared_kernel=False)
    assert facts.cpus_online == frozenset() and facts.isolated == frozenset()
    assert facts.irqbalance == "unknown" and not facts.nic.exists


def test_failed_section_output_is_ignored() -> None:
    text = "@@labctl-section begin isolated\ncat: nope: No such file\n\n@@labctl-section end isolated 1\n"
    assert parse_facts("x", text, "eth1", False).isolated == frozenset()


# --------------------------------------------------------------------------- the script itself

def test_script_sections_match_the_fixture() -> None:
    names = list(split_sections(facts_capture("host-lo-msi.txt")))
    script = facts_script("lo")
    assert names == [line.split()[-1].rstrip("'") for line in script.splitlines()
                     if line.startswith("echo '@@labctl-section begin")]


def test_script_live_on_this_machine() -> None:
    """The script runs read-only here and parses; online CPUs agree with sysfs."""
    out = subprocess.run(["sh", "-c", facts_script("lo")], capture_output=True, text=True,
                         timeout=20, stdin=subprocess.DEVNULL).stdout
    facts = parse_facts("local", out, "lo", shared_kernel=True)
    online = Path("/sys/devices/system/cpu/online").read_text().strip()
    from labctl.cpulist import parse_cpulist
    assert facts.cpus_online == parse_cpulist(online)
    assert facts.nic.exists and 0 in facts.nic.rps_cpus


def test_script_quotes_the_interface(tmp_path: Path) -> None:
    """A hostile interface name is data, never code: the canary file is not created."""
    canary = tmp_path / "canary"
    hostile = f"x;touch {canary};$(touch {canary})`touch {canary}`"
    script = facts_script(hostile)
    assert shlex.quote(f"/sys/class/net/{hostile}") in script
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=20,
                         stdin=subprocess.DEVNULL).stdout
    assert not canary.exists()
    assert not parse_facts("x", out, hostile, shared_kernel=True).nic.exists


def test_perf_version_or_nothing() -> None:
    assert parse_facts("x", facts_capture("host-lo.txt"), "lo", True).perf == "perf version 6.1.187"
    missing = "@@labctl-section begin perf\nsh: 1: perf: not found\n\n@@labctl-section end perf 127\n"
    assert parse_facts("x", missing, "lo", True).perf == ""
