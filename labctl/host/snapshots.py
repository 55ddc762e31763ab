"""Snapshot probes (pure): which probe writes which raw snapshot file, for planning and analysis.

A snapshot runs a host's probes in one batched script and keeps each probe's output as
`runs/<run-id>/<host>/<name>.<phase>`. SNAPSHOT_PROBES is the one map from such a raw file
name to its probe: the planner asks it for the commands, the analysis asks the same probe to
parse the file. A probe's command and parser may depend on the host (its test NIC, the NIC's
IRQs, its online CPUs): a SnapshotHost carries those, built from the host's facts when
planning and from the facts the run's manifest kept when analysing (old runs too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from labctl.cpulist import parse_cpulist
from labctl.host import probes
from labctl.host.facts import HostFacts
from labctl.host.probes import Probe


@dataclass(frozen=True)
class SnapshotHost:
    """What a host's snapshot probes depend on."""

    interface: str
    irqs: tuple[str, ...] = ()             # the test NIC's RX and TX IRQs, ascending
    online_cpus: tuple[int, ...] = ()      # maps softnet_stat rows without CPU ids (< 5.10)

    @classmethod
    def of(cls, facts: HostFacts) -> SnapshotHost:
        """From the facts read before planning."""
        irqs = set(facts.nic.rx_irqs.values()) | set(facts.nic.tx_irqs.values())
        return cls(facts.nic.interface, tuple(sorted(irqs, key=int)), tuple(sorted(facts.cpus_online)))

    @classmethod
    def from_json(cls, facts: Mapping[str, Any]) -> SnapshotHost:
        """From the facts as a run's manifest stores them (HostFacts.to_json, through JSON)."""
        nic = facts.get("nic", {})
        irqs = set(nic.get("rx_irqs", {}).values()) | set(nic.get("tx_irqs", {}).values())
        online = parse_cpulist(facts.get("cpus_online", ""))
        return cls(nic.get("interface", ""), tuple(sorted(irqs, key=int)), tuple(sorted(online)))


SnapshotProbe = Callable[[SnapshotHost], Probe[Any]]


def _softnet_stat(host: SnapshotHost) -> Probe[Any]:
    return probes.softnet_stat(host.online_cpus or None)


SNAPSHOT_PROBES: dict[str, SnapshotProbe] = {
    "interrupts": lambda host: probes.INTERRUPTS,
    "softirqs": lambda host: probes.SOFTIRQS,
    "softnet_stat": _softnet_stat,
    "stat": lambda host: probes.STAT,
    "ethtool_stats": lambda host: probes.ethtool_stats(host.interface),
    "rps_cpus": lambda host: probes.rps_masks(host.interface),
    "irq_affinity": lambda host: probes.irq_affinities(host.irqs),
    "processes": lambda host: probes.PROCESSES,
}
"""Raw snapshot file name -> the host's probe that writes it (the names are those of run
directories since the first release: keep them)."""

ALWAYS = ("rps_cpus", "stat", "processes")   # every snapshot reads these, whatever the scenario asks
"""The RPS masks, and the CPUs' and every process's CPU time (the neighbour check:
analysis/neighbours.py)."""


def snapshot_probes(names: Iterable[str], host: SnapshotHost) -> dict[str, Probe[Any]]:
    """Raw file name -> probe for one host's snapshot: the scenario's probes, ALWAYS, and the
    affinity of the NIC's IRQs when it has any (veth has none)."""
    chosen = list(dict.fromkeys([*names, *ALWAYS]))
    if host.irqs:
        chosen.append("irq_affinity")
    return {name: SNAPSHOT_PROBES[name](host) for name in chosen}


def parse_raw(name: str, text: str, host: SnapshotHost) -> Any:
    """Parse the raw snapshot file `name` with the probe that wrote it."""
    return SNAPSHOT_PROBES[name](host).parse(text)
