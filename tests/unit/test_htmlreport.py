"""labctl.reports.html: report.html of real VM lab runs (tests/fixtures/runs/, copied from the
summary.json and manifest.json of runs of the default lab: 8-CPU TCG guests, isolated CPUs 4-7)
and of summaries with parts missing; a real flame graph embedded.

The page is parsed with html.parser: every element closed in order, no external URL, the
expected sections, the heatmap with its isolated CPUs, the measured numbers.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from labctl.reports.html import (
    NO_FLAMEGRAPHS,
    NO_PROFILE,
    heat_style,
    render_html,
)
from labctl.runfiles.models import HostAnalysis, OutcomeRecord, Summary
from tests.helpers.pages import Html, external_urls, parse_html, row, texts
from tests.helpers.runs import (
    BASELINE,
    RPS_CPU1,
    RPS_ISOLATED,
    RUNS,
    guest_flamegraph,
    intify,
    netns_like,
    raw_summary,
    summary,
    with_profile,
)


@pytest.fixture(scope="module")
def flamegraph() -> str:
    return guest_flamegraph()


@pytest.fixture(scope="module")
def rps_page(flamegraph: str) -> Html:
    return parse_html(render_html(summary(RPS_CPU1), {"dut": {1: flamegraph}}))


# --- the real runs --------------------------------------------------------------------------


@pytest.mark.parametrize("run", [BASELINE, RPS_CPU1, RPS_ISOLATED])
def test_well_formed_and_self_contained(run: str, flamegraph: str) -> None:
    page = parse_html(render_html(summary(run), {"dut": {1: flamegraph}}))
    assert external_urls(page) == []
    assert page.find("script") == [] and page.find("link") == [] and page.find("img") == []
    assert {"expectations", "load", "host-dut", "steps", "flamegraphs", "preparation"} <= page.ids()


def test_header_has_the_manifest_facts(rps_page: Html) -> None:
    text = rps_page.text
    assert "labctl run 20261126T075252Z-rps_cpu1" in text
    assert "kernel 6.1.0-56-amd64 · CPUs 0-7 · isolated 4-7 · NIC eth1 (virtio_net, virtio1" in text
    assert "busy polling: busy_read 50, busy_poll 50" in text
    assert "isolcpus managed_irq,domain,4-7" in text
    assert "power off + start (provider), 78 s" in text


def test_expectations_with_pass_and_measured_values(rps_page: Html) -> None:
    table = rps_page.table("expectations")
    assert len(table) == 1 + 7
    received_rps = table[4]
    assert texts(received_rps) == ["PASS", "softnet_share", "dut softnet received_rps on CPUs 1",
                                   "100.0% of 3480", ">= 90%"]
    assert received_rps[0][1]["class"] == "pass"
    assert "Expectations: 7/7 passed" in rps_page.text


def test_nic_irq_heatmap_queue_by_cpu_with_isolated_cpus_marked(rps_page: Html) -> None:
    table = rps_page.table("nic-irqs")
    assert "heatmap" in [c for cls, _ in rps_page.tables if "nic-irqs" in cls for c in cls.split()]
    header = table[0]
    assert texts(header)[3:] == ["CPU0", "CPU1", "CPU2", "CPU3", "CPU4*", "CPU5*", "CPU6*",
                                 "CPU7*", "all"]
    iso = [c[2] for c in header if "iso" in c[1].get("class", "").split()]
    assert iso == ["CPU4*", "CPU5*", "CPU6*", "CPU7*"]
    rx0 = row(table, "rx-0")
    assert texts(rx0) == ["rx-0", "37", "2", "0", "0", "4,023", "0", "0", "0", "0", "0", "4,023"]
    assert rx0[5][1]["style"] == heat_style(4023, 4023)           # the table's largest: darkest
    assert "style" not in rx0[3][1]                                # 0: no colour
    assert all("iso" in c[1]["class"].split() for c in rx0[7:11])
    assert texts(row(table, "rx-2"))[2] == "0-3 (2)"                # affinity (effective)


def test_a_few_irqs_on_an_isolated_cpu_still_show() -> None:
    """baseline: rx-2 and rx-3 fired 2 and 1 times on the isolated CPU 4 (of ~2,000 each)."""
    table = parse_html(render_html(summary(BASELINE))).table("nic-irqs")
    cpu4 = row(table, "rx-2")[7]
    assert cpu4[2] == "2" and "iso" in cpu4[1]["class"] and cpu4[1]["style"].startswith("background")


def test_softirqs_softnet_and_cpu_time_per_cpu(rps_page: Html) -> None:
    net_rx = texts(row(rps_page.table("softirqs"), "NET_RX"))
    assert net_rx == ["NET_RX", "0", "3,493", "7,199", "2,964", "0", "0", "40", "0", "13,696",
                      "53% on CPU2"]
    softnet = rps_page.table("softnet")
    assert texts(row(softnet, "received_rps"))[1:3] == ["0", "3,480"]
    assert texts(row(softnet, "processed"))[-2:] == ["19,994", "50% on CPU1"]
    cpu_time = rps_page.table("cpu-time")
    assert [r[0][2] for r in cpu_time[1:]] == ["%irq", "%softirq", "%user", "%system", "%idle"]
    assert texts(row(cpu_time, "%softirq"))[2] == "0.8"
    assert texts(row(cpu_time, "%system"))[7] == "12.6"


def test_server_cpus_load_and_rps(rps_page: Html) -> None:
    server = rps_page.table("server-cpus")
    assert texts(server[1]) == ["CPU6*", "14.1", "1.5", "12.6", "0.0",
                                "worker 0 (PID 934, 22% of a CPU)"]
    load = texts(rps_page.table("load")[1])
    assert load == ["udp", "2000.0", "1981.5", "99.1%", "19,974", "19,974", "0.00%", "0", "0"]
    assert "The client reached the asked rate: 1981 of 2000.0 msg/s (99%)." in rps_page.text
    moved = rps_page.table("rps-moved")
    assert texts(row(moved, "NET_RX softirqs")) == ["NET_RX softirqs", "3,493", "13,696", "25.5%"]
    assert texts(row(rps_page.table("rps"), "rx-0")) == ["rx-0", "1", "1"]


def test_tuning_steps_and_restore(rps_page: Html) -> None:
    steps = rps_page.table("steps")
    assert ["dut", "ok", "RPS of rx-0 -> CPUs 1 (mask 02, was off)", "1", ""] in map(texts, steps)
    assert "Restore: 6/6 steps ok" in rps_page.text
    assert len(rps_page.table("restore")) == 1 + 6


def test_refused_step_and_warnings() -> None:
    page = parse_html(render_html(summary(RPS_ISOLATED)))
    refused = [r for r in page.table("steps") if r[1][2] == "refused-as-expected"]
    assert refused and refused[0][4][2] == "/bin/sh: 1: echo: echo: I/O error"
    assert "the kernel silently keeps only 1" in page.text


def test_string_and_int_keys_make_the_same_summary() -> None:
    """summary.json has string CPU keys; a fresh summary (runner.build_summary) int keys: the
    model holds int keys either way, so no report normalises them."""
    for run in (BASELINE, RPS_CPU1, RPS_ISOLATED):
        fresh = Summary.model_validate(intify(raw_summary(run)))
        assert fresh.hosts == summary(run).hosts
        assert render_html(fresh) == render_html(summary(run))
        assert list(fresh.hosts["dut"].softnet) == list(range(8))


def test_escapes_what_it_is_given() -> None:
    s = summary(RPS_CPU1)
    s.description = "<script>alert(1)</script> & more"
    out = render_html(s)
    assert "<script>alert" not in out and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in out


# --- load said clearly ----------------------------------------------------------------------


def test_client_that_fell_short_is_said_in_bold_red() -> None:
    s = summary(RPS_CPU1)
    assert s.loadgen is not None
    s.loadgen.achieved_rate = 1200.0
    page = parse_html(render_html(s))
    assert ("The client fell short: it reached only 1200 of the asked 2000.0 msg/s (60%): the "
            "load generator is the limit, not the DUT.") in page.text
    assert {"class": "note fail"} in page.find("p")
    reached = page.table("load")[1][3]
    assert reached[2] == "60.0%" and "fail" in reached[1]["class"]


# --- graceful degradation -------------------------------------------------------------------


def test_run_without_load() -> None:
    page = parse_html(render_html(summary(RPS_ISOLATED)))
    assert "no load in this run (the scenario has no load)" in page.text
    assert "server-cpus" not in page.ids()
    assert page.table("nic-irqs")                      # the snapshots are there


def test_netns_run_without_nic_irqs() -> None:
    page = parse_html(render_html(netns_like(summary(RPS_CPU1))))
    assert "NIC RX IRQs per queue and CPU (delta over the window): none: veth in a netns lab has " \
           "no IRQs" in page.text
    assert "host-wide (all namespaces share one kernel)" in page.text
    assert not [c for c, _ in page.tables if "nic-irqs" in c]
    assert page.table("softirqs") and page.table("softnet")


def test_host_without_snapshots() -> None:
    s = summary(RPS_CPU1)
    s.hosts["dut"] = HostAnalysis(cpus=[0, 1], isolated=[], shared_kernel=False)
    page = parse_html(render_html(s))
    for text in ("no interrupt snapshots", "Softirqs: no /proc/softirqs snapshots",
                 "softnet_stat: no snapshots", "CPU time: no /proc/stat snapshots",
                 "no CPU time for the server's CPUs"):
        assert text in page.text


def test_almost_empty_summary() -> None:
    page = parse_html(render_html(Summary(run_id="x")))
    assert "labctl run x" in page.text
    for text in ("none in this scenario", "no load in this run", "no tuning steps in this run",
                 NO_PROFILE):
        assert text in page.text
    assert external_urls(page) == []


def test_failed_run_and_failed_expectation_and_restore() -> None:
    s = summary(RPS_CPU1)
    s.error = "dut: command failed"
    s.expectations[1].passed = False
    s.restore[0].status, s.restore[0].output = "failed", "write error"
    page = parse_html(render_html(s))
    assert "The run stopped: dut: command failed" in page.text, "a run made before outcomes"
    s.outcome = OutcomeRecord(status="failed", phase="tune", checkpoint="tuning", step="set eth1 channels",
                              reason="dut: command failed", restore="complete")
    page = parse_html(render_html(s))
    assert ("The run stopped: failed in tuning (step: set eth1 channels): dut: command failed. "
            "Restore: complete.") in page.text
    assert page.table("expectations")[2][0][1]["class"] == "fail"
    assert "Restore: 5/6 steps ok" in page.text and "write error" in page.text


def test_unmapped_vectors_have_their_own_table() -> None:
    """A vector that names no queue (igb's link vector, a driver labctl does not know) is
    measured per IRQ name, with why, beside the queues' table."""
    from labctl.runfiles.models import UnmappedIrqRow
    s = summary(BASELINE)
    s.hosts["dut"].nic_unmapped_irqs = [UnmappedIrqRow(irq="24", name="data0", why="link and other causes (no queue)",
                                                        per_cpu={1: 3})]
    table = parse_html(render_html(s)).table("nic-unmapped")
    cells = row(table, "IRQ 24 data0")
    assert cells[1][2] == "link and other causes (no queue)" and cells[-1][2] == "3"
    assert not [c for c, _ in parse_html(render_html(summary(BASELINE))).tables if "nic-unmapped" in c.split()]


def test_igb_lab_facts_in_the_virtualisation_line() -> None:
    s = summary(RPS_CPU1)
    s.lab_facts = {"accelerator": "tcg", "virtio_net_backend": "qemu", "qemu_version": "10.0.2",
                   "libvirt_version": "11.3.0", "test_nic_models": {"dut": "igb", "loadgen": "virtio"}}
    assert ("virtualisation accelerator tcg, virtio-net-backend qemu, test NIC dut igb, loadgen virtio, "
            "QEMU 10.0.2, libvirt 11.3.0") in parse_html(render_html(s)).text


def test_lab_facts_when_the_summary_has_them() -> None:
    """The manifest's lab.facts (accelerator, virtio-net backend) are not in summary.json yet:
    shown when given as lab_facts, or as lab = {"name", "facts"}."""
    s = summary(RPS_CPU1)
    assert "accelerator" not in parse_html(render_html(s)).text
    lab = json.loads((RUNS / RPS_CPU1 / "manifest.json").read_text())["lab"]
    s.lab_facts = lab["facts"]
    assert "virtualisation accelerator tcg, virtio-net-backend qemu" in parse_html(render_html(s)).text
    old = dict(raw_summary(RPS_CPU1), lab=lab)        # early version 1 summaries: migrated on load
    text = parse_html(render_html(Summary.from_json(json.dumps(old)))).text
    assert "accelerator tcg" in text and "lab dev (provider libvirt)" in text


# --- flame graphs ---------------------------------------------------------------------------


def embedded(page: Html) -> list[Html]:
    return [parse_html(a["srcdoc"]) for a in page.find("iframe")]


def test_flamegraph_is_embedded_in_its_own_document(rps_page: Html, flamegraph: str) -> None:
    [frame] = rps_page.find("iframe")
    assert frame["title"] == "flame graph dut CPU1" and frame["height"] == "510"
    [doc] = embedded(rps_page)
    assert doc.find("html") == [{"data-left": "10", "data-span": "1180", "data-char": "7.080"}]
    assert len(doc.find("svg")) == 1 and "frames" in doc.ids()
    assert "dut CPU 1 (f_rps_cpu1)" in doc.text and "process_backlog_[k]" in frame["srcdoc"]
    assert frame["srcdoc"].endswith(flamegraph[flamegraph.index("<svg"):] + "</body></html>")
    assert "<?xml" not in frame["srcdoc"]
    assert "dut CPU1*" not in rps_page.text                     # CPU 1 is not isolated


def test_flamegraphs_per_host_and_cpu_in_cpu_order(flamegraph: str) -> None:
    other = guest_flamegraph("f_rps_cpu1", 2)
    graphs = {"dut": {2: other, 1: flamegraph}}
    page = parse_html(render_html(summary(RPS_CPU1), graphs))
    assert [f["title"] for f in page.find("iframe")] == ["flame graph dut CPU1",
                                                         "flame graph dut CPU2"]


@pytest.mark.parametrize("graphs", [None, {}, {"dut": {}}])
def test_no_profile_in_this_run(graphs: Any) -> None:
    page = parse_html(render_html(summary(RPS_CPU1), graphs))
    assert page.find("iframe") == [] and NO_PROFILE in page.text


def test_not_an_svg_is_not_embedded() -> None:
    page = parse_html(render_html(summary(RPS_CPU1), {"dut": {6: "no svg here"}}))
    assert page.find("iframe") == []
    assert "dut CPU6*: not an SVG document; not embedded" in page.text


def test_fixture_runs_are_the_copied_ones() -> None:
    for run in (BASELINE, RPS_CPU1, RPS_ISOLATED):
        assert {p.name for p in (RUNS / run).iterdir()} >= {"summary.json", "manifest.json"}
        assert summary(run).run_id == run


def test_profile_numbers_beside_the_flame_graphs() -> None:
    s, graphs = with_profile(summary(RPS_CPU1))
    page = parse_html(render_html(s, graphs))
    assert "dut: perf record -g at 99 Hz on CPUs 1, event cpu-clock (no PMU)" in page.text
    table = page.table("profile")
    header = texts(table[0])
    assert header[:2] == ["CPU", "samples"] and "process_backlog" in header
    cpu1 = row(table, "CPU1")
    assert cpu1[1][2] == "195" and cpu1[header.index("process_backlog")][2].endswith("%")
    assert "dropped 1 incomplete sample(s)" in page.text          # the capture's cut end
    assert len(page.find("iframe")) == 1
    assert NO_PROFILE not in page.text
    assert NO_FLAMEGRAPHS in parse_html(render_html(s)).text      # numbers, but no SVG given
    assert render_html(s, graphs) == render_html(Summary.from_json(s.to_json()), graphs)
