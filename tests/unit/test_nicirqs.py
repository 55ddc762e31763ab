"""Queue <-> IRQ discovery (labctl.host.nicirqs) against real captures and the drivers' own
format strings: every driver of the table, several NICs on one host, a host with 1152 CPUs,
an unknown driver, the netdev netlink answer, and virtio mapped exactly as before."""

from __future__ import annotations

import bz2
from pathlib import Path

import pytest

from labctl.host.nicirqs import (
    DRIVERS,
    METHOD_NETLINK,
    METHOD_NONE,
    METHOD_TABLE,
    NetdevQueues,
    NicIdentity,
    map_queue_irqs,
    parse_msi_irqs,
    parse_netdev_queues,
)
from labctl.host.probes import InterruptTable, ProbeOutputError, nic_queue_irqs, nic_tx_irqs, parse_interrupts
from tests.helpers import FIXTURES, fixture

NICS = "nics"
SHARED_CAPTURES = Path("/work/shared/captures/debian12-guest-tcg")   # not in the repository: may be absent


def table(relative: str) -> InterruptTable:
    path = FIXTURES / relative
    text = bz2.decompress(path.read_bytes()).decode() if path.suffix == ".bz2" else path.read_text()
    return parse_interrupts(text)


def msi(relative: str) -> list[str]:
    return parse_msi_irqs(fixture(f"{NICS}/{relative}"))


def irqs(first: int, count: int) -> dict[int, str]:
    return {q: str(first + q) for q in range(count)}


# --------------------------------------------------------------------------- the issue's three

def test_ixgbe_eth0_txrx_maps_and_its_other_vector_is_listed() -> None:
    got = map_queue_irqs(NicIdentity("eth0", "ixgbe", "0000:3b:00.0", "0000:3b:00.0"),
                         table(f"{NICS}/ixgbe/format-string.interrupts.txt"), ["130", "131", "132", "133", "134"])
    assert got.method == METHOD_TABLE
    assert got.rx == irqs(130, 4) and got.tx == irqs(130, 4)
    assert [(v.irq, v.name, v.why) for v in got.unmapped] == [("134", "eth0", "link and other causes (no queue)")]
    assert not got.unusable


PCP_1152 = "interrupts/pcp-interrupts-1152cpu-x86_64.txt.bz2"


@pytest.fixture(scope="module")
def big_host() -> InterruptTable:
    return table(PCP_1152)


def test_i40e_on_a_1152_cpu_host_with_four_ports(big_host: InterruptTable) -> None:
    assert len(big_host.cpus) == 1152
    got = map_queue_irqs(NicIdentity("eth0", "i40e", "0000:c3:00.0", "0000:c3:00.0"), big_host,
                         msi("i40e/pcp-1152cpu-msi_irqs-c3-00.0.txt"))
    assert got.method == METHOD_TABLE and got.rx == irqs(679, 94) and got.tx == got.rx
    assert {v.irq: v.name for v in got.unmapped} == {"678": "i40e-0000:c3:00.0:misc",
                                                      "773": "i40e-0000:c3:00.0:fdir-TxRx-0"}
    assert "Flow Director" in {v.irq: v.why for v in got.unmapped}["773"]


def test_several_nics_on_one_host_each_get_only_their_own_vectors(big_host: InterruptTable) -> None:
    ports = {"eth0": "0000:c3:00.0", "enp195s0f1": "0000:c3:00.1", "enp195s0f2": "0000:c3:00.2",
             "enp195s0f3": "0000:c3:00.3"}
    seen: set[str] = set()
    for iface, pci in ports.items():
        got = map_queue_irqs(NicIdentity(iface, "i40e", pci, pci), big_host)   # names only: no msi list
        assert len(got.rx) == 94 and sorted(got.rx) == list(range(94))
        assert all(big_host.by_irq(irq).name == f"i40e-{iface}-TxRx-{q}"  # type: ignore[union-attr]
                   for q, irq in got.rx.items())
        assert not seen & set(got.vectors)
        seen |= set(got.vectors)
    with_msi = map_queue_irqs(NicIdentity("enp195s0f1", "i40e", "0000:c3:00.1", "0000:c3:00.1"), big_host,
                              msi("i40e/pcp-1152cpu-msi_irqs-c3-00.1.txt"))
    names_only = map_queue_irqs(NicIdentity("enp195s0f1", "i40e", "0000:c3:00.1", "0000:c3:00.1"), big_host)
    assert with_msi.rx == names_only.rx and with_msi.vectors == names_only.vectors


def test_connectx_mlx5_comp_vectors_map_per_port() -> None:
    host = table(f"{NICS}/mlx5_core/format-string-2ports.interrupts.txt")
    port0 = map_queue_irqs(NicIdentity("ens1f0np0", "mlx5_core", "0000:3b:00.0", "0000:3b:00.0"), host)
    port1 = map_queue_irqs(NicIdentity("ens1f1np1", "mlx5_core", "0000:3b:00.1", "0000:3b:00.1"), host)
    assert port0.rx == irqs(61, 4) and port1.rx == irqs(71, 4)
    assert [v.name for v in port0.unmapped] == ["mlx5_async0@pci:0000:3b:00.0"]


def test_mlx5_real_s390x_capture_old_async_name() -> None:
    host = table("interrupts/pcp-interrupts-16cpu-s390x.txt")
    got = map_queue_irqs(NicIdentity("eth0", "mlx5_core", "0002:00:00.0", "0002:00:00.0"), host)
    assert got.method == METHOD_TABLE and got.rx[0] == "4" and sorted(got.rx)[:3] == [0, 1, 2]
    assert [(v.irq, v.name) for v in got.unmapped] == [("3", "mlx5_async@pci:0002:00:00.0")]


# --------------------------------------------------------------------------- every driver

def interrupt_texts() -> list[tuple[str, str]]:
    """Every /proc/interrupts capture of a virtio guest or host: tests/fixtures/interrupts and
    the `=== interrupts` sections of /work/shared/captures/debian12-guest-tcg."""
    texts = [(p.name, p.read_text()) for p in sorted((FIXTURES / "interrupts").glob("*.txt"))]
    for path in sorted(SHARED_CAPTURES.glob("*.txt")):
        for section in path.read_text().split("=== ")[1:]:
            name, _, body = section.partition("\n")
            if name.strip() == "interrupts":
                texts.append((path.name, body))
    return texts


def test_virtio_maps_exactly_as_the_name_match_did_on_every_virtio_capture() -> None:
    """The VM lab's virtio: every capture maps to the same IRQs through the driver table as
    through the old device-name match (probes.nic_queue_irqs), for every virtioN device in it."""
    compared = set()
    for name, text in interrupt_texts():
        host = parse_interrupts(text)
        devices = {a.split("-")[0] for row in host.rows for a in row.actions if a.startswith("virtio")}
        for device in sorted(devices):
            old_rx = {q: r.irq for q, r in nic_queue_irqs(host, device).items()}
            old_tx = {q: r.irq for q, r in nic_tx_irqs(host, device).items()}
            new = map_queue_irqs(NicIdentity("eth1", "virtio_net", device, "0000:00:04.0"), host)
            assert (new.rx, new.tx) == (old_rx, old_tx), (name, device)
            if old_rx:
                compared.add(name)
    in_repo = {"rhel9-blog-virtio6.txt", "debian12-guest-8cpu.a_combined2.before.txt"}
    shared = {"c_pinned.after.txt", "f_rps_cpu1.before.txt"}   # the captures beside the project, where present
    assert in_repo | (shared if SHARED_CAPTURES.is_dir() else set()) <= compared


def test_virtio_debian12_guest_four_queues_and_config_vector() -> None:
    host = table("interrupts/debian12-guest-8cpu.c_pinned.after.txt")
    got = map_queue_irqs(NicIdentity("eth1", "virtio_net", "virtio1", "0000:00:04.0"), host)
    assert got.rx == {0: "37", 1: "39", 2: "41", 3: "43"} and got.tx == {0: "38", 1: "40", 2: "42", 3: "44"}
    assert [(v.name, v.why) for v in got.unmapped] == [("virtio1-config", "configuration changes (no queue)")]


def test_virtio_shared_vector_is_listed_not_mapped() -> None:
    host = table(f"{NICS}/i40e/nemu-vm-interrupts.excerpt.txt")
    got = map_queue_irqs(NicIdentity("eth0", "virtio_net", "virtio0", "0000:00:02.0"), host, ["5", "6"])
    assert got.method == METHOD_NONE and got.unusable and got.rx == {}
    assert "shared by every virtqueue" in {v.irq: v.why for v in got.unmapped}["6"]


def test_i40e_in_a_vm_msi_listing_in_ls_order() -> None:
    assert msi("i40e/nemu-vm-msi_irqs.txt") == ["9", "10", "11", "12"]
    got = map_queue_irqs(NicIdentity("enP1s15", "i40e", "0001:00:0f.0", "0001:00:0f.0"),
                         table(f"{NICS}/i40e/nemu-vm-interrupts.excerpt.txt"), msi("i40e/nemu-vm-msi_irqs.txt"))
    assert got.rx == irqs(10, 3) and [v.name for v in got.unmapped] == ["i40e-0001:00:0f.0:misc"]


def test_ice_real_capture_misc_and_the_other_ports_ctrl_vector() -> None:
    host = table(f"{NICS}/ice/metal-images-interrupts.excerpt.txt")
    got = map_queue_irqs(NicIdentity("lan1", "ice", "0000:65:00.1", "0000:65:00.1"), host,
                         msi("ice/metal-images-msi_irqs-65-00.1.txt"))
    assert got.rx == irqs(78, 3)
    assert [(v.irq, v.name) for v in got.unmapped] == [("77", "ice-0000:65:00.1:misc")]
    other = map_queue_irqs(NicIdentity("lan0", "ice", "0000:65:00.0", "0000:65:00.0"), host)
    assert other.rx == {} and [v.why for v in other.unmapped] == ["Flow Director control VSI (no netdev queue)"]


def test_iavf_mailbox_vector() -> None:
    got = map_queue_irqs(NicIdentity("eth1", "iavf", "0000:3b:01.0", "0000:3b:01.0"),
                         table(f"{NICS}/iavf/format-string.interrupts.txt"), ["100", "101", "102"])
    assert got.rx == irqs(101, 2) and [v.why for v in got.unmapped] == ["mailbox to the PF (no queue)"]


@pytest.mark.parametrize("capture,rx,tx", [
    ("format-string.interrupts.txt", irqs(90, 4), irqs(90, 4)),
    ("format-string-rx-tx.interrupts.txt", {0: "90", 1: "91"}, {0: "92", 1: "93"}),   # tx-2, tx-3 -> 0, 1
])
def test_bnxt_txrx_and_separate_rings(capture: str, rx: dict[int, str], tx: dict[int, str]) -> None:
    got = map_queue_irqs(NicIdentity("ens1f0np0", "bnxt_en", "0000:c1:00.0", "0000:c1:00.0"),
                         table(f"{NICS}/bnxt_en/{capture}"))
    assert (got.rx, got.tx, got.unmapped) == (rx, tx, ())


def test_ixgbe_separate_rx_tx_vectors() -> None:
    got = map_queue_irqs(NicIdentity("eth0", "ixgbe", "0000:3b:00.0", "0000:3b:00.0"),
                         table(f"{NICS}/ixgbe/format-string-rx-tx.interrupts.txt"))
    assert got.rx == {0: "130", 1: "131"} and got.tx == {0: "132", 1: "133"}


def test_ena_real_capture_with_rows_that_lost_their_names() -> None:
    got = map_queue_irqs(NicIdentity("enp39s0", "ena", "0000:27:00.0", "0000:27:00.0"),
                         table(f"{NICS}/ena/amzn-drivers-316-interrupts.excerpt.txt"),
                         msi("ena/amzn-drivers-316-msi_irqs.txt"))
    assert got.rx == {0: "66"} and got.method == METHOD_TABLE
    whys = {v.irq: v.why for v in got.unmapped}
    assert whys["65"].startswith("management") and set(whys) == {"65", "67", "68", "69"}
    assert "no action name" in whys["67"]


def test_gve_notify_blocks_lower_half_tx_upper_half_rx() -> None:
    got = map_queue_irqs(NicIdentity("ens4", "gve", "0000:00:04.0", "0000:00:04.0"),
                         table(f"{NICS}/gve/gvnic-30-interrupts.excerpt.txt"), msi("gve/gvnic-30-msi_irqs.txt"))
    assert got.tx == {0: "24"} and got.rx == {0: "25"}
    assert [v.why for v in got.unmapped] == ["management (no queue)"]


def test_gve_odd_block_count_is_not_guessed() -> None:
    host = table(f"{NICS}/gve/gvnic-30-interrupts.excerpt.txt")
    got = map_queue_irqs(NicIdentity("ens4", "gve", "0000:00:04.0", "0000:00:04.0"), host, ["24", "26"])
    assert got.rx == {} and got.unusable and "odd" in got.note


def test_sfc_channels() -> None:
    got = map_queue_irqs(NicIdentity("ens1f0", "sfc", "0000:05:00.0", "0000:05:00.0"),
                         table(f"{NICS}/sfc/format-string.interrupts.txt"))
    assert got.rx == irqs(110, 4) == got.tx


def test_hns3_vectors_counted_by_two_are_ranked() -> None:
    got = map_queue_irqs(NicIdentity("eth2", "hns3", "0000:7d:00.0", "0000:7d:00.0"),
                         table(f"{NICS}/hns3/format-string.interrupts.txt"), ["120", "121", "122", "123", "124"])
    assert got.rx == irqs(121, 4) and [v.name for v in got.unmapped] == ["hclge-misc-0000:7d:00.0"]


@pytest.mark.parametrize("capture,listing,rx,tx,other", [
    ("e1000e/format-string.interrupts.txt", ["125", "126", "127"], {0: "125"}, {0: "126"}, ["127"]),
    ("igb/format-string-msi.interrupts.txt", ["40"], {0: "40"}, {0: "40"}, []),
])
def test_single_queue_and_msi_mode(capture: str, listing: list[str], rx: dict[int, str], tx: dict[int, str],
                                   other: list[str]) -> None:
    driver = capture.split("/")[0]
    got = map_queue_irqs(NicIdentity("eth0", driver, "0000:00:19.0", "0000:00:19.0"), table(f"{NICS}/{capture}"),
                         listing)
    assert (got.rx, got.tx, [v.irq for v in got.unmapped]) == (rx, tx, other)


def test_igb_real_driver_on_qemu_82576() -> None:
    """The guest kernel's own igb driver on QEMU 10's emulated 82576 (the igb lab, 4 queues):
    separate rx/tx vectors named after the interface, the link vector named IF."""
    listing = fixture(f"{NICS}/igb/qemu10-guest-msi_irqs.txt").split()
    got = map_queue_irqs(NicIdentity("data0", "igb", "0000:00:03.0", "0000:00:03.0"),
                         table(f"{NICS}/igb/qemu10-guest-interrupts.txt"), listing)
    assert got.rx == irqs(25, 4) and got.tx == irqs(29, 4)
    assert [(v.irq, v.name, v.why) for v in got.unmapped] == [("24", "data0", "link and other causes (no queue)")]
    assert not got.note


@pytest.mark.parametrize("listed", [True, False])
def test_vmxnet3_real_driver_on_qemu(listed: bool) -> None:
    """The guest kernel's own vmxnet3 driver on QEMU 10's vmxnet3 (4 vCPUs: 4 queues): one
    vector per RX/TX queue pair named IF-rxtx-<vector index>, the events vector after them
    (data0-event-4). By the msi_irqs listing or, without it, by the names alone: the same."""
    listing = msi("vmxnet3/qemu10-guest-msi_irqs.txt") if listed else None
    got = map_queue_irqs(NicIdentity("data0", "vmxnet3", "0000:00:03.0", "0000:00:03.0"),
                         table(f"{NICS}/vmxnet3/qemu10-guest-interrupts.txt"), listing)
    assert got.method == METHOD_TABLE and got.rx == irqs(24, 4) == got.tx
    assert [(v.irq, v.name, v.why) for v in got.unmapped] == [("28", "data0-event-4", "device events (no queue)")]
    assert not got.note


@pytest.mark.parametrize("listed", [True, False])
def test_e1000e_real_driver_on_qemu_82574l(listed: bool) -> None:
    """The guest kernel's own e1000e driver on QEMU 10's 82574L (2 vCPUs): MSI-X with one RX,
    one TX and the link vector, named as e1000_request_msix names them; the virtio devices'
    vectors in the same table are not taken for the NIC's."""
    listing = msi("e1000e/qemu10-guest-msi_irqs.txt") if listed else None
    got = map_queue_irqs(NicIdentity("data0", "e1000e", "0000:00:03.0", "0000:00:03.0"),
                         table(f"{NICS}/e1000e/qemu10-guest-interrupts.txt"), listing)
    assert got.method == METHOD_TABLE and (got.rx, got.tx) == ({0: "24"}, {0: "25"})
    assert [(v.irq, v.name, v.why) for v in got.unmapped] == [("26", "data0", "link and other causes (no queue)")]
    assert not got.note


def test_igb_msix_link_vector() -> None:
    got = map_queue_irqs(NicIdentity("eth0", "igb", "0000:02:00.0", "0000:02:00.0"),
                         table(f"{NICS}/igb/format-string.interrupts.txt"))
    assert got.rx == irqs(41, 4) and [(v.irq, v.name) for v in got.unmapped] == [("40", "eth0")]


@pytest.mark.parametrize("capture,rx,tx", [
    ("format-string.interrupts.txt", irqs(56, 4), irqs(56, 4)),
    ("format-string-dontshare.interrupts.txt", {0: "58", 1: "59"}, {0: "56", 1: "57"}),
])
def test_vmxnet3_named_by_vector_index(capture: str, rx: dict[int, str], tx: dict[int, str]) -> None:
    got = map_queue_irqs(NicIdentity("ens192", "vmxnet3", "0000:0b:00.0", "0000:0b:00.0"),
                         table(f"{NICS}/vmxnet3/{capture}"))
    assert (got.rx, got.tx) == (rx, tx) and [v.why for v in got.unmapped] == ["device events (no queue)"]


def test_every_driver_of_the_issue_is_in_the_table() -> None:
    assert set(DRIVERS) == {"virtio_net", "igb", "ixgbe", "i40e", "ice", "iavf", "mlx5_core", "bnxt_en",
                            "ena", "gve", "sfc", "hns3", "e1000e", "vmxnet3"}
    assert all(naming.source for naming in DRIVERS.values())


# --------------------------------------------------------------------------- not mapped, said so

def test_unknown_driver_lists_its_vectors_and_says_why() -> None:
    host = table(f"{NICS}/ixgbe/format-string.interrupts.txt")
    got = map_queue_irqs(NicIdentity("eth0", "txgbe", "0000:3b:00.0", "0000:3b:00.0"), host,
                         ["130", "131", "132", "133", "134"])
    assert got.method == METHOD_NONE and got.unusable and len(got.vectors) == 5
    assert "'txgbe' is not in labctl's driver table" in got.note and "per IRQ name" in got.note
    assert {v.why for v in got.unmapped} == {"driver 'txgbe' is not in labctl's driver table"}


def test_known_driver_with_names_it_does_not_give() -> None:
    host = table(f"{NICS}/ixgbe/format-string.interrupts.txt")
    got = map_queue_irqs(NicIdentity("eth9", "igb", "0000:3b:00.0", "0000:3b:00.0"), host, ["130", "131"])
    assert got.unusable and got.method == METHOD_NONE
    assert "matches none of the igb names" in got.unmapped[0].why and "none of its 2 vector(s)" in got.note


def test_no_vectors_is_not_unusable() -> None:
    got = map_queue_irqs(NicIdentity("veth0", "veth", "", ""), table("interrupts/host-6.18-2cpu.after.txt"), [])
    assert got.vectors == {} and not got.unusable


def test_msi_listing_rejects_non_numbers() -> None:
    with pytest.raises(ProbeOutputError):
        parse_msi_irqs("37\nmode\n")


# --------------------------------------------------------------------------- netdev netlink

def test_netlink_answer_is_authoritative_when_complete() -> None:
    host = table(f"{NICS}/ixgbe/format-string.interrupts.txt")
    answer = parse_netdev_queues("rx 0 131\nrx 1 130\ntx 0 131\ntx 1 130\n")
    assert answer.usable
    got = map_queue_irqs(NicIdentity("eth0", "ixgbe", "0000:3b:00.0", "0000:3b:00.0"), host,
                         ["130", "131", "132", "133", "134"], answer)
    assert got.method == METHOD_NETLINK and got.rx == {0: "131", 1: "130"}
    assert {v.irq for v in got.unmapped} == {"132", "133", "134"}
    unknown = map_queue_irqs(NicIdentity("eth0", "txgbe", "0000:3b:00.0", "0000:3b:00.0"), host, ["130", "131"],
                             answer)
    assert unknown.method == METHOD_NETLINK and unknown.rx == {0: "131", 1: "130"}


def test_netlink_without_irqs_falls_back_to_the_table() -> None:
    answer = parse_netdev_queues(fixture("facts/host-eth0-msi.txt").split("begin netdev_nl\n")[1].split("\n\n@@")[0])
    assert answer == NetdevQueues(rx={0: None}, tx={0: None}) and not answer.usable
    assert "reports no IRQ" in answer.describe()
    unsupported = parse_netdev_queues("unsupported: no netdev netlink family\n")
    assert unsupported.unsupported and not unsupported.usable and "not available" in unsupported.describe()
    with pytest.raises(ProbeOutputError):
        parse_netdev_queues("rx zero 37\n")


def test_two_vectors_naming_one_queue_map_nothing_and_say_why() -> None:
    text = fixture(f"{NICS}/igb/format-string.interrupts.txt").replace("eth0-TxRx-3", "eth0-TxRx-2")
    got = map_queue_irqs(NicIdentity("eth0", "igb", "0000:02:00.0", "0000:02:00.0"), parse_interrupts(text))
    assert got.rx == {} and got.unusable and "queue 2 appears on IRQ 43 and IRQ 44" in got.note
