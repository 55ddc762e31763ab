"""Analysis and report: real guest snapshots (c_pinned, f_rps_cpu1) -> deltas -> report.md.

The raw texts are the sections of /work/shared/captures/debian12-guest-tcg/<scenario>.{before,
after}.txt as split into tests/fixtures/ (see tests/fixtures/README.md).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from labctl.analysis.expectations import evaluate
from labctl.analysis.perhost import (
    analyse_host,
    loadgen_summary,
    nic_irq_deltas,
)
from labctl.host.facts import parse_facts
from labctl.host.probes import (
    parse_interrupts,
    parse_irq_affinity_listing,
    parse_rps_listing,
)
from labctl.input.model import Scenario
from labctl.reports.html import render_html
from labctl.reports.markdown import cpu_label, render_markdown, table
from labctl.runfiles.models import ExpectationRecord, Summary
from tests.helpers import FIXTURES

FILES = {"interrupts": "interrupts/debian12-guest-8cpu", "softirqs": "softirqs/debian12-guest-8cpu",
         "softnet_stat": "softnet_stat/debian12-guest-8cpu-13col", "stat": "stat/debian12-guest-8cpu",
         "ethtool_stats": "ethtool_stats/debian12-guest-8cpu"}
# the rx-N rps_cpus lines of c_pin_affinity.txt and f_rps_cpu1_setup.txt, as the snapshot prints them
RPS = {"c_pinned": "rx-0 00\nrx-1 00\n", "f_rps_cpu1": "rx-0 02\nrx-1 00\n"}


def reader(scenario: str):
    def read(probe: str, phase: str) -> str | None:
        if probe == "rps_cpus":
            return RPS[scenario]
        if probe not in FILES:
            return None
        return (FIXTURES / f"{FILES[probe]}.{scenario}.{phase}.txt").read_text()
    return read


@pytest.fixture(scope="module")
def guest_facts() -> dict[str, Any]:
    """The guest's facts as the manifest stores them (to_json, through JSON)."""
    text = (FIXTURES / "facts" / "debian12-guest-eth1.txt").read_text()
    return json.loads(json.dumps(parse_facts("dut", text, "eth1", False).to_json()))


@pytest.fixture(scope="module")
def c_pinned(guest_facts: dict[str, Any]) -> dict[str, Any]:
    return analyse_host(reader("c_pinned"), guest_facts)


@pytest.fixture(scope="module")
def f_rps(guest_facts: dict[str, Any]) -> dict[str, Any]:
    return analyse_host(reader("f_rps_cpu1"), guest_facts)


def zeros(**counts: int) -> dict[int, int]:
    per_cpu = {cpu: 0 for cpu in range(8)}
    per_cpu.update({int(k[3:]): v for k, v in counts.items()})
    return per_cpu


# --------------------------------------------------------------------------- analysis

def test_c_pinned_cpus(c_pinned: dict[str, Any]) -> None:
    assert c_pinned["cpus"] == list(range(8))
    assert c_pinned["isolated"] == [4, 5, 6, 7]
    assert c_pinned["shared_kernel"] is False


def test_c_pinned_nic_irqs_found_by_device(c_pinned: dict[str, Any]) -> None:
    """input.0 pinned to CPU2 and input.1 to CPU3: every interrupt of the window landed there."""
    assert c_pinned["nic_irqs"] == [
        {"queue": 0, "irq": "37", "name": "virtio1-input.0", "per_cpu": zeros(cpu2=6294)},
        {"queue": 1, "irq": "39", "name": "virtio1-input.1", "per_cpu": zeros(cpu3=5750)},
        {"queue": 2, "irq": "41", "name": "virtio1-input.2", "per_cpu": zeros()},
        {"queue": 3, "irq": "43", "name": "virtio1-input.3", "per_cpu": zeros()},
    ]


def test_c_pinned_softirqs_softnet_stat_queues(c_pinned: dict[str, Any]) -> None:
    assert c_pinned["softirqs"]["NET_RX"] == zeros(cpu0=53, cpu2=6370, cpu3=5167, cpu7=63)
    processed = {cpu: row["processed"] for cpu, row in c_pinned["softnet"].items()}
    assert processed == zeros(cpu0=60, cpu2=18622, cpu3=14760, cpu7=4082)
    assert set(c_pinned["softnet"][0]) == {"processed", "dropped", "time_squeeze", "cpu_collision",
                                           "received_rps", "flow_limit", "backlog_len"}
    assert sorted(c_pinned["cpu_percent"]) == list(range(8))
    for split in c_pinned["cpu_percent"].values():
        assert sum(split.values()) == pytest.approx(100.0)
    assert c_pinned["nic_queues"]["rx-0"]["packets"] == 18455
    assert c_pinned["nic_queues"]["rx-1"]["packets"] == 18684
    assert c_pinned["rps_before"] == c_pinned["rps_after"] == {0: "", 1: ""}


def test_f_rps_cpu1(f_rps: dict[str, Any]) -> None:
    """RPS of rx-0 to CPU1: CPU1 now runs NET_RX and counts received_rps; IRQs stay on 2 and 3."""
    assert f_rps["softirqs"]["NET_RX"] == zeros(cpu0=55, cpu1=6281, cpu2=13211, cpu3=6036, cpu6=91)
    assert [row["per_cpu"] for row in f_rps["nic_irqs"][:2]] == [zeros(cpu2=7446), zeros(cpu3=6632)]
    assert f_rps["softnet"][1]["received_rps"] > 0
    assert f_rps["rps_after"] == {0: "1", 1: ""}


def test_expectations_on_real_deltas(c_pinned: dict[str, Any], f_rps: dict[str, Any]) -> None:
    scenario = Scenario.model_validate({"expect": [
        {"check": "irq_confined", "queues": ["rx-0"], "cpus": 2},
        {"check": "irq_confined", "queues": ["rx-1"], "cpus": 3},
        {"check": "irq_confined", "cpus": "4-7", "min_share": 0.01},
        {"check": "rps_mask", "queue": "rx-0", "equals": 1},
        {"check": "softirq_share", "cpus": 1, "min": 0.15}]})
    assert [r.passed for r in evaluate(scenario, {"hosts": {"dut": c_pinned}})] == [
        True, True, False, False, False]
    assert [r.passed for r in evaluate(scenario, {"hosts": {"dut": f_rps}})] == [
        True, True, False, True, True]


def test_missing_or_empty_raw_files_are_skipped(guest_facts: dict[str, Any]) -> None:
    def read(probe: str, phase: str) -> str | None:
        return None if probe != "softirqs" else ("" if phase == "after" else "x")
    result = analyse_host(read, guest_facts)
    assert result == {"cpus": list(range(8)), "isolated": [4, 5, 6, 7], "shared_kernel": False}


def test_nic_without_device_has_no_irq_rows() -> None:
    text = (FIXTURES / "interrupts/debian12-guest-8cpu.c_pinned.before.txt").read_text()
    table_ = parse_interrupts(text)
    assert nic_irq_deltas(table_, table_, device="") == []
    (mgmt,) = nic_irq_deltas(table_, table_, device="virtio0")      # the management NIC
    assert (mgmt["irq"], mgmt["name"], sum(mgmt["per_cpu"].values())) == ("34", "virtio0-input.0", 0)


def test_analysis_is_json_data(f_rps: dict[str, Any]) -> None:
    json.dumps(f_rps)


def test_parse_irq_affinity_listing_and_its_column() -> None:
    text = ("/proc/irq/37/smp_affinity_list:2\n/proc/irq/37/effective_affinity_list:2\n"
            "/proc/irq/39/smp_affinity_list:4-7\n/proc/irq/39/effective_affinity_list:5\n")
    parsed = parse_irq_affinity_listing(text)
    assert parsed == {"37": {"smp": "2", "effective": "2"}, "39": {"smp": "4-7", "effective": "5"}}
    host = {"cpus": [0], "isolated": [], "irq_affinity": parsed,
            "nic_irqs": [{"queue": 0, "irq": "37", "name": "virtio1-input.0", "per_cpu": {0: 1}},
                         {"queue": 1, "irq": "39", "name": "virtio1-input.1", "per_cpu": {0: 1}}]}
    lines = render_markdown(summary_for(host)).splitlines()
    assert any(line.startswith("| rx-0 (virtio1-input.0, IRQ 37) | 2                    |") for line in lines)
    assert any(line.startswith("| rx-1 (virtio1-input.1, IRQ 39) | 4-7 (5)              |") for line in lines)


def test_parse_rps_listing() -> None:
    assert parse_rps_listing("rx-0 02\nrx-1 00\nrx-10 ff,00000000\ngarbage\nrx-3 \n") == {
        0: frozenset({1}), 1: frozenset(), 10: frozenset(range(32, 40))}


# --------------------------------------------------------------------------- loadgen summary

CLIENT = {"protocol": "udp", "asked_rate": 2000, "achieved_rate": 1999.5, "duration": 12.0,
          "sent": 24000, "errors": 2, "workers": [{"sent": 24000}]}
SERVER = {"received": 23880, "drops": 120, "workers": [{"received": 23880}]}


def test_loadgen_loss_math() -> None:
    summary = loadgen_summary(SERVER, CLIENT)
    assert summary is not None
    assert summary["loss"] == pytest.approx(0.005)
    assert (summary["sent"], summary["received"], summary["client_errors"]) == (24000, 23880, 2)
    assert summary["asked_rate"] == 2000 and summary["achieved_rate"] == 1999.5
    assert summary["server_workers"] == [{"received": 23880}]
    json.dumps(summary)


@pytest.mark.parametrize("server,client,loss,received", [
    (SERVER, None, "no summary", None),
    (None, CLIENT, None, 0),                       # server result missing: loss unknown
    ({"received": 0}, CLIENT, 1.0, 0),
    ({"received": 24000}, CLIENT, 0.0, 24000),
    (SERVER, {**CLIENT, "sent": 0}, None, 23880),
    ({"received": 24001}, CLIENT, pytest.approx(-1 / 24000), 24001),   # duplicates: negative
])
def test_loadgen_edges(server: Any, client: Any, loss: Any, received: Any) -> None:
    summary = loadgen_summary(server, client)
    if loss == "no summary":
        assert summary is None
        return
    assert summary is not None
    assert summary["loss"] == loss and summary["received"] == received


# --------------------------------------------------------------------------- report.md

def summary_for(host: dict[str, Any], provider: str = "ssh", **more: Any) -> Summary:
    scenario = Scenario.model_validate({"load": {"client": {"rate": 2000, "duration": 12}}, "expect": [
        {"check": "irq_confined", "queues": ["rx-0"], "cpus": 2},
        {"check": "softirq_share", "cpus": 1, "min": 0.15},
        {"check": "loss", "max": 0.01}]})
    loadgen = loadgen_summary(SERVER, CLIENT)
    results = evaluate(scenario, {"hosts": {"dut": host}, "loadgen": loadgen})
    return Summary.model_validate({"run_id": "20251126T031500Z-c_pinned", "scenario": "c_pinned",
            "description": "IRQs pinned", "lab": "blog", "provider": provider,
            "labctl_version": "0.1.0", "started": "2025-11-26T03:15:00+00:00",
            "keep_tuning": False, "window_seconds": 12.04,
            "facts": {"dut": {"kernel": "6.1.0-50-amd64", "cpus_online": "0-7", "isolated": "4-7",
                              "nic": {"interface": "eth1", "driver": "virtio_net"}}},
            "expectations": [r.to_json() for r in results], "loadgen": loadgen,
            "hosts": {"dut": host}, **more})


def test_report_of_the_pinned_run(c_pinned: dict[str, Any]) -> None:
    report = render_markdown(summary_for(c_pinned))
    assert report.startswith("# labctl run 20251126T031500Z-c_pinned\n")
    assert "- scenario: **c_pinned** — IRQs pinned" in report
    assert "- dut: kernel 6.1.0-50-amd64, CPUs 0-7, isolated 4-7, NIC eth1 (virtio_net)" in report
    assert "- `*` marks isolated CPUs." in report
    assert "netns lab" not in report
    assert "## Expectations: 3/4 passed" in report     # the implicit rate check is the 4th
    lines = report.splitlines()
    header = lines.index("## Expectations: 3/4 passed") + 2
    assert [c.strip() for c in lines[header].split("|")[1:-1]] == [
        "result", "check", "what", "measured", "expected"]
    rows = lines[header + 2:header + 6]
    assert [r.split("|")[1].strip() for r in rows] == ["PASS", "FAIL", "PASS", "PASS"]
    assert "achieved client rate vs asked (implicit)" in rows[3]
    assert [c.strip() for c in rows[0].split("|")[3:5]] == ["dut NIC RX IRQs (rx-0) on CPUs 2",
                                                           "100.0% of 6294"]
    assert "0.50% (23880 of 24000 received)" in rows[2]
    assert "## dut" in lines
    irq_header = next(line for line in lines if line.startswith("| queue"))
    assert [c.strip() for c in irq_header.split("|")[1:-1]] == [
        "queue", "affinity (effective)", "CPU0", "CPU1", "CPU2", "CPU3", "CPU4*", "CPU5*", "CPU6*", "CPU7*"]
    assert any(line.startswith("| rx-0 (virtio1-input.0, IRQ 37) |") and "6,294" in line
               for line in lines)
    assert "| NET_RX  |   53 |    0 | 6,370 | 5,167 |     0 |     0 |     0 |    63 | 55% on CPU2 |" in lines
    assert "### softnet_stat per CPU (delta)" in lines and "### CPU time per CPU (%)" in lines
    assert "### NIC queue counters (delta)" in lines and "### RPS CPUs (read back)" in lines
    assert "| udp      |       2,000 |         1999.5 | 24,000 |   23,880 | 0.50% |                 120 |             2 |" in lines


def test_report_of_a_netns_run() -> None:
    host = {"cpus": [0, 1], "isolated": [], "shared_kernel": True,
            "softirqs": {"NET_RX": {0: 10, 1: 0}}, "rps_after": {0: "1"}}
    report = render_markdown(summary_for(host, provider="netns"))
    assert ("- netns lab: /proc/interrupts, /proc/softirqs, /proc/stat and softnet_stat are "
            "host-wide (all namespaces share one kernel); veth has no IRQs.") in report
    assert "NIC RX IRQs: none (veth in a netns lab has no IRQs)." in report
    assert "CPU1*" not in report and "| CPU0 | CPU1 |" in report
    assert "| rx-0  | off         |          1 |" in report


def test_report_steps_restore_warnings() -> None:
    steps = [{"index": 0, "host": "dut", "kind": "change", "status": "ok",
              "description": "RPS of rx-0 -> CPUs 1", "observed": "1"},
             {"index": 1, "host": "dut", "kind": "skip", "status": "skipped",
              "description": "irqbalance absent", "observed": None},
             {"index": 2, "host": "dut", "kind": "snapshot", "status": "ok", "description": "snapshot before"}]
    restore = [{"index": 0, "host": "dut", "kind": "restore", "status": "ok", "description": "undo: RPS",
                "output": ""},
               {"index": 1, "host": "dut", "kind": "restore", "status": "failed",
                "description": "undo: channels", "output": "netlink error"}]
    host = {"cpus": [0], "isolated": []}
    report = render_markdown(summary_for(host, steps=steps, restore=restore, keep_tuning=True,
                                         warnings=["rx-0: CPUs 6 are isolated"]))
    assert "## Tuning steps" in report and "snapshot before" not in report
    assert "| dut  | ok      | RPS of rx-0 -> CPUs 1 | 1         |" in report
    assert "## Restore: 1/2 steps ok (keep_tuning: tuning left in place)" in report
    assert "- FAILED dut: undo: channels: netlink error" in report
    assert "## Warnings\n\n- rx-0: CPUs 6 are isolated\n" in report


def test_report_without_expectations_or_load() -> None:
    summary = summary_for({"cpus": [0], "isolated": []}, expectations=[], loadgen=None)
    report = render_markdown(summary)
    assert "## Expectations\n\nnone\n" in report and "## Load" not in report
    assert report.endswith("\n") and not report.endswith("\n\n")


def test_table_and_labels() -> None:
    assert table(["a", "n"], [["x", 1234], ["yy", 5]]).splitlines() == [
        "| a  |     n |", "|----|------:|", "| x  | 1,234 |", "| yy |     5 |"]
    assert table(["h"], []).splitlines() == ["| h |", "|---|"]
    assert table(["f", "s"], [[1.25, "12%"], [3.0, "-"]]).splitlines()[2:] == [
        "| 1.2 | 12% |", "| 3.0 | -   |"]
    assert cpu_label(4, [4, 5]) == "CPU4*" and cpu_label(3, [4, 5]) == "CPU3"


def test_report_of_the_rps_run_shows_what_moved_and_the_server_cpus(f_rps: dict[str, Any]) -> None:
    server = dict(SERVER, workers=[{"received": 23880, "pid": 969, "last_cpu": 6,
                                    "cpu_time_user": 0.3, "cpu_time_system": 2.4}])
    loadgen = loadgen_summary(server, CLIENT)
    f_rps["cpu_percent"] = {c: {"idle": 100.0, "user": 0.0, "system": 0.0, "softirq": 0.0} for c in range(8)}
    f_rps["cpu_percent"][6] = {"idle": 80.0, "user": 2.0, "system": 18.0, "softirq": 0.0}
    prep = {"verified": {"tuned_profile": "realtime", "irqbalance": "inactive, disabled",
                         "isolcpus": "managed_irq,domain,4-7", "pid1_cpus_allowed": "0-3",
                         "default_smp_affinity": "0-3"},
            "sysctl_changes": {"net.core.busy_poll": {"before": "0", "after": "50"},
                               "vm.swappiness": {"before": "30", "after": "10"}},
            "reboot": {"method": "power off + start (provider)", "seconds": 84.2}}
    summary = summary_for(f_rps, loadgen=loadgen, preparation={"dut": prep},
                          server={"host": "dut", "cpus": [6, 7], "workers": 1})
    lines = render_markdown(summary).splitlines()
    assert ("- dut prepared: tuned realtime, irqbalance inactive, disabled, isolcpus=managed_irq,domain,4-7, "
            "PID 1 on CPUs 0-3, default IRQ affinity 0-3; the profile changed 2 sysctl(s) "
            "(net.core.busy_poll 50: busy polling); restarted for it (power off + start (provider), 84 s)") in lines
    assert "## Server CPUs (dut, 1 worker(s), pinned to 6,7)" in lines
    assert "| CPU6* |   20.0 |   2.0 |    18.0 |      0.0 | worker 0 (PID 969, 22% of a CPU) |" in lines
    assert "| CPU7* |    0.0 |   0.0 |     0.0 |      0.0 | -                                |" in lines
    assert "### RPS on dut: work moved to CPUs 1" in lines
    moved = {line.split("|")[1].strip(): line.split("|")[4].strip() for line in lines
             if line.startswith(("| softnet", "| NET_RX softirqs"))}
    assert moved["softnet received_rps"] == "100.0%" and moved["NET_RX softirqs"].endswith("%")
    net_rx = lines.index("### NET_RX per CPU (/proc/softirqs before and after the window)")
    assert [line.split("|")[1].strip() for line in lines[net_rx + 4:net_rx + 7]] == ["before", "after", "delta"]


def test_report_says_when_the_client_fell_short() -> None:
    slow = dict(CLIENT, achieved_rate=1200.0)
    report = render_markdown(summary_for({"cpus": [0], "isolated": []}, loadgen=loadgen_summary(SERVER, slow)))
    assert ("**The client reached only 1200 of the asked 2000 msg/s (60%): the load generator is the "
            "limit, not the DUT.**") in report
    assert "reached only" not in render_markdown(summary_for({"cpus": [0], "isolated": []}))


def test_report_from_a_summary_read_back_from_json(f_rps: dict[str, Any]) -> None:
    summary = summary_for(f_rps)
    assert render_markdown(Summary.from_json(summary.to_json())) == render_markdown(summary)


def test_an_inconclusive_run_says_so_and_names_the_generator_not_the_dut() -> None:
    host = {"cpus": [0, 1], "isolated": [], "softirqs": {"NET_RX": {0: 10, 1: 90}}}
    verdict = {"status": "inconclusive", "reason": "generator-bound: 1634/s of 2000/s (81.7%); every "
               "DUT check passed (2/2) on the 16340 messages actually sent"}
    generator = {"mode": "m", "description": "UDP from loadgen to dut, a new socket per message, 64 B, "
                 "4 worker(s)", "asked_rate": 2000, "asked_share_of_ceiling": 1.17,
                 "ceiling": {"rate": 1712.0, "measured_at": "2026-12-03T14:00:00+00:00"}}
    summary = summary_for(host, verdict=verdict, generator=generator)
    summary.expectations.append(ExpectationRecord(
        check="rate", description="achieved client rate vs asked", measured="1634/s of 2000/s (81.7%)",
        bound=">= 90% of asked", passed=False, subject="generator"))
    report = render_markdown(summary)
    assert ("**Verdict: INCONCLUSIVE (not the DUT's result): generator-bound: 1634/s of 2000/s (81.7%); "
            "every DUT check passed (2/2) on the 16340 messages actually sent.**") in report
    row = next(line for line in report.splitlines() if "| 1634/s of 2000/s (81.7%) " in line)
    assert row.startswith("| SHORT  | rate (generator)")
    assert ("Load generator: UDP from loadgen to dut, a new socket per message, 64 B, 4 worker(s); asked: "
            "2000 msg/s; its measured ceiling in this mode: 1712 msg/s (measured 2026-12-03T14:00:00+00:00); "
            "this run reached 117% of it.") in report
    html = render_html(summary, {})
    assert '<p class="note warn">Verdict: INCONCLUSIVE (not the DUT&#39;s result): generator-bound' in html
    assert '<td class="warn" title="&gt;= 90% of asked">SHORT</td><td>rate (generator)</td>' in html
