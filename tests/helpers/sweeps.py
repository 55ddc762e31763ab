"""Test helpers: sweep directories (sweep.json + runs/<id>/ with summary.json and manifest.json).

REAL_SWEEP is tests/fixtures/sweeps/'s: four real VM lab runs (irq_pin and rps_cpu1 of two
series, see its README) arranged as a sweep over ``tuning.dut.rps.rx-0: [none, 1]`` with
repeat 3 whose third repetitions are pending. make_sweep() builds others in a temporary
directory from the fixture runs' summaries with chosen values (to test the statistics on
numbers worked out by hand).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from pydantic import JsonValue

from labctl.runfiles.models import Summary
from labctl.runfiles.sweep import CellRecord, MatrixAxis, RepetitionRecord, SweepRecord
from tests.helpers import FIXTURES
from tests.helpers.runs import RUNS

REAL_SWEEP = FIXTURES / "sweeps" / "20261203T140404Z-sweep-irq_pin_rps"

# one repetition: its status and (for an ended one) its summary, None = no summary.json
Rep = tuple[str, Summary | None]


def varied(base: Summary, rate: float, net_rx: dict[int, int] | None = None,
           passed: Sequence[bool] | None = None) -> Summary:
    """A copy of a fixture summary with the achieved rate, NET_RX per CPU and the
    expectations' results set."""
    s = base.model_copy(deep=True)
    assert s.loadgen is not None
    s.loadgen.achieved_rate = rate
    if net_rx is not None:
        s.hosts["dut"].softirqs["NET_RX"] = dict(net_rx)
    for e, ok in zip(s.expectations, passed or []):
        e.passed = ok
    return s


def make_sweep(root: Path, axis: str, cells: Sequence[tuple[JsonValue, Sequence[Rep]]],
               metrics: Sequence[str] = (), manifest_of: str | None = None) -> Path:
    """A sweep directory over one matrix axis; each cell (value, repetitions)."""
    sweep = root / "20261203T200000Z-sweep-test"
    records = []
    for index, (value, reps) in enumerate(cells, 1):
        rep_records = []
        for number, (status, summary) in enumerate(reps, 1):
            run_dir = None
            if status != "pending":
                run_dir = f"runs/cell{index}-rep{number}"
                (sweep / run_dir).mkdir(parents=True)
                if summary is not None:
                    (sweep / run_dir / "summary.json").write_text(summary.to_json())
                if manifest_of:
                    shutil.copy(RUNS / manifest_of / "manifest.json", sweep / run_dir)
            rep_records.append(RepetitionRecord.model_validate(
                {"repetition": number, "status": status, "run_dir": run_dir}))
        records.append(CellRecord(index=index, values={axis: value},
                                  label=f"{axis.rsplit('.', 1)[-1]}={value}",
                                  repetitions=rep_records))
    record = SweepRecord(sweep_id=sweep.name, scenario="test", scenario_path="s.yaml",
                         scenario_sha256="0" * 64, inventory_path="inventory.yaml",
                         labctl_version="0.1.0", created_at="2026-12-03T20:00:00+00:00",
                         matrix=[MatrixAxis(path=axis, values=[v for v, _ in cells])],
                         repeat=max(len(r) for _, r in cells), cells=records,
                         metrics=list(metrics))
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "sweep.json").write_text(record.to_json())
    return sweep
