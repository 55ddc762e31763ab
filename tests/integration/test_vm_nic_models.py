"""Integration: two more real NIC drivers in the VM lab — the DUT's test NIC VMware's vmxnet3 and
the load generator's an Intel 82574L, both as QEMU emulates them and driven by the guest
kernel's own vmxnet3 and e1000e drivers (inventories/nic-models.yaml: 4 and 2 vCPUs).

The private libvirtd of the test session (tests/helpers/libvirt_fixtures.py) in its network
namespace; a CPU hog beside the whole test. up (both models in the lab's facts) -> prepare (irqbalance off) -> one scenario,
vmxnet3_irq_pin, on the DUT (each RX queue's vector found from msi_irqs and the driver table,
pinned; QEMU's vmxnet3 writes every packet to RX queue 0, and the scenario checks that) -> the
facts of both drivers (no RX vector unmapped) -> the DUT as it was -> down, nothing left.

With LABCTL_CAPTURE_NICS=DIR the data NICs' /proc/interrupts, msi_irqs listing and ethtool
-i/-l/-x/-S/-n answers after the run are written to DIR/<driver>/qemu10-guest-*.txt: that is how
tests/fixtures/nics/{vmxnet3,e1000e}/qemu10-guest-* were captured.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT
from tests.helpers.labs import DATA0_TUNING, guest_outputs, labctl_in, vm_lab_dir, vm_lab_up
from tests.helpers.processes import processes_mentioning

pytestmark = pytest.mark.integration

LAB = "lnicm"
SCENARIO = "vmxnet3_irq_pin"
CAPTURES = {"interrupts": "cat /proc/interrupts",
            "msi_irqs": "ls /sys/class/net/data0/device/msi_irqs",
            "ethtool-i": "ethtool -i data0 2>&1", "ethtool-l": "ethtool -l data0 2>&1",
            "ethtool-x": "ethtool -x data0 2>&1", "ethtool-S": "ethtool -S data0 2>&1",
            "ethtool-n-udp4": "ethtool -n data0 rx-flow-hash udp4 2>&1"}


@pytest.fixture(scope="module")
def models_lab(libvirt_host: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = vm_lab_dir(tmp_path_factory.mktemp("nicmlab"), ROOT / "inventories" / "nic-models.yaml",
                           LAB, libvirt_host)
    yield directory
    labctl_in(directory, "down")


def _dut_state(state: dict[str, Any]) -> dict[str, str]:
    """What the run changes and must put back: the vectors' affinities, RPS masks, irqbalance."""
    return guest_outputs(state, "dut", {**DATA0_TUNING, "irqbalance": "systemctl is-active irqbalance || true"})


def _capture(state: dict[str, Any], drivers: dict[str, str]) -> None:
    """The data NICs' captures, where LABCTL_CAPTURE_NICS asks for them."""
    target = os.environ.get("LABCTL_CAPTURE_NICS")
    if not target:
        return
    for host, driver in drivers.items():
        directory = Path(target) / driver
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in guest_outputs(state, host, CAPTURES, check=False).items():
            (directory / f"qemu10-guest-{name}.txt").write_text(text)
        print(f"captured {host}'s {driver} into {directory}")


def test_vmxnet3_and_e1000e(models_lab: Path, libvirt_host: Any, cpu_hog: Any,
                            capsys: pytest.CaptureFixture[str]) -> None:
    up_seconds, state = vm_lab_up(models_lab, LAB, lambda: capsys.readouterr().err)
    assert state["facts"]["test_nic_models"] == {"dut": "vmxnet3", "loadgen": "e1000e"}
    assert labctl_in(models_lab, "prepare") == 0, capsys.readouterr().err
    before = _dut_state(state)
    assert before["irqbalance"].strip() != "active"        # stopped by prepare, not by the run

    capsys.readouterr()
    started = time.monotonic()
    code = labctl_in(models_lab, "run", str(models_lab / "scenarios" / f"{SCENARIO}.yaml"))
    run_seconds = time.monotonic() - started
    out = capsys.readouterr()
    _capture(state, {"dut": "vmxnet3", "loadgen": "e1000e"})
    assert code == 0, f"{SCENARIO}: exit {code}\n{out.err[-5000:]}\n{out.out[-3000:]}"
    run = max((models_lab / "runs").iterdir(), key=lambda p: p.stat().st_mtime)

    manifest = json.loads((run / "manifest.json").read_text())
    dut, loadgen = manifest["facts"]["dut"]["nic"], manifest["facts"]["loadgen"]["nic"]
    assert dut["driver"] == "vmxnet3" and dut["msi_listed"] and dut["irq_method"] == "driver-table", dut
    assert sorted(dut["rx_irqs"]) == ["0", "1", "2", "3"], dut        # one queue per vCPU, each vector found
    assert set(dut["unmapped_vectors"].values()) == {"device events (no queue)"}, dut
    assert loadgen["driver"] == "e1000e" and loadgen["msi_listed"], loadgen
    assert sorted(loadgen["rx_irqs"]) == ["0"] and sorted(loadgen["tx_irqs"]) == ["0"], loadgen
    assert set(loadgen["unmapped_vectors"].values()) == {"link and other causes (no queue)"}, loadgen
    # vmxnet3 shows an `i mod 4` table (that QEMU does not follow) but no rx-flow-hash; e1000e no table
    assert dut["rss_table"] == [j % 4 for j in range(128)] and dut["flow_hash"]["udp4"].startswith("!"), dut
    assert loadgen["rss_table"] is None and "not supported" in loadgen["rss_note"], loadgen
    summary = json.loads((run / "summary.json").read_text())
    assert summary["verdict"]["status"] == "passed"
    series = json.loads((run / "series.json").read_text())["hosts"]["dut"]["lines"]
    assert "rx-0" in {line["queue"] for line in series if line["metric"] == "irqs_per_s"}, "vmxnet3's rx-0 IRQs/s"
    assert all(r["status"] == "ok" for r in summary["restore"])
    print(f"{SCENARIO}: " + "; ".join(f"{e['description']}: {e['measured']}" for e in summary["expectations"]))
    assert "test NIC dut vmxnet3, loadgen e1000e" in (run / "report.html").read_text()
    assert _dut_state(state) == before
    print(f"nic models: up {up_seconds:.0f} s, run {run_seconds:.0f} s, hog {cpu_hog.cpu_seconds():.0f} CPU s")

    assert labctl_in(models_lab, "down") == 0
    assert not processes_mentioning("qemu-system", f"guest={LAB}-"), "no QEMU of this lab left"
    assert not (models_lab / ".labctl" / LAB).exists()
