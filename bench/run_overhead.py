#!/usr/bin/env python3
"""Benchmark: labctl's own cost in `labctl run scenarios/netns_rps_cpu1.yaml`.

Brings up a private netns lab (its own lab name, in a temp directory), times the whole
`labctl run` command (a new process each time, as a user runs it) several times, and
prints wall time minus the load duration — the baseline measured in the same run is the
load window itself, so the ratio is wall / load. Goal: overhead <= 2 s. Needs root.
Traffic stays inside the lab's namespaces; the lab is removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
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
SCENARIO = "scenarios/netns_rps_cpu1.yaml"


def labctl(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labctl.cli", "-q", *args], cwd=directory,
                          capture_output=True, text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: the netns lab needs namespaces and sshd", file=sys.stderr)
        return 1
    directory = Path(tempfile.mkdtemp(prefix="labctl-bench-run-"))
    try:
        data = yaml.safe_load((ROOT / "inventories" / "netns.yaml").read_text())
        data["lab"] = f"lbr{os.getpid() % 10000}"
        (directory / "inventory.yaml").write_text(yaml.safe_dump(data))
        shutil.copytree(ROOT / "scenarios", directory / "scenarios")
        duration = yaml.safe_load((directory / SCENARIO).read_text())["load"]["client"]["duration"]
        up = labctl(directory, "up")
        if up.returncode != 0:
            print(up.stderr, file=sys.stderr)
            return 1
        return _measure(directory, float(duration), args.runs)
    finally:
        labctl(directory, "down")
        shutil.rmtree(directory, ignore_errors=True)


def _measure(directory: Path, duration: float, runs: int) -> int:
    walls = []
    for i in range(runs):
        started = time.monotonic()
        done = labctl(directory, "run", SCENARIO)
        wall = time.monotonic() - started
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
            return 1
        walls.append(wall)
        print(f"run {i + 1}: wall {wall:.2f} s, load {duration:g} s, overhead {wall - duration:.2f} s")
    median = statistics.median(walls)
    overhead = median - duration
    print(f"\n| measure | value |\n|---|---:|\n| load window (baseline) | {duration:.2f} s |"
          f"\n| `labctl run` wall (median of {runs}) | {median:.2f} s |"
          f"\n| labctl overhead | {overhead:.2f} s |\n| wall / load | {median / duration:.2f}x |")
    verdict = "meets" if overhead <= 2.0 else "MISSES"
    print(f"\noverhead {overhead:.2f} s {verdict} the goal of <= 2 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
