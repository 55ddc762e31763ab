"""Probes as typed units: each snapshot probe's command and parser against captured fixtures,
the registry covering every raw file a plan writes, read-backs and facts through probes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from labctl.analysis.neighbours import host_processes
from labctl.analysis.perhost import analyse_host
from labctl.host import probes
from labctl.host.facts import HostFacts, fact_probes, parse_facts
from labctl.host.sections import split_sections
from labctl.host.snapshots import (
    SNAPSHOT_PROBES,
    SnapshotHost,
    parse_raw,
    snapshot_probes,
)
from labctl.input.model import HostPrepare
from labctl.plan.actions import Change, Plan, Readback
from labctl.plan.hostprep import prep_fact_probes
from tests.helpers import fixture
from tests.helpers.plans import GUEST_TUNING, LOAD, guest_facts, plan_for, veth_facts

GUEST = "debian12-guest-8cpu"
GUEST_HOST = SnapshotHost("eth1", ("37", "38"), tuple(range(8)))


def real_guest_facts() -> HostFacts:
    return parse_facts("dut", fixture("facts/debian12-guest-eth1.txt"), "eth1", shared_kernel=False)


# ------------------------------------------------------------------------- each snapshot probe


def test_interrupts_probe() -> None:
    probe = SNAPSHOT_PROBES["interrupts"](GUEST_HOST)
    assert probe.command == "cat /proc/interrupts"
    table = probe.parse(fixture(f"interrupts/{GUEST}.c_pinned.before.txt"))
    assert table.cpus == tuple(range(8)) and table.by_irq("LOC") is not None


def test_softirqs_probe() -> None:
    probe = SNAPSHOT_PROBES["softirqs"](GUEST_HOST)
    assert probe.command == "cat /proc/softirqs"
    assert set(probe.parse(fixture(f"softirqs/{GUEST}.c_pinned.before.txt"))["NET_RX"]) == set(range(8))


def test_softnet_stat_probe_maps_idless_rows_to_the_hosts_online_cpus() -> None:
    text = fixture("softnet_stat/hjr3-3.11-11col.txt")           # 8 rows, no CPU ids
    sparse = SnapshotHost("eth1", (), (0, 2, 4, 6, 8, 10, 12, 14))
    probe = SNAPSHOT_PROBES["softnet_stat"](sparse)
    assert probe.command == "cat /proc/net/softnet_stat"
    assert sorted(probe.parse(text)) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert sorted(SNAPSHOT_PROBES["softnet_stat"](SnapshotHost("eth1")).parse(text)) == list(range(8))
    with_ids = probe.parse(fixture(f"softnet_stat/{GUEST}-13col.c_pinned.before.txt"))
    assert sorted(with_ids) == list(range(8))                   # 13 columns: the CPU id column wins


def test_stat_probe() -> None:
    probe = SNAPSHOT_PROBES["stat"](GUEST_HOST)
    assert probe.command == "cat /proc/stat"
    assert sorted(probe.parse(fixture(f"stat/{GUEST}.c_pinned.before.txt"))) == list(range(8))


def test_ethtool_stats_probe() -> None:
    probe = SNAPSHOT_PROBES["ethtool_stats"](GUEST_HOST)
    assert probe.command == "ethtool -S eth1"
    stats = probe.parse(fixture(f"ethtool_stats/{GUEST}.c_pinned.before.txt"))
    assert any(name.startswith("rx_queue_0_") for name in stats)


def test_rps_cpus_probe_lists_every_queue() -> None:
    probe = SNAPSHOT_PROBES["rps_cpus"](SnapshotHost("my eth"))
    assert probe.command == ("for q in '/sys/class/net/my eth/queues'/rx-*; "
                             "do echo \"${q##*/} $(cat \"$q/rps_cpus\")\"; done")
    masks = [fixture("masks/veth-rps_cpus-rx-0.txt"), fixture("masks/veth-rps_cpus-rx-1-cpu1.txt")]
    listing = "".join(f"rx-{queue} {mask}" for queue, mask in enumerate(masks))
    assert probe.parse(listing) == {0: frozenset(), 1: frozenset({1})}


def test_rps_cpus_probe_on_this_machine() -> None:
    queues = sorted(Path("/sys/class/net/lo/queues").glob("rx-*"))
    if not queues:
        pytest.skip("no /sys/class/net/lo/queues here")
    probe = SNAPSHOT_PROBES["rps_cpus"](SnapshotHost("lo"))
    out = subprocess.run(["sh", "-c", probe.command], capture_output=True, text=True, timeout=10,
                         check=True).stdout
    assert set(probe.parse(out)) == {int(q.name[3:]) for q in queues}


def test_irq_affinity_probe() -> None:
    probe = SNAPSHOT_PROBES["irq_affinity"](SnapshotHost("eth1", ("38", "40")))
    assert probe.command == "grep -Hs . " + " ".join(
        f"/proc/irq/{irq}/{kind}_affinity_list" for irq in (38, 40) for kind in ("smp", "effective")
    ) + " || [ $? -eq 2 ]"
    listing = "".join(f"/proc/irq/38/{kind}_affinity_list:{fixture(f'cpulist_files/host-irq38-{kind}_affinity_list.txt')}"
                      for kind in ("smp", "effective"))
    assert probe.parse(listing) == {"38": {"smp": "0-1", "effective": "1"}}
    odd = SNAPSHOT_PROBES["irq_affinity"](SnapshotHost("eth1", ("3 8",)))      # quoted, not run
    assert odd.command.startswith("grep -Hs . '/proc/irq/3 8/smp_affinity_list' ")


def test_irq_affinity_probe_on_this_machine() -> None:
    irqs = sorted((p.name for p in Path("/proc/irq").glob("[0-9]*")
                   if (p / "effective_affinity_list").exists()), key=int)[:2]
    if not irqs:
        pytest.skip("no IRQ with an effective_affinity_list here")
    probe = SNAPSHOT_PROBES["irq_affinity"](SnapshotHost("lo", tuple(irqs)))
    out = subprocess.run(["sh", "-c", probe.command], capture_output=True, text=True, timeout=10,
                         check=True).stdout
    assert set(probe.parse(out)) == set(irqs)
    gone = SNAPSHOT_PROBES["irq_affinity"](SnapshotHost("lo", (*irqs, "999999")))   # freed by ethtool -L
    done = subprocess.run(["sh", "-c", gone.command], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0 and done.stderr == "" and set(gone.parse(done.stdout)) == set(irqs)


# ------------------------------------------------------------------------- the registry and plans


def snapshot_files(plan: Plan) -> dict[tuple[str, str], str]:
    """(host, raw file name) -> command of every snapshot the plan takes."""
    return {(action.host, name): command for action in plan.actions if action.kind == "snapshot"
            for name, command in action.probes}


@pytest.mark.parametrize("facts", [guest_facts(), veth_facts(), real_guest_facts()],
                         ids=["guest", "veth", "captured-guest"])
def test_every_snapshot_file_of_a_plan_has_its_probe(facts: HostFacts) -> None:
    plan = plan_for(facts, GUEST_TUNING if facts.nic.has_irqs else {}, load=LOAD,
                    snapshot={"hosts": ["dut", "loadgen"]})
    by_host = {"dut": facts, "loadgen": veth_facts("loadgen")}
    files = snapshot_files(plan)
    assert {name for _, name in files} >= {"interrupts", "softirqs", "softnet_stat", "stat",
                                          "ethtool_stats", "rps_cpus"}
    for (host, name), command in files.items():
        assert command == SNAPSHOT_PROBES[name](SnapshotHost.of(by_host[host])).command


def test_analysis_reads_every_file_a_plan_writes() -> None:
    facts = real_guest_facts()
    plan = plan_for(facts, {}, load=LOAD)
    written = {name for _, name in snapshot_files(plan)}
    asked: set[str] = set()

    def read(name: str, phase: str) -> str | None:
        asked.add(name)
        return None

    analyse_host(read, json.loads(json.dumps(facts.to_json())))
    host_processes(read, json.loads(json.dumps(facts.to_json())), frozenset())     # the neighbour check
    assert written <= asked
    assert "irq_affinity" in written


def test_snapshot_host_from_manifest_facts_matches_planning() -> None:
    facts = real_guest_facts()
    from_manifest = SnapshotHost.from_json(json.loads(json.dumps(facts.to_json())))
    assert from_manifest == SnapshotHost.of(facts)
    assert from_manifest.irqs and from_manifest.online_cpus == tuple(range(8))


def test_snapshot_probes_add_rps_stat_processes_always_and_irq_affinity_only_with_irqs() -> None:
    assert list(snapshot_probes(["stat"], SnapshotHost("eth1"))) == ["stat", "rps_cpus", "processes"]
    assert list(snapshot_probes(["softirqs"], GUEST_HOST)) == ["softirqs", "rps_cpus", "stat", "processes",
                                                               "irq_affinity"]


def test_parse_raw_uses_the_registered_probe() -> None:
    text = fixture(f"stat/{GUEST}.c_pinned.after.txt")
    assert parse_raw("stat", text, GUEST_HOST) == probes.parse_proc_stat(text)


# ------------------------------------------------------------------------- read-backs


def test_readbacks_run_a_probe_and_parse_with_it() -> None:
    plan = plan_for(guest_facts(), GUEST_TUNING | {"rps": {"rx-0": "1,6"}}, load=LOAD)
    readbacks = [action.readback for action in plan.actions if isinstance(action, Change) and action.readback]
    expected = {
        probes.ethtool_channels("eth1").command: "channels",
        probes.smp_affinity_list(37).command: "cpulist",
        probes.smp_affinity_list(39).command: "cpulist",
        probes.rps_cpus("eth1", 0).command: "mask",
    }
    assert {rb.command: rb.kind for rb in readbacks} == expected
    assert probes.READBACK_PARSERS["mask"] is probes.rps_cpus("eth1", 0).parse
    assert probes.READBACK_PARSERS["cpulist"] is probes.smp_affinity_list(37).parse


@pytest.mark.parametrize("kind,expected,capture,observed", [
    ("mask", frozenset({1}), "masks/veth-rps_cpus-rx-1-cpu1.txt", frozenset({1})),
    ("cpulist", frozenset(), "cpulist_files/host-irq38-smp_affinity_list.txt", frozenset({0, 1})),
    ("channels", {"combined": 2}, "ethtool_channels/debian12-guest-virtio.start.txt", {"combined": 4}),
    ("channels", {"rx": 4, "tx": 4}, "ethtool_channels/veth-4q.txt", {"rx": 4, "tx": 4}),
])
def test_readback_parsers_on_captures(kind: Any, expected: Any, capture: str, observed: Any) -> None:
    assert Readback("c", kind, expected).observed(fixture(capture)) == observed


# ------------------------------------------------------------------------- facts


@pytest.mark.parametrize("capture,sections", [
    ("facts/debian12-guest-eth1.txt", fact_probes("eth1")),
    ("facts/host-lo.txt", fact_probes("lo")),
    ("prep/debian12-realtime-4-7.txt", prep_fact_probes(HostPrepare(), "eth1")),
    ("prep/debian12-as-booted.txt", prep_fact_probes(HostPrepare(), "eth1")),
])
def test_every_facts_section_parses_with_its_probe(capture: str, sections: dict[str, probes.Probe[Any]]) -> None:
    captured = split_sections(fixture(capture))
    assert set(captured) <= set(sections)
    for name, section in captured.items():
        if section.status == 0 and section.output.strip():
            sections[name].parse(section.output.strip())
