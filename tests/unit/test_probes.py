"""Probe parsers against real captures in tests/fixtures/ (origins in tests/fixtures/README.md)."""

from __future__ import annotations

import shlex

import pytest

from labctl.host.probes import (
    PROBES,
    ProbeArgumentError,
    ProbeOutputError,
    cpus_allowed,
    effective_affinity_list,
    ethtool_channels,
    ethtool_info,
    ethtool_rss,
    ethtool_stats,
    nic_queue_irqs,
    nic_tx_irqs,
    parse_cmdline,
    parse_cpulist_file,
    parse_ethtool_channels,
    parse_ethtool_info,
    parse_ethtool_rss,
    parse_ethtool_stats,
    parse_flow_hash,
    parse_interrupts,
    parse_isolcpus,
    parse_mask_file,
    parse_proc_stat,
    parse_softirqs,
    parse_softnet_stat,
    parse_status_cpus_allowed,
    per_queue_stats,
    rps_cpus,
    rss_refusal,
    smp_affinity,
    smp_affinity_list,
    supports_combined,
)
from tests.helpers import fixture

GUEST = "debian12-guest-8cpu"



# ------------------------------------------------------------------------- /proc/interrupts


def test_interrupts_debian_guest_kernel_61_rows() -> None:
    table = parse_interrupts(fixture(f"interrupts/{GUEST}.a_combined2.before.txt"))
    assert table.cpus == tuple(range(8))
    row = table.by_name("virtio1-input.0")
    assert row is not None
    assert (row.irq, row.chip, row.hwirq, row.trigger) == ("37", "PCI-MSI", "49153", "edge")
    assert row.per_cpu == {0: 0, 1: 683, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 1}
    assert row.total == 684
    assert table.by_irq(39) is table.by_name("virtio1-input.1")
    assert table.by_irq("46").name == "virtio3-input"  # type: ignore[union-attr]


def test_interrupts_named_and_global_rows() -> None:
    table = parse_interrupts(fixture(f"interrupts/{GUEST}.a_combined2.before.txt"))
    loc = table.by_irq("LOC")
    assert loc is not None and loc.description == "Local timer interrupts"
    assert loc.per_cpu[0] == 12272 and loc.per_cpu[7] == 117 and loc.name == ""
    for label in ("ERR", "MIS"):
        row = table.by_irq(label)
        assert row is not None and row.per_cpu == {} and row.total == 0
    assert table.rows[-1].irq == "PIW"


def test_interrupts_rhel9_pci_msix_chip_with_bus_address() -> None:
    table = parse_interrupts(fixture("interrupts/rhel9-blog-virtio6.txt"))
    row = table.by_name("virtio6-input.1")
    assert row is not None
    assert (row.irq, row.chip) == ("55", "PCI-MSIX-0000:07:00.0")
    assert (row.hwirq, row.trigger) == ("3", "edge")
    assert row.per_cpu[2] == 11189465 and row.per_cpu[5] == 2260


def test_interrupts_host_kernel_618_single_space_before_chip() -> None:
    table = parse_interrupts(fixture("interrupts/host-6.18-2cpu.before.txt"))
    assert table.cpus == (0, 1)
    row = table.by_name("virtio2-input.0")
    assert row is not None and row.chip == "PCI-MSIX-0000:00:03.0" and row.hwirq == "1"
    assert table.by_irq("24").name == "ACPI:Ged"  # type: ignore[union-attr]
    hyp = table.by_irq("HYP")
    assert hyp is not None and hyp.description == "Hypervisor callback interrupts"


def test_interrupts_shared_line_actions() -> None:
    table = parse_interrupts(fixture("interrupts/pcp-interrupts-8cpu-x86_64.txt"))
    shared = table.by_name("mmc0")
    assert shared is not None and shared.irq == "16"
    assert shared.name == "ehci_hcd:usb3, mmc0"
    assert shared.actions == ("ehci_hcd:usb3", "mmc0")
    assert table.by_name("ehci_hcd:usb3") is shared
    assert table.by_irq("27").name == "0000:00:1f.2"  # type: ignore[union-attr]


def test_interrupts_single_cpu_old_style_and_global_err() -> None:
    table = parse_interrupts(fixture("interrupts/pcp-interrupts-1cpu-i686.txt"))
    assert table.cpus == (0,)
    assert table.by_name("ens3").actions == ("uhci_hcd:usb1", "ens3")  # type: ignore[union-attr]
    err = table.by_irq("ERR")
    assert err is not None and err.per_cpu == {} and err.total == 0
    assert table.by_irq("LOC").per_cpu == {0: 6651207}  # type: ignore[union-attr]


def test_interrupts_s390_rows_without_hwirq_or_description() -> None:
    table = parse_interrupts(fixture("interrupts/pcp-interrupts-16cpu-s390x.txt"))
    assert len(table.cpus) == 16
    ext = table.by_irq("EXT")
    assert ext is not None and ext.description == "" and ext.per_cpu[15] == 6909
    comp = table.by_name("mlx5_comp0@pci:0002:00:00.0")
    assert comp is not None and (comp.chip, comp.hwirq) == ("PCI-MSI", "")
    assert len(table.rows_matching(r"^mlx5_comp\d+@pci:0003")) == 9
    tiny = parse_interrupts(fixture("interrupts/pcp-interrupts-2cpu-s390x.txt"))
    assert tiny.by_irq("I/O").per_cpu == {0: 6989, 1: 33457}  # type: ignore[union-attr]


def test_interrupts_arm64_level_trigger_column() -> None:
    table = parse_interrupts(fixture("interrupts/aws-graviton-arm64-1cpu-excerpt.txt"))
    timer = table.by_name("arch_timer")
    assert timer is not None
    assert (timer.chip, timer.hwirq, timer.trigger) == ("GICv3", "27", "Level")
    assert timer.per_cpu == {0: 8053}
    assert len(table.rows_matching("^ACPI:Ged$")) == 17


def test_interrupts_xen_chip_without_hwirq() -> None:
    table = parse_interrupts(fixture("interrupts/xen-pv-4cpu-excerpt.txt"))
    row = table.by_name("timer1")
    assert row is not None and row.chip == "xen-percpu-virq" and row.hwirq == ""
    assert row.per_cpu == {0: 0, 1: 221059732, 2: 0, 3: 0}


def test_interrupts_1152_cpu_machine() -> None:
    table = parse_interrupts(fixture("interrupts/pcp-interrupts-1152cpu-x86_64.txt.bz2"))
    assert table.cpus == tuple(range(1152))
    pme = table.by_irq("24")
    assert pme is not None and pme.name == "PCIe PME" and pme.hwirq == "475136"
    assert len(pme.per_cpu) == 1152
    assert len(table.rows_matching("^smartpqi$")) > 32
    assert table.by_irq("ERR").per_cpu == {}  # type: ignore[union-attr]
    loc = table.by_irq("LOC")
    assert loc is not None and loc.total == sum(loc.per_cpu.values())


def test_interrupts_offline_cpus_use_header_numbers() -> None:
    text = fixture("interrupts/offline-cpus-10-19.synthetic.txt")
    table = parse_interrupts(text)
    assert table.cpus == tuple(range(10)) + tuple(range(20, 28))
    row = table.by_name("eth0-TxRx-2")
    assert row is not None and row.per_cpu[22] == 4242 and 10 not in row.per_cpu
    assert table.by_name("eth0-TxRx-3").per_cpu[25] == 77  # type: ignore[union-attr]
    assert sorted(nic_queue_irqs(table, "eth0")) == [0, 1, 2, 3]


def test_interrupts_row_with_no_action_name() -> None:
    text = fixture("interrupts/insights-8cpu-unnamed-row.txt")
    table = parse_interrupts(text)
    row = table.by_irq("30")
    assert row is not None and (row.chip, row.hwirq, row.name) == ("IR-PCI-MSI", "524288", "")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  0:  1  2  IO-APIC 2-edge timer\n",
        "           CPU0       CPU1\n  0:          1   IO-APIC   2-edge      timer\n",
        "           CPU0\nthis is not a row\n",
    ],
)
def test_interrupts_malformed_raise(text: str) -> None:
    with pytest.raises(ProbeOutputError):
        parse_interrupts(text)


def test_nic_queue_irqs_by_device_name_not_number() -> None:
    table = parse_interrupts(fixture(f"interrupts/{GUEST}.c_pinned.after.txt"))
    rx = nic_queue_irqs(table, "virtio1")
    assert {queue: row.irq for queue, row in rx.items()} == {0: "37", 1: "39", 2: "41", 3: "43"}
    tx = nic_tx_irqs(table, "virtio1")
    assert {queue: row.irq for queue, row in tx.items()} == {0: "38", 1: "40", 2: "42", 3: "44"}
    assert nic_queue_irqs(table, "virtio0") == {0: table.by_irq("34")}
    assert nic_queue_irqs(table, "virtio") == {}
    assert nic_queue_irqs(table, "virtio3") == {}  # "virtio3-input" has no queue number
    rhel = parse_interrupts(fixture("interrupts/rhel9-blog-virtio6.txt"))
    assert [row.irq for row in nic_queue_irqs(rhel, "virtio6").values()] == ["53", "55", "57", "59"]


def test_nic_queue_irqs_rejects_a_queue_on_two_lines() -> None:
    text = (
        "           CPU0\n"
        " 40:          1   PCI-MSI 1-edge      virtio1-input.0\n"
        " 41:          1   PCI-MSI 2-edge      virtio1-input.0\n"
    )
    with pytest.raises(ProbeOutputError, match="queue 0"):
        nic_queue_irqs(parse_interrupts(text), "virtio1")


# ------------------------------------------------------------------------- /proc/softirqs


def test_softirqs_guest() -> None:
    softirqs = parse_softirqs(fixture(f"softirqs/{GUEST}.a_combined2.before.txt"))
    assert list(softirqs) == [
        "HI", "TIMER", "NET_TX", "NET_RX", "BLOCK",
        "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU",
    ]
    assert softirqs["NET_RX"] == {0: 400, 1: 617, 2: 12, 3: 430, 4: 31, 5: 728, 6: 12, 7: 0}


def test_softirqs_old_kernel_names_and_one_cpu() -> None:
    assert "BLOCK_IOPOLL" in parse_softirqs(fixture("softirqs/pcp-softirqs-8cpu-x86_64.txt"))
    assert parse_softirqs(fixture("softirqs/pcp-softirqs-1cpu-i686.txt"))["NET_RX"] == {0: 2315415}


def test_softirqs_1152_cpus() -> None:
    softirqs = parse_softirqs(fixture("softirqs/pcp-softirqs-1152cpu-x86_64.txt.bz2"))
    assert all(len(counts) == 1152 for counts in softirqs.values())
    assert max(softirqs["NET_RX"]) == 1151


def test_softirqs_short_row_raises() -> None:
    with pytest.raises(ProbeOutputError):
        parse_softirqs("          CPU0   CPU1\n   NET_RX:    1\n")


# ------------------------------------------------------------------------- softnet_stat


def test_softnet_13_columns_use_cpu_id_column() -> None:
    rows = parse_softnet_stat(fixture(f"softnet_stat/{GUEST}-13col.a_combined2.before.txt"))
    assert sorted(rows) == list(range(8))
    assert rows[1].processed == 0x8DF and rows[1].time_squeeze == 0x16
    assert rows[5].processed == 0xB6F
    assert rows[0].backlog_len == 0 and rows[0].input_qlen is None
    # the CPU id column wins over a (wrong) online list
    assert parse_softnet_stat(
        fixture(f"softnet_stat/{GUEST}-13col.a_combined2.before.txt"), online_cpus=[9]
    ) == rows


def test_softnet_15_columns_kernel_618() -> None:
    rows = parse_softnet_stat(fixture("softnet_stat/host-6.18-2cpu-15col.after.txt"))
    assert sorted(rows) == [0, 1]
    assert rows[1].processed == 0x34364
    assert rows[1].input_qlen == 0 and rows[1].process_qlen == 0
    no_newline = parse_softnet_stat(fixture("softnet_stat/hjr3-6.4.7-15col-no-newline.txt"))
    assert no_newline[1].processed == 0x6D1EBE and no_newline[1].time_squeeze == 0x4F


def test_softnet_11_columns_map_rows_to_online_cpus() -> None:
    text = fixture("softnet_stat/hjr3-3.11-11col.txt")
    by_position = parse_softnet_stat(text)
    assert sorted(by_position) == list(range(8))
    assert by_position[0].flow_limit == 0 and by_position[0].backlog_len is None
    # An old kernel skips offline CPUs: with CPUs 2 and 5 offline the rows belong to these.
    online = [0, 1, 3, 4, 6, 7, 8, 9]
    mapped = parse_softnet_stat(text, online_cpus=online)
    assert sorted(mapped) == online
    assert mapped[3].processed == 0x2CCC and mapped[9].processed == 0xCB3


def test_softnet_10_and_9_columns() -> None:
    ten = parse_softnet_stat(fixture("softnet_stat/insights-rhel7-10col.txt"))
    assert ten[3].dropped == 1 and ten[3].received_rps == 0 and ten[3].flow_limit is None
    nine = parse_softnet_stat(fixture("softnet_stat/hjr3-2.6.32-9col.txt"))
    assert nine[0].processed == 1842008611 and nine[0].received_rps is None


@pytest.mark.parametrize(
    "text,online",
    [
        ("00000001 00000000 00000000\n", None),  # too few columns
        ("0000000g 0 0 0 0 0 0 0 0 0\n", None),  # not hex
        ("1 0 0 0 0 0 0 0 0 0\n1 0 0 0 0 0 0 0 0 0 0\n", None),  # mixed widths
        ("1 0 0 0 0 0 0 0 0 0\n", [0, 1]),  # rows and online CPUs disagree
    ],
)
def test_softnet_malformed_raise(text: str, online: list[int] | None) -> None:
    with pytest.raises(ProbeOutputError):
        parse_softnet_stat(text, online)


# ------------------------------------------------------------------------- /proc/stat


def test_proc_stat_guest_and_host() -> None:
    guest = parse_proc_stat(fixture(f"stat/{GUEST}.a_combined2.before.txt"))
    assert sorted(guest) == list(range(8))
    assert guest[1].softirq == 88 and guest[4].idle == 10005
    host = parse_proc_stat(fixture("stat/host-6.18-2cpu.before.txt"))  # full file: intr, ctxt...
    assert sorted(host) == [0, 1] and host[1].steal == 6


def test_proc_stat_old_kernel_short_lines_and_errors() -> None:
    old = parse_proc_stat("cpu  1 2 3 4\ncpu0 1 2 3 4 5 6 7\n")
    assert old[0].softirq == 7 and old[0].steal == 0 and old[0].guest_nice == 0
    with pytest.raises(ProbeOutputError):
        parse_proc_stat("intr 1 2 3\n")
    with pytest.raises(ProbeOutputError):
        parse_proc_stat("cpu0 1 2\n")


# ------------------------------------------------------------------------- ethtool


def test_ethtool_channels_virtio_and_veth() -> None:
    virtio = parse_ethtool_channels(fixture("ethtool_channels/debian12-guest-virtio.end.txt"))
    assert virtio.maximum == {"rx": None, "tx": None, "other": None, "combined": 4}
    assert virtio.current["combined"] == 2 and supports_combined(virtio)
    veth = parse_ethtool_channels(fixture("ethtool_channels/veth-4q.txt"))
    assert veth.current == {"rx": 4, "tx": 4, "other": None, "combined": None}
    assert not supports_combined(veth)
    host = parse_ethtool_channels(fixture("ethtool_channels/virtio-host-6.18-1q.txt"))
    assert supports_combined(host)


def test_interrupts_chip_name_with_a_space() -> None:
    """RISC-V's "RISC-V INTC" chip (a real guest, tests/fixtures/nics/e1000e): the chip keeps both
    words and the action is riscv-timer, not "INTC   5 Edge      riscv-timer"."""
    table = parse_interrupts(fixture("nics/e1000e/lkml-2025-08-11-riscv-guest-interrupts.txt"))
    timer = table.by_irq("10")
    assert timer is not None and (timer.chip, timer.hwirq, timer.trigger, timer.actions) == (
        "RISC-V INTC", "5", "Edge", ("riscv-timer",))
    rx = table.by_irq("12")
    assert rx is not None and (rx.chip, rx.hwirq, rx.actions) == ("PCI-MSIX-0000:00:01.0", "0", ("eth0-rx-0",))
    assert table.cpus == (0, 1, 2, 3) and timer.total == 49856 + 218638 + 192244 + 58721


def test_ethtool_channels_real_i40e_with_an_other_channel() -> None:
    """A real PCI NIC's `ethtool -l` (i40e, quoted in an intel-wired-lan patch, 2021): 64 combined
    channels and the misc vector counted as "Other: 1"."""
    i40e = parse_ethtool_channels(fixture("nics/i40e/intel-wired-lan-2021-04-16-ethtool-l.txt"))
    assert i40e.maximum == {"rx": 0, "tx": 0, "other": 1, "combined": 64} == i40e.current
    assert supports_combined(i40e)


def test_ethtool_channels_real_tg3_rx_tx_without_combined() -> None:
    """A real BCM5719 (tg3; netdev, Oct 2021): 4 RX and 1 TX channels, "Combined: 0" (not "n/a"),
    so `ethtool -L combined` is not offered; its `ethtool -x` has no key but names its hash."""
    base = "nics/tg3/netdev-2021-10-bcm5719-ethtool-"
    tg3 = parse_ethtool_channels(fixture(base + "l.txt"))
    assert tg3.maximum == {"rx": 4, "tx": 4, "other": 0, "combined": 0}
    assert tg3.current == {"rx": 4, "tx": 1, "other": 0, "combined": 0} and not supports_combined(tg3)
    rss = parse_ethtool_rss(fixture(base + "x.txt"))
    assert rss.key is None and rss.hash_functions == {"toeplitz": True, "xor": False, "crc32": False}
    assert parse_ethtool_info(fixture(base + "i.txt"))["bus-info"] == "0000:02:00.0"


def test_ethtool_channels_error_output_raises() -> None:
    with pytest.raises(ProbeOutputError):
        parse_ethtool_channels("netlink error: Operation not supported\n")


def test_ethtool_rss_virtio_unsupported_table_and_key() -> None:
    rss = parse_ethtool_rss(fixture("ethtool_rss/debian12-guest-virtio.start.txt"))
    assert rss.ring_count == 4 and rss.indirection is None and rss.key is None
    assert rss.hash_functions == {"toeplitz": True, "xor": False, "crc32": False}


def test_ethtool_rss_with_table_and_key() -> None:
    rss = parse_ethtool_rss(fixture("ethtool_rss/kernel-doc-8rings-key-no-hfunc.txt"))
    assert rss.ring_count == 8 and rss.indirection == list(range(8))
    assert rss.key is not None and rss.key.startswith("84:50:f4") and len(rss.key.split(":")) == 40
    assert rss.hash_functions == {}


def test_ethtool_rss_veth_has_nothing() -> None:
    rss = parse_ethtool_rss(fixture("ethtool_rss/veth-unsupported.txt"))
    assert (rss.ring_count, rss.indirection, rss.key, rss.hash_functions) == (None, None, None, {})


def test_ethtool_of_the_real_vmxnet3_and_e1000e_on_qemu() -> None:
    """The lab guests' own answers (tests/fixtures/nics/*/qemu10-guest-*): vmxnet3 has combined
    channels and an `i mod 4` table but no key and no rx-flow-hash; e1000e has neither channels
    nor a table, but says which fields it hashes."""
    vmxnet3 = parse_ethtool_channels(fixture("nics/vmxnet3/qemu10-guest-ethtool-l.txt"))
    assert vmxnet3.maximum == vmxnet3.current == {"rx": None, "tx": None, "other": 1, "combined": 4}
    rss = parse_ethtool_rss(fixture("nics/vmxnet3/qemu10-guest-ethtool-x.txt"))
    assert rss.ring_count == 4 and rss.indirection == [j % 4 for j in range(128)] and rss.key is None
    assert rss.hash_functions == {"toeplitz": True, "xor": False, "crc32": False}
    assert parse_flow_hash(fixture("nics/vmxnet3/qemu10-guest-ethtool-n-udp4.txt")) is None
    with pytest.raises(ProbeOutputError):
        parse_ethtool_channels(fixture("nics/e1000e/qemu10-guest-ethtool-l.txt"))
    text = fixture("nics/e1000e/qemu10-guest-ethtool-x.txt")
    assert parse_ethtool_rss(text).indirection is None
    assert rss_refusal(text) == "Cannot get RX ring count: Operation not supported"
    assert parse_flow_hash(fixture("nics/e1000e/qemu10-guest-ethtool-n-udp4.txt")) == "sd"
    assert parse_ethtool_info(fixture("nics/e1000e/qemu10-guest-ethtool-i.txt"))["driver"] == "e1000e"
    assert parse_ethtool_info(fixture("nics/vmxnet3/qemu10-guest-ethtool-i.txt"))["bus-info"] == "0000:00:03.0"


def test_ethtool_rss_multiline_table_and_input_transformation() -> None:
    text = (
        "RX flow hash indirection table for eth0 with 2 RX ring(s):\n"
        "    0:      0     1     0     1     0     1     0     1\n"
        "    8:      0     1     0     1     0     1     0     1\n"
        "RSS hash key:\n"
        "6d:5a:56:da\n"
        "RSS hash function:\n"
        "    toeplitz: on\n"
        "    xor: off\n"
        "RSS input transformation:\n"
        "    symmetric-xor: off\n"
    )
    rss = parse_ethtool_rss(text)
    assert rss.indirection == [0, 1] * 8 and rss.key == "6d:5a:56:da"
    assert rss.input_transformations == {"symmetric-xor": False}


def test_ethtool_info() -> None:
    info = parse_ethtool_info(fixture("ethtool_info/debian12-guest-virtio.start.txt"))
    assert info["driver"] == "virtio_net" and info["bus-info"] == "0000:00:03.0"
    assert info["firmware-version"] == ""
    veth = parse_ethtool_info(fixture("ethtool_info/veth.txt"))
    assert veth["driver"] == "veth" and veth["bus-info"] == ""
    with pytest.raises(ProbeOutputError):
        parse_ethtool_info("Cannot get driver information: No such device\n")


def test_ethtool_stats_virtio_kernel_61_per_queue() -> None:
    stats = parse_ethtool_stats(fixture(f"ethtool_stats/{GUEST}.a_combined2.before.txt"))
    assert stats["rx_queue_0_packets"] == 3118
    queues = per_queue_stats(stats)
    assert sorted(queues) == [("rx", 0), ("rx", 1), ("tx", 0), ("tx", 1)]
    assert queues[("rx", 1)]["packets"] == 3081
    assert queues[("rx", 0)]["xdp_redirects"] == 0
    assert queues[("tx", 1)]["tx_timeouts"] == 0


def test_ethtool_stats_veth_with_gro() -> None:
    stats = parse_ethtool_stats(fixture("ethtool_stats/veth-gro.after.txt"))
    assert stats["peer_ifindex"] == 2
    queues = per_queue_stats(stats)
    assert sorted(queues) == [(d, q) for d in ("rx", "tx") for q in range(4)]
    assert sum(queues[("rx", q)]["xdp_packets"] for q in range(4)) == 641
    assert queues[("tx", 3)] == {"xdp_xmit": 0, "xdp_xmit_errors": 0}


def test_ethtool_stats_virtio_kernel_618_rxN_names() -> None:
    stats = parse_ethtool_stats(fixture("ethtool_stats/virtio-host-6.18-rxN.txt"))
    queues = per_queue_stats(stats)
    assert sorted(queues) == [("rx", 0), ("tx", 0)]
    assert queues[("rx", 0)]["kicks"] == stats["rx0_kicks"]
    assert "drops" not in queues.get(("rx", 1), {})  # device-wide rx_drops is not a queue


def test_per_queue_stats_other_driver_spellings() -> None:
    text = (
        "NIC statistics:\n"
        "     tx-0.packets: 2094\n"  # i40e/iavf
        "     rx-0.packets: 2200\n"
        "     rx-12.bytes: 267673\n"
        "     rx3_packets: 7\n"  # mlx5
        "     queue_2_tx_cnt: 5\n"  # ena
        "     [1]: rx_ucast_packets: 9\n"  # bnxt
        "     rx_queue_5_alloc_failed: 1\n"  # igb/ixgbe
        "     rx_packets: 99\n"
    )
    queues = per_queue_stats(parse_ethtool_stats(text))
    assert queues == {
        ("rx", 0): {"packets": 2200},
        ("rx", 1): {"ucast_packets": 9},
        ("rx", 3): {"packets": 7},
        ("rx", 5): {"alloc_failed": 1},
        ("rx", 12): {"bytes": 267673},
        ("tx", 0): {"packets": 2094},
        ("tx", 2): {"cnt": 5},
    }


def test_ethtool_stats_error_raises() -> None:
    with pytest.raises(ProbeOutputError):
        parse_ethtool_stats("Cannot get stats strings information: Operation not supported\n")


# ------------------------------------------------------------------------- masks and lists


def test_mask_and_list_files_agree_on_a_real_irq() -> None:
    mask = parse_mask_file(fixture("masks/host-irq38-smp_affinity.txt"))
    assert mask == parse_cpulist_file(fixture("cpulist_files/host-irq38-smp_affinity_list.txt"))
    effective = parse_cpulist_file(fixture("cpulist_files/host-irq38-effective_affinity_list.txt"))
    assert effective <= mask


def test_rps_cpus_files_and_empty_isolated() -> None:
    assert parse_mask_file(fixture("masks/veth-rps_cpus-rx-0.txt")) == frozenset()
    assert parse_mask_file(fixture("masks/veth-rps_cpus-rx-1-cpu1.txt")) == {1}
    assert parse_cpulist_file(fixture("cpulist_files/host-isolated-empty.txt")) == frozenset()
    assert parse_cpulist_file(fixture("cpulist_files/host-online.txt")) == {0, 1}
    assert parse_mask_file("ff,00000000\n") == frozenset(range(32, 40))


def test_mask_and_list_errors_are_probe_errors() -> None:
    with pytest.raises(ProbeOutputError):
        parse_mask_file("cat: /proc/irq/99/smp_affinity: No such file or directory")
    with pytest.raises(ProbeOutputError):
        parse_cpulist_file("7-3")


# ------------------------------------------------------------------------- cmdline and status


def test_cmdline_tuned_realtime() -> None:
    cmdline = parse_cmdline(fixture("cmdline/debian12-guest-tuned-realtime.txt"))
    assert cmdline.isolcpus is not None
    assert cmdline.isolcpus.flags == ("managed_irq", "domain")
    assert cmdline.isolcpus.cpus == {4, 5, 6, 7}
    assert cmdline.nohz_full is None and cmdline.irqaffinity is None
    assert cmdline.params["ro"] is None and cmdline.params["skew_tick"] == "1"
    assert cmdline.params["console"] == "ttyS0,115200n8"  # last wins
    assert [value for key, value in cmdline.items if key == "console"] == ["tty0", "ttyS0,115200n8"]


def test_cmdline_stock_and_init_arguments_after_dashes() -> None:
    assert parse_cmdline(fixture("cmdline/debian12-guest-stock.txt")).isolcpus is None
    host = parse_cmdline(fixture("cmdline/firecracker-host-6.18.txt"))
    assert host.params["rdinit"] == "/process_api"
    assert host.init_args[0] == "--firecracker-init" and "--addr" not in host.params


def test_cmdline_quotes_nohz_full_irqaffinity() -> None:
    cmdline = parse_cmdline(
        'isolcpus=2-3 nohz_full=2,3 irqaffinity=0-1 dyndbg="file x.c +p" rcu_nocbs=2-3\n'
    )
    assert cmdline.isolcpus is not None and cmdline.isolcpus.flags == ()
    assert cmdline.isolcpus.cpus == {2, 3}
    assert cmdline.nohz_full == {2, 3} and cmdline.irqaffinity == {0, 1}
    assert cmdline.params["dyndbg"] == "file x.c +p"


def test_isolcpus_flag_forms() -> None:
    parsed = parse_isolcpus("nohz,domain,1,3-5")
    assert parsed.flags == ("nohz", "domain") and parsed.cpus == {1, 3, 4, 5}
    with pytest.raises(ProbeOutputError):
        parse_isolcpus("domain,x")


def test_status_cpus_allowed() -> None:
    assert parse_status_cpus_allowed(fixture("status/host-6.18-self.txt")) == {0, 1}
    assert parse_status_cpus_allowed("Name:\tx\nCpus_allowed:\t0f\nCpus_allowed_list:\t0-3\n") == {
        0, 1, 2, 3,
    }
    with pytest.raises(ProbeOutputError):
        parse_status_cpus_allowed("Name:\tx\n")


# ------------------------------------------------------------------------- registry


def test_host_probe_registry() -> None:
    assert {"interrupts", "softirqs", "softnet_stat", "stat", "cmdline"} <= set(PROBES)
    assert PROBES["interrupts"].command == "cat /proc/interrupts"
    assert PROBES["softnet_stat"].command == "cat /proc/net/softnet_stat"
    assert all(name == probe.name for name, probe in PROBES.items())
    assert PROBES["cmdline"].parse(fixture("cmdline/debian12-guest-stock.txt")).params["ro"] is None


def test_probe_factories_build_quoted_commands() -> None:
    assert ethtool_channels("eth1").command == "ethtool -l eth1"
    assert ethtool_stats("eth1").command == "ethtool -S eth1"
    assert ethtool_rss("eth1").command == "ethtool -x eth1"
    assert ethtool_info("eth1").command == "ethtool -i eth1"
    assert rps_cpus("eth1", 0).command == "cat /sys/class/net/eth1/queues/rx-0/rps_cpus"
    assert smp_affinity(37).command == "cat /proc/irq/37/smp_affinity"
    assert smp_affinity_list("37").command == "cat /proc/irq/37/smp_affinity_list"
    assert effective_affinity_list(37).command == "cat /proc/irq/37/effective_affinity_list"
    assert cpus_allowed(1).command == "cat /proc/1/status"
    weird = ethtool_stats("a$b;c")  # legal in an interface name, dangerous unquoted
    assert shlex.split(weird.command) == ["ethtool", "-S", "a$b;c"]
    names = {p.name for p in (ethtool_stats("eth1"), rps_cpus("eth1", 2), smp_affinity(37))}
    assert names == {"ethtool_stats@eth1", "rps_cpus@eth1@rx-2", "smp_affinity@37"}
    assert rps_cpus("eth1", 1).parse("02\n") == {1}


@pytest.mark.parametrize("iface", ["", "a/b", "eth 0", "x:1", ".", "..", "sixteen-chars-xx"])
def test_probe_factories_reject_impossible_interface_names(iface: str) -> None:
    with pytest.raises(ProbeArgumentError):
        ethtool_channels(iface)


@pytest.mark.parametrize("value", ["-1", "37; rm -rf /", "", "3.5"])
def test_probe_factories_reject_non_numbers(value: str) -> None:
    with pytest.raises(ProbeArgumentError):
        smp_affinity(value)
    with pytest.raises(ProbeArgumentError):
        cpus_allowed(value)
    with pytest.raises(ProbeArgumentError):
        rps_cpus("eth0", value)  # type: ignore[arg-type]
