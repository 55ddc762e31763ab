"""Profile analysis (pure): a run's `perf script` text -> per-CPU folded stacks, flamegraph SVGs
and the numbers the reports show (samples, event, the share of samples in the receive path's
frames per CPU), with a diagnostic instead of a crash for every kind of bad recording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labctl.analysis.fold import (
    KERNEL_SUFFIX,
    FoldOptions,
    FoldResult,
    fold_perf_script,
    format_folded,
)
from labctl.errors import RunError
from labctl.reports.flamegraph import cpu_flamegraph, event_label

# Frames of the receive path a reader looks for first (the blog's flamegraphs), inclusive share.
RX_FRAMES = ("net_rx_action", "__napi_poll", "napi_gro_receive", "get_rps_cpu", "enqueue_to_backlog",
             "net_rps_send_ipi", "process_backlog", "__netif_receive_skb_core", "napi_busy_loop", "udp_rcv", "do_idle")


@dataclass
class CpuProfile:
    cpu: int
    samples: int
    folded: str = ""                  # the stackcollapse text ("" without samples)
    svg: str = ""                     # the flamegraph ("" without samples)
    frames: dict[str, float] = field(default_factory=dict)   # RX frame -> share of samples


@dataclass
class ProfileResult:
    host: str
    cpus: list[int]
    frequency: int
    event: str
    software_clock: bool
    per_cpu: dict[int, CpuProfile]
    diagnostics: list[str]

    def to_json(self, files: dict[int, dict[str, str]]) -> dict[str, Any]:
        return {"host": self.host, "cpus": self.cpus, "frequency": self.frequency, "event": self.event,
                "software_clock": self.software_clock, "diagnostics": self.diagnostics,
                "per_cpu": {c: {"samples": p.samples, "frames": p.frames, **files.get(c, {})}
                            for c, p in self.per_cpu.items()}}


def analyse_profile(host: str, cpus: list[int], frequency: int, script: str | None) -> ProfileResult:
    """Fold the recording, one flamegraph per profiled CPU that has samples."""
    if script is None:
        return ProfileResult(host, cpus, frequency, "", False, {},
                             ["no perf script output in the run (perf did not run, or it was not fetched)"])
    result = fold_perf_script(script, FoldOptions(annotate_kernel=True))
    diagnostics = list(result.diagnostics)
    per_cpu = {cpu: _cpu_profile(result, cpu, host, diagnostics) for cpu in cpus}
    stray = sorted(set(result.cpus) - set(cpus))
    if stray:
        diagnostics.append(f"samples on CPUs that were not asked for: {stray}")
    if result.software_clock:
        diagnostics.append("no hardware PMU on this host: perf fell back to the software clock "
                           "(cpu-clock): samples are timer ticks, not cycles")
    return ProfileResult(host, cpus, frequency, event_label(result.events), result.software_clock,
                         per_cpu, diagnostics)


def _cpu_profile(result: FoldResult, cpu: int, host: str, diagnostics: list[str]) -> CpuProfile:
    stacks = result.stacks.get(cpu, {})
    samples = sum(stacks.values())
    if not samples:
        diagnostics.append(f"CPU {cpu}: no samples in the window")
        return CpuProfile(cpu, 0)
    try:
        svg = cpu_flamegraph(result, cpu, title=f"{host} CPU {cpu}")
    except RunError as exc:
        diagnostics.append(f"CPU {cpu}: no flamegraph: {exc}")
        svg = ""
    return CpuProfile(cpu, samples, format_folded(stacks), svg, rx_frame_shares(stacks))


def rx_frame_shares(stacks: dict[str, int]) -> dict[str, float]:
    """For each receive-path frame present: the share of samples whose stack holds it."""
    total = sum(stacks.values())
    shares = {}
    for name in RX_FRAMES:
        hits = sum(count for stack, count in stacks.items() if _holds(stack, name))
        if hits:
            shares[name] = hits / total
    return shares


def _holds(stack: str, name: str) -> bool:
    return any(frame.removesuffix(KERNEL_SUFFIX) == name for frame in stack.split(";"))
