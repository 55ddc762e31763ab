"""`labctl compare` like with like: per-second rates, per-1,000-packet costs and shares beside
the raw counts (two runs, more runs, a sweep's cells), on the real runs of tests/fixtures/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from labctl import cli
from labctl.reports.compare import compare, render_compare_html, render_compare_text
from labctl.reports.comparemany import compare_many, render_many_html, render_many_text
from labctl.reports.likeforlike import LikeForLike, Row, like_for_like
from tests.helpers.pages import external_urls, parse_html, row, texts
from tests.helpers.runs import BASELINE, RPS_CPU1, RPS_ISOLATED, RUNS, summary
from tests.helpers.sweeps import REAL_SWEEP, make_sweep, varied


def measure(lf: LikeForLike, group: str, label: str) -> Row:
    found = [r for r in lf.rows if (r.group, r.label) == (group, label)]
    assert len(found) == 1, f"{group} {label}: {len(found)} rows"
    return found[0]


def test_rates_costs_and_shares_of_two_runs() -> None:
    a, b = summary(BASELINE), summary(RPS_CPU1)
    lf = like_for_like([("A", a.run_id, [a]), ("B", b.run_id, [b])])
    raw = measure(lf, "NET_RX softirqs", "raw count")
    assert raw.values == [7435, 13696] and raw.relative == ["", "×1.84"]
    per_s = measure(lf, "NET_RX softirqs", "per second")
    assert per_s.values == pytest.approx([7435 / a.window_seconds, 13696 / b.window_seconds])
    per_k = measure(lf, "NET_RX softirqs", "per 1,000 packets")
    assert per_k.values == pytest.approx([1000 * 7435 / 19853, 1000 * 13696 / 19974])
    assert measure(lf, "NIC RX IRQs", "per 1,000 packets").values == pytest.approx(
        [1000 * 7811 / 19853, 1000 * 7397 / 19974])
    share = measure(lf, "NET_RX softirqs", "share CPU1")
    assert share.values == pytest.approx([17 / 7435, 3493 / 13696])
    assert share.relative == ["", "+25.3 pp"]
    assert measure(lf, "softnet received_rps", "raw count").relative == ["", "new"]
    assert measure(lf, "load", "packets received").values == [19853, 19974]


def test_two_run_compare_carries_the_like_for_like_table() -> None:
    c = compare(summary(BASELINE), summary(RPS_CPU1))
    text = render_compare_text(c)
    assert "## Like with like" in text
    assert "| NET_RX softirqs      | per 1,000 packets |   374.5 |    685.7 (×1.83) |" in text
    assert "## dut: per CPU (A, B, B-A)" in text            # the per-CPU B-A tables stay
    page = parse_html(render_compare_html(c))
    cells = [texts(r) for r in page.table("like-for-like")]
    assert ["NET_RX softirqs", "raw count", "7,435", "13,696 (×1.84)"] in cells
    assert page.table("compare") and external_urls(page) == []


def test_three_runs_the_first_is_the_baseline() -> None:
    runs = [summary(r) for r in (BASELINE, RPS_CPU1, RPS_ISOLATED)]
    c = compare_many([(n, s.run_id, [s]) for n, s in zip("ABC", runs)])
    assert c.names == ["A", "B", "C"]
    rate = measure(c.like_for_like, "load", "achieved msg/s")
    assert rate.values[2] is None and rate.relative == ["", "×1.01", "n/a"]   # C: no load
    loss = next(r for r in c.checks if r.check == "loss")
    assert loss.passed == [1, 1, None] and loss.checked == [1, 1, 0]
    text = render_many_text(c)
    assert "- A is the baseline: the others are shown relative to it." in text
    assert "| loss                 | message loss (client sent vs server received)           | PASS | PASS | -    |" in text
    page = parse_html(render_many_html(c))
    assert texts(row(page.table("expectations"), "loss"))[2:] == ["PASS", "PASS", "-"]


def test_cli_compare_of_three_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(RUNS, tmp_path / "runs")
    args = ["compare", BASELINE, RPS_CPU1, RPS_ISOLATED, "--runs-dir", str(tmp_path / "runs")]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "- C: 20261126T075236Z-rps_isolated (rps_isolated)" in out
    target = tmp_path / "runs" / f"compare-{BASELINE}--and-2-more.html"
    assert f"compare.html: {target}" in out and target.is_file()
    assert cli.main([*args, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["comparison"]["names"] == ["A", "B", "C"]


def test_cli_compare_of_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / REAL_SWEEP.name
    shutil.copytree(REAL_SWEEP, sweep)
    assert cli.main(["compare", str(sweep), "--json"]) == 0
    c = json.loads(capsys.readouterr().out)["comparison"]
    assert c["names"] == ["cell 1", "cell 2"] and c["titles"] == ["rps.rx-0=none", "rps.rx-0=1"]
    rows = {(r["group"], r["label"]): r for r in c["like_for_like"]["rows"]}
    rate = rows[("load", "achieved msg/s")]
    assert rate["values"] == pytest.approx([7104.3, 4997.0], abs=0.1)    # medians of 2 each
    assert c["like_for_like"]["repetitions"] == [2, 2]
    loss = next(r for r in c["checks"] if r["check"] == "loss")
    assert (loss["passed"], loss["checked"]) == ([1, 2], [2, 2])
    assert (sweep / "compare.html").is_file()


def test_cli_compare_needs_two_runs_or_a_sweep(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(RUNS, tmp_path / "runs")
    assert cli.main(["compare", BASELINE, "--runs-dir", str(tmp_path / "runs")]) == 1
    assert "two or more runs, or one sweep directory" in capsys.readouterr().err


def test_compare_of_a_sweep_with_a_cell_not_run_yet(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    base = summary(RPS_CPU1)
    sweep = make_sweep(tmp_path, "load.client.rate", [(1000, [("passed", varied(base, 900))]),
                                                      (2000, [("pending", None)] * 2)])
    assert cli.main(["compare", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "- cell 2: rate=2000 (no ended repetition yet)" in out
    assert "| load                 | achieved msg/s    |   900.0 |    n/a |" in out
    nothing = make_sweep(tmp_path / "other", "load.client.rate", [(1000, [("pending", None)])])
    assert cli.main(["compare", str(nothing)]) == 1
    assert "has no ended repetition with a summary yet" in capsys.readouterr().err
