"""Test helpers: the real VM lab runs of tests/fixtures/runs/ (summary.json as read back), the
summary transformed as other labs and profiles make it, and flame graphs of the captures."""

from __future__ import annotations

import json
from typing import Any

from labctl.analysis.fold import FoldOptions, fold_perf_script
from labctl.reports.flamegraph import cpu_differential, render_flamegraph
from labctl.reports.profiles import analyse_profile
from labctl.runfiles.models import ProfileSummary, Summary
from tests.helpers import FIXTURES, fixture

RUNS = FIXTURES / "runs"
BASELINE = "20261126T075117Z-baseline"
RPS_CPU1 = "20261126T075252Z-rps_cpu1"
RPS_ISOLATED = "20261126T075236Z-rps_isolated"      # no load


def raw_summary(run: str) -> dict[str, Any]:
    """summary.json as JSON holds it (string CPU keys)."""
    data: dict[str, Any] = json.loads((RUNS / run / "summary.json").read_text())
    return data


def summary(run: str) -> Summary:
    """A fixture run's summary.json, read back as `labctl collect` and `compare` read it."""
    return Summary.from_json((RUNS / run / "summary.json").read_text())


def intify(value: Any) -> Any:
    """The summary as runner.build_summary returns it: number-like keys as ints."""
    if isinstance(value, dict):
        return {(int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k): intify(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [intify(v) for v in value]
    return value


def netns_like(s: Summary) -> Summary:
    """What a netns lab's summary looks like: veth, no IRQs, host-wide counters."""
    s = s.model_copy(deep=True)
    s.provider = "netns"
    dut = s.hosts["dut"]
    dut.nic_irqs, dut.irq_affinity, dut.nic_queues = [], {}, {}
    dut.shared_kernel = True
    return s


def with_profile(s: Summary) -> tuple[Summary, dict[str, dict[int, str]]]:
    """The summary with a profile of CPU 1 (labctl.reports.profiles on the f_rps_cpu1 capture, through
    JSON as summary.json holds it) and its flame graph."""
    script = fixture("perf/guest-6.1-tcg.f_rps_cpu1.cpu1.perf_script.txt")
    result = analyse_profile("dut", [1], 99, script)
    files = {1: {"flamegraph": "dut/profile/cpu1.svg", "folded": "dut/profile/cpu1.folded"}}
    s = s.model_copy(deep=True)
    s.profile = ProfileSummary.model_validate(json.loads(json.dumps(result.to_json(files))))
    return s, {"dut": {1: result.per_cpu[1].svg}}


def guest_flamegraph(scenario: str = "f_rps_cpu1", cpu: int = 1) -> str:
    text = fixture(f"perf/guest-6.1-tcg.{scenario}.cpu{cpu}.perf_script.txt")
    stacks = fold_perf_script(text, FoldOptions(annotate_kernel=True)).stacks[cpu]
    return render_flamegraph(stacks, title=f"dut CPU {cpu} ({scenario})")


def guest_differential(cpu: int = 2) -> str:
    runs = [fold_perf_script(fixture(f"perf/guest-6.1-tcg.{name}.cpu{cpu}.perf_script.txt"),
                             FoldOptions(annotate_kernel=True)) for name in ("c_pinned", "f_rps_cpu1")]
    return cpu_differential(runs[0], runs[1], cpu, name_a="irq_pin", name_b="rps_cpu1")
