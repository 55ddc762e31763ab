"""Line charts over time: the renderer (values in the points' titles, gaps for None, isolated
CPUs marked, an empty chart, dashes), which charts a run's series makes in report.html (only
active CPUs/queues), and compare.html's overlays of A and B."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from labctl.analysis.loadseries import RECEIVED, SENT
from labctl.reports.charts import MAX_POINTS, Line, line_chart, m4_thinned
from labctl.reports.compare import compare, render_compare_html
from labctl.reports.html import render_html
from labctl.reports.seriescharts import host_charts, overlay_charts, rate
from labctl.runfiles.series import SeriesFile, SeriesLine
from tests.helpers.runs import BASELINE, RPS_CPU1, summary
from tests.helpers.series import chart_series, host_series

SVG = "{http://www.w3.org/2000/svg}"


def _tree(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def _point_titles(root: ElementTree.Element) -> list[str]:
    return [c.findtext(f"{SVG}title") or "" for c in root.iter(f"{SVG}circle")
            if c.get("class") == "pt"]


def test_every_value_is_in_a_point_title_and_none_breaks_the_line() -> None:
    svg = line_chart("t", [Line("CPU1", [1.0, 2.0, 3.0, 4.0], [10.0, None, 30.5, 40.0]),
                           Line("CPU4", [1.0, 2.0, 3.0, 4.0], [1234.0, 5.0, 0.0, 7.0], colour=1,
                                isolated=True)], "softirqs per second", rate)
    root = _tree(svg)                                   # well-formed XML, every text escaped
    titles = _point_titles(root)
    assert titles[:3] == ["CPU1 at 1 s: 10/s", "CPU1 at 3 s: 30/s", "CPU1 at 4 s: 40/s"]
    assert "CPU4 (isolated CPU) at 1 s: 1,234/s" in titles and len(titles) == 7
    paths = [p.get("d") or "" for p in root.iter(f"{SVG}path")]
    assert paths[0].count("M") == 2 and paths[0].count("L") == 1        # a gap, not a 0
    assert paths[1].count("M") == 1 and paths[1].count("L") == 3
    lone = [c for c in root.iter(f"{SVG}circle") if c.get("class") is None]
    assert len(lone) == 1                               # CPU1 at 1 s stands alone: a dot
    legends = [g for g in root.iter(f"{SVG}g") if (g.get("class") or "").startswith("legend")]
    assert [g.findtext(f"{SVG}text") for g in legends] == ["CPU1", "CPU4*"]
    assert legends[1].get("class") == "legend iso" and legends[1].find(f"{SVG}rect") is not None
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "softirqs per second" in texts and "seconds since the window start" in texts


def test_an_hour_at_a_tenth_of_a_second_is_thinned_but_a_one_sample_burst_stays() -> None:
    """36,000 samples: the path keeps per pixel column only the first, lowest, highest and last
    point (M4), so it draws the same picture; the one-sample burst is still its peak."""
    times = [i / 10 for i in range(36_000)]
    values: list[float | None] = [100.0 + (i % 7) for i in range(36_000)]
    values[20_001] = 90_000.0                            # a burst of drops, one sample long
    values[30_000] = None                                # and a gap
    root = _tree(line_chart("t", [Line("CPU1", times, values)], "drops per second", rate))
    (path,) = [p.get("d") or "" for p in root.iter(f"{SVG}path")]
    points = re.findall(r"[ML]([\d.]+),([\d.]+)", path)
    assert 500 < len(points) <= 4 * 600 and path.count("M") == 2
    heights = sorted(float(y) for _, y in points)
    assert heights[0] < 100 < heights[1], "the burst alone rises to the top half of the 180 px plot"
    assert len(_point_titles(root)) <= MAX_POINTS


def test_m4_keeps_first_lowest_highest_last_per_column_and_gaps() -> None:
    points: list[tuple[float, float | None]] = [(0.0, 5.0), (0.1, 9.0), (0.2, 1.0), (0.3, 4.0), (0.4, 3.0),
                                                (1.0, 2.0), (1.1, None), (1.2, 7.0)]
    assert m4_thinned(points, int) == [(0.0, 5.0), (0.1, 9.0), (0.2, 1.0), (0.4, 3.0),
                                       (1.0, 2.0), (1.1, None), (1.2, 7.0)]
    short = [(0.0, 1.0), (0.5, 2.0)]
    assert m4_thinned(short, int) == short


def test_an_empty_chart_says_so_and_dashes_are_drawn() -> None:
    root = _tree(line_chart("nothing", [Line("x", [1.0, 2.0], [None, None])], "u", rate))
    assert _point_titles(root) == [] and list(root.iter(f"{SVG}path")) == []
    assert any(t.text == "no values in the window" for t in root.iter(f"{SVG}text"))
    root = _tree(line_chart("none at all", [], "u", rate))
    assert any(t.text == "no values in the window" for t in root.iter(f"{SVG}text"))
    root = _tree(line_chart("d", [Line("B", [1.0, 2.0], [1.0, 2.0], dashed=True)], "u", rate))
    assert next(root.iter(f"{SVG}path")).get("stroke-dasharray") == "6 4"


def test_labels_are_escaped() -> None:
    svg = line_chart("<b>&", [Line("<i>", [1.0], [1.0])], "a<b", rate)
    assert "<b>" not in svg and "<i>" not in svg and "&lt;i&gt;" in svg
    _tree(svg)


def test_a_host_gets_one_chart_per_metric_with_only_its_active_cpus() -> None:
    made = host_charts("dut", chart_series(), isolated=[4, 5, 6, 7], server_cpus=[1])
    captions = [caption for caption, _ in made.charts]
    assert captions[0].startswith("dut: achieved rate, messages received per second (server)")
    assert any(c.startswith("dut: NET_RX softirqs per second per CPU") for c in captions)
    assert any(c.startswith("dut: NIC RX IRQs per second per queue") for c in captions)
    assert any(c.startswith("dut: softnet drops per second per CPU") for c in captions)
    assert "dut: no time squeezes in the window" in made.notes
    charts = dict(made.charts)
    net_rx = _tree(charts[next(c for c in captions if "NET_RX" in c)])
    assert [g.get("data-label") for g in net_rx.iter(f"{SVG}g") if g.get("class") == "line"] == [
        "CPU0", "CPU4"]                                  # CPU 1 had no NET_RX: no line
    assert "CPU4 (isolated CPU) at 2 s: 310/s" in _point_titles(net_rx)
    irqs = _tree(charts[next(c for c in captions if "IRQs" in c)])
    assert "rx-0 at 1 s: 6.00/s" in _point_titles(irqs)               # 5 + 1 over two CPUs
    assert "rx-0 at 2 s: 6.00/s" in _point_titles(irqs)               # None on CPU 4: 6 alone
    drops = _tree(charts[next(c for c in captions if "drops" in c)])
    assert [g.get("data-label") for g in drops.iter(f"{SVG}g") if g.get("class") == "line"] == ["CPU0"]
    load = _tree(charts[captions[0]])                   # one worker: the total says it all
    assert [g.get("data-label") for g in load.iter(f"{SVG}g") if g.get("class") == "line"] == ["total"]
    assert captions[0].endswith(", one worker")
    busy = _tree(charts[next(c for c in captions if "busy time" in c)])
    assert "CPU1 at 1 s: 25.0 %" in _point_titles(busy)              # the server's CPU, 100-70-5


def test_report_html_has_the_charts_and_still_no_script() -> None:
    s = summary(RPS_CPU1)
    series = SeriesFile(run_id=s.run_id, scenario=s.scenario, hosts={"dut": chart_series()},
                        missing={"loadgen": "no sample file was fetched"})
    page = render_html(s, None, series)
    assert page.count('class="line-chart"') == 6 and "<script" not in page
    assert 'id="series-dut"' in page and "no series: no sample file was fetched" in page
    assert "CPU4 (isolated CPU) at 3 s: 320/s" in page
    assert "svg.line-chart .pt:hover{fill-opacity:1}" in page
    assert 'class="line-chart"' not in render_html(s, None, None)


def test_compare_html_overlays_a_and_b() -> None:
    a, b = chart_series(), host_series([1.0, 2.0], {0: [100.0, 100.0], 4: [900.0, 950.0]}, load=[
        SeriesLine(metric=RECEIVED, values=[1000.0, 1200.0])])
    made = overlay_charts("dut", a, b, isolated=[4])
    first = _tree(dict(made.charts)[made.charts[0][0]])
    lines = {g.get("data-label"): g for g in first.iter(f"{SVG}g") if g.get("class") == "line"}
    assert set(lines) == {"CPU0 A", "CPU0 B", "CPU4 A", "CPU4 B"}
    assert lines["CPU4 B"].find(f"{SVG}path").get("stroke-dasharray") == "6 4"      # type: ignore[union-attr]
    assert lines["CPU4 A"].find(f"{SVG}path").get("stroke-dasharray") is None       # type: ignore[union-attr]
    assert "CPU4 B (isolated CPU) at 2 s: 950/s" in _point_titles(first)
    rate_chart = _tree(made.charts[1][1])
    assert {"total A at 3 s: 2,100/s", "total B at 2 s: 1,200/s"} <= set(_point_titles(rate_chart))
    comparison = compare(summary(BASELINE), summary(RPS_CPU1))
    files = (SeriesFile(run_id="a", scenario="x", hosts={"dut": a}),
             SeriesFile(run_id="b", scenario="y", hosts={"dut": b}))
    page = render_compare_html(comparison, None, files)
    assert page.count('class="line-chart"') == 2 and 'id="overlay-dut"' in page
    one_sided = render_compare_html(comparison, None, (files[0], None))
    assert "run B has no series of dut" in one_sided
    assert 'class="line-chart"' not in render_compare_html(comparison, None)
    assert re.search(r"A solid, B dashed", page)
    assert SENT not in page
