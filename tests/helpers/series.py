"""Test helpers: small hand-made series (labctl.runfiles.series) for the line charts: a DUT
with NET_RX on CPU 0 and on isolated CPU 4, none on CPU 1 (the server's), two RX queues'
IRQs, drops on CPU 0, CPU time, and the server's received messages per second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labctl.agent import sampler
from labctl.analysis.loadseries import RECEIVED
from labctl.runfiles.series import HostSeries, SeriesLine


def host_series(times: list[float], net_rx: dict[int, list[float | None]],
                **more: list[SeriesLine]) -> HostSeries:
    """NET_RX per CPU and any other lines, one value per interval ending at `times`."""
    lines = [SeriesLine(metric="softirqs_per_s.NET_RX", cpu=c, values=v) for c, v in net_rx.items()]
    for extra in more.values():
        lines += extra
    return HostSeries(interval=1.0, samples=len(times) + 1, started=1000.0, times=times, lines=lines)


def chart_series() -> HostSeries:
    """The DUT of the module docstring over three 1 s intervals."""
    times = [1.0, 2.0, 3.0]
    return host_series(
        times, {0: [900.0, 950.0, 1000.0], 1: [0.0, 0.0, 0.0], 4: [300.0, 310.0, 320.0]},
        irqs=[SeriesLine(metric="irqs_per_s", cpu=0, queue="rx-0", values=[5.0, 6.0, 7.0]),
              SeriesLine(metric="irqs_per_s", cpu=4, queue="rx-0", values=[1.0, None, 1.0]),
              SeriesLine(metric="irqs_per_s", cpu=4, queue="rx-1", values=[2.0, 2.0, 2.0])],
        drops=[SeriesLine(metric="softnet_per_s.dropped", cpu=0, values=[0.0, 3.0, 0.0]),
               SeriesLine(metric="softnet_per_s.dropped", cpu=1, values=[0.0, 0.0, 0.0])],
        cpu=[SeriesLine(metric=f"cpu_percent.{f}", cpu=c, values=[v, v, v])
             for c in (0, 1, 4) for f, v in (("softirq", 20.0), ("idle", 70.0),
                                              ("iowait", 5.0))],
        load=[SeriesLine(metric=RECEIVED, queue="w0", values=[1900.0, 2000.0, 2100.0]),
              SeriesLine(metric=RECEIVED, values=[1900.0, 2000.0, 2100.0])])


def sample_file(tmp_path: Path, contents: list[dict[str, str]], end: bool = True,
                keep: dict[str, Any] | None = None) -> bytes:
    """A sampler's file written by the agent's own code: one sample per dict (part name ->
    text, the files it reads under tmp_path), and the end record unless `end` is False;
    `keep`: part name -> what `--keep` gave that source (labels, words)."""
    files = {name: tmp_path / name for name in contents[0]}
    sources = [sampler.Source(name, path=str(path)) for name, path in files.items()]
    for source in sources:
        source.keep = (keep or {}).get(source.name)
    out = sampler.json_line({"kind": "start", "format": "labctl-series", "version": 1, "interval": 1.0,
                             "deadline": 60, "pid": 1, "sources": list(files), "time": 0.0, "mono": 0.0})
    for seq, texts in enumerate(contents):
        for name, text in texts.items():
            files[name].write_text(text)
        out += sampler.sample_record(seq, sources)
    return out + (sampler.end_record("signal", len(contents)) if end else b"")
