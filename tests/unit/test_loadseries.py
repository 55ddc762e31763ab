"""The load generator's per-interval counts: the agent's Ticker by hand, the real agent on
loopback (every worker's counts add up to what it sent / received, each full interval near
the paced rate), the plan passing the series' interval, the derivation into series lines on
a sampler's time base (hand-computed spreads), format 1 results, and export's rows."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from labctl.agent import loadgen
from labctl.analysis.loadseries import (
    RECEIVED,
    SENT,
    WorkerCounts,
    rates_on,
    with_load,
    worker_counts,
)
from labctl.analysis.perhost import loadgen_summary
from labctl.plan.actions import Start
from labctl.reports.export import export_rows
from labctl.reports.series import render_series_markdown
from labctl.runfiles.series import HostSeries, SeriesFile, SeriesLine
from tests.helpers.loadgen_runs import free_port, run_client, server
from tests.helpers.plans import LOAD, guest_facts, plan_for
from tests.helpers.processes import stop_process

# --------------------------------------------------------------------------- the agent's Ticker


def test_ticker_counts_per_interval_and_zero_over_a_gap() -> None:
    ticker = loadgen.Ticker(1.0, origin=100.0, origin_unix=1000.0)
    assert ticker.cross(100.5, 7) == 101.0            # no boundary yet
    ticker.cross(101.2, 10)                           # 10 by the first boundary
    ticker.cross(104.1, 25)                           # a gap: boundaries 102, 103, 104 at 25
    ticker.cross(104.6, 30)
    record = ticker.record(31)
    assert record["counts"] == [10, 15, 0, 0, 6]
    assert record["started"] == 1000.0 and record["seconds"] == 1.0
    assert record["stopped"] == pytest.approx(1004.6)


def test_ticker_ending_on_a_boundary_has_no_empty_last_interval() -> None:
    ticker = loadgen.Ticker(0.5, origin=10.0, origin_unix=50.0)
    ticker.cross(10.5, 4)
    ticker.cross(11.0, 9)                              # the window's end, exactly a boundary
    assert ticker.record(9)["counts"] == [4, 5]


def test_ticker_spreads_what_came_between_two_clock_reads() -> None:
    """The UDP server reads the clock every so many datagrams: 300 between t=0.5 and t=2
    split 100 / 200 at the boundaries 1 and 2 (even over the time between the reads)."""
    ticker = loadgen.Ticker(1.0, origin=0.0, origin_unix=0.0)
    ticker.cross_spread(0.0, 0, 0.5, 50)
    assert ticker.cross_spread(0.5, 50, 2.0, 350) == 3.0
    assert ticker.record(400)["counts"] == [150, 200, 50]


def test_interval_must_be_positive(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = loadgen.main(["client", "--protocol", "udp", "--host", "127.0.0.1", "--port", "9",
                         "--rate", "10", "--duration", "1", "--interval", "0",
                         "--result", str(tmp_path / "c.json")])
    assert code == 2 and "--interval must be >= 0.01" in capsys.readouterr().err


# --------------------------------------------------------------------------- real runs


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_real_workers_count_per_interval(tmp_path: Path, protocol: str) -> None:
    """2 workers each way, 2000 msg/s for 1.5 s, 0.25 s intervals: 250 per full interval in
    total, every worker's counts add up to its sent / received."""
    port = free_port(protocol)
    with server(tmp_path, protocol, port, "--workers", "2", "--interval", "0.25") as (process, result):
        client = run_client(tmp_path, protocol, port, "--rate", "2000", "--duration", "1.5",
                            "--workers", "2", "--flows", "4", "--interval", "0.25")
        time.sleep(0.1)
        assert stop_process(process) == 0
    served = json.loads(result.read_text())
    assert client["format"] == served["format"] == 2 and client["interval"] == 0.25
    for worker in client["workers"]:
        intervals = worker["intervals"]
        assert sum(intervals["counts"]) == worker["sent"]
        assert len(intervals["counts"]) == 6                    # 1.5 s / 0.25 s
        # paced: most intervals near 250 (a stalled worker on a busy machine catches up in
        # the next one: 90 then 410 was seen; the counts still add up)
        assert 200 <= statistics.median(intervals["counts"]) <= 300, intervals["counts"]
        assert intervals["started"] == pytest.approx(client["started"], abs=0.01)
        assert intervals["stopped"] - intervals["started"] == pytest.approx(1.5, abs=0.05)
    for worker in served["workers"]:
        assert sum(worker["intervals"]["counts"]) == worker["received"]
    received = with_load(None, "server", served)
    assert received is not None
    rates = (received.line(RECEIVED) or SeriesLine(metric="", values=[])).values
    assert sum(1 for v in rates if v is not None and abs(v - 2000) < 400) >= 2, rates
    # the client's lines on a series of its own: the total spreads back to what was sent
    series = with_load(None, "client", client)
    assert series is not None and series.samples == 0 and series.interval == 0.25
    total = series.line(SENT)
    assert total is not None and series.line(SENT, queue="w1") is not None
    durations = [t - s for s, t in zip([0.0, *series.times], series.times)]
    assert sum(v * d for v, d in zip(total.values, durations)) == pytest.approx(client["sent"], rel=1e-3)
    assert statistics.median(v or 0.0 for v in total.values) == pytest.approx(2000, rel=0.15)
    # the summary keeps the counts but not the per-interval lists (series.json holds them)
    summary = loadgen_summary(served, client)
    assert summary is not None and all("intervals" not in w for w in summary["client_workers"])


def test_the_plan_passes_the_series_interval_to_both_ends() -> None:
    plan = plan_for(guest_facts(), {}, load=LOAD, snapshot={"interval": 0.5})
    starts = {a.process: a.command for a in plan.actions if isinstance(a, Start)}
    assert "--interval 0.5" in starts["server"].replace("'", "")
    assert "--interval 0.5" in starts["client"].replace("'", "")
    plan = plan_for(guest_facts(), {}, load=LOAD, snapshot={"interval": None})
    assert all("--interval" not in a.command for a in plan.actions
               if isinstance(a, Start) and a.process in ("server", "client"))


# --------------------------------------------------------------------------- derivation


def _result(role: str, workers: list[dict[str, object]]) -> dict[str, object]:
    return {"format": 2, "role": role, "workers": workers}


def _worker(started: float, counts: list[int], stopped: float, seconds: float = 1.0) -> dict[str, object]:
    return {"intervals": {"seconds": seconds, "started": started, "stopped": stopped, "counts": counts}}


def test_counts_spread_over_the_samplers_intervals_by_overlap() -> None:
    """Worker intervals [1000.5, 1001.5), [1001.5, 1002.5) of 100 each on the sampler's grid
    1000 + [0, 1, 2, 3]: 50, 100, 50 per second."""
    worker = WorkerCounts("w0", 1000.5, 1.0, 1002.5, [100, 100])
    assert rates_on([1000.0, 1001.0, 1002.0, 1003.0], worker) == pytest.approx([50.0, 100.0, 50.0])
    sampled = HostSeries(interval=1.0, samples=4, started=1000.0, times=[1.0, 2.0, 3.0], lines=[
        SeriesLine(metric="softirqs_per_s.NET_RX", cpu=0, values=[1.0, 2.0, 3.0])], sources=["x"])
    result = _result("server", [_worker(1000.5, [100, 100], 1002.5),
                                _worker(1000.0, [10, 20, 30], 1003.0)])
    series = with_load(sampled, "server", result)
    assert series is not None and series is not sampled and len(sampled.lines) == 1
    w0, w1, total = (series.line(RECEIVED, queue=q) for q in ("w0", "w1", None))
    assert w0 is not None and w0.values == [50.0, 100.0, 50.0]
    assert w1 is not None and w1.values == [10.0, 20.0, 30.0]
    assert total is not None and total.values == [60.0, 120.0, 80.0]
    assert series.sources == ["x", "loadgen"] and series.line("softirqs_per_s.NET_RX", cpu=0)


def test_a_short_last_interval_is_a_rate_over_its_own_length() -> None:
    worker = WorkerCounts("w0", 0.0, 1.0, 1.5, [100, 40])        # 40 in the last half second
    assert rates_on([0.0, 1.0, 1.5], worker) == pytest.approx([100.0, 80.0])


def test_format_1_results_and_broken_records_give_no_line() -> None:
    old = {"role": "client", "sent": 10, "workers": [{"pid": 1, "sent": 10}]}     # format 1
    assert worker_counts(old) == [] and worker_counts(None) == []
    assert with_load(None, "client", old) is None
    broken = _result("client", [{"intervals": {"seconds": 1, "counts": "x"}}])
    assert worker_counts(broken) == []
    host = HostSeries(interval=1.0, samples=2, started=5.0, times=[1.0])
    assert with_load(host, "client", old) is host


def test_export_and_the_report_section_have_the_load_lines() -> None:
    series = with_load(None, "client", _result("client", [_worker(100.0, [5, 7], 102.0)]))
    assert series is not None and series.times == [1.0, 2.0]
    run = SeriesFile(run_id="r", scenario="s", hosts={"loadgen": series})
    rows = list(export_rows([run]))
    assert ("r", "s", "loadgen", SENT, None, "w0", 2.0, 7.0) in rows
    assert ("r", "s", "loadgen", SENT, None, None, 1.0, 5.0) in rows
    text = render_series_markdown(run)
    assert "**loadgen**: no sampler; the load generator's counts per 1 s (2 intervals" in text
    assert "messages sent per second (`load.sent_per_s`, all workers): mean 6, lowest 5, highest 7" in text
