#!/usr/bin/env python3
"""Benchmark (side effects: child processes, a temporary file): the series sampler's cost.

    python3 bench/sampler.py [--samples 200] [--interface IF]

On the host side, CPU time per sample (this process and its children: process_time, getrusage) of
labctl/agent/sampler.py's own sampling code (`sample_record`: read each file whole, run
`ethtool -S IF`), against the baseline of a shell per sample running the snapshot's way of
reading the same sources (`cat` of each file, then ethtool), in the same run (the sampler's
time includes appending the record to a file, the shell's only reading to a pipe):
  (a) this machine's /proc/{interrupts,softirqs,net/softnet_stat,stat} and `ethtool -S IF`;
  (b) the same without ethtool (what ethtool costs is (a) - (b));
  (c) as (a), with /proc/interrupts replaced by the synthetic 256-CPU x 2,000-IRQ file of
      bench/parse_interrupts.py (5.7 MB), read whole each sample as the sampler reads it;
  (d) as (c), with `--keep` as labctl's planner gives it (the NIC eth0's 64 IRQ numbers and its
      name): only the header and eth0's rows are appended; the ratio is against (c).
On the collect side, per sample of (c): labctl.analysis.series.derive_series with
parse_interrupts against the same with the old parser (bench/parse_interrupts.py), the ratio.
IF defaults to the first interface (other than lo) that `ethtool -S` answers for.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labctl.agent import sampler  # noqa: E402
from labctl.analysis.series import derive_series  # noqa: E402
from labctl.host import snapshots  # noqa: E402
from labctl.host.probes import Probe  # noqa: E402
from labctl.host.samples import SERIES_FILES, parse_sample_stream  # noqa: E402


def _bench_module(name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PARSE_BENCH = _bench_module("parse_interrupts")


def cpu_now() -> float:
    """CPU seconds of this process and its waited-for children (finer than os.times' ticks)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def per_sample(work: Callable[[], object], samples: int) -> float:
    """CPU seconds per call of `work` (this process and its children)."""
    started = cpu_now()
    for _ in range(samples):
        work()
    return (cpu_now() - started) / samples


def find_interface() -> str | None:
    for name in sorted(os.listdir("/sys/class/net")):
        if name != "lo" and subprocess.run(["ethtool", "-S", name], capture_output=True).returncode == 0:
            return name
    return None


def sources(files: dict[str, str], interface: str | None) -> list[sampler.Source]:
    found = [sampler.Source(name, path=path) for name, path in files.items()]
    if interface:
        found.append(sampler.Source("ethtool_stats", argv=["ethtool", "-S", interface]))
    return found


def shell_baseline(files: dict[str, str], interface: str | None) -> Callable[[], object]:
    script = "; ".join([*(f"cat {shlex.quote(p)}" for p in files.values()),
                        *([f"ethtool -S {shlex.quote(interface)}"] if interface else [])])
    return lambda: subprocess.run(["sh", "-c", script], stdout=subprocess.PIPE, check=False)


def host_side(label: str, files: dict[str, str], interface: str | None, samples: int,
              keep: str | None = None, baseline: float | None = None) -> float:
    """CPU seconds per sample of the sampler; printed against a shell's cat, or against
    `baseline` (another case's) when given."""
    chosen = sources(files, interface)
    if keep is not None:
        name, labels, words = sampler.keep_arg(keep)
        next(s for s in chosen if s.name == name).keep = (labels, words)
    size = sum(len(s.read()[0]) for s in chosen)
    with tempfile.TemporaryFile() as out:
        def sample() -> None:       # what the sampler does each interval: read all, append
            sampler.write_all(out.fileno(), sampler.sample_chunks(0, chosen))
            if out.tell() > 200_000_000:
                out.truncate(0)
                out.seek(0)
        ours = per_sample(sample, samples)
    if baseline is not None:
        print(f"{label:<58} {size / 1e6:5.2f} MB  sampler {ours * 1000:6.2f} ms CPU/sample  "
              f"(c) {baseline * 1000:6.2f} ms  ratio {baseline / ours:4.1f}x")
        return ours
    shell = per_sample(shell_baseline(files, interface), samples)
    print(f"{label:<58} {size / 1e6:5.2f} MB  sampler {ours * 1000:6.2f} ms CPU/sample  "
          f"shell+cat {shell * 1000:6.2f} ms  ratio {shell / ours:4.1f}x")
    return ours


def collect_side(files: dict[str, str], interface: str | None, samples: int) -> None:
    chosen = sources(files, interface)
    data = sampler.json_line({"kind": "start", "format": "labctl-series", "version": 1, "interval": 1.0,
                              "sources": [s.name for s in chosen]})
    for seq in range(samples):
        data += sampler.sample_record(seq, chosen)
    stream = parse_sample_stream(data)
    facts = {"cpus_online": "0-255", "nic": {"interface": interface or "", "device": "eth0"}}
    old = PARSE_BENCH.old_parse_interrupts  # type: ignore[attr-defined]

    def derive() -> float:
        started = time.process_time()
        derive_series(stream, facts)
        return (time.process_time() - started) / samples

    new_seconds = min(derive() for _ in range(3))
    original = snapshots.SNAPSHOT_PROBES["interrupts"]
    snapshots.SNAPSHOT_PROBES["interrupts"] = lambda host: Probe("interrupts", "cat /proc/interrupts", old)
    try:
        old_seconds = min(derive() for _ in range(3))
    finally:
        snapshots.SNAPSHOT_PROBES["interrupts"] = original
    print(f"collect: derive_series per sample of (c), {samples} samples    "
          f"old parser {old_seconds * 1000:6.1f} ms  new {new_seconds * 1000:6.1f} ms  "
          f"ratio {old_seconds / new_seconds:4.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--interface", help="the NIC for `ethtool -S` (default: the first that answers)")
    args = parser.parse_args()
    interface = args.interface or find_interface()
    print(f"{os.cpu_count()} CPUs here; ethtool -S {interface or '(no interface answers: skipped)'}; "
          f"{args.samples} samples per case; CPU time of this process and its children")
    host_side("(a) this machine's /proc + ethtool -S", SERIES_FILES, interface, args.samples)
    host_side("(b) this machine's /proc, no ethtool", SERIES_FILES, None, args.samples)
    with tempfile.NamedTemporaryFile("w", suffix="-interrupts") as big:
        big.write(PARSE_BENCH.synthetic_interrupts(256, 2000))  # type: ignore[attr-defined]
        big.flush()
        files = dict(SERIES_FILES, interrupts=big.name)
        whole = host_side("(c) 256-CPU x 2,000-IRQ /proc/interrupts + ethtool -S", files, interface,
                          args.samples)
        host_side("(d) as (c), --keep the NIC's rows", files, interface, args.samples,
                  "interrupts=" + ",".join([*map(str, range(64)), "eth0"]), baseline=whole)
        collect_side(files, interface, min(args.samples, 20))
    return 0


if __name__ == "__main__":
    sys.exit(main())
