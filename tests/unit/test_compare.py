"""labctl.reports.compare: two real VM lab runs side by side (baseline vs rps_cpu1, baseline vs
rps_isolated from tests/fixtures/runs/), as data, as terminal text and as compare.html with a
differential flame graph of real perf captures (c_pinned vs f_rps_cpu1, CPU 2)."""

from __future__ import annotations

import pytest

from labctl.reports.compare import (
    NO_DIFFERENTIAL,
    Comparison,
    MetricComparison,
    compare,
    render_compare_html,
    render_compare_text,
)
from labctl.runfiles.models import Summary
from tests.helpers.pages import Html, external_urls, parse_html, row, texts
from tests.helpers.runs import (
    BASELINE,
    RPS_CPU1,
    RPS_ISOLATED,
    guest_differential,
    intify,
    netns_like,
    raw_summary,
    summary,
)


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    return compare(summary(BASELINE), summary(RPS_CPU1))


def metric(c: Comparison, key: str, host: str = "dut") -> MetricComparison:
    found = [m for m in c.hosts[host].metrics if m.key == key]
    assert len(found) == 1
    return found[0]


def test_per_cpu_side_by_side_with_difference(comparison: Comparison) -> None:
    dut = comparison.hosts["dut"]
    assert dut.cpus == list(range(8)) and dut.isolated == [4, 5, 6, 7]
    irqs = metric(comparison, "nic_irqs")
    assert irqs.a == {0: 1985, 1: 0, 2: 3705, 3: 2118, 4: 3, 5: 0, 6: 0, 7: 0}
    assert irqs.b is not None and irqs.b[2] == 4023 and irqs.b[3] == 3374
    assert irqs.diff is not None and irqs.diff[0] == -1985 and irqs.diff[2] == 318
    assert (irqs.total_a, irqs.total_b) == (7811, 7397)
    assert (metric(comparison, "net_rx").diff or {})[1] == 3476
    assert (metric(comparison, "received_rps").b or {})[1] == 3480
    assert (metric(comparison, "processed").diff or {})[2] == -8737
    assert set((metric(comparison, "dropped").diff or {}).values()) == {0}


def test_run_facts_loadgen_and_expectations(comparison: Comparison) -> None:
    a, b = comparison.a, comparison.b
    assert a.scenario == "baseline" and b.run_id == RPS_CPU1
    assert (a.passed, a.checks) == (6, 6)
    assert a.load is not None and b.load is not None
    assert b.load.load.sent == 19974
    assert a.load.short is False
    assert b.load.reached == pytest.approx(1981.45 / 2000, abs=1e-5)
    loss = [p for p in comparison.paired if p.check == "loss"]
    assert len(loss) == 1 and loss[0].a and loss[0].a.passed and loss[0].b and loss[0].b.passed
    assert [p.b for p in comparison.paired if p.check == "queue_irqs"] == [None]
    assert len(b.expectations) == 7


def test_fresh_and_read_back_summaries_compare_the_same() -> None:
    a, b = summary(BASELINE), summary(RPS_CPU1)
    fresh_a = Summary.model_validate(intify(raw_summary(BASELINE)))
    assert compare(a, b) == compare(fresh_a, b)


def test_the_same_check_twice_pairs_by_occurrence() -> None:
    a, b = summary(RPS_CPU1), summary(RPS_CPU1)
    b.expectations[2] = b.expectations[1].model_copy(update={"passed": False})   # irq_confined twice
    paired = compare(a, b).paired
    first = [p for p in paired if p.description == a.expectations[1].description]
    assert [(p.a is not None, p.b is not None and p.b.passed) for p in first] == [(True, True), (False, False)]


def test_text_reads_at_a_glance(comparison: Comparison) -> None:
    text = render_compare_text(comparison)
    assert "- A: 20261126T075117Z-baseline (baseline — 4 queues" in text
    assert "## Expectations: A 6/6 passed, B 7/7 passed" in text
    assert "| A   |      2000.0 |         1970.6 |   98.5% | 0.00% | 19,853 |" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| counter"))
    assert "CPU3 | CPU4* | CPU5* |  CPU6* | CPU7* |" in header
    net_rx = lines.index(next(line for line in lines if line.startswith("| NET_RX softirqs")))
    diff = lines[net_rx + 2].split("|")[2:-1]
    assert [c.strip() for c in diff] == ["B-A", "-2,004", "+3,476", "+3,954", "+810", "-3", "0",
                                         "+28", "0", "+6,261"]
    assert all(c.startswith(" ") and c.endswith(" ") for c in diff[1:])     # right-aligned
    table = lines[lines.index(header):lines.index(header) + 17]
    assert len({len(line) for line in table}) == 1 and table[-1].startswith("|")


def test_text_when_the_client_fell_short_and_b_has_no_load() -> None:
    a = summary(RPS_CPU1)
    assert a.loadgen is not None
    a.loadgen.achieved_rate = 900.0
    text = render_compare_text(compare(a, summary(RPS_ISOLATED)))
    assert ("**A: the client fell short: it reached only 45% of the asked rate; the load "
            "generator is the limit, not the DUT.**") in text
    assert "| B   |           - |" in text


def test_text_of_a_netns_run_against_a_vm_run() -> None:
    text = render_compare_text(compare(summary(RPS_CPU1), netns_like(summary(RPS_CPU1))))
    nic = next(line for line in text.splitlines() if line.startswith("| NIC RX IRQs"))
    assert "4,023" in nic
    lines = text.splitlines()
    i = lines.index(nic)
    assert "n/a" in lines[i + 1] and "n/a" in lines[i + 2]


def test_host_only_in_one_run() -> None:
    b = summary(RPS_CPU1)
    b.hosts["loadgen"] = b.hosts["dut"].model_copy(deep=True)
    c = compare(summary(BASELINE), b)
    assert c.hosts["loadgen"].in_a is False
    assert metric(c, "nic_irqs", "loadgen").a is None
    assert metric(c, "nic_irqs", "loadgen").diff is None
    assert "only in run B" in render_compare_text(c)
    page = parse_html(render_compare_html(c))
    assert "loadgen is only in run B" in page.text


def test_empty_summaries() -> None:
    c = compare(Summary(), Summary())
    assert c.hosts == {} and c.a.load is None and c.b.load is None
    assert "no load in either run" in render_compare_text(c)
    page = parse_html(render_compare_html(c))
    assert "none in either run" in page.text and NO_DIFFERENTIAL in page.text


# --- compare.html ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def differential() -> str:
    return guest_differential()


@pytest.fixture(scope="module")
def compare_page(comparison: Comparison, differential: str) -> Html:
    return parse_html(render_compare_html(comparison, {"dut": {2: differential}}))


def test_compare_html_is_self_contained(compare_page: Html) -> None:
    assert external_urls(compare_page) == []
    assert compare_page.find("script") == [] and compare_page.find("link") == []
    assert {"expectations", "load", "host-dut", "flamegraphs"} <= compare_page.ids()
    assert "labctl compare: baseline (A) vs rps_cpu1 (B)" in compare_page.text


def test_compare_html_heatmap(compare_page: Html) -> None:
    table = compare_page.table("compare")
    assert "heatmap" in next(c for c, _ in compare_page.tables if "compare" in c.split())
    iso = [c[2] for c in table[0] if "iso" in c[1].get("class", "").split()]
    assert iso == ["CPU4*", "CPU5*", "CPU6*", "CPU7*"]
    received_rps = [r for r in table if r[0][2] == "softnet received_rps"][0]
    diff = table[table.index(received_rps) + 2]
    assert texts(diff)[:4] == ["", "B - A", "0", "+3,480"]
    assert diff[3][1]["style"].startswith("background:rgb(250,40,40)")      # most in B: red
    nic = row(table, "NIC RX IRQs")
    assert texts(nic)[2:5] == ["1,985", "0", "3,705"]
    less = table[table.index(nic) + 2][2]
    assert less[2] == "-1,985" and less[1]["style"].startswith("background:rgb(40,40,250)")


def test_compare_html_expectations_and_load(compare_page: Html) -> None:
    expectations = compare_page.table("expectations")
    loss = row(expectations, "loss")
    assert texts(loss)[2:] == ["PASS 0.00% (19853 of 19853 received)",
                               "PASS 0.00% (19974 of 19974 received)"]
    assert [c[1].get("class") for c in row(expectations, "queue_irqs")[2:]] == ["pass", "muted"]
    load = compare_page.table("load")
    assert [r[0][2] for r in load[1:]] == ["A (udp)", "B (udp)"]
    assert "B: The client reached the asked rate: 1981 of 2000.0 msg/s (99%)." in compare_page.text


def test_compare_html_embeds_the_differential_flamegraph(compare_page: Html) -> None:
    [frame] = compare_page.find("iframe")
    assert frame["title"] == "flame graph dut CPU2"
    doc = Html(frame["srcdoc"])
    assert doc.problems == [] and len(doc.find("svg")) == 1
    assert "CPU 2: irq_pin vs rps_cpu1" in doc.text
    assert "red = larger share of samples in B" in doc.text


def test_compare_html_degrades() -> None:
    page = parse_html(render_compare_html(compare(summary(RPS_CPU1),
                                                  netns_like(summary(RPS_ISOLATED)))))
    assert "B: no load in this run" in page.text and NO_DIFFERENTIAL in page.text
    table = page.table("compare")
    nic = row(table, "NIC RX IRQs")
    assert texts(table[table.index(nic) + 1])[2] == "n/a"
