#!/usr/bin/env python3
"""Benchmark (side effects: perf record on all CPUs, perf script): per-CPU folding of perf stacks.

Run as root from the repository root:

    python3 bench/fold.py [--samples 100000] [--frequency 997] [--load burn|sleep]
    python3 bench/fold.py --perf-data FILE          (an existing `perf record -g` recording)
    python3 bench/fold.py --synthetic 100000        (no perf: an 8-CPU synthetic text)
    python3 bench/fold.py --dump DIR                (keep the recording and every output)

Records `perf record -a -g -F <frequency> -- <load>` long enough for --samples samples (the load
busy-loops on every CPU, or sleeps with --load sleep), then times, on the same recording:
  (a) labctl: one plain `perf script` (timed separately) + labctl.analysis.fold's per-CPU folding;
  (b) the blog's way: `perf script -C c report stackcollapse` once per CPU;
  (c) the floor: one whole-recording `perf script report stackcollapse`.
Checks that labctl's stacks and counts equal perf's, per CPU against (b) and summed over CPUs
against (c). Prints wall and CPU times (this process and its children; verdicts use CPU time,
the steadier one on a shared machine) and ratios; goals: (a) >= 3x faster than (b) on an
8-CPU recording, (a) <= 1.5x (c), the fold alone < 0.3 s per 100,000 samples. Then times
rendering one SVG of --render-stacks (100,000) distinct stacks (goal <= 1 s) and gives its
ratio to the fold time. With --synthetic there is no perf.data, so only the fold and the
render are timed. The recording is deleted at the end, unless --dump DIR keeps it there with
perf script's text and both sides' folded stacks (whole and per CPU). Where the stacks differ,
the first few differing stacks of each side are printed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labctl.analysis.fold import (  # noqa: E402
    FoldResult,
    fold_perf_script,
    format_folded,
    parse_folded,
)
from labctl.reports.flamegraph import render_flamegraph  # noqa: E402

GOAL_VERSUS_PER_CPU = 3.0
GOAL_VERSUS_WHOLE = 1.5
GOAL_FOLD_SECONDS_PER_100K = 0.3
GOAL_RENDER_SECONDS = 1.0
RENDER_STACKS = 100_000
SYNTHETIC_CPUS = 8
IDLE_SHARE = 0.3
STACK_TEMPLATES = 20_000

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """Wall time, and CPU time of this process and its children: on a shared machine the CPU
    time is the steadier of the two."""

    wall: float
    cpu: float

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.wall + other.wall, self.cpu + other.cpu)

    def __str__(self) -> str:
        return f"{self.wall:8.3f} s wall {self.cpu:8.3f} s CPU"


def _cpu_seconds() -> float:
    children = os.times()  # clock ticks: coarse, but only perf runs use them
    return time.process_time() + children.children_user + children.children_system


def timed(run: Callable[[], T]) -> tuple[Timing, T]:
    wall, cpu = time.perf_counter(), _cpu_seconds()
    value = run()
    return Timing(time.perf_counter() - wall, _cpu_seconds() - cpu), value


# --- recording and perf's own folding ---------------------------------------------------

BURN = """
import multiprocessing, os, sys, time
def burn(until):
    while time.monotonic() < until:
        pass
until = time.monotonic() + float(sys.argv[1])
workers = [multiprocessing.Process(target=burn, args=(until,)) for _ in range(os.cpu_count() or 1)]
for w in workers: w.start()
for w in workers: w.join()
"""


def record(path: Path, samples: int, frequency: int, load: str) -> None:
    cpus = os.cpu_count() or 1
    seconds = max(0.5, samples / (frequency * cpus))
    load_command = ["sleep", str(seconds)]
    if load == "burn":
        load_command = [sys.executable, "-c", BURN, str(seconds)]
    print(f"recording {seconds:.1f} s on {cpus} CPUs at {frequency} Hz ({load}) ...", flush=True)
    command = ["perf", "record", "-q", "-a", "-g", "-F", str(frequency), "-o", str(path), "--"]
    subprocess.run(command + load_command, check=True, stdout=subprocess.DEVNULL)


def perf_script(data: Path) -> str:
    """Plain `perf script` text, decoded as labctl's pipeline would."""
    out = subprocess.run(["perf", "script", "-i", str(data)], capture_output=True, check=True)
    return out.stdout.decode(errors="replace")


def perf_stackcollapse(data: Path, cpu: int | None = None) -> tuple[dict[str, int], str]:
    """perf's own folding (stackcollapse.py): its stacks, and its text as printed."""
    command = ["perf", "script", "report", "stackcollapse", "-i", str(data)]
    if cpu is not None:
        command += ["-C", str(cpu)]
    out = subprocess.run(command, capture_output=True, check=True)
    text = out.stdout.decode(errors="replace")
    return parse_folded(text), text


# --- synthetic input ------------------------------------------------------------------------

KERNEL_DSO = "[kernel.kallsyms]"
USER_DSOS = ["/usr/bin/iperf3", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/python3.11"]
THREADS = [
    ("swapper", 0), ("ksoftirqd/3", 31), ("kworker/u16:2-ev", 311), ("Web Content", 4242),
    ("iperf3", 5120), ("labctl-loadgen", 7001), ("CPU 1/TCG", 7190), ("sshd", 880),
]


@dataclass(frozen=True)
class Frame:
    address: int
    name: str
    dso: str


def _functions(rng: random.Random, count: int, kernel: bool) -> list[Frame]:
    base = 0xFFFFFFFF81000000 if kernel else 0x55D4A1000000
    return [
        Frame(base + rng.randrange(1 << 24), f"{'k' if kernel else 'u'}_func_{i}",
              KERNEL_DSO if kernel else rng.choice(USER_DSOS))
        for i in range(count)
    ]


def _paths(
    rng: random.Random, functions: list[Frame], count: int, depth: tuple[int, int]
) -> list[list[Frame]]:
    return [rng.sample(functions, rng.randint(*depth)) for _ in range(count)]


def _frame_line(frame: Frame, offset: int) -> str:
    return f"\t{frame.address + offset:16x} {frame.name}+0x{offset:x} ({frame.dso})"


def synthetic_perf_script(samples: int, cpus: int = SYNTHETIC_CPUS, seed: int = 1) -> str:
    """`perf script` text of a made-up -a -g recording, ~15 frames a sample: 30% idle, the
    rest from call paths of Zipf-like popularity, leaf offsets varying within the function."""
    rng = random.Random(seed)
    kernel_paths = _paths(rng, _functions(rng, 400, True), 300, (4, 10))
    user_paths = _paths(rng, _functions(rng, 600, False), 300, (4, 10))
    templates = [rng.choice(kernel_paths) + rng.choice(user_paths)
                 for _ in range(STACK_TEMPLATES)]
    popularity = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(STACK_TEMPLATES)))
    idle = _paths(rng, _functions(rng, 8, True), 1, (7, 7))[0]
    lines: list[str] = []
    for index in range(samples):
        comm, tid = THREADS[0] if rng.random() < IDLE_SHARE else rng.choice(THREADS[1:])
        stamp = 100.0 + index / (997.0 * cpus)
        lines.append(f"{comm} {tid:>6} [{index % cpus:03d}] {stamp:12.6f}:"
                     "    1003009 cpu-clock:ppp: ")
        chain = idle if comm == "swapper" else rng.choices(templates, cum_weights=popularity)[0]
        lines.append(_frame_line(chain[0], rng.randrange(0, 64, 4)))
        lines.extend(_frame_line(frame, 0x10 + frame.address % 0x90) for frame in chain[1:])
        lines.append("")
    return "\n".join(lines) + "\n"


def distinct_stacks(count: int, seed: int = 2) -> dict[str, int]:
    """`count` distinct folded stacks, 5-20 random frames deep over 600 names: a very wide
    graph, the worst case for the renderer's pruning (nearly every stack is a path of its own)."""
    rng = random.Random(seed)
    names = [f"func_{i}" for i in range(300)] + [f"kfunc_{i}_[k]" for i in range(300)]
    stacks: dict[str, int] = {}
    while len(stacks) < count:
        depth = rng.randint(5, 20)
        stack = ";".join(["app"] + [rng.choice(names) for _ in range(depth)])
        stacks[stack] = rng.randint(1, 50)
    return stacks


# --- report ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def distinct_chain_share(text: str) -> float:
    blocks = text.split("\n\n")
    chains = {block.partition("\n")[2] for block in blocks}
    return len(chains) / max(len(blocks), 1)


def print_fold(fold: Timing, result: FoldResult, text: str) -> None:
    per_100k = fold.cpu * 100_000 / max(result.total_samples, 1)  # CPU: the machine is shared
    print(f"    fold (per CPU)                          {fold}")
    print(f"        {per_100k:.3f} s CPU per 100k samples (goal < {GOAL_FOLD_SECONDS_PER_100K} s: "
          f"{verdict(per_100k < GOAL_FOLD_SECONDS_PER_100K)}); {len(text) / 1e6:.1f} MB of text; "
          f"{distinct_chain_share(text):.0%} of the samples have a call chain seen for the "
          "first time")
    for line in result.diagnostics:
        print(f"        diagnostic: {line}")


# perf's Python scripting (which stackcollapse.py runs on) names a kernel module's symbol
# "sym\0[module]", a NUL between the two: perf 6.1 reads /proc/kallsyms lines "sym\t[module]"
# whole, then cuts the module off by writing a NUL over the tab, but keeps the symbol's length
# from before the cut; the Python binding builds the name from that length, C printing stops at
# the NUL. Plain `perf script` text is printed by C: "sym+0x.. ([kernel.kallsyms])", the module
# named nowhere, so labctl cannot match it and folds such a frame to "sym". Seen in an 8-CPU
# Debian 12 guest (perf 6.1.192: ext4, jbd2, scsi_mod, sr_mod, cdrom frames); the host here has
# no modules. Only the bench's comparison strips the suffix, and it says how many stacks it
# touched; any other difference is printed.
MODULE_SUFFIX = re.compile(r"\x00\[[A-Za-z0-9_.-]+\](?=;|$)")


def without_module_names(stacks: dict[str, int]) -> tuple[dict[str, int], int]:
    """perf's stacks with the "\\0[module]" of module symbols removed, and how many stacks
    had one."""
    result: dict[str, int] = {}
    renamed = 0
    for stack, count in stacks.items():
        plain = MODULE_SUFFIX.sub("", stack)
        renamed += plain != stack
        result[plain] = result.get(plain, 0) + count
    return result, renamed


SHOWN_DIFFERENCES = 5


def printable(stack: str) -> str:
    """A stack with its unprintable characters escaped as Python does (a NUL shows as \\x00)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in stack)


@dataclass(frozen=True)
class Comparison:
    equal: bool
    verdict: str  # "equal" or "DIFFERENT (n stacks differ)", and how many stacks normalised
    details: list[str]  # the first few differing stacks of each side, when not equal
    normalised: int  # perf stacks whose module names were removed before comparing


def compare(ours: dict[str, int], theirs: dict[str, int]) -> Comparison:
    """labctl's stacks against perf's (module names removed from perf's), and when they differ
    the first few differing stacks of each side."""
    theirs, renamed = without_module_names(theirs)
    note = (f" ({renamed} of perf's stacks normalised: module symbols named 'sym\\x00[module]' "
            "by perf's Python scripting, compared as 'sym')" if renamed else "")
    if ours == theirs:
        return Comparison(True, "equal" + note, [], renamed)
    differing = sorted(key for key in set(ours) | set(theirs) if ours.get(key) != theirs.get(key))
    details: list[str] = []
    for side, stacks, other in (("labctl", ours, theirs), ("perf", theirs, ours)):
        mine = [key for key in differing if key in stacks]
        details.append(f"{len(mine)} differing stack(s) of {side}"
                       + (f", the first {min(len(mine), SHOWN_DIFFERENCES)} (count, the "
                          "other side's count, stack):" if mine else ""))
        for key in mine[:SHOWN_DIFFERENCES]:
            there = other.get(key, "absent")
            details.append(f"  {side} {stacks[key]} vs {there}: {printable(key)}")
    return Comparison(False, f"DIFFERENT ({len(differing)} stacks differ){note}", details, renamed)


def print_comparison(details: list[str]) -> None:
    for line in details:
        print(f"          {line}")


def ratio(numerator: Timing, denominator: Timing) -> Timing:
    return Timing(numerator.wall / max(denominator.wall, 1e-6),
                  numerator.cpu / max(denominator.cpu, 1e-6))


def print_ratio(label: str, ratio: Timing, goal: str, ok: bool) -> None:
    print(f"{label} {ratio.wall:6.2f} wall {ratio.cpu:6.2f} CPU  (goal {goal}) {verdict(ok)}")


def dump_text(dump: Path | None, name: str, text: Callable[[], str]) -> None:
    if dump is not None:
        (dump / name).write_text(text())


def per_cpu_runs(data: Path, result: FoldResult, dump: Path | None) -> Timing:
    """The blog's way, one perf run per CPU; each CPU's stacks checked against ours."""
    total, equal = Timing(0.0, 0.0), 0
    for cpu in result.cpus:
        timing, (theirs, text) = timed(lambda cpu=cpu: perf_stackcollapse(data, cpu))
        total += timing
        comparison = compare(result.stacks[cpu], theirs)
        equal += comparison.equal
        if not comparison.equal or comparison.normalised:
            print(f"        CPU {cpu}: {comparison.verdict}")
        print_comparison(comparison.details)
        dump_text(dump, f"stackcollapse.cpu{cpu}.folded", lambda text=text: text)
        dump_text(dump, f"labctl.cpu{cpu}.folded", lambda cpu=cpu: format_folded(result.stacks[cpu]))
    print(f"(b) perf script -C c report stackcollapse x{len(result.cpus):<3}  {total}   "
          f"labctl per CPU: {equal}/{len(result.cpus)} CPUs equal")
    return total


def bench_recording(data: Path, dump: Path | None = None) -> Timing:
    script, text = timed(lambda: perf_script(data))
    dump_text(dump, "perf_script.txt", lambda: text)
    fold, result = timed(lambda: fold_perf_script(text))
    ours = script + fold
    print(f"\n{result.total_samples:,} samples on {len(result.cpus)} CPUs, "
          f"events {', '.join(result.events)}")
    print(f"(a) labctl: perf script                     {script}")
    print_fold(fold, result, text)
    print(f"    total                                   {ours}")
    per_cpu = per_cpu_runs(data, result, dump)
    whole_timing, (whole, whole_text) = timed(lambda: perf_stackcollapse(data))
    comparison = compare(result.merged(), whole)
    print(f"(c) perf script report stackcollapse        {whole_timing}   "
          f"labctl summed over CPUs: {comparison.verdict}")
    print_comparison(comparison.details)
    dump_text(dump, "stackcollapse.folded", lambda: whole_text)
    dump_text(dump, "labctl.folded", lambda: format_folded(result.merged()))
    faster = ratio(per_cpu, ours)
    versus_whole = ratio(ours, whole_timing)
    print()
    # (b) reads the whole recording once per CPU: its cost grows with the CPU count.
    cpus = len(result.cpus)
    goal = f">= {GOAL_VERSUS_PER_CPU} on 8 CPUs" + ("" if cpus >= 8 else f"; here {cpus}")
    print_ratio("(b)/(a), times faster:", faster, goal, faster.cpu >= GOAL_VERSUS_PER_CPU)
    print_ratio("(a)/(c):              ", versus_whole, f"<= {GOAL_VERSUS_WHOLE}",
                versus_whole.cpu <= GOAL_VERSUS_WHOLE)
    return fold


def bench_synthetic(samples: int) -> Timing:
    generated, text = timed(lambda: synthetic_perf_script(samples))
    print(f"\nsynthetic perf script: {samples:,} samples on {SYNTHETIC_CPUS} CPUs "
          f"(generated in {generated.wall:.1f} s)")
    fold, result = timed(lambda: fold_perf_script(text))
    print_fold(fold, result, text)
    return fold


def bench_render(fold: Timing, count: int) -> None:
    stacks = distinct_stacks(count)
    timing, svg = timed(lambda: render_flamegraph(stacks, title="bench", subtitle="distinct"))
    print(f"\nrender {count:,} distinct stacks: {timing}, {len(svg) / 1e6:.1f} MB of SVG, "
          f"{svg.count('<g>'):,} frames drawn")
    ok = timing.cpu <= GOAL_RENDER_SECONDS
    print(f"    goal <= {GOAL_RENDER_SECONDS} s CPU: {verdict(ok)}; "
          f"{timing.cpu / max(fold.cpu, 1e-6):.1f}x the fold's CPU time")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--perf-data", type=Path, help="use this recording instead of recording")
    source.add_argument("--synthetic", type=int, metavar="N", help="fold N synthetic samples")
    parser.add_argument("--samples", type=int, default=100_000, help="samples to record")
    parser.add_argument("--frequency", type=int, default=997)
    parser.add_argument("--load", choices=["burn", "sleep"], default="burn")
    parser.add_argument("--render-stacks", type=int, default=RENDER_STACKS)
    parser.add_argument("--dump", type=Path, metavar="DIR",
                        help="keep the recording and write perf script's text, perf's and "
                        "labctl's folded stacks (whole and per CPU) into DIR")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    dump = args.dump
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
    if args.synthetic:
        fold = bench_synthetic(args.synthetic)
    elif shutil.which("perf") is None:
        print("bench/fold.py needs perf (apt-get install linux-perf), or use --synthetic N",
              file=sys.stderr)
        return 2
    elif args.perf_data:
        fold = bench_recording(args.perf_data, dump)
    elif dump is not None:
        record(dump / "perf.data", args.samples, args.frequency, args.load)
        fold = bench_recording(dump / "perf.data", dump)
    else:
        with tempfile.TemporaryDirectory(prefix="labctl-bench-fold-") as directory:
            data = Path(directory) / "perf.data"
            record(data, args.samples, args.frequency, args.load)
            fold = bench_recording(data)
    bench_render(fold, args.render_stacks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
