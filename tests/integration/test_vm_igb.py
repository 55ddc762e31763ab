"""Integration: the blog's procedure on a real PCI NIC driver — the DUT's test NIC an Intel
82576 as QEMU (>= 8) emulates it, driven by the guest kernel's own igb driver.

The private libvirtd of the test session (tests/helpers/libvirt_fixtures.py) in its network
namespace; both guests booted from the image labctl builds; a CPU hog beside the whole test.
up (the QEMU and libvirt versions recorded) -> the igb scenarios as one series (the first
prepares the DUT: irqbalance off, tuned realtime 4-7, 4 queues) -> what the facts found on the
real driver (every RX queue's vector from msi_irqs and igb's naming) -> RSS by UDP ports over two
queues (ethtool -N, ethtool -X) -> the DUT as it was after each run (RSS restored exactly) ->
the drift watchdog on RSS (the table re-spread from outside in the window) -> down, nothing
left behind.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT
from tests.helpers.labs import DATA0_TUNING, guest_outputs, labctl_in, paused_run, vm_lab_dir, vm_lab_up
from tests.helpers.processes import processes_mentioning

pytestmark = pytest.mark.integration

SCENARIOS = ["igb_baseline", "igb_irq_pin", "igb_channels_rps", "igb_rss"]


@pytest.fixture(scope="module")
def igb_lab(libvirt_host: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = vm_lab_dir(tmp_path_factory.mktemp("igblab"), ROOT / "inventories" / "igb.yaml", "ligb", libvirt_host)
    yield directory
    labctl_in(directory, "down")


def _dut_state(state: dict[str, Any]) -> dict[str, str]:
    """What runs change and must put back: channels, RPS masks, the NIC's vectors' affinities
    (found by their names, as igb re-requests them on `ethtool -L`), RSS."""
    return guest_outputs(state, "dut", {
        **DATA0_TUNING,
        "rss": "ethtool -x data0",
        "udp4_hash": "ethtool -n data0 rx-flow-hash udp4",
        "driver": "ethtool -i data0 | head -n 1"})


def _table(text: str) -> list[int]:
    """The entries of `ethtool -x`'s indirection table."""
    return [int(v) for line in text.splitlines() if line.strip()[:1].isdigit() and ":" in line
            for v in line.split(":", 1)[1].split()]


def _assert_as_before(now: dict[str, str], original: dict[str, str], what: str) -> None:
    """The DUT as it was; its RSS table the driver's (blocks, or the kernel's i mod 4 after
    `ethtool -X default`: the same spread)."""
    assert {k: v for k, v in now.items() if k != "rss"} == {k: v for k, v in original.items() if k != "rss"}, what
    assert _table(now["rss"]) in ([j * 4 // 128 for j in range(128)], [j % 4 for j in range(128)]), what


def _rss_drift_from_outside(igb_lab: Path, state: dict[str, Any]) -> None:
    """The drift watchdog on RSS: paused in igb_rss's load window, the test spreads the table
    over all four queues again (another tool's `ethtool -X`); the run ends invalid (exit 6)
    naming the table, from the planned `equal 2` to `equal 4`, and is restored."""
    original = _dut_state(state)

    def respread(_: subprocess.Popen[str]) -> None:
        guest_outputs(state, "dut", {"respread": "ethtool -X data0 equal 4"})     # checked: raises if refused

    code, err, _ = paused_run(igb_lab, igb_lab / "scenarios" / "igb_rss.yaml", "load-window", respread)
    assert code == 6, f"RSS drift: exit {code}\n{err[-3000:]}"
    run = sorted((igb_lab / "runs").glob("*-igb_rss"))[-1]
    summary = json.loads((run / "summary.json").read_text())
    changed = [c for c in summary["drift"]["changes"] if c["what"] == "RSS of data0"]
    assert changed and changed[0]["after"].startswith("equal 4 (128 entries)"), summary["drift"]
    assert changed[0]["planned"].startswith("equal 2 (128 entries)"), changed
    assert not [c for c in summary["drift"]["changes"] if c["what"] != "RSS of data0"], "the hash fields held"
    assert all(r["status"] == "ok" for r in summary["restore"])
    _assert_as_before(_dut_state(state), original, "RSS drift")
    print(f"RSS drift: the table changed at {changed[0]['seconds']:.1f} s into the window; exit 6, DUT restored")


def test_the_blog_procedure_on_igb(igb_lab: Path, libvirt_host: Any, cpu_hog: Any,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    up_seconds, state = vm_lab_up(igb_lab, "ligb", lambda: capsys.readouterr().err)
    facts = state["facts"]
    assert facts["test_nic_models"] == {"dut": "igb", "loadgen": "virtio"}
    assert int(facts["qemu_version"].split(".")[0]) >= 8, facts["qemu_version"]
    assert facts["libvirt_version"]

    capsys.readouterr()
    started = time.monotonic()
    code = labctl_in(igb_lab, "run", *(str(igb_lab / "scenarios" / f"{n}.yaml") for n in SCENARIOS))
    series_seconds = time.monotonic() - started
    out = capsys.readouterr()
    assert code == 0, f"series: exit {code}\n{out.err[-5000:]}\n{out.out[-3000:]}"
    runs = {}
    for line in out.out.splitlines()[-(len(SCENARIOS) + 1):-1]:
        name, outcome, checks, run_dir = line.split()
        assert outcome == "passed", line
        runs[name] = Path(run_dir)
    assert list(runs) == SCENARIOS

    manifest = json.loads((runs["igb_baseline"] / "manifest.json").read_text())
    assert manifest["lab"]["facts"]["qemu_version"] == facts["qemu_version"]
    nic = manifest["facts"]["dut"]["nic"]
    assert nic["driver"] == "igb" and nic["msi_listed"], nic
    assert sorted(nic["rx_irqs"]) == ["0", "1", "2", "3"], nic   # every RX queue's vector found
    assert set(nic["unmapped_vectors"].values()) == {"link and other causes (no queue)"}, nic
    summaries = {n: json.loads((r / "summary.json").read_text()) for n, r in runs.items()}
    for name, summary in summaries.items():
        assert summary["verdict"]["status"] == "passed", name
        assert all(r["status"] == "ok" for r in summary["restore"]), name
        print(f"{name}: " + "; ".join(f"{e['description']}: {e['measured']}" for e in summary["expectations"]))
    channels = summaries["igb_channels_rps"]["hosts"]["dut"]["nic_irqs"]
    assert [r["queue"] for r in channels] == [0, 1], "after ethtool -L 2 the re-requested vectors are read"
    series = json.loads((runs["igb_baseline"] / "series.json").read_text())["hosts"]["dut"]["lines"]
    irq_queues = {line["queue"] for line in series if line["metric"] == "irqs_per_s"}
    assert irq_queues and irq_queues <= {"rx-0", "rx-1", "rx-2", "rx-3"}, "igb's queue IRQs per second"
    html = (runs["igb_baseline"] / "report.html").read_text()
    assert "test NIC dut igb" in html and f"QEMU {facts['qemu_version']}" in html

    capsys.readouterr()               # `labctl watch` reads igb's queue rows (awk on the guest)
    assert labctl_in(igb_lab, "watch", "--count", "2", "--interval", "0.5") == 0
    table = [t for t in capsys.readouterr().out.split("\n\n") if t.strip()][-1].split("\n")
    assert table[1].split()[:4] == ["CPU", "NET_RX/s", "%sirq", "IRQs/s"], table
    assert all(re.fullmatch(r"[\d.]+[kM]?", row.split()[3]) for row in table[2:]), table

    shares = {e["description"]: e["measured"] for e in summaries["igb_rss"]["expectations"]}
    print(f"igb_rss: {shares}")
    original = _dut_state(state)
    assert original["driver"].strip() == "driver: igb"
    # the series' igb_rss gave the table back to the driver: the kernel's i mod 4 until igb's next reset
    assert _table(original["rss"]) in ([j * 4 // 128 for j in range(128)], [j % 4 for j in range(128)])
    assert "IP SA\nIP DA\n" in original["udp4_hash"] and "L4 bytes" not in original["udp4_hash"]
    # RSS first: its restore gives the table back to the driver (`ethtool -X default`), so the
    # channels step after it is not refused by the kernel as it would be after a table set as
    # weights; igb's blocks become the kernel's i mod 4 until igb's next reset (same spread)
    _rss_drift_from_outside(igb_lab, state)
    for name in ("igb_rss", "igb_channels_rps"):
        assert labctl_in(igb_lab, "run", str(igb_lab / "scenarios" / f"{name}.yaml")) == 0, name
        _assert_as_before(_dut_state(state), original, name)
    print(f"igb: up {up_seconds:.0f} s, series {series_seconds:.0f} s, hog {cpu_hog.cpu_seconds():.0f} CPU s")

    assert labctl_in(igb_lab, "down") == 0
    assert not processes_mentioning("qemu-system", "guest=ligb-"), "no QEMU of this lab left"
    assert not (igb_lab / ".labctl" / "ligb").exists()
