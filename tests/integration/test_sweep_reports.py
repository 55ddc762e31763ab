"""Integration: sweep.md / sweep.html and `compare SWEEP_DIR` from real netns lab runs.

A sweep over ``tuning.dut.rps.all: [none, 1]`` with 3 repetitions, laid out as the sweep
engine lays it out (sweep.json + runs/<run id>/, see labctl.runfiles.sweep): each repetition is
an ordinary `labctl run` into the sweep's runs/, then sweep.json is rewritten and the reports
rebuilt (write_sweep_reports, as the engine does after each repetition), also while
repetitions are pending. RPS to CPU 1 must come out as a difference beyond noise in CPU 1's
NET_RX share. Traffic stays inside the namespaces the test creates.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import cli
from labctl.reports.sweep import sweep_statistics, write_sweep_reports
from labctl.runfiles.sweep import CellRecord, MatrixAxis, RepetitionRecord, SweepRecord
from tests.helpers.labs import ROOT, Lab, lab_name, write_netns_inventory
from tests.helpers.pages import external_urls, parse_html

pytestmark = pytest.mark.integration

AXIS = "tuning.dut.rps.all"
VALUES: list[Any] = [None, 1]
REPEAT = 3


@pytest.fixture
def lab(tmp_path: Path) -> Any:
    name = lab_name("sw")
    write_netns_inventory(tmp_path, name)
    the_lab = Lab(tmp_path, name)
    yield the_lab
    the_lab.labctl("down")
    assert the_lab.namespaces_gone()


def cell_scenario(directory: Path, value: Any) -> Path:
    """netns_rps_cpu1.yaml with RPS of every queue set to the cell's value, checks of the load."""
    data = yaml.safe_load((ROOT / "scenarios" / "netns_rps_cpu1.yaml").read_text())
    data["tuning"]["dut"]["rps"] = {"all": "none" if value is None else value}
    data.pop("profile")
    data["expect"] = [e for e in data["expect"] if e["check"] in ("loss", "rate")]
    data["name"] = f"sweep-rps-{'none' if value is None else value}"
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def new_record(sweep: Path) -> SweepRecord:
    cells = [CellRecord(index=i, values={AXIS: v}, label=f"rps.all={'none' if v is None else v}",
                        repetitions=[RepetitionRecord(repetition=r) for r in range(1, REPEAT + 1)])
             for i, v in enumerate(VALUES, 1)]
    order = [(c, r) for r in range(1, REPEAT + 1) for c in range(1, len(VALUES) + 1)]
    return SweepRecord(sweep_id=sweep.name, scenario="sweep-rps", scenario_path="sweep.yaml",
                       scenario_sha256="0" * 64, inventory_path="inventory.yaml",
                       labctl_version="test", created_at="2026-12-03T00:00:00+00:00",
                       matrix=[MatrixAxis(path=AXIS, values=VALUES)], repeat=REPEAT,
                       run_order=order, cells=cells)


def test_sweep_of_real_runs(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert lab.labctl("up") == 0
    sweep = lab.dir / "runs" / "20261203T000000Z-sweep-rps"
    (sweep / "runs").mkdir(parents=True)
    scenarios = {i: cell_scenario(lab.dir, v) for i, v in enumerate(VALUES, 1)}
    record = new_record(sweep)
    (sweep / "sweep.json").write_text(record.to_json())
    report_seconds = []
    for cell_index, repetition in record.run_order:
        code = cli.main(["-q", "-i", str(lab.inventory), "--runs-dir", str(sweep / "runs"),
                         "run", str(scenarios[cell_index])])
        run = max((sweep / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
        rep = record.cells[cell_index - 1].repetitions[repetition - 1]
        rep.status = {0: "passed", 3: "failed", 5: "inconclusive"}.get(code, "error")
        rep.run_dir = f"runs/{run.name}"
        (sweep / "sweep.json").write_text(record.to_json())
        started = time.monotonic()
        write_sweep_reports(sweep)
        report_seconds.append(time.monotonic() - started)
        if (cell_index, repetition) == (1, 1):          # in progress: 5 pending
            assert "1 of 6 repetitions ended" in (sweep / "sweep.md").read_text()
    capsys.readouterr()

    stats = sweep_statistics(sweep)
    none, rps = stats.cells
    assert len(none.used) == len(rps.used) == REPEAT, stats.statuses
    assert stats.cpus == [1]                                 # named by the RPS tuning
    share_none, share_rps = none.metrics["net_rx_share:1"], rps.metrics["net_rx_share:1"]
    with capsys.disabled():
        print(f"\nsweep reports rebuilt in {max(report_seconds) * 1000:.0f} ms at most; "
              f"NET_RX share CPU1: none {share_none.values}, rps {share_rps.values}; "
              f"statuses {stats.statuses}")
    assert share_rps.low > share_none.high
    found = [d for d in stats.differences if d.series.key == "net_rx_share:1"]
    assert len(found) == 1 and (found[0].a, found[0].b) == (1, 2)
    assert found[0].call.rule == "ranges do not overlap" and found[0].call.p == pytest.approx(0.1)

    md = (sweep / "sweep.md").read_text()
    assert "## Differences beyond noise" in md and "| NET_RX share CPU1" in md
    page = parse_html((sweep / "sweep.html").read_text())
    assert len(page.find("svg")) == len(stats.series) and external_urls(page) == []

    assert cli.main(["compare", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "- cell 2: rps.all=1 (median of 3)" in out and "softnet received_rps" in out
    shutil.rmtree(sweep / "runs" / sorted(p.name for p in (sweep / "runs").iterdir())[0])
    assert cli.main(["collect", str(sweep)]) == 0            # a run gone: counted, not fatal
    assert "no summary" in (sweep / "sweep.md").read_text()
