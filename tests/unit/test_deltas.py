"""Before/after deltas on real snapshot pairs (tests/fixtures/README.md) and on edge cases."""

from __future__ import annotations

import pytest

from labctl.analysis.deltas import (
    counter_delta,
    cpu_percentages,
    irq_deltas,
    irq_total_deltas,
    nic_queue_deltas,
    share,
    softirq_deltas,
    softnet_deltas,
)
from labctl.host.probes import (
    CpuTimes,
    nic_queue_irqs,
    parse_ethtool_stats,
    parse_interrupts,
    parse_proc_stat,
    parse_softirqs,
    parse_softnet_stat,
)
from tests.helpers import fixture

GUEST = "debian12-guest-8cpu"



def pair(kind: str, stem: str) -> tuple[str, str]:
    return fixture(f"{kind}/{stem}.before.txt"), fixture(f"{kind}/{stem}.after.txt")


# ------------------------------------------------------------------------- counters


def test_counter_delta_forward_reset_and_wrap() -> None:
    assert counter_delta(10, 25) == 15
    assert counter_delta(10, 10) == 0
    assert counter_delta(500, 7) == 7  # reset: the delta is the after value
    assert counter_delta(500, 7, bits=32) == 7  # lower half: still a reset
    assert counter_delta(2**32 - 5, 10, bits=32) == 15  # one wrap of a 32-bit counter
    assert counter_delta(2**31, 0, bits=32) == 2**31


def test_share() -> None:
    assert share({0: 10, 1: 30, 2: 60}, {1, 2}) == pytest.approx(0.9)
    assert share({0: 0, 1: 0}, {0}) == 0.0
    assert share({}, {0}) == 0.0
    assert share({0: 5}, set()) == 0.0


# ------------------------------------------------------------------------- the reference run


def test_irq_deltas_pinned_scenario_follow_affinity() -> None:
    """c_pinned: input.0 pinned to CPU2, input.1 to CPU3 (read back as 04 / 08)."""
    before, after = (parse_interrupts(text) for text in pair("interrupts", f"{GUEST}.c_pinned"))
    deltas = irq_deltas(before, after)
    queues = nic_queue_irqs(after, "virtio1")
    input0, input1 = deltas[queues[0].irq], deltas[queues[1].irq]
    assert share(input0, {2}) > 0.95 and share(input1, {3}) > 0.95
    assert sum(deltas[queues[2].irq].values()) == 0  # disabled queues still have rows
    assert set(input0) == set(range(8))


def test_irq_deltas_default_affinity_scenario() -> None:
    before, after = (parse_interrupts(text) for text in pair("interrupts", f"{GUEST}.a_combined2"))
    deltas = irq_deltas(before, after)
    assert deltas["37"] == {0: 0, 1: 5742, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0}
    assert deltas["39"][5] == 6322
    assert deltas["ERR"] == {}
    totals = irq_total_deltas(before, after)
    assert totals["37"] == 5742 and totals["ERR"] == 0
    assert totals["LOC"] == sum(deltas["LOC"].values())


def test_softirq_deltas_rps_adds_net_rx_on_cpu1() -> None:
    """f_rps_cpu1: rx-0 rps_cpus=02, so NET_RX now also runs on CPU1."""
    pinned = [parse_softirqs(text) for text in pair("softirqs", f"{GUEST}.c_pinned")]
    rps = [parse_softirqs(text) for text in pair("softirqs", f"{GUEST}.f_rps_cpu1")]
    net_rx_pinned = softirq_deltas(*pinned)["NET_RX"]
    net_rx_rps = softirq_deltas(*rps)["NET_RX"]
    assert share(net_rx_pinned, {2, 3}) > 0.9
    assert net_rx_rps[1] > 10 * max(net_rx_pinned[1], 1)
    irqs = [parse_interrupts(text) for text in pair("interrupts", f"{GUEST}.f_rps_cpu1")]
    input0_on_cpu2 = irq_deltas(*irqs)["37"][2]
    assert net_rx_rps[2] > 1.5 * input0_on_cpu2  # the IRQ CPU also raises NET_RX for the IPI


def test_softnet_deltas_guest_and_rps_counter() -> None:
    texts = pair("softnet_stat", f"{GUEST}-13col.f_rps_cpu1")
    before, after = (parse_softnet_stat(text) for text in texts)
    deltas = softnet_deltas(before, after)
    assert sorted(deltas) == list(range(8))
    stats = [parse_ethtool_stats(t) for t in pair("ethtool_stats", f"{GUEST}.f_rps_cpu1")]
    rx0_packets = nic_queue_deltas(*stats)[("rx", 0)]["packets"]
    assert deltas[2].processed == 0  # the IRQ CPU hands every rx-0 packet to CPU1's backlog
    assert deltas[1].processed >= rx0_packets and deltas[1].dropped == 0
    assert deltas[1].received_rps == 6243  # RPS IPIs CPU1 received
    assert deltas[0].backlog_len == after[0].backlog_len  # a level, not a counter


def test_nic_queue_deltas_guest_virtio() -> None:
    before, after = (parse_ethtool_stats(t) for t in pair("ethtool_stats", f"{GUEST}.a_combined2"))
    deltas = nic_queue_deltas(before, after)
    assert deltas[("rx", 0)]["packets"] == 19435 - 3118
    assert deltas[("rx", 1)]["packets"] == 19532 - 3081
    assert deltas[("tx", 0)]["packets"] == 0


def test_cpu_percentages_guest_rps_cpu1() -> None:
    before, after = (parse_proc_stat(text) for text in pair("stat", f"{GUEST}.f_rps_cpu1"))
    percent = cpu_percentages(before, after)
    assert sorted(percent) == list(range(8))
    for split in percent.values():
        assert sum(split.values()) == pytest.approx(100.0)
    assert percent[1]["softirq"] > 2.0  # the RPS target CPU
    assert percent[4]["idle"] > 99.0  # an isolated, unused CPU


# ------------------------------------------------------------------------- this machine


def test_host_loopback_net_rx_matches_softnet_processed() -> None:
    """1 s of loopback UDP on the host: NET_RX softirqs and softnet 'processed' agree."""
    softirqs = [parse_softirqs(text) for text in pair("softirqs", "host-6.18-2cpu")]
    softnet = [parse_softnet_stat(text) for text in pair("softnet_stat", "host-6.18-2cpu-15col")]
    net_rx = softirq_deltas(*softirqs)["NET_RX"]
    processed = {cpu: row.processed for cpu, row in softnet_deltas(*softnet).items()}
    assert net_rx == processed == {0: 0, 1: 211536}
    stat = [parse_proc_stat(text) for text in pair("stat", "host-6.18-2cpu")]
    assert cpu_percentages(*stat)[1]["softirq"] > 5.0


def test_veth_per_queue_deltas() -> None:
    before, after = (parse_ethtool_stats(t) for t in pair("ethtool_stats", "veth-gro"))
    deltas = nic_queue_deltas(before, after)
    rx = {queue: deltas[("rx", queue)]["xdp_packets"] for queue in range(4)}
    assert rx == {0: 120, 1: 180, 2: 150, 3: 190}  # 64 flows x 10 datagrams
    assert sum(rx.values()) == 640


# ------------------------------------------------------------------------- edge cases


HEADER = "           CPU0       CPU1\n"


def test_irq_deltas_skip_rows_missing_or_renamed_and_wrap() -> None:
    before = parse_interrupts(
        HEADER
        + " 40: 4294967290 5  PCI-MSI 1-edge  virtio1-input.0\n"
        + " 41:          3 3  PCI-MSI 2-edge  virtio1-input.1\n"
        + " 42:          1 1  PCI-MSI 3-edge  virtio2-input.0\n"
    )
    after = parse_interrupts(
        HEADER
        + " 40:          4 9  PCI-MSI 1-edge  virtio1-input.0\n"
        + " 41:          1 1  PCI-MSI 2-edge  virtio1-input.1\n"
        + " 42:          9 9  PCI-MSI 3-edge  nvme0q1\n"
        + " 43:          7 7  PCI-MSI 4-edge  virtio1-input.2\n"
    )
    deltas = irq_deltas(before, after)
    assert deltas == {"40": {0: 10, 1: 4}, "41": {0: 1, 1: 1}}


def test_per_cpu_deltas_skip_cpus_on_one_side() -> None:
    before = parse_interrupts("   CPU0  CPU1\n 5:  10  20  X 1-edge a\n")
    after = parse_interrupts("   CPU0  CPU2\n 5:  15  99  X 1-edge a\n")
    assert irq_deltas(before, after) == {"5": {0: 5}}
    assert softirq_deltas({"NET_RX": {0: 1}}, {"NET_RX": {0: 4, 1: 5}, "RCU": {0: 1}}) == {
        "NET_RX": {0: 3}
    }


def test_softnet_deltas_keep_absent_columns_none() -> None:
    old = parse_softnet_stat(fixture("softnet_stat/hjr3-2.6.32-9col.txt"))
    new = {cpu: row for cpu, row in old.items()}
    deltas = softnet_deltas(old, new)
    assert deltas[0].processed == 0 and deltas[0].received_rps is None


def test_nic_queue_deltas_reset_and_new_queue() -> None:
    before = {"rx_queue_0_packets": 100, "rx_queue_1_packets": 5}
    after = {"rx_queue_0_packets": 30, "rx_queue_1_packets": 9, "rx_queue_2_packets": 4}
    assert nic_queue_deltas(before, after) == {
        ("rx", 0): {"packets": 30},  # counters reset (driver reloaded / channels changed)
        ("rx", 1): {"packets": 4},
    }


def test_cpu_percentages_zero_interval_and_backwards_iowait() -> None:
    times = {0: CpuTimes(10, 0, 10, 80, 5, 1, 2, 0)}
    assert cpu_percentages(times, times) == {0: dict.fromkeys(
        ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"), 0.0
    )}
    later = {0: CpuTimes(20, 0, 20, 130, 3, 6, 22, 0), 1: CpuTimes(1, 1, 1, 1)}
    split = cpu_percentages(times, later)
    assert list(split) == [0]
    assert split[0]["iowait"] == 0.0
    assert split[0]["softirq"] == pytest.approx(100.0 * 20 / 95)
    assert split[0]["irq"] == pytest.approx(100.0 * 5 / 95)
