"""Per-queue RX counters of `ethtool -S` (pure, layer "host"), named as each driver names them.

`parse_queue_counters(text, driver)` -> {queue: QueueCounters(packets, bytes, drops)}. Every
driver spells its per-queue counters its own way (the table below, each from the driver's
ethtool strings); a counter the driver does not keep per queue stays None rather than being
guessed from another. vmxnet3 prints one block per queue ("Rx Queue#: 0" then indented
"ucast pkts rx: N" lines), so the parser reads the text, not a name -> value dict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labctl.host.probes import Probe, ethtool_stats, parse_ethtool_stats


@dataclass(frozen=True)
class QueueCounters:
    packets: int | None = None
    bytes: int | None = None
    drops: int | None = None


@dataclass(frozen=True)
class CounterNames:
    """Regular expressions (group `q` = the RX queue) per counter; several names of one
    counter are summed (bnxt counts unicast, multicast and broadcast apart)."""

    packets: tuple[str, ...]
    bytes: tuple[str, ...] = ()
    drops: tuple[str, ...] = ()
    source: str = ""
    packets_meaning: str = "packets"


def _rxq(stat: str) -> str:
    return rf"rx_queue_(?P<q>\d+)_{stat}"


COUNTER_NAMES: dict[str, CounterNames] = {
    # 6.1 kernels: rx_queue_N_packets; later ones rxN_... and, on 6.18, no per-queue packets
    "virtio_net": CounterNames((_rxq("packets"), r"rx(?P<q>\d+)_packets"),
                               (_rxq("bytes"), r"rx(?P<q>\d+)_bytes"),
                               (_rxq("drops"), r"rx(?P<q>\d+)_drops"),
                               "drivers/net/virtio_net.c virtnet_rq_stats_desc"),
    "igb": CounterNames((_rxq("packets"),), (_rxq("bytes"),), (_rxq("drops"),),
                        "drivers/net/ethernet/intel/igb/igb_ethtool.c \"rx_queue_%u_packets\""),
    "ixgbe": CounterNames((_rxq("packets"),), (_rxq("bytes"),), (),
                          "drivers/net/ethernet/intel/ixgbe/ixgbe_ethtool.c \"rx_queue_%u_packets\""),
    "i40e": CounterNames((r"rx-(?P<q>\d+)\.packets", r"rx-(?P<q>\d+)\.rx_packets"),
                         (r"rx-(?P<q>\d+)\.bytes", r"rx-(?P<q>\d+)\.rx_bytes"), (),
                         "drivers/net/ethernet/intel/i40e/i40e_ethtool.c \"%s-%u.packets\" "
                         "(older drivers \"rx-%u.rx_packets\")"),
    "iavf": CounterNames((r"rx-(?P<q>\d+)\.packets",), (r"rx-(?P<q>\d+)\.bytes",), (),
                         "drivers/net/ethernet/intel/iavf/iavf_ethtool.c \"%s-%u.packets\""),
    "ice": CounterNames((_rxq("packets"), r"rx_(?P<q>\d+)_packets"),
                        (_rxq("bytes"), r"rx_(?P<q>\d+)_bytes"), (),
                        "drivers/net/ethernet/intel/ice/ice_ethtool.c (\"rx_queue_%u_packets\"; "
                        "older out-of-tree versions rx_%u_packets)"),
    "mlx5_core": CounterNames((r"rx(?P<q>\d+)_packets",), (r"rx(?P<q>\d+)_bytes",), (),
                              "drivers/net/ethernet/mellanox/mlx5/core/en_stats.c \"rx%d_packets\""),
    "bnxt_en": CounterNames(
        tuple(rf"\[(?P<q>\d+)\]: rx_{kind}_packets" for kind in ("ucast", "mcast", "bcast")),
        tuple(rf"\[(?P<q>\d+)\]: rx_{kind}_bytes" for kind in ("ucast", "mcast", "bcast")),
        (r"\[(?P<q>\d+)\]: rx_discards",),
        "drivers/net/ethernet/broadcom/bnxt/bnxt_ethtool.c \"[%d]: %s\" with bnxt_ring_rx_stats_str "
        "(rx_ucast_packets, ..., rx_discards)"),
    "ena": CounterNames((r"queue_(?P<q>\d+)_rx_cnt",), (r"queue_(?P<q>\d+)_rx_bytes",), (),
                        "drivers/net/ethernet/amazon/ena/ena_ethtool.c \"queue_%u_%s_%s\""),
    "gve": CounterNames((r"rx_completed_desc\[(?P<q>\d+)\]",), (r"rx_bytes\[(?P<q>\d+)\]",),
                        (r"rx_dropped_pkt\[(?P<q>\d+)\]",),
                        "drivers/net/ethernet/google/gve/gve_ethtool.c gve_gstrings_rx_stats",
                        "completed descriptors (one a packet unless packets span buffers)"),
    "sfc": CounterNames((r"rx-(?P<q>\d+)\.rx_packets",), (), (),
                        "drivers/net/ethernet/sfc/ethtool_common.c \"rx-%u.rx_packets\""),
    "hns3": CounterNames((r"rxq(?P<q>\d+)_pktnum_rcd",), (), (),
                         "drivers/net/ethernet/hisilicon/hns3/hns3_common/hclge_comm_tqp_stats.c "
                         "\"rxq%u_pktnum_rcd\""),
    "e1000e": CounterNames((r"rx_packets(?P<q>)",), (r"rx_bytes(?P<q>)",), (),
                           "drivers/net/ethernet/intel/e1000e/ethtool.c: one queue, device totals"),
}
VMXNET3_FIELDS = {"ucast pkts rx": "packets", "mcast pkts rx": "packets", "bcast pkts rx": "packets",
                  "ucast bytes rx": "bytes", "mcast bytes rx": "bytes", "bcast bytes rx": "bytes",
                  "drv dropped rx total": "drops"}
KNOWN_DRIVERS = frozenset(COUNTER_NAMES) | {"vmxnet3"}


def _collect(stats: dict[str, int], patterns: tuple[str, ...]) -> dict[int, int]:
    totals: dict[int, int] = {}
    regexes = [re.compile(p) for p in patterns]
    for name, value in stats.items():
        for regex in regexes:
            match = regex.fullmatch(name)
            if match:
                queue = int(match.group("q") or 0)
                totals[queue] = totals.get(queue, 0) + value
    return totals


def _vmxnet3(text: str) -> dict[int, QueueCounters]:
    blocks: dict[int, dict[str, int]] = {}
    current: dict[str, int] | None = None
    for line in text.splitlines():
        name, sep, value = line.strip().rpartition(":")
        if not sep:
            continue
        name, value = name.strip(), value.strip()
        if name == "Rx Queue#" and value.isdigit():
            current = blocks.setdefault(int(value), {})
        elif name == "Tx Queue#":
            current = None
        elif current is not None and name in VMXNET3_FIELDS and value.isdigit():
            field = VMXNET3_FIELDS[name]
            current[field] = current.get(field, 0) + int(value)
    return {q: QueueCounters(c.get("packets"), c.get("bytes"), c.get("drops"))
            for q, c in sorted(blocks.items())}


def parse_queue_counters(text: str, driver: str) -> dict[int, QueueCounters]:
    """`ethtool -S IF` of a NIC driven by `driver` -> per RX queue packets, bytes, drops.
    An unknown driver, or a known one whose per-queue names are all absent, gives {}."""
    if driver == "vmxnet3":
        return _vmxnet3(text)
    names = COUNTER_NAMES.get(driver)
    if names is None:
        return {}
    stats = parse_ethtool_stats(text)
    packets, octets, drops = (_collect(stats, names.packets), _collect(stats, names.bytes),
                              _collect(stats, names.drops))
    queues = sorted(set(packets) | set(octets) | set(drops))
    return {q: QueueCounters(packets.get(q), octets.get(q), drops.get(q)) for q in queues}


def queue_counters_probe(iface: str, driver: str) -> Probe[dict[int, QueueCounters]]:
    """`ethtool -S IF` read as per-queue RX counters of `driver`."""
    command = ethtool_stats(iface).command        # refuses a name no kernel would accept

    def parse(text: str) -> dict[int, QueueCounters]:
        return parse_queue_counters(text, driver)

    return Probe(f"queue_counters@{iface}", command, parse)
