"""Per-queue RX counters of `ethtool -S` (labctl.host.queuestats) for every driver of the table,
from real captures (isc-projects/ethq's test data, DataDog/datadog-agent's gve sample, this machine)
or, where none was found, the driver source's ethtool strings (tests/fixtures/nics/README.md says which)."""

from __future__ import annotations

import pytest

from labctl.host.nicirqs import DRIVERS
from labctl.host.probes import ProbeArgumentError
from labctl.host.queuestats import KNOWN_DRIVERS, QueueCounters, parse_queue_counters, queue_counters_probe
from tests.helpers import fixture

Q = QueueCounters


@pytest.mark.parametrize("driver,capture,expected", [
    ("virtio_net", "nics/virtio_net/ethq-ethtool-S.txt",
     {0: Q(10282181, 5048789307, None), 1: Q(10401806, 4819127125, None)}),
    ("virtio_net", "ethtool_stats/debian12-guest-virtio.start.txt", {0: Q(2, 160, 0), 1: Q(2, 180, 0),
                                                                     2: Q(0, 0, 0), 3: Q(0, 0, 0)}),
    ("igb", "nics/igb/format-string-ethtool-S.txt", {0: Q(100, 10000, 1), 1: Q(200, 20000, 0)}),
    ("igb", "nics/igb/qemu10-guest-ethtool-S.txt", {0: Q(2, 120, 0), 1: Q(107658, 11411748, 0),
                                                   2: Q(0, 0, 0), 3: Q(0, 0, 0)}),
    ("ixgbe", "nics/ixgbe/format-string-ethtool-S.txt", {0: Q(100, 10000), 1: Q(200, 20000)}),
    ("i40e", "nics/i40e/ethq-ethtool-S.excerpt.txt",
     {0: Q(64128515158, 4974745040637), 1: Q(13480677444, 1054363120639),
      2: Q(13678447928, 1069535552876), 3: Q(61598230947, 4779364627433)}),
    ("ice", "nics/ice/ethq-ethtool-S.excerpt.txt",
     {0: Q(487528, 32176838), 1: Q(0, 0), 2: Q(452533, 29867186), 3: Q(0, 0)}),
    ("mlx5_core", "nics/mlx5_core/ethq-ethtool-S.excerpt.txt", {0: Q(393312), 1: Q(51777), 2: Q(24899)}),
    ("bnxt_en", "nics/bnxt_en/ethq-ethtool-S.excerpt.txt",
     {0: Q(10198513532 + 3854315 + 124570464, 8926453110639 + 1184763754 + 7658835398, 11763190),
      1: Q(10418578771 + 9467129 + 295, 9012688698556 + 4167996334 + 18290, 10611365)}),
    ("ena", "nics/ena/ethq-ethtool-S.excerpt.txt", {0: Q(9300271, 64430725908), 1: Q(3667424, 27051044585)}),
    # gve's packets are completed descriptors; rx_bytes (no index) is the device total, not queue 0
    ("gve", "nics/gve/datadog-agent-2rx-ethtool-S.txt", {0: Q(913, 558287, 0), 1: Q(262333, 382572185, 0)}),
    ("sfc", "nics/sfc/ethq-ethtool-S.excerpt.txt", {0: Q(232), 1: Q(115), 2: Q(86), 3: Q(130)}),
    ("hns3", "nics/hns3/format-string-ethtool-S.txt", {0: Q(100), 1: Q(200)}),
    ("e1000e", "nics/e1000e/ethq-11-ethtool-S.excerpt.txt", {0: Q(567425, 703224479)}),
    # the load generator's e1000e after sending the vmxnet3 scenario's load: one queue, device totals
    ("e1000e", "nics/e1000e/qemu10-guest-ethtool-S.txt", {0: Q(1, 64)}),
    # QEMU's vmxnet3 writes every packet to RX queue 0: unicast + the one broadcast there, none elsewhere
    ("vmxnet3", "nics/vmxnet3/qemu10-guest-ethtool-S.txt",
     {0: Q(89716 + 1, 9509896 + 50, 0), 1: Q(0, 0, 0), 2: Q(0, 0, 0), 3: Q(0, 0, 0)}),
    ("vmxnet3", "nics/vmxnet3/ethq-ethtool-S.txt",
     {0: Q(40863 + 112048 + 79384, 75776304 + 38879727 + 9352174, 0),
      1: Q(143523 + 82558 + 17327, 23059888 + 22900279 + 4360015, 0)}),
])
def test_per_queue_rx_counters(driver: str, capture: str, expected: dict[int, QueueCounters]) -> None:
    assert parse_queue_counters(fixture(capture), driver) == expected


def test_iavf_counts_named_rx_n_packets() -> None:
    queues = parse_queue_counters(fixture("nics/iavf/ethq-ethtool-S.excerpt.txt"), "iavf")
    assert sorted(queues) == list(range(9)) and queues[8] == Q(69038, 6765724) and queues[0] == Q(2, 120)


def test_virtio_618_has_no_per_queue_packets_only_drops() -> None:
    """Kernel 6.18's virtio_net names rx0_drops but no longer rx0_packets (this machine)."""
    assert parse_queue_counters(fixture("ethtool_stats/virtio-host-6.18-rxN.txt"), "virtio_net") == {0: Q(None, None, 0)}


def test_unknown_driver_or_other_drivers_names_give_nothing() -> None:
    assert parse_queue_counters(fixture("nics/i40e/ethq-ethtool-S.excerpt.txt"), "txgbe") == {}
    assert parse_queue_counters(fixture("nics/i40e/ethq-ethtool-S.excerpt.txt"), "mlx5_core") == {}


def test_every_driver_of_the_irq_table_has_counter_names() -> None:
    assert set(DRIVERS) <= KNOWN_DRIVERS


def test_probe_quotes_and_checks_the_interface() -> None:
    probe = queue_counters_probe("eth1", "ice")
    assert probe.command == "ethtool -S eth1"
    assert probe.parse(fixture("nics/ice/ethq-ethtool-S.excerpt.txt"))[2] == Q(452533, 29867186)
    with pytest.raises(ProbeArgumentError):
        queue_counters_probe("eth1; reboot", "ice")
