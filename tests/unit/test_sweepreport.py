"""labctl.reports.sweep (sweep.md, sweep.html) and `labctl collect SWEEP_DIR`: the real sweep
in progress of tests/fixtures/sweeps/ and sweeps made from the fixture runs' summaries."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest

from labctl import cli
from labctl.reports.charts import Point, spread_chart
from labctl.reports.sweep import SWEEP_HTML, SWEEP_MD, render_sweep, write_sweep_reports
from tests.helpers.pages import external_urls, parse_html, row, texts
from tests.helpers.runs import RPS_CPU1, summary
from tests.helpers.sweeps import REAL_SWEEP, make_sweep, varied

CELL_TITLE = re.compile(r'<g class="cell"><title>([^<]*)</title>')


@pytest.fixture(scope="module")
def real() -> tuple[str, str]:
    return render_sweep(REAL_SWEEP)


def test_markdown_one_row_per_cell_with_median_and_range(real: tuple[str, str]) -> None:
    md = real[0]
    assert "- status: interrupted: 4 of 6 repetitions ended (failed 1, passed 3), 2 pending" in md
    assert "- CPUs of interest: CPU1, CPU2, CPU3 (named in the scenario's tuning" in md
    assert "median over the cell's ended repetitions, [min-max] their range" in md
    rows = [line for line in md.splitlines() if re.match(r"\|\s+[12] \| (none|1) ", line)]
    assert len(rows) == 2
    assert "| 7,104 [6,144–8,065] |" in rows[0] and "**flaky**" in rows[0]
    assert "| 5/6 [5–6] " not in rows[0] and "5.5/6 [5–6]" in rows[0]     # median of 5 and 6
    assert "1 pending" in rows[1] and "| 7/7 " in rows[1] and "flaky" not in rows[1]


def test_markdown_flaky_differences_and_repetitions(real: tuple[str, str]) -> None:
    md = real[0]
    assert ("- **cell 1** (rps.rx-0=none): passed in 1 of 2 repetitions; checks that flipped: "
            "loss: message loss") in md
    assert "Rule: between two cells that differ in one swept parameter" in md
    assert "exact two-sided Mann-Whitney U test at p < 0.05" in md
    assert "not judged, fewer than 3 repetitions: cell(s) 1, 2" in md
    assert "|    1 |          3 | pending | -  " in md
    assert "runs/20261203T140404Z-irq_pin  | 1 of 5 DUT check(s) failed" in md


def test_html_charts_per_metric_with_values_on_hover(real: tuple[str, str]) -> None:
    page = parse_html(real[1])
    assert external_urls(page) == [] and not page.find("script")
    svgs = page.find("svg")
    assert len(svgs) == 7                   # 3 NET_RX shares, rate, loss, drops, expectations
    assert "charts-tuning-dut-rps-rx-0" in page.ids()
    titles = [html.unescape(t) for t in CELL_TITLE.findall(real[1])]
    assert len(titles) == 14                # 7 charts x 2 cells
    rate = next(t for t in titles if t.startswith("cell 1 (rps.rx-0=none): achieved msg/s"))
    assert rate == ("cell 1 (rps.rx-0=none): achieved msg/s median 7,104, range 6,144–8,065, "
                    "n = 2 (6,144, 8,065)")
    cells = page.table("cells")
    flaky = row(cells, "1")
    assert texts(flaky)[-1] == "flaky" and flaky[-1][1]["class"] == "fail"
    assert "loss: message loss" in flaky[-1][1]["title"]
    assert "This sweep is interrupted: 4 of 6 repetitions ended" in page.text


def test_html_differences_table_names_the_test(tmp_path: Path) -> None:
    base = summary(RPS_CPU1)
    sweep = make_sweep(tmp_path, "load.client.rate", [
        (1000, [("passed", varied(base, r)) for r in (900, 910, 920, 930)]),
        (2000, [("passed", varied(base, r)) for r in (1800, 1810, 1820, 1830)]),
        (4000, [("passed", varied(base, 3000)), ("error", None), ("pending", None)])],
        metrics=["rate"])
    md, page_text = render_sweep(sweep)
    page = parse_html(page_text)
    diffs = page.table("differences")
    assert len(diffs) == 2                  # header + 1000 vs 2000 (4000: one repetition)
    assert texts(diffs[1])[:3] == ["achieved msg/s", "load.client.rate", "1 (rate=1000)"]
    assert texts(diffs[1])[6:] == ["Mann-Whitney U", "U = 0, exact p = 0.0286 (n = 4, 4)"]
    assert "| 1 error, 1 pending |" in md
    # IQR in the hover text from 4 repetitions on
    assert any("IQR 908–922" in html.unescape(t) for t in CELL_TITLE.findall(page_text))


def test_a_sweep_that_has_not_started_renders(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path, "load.client.rate", [(1000, [("pending", None)] * 2),
                                                      (2000, [("pending", None)] * 2)])
    md, page_text = render_sweep(sweep)
    assert "0 of 4 repetitions ended, 4 pending" in md
    page = parse_html(page_text)
    assert page.find("svg") == [] and "achieved msg/s: no values yet" in page.text


def test_write_and_collect_rebuild_both_files(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / REAL_SWEEP.name
    shutil.copytree(REAL_SWEEP, sweep)
    reports = write_sweep_reports(sweep)
    assert reports.markdown == sweep / SWEEP_MD and reports.html == sweep / SWEEP_HTML
    assert reports.markdown.read_text() == render_sweep(sweep)[0]
    reports.markdown.unlink()
    assert cli.main(["collect", str(sweep)]) == 0
    assert "# labctl sweep 20261203T140404Z-sweep-irq_pin_rps" in capsys.readouterr().out
    assert (sweep / SWEEP_MD).is_file() and (sweep / SWEEP_HTML).is_file()
    assert sorted(p.name for p in sweep.iterdir()) == ["runs", SWEEP_HTML, "sweep.json", SWEEP_MD]
    assert cli.main(["collect", sweep.name, "--runs-dir", str(tmp_path), "--json"]) == 0
    assert '"sweep_dir"' in capsys.readouterr().out


def test_chart_escapes_its_texts_and_titles_every_mark() -> None:
    svg = str(spread_chart('<b>"rate"</b>', ["<script>", "a & b"], ["g<1>", "g2"],
                           [Point(0, 0, 1.0, 0.5, 2.0, None, None, "cell <1>: median 1"),
                            Point(1, 1, 3.0, 3.0, 3.0, 2.5, 3.5, "cell 2 & more")], str))
    assert "<script>" not in svg and "<b>" not in svg and "g<1>" not in svg
    assert "&lt;script&gt;" in svg and "a &amp; b" in svg
    assert CELL_TITLE.findall(svg) == ["cell &lt;1&gt;: median 1", "cell 2 &amp; more"]
    page = parse_html(f"<div>{svg}</div>")
    assert len(page.find("circle")) == 4 and page.problems == []    # 2 marks + 2 in the legend
