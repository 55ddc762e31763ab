"""Profiles: perf's text of a real guest recording -> per-CPU flamegraphs and receive-path
shares; the CPUs `profile: auto` picks; bad recordings give diagnostics, never a crash."""

from __future__ import annotations

from typing import Any

import pytest

from labctl.input.model import Scenario
from labctl.plan.planner import profile_cpus
from labctl.reports.markdown import render_markdown
from labctl.reports.profiles import analyse_profile, rx_frame_shares
from labctl.runfiles.models import Summary
from tests.helpers import FIXTURES

PERF = FIXTURES / "perf"
RPS_CPU1 = (PERF / "guest-6.1-tcg.f_rps_cpu1.cpu1.perf_script.txt").read_text()
RPS_CPU2 = (PERF / "guest-6.1-tcg.f_rps_cpu1.cpu2.perf_script.txt").read_text()


def test_rps_recording_shows_the_rps_path_on_each_cpu() -> None:
    result = analyse_profile("dut", [1, 2], 99, RPS_CPU1 + "\n" + RPS_CPU2)
    cpu1, cpu2 = result.per_cpu[1], result.per_cpu[2]
    assert cpu1.samples > 100 and cpu2.samples > 100
    assert "process_backlog" in cpu1.frames and "process_backlog" not in cpu2.frames
    assert "enqueue_to_backlog" in cpu2.frames and "net_rx_action" in cpu2.frames
    assert cpu1.svg.startswith("<svg") or cpu1.svg.startswith("<?xml")
    assert "process_backlog_[k] (" in cpu1.svg and cpu1.folded.count("\n") >= 7
    assert result.software_clock and result.event.startswith("cpu-clock")
    assert any("software clock" in d for d in result.diagnostics)


def test_a_cpu_without_samples_and_a_missing_recording_are_said() -> None:
    result = analyse_profile("dut", [1, 5], 99, RPS_CPU1)
    assert result.per_cpu[5].samples == 0 and result.per_cpu[5].svg == ""
    assert "CPU 5: no samples in the window" in result.diagnostics
    missing = analyse_profile("dut", [1], 99, None)
    assert missing.per_cpu == {} and "no perf script output" in missing.diagnostics[0]
    empty = analyse_profile("dut", [1], 99, "")
    assert empty.per_cpu[1].samples == 0 and "no samples" in " ".join(empty.diagnostics)


def test_rx_frame_shares_are_inclusive_and_ignore_the_kernel_suffix() -> None:
    stacks = {"swapper;do_idle_[k];net_rx_action_[k]": 3, "swapper;do_idle_[k]": 1,
              "python3;recvfrom;napi_busy_loop_[k]": 4}
    assert rx_frame_shares(stacks) == {"net_rx_action": 0.375, "napi_busy_loop": 0.5, "do_idle": 0.5}


def test_report_profile_section() -> None:
    result = analyse_profile("dut", [1, 2, 5], 99, RPS_CPU1 + "\n" + RPS_CPU2)
    files = {1: {"flamegraph": "dut/flamegraphs/cpu1.svg"}}
    summary = Summary.model_validate({
        "run_id": "r", "scenario": "s", "lab": "l", "provider": "libvirt", "labctl_version": "0",
        "started": "t", "profile": result.to_json(files),
        "hosts": {"dut": {"cpus": [1, 2, 5], "isolated": [4, 5]}}})
    report = render_markdown(summary)
    assert "## Profile (dut: perf record -g at 99 Hz on CPUs 1,2,5, event cpu-clock" in report
    row1 = next(line for line in report.splitlines() if line.startswith("| CPU1 "))
    assert "dut/flamegraphs/cpu1.svg" in row1
    assert any(line.startswith("| CPU5* |") for line in report.splitlines())
    assert "- CPU 5: no samples in the window" in report


def _facts(**nic: Any) -> Any:
    from labctl.host.facts import HostFacts, NicFacts
    base = dict(interface="eth1", exists=True, device="virtio1", channels_max={"combined": 4},
                channels_current={"combined": 4}, rx_queues=4,
                rps_cpus={q: frozenset() for q in range(4)}, rx_irqs={0: "37", 1: "39", 2: "41", 3: "43"})
    base.update(nic)
    return HostFacts(host="dut", hostname="dut", kernel="6.1", cpus_online=frozenset(range(8)),
                     cpus_possible=8, isolated=frozenset({4, 5, 6, 7}), cmdline="",
                     pid1_cpus_allowed=frozenset(range(4)), default_smp_affinity=frozenset(range(4)),
                     irq_affinity={"37": frozenset({0, 1}), "39": frozenset({2, 3}),
                                   "41": frozenset({0, 1, 2, 3}), "43": frozenset({0, 1, 2, 3})},
                     irqbalance="inactive", tuned_profile="realtime", python3="3.11", sysctls={},
                     nic=NicFacts(**base), perf="perf version 6.1")


LOAD = {"server": {"cpus": "6-7"}, "client": {"rate": 10, "duration": 1}}


@pytest.mark.parametrize("tuning, cpus", [
    ({}, {0, 1, 2, 3, 6, 7}),                                              # IRQ affinities + server
    ({"channels": {"combined": 2}, "irq_affinity": {"rx-0": 2, "rx-1": 3}, "rps": {"rx-0": 1}}, {1, 2, 3, 6, 7}),
    ({"channels": {"combined": 2}}, set(range(8))),            # ethtool -L resets virtio affinity: all
])
def test_auto_profile_cpus(tuning: dict[str, Any], cpus: set[int]) -> None:
    scenario = Scenario.model_validate({"tuning": {"dut": tuning}, "load": LOAD, "profile": {}})
    assert profile_cpus(scenario, {"dut": _facts()}) == frozenset(cpus)
    explicit = Scenario.model_validate({"load": LOAD, "profile": {"cpus": "2,7"}})
    assert profile_cpus(explicit, {"dut": _facts()}) == frozenset({2, 7})
