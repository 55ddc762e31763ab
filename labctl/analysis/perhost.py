"""Analysis (pure): a run's raw before/after snapshots -> per-CPU deltas per host.

Input is the text of each raw file (read by the caller); output is plain data with integer
CPU keys, used by the expectations and the reports and saved as summary.json.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from labctl.analysis import deltas
from labctl.cpulist import format_cpulist, parse_cpulist
from labctl.host import nicirqs, probes, queuestats
from labctl.host.snapshots import SnapshotHost, parse_raw

NET_SOFTIRQS = ("NET_RX", "NET_TX")
RawReader = Callable[[str, str], "str | None"]     # (probe, phase) -> text or None


def analyse_host(read: RawReader, facts: dict[str, Any]) -> dict[str, Any]:
    """Deltas of one host over the measurement window, from its raw snapshots."""
    online = sorted(parse_cpulist(facts.get("cpus_online", "")))
    result: dict[str, Any] = {"cpus": online, "isolated": sorted(parse_cpulist(facts.get("isolated", ""))),
                              "shared_kernel": facts.get("shared_kernel", False)}
    host = SnapshotHost.from_json(facts)
    pair = _pair(read, "interrupts", host)
    if pair:
        nic = facts.get("nic", {})
        result["nic_irqs"] = nic_irq_deltas(*pair, device=nic.get("device", ""), nic=nic)
        unmapped = unmapped_irq_deltas(*pair, nic=nic)
        if unmapped:
            result["nic_unmapped_irqs"] = unmapped
    pair = _pair(read, "softirqs", host)
    if pair:
        result["softirqs"] = deltas.softirq_deltas(*pair)
        result["softirq_counters"] = {phase: {name: dict(counts[name]) for name in NET_SOFTIRQS if name in counts}
                                      for phase, counts in zip(("before", "after"), pair)}
    pair = _pair(read, "softnet_stat", host)
    if pair:
        result["softnet"] = {cpu: _row_dict(row) for cpu, row in deltas.softnet_deltas(*pair).items()}
    pair = _pair(read, "stat", host)
    if pair:
        result["cpu_percent"] = deltas.cpu_percentages(*pair)
    pair = _pair(read, "ethtool_stats", host)
    if pair:
        result["nic_queues"] = {f"{d}-{q}": v for (d, q), v in sorted(
            deltas.nic_queue_deltas(*pair).items())}
    packets = rx_queue_packets(read("ethtool_stats", "before"), read("ethtool_stats", "after"),
                               facts.get("nic", {}).get("driver") or "")
    if packets:
        result["rx_queue_packets"] = packets
    text = read("irq_affinity", "after")
    if text:
        result["irq_affinity"] = parse_raw("irq_affinity", text, host)
    for phase in ("before", "after"):
        text = read("rps_cpus", phase)
        if text is not None:
            result[f"rps_{phase}"] = {q: format_cpulist(c) for q, c in parse_raw("rps_cpus", text, host).items()}
    return result


def rx_queue_packets(before: str | None, after: str | None, driver: str) -> dict[str, int]:
    """Packets each RX queue received over the window, from the driver's own per-queue
    `ethtool -S` counters (labctl.host.queuestats): {"rx-0": 1200, ...}; {} where the driver
    keeps none (or is unknown)."""
    if not before or not after or not driver:
        return {}
    old = queuestats.parse_queue_counters(before, driver)
    new = queuestats.parse_queue_counters(after, driver)
    return {f"rx-{q}": deltas.counter_delta(old[q].packets or 0, c.packets)
            for q, c in sorted(new.items())
            if c.packets is not None and q in old and old[q].packets is not None}


def _pair(read: RawReader, probe: str, host: SnapshotHost) -> tuple[Any, Any] | None:
    """Both phases of a raw file, each parsed by the probe that wrote it; None if one is missing."""
    before, after = read(probe, "before"), read(probe, "after")
    if before is None or after is None or not before.strip() or not after.strip():
        return None
    return parse_raw(probe, before, host), parse_raw(probe, after, host)


def _row_dict(row: Any) -> dict[str, int]:
    """A softnet row as a dict, without the columns this kernel does not print (None)."""
    return {k: v for k, v in dataclasses.asdict(row).items() if v is not None}


def nic_irq_deltas(before: Any, after: Any, device: str, nic: dict[str, Any] | None = None
                   ) -> list[dict[str, Any]]:
    """Per RX queue of the NIC: IRQ deltas per CPU. The queues are named from the after
    snapshot by the driver table (labctl.host.nicirqs) where the facts name a driver, so a
    driver that re-requested its vectors on `ethtool -L` is still read right; facts of an
    older labctl (no driver) fall back to the virtio-style name match."""
    if not device:
        return []
    all_deltas = deltas.irq_deltas(before, after)
    queues = nic_queue_rows(after, {**(nic or {}), "device": device})
    rows = []
    for queue, row in sorted(queues.items()):
        rows.append({"queue": queue, "irq": row.irq, "name": row.name,
                     "per_cpu": all_deltas.get(row.irq, {})})
    return rows


def nic_queue_rows(table: probes.InterruptTable, nic: Mapping[str, Any]) -> dict[int, probes.IrqRow]:
    """RX queue -> the NIC's IRQ row in `table` (the facts' `nic`): named by the driver table
    where the facts name a driver (labctl.host.nicirqs: igb's `data0-rx-K`, mlx5's
    `mlx5_compK@pci:...`, ...), else (facts of an older labctl) by the virtio-style name match."""
    device, driver = str(nic.get("device") or ""), str(nic.get("driver") or "")
    if driver:
        identity = nicirqs.NicIdentity(str(nic.get("interface") or ""), driver, device,
                                       str(nic.get("bus_info") or ""))
        return nicirqs.queue_rows(nicirqs.map_queue_irqs(identity, table), table)
    return probes.nic_queue_irqs(table, device) if device else {}


def unmapped_irq_deltas(before: Any, after: Any, nic: dict[str, Any]) -> list[dict[str, Any]]:
    """The NIC's vectors that name no queue (as the facts found them): deltas per IRQ name,
    so a driver labctl does not know is still measured."""
    unmapped: dict[str, str] = nic.get("unmapped_vectors") or {}
    vectors: dict[str, str] = nic.get("vectors") or {}
    all_deltas = deltas.irq_deltas(before, after)
    return [{"irq": irq, "name": vectors.get(irq, ""), "why": why, "per_cpu": all_deltas.get(irq, {})}
            for irq, why in sorted(unmapped.items(), key=lambda kv: int(kv[0]))]


def nic_irqs_per_cpu(rows: list[dict[str, Any]], queues: set[int] | None = None) -> dict[int, int]:
    """nic_irq_deltas rows summed per CPU over the NIC's queues (or only the given ones); CPU
    keys may be strings (a summary read back from JSON): they come out as ints."""
    per_cpu: dict[int, int] = {}
    for row in rows:
        if queues is None or row["queue"] in queues:
            for cpu, count in row["per_cpu"].items():
                per_cpu[int(cpu)] = per_cpu.get(int(cpu), 0) + int(count)
    return per_cpu


def loadgen_summary(server: dict[str, Any] | None, client: dict[str, Any] | None) -> dict[str, Any] | None:
    """Asked vs achieved rate and loss from the loadgen JSON results."""
    if not client:
        return None
    sent = int(client.get("sent", 0))
    received = int(server.get("received", 0)) if server else 0
    return {
        "protocol": client.get("protocol"),
        "asked_rate": client.get("asked_rate"),
        "achieved_rate": float(client.get("achieved_rate", 0.0)),
        "duration": client.get("duration"),
        "sent": sent,
        "received": received,
        "client_errors": client.get("errors", 0),
        "server_socket_drops": server.get("drops") if server else None,   # UDP: receive buffer full
        "loss": (1 - received / sent) if sent and server else None,
        "server_workers": _without_intervals(server.get("workers", []) if server else []),
        "client_workers": _without_intervals(client.get("workers", [])),
    }


def _without_intervals(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The workers' counts without their per-interval counts (series.json holds those)."""
    return [{k: v for k, v in w.items() if k != "intervals"} for w in workers]
