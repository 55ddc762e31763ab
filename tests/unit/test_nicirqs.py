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


def test_ixgbe_real_x540_two_ports_txrx_and_link_vector() -> None:
    """A real X540-AT2 (ixgbe), two ports, 8 TxRx vectors each plus the link vector named IF
    (randomizedcoder/usgUltraTest): each port gets only its own vectors, with or without msi_irqs."""
    host = table(f"{NICS}/ixgbe/usgultratest-x540-2ports-interrupts.excerpt.txt")
    ports = {"enp1s0f0": ("0000:01:00.0", 67), "enp1s0f1": ("0000:01:00.1", 77)}
    for iface, (pci, first) in ports.items():
        nic = NicIdentity(iface, "ixgbe", pci, pci)
        got = map_queue_irqs(nic, host, msi(f"ixgbe/usgultratest-x540-msi_irqs-{pci[5:].replace(':', '-')}.txt"))
        assert got.method == METHOD_TABLE and got.rx == irqs(first, 8) and got.tx == got.rx and not got.note
        assert [(v.irq, v.name, v.why) for v in got.unmapped] == [(str(first + 8), iface, "link and other causes (no queue)")]
        names_only = map_queue_irqs(nic, host)
        assert (names_only.rx, names_only.vectors) == (got.rx, got.vectors)


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


def test_connectx5_two_ports_real_capture_with_gaps() -> None:
    """A real ConnectX-5 (MCX516A-CCAT), two ports 0000:01:00.0/.1 on a 12-CPU x86 host (the
    issue's mlx5_comp0@pci:0000:... style; jrife.github.io "100 GbE Lab"): port 0's completion
    vectors are IRQ 99 and 109-119 (not consecutive: port 1's async0/comp0 took 101-102), port 1
    has comp0 only. Each port maps to its own vectors by comp number, with or without msi_irqs;
    the async vector is listed. The same 12 IRQs are what mlnx-tools found for enp1s0f0np0."""
    host = table(f"{NICS}/mlx5_core/jrife-100gbe-2ports-interrupts.excerpt.txt")
    assert len(host.cpus) == 12
    port0 = NicIdentity("enp1s0f0np0", "mlx5_core", "0000:01:00.0", "0000:01:00.0")
    got = map_queue_irqs(port0, host, msi("mlx5_core/jrife-100gbe-msi_irqs-01-00.0.txt"))
    assert got.method == METHOD_TABLE and got.rx == {0: "99", **{q: str(108 + q) for q in range(1, 12)}} == got.tx
    assert [(v.irq, v.name, v.why) for v in got.unmapped] == [
        ("98", "mlx5_async0@pci:0000:01:00.0", "async events: commands, pages, port state (no queue)")]
    assert map_queue_irqs(port0, host).rx == got.rx
    port1 = NicIdentity("enp1s0f1np1", "mlx5_core", "0000:01:00.1", "0000:01:00.1")
    other = map_queue_irqs(port1, host, msi("mlx5_core/jrife-100gbe-msi_irqs-01-00.1.txt"))
    assert other.rx == {0: "102"} and [v.irq for v in other.unmapped] == ["101"]
    assert not set(other.vectors) & set(got.vectors)


def test_mlx5_real_s390x_capture_old_async_name() -> None:
    host = table("interrupts/pcp-interrupts-16cpu-s390x.txt")
    got = map_queue_irqs(NicIdentity("eth0", "mlx5_core", "0002:00:00.0", "0002:00:00.0"), host)
    assert got.method == METHOD_TABLE and got.rx[0] == "4" and sorted(got.rx)[:3] == [0, 1, 2]
    assert [(v.irq, v.name) for v in got.unmapped] == [("3", "mlx5_async@pci:0002:00:00.0")]


def test_mlx5_real_x86_two_devices_old_eq_names() -> None:
    """Two mlx5 VFs of an Azure VM (LKML 2023-01-27, CentOS 7's 3.10 kernel): completion vectors
    mlx5_comp0..7 per device, and the older control names mlx5_pages_eq / mlx5_cmd_eq /
    mlx5_async_eq, which are listed with why (the async one was not in the table before)."""
    host = table(f"{NICS}/mlx5_core/lkml-2023-01-27-azure-two-vfs-interrupts.txt")
    assert host.cpus == tuple(range(8))
    for pci, first, control in (("8b76:00:02.0", 28, 24), ("83a4:00:02.0", 40, 36)):
        got = map_queue_irqs(NicIdentity("eth1", "mlx5_core", pci, pci), host)
        assert got.method == METHOD_TABLE and got.rx == irqs(first, 8) == got.tx and not got.note
        assert [(v.irq, v.name, v.why) for v in got.unmapped] == [
            (str(control), f"mlx5_pages_eq@pci:{pci}", "control event queue (no queue)"),
            (str(control + 1), f"mlx5_cmd_eq@pci:{pci}", "control event queue (no queue)"),
            (str(control + 2), f"mlx5_async_eq@pci:{pci}", "async events (no queue)")]
    assert host.by_irq("28").total == 123648      # type: ignore[union-attr]   # all on CPU 0: the report


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


def test_iavf_two_vfs_with_one_name_are_refused_not_interleaved() -> None:
    """A real report (LKML 2021-01-29): two iavf VFs, each named net1 in its own network
    namespace, so /proc/interrupts holds iavf-net1-TxRx-0..3 twice. Matched by name only, the
    ranked TxRx vectors must not become 8 queues of one device (they did: 942, 962, 943, ...):
    the mapping is refused and says that the device's msi_irqs listing is needed."""
    host = table(f"{NICS}/iavf/lkml-2021-01-29-two-vfs-net1-interrupts.excerpt.txt")
    got = map_queue_irqs(NicIdentity("net1", "iavf", "0000:b5:03.6", "0000:b5:03.6"), host)
    assert got.method == METHOD_NONE and got.rx == {} and got.tx == {} and got.unusable
    assert "IRQ 942 and IRQ 962 are both named 'iavf-net1-TxRx-0'" in got.note and "msi_irqs" in got.note
    whys = {v.irq: v.why for v in got.unmapped}
    assert whys["941"] == "mailbox to the PF (no queue)" and "961" not in whys   # the other VF's mailbox
    assert set(whys) == {"941", "942", "943", "944", "945", "962", "963", "964", "965"}
    assert "ambiguous" in whys["962"]


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


def test_bnxt_names_cut_to_17_characters_are_known_and_refused() -> None:
    """bnxt_en before 6.12 cut IRQ names to 17 characters: "enp4s0f0np0-TxRx-0" became
    "enp4s0f0np0-TxRx-" (the example of the fix, netdev 2024-09-09). Matched by name only such rows
    were not found at all (the NIC looked like one without vectors, tuning silently skipped); now they
    are the device's vectors, listed with why, and IRQ tuning is refused."""
    host = table(f"{NICS}/bnxt_en/format-string-cut-names.interrupts.txt")
    nic = NicIdentity("enp4s0f0np0", "bnxt_en", "0000:04:00.0", "0000:04:00.0")
    for listing in (None, ["90", "91", "92", "93"]):
        got = map_queue_irqs(nic, host, listing)
        assert got.method == METHOD_NONE and got.rx == {} and got.unusable
        assert set(got.vectors) == {"90", "91", "92", "93"}
        assert all("cut to 17 characters" in v.why for v in got.unmapped)
    cut_in_number = "\n".join(["           CPU0"] + [
        f" {100 + ring}:          0  IR-PCI-MSIX-0000:04:00.0 {ring}-edge      enp4s0f0np-TxRx-{str(ring)[:1]}"
        for ring in range(12)])                        # rings 10 and 11 read as ring 1
    got = map_queue_irqs(NicIdentity("enp4s0f0np", "bnxt_en", "0000:04:00.0", "0000:04:00.0"),
                         parse_interrupts(cut_in_number))
    assert got.rx == {} and "both named 'enp4s0f0np-TxRx-1'" in got.note


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


def test_e1000e_real_82574l_riscv_guest() -> None:
    """e1000e on an 82574L (QEMU's, passed through by vfio to a RISC-V KVM guest; LKML 2025-08-11):
    one rx and one tx vector, the link vector named IF, with or without the derived msi_irqs."""
    host = table(f"{NICS}/e1000e/lkml-2025-08-11-riscv-guest-interrupts.txt")
    nic = NicIdentity("eth0", "e1000e", "0000:00:01.0", "0000:00:01.0")
    for listing in (msi("e1000e/lkml-2025-08-11-riscv-guest-msi_irqs-00-01.0.txt"), None):
        got = map_queue_irqs(nic, host, listing)
        assert (got.method, got.rx, got.tx) == (METHOD_TABLE, {0: "12"}, {0: "13"})
        assert [(v.irq, v.name, v.why) for v in got.unmapped] == [("14", "eth0", "link and other causes (no queue)")]


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
