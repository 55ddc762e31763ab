#!/usr/bin/env python3
"""Benchmark: what `labctl sweep` adds per cell, against plain `labctl run` in the same lab.

Brings up a private netns lab (its own lab name, in a temp directory), measures the load
generator's ceiling once (so no run pays it), then:
  1. baseline: `labctl run` of the sweep's first cell as a plain scenario, a new process each
     time as a user runs it; overhead = wall time minus the run's load window (summary.json's
     window_seconds);
  2. a 3 x 2 x 3-repetition sweep (18 runs) in one `labctl sweep` process: its total wall time,
     its overhead per run ((wall - sum of the load windows) / runs: validation, planning every
     cell against the facts, process start all included), and each repetition's own overhead
     (sweep.json's seconds minus its window).
Prints the ratios sweep overhead per run / plain run overhead. Goal: <= ~1 (a sweep adds no
more than one plain run's overhead per cell). Needs root. Traffic stays inside the lab's
namespaces; the lab is removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DURATION = 1.0

BASE = {
    "description": "sweep overhead bench",
    "tuning": {"dut": {"channels": {"rx": 4, "tx": 4}, "rps": {"all": "none"}}},
    "load": {"server": {"cpus": 1}, "client": {"rate": 2000, "duration": DURATION, "cpus": 0}},
    "expect": [{"check": "loss", "max": 0.05}],
}
MATRIX = {"tuning.dut.rps.all": ["none", 1, "0-1"], "load.client.rate": [2000, 5000]}
REPEAT = 3


def labctl(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl.cli", "-q", *args], cwd=directory,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def must(done: subprocess.CompletedProcess[str]) -> None:
    if done.returncode != 0:
        raise SystemExit(f"labctl failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def window(run: Path) -> float:
    return float(json.loads((run / "summary.json").read_text())["window_seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="plain runs of the baseline (default 3)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: the netns lab needs namespaces and sshd", file=sys.stderr)
        return 1
    directory = Path(tempfile.mkdtemp(prefix="labctl-bench-sweep-"))
    try:
        data = yaml.safe_load((ROOT / "inventories" / "netns.yaml").read_text())
        data["lab"] = f"lbs{os.getpid() % 10000}"
        (directory / "inventory.yaml").write_text(yaml.safe_dump(data))
        (directory / "plain.yaml").write_text(yaml.safe_dump(BASE))
        (directory / "sweep.yaml").write_text(yaml.safe_dump({**BASE, "matrix": MATRIX, "repeat": REPEAT}))
        must(labctl(directory, "up"))
        must(labctl(directory, "calibrate", "--seconds", "2", "plain.yaml"))
        return _measure(directory, args.runs)
    finally:
        labctl(directory, "down")
        shutil.rmtree(directory, ignore_errors=True)


def _measure(directory: Path, runs: int) -> int:
    plain = []
    for i in range(runs):
        started = time.monotonic()
        must(labctl(directory, "--runs-dir", "plain-runs", "run", "plain.yaml"))
        wall = time.monotonic() - started
        run = max((directory / "plain-runs").iterdir(), key=lambda p: p.stat().st_mtime)
        plain.append(wall - window(run))
        print(f"plain run {i + 1}: wall {wall:.2f} s, load window {window(run):.2f} s, overhead {plain[-1]:.2f} s")
    started = time.monotonic()
    must(labctl(directory, "--runs-dir", "sweep-runs", "sweep", "sweep.yaml"))
    total = time.monotonic() - started
    (sweep_dir,) = (directory / "sweep-runs").iterdir()
    record = json.loads((sweep_dir / "sweep.json").read_text())
    reps = [r for c in record["cells"] for r in c["repetitions"]]
    windows = [window(sweep_dir / r["run_dir"]) for r in reps]
    own = [r["seconds"] - w for r, w in zip(reps, windows)]
    per_run = (total - sum(windows)) / len(reps)
    base = statistics.median(plain)
    print(f"\n| measure | value |\n|---|---:|"
          f"\n| plain `labctl run` overhead (median of {runs}) | {base:.2f} s |"
          f"\n| sweep 3 x 2 x {REPEAT} ({len(reps)} runs of {DURATION:g} s load): total wall | {total:.2f} s |"
          f"\n| sweep load windows, sum | {sum(windows):.2f} s |"
          f"\n| sweep overhead per run (total - windows) / runs | {per_run:.2f} s |"
          f"\n| repetition's own overhead (median; sweep.json seconds - window) | {statistics.median(own):.2f} s |"
          f"\n| ratio sweep per-run overhead / plain run overhead | {per_run / base:.2f} |"
          f"\n| ratio repetition's own overhead / plain run overhead | {statistics.median(own) / base:.2f} |")
    verdict = "meets" if per_run <= base * 1.05 else "MISSES"
    print(f"\nsweep overhead per run {per_run:.2f} s vs plain run {base:.2f} s: {verdict} the goal (ratio <= ~1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
