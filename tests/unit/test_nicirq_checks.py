"""A NIC whose vectors exist but could not be mapped: IRQ tuning and IRQ expectations refused at
planning (before anything changes), naming the vectors and why; an unknown driver warned; veth
still "not applicable"; the facts carry the method; the pin step refuses a changed queue count."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from labctl.analysis.perhost import nic_irq_deltas, unmapped_irq_deltas
from labctl.host.facts import HostFacts, parse_facts
from labctl.host.probes import parse_interrupts
from labctl.input.config import load_inventory, load_scenario
from labctl.plan.feasibility import check_against_facts
from labctl.plan.nicirq_checks import nic_irq_warnings
from labctl.plan.planner import guarded_undo, irq_checks, irq_guard
from tests.helpers import NETNS_INVENTORY, fixture
from tests.helpers.plans import guest_facts, veth_facts

IXGBE_VECTORS = {"130": "eth0-TxRx-0", "131": "eth0-TxRx-1", "132": "eth0-TxRx-2", "133": "eth0-TxRx-3",
                 "134": "eth0"}


def loaded(tmp_path: Path, text: str) -> Any:
    (tmp_path / "inventory.yaml").write_text(NETNS_INVENTORY)
    (tmp_path / "s.yaml").write_text(textwrap.dedent(text))
    return load_scenario(tmp_path / "s.yaml", load_inventory(tmp_path / "inventory.yaml").model)


def unmapped_dut(driver: str = "txgbe") -> HostFacts:
    """The guest's facts, but its NIC a PCI NIC whose 5 vectors labctl could not read."""
    facts = guest_facts()
    why = f"driver {driver!r} is not in labctl's driver table"
    nic = dataclasses.replace(facts.nic, driver=driver, device="0000:3b:00.0", rx_irqs={}, tx_irqs={},
                              irq_method="none", vectors=IXGBE_VECTORS, msi_listed=True,
                              unmapped_vectors={irq: why for irq in IXGBE_VECTORS},
                              irq_note=f"eth1: {why}; its 5 vector(s) are counted per IRQ name, not per queue")
    return dataclasses.replace(facts, nic=nic)


TUNING = """\
tuning:
  dut:
    irq_affinity: {rx-0: 1, rx-1: 1, rx-2: 1, rx-3: 1}
expect:
  - {check: irq_confined, queues: all, cpus: 1, min_share: 0.9}
  - {check: queue_irqs, queues: [rx-0], min: 0.1}
  - {check: softirq_follows_irqs, min: 0.5}
  - {check: softirq_share, softirq: NET_RX, cpus: 1, min: 0.5}
"""


def test_irq_tuning_and_expectations_refused_naming_the_vectors(tmp_path: Path) -> None:
    problems, warnings = check_against_facts(loaded(tmp_path, TUNING), None,  # type: ignore[arg-type]
                                             {"dut": unmapped_dut(), "loadgen": veth_facts("loadgen")})
    text = [str(p) for p in problems]
    assert len(text) == 4
    assert "tuning.dut.irq_affinity: refused: eth1 on dut (driver txgbe, device 0000:3b:00.0) has 5 IRQ " \
           "vector(s) in msi_irqs" in text[0]
    assert ("IRQ 130 eth0-TxRx-0, IRQ 131 eth0-TxRx-1, IRQ 132 eth0-TxRx-2, IRQ 133 eth0-TxRx-3, "
            "IRQ 134 eth0 (driver 'txgbe' is not in labctl's driver table)") in text[0]
    assert [t.split(": ", 2)[1] for t in text[1:]] == ["expect[0].check", "expect[1].check", "expect[2].check"]
    assert all(":" in t.split(" ")[0] for t in text)                       # file:line:column first
    assert warnings and "dut: eth1 on dut" in warnings[0] and "reported per IRQ name" in warnings[0]


def test_a_mapped_nic_plans_as_before(tmp_path: Path) -> None:
    problems, warnings = check_against_facts(loaded(tmp_path, TUNING), None,  # type: ignore[arg-type]
                                             {"dut": guest_facts(), "loadgen": veth_facts("loadgen")})
    assert problems == [] and warnings == []


def test_veth_stays_not_applicable(tmp_path: Path) -> None:
    problems, _ = check_against_facts(loaded(tmp_path, TUNING), None,  # type: ignore[arg-type]
                                      {"dut": veth_facts(), "loadgen": veth_facts("loadgen")})
    assert not [p for p in problems if "refused" in p.message]


def test_known_driver_with_a_note_is_a_warning_only() -> None:
    facts = guest_facts()
    noted = dataclasses.replace(facts, nic=dataclasses.replace(facts.nic, vectors={"37": "virtio1-input.0"},
                                                               irq_note="gve has 3 notify blocks (odd)"))
    assert nic_irq_warnings({"dut": noted}) == ["dut: eth1: gve has 3 notify blocks (odd)"]
    assert nic_irq_warnings({"dut": guest_facts(), "loadgen": veth_facts("loadgen")}) == []


# --------------------------------------------------------------------------- facts

def test_facts_of_this_machine_record_method_vectors_and_netlink() -> None:
    facts = parse_facts("h", fixture("facts/host-eth0-msi.txt"), "eth0", shared_kernel=False)
    nic = facts.nic
    assert (nic.driver, nic.irq_method, nic.msi_listed) == ("virtio_net", "driver-table", True)
    assert nic.rx_irqs == {0: "38"} and nic.tx_irqs == {0: "39"}
    assert nic.vectors == {"37": "virtio2-config", "38": "virtio2-input.0", "39": "virtio2-output.0"}
    assert nic.unmapped_vectors == {"37": "configuration changes (no queue)"}
    assert "reports no IRQ" in nic.netlink and not nic.irqs_unmapped
    data = json.loads(json.dumps(facts.to_json()))["nic"]
    assert data["irq_method"] == "driver-table" and data["unmapped_vectors"] == {"37": "configuration changes (no queue)"}


def test_facts_without_the_new_sections_map_virtio_as_before() -> None:
    """Facts of an older labctl (no msi_irqs, no netdev_nl section): the names path."""
    facts = parse_facts("h", fixture("facts/host-eth0.txt"), "eth0", shared_kernel=False)
    assert facts.nic.rx_irqs == {0: "38"} and facts.nic.irq_method == "driver-table"
    assert not facts.nic.msi_listed and facts.nic.netlink.startswith("not read")
    guest = parse_facts("dut", fixture("facts/debian12-guest-eth1.txt"), "eth1", shared_kernel=False)
    assert guest.nic.rx_irqs == {0: "37", 1: "39", 2: "41", 3: "43"}


def test_lo_has_no_vectors() -> None:
    facts = parse_facts("h", fixture("facts/host-lo-msi.txt"), "lo", shared_kernel=True)
    assert facts.nic.vectors == {} and facts.nic.irq_method == "none" and not facts.nic.irqs_unmapped


# --------------------------------------------------------------------------- the pin step's guard

def run(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=10,
                          stdin=subprocess.DEVNULL)


def test_guard_refuses_a_changed_queue_count_on_this_machine() -> None:
    """Read-only: `lo` has one RX queue here; a plan made for 2 must not pin anything."""
    facts = dataclasses.replace(veth_facts(), nic=dataclasses.replace(veth_facts().nic, interface="lo"))
    assert run(irq_guard(irq_checks(facts, "0", "", 1))).returncode == 0
    changed = run(irq_guard(irq_checks(facts, "0", "", 2)))
    assert changed.returncode == 1
    assert "lo does not have the 2 RX queue(s) the plan was made for" in changed.stderr
    assert "its queue count changed: IRQ 0 not pinned: now 1" in changed.stderr


def test_guard_checks_the_irq_still_is_the_queues_vector() -> None:
    table = parse_interrupts(Path("/proc/interrupts").read_text())
    row = next(r for r in table.rows if r.irq.isdigit() and r.name and "/" not in r.name and " " not in r.name)
    facts = dataclasses.replace(veth_facts(), nic=dataclasses.replace(veth_facts().nic, interface="lo"))
    assert run(irq_guard(irq_checks(facts, row.irq, row.name, 1))).returncode == 0
    moved = run(irq_guard(irq_checks(facts, row.irq, row.name + "-gone", 1)))
    assert moved.returncode == 1 and f"IRQ {row.irq} is no longer {row.name}-gone of lo" in moved.stderr


def test_undo_puts_back_only_while_the_queues_and_vector_hold() -> None:
    """The undo is recorded before the pin runs: when the pin refused, its undo writes nothing."""
    facts = dataclasses.replace(veth_facts(), nic=dataclasses.replace(veth_facts().nic, interface="lo"))
    holds = run(guarded_undo(irq_checks(facts, "0", "", 1), "0", "echo put-back"))
    assert (holds.returncode, holds.stdout) == (0, "put-back\n")
    changed = run(guarded_undo(irq_checks(facts, "0", "", 2), "0", "echo put-back"))
    assert changed.returncode == 0 and "IRQ 0 left as it is" in changed.stdout and "put-back" not in changed.stdout


# --------------------------------------------------------------------------- analysis

@pytest.mark.parametrize("driver", ["i40e", ""])
def test_deltas_per_queue_from_the_driver_table_or_the_old_name_match(driver: str) -> None:
    before = parse_interrupts(fixture("interrupts/debian12-guest-8cpu.c_pinned.before.txt"))
    after = parse_interrupts(fixture("interrupts/debian12-guest-8cpu.c_pinned.after.txt"))
    nic = {"interface": "eth1", "driver": "virtio_net" if driver else "", "bus_info": "0000:00:04.0"}
    rows = nic_irq_deltas(before, after, "virtio1", nic)
    assert [(r["queue"], r["irq"], r["name"]) for r in rows] == [
        (0, "37", "virtio1-input.0"), (1, "39", "virtio1-input.1"), (2, "41", "virtio1-input.2"),
        (3, "43", "virtio1-input.3")]
    assert rows == nic_irq_deltas(before, after, "virtio1")


def test_unknown_driver_deltas_per_irq_name() -> None:
    before = parse_interrupts(fixture("interrupts/debian12-guest-8cpu.c_pinned.before.txt"))
    after = parse_interrupts(fixture("interrupts/debian12-guest-8cpu.c_pinned.after.txt"))
    nic = {"vectors": {"37": "virtio1-input.0", "36": "virtio1-config"},
           "unmapped_vectors": {"37": "driver 'x' is not in labctl's driver table", "36": "same"}}
    rows = unmapped_irq_deltas(before, after, nic)
    assert [(r["irq"], r["name"]) for r in rows] == [("36", "virtio1-config"), ("37", "virtio1-input.0")]
    assert sum(rows[1]["per_cpu"].values()) > 0


# --------------------------------------------------------------------------- netdev netlink, live

def test_netdevnl_agent_answers_on_this_kernel() -> None:
    """Read-only generic-netlink dump for `lo` (6.18 here: the family answers, lo's NAPI-less
    queues have no IRQ); an interface that does not exist is `unsupported`, exit 0 both."""
    from labctl.host.nicirqs import parse_netdev_queues
    agent = str(Path(__file__).resolve().parents[2] / "labctl" / "agent" / "netdevnl.py")
    answer = subprocess.run(["python3", agent, "lo"], capture_output=True, text=True, timeout=10)
    parsed = parse_netdev_queues(answer.stdout)
    assert answer.returncode == 0
    assert parsed.unsupported or (0 in parsed.rx and parsed.rx[0] is None)
    missing = subprocess.run(["python3", agent, "nosuch0"], capture_output=True, text=True, timeout=10)
    assert missing.returncode == 0 and parse_netdev_queues(missing.stdout).unsupported


def test_report_lists_unmapped_vectors_per_irq_name() -> None:
    from labctl.reports.markdown import render_markdown
    from labctl.runfiles.models import Summary
    host = {"cpus": [0, 1], "isolated": [], "nic_unmapped_irqs": [
        {"irq": "130", "name": "eth0-TxRx-0", "why": "driver 'txgbe' is not in labctl's driver table",
         "per_cpu": {0: 7, 1: 0}}]}
    summary = Summary.model_validate({
        "run_id": "20251126T031500Z-x", "scenario": "x", "lab": "l", "provider": "ssh",
        "labctl_version": "0.1.0", "started": "2025-11-26T03:15:00+00:00", "window_seconds": 5.0,
        "facts": {"dut": {"kernel": "6.1", "cpus_online": "0-1", "isolated": "",
                          "nic": {"interface": "eth0", "driver": "txgbe"}}},
        "hosts": {"dut": host}, "warnings": ["dut: eth0 on dut (driver txgbe) has 1 IRQ vector(s)"]})
    report = render_markdown(summary)
    assert "### NIC vectors not mapped to an RX queue, per IRQ name (delta)" in report
    assert "| IRQ 130 eth0-TxRx-0 | driver 'txgbe' is not in labctl's driver table |" in report
    assert "## Warnings" in report and "driver txgbe) has 1 IRQ vector(s)" in report
