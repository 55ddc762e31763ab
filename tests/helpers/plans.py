"""Test helpers: the inputs of planning — the netns lab's inventory, the facts of a netns (veth)
host and of the captures' virtio guest, scenarios, and the tuning and load most plan tests use."""

from __future__ import annotations

import dataclasses
from typing import Any

from labctl.host.facts import HostFacts, NicFacts
from labctl.input.model import Inventory, Scenario
from labctl.plan.actions import Plan
from labctl.plan.planner import build_plan

RUN = "20250101T000000Z-test"


def two_host_inventory(lab: str = "t", provider: str = "netns") -> Inventory:
    """A lab of a dut (198.18.0.1/24) and a loadgen (198.18.0.2/24), nothing else set."""
    return Inventory.model_validate({
        "lab": lab, "provider": provider,
        "hosts": {"dut": {"role": "dut", "data_address": "198.18.0.1/24"},
                  "loadgen": {"role": "loadgen", "data_address": "198.18.0.2/24"}}})


INVENTORY = two_host_inventory()


def veth_facts(host: str = "dut", interface: str = "eth1") -> HostFacts:
    """A netns lab host: veth with 4 rx/tx queues and no combined channels, no IRQs."""
    return HostFacts(
        host=host, hostname=host, kernel="6.18.44", cpus_online=frozenset({0, 1}), cpus_possible=2,
        isolated=frozenset(), cmdline="", pid1_cpus_allowed=frozenset({0, 1}),
        default_smp_affinity=frozenset({0, 1}), irq_affinity={"38": frozenset({0, 1})},
        irqbalance="absent", tuned_profile="", python3="3.11.7", sysctls={},
        nic=NicFacts(interface=interface, exists=True, driver="veth",
                     channels_max={"rx": 4, "tx": 4, "other": None, "combined": None},
                     channels_current={"rx": 4, "tx": 4, "other": None, "combined": None},
                     rx_queues=4, rps_cpus={q: frozenset() for q in range(4)}),
        shared_kernel=True)


def guest_facts(interface: str = "eth1") -> HostFacts:
    """The virtio guest of the captures: 8 CPUs, isolated 4-7, 4 combined channels, 4 rx IRQs."""
    rx = {0: "37", 1: "39", 2: "41", 3: "43"}
    tx = {0: "38", 1: "40", 2: "42", 3: "44"}
    affinity = {"37": frozenset({0, 1}), "39": frozenset({2, 3}), "41": frozenset(range(4)),
                "43": frozenset(range(4)), "38": frozenset({1}), "40": frozenset({2}),
                "42": frozenset({3}), "44": frozenset({0})}
    return HostFacts(
        host="dut", hostname="dut", kernel="6.1.0-50-amd64", cpus_online=frozenset(range(8)),
        cpus_possible=8, isolated=frozenset({4, 5, 6, 7}), cmdline="isolcpus=managed_irq,domain,4-7",
        pid1_cpus_allowed=frozenset(range(4)), default_smp_affinity=frozenset(range(4)),
        irq_affinity=affinity, irqbalance="active", tuned_profile="realtime", python3="3.11.2",
        sysctls={},
        nic=NicFacts(interface=interface, exists=True, driver="virtio_net", bus_info="0000:00:03.0",
                     device="virtio1",
                     channels_max={"rx": None, "tx": None, "other": None, "combined": 4},
                     channels_current={"rx": None, "tx": None, "other": None, "combined": 4},
                     rx_queues=4, rps_cpus={0: frozenset({1}), 1: frozenset(), 2: frozenset(),
                                            3: frozenset()},
                     rx_irqs=rx, tx_irqs=tx),
        shared_kernel=False)


def scenario(**data: Any) -> Scenario:
    return Scenario.model_validate({"name": "test", **data})


GUEST_TUNING = {"irqbalance": "stop", "rps": {"all": 1}, "irq_affinity": {"rx-1": 3, "rx-0": 2},
                "channels": {"combined": 2}}
LOAD = {"server": {"cpus": "6-7", "workers": 2}, "client": {"rate": 2000, "duration": 2.5,
                                                             "new_socket_per_message": True}}


def plan_for(facts: HostFacts, tuning: dict[str, Any], run_id: str = RUN, **more: Any) -> Plan:
    facts_by_host = {"dut": facts, "loadgen": veth_facts("loadgen")}
    return build_plan(INVENTORY, scenario(tuning={"dut": tuning}, **more), facts_by_host, run_id)


def igb_table(queues: int, size: int = 128) -> list[int]:
    """igb's default table (igb_main.c igb_setup_mrqc: entry j = j * queues / IGB_RETA_SIZE):
    blocks, not `j mod queues` (as the igb lab's capture nics/igb/qemu10-guest-ethtool-x.txt shows)."""
    return [j * queues // size for j in range(size)]


def nic_facts(driver: str, table: list[int] | None, *, key: str | None = None, note: str = "",
              hfuncs: dict[str, bool] | None = None, queues: int = 4) -> HostFacts:
    base = guest_facts()
    nic = dataclasses.replace(base.nic, driver=driver, device="0000:00:04.0", rss_table=table, rss_key=key,
                              rss_hfuncs={"toeplitz": True, "xor": False, "crc32": False} if hfuncs is None else hfuncs,
                              rss_note=note, rx_queues=queues,
                              channels_max={"combined": 8}, channels_current={"combined": queues},
                              rps_cpus={q: frozenset() for q in range(queues)})
    return dataclasses.replace(base, nic=nic)


def igb_facts() -> HostFacts:
    return nic_facts("igb", igb_table(4))
