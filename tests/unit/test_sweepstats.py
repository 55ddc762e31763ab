"""labctl.analysis.sweepstats: median and spread, the noise rule on hand-computed cases,
flaky cells, excluded repetitions, the CPUs of interest; on the real sweep of
tests/fixtures/sweeps/ and on sweeps made from the fixture runs' summaries."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from labctl.analysis.sweepstats import (
    NO_SUMMARY,
    Spread,
    beyond_noise,
    comparable_pairs,
    mann_whitney,
    spread,
    sweep_stats,
)
from labctl.reports.sweep import read_sweep, sweep_statistics
from labctl.runfiles.sweep import CellRecord
from tests.helpers.runs import BASELINE, RPS_CPU1, summary
from tests.helpers.sweeps import REAL_SWEEP, make_sweep, varied


def s(*values: float) -> Spread:
    found = spread(values)
    assert found is not None
    return found


def test_median_range_and_quartiles() -> None:
    three = s(3, 1, 2)
    assert (three.median, three.low, three.high, three.n) == (2, 1, 3, 3)
    assert three.q1 is None and three.q3 is None          # n < 4: the range only
    five = s(5, 1, 4, 2, 3)
    assert (five.median, five.q1, five.q3) == (3, 2, 4)
    assert s(1, 4).median == 2.5
    assert spread([]) is None


def test_mann_whitney_exact_p_by_hand() -> None:
    # fully separated 4 vs 4: 2 of C(8, 4) = 70 orderings are as extreme
    assert mann_whitney([1, 2, 3, 4], [5, 6, 7, 8]) == (0, pytest.approx(2 / 70))
    assert mann_whitney([1, 2, 3], [4, 5, 6]) == (0, pytest.approx(2 / 20))
    # ties: mid-ranks 1.5 1.5 | 4 4 4 | 7 7 7; rank sum of a = 11, U = 11 - 10 = 1; sums as far
    # from the mean (18) as 11: the 3 ways to take both 1.5s and two 4s, and their 3 mirrors
    u, p = mann_whitney([1, 1, 2, 2], [2, 3, 3, 3])
    assert u == 1 and p == pytest.approx(6 / 70)
    assert mann_whitney([1, 2, 3], [1, 2, 3])[1] == 1.0


def test_noise_rule_ranges_with_three_repetitions() -> None:
    call = beyond_noise(s(10, 11, 12), s(13, 14, 15))
    assert call is not None and call.rule == "ranges do not overlap"
    assert call.p == pytest.approx(0.1) and "U = 0" in call.text
    assert beyond_noise(s(10, 11, 13), s(12, 14, 15)) is None        # ranges overlap
    assert beyond_noise(s(10, 11), s(20, 21)) is None                # n = 2: not judged


def test_noise_rule_mann_whitney_from_four() -> None:
    call = beyond_noise(s(1, 2, 3, 4), s(5, 6, 7, 8))
    assert call is not None and call.rule == "Mann-Whitney U"
    assert call.p == pytest.approx(2 / 70)
    # one overlap in 4 vs 4: U = 1, p = 2 x 2/70 = 0.057: within the noise
    assert beyond_noise(s(1, 2, 3, 4), s(3.5, 5, 6, 7)) is None
    # ranges overlap but the ranks say so: 5 vs 5, U = 1, p = 2 x 2/252
    call = beyond_noise(s(1, 2, 3, 4, 6), s(5, 7, 8, 9, 10))
    assert call is not None and call.rule == "Mann-Whitney U"
    assert Fraction(call.p).limit_denominator(1000) == Fraction(4, 252)
    assert "U = 1" in call.text


def test_real_sweep_in_progress() -> None:
    stats = sweep_statistics(REAL_SWEEP)
    one, two = stats.cells
    assert (one.used, two.used) == ([1, 2], [1, 2])
    assert one.excluded == {"pending": 1} and stats.statuses == {"failed": 1, "passed": 3,
                                                                  "pending": 2}
    assert one.flaky and not two.flaky
    assert one.flaky_checks == ["loss: message loss (client sent vs server received)"]
    rate = one.metrics["rate"]
    assert rate.values == pytest.approx((6143.8, 8064.8), abs=0.1)
    assert rate.median == pytest.approx((rate.low + rate.high) / 2)
    assert stats.cpus == [1, 2, 3] and "named" in stats.cpus_source   # irq_pin: 2, 3; rps: 1
    assert two.metrics["net_rx_share:1"].low > 0.25 > one.metrics["net_rx_share:1"].high
    assert stats.differences == []                                    # n = 2: not judged
    assert one.metrics["expectations"].values == pytest.approx((5 / 6, 1.0))


def test_excluded_statuses_and_missing_summaries_are_counted(tmp_path: Path) -> None:
    base = summary(BASELINE)
    sweep = make_sweep(tmp_path, "load.client.rate", [
        (1000, [("passed", varied(base, 900)), ("error", None), ("interrupted", None),
                ("failed", None), ("pending", None)]),
    ])
    cell = sweep_statistics(sweep).cells[0]
    assert cell.used == [1]
    assert cell.excluded == {"error": 1, "interrupted": 1, NO_SUMMARY: 1, "pending": 1}
    assert cell.metrics["rate"].values == (900.0,)


def test_differences_beyond_noise_and_flaky(tmp_path: Path) -> None:
    base = summary(RPS_CPU1)
    low = [varied(base, r, {0: 10, 1: 20, 2: 70}) for r in (1000, 1010, 1020, 1030)]
    high = [varied(base, r, {0: 10, 1: 60, 2: 30}, passed=[ok] * 7)
            for r, ok in ((1005, True), (1015, False), (1025, True), (1035, True))]
    sweep = make_sweep(tmp_path, "tuning.dut.rps.rx-0", [
        (None, [("passed", x) for x in low]),
        (1, [("passed" if x.expectations[0].passed else "failed", x) for x in high])],
        manifest_of=RPS_CPU1)
    stats = sweep_statistics(sweep)
    found = {d.series.key: d for d in stats.differences}
    # one failing repetition of 4 is flaky, not a difference (ties: p = 1)
    assert set(found) == {"net_rx_share:1", "net_rx_share:2"}
    share = found["net_rx_share:1"]
    assert (share.a, share.b, share.call.rule) == (1, 2, "Mann-Whitney U")
    assert share.call.p == pytest.approx(2 / 70)
    assert "rate" not in found                       # 1000-1030 vs 1005-1035: noise
    assert stats.cells[1].flaky and not stats.cells[0].flaky


def test_cpus_of_interest_fall_back_to_most_net_rx(tmp_path: Path) -> None:
    base = summary(BASELINE)                          # no manifest: no scenario names CPUs
    sweep = make_sweep(tmp_path, "load.client.rate", [
        (1000, [("passed", varied(base, 900, {0: 5, 1: 50, 3: 45}))])])
    stats = sweep_statistics(sweep)
    assert stats.cpus == [1, 3] and "most NET_RX" in stats.cpus_source
    assert [x.key for x in stats.series][:2] == ["net_rx_share:1", "net_rx_share:3"]


def test_metrics_chosen_by_the_sweep_and_unknown_ones_said(tmp_path: Path) -> None:
    base = summary(BASELINE)
    sweep = make_sweep(tmp_path, "load.client.rate", [(1000, [("passed", base)])],
                       metrics=["rate", "net_rx_per_1000", "bogus"])
    stats = sweep_statistics(sweep)
    assert [x.key for x in stats.series] == ["rate", "net_rx_per_1000"]
    assert stats.unknown_metrics == ["bogus"]
    assert stats.cells[0].metrics["net_rx_per_1000"].median == pytest.approx(
        1000 * 7435 / 19853)


def test_only_cells_differing_in_one_parameter_are_compared() -> None:
    cells = [CellRecord(index=i, label=str(v), values=v) for i, v in enumerate(
        [{"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 1, "b": 2}, {"a": 2, "b": 2}], 1)]
    pairs = {(a.index, b.index, axis) for a, b, axis in comparable_pairs(cells)}
    assert pairs == {(1, 2, "a"), (1, 3, "b"), (2, 4, "b"), (3, 4, "a")}


def test_all_pending_reads_without_error(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path, "load.client.rate", [(1000, [("pending", None)] * 3)])
    record, reps = read_sweep(sweep)
    stats = sweep_stats(record, reps)
    assert stats.cells[0].used == [] and stats.cells[0].metrics == {}
    assert stats.statuses == {"pending": 3}
