"""Integration (issue 7, "Load"): a soak of repeated runs on one netns lab, in-process.

The test brings up its own netns lab, then runs a short scenario over and over (every few
iterations the plain netns baseline, its load shortened) through ``cli.main`` in this very
process, so that labctl's own resources can be measured between runs: open file
descriptors, threads, child processes, network namespaces, processes left inside the lab's
namespaces, remote working directories, RSS and tracemalloc's traced size. Nothing of that
may grow from the end of the warm-up to the last iteration; memory may only move by noise.
Every run's data must be complete. The lab is removed at the end, also on failure.

Bounded by time: LABCTL_SOAK_SECONDS (default 150) of iterations, at least 8 of them. The
per-iteration table is printed (`pytest -s` shows it) and written as JSON to
$LABCTL_ARTIFACTS/soak.json (else into the test's tmp_path).
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import cli
from labctl.local.procs import pid_alive
from tests.helpers.labs import ROOT, Lab, lab_name, write_netns_inventory
from tests.helpers.namespaces import namespaces, netns_id, processes_in
from tests.helpers.processes import children_of

pytestmark = pytest.mark.integration

SOAK_SECONDS = float(os.environ.get("LABCTL_SOAK_SECONDS", "150"))
MIN_ITERATIONS = 8
WARMUP = 2                 # the first iterations import modules, fill caches: not measured
BASELINE_EVERY = 4         # iterations 1, 5, 9, ... run the (shortened) netns baseline
SETTLE_SECONDS = 2.0       # for what ends a moment after a run: sshd sessions, paramiko threads
KiB, MiB = 1024, 1024 * 1024
EXTERNAL_KILL = "ended before labctl stopped it (killed?)"
# Memory bounds, from measurements on this 2-CPU machine (Python 3.11, paramiko 3/fabric 3):
# - Before each sample the cyclic garbage is collected and CPython's type attribute cache is
#   emptied (sys._clear_type_cache()). That cache (4096 entries in 3.11) keeps a strong
#   reference to each attribute *name* looked up by getattr with a name built at run time
#   (executor's f"_do_{kind}", argparse's "_handle_conflict_%s", paramiko's
#   "_preferred_{}"...): without the clearing, tracemalloc shows ~3.5 KiB/iteration of such
#   60-byte strings that only level off once the cache is full (+132 KiB over 37 iterations
#   measured; bounded, not a leak). With it, labctl's traced size stays flat within ~1 KiB
#   from iteration to iteration: +4-5 KiB over 33-41 iterations, slope 0.1 KiB/iteration (a few
#   containers growing to their size once: abc caches, threading's _dangling WeakSet).
# - This test's own bookkeeping (samples, run paths, parsed summaries: 1.5-3 KiB per
#   iteration) is kept apart: "labctl's" traced memory is the sum, over the iterations, of
#   what the `cli.main` call itself left allocated (traced size after it minus before it,
#   both after a collection; its captured output subtracted). The bounds apply to that;
#   tracemalloc's whole current size is recorded and bounded too. (Telling them apart by
#   64-frame tracebacks instead doubled each iteration's time on these 2 CPUs.)
# - What a real leak would cost per iteration, measured: the two closed transports of a run
#   kept alive (SFTP used) 62 KiB, one run's collected outcome (summary, report) 44 KiB.
#   An open transport or a thread would also show in the exact fd/thread counts.
# So: a slope of 16 KiB/iteration (half of one leaked transport, >10x the noise) and 512 KiB
# over the whole soak (a leak just under the slope bound for ~32 iterations) for tracemalloc.
# RSS also sees native memory (OpenSSL contexts) that tracemalloc cannot; it grows in malloc
# arena steps and never gives pages back, so its bound is coarse: +1.5-2.1 MiB measured over
# 33-41 iterations, nearly all in the first ten (tracemalloc's own tables excluded), 8 MiB allowed.
TRACED_GROWTH_MAX = 512 * KiB      # whole soak, warm-up baseline -> last iteration
TRACED_SLOPE_MAX = 16 * KiB        # least-squares slope over the post-warm-up iterations
RSS_GROWTH_MAX = 8 * MiB           # VmRSS minus tracemalloc's own memory, same span
TRACE_FRAMES = 4                   # for the growth listing printed at the end


# ---------------------------------------------------------------------------- measuring
def _status() -> dict[str, str]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _running_in(names: list[str]) -> dict[int, str]:
    """PID -> command line of every running process in the namespaces ``names``."""
    return {pid: line.strip() for pid, line in processes_in(names).items() if pid_alive(pid)}


def _foreign_netns_threads() -> list[int]:
    """Threads of this process that are not in its main thread's network namespace (a
    connect thread that entered a lab namespace must end, never come back to the pool)."""
    mine = netns_id("/proc/self/ns/net")
    return [int(t) for t in os.listdir("/proc/self/task")
            if netns_id(f"/proc/self/task/{t}/ns/net") not in (mine, None)]


@dataclass
class Sample:
    iteration: int
    scenario: str
    seconds: float
    fds: int
    threads: int
    os_threads: int
    children: int
    namespaces: int              # every namespace on the machine (other engineers' too)
    lab_namespaces: int          # those named after this test's lab
    ns_processes: int            # processes inside the lab's namespaces besides the sshds
    workdirs: int                # /tmp/labctl-* of this test's runs still present
    rss_kib: int
    traced_kib: float | None     # tracemalloc's current size, after the warm-up
    labctl_traced_kib: float | None   # what the cli.main calls left allocated, summed
    traced_peak_kib: float | None
    tracemalloc_overhead_kib: float | None
    extra: dict[str, Any] = field(default_factory=dict)


class SoakLab(Lab):
    """The netns lab, driven by cli.main in this process with its output and memory watched."""

    def __init__(self, directory: Path, name: str):
        super().__init__(directory, name)
        self.last_output = ""
        self.retained = 0             # bytes the traced cli.main calls left allocated
        self.threads_before = set(threading.enumerate())
        self.threads_at_return = 0    # threads alive the moment cli.main returned
        self.threads_gone_ms = 0.0    # how long the extra ones took to end

    def labctl(self, *args: str) -> int:
        """cli.main in this process; its output kept (not accumulated) for failure messages."""
        self.last_output = ""
        tracing = tracemalloc.is_tracing()
        before = _settled_traced() if tracing else 0
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["-q", "-i", str(self.inventory), "--runs-dir", str(self.runs), *args])
        self.threads_at_return = threading.active_count()
        self.threads_gone_ms = self._settle_threads()
        text = out.getvalue()[-4000:] + err.getvalue()[-4000:]
        del out, err
        if tracing:
            self.retained += _settled_traced() - before - sys.getsizeof(text)
        self.last_output = text
        return code

    def _settle_threads(self) -> float:
        """Wait (up to SETTLE_SECONDS) for threads labctl started to end; milliseconds waited.

        paramiko's Transport.close() does not join its thread (stop_thread() marks the
        packetizer closed first, which ends its join loop at once): the thread ends on its
        own within its 0.1 s socket timeout. Measured: still there when `run` returned in 3
        of 8 runs, gone 5-94 ms later. It ends by itself, so it is no leak; the exact thread
        counts are taken after it (a thread still there after 2 s is counted: the test fails).
        """
        started = time.monotonic()
        while (set(threading.enumerate()) - self.threads_before
               and time.monotonic() - started < SETTLE_SECONDS):
            time.sleep(0.005)
        return round((time.monotonic() - started) * 1000, 1)

    def workdirs(self) -> list[str]:
        return sorted(p.name for p in Path("/tmp").glob(f"labctl-*{self.name}*"))


@pytest.fixture
def soak_lab(tmp_path: Path) -> Iterator[SoakLab]:
    name = lab_name("ls")
    write_netns_inventory(tmp_path, name)
    lab = SoakLab(tmp_path, name)
    try:
        yield lab
    finally:
        sshds = set(lab.sshd_pids().values()) if lab.state_file().exists() else set()
        code = lab.labctl("down")
        assert code == 0, lab.last_output
        assert lab.namespaces_gone()
        assert not [pid for pid in sshds if pid_alive(pid)], "the lab's sshds are stopped"


def _scenarios(lab: SoakLab) -> dict[str, Path]:
    """The soak's short scenario and the plain netns baseline with its load shortened; both
    file names carry the lab's name, so do run ids and remote workdirs (/tmp/labctl-<run id>)."""
    short = lab.dir / f"soak-{lab.name}.yaml"
    short.write_text(yaml.safe_dump({
        "description": "soak: 2 queues, RPS of every RX queue -> CPU 1, 1 s of load",
        # the sender's TX queues must not outnumber the DUT's RX queues: veth hands a packet
        # sent on TX queue N >= the peer's RX queue count to netif_rx, and RPS skips a packet
        # recorded on a queue the device no longer has (the run then sees no RPS at all:
        # seen in CI once, when all 4 flows hashed onto the loadgen's TX queues 2-3)
        "tuning": {"dut": {"channels": {"rx": 2, "tx": 2}, "rps": {"all": 1}},
                   "loadgen": {"channels": {"rx": 2, "tx": 2}}},
        "load": {"server": {"cpus": 1}, "client": {"rate": 2000, "duration": 1, "cpus": 0}},
        "expect": [{"check": "rps_mask", "queue": "all", "equals": 1},
                   {"check": "softnet_share", "column": "received_rps", "cpus": 1, "min": 0.5},
                   {"check": "loss", "max": 0.02},
                   {"check": "rate", "min_fraction": 0.5}],
    }))
    baseline = yaml.safe_load((ROOT / "scenarios" / "netns_baseline.yaml").read_text())
    baseline["load"]["client"]["duration"] = 1
    shortened = lab.dir / f"baseline-{lab.name}.yaml"
    shortened.write_text(yaml.safe_dump(baseline, sort_keys=False))
    return {"soak": short, "baseline": shortened}


def _check_run(run: Path, scenario: Path) -> dict[str, object]:
    """Every file a run must leave, and its summary evaluated from real data."""
    model = yaml.safe_load(scenario.read_text())
    for name in ("manifest.json", "steps.json", "summary.json", "report.md", "report.html"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, f"{run}: {name}"
    for probe in ("interrupts", "softirqs", "softnet_stat", "stat", "ethtool_stats"):
        for phase in ("before", "after"):
            assert (run / "dut" / f"{probe}.{phase}").is_file(), f"{run}: dut/{probe}.{phase}"
    for path in ("dut/loadgen/server.json", "loadgen/loadgen/client.json"):
        assert json.loads((run / path).read_text()), f"{run}: {path}"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["outcome"]["status"] == "completed", manifest["outcome"]
    assert manifest["outcome"]["restore"] == "complete", manifest["outcome"]
    steps = json.loads((run / "steps.json").read_text())
    assert steps["restore"] and all(r["status"] == "ok" for r in steps["restore"]), steps["restore"]
    summary = json.loads((run / "summary.json").read_text())
    expectations = summary["expectations"]
    assert len(expectations) == len(model["expect"]), expectations
    for e in expectations:
        assert isinstance(e["passed"], bool) and e["measured"], e
        assert not e["measured"].startswith(("no loadgen", "no queues")), e    # data missing
        assert "missing" not in e["measured"], e
    # the data is intact when every snapshot is there (then "none counted" is a measurement)
    for probe in ("softnet_stat", "softirqs", "interrupts", "stat"):
        for phase in ("before", "after"):
            assert (run / "dut" / f"{probe}.{phase}").stat().st_size > 0, (probe, phase)
    loadgen = summary["loadgen"]
    assert loadgen["achieved_rate"] > 0 and loadgen["sent"] > 0 and loadgen["received"] > 0, loadgen
    mask = [e for e in expectations if e["check"] == "rps_mask"]
    assert mask and all(e["passed"] for e in mask), mask      # read back from the host: exact
    return {"achieved_rate": round(loadgen["achieved_rate"]), "expectations": len(expectations),
            "failed": [e["check"] for e in expectations if not e["passed"]]}


def _check_disturbed(run: Path, output: str) -> dict[str, object]:
    """A run whose loadgen process someone else killed: restored completely all the same."""
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["outcome"]["status"] == "failed", manifest["outcome"]
    assert manifest["outcome"]["restore"] == "complete", manifest["outcome"]
    steps = json.loads((run / "steps.json").read_text())
    assert steps["restore"] and all(r["status"] == "ok" for r in steps["restore"]), steps["restore"]
    for log in run.glob("*/loadgen/*.log"):     # SIGKILLed from outside, not crashed by itself
        assert "Traceback" not in log.read_text(errors="replace"), log
    return {"disturbed": output.strip().splitlines()[-1]}


def _sample(lab: SoakLab, iteration: int, scenario: str, seconds: float,
            sshd_pids: set[int]) -> Sample:
    sys._clear_type_cache()           # see "Memory bounds" above
    gc.collect()
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:                       # session sshds and their shells exit asynchronously
        in_namespaces = _running_in(lab.namespaces)
        strangers = {p: c for p, c in in_namespaces.items() if p not in sshd_pids}
        if not strangers or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    status = _status()
    all_namespaces = namespaces()
    tracing = tracemalloc.is_tracing()
    current, peak = tracemalloc.get_traced_memory() if tracing else (0, 0)
    if tracing:
        tracemalloc.reset_peak()
    return Sample(
        iteration=iteration, scenario=scenario, seconds=round(seconds, 2),
        fds=len(os.listdir("/proc/self/fd")),
        threads=threading.active_count(), os_threads=int(status["Threads"]),
        children=len(children_of(os.getpid())),
        namespaces=len(all_namespaces),
        lab_namespaces=len({n for n in all_namespaces if n.startswith(f"{lab.name}-")}),
        ns_processes=len(strangers),
        workdirs=len(lab.workdirs()),
        rss_kib=int(status["VmRSS"].split()[0]),
        traced_kib=round(current / KiB, 1) if tracing else None,
        labctl_traced_kib=round(lab.retained / KiB, 1) if tracing else None,
        traced_peak_kib=round(peak / KiB, 1) if tracing else None,
        tracemalloc_overhead_kib=round(tracemalloc.get_tracemalloc_memory() / KiB, 1) if tracing else None,
        extra={"strangers": strangers, "foreign_netns_threads": _foreign_netns_threads(),
               "listeners": sorted(p for p in in_namespaces if p in sshd_pids),
               "threads_at_return": lab.threads_at_return, "threads_gone_ms": lab.threads_gone_ms},
    )


def _settled_traced() -> int:
    """tracemalloc's current size once garbage and the type cache (see above) are gone."""
    sys._clear_type_cache()
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def _growth(samples: list[Sample]) -> dict[str, float]:
    """Each measure's change from the end of the warm-up to the last iteration; slopes of
    the traced sizes (KiB per iteration, least squares over the post-warm-up iterations)."""
    if len(samples) <= WARMUP + 1:
        return {}
    base, last, measured = samples[WARMUP], samples[-1], samples[WARMUP:]
    iterations = [float(s.iteration) for s in measured]
    growth: dict[str, float] = {
        name: getattr(last, name) - getattr(base, name)
        for name in ("fds", "threads", "os_threads", "children", "namespaces", "lab_namespaces",
                     "ns_processes", "workdirs")}
    growth["iterations"] = len(measured) - 1
    growth["rss_mib"] = round((last.rss_kib - base.rss_kib) / 1024, 2)
    growth["rss_net_mib"] = round((_rss_net(last) - _rss_net(base)) / MiB, 2)
    for name in ("traced_kib", "labctl_traced_kib"):
        values = [getattr(s, name) or 0.0 for s in measured]
        growth[name] = round(values[-1] - values[0], 1)
        growth[name.replace("_kib", "_slope_kib")] = round(_slope(iterations, values), 2)
    return growth


def _rss_net(sample: Sample) -> float:
    """VmRSS in bytes without tracemalloc's own tables (which grow with what it traces)."""
    return (sample.rss_kib - (sample.tracemalloc_overhead_kib or 0.0)) * KiB


def _slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0


def _passed(sample: Sample) -> str:
    if "disturbed" in sample.extra:
        return f"disturbed: {sample.extra['disturbed']}"
    if "expectations" not in sample.extra:
        return ""
    total, failed = sample.extra["expectations"], sample.extra["failed"]
    assert isinstance(total, int) and isinstance(failed, list)
    return f"{total - len(failed)}/{total} passed" + (f" ({', '.join(failed)} failed)" if failed else "")


def _table(samples: list[Sample]) -> str:
    head = (f"{'iter':>4} {'scenario':8} {'s':>6} {'fds':>4} {'thr':>4} {'thr@ret':>7} {'child':>5} {'netns':>5} "
            f"{'labns':>5} {'nsproc':>6} {'wdirs':>5} {'RSS MiB':>8} {'traced KiB':>10} {'labctl KiB':>10}  "
            "expectations")
    rows = [head]
    for s in samples:
        traced = (f"{s.traced_kib:10.1f} {s.labctl_traced_kib:10.1f}" if s.traced_kib is not None
                  and s.labctl_traced_kib is not None else f"{'-':>10} {'-':>10}")
        at_return = f"{s.extra['threads_at_return']}/{s.extra['threads_gone_ms']:.0f}ms"
        rows.append(f"{s.iteration:>4} {s.scenario:8} {s.seconds:6.2f} {s.fds:>4} {s.threads:>4} {at_return:>7} "
                    f"{s.children:>5} {s.namespaces:>5} {s.lab_namespaces:>5} {s.ns_processes:>6} "
                    f"{s.workdirs:>5} {s.rss_kib / 1024:8.1f} {traced}  {_passed(s)}")
    return "\n".join(rows)


# ---------------------------------------------------------------------------- the soak
def test_soak_no_leaks(soak_lab: SoakLab, tmp_path: Path) -> None:
    lab = soak_lab
    scenarios = _scenarios(lab)
    assert lab.labctl("up") == 0, lab.last_output
    sshd_pids = set(lab.sshd_pids().values())
    assert len(sshd_pids) == 2 and all(pid_alive(p) for p in sshd_pids)

    samples: list[Sample] = []
    runs: list[tuple[Path, Path]] = []
    before = _sample(lab, -1, "up", 0.0, sshd_pids)
    started = time.monotonic()
    artifacts = Path(os.environ.get("LABCTL_ARTIFACTS") or tmp_path)
    first_snapshot: tracemalloc.Snapshot | None = None
    try:
        iteration = 0
        while sum(1 for s in samples if "disturbed" not in s.extra) < MIN_ITERATIONS or (
                time.monotonic() - started + samples[-1].seconds <= SOAK_SECONDS):
            if iteration == WARMUP:
                tracemalloc.start(TRACE_FRAMES)     # the allocating line and its callers
                gc.collect()
            kind = "baseline" if iteration % BASELINE_EVERY == 1 else "soak"
            known = set(lab.runs.iterdir()) if lab.runs.exists() else set()
            t0 = time.monotonic()
            code = lab.labctl("run", str(scenarios[kind]))
            seconds = time.monotonic() - t0
            new = sorted(set(lab.runs.iterdir()) - known)
            assert len(new) == 1, (new, lab.last_output)
            # 0, or 3 when an expectation failed: loss and the host-wide shares depend on what
            # else the 2 shared CPUs do (other engineers' labs starve the server on CPU 1:
            # 15-17 % loss measured in some runs). Evaluated they must be (see _check_run).
            # A loadgen process killed from outside (another test on this machine that kills
            # "a" loadgen server by its argv) fails the run with 1: labctl must still restore
            # and leak nothing, but that run's data is incomplete by design.
            disturbed = code == 1 and EXTERNAL_KILL in lab.last_output
            assert code in (0, 3) or disturbed, (code, lab.last_output)
            runs.append((new[0], scenarios[kind]))
            sample = _sample(lab, iteration, kind, seconds, sshd_pids)
            sample.extra.update(_check_disturbed(new[0], lab.last_output) if disturbed
                                else _check_run(new[0], scenarios[kind]))
            samples.append(sample)
            if iteration == WARMUP:
                first_snapshot = tracemalloc.take_snapshot()
            iteration += 1
    finally:
        soak_seconds = time.monotonic() - started
        table = _table([before, *samples])
        growth = _growth(samples)
        print(f"\nsoak of lab {lab.name}: {len(samples)} iterations in {soak_seconds:.1f} s "
              f"(thr@ret: threads when `run` returned / ms until labctl's had ended)")
        print(table)
        print("from the warm-up's end to the last iteration: "
              + ", ".join(f"{k} {v:+g}" for k, v in growth.items()))
        artifacts.mkdir(parents=True, exist_ok=True)
        (artifacts / "soak.json").write_text(json.dumps({
            "lab": lab.name, "soak_seconds": round(soak_seconds, 1), "budget_seconds": SOAK_SECONDS,
            "warmup": WARMUP, "growth": growth, "before": asdict(before),
            "samples": [asdict(s) for s in samples],
        }, indent=2, default=str) + "\n")
        if tracemalloc.is_tracing():
            if first_snapshot is not None:      # where traced memory grew, for the record
                grown = tracemalloc.take_snapshot().compare_to(first_snapshot, "traceback")
                print("tracemalloc, largest growth since the warm-up (allocating line, callers):")
                for diff in grown[:10]:
                    where = " < ".join(str(f) for f in reversed(diff.traceback[-TRACE_FRAMES:]))
                    print(f"  {diff.size_diff / KiB:+.1f} KiB {diff.count_diff:+d} blocks: {where}")
            tracemalloc.stop()

    assert len(samples) >= MIN_ITERATIONS
    base, last = samples[WARMUP], samples[-1]
    # exactly the same counts at the end as after the warm-up. Namespaces: this lab's; the
    # machine's count ("netns") is recorded, but other engineers' labs come and go in it.
    for name in ("fds", "threads", "os_threads", "children", "lab_namespaces", "ns_processes", "workdirs"):
        assert getattr(last, name) == getattr(base, name), (name, getattr(base, name), getattr(last, name), table)
    assert base.ns_processes == 0 and last.workdirs == 0 and last.lab_namespaces == 2, table
    assert base.children == 0, table
    for s in [before, *samples]:
        assert not s.extra["strangers"], (s.iteration, s.extra["strangers"])
        assert set(s.extra["listeners"]) == sshd_pids, (s.iteration, s.extra["listeners"])
        assert not s.extra["foreign_netns_threads"], (s.iteration, s.extra["foreign_netns_threads"])
    for run, _ in runs:
        assert not Path(f"/tmp/labctl-{run.name}").exists(), run.name
    # memory: bounded overall, and no trend per iteration beyond noise
    assert growth["labctl_traced_kib"] * KiB < TRACED_GROWTH_MAX, table
    assert growth["labctl_traced_slope_kib"] * KiB < TRACED_SLOPE_MAX, table
    assert growth["traced_kib"] * KiB < TRACED_GROWTH_MAX, table          # bookkeeping included
    assert growth["traced_slope_kib"] * KiB < TRACED_SLOPE_MAX, table
    assert growth["rss_net_mib"] * MiB < RSS_GROWTH_MAX, table
    # the sshd listeners are still the same processes (nothing restarted or replaced them)
    assert set(lab.sshd_pids().values()) == sshd_pids and all(pid_alive(p) for p in sshd_pids)
