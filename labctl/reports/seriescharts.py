"""Reports (pure): which line charts a run's series (labctl.runfiles.series) makes, and of what.

Per host, one chart per metric (labctl.reports.charts.line_chart), each only with the CPUs or
queues that were active in the window (at most MAX_LINES, the busiest by mean; the caption
says how many were left out):

  NET_RX softirqs/s per CPU          softirqs_per_s.NET_RX
  NIC RX IRQs/s per queue            irqs_per_s, summed over the CPUs a queue fired on
  drops/s and time squeezes/s per CPU  softnet_per_s.dropped / .time_squeeze (omitted: none)
  softirq % and busy % per CPU       cpu_percent.softirq, 100 - idle - iowait, of the server's
                                     CPUs (when pinned) and the busy NET_RX CPUs
  messages/s in total and per worker  load.sent_per_s (client) / load.received_per_s (server);
                                     one worker: the total alone

Isolated CPUs are marked in the legend (``*``, blue bar) and in every point's title.
``overlay_charts`` draws two runs' series over each other (A solid, B dashed, one colour per
CPU): NET_RX/s on the CPUs busy in either run, and the load totals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup

from labctl.analysis.loadseries import RECEIVED, SENT
from labctl.analysis.series import busy_cpus
from labctl.reports.charts import Line, line_chart
from labctl.runfiles.series import HostSeries

MAX_LINES = 8
NET_RX = "softirqs_per_s.NET_RX"
LOAD_METRICS = ((SENT, "messages sent per second (client)"),
                (RECEIVED, "messages received per second (server)"))
Values = list[float | None]


@dataclass
class HostCharts:
    """A host's charts (caption, SVG) and notes on what has none."""

    charts: list[tuple[str, Markup]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def rate(value: float) -> str:
    return f"{value:,.0f}/s" if abs(value) >= 10 or value == 0 else f"{value:,.2f}/s"


def percent(value: float) -> str:
    return f"{value:.1f} %"


def per_cpu(data: HostSeries, metric: str) -> dict[int, Values]:
    return {line.cpu: list(line.values) for line in data.lines
            if line.metric == metric and line.cpu is not None}


def active(values: Sequence[float | None]) -> bool:
    return any(v for v in values if v is not None)


def mean(values: Sequence[float | None]) -> float:
    numbers = [v for v in values if v is not None]
    return sum(numbers) / len(numbers) if numbers else 0.0


def busiest(series: Mapping[int, Values], limit: int = MAX_LINES) -> tuple[list[int], int]:
    """The active keys (the `limit` busiest by mean, in key order) and how many were left out."""
    live = [k for k, values in series.items() if active(values)]
    kept = sorted(sorted(live, key=lambda k: -mean(series[k]))[:limit])
    return kept, len(live) - len(kept)


def cpu_lines(data: HostSeries, series: Mapping[int, Values], cpus: Sequence[int],
              isolated: Sequence[int]) -> list[Line]:
    return [Line(f"CPU{cpu}", data.times, series[cpu], colour=i, isolated=cpu in isolated)
            for i, cpu in enumerate(cpus) if cpu in series]


def _left_out(count: int, what: str) -> str:
    return f"; {count} other active {what} left out (the quietest)" if count else ""


def _per_cpu_chart(out: HostCharts, host: str, data: HostSeries, metric: str, title: str,
                   unit: str, isolated: Sequence[int], empty: str) -> None:
    series = per_cpu(data, metric)
    cpus, left = busiest(series)
    if not cpus:
        if empty:
            out.notes.append(f"{host}: {empty}")
        return
    out.charts.append((f"{host}: {title} per CPU{_left_out(left, 'CPUs')}",
                       line_chart(f"{host}: {title}", cpu_lines(data, series, cpus, isolated),
                                  unit, rate)))


def _irq_chart(out: HostCharts, host: str, data: HostSeries) -> None:
    queues: dict[str, Values] = {}
    for line in data.lines:
        if line.metric == "irqs_per_s" and line.queue:
            summed = queues.setdefault(line.queue, [None] * len(data.times))
            for i, v in enumerate(line.values):
                if v is not None:
                    summed[i] = (summed[i] or 0.0) + v
    if not queues:
        out.notes.append(f"{host}: no NIC RX IRQs in the series (none fired, or the NIC has "
                         "none: veth)")
        return
    ranked = {i: values for i, values in enumerate(queues.values())}
    keep, left = busiest(ranked)
    names = list(queues)
    lines = [Line(names[i], data.times, ranked[i], colour=n) for n, i in enumerate(keep)]
    out.charts.append((f"{host}: NIC RX IRQs per second per queue, all CPUs together"
                       f"{_left_out(left, 'queues')}",
                       line_chart(f"{host}: NIC RX IRQs per queue", lines, "IRQs per second", rate)))


def _busy_percent(data: HostSeries) -> dict[int, Values]:
    idle, iowait = per_cpu(data, "cpu_percent.idle"), per_cpu(data, "cpu_percent.iowait")
    busy: dict[int, Values] = {}
    for cpu, values in idle.items():
        waits = iowait.get(cpu, [0.0] * len(values))
        busy[cpu] = [None if v is None else max(0.0, 100.0 - v - (w or 0.0))
                     for v, w in zip(values, waits)]
    return busy


def _cpu_charts(out: HostCharts, host: str, data: HostSeries, isolated: Sequence[int],
                server_cpus: Sequence[int]) -> None:
    net_rx = [cpu for cpu, _, _ in busy_cpus(data)]
    cpus = sorted(set(server_cpus) | set(net_rx))[:MAX_LINES]
    if not cpus:
        return
    who = ("the server's CPUs and the busy NET_RX CPUs" if server_cpus
           else "the busy NET_RX CPUs")
    for title, series in (("softirq time", per_cpu(data, "cpu_percent.softirq")),
                          ("busy time (100 - idle - iowait)", _busy_percent(data))):
        lines = cpu_lines(data, series, cpus, isolated)
        if lines:
            out.charts.append((f"{host}: {title} per CPU, {who}",
                               line_chart(f"{host}: {title}", lines, "% of the CPU", percent)))


def _load_charts(out: HostCharts, host: str, data: HostSeries) -> None:
    for metric, title in LOAD_METRICS:
        found = [line for line in data.lines if line.metric == metric]
        if not found:
            continue
        workers = [line for line in found if line.queue is not None][:MAX_LINES]
        if len(workers) == 1:
            workers = []                  # one worker: its line is the total's
        lines = [Line(w.queue or "", data.times, w.values, colour=i + 1)
                 for i, w in enumerate(workers)]
        total = next((line for line in found if line.queue is None), None)
        if total is not None:
            lines.insert(0, Line("total", data.times, total.values, colour=0, bold=True))
        per_worker = ", per worker and in total" if workers else ", one worker"
        out.charts.append((f"{host}: achieved rate, {title}{per_worker}",
                           line_chart(f"{host}: {title}", lines, "messages per second", rate)))


def host_charts(host: str, data: HostSeries, isolated: Sequence[int],
                server_cpus: Sequence[int] = ()) -> HostCharts:
    """A host's charts in report.html (see the module docstring)."""
    out = HostCharts()
    _load_charts(out, host, data)
    if data.samples:
        _per_cpu_chart(out, host, data, NET_RX, "NET_RX softirqs per second", "softirqs per second",
                       isolated, "no NET_RX softirqs in the series")
        _irq_chart(out, host, data)
        _per_cpu_chart(out, host, data, "softnet_per_s.dropped", "softnet drops per second",
                       "drops per second", isolated, "no softnet drops in the window")
        _per_cpu_chart(out, host, data, "softnet_per_s.time_squeeze",
                       "softnet time squeezes per second", "squeezes per second", isolated,
                       "no time squeezes in the window")
        _cpu_charts(out, host, data, isolated, server_cpus)
    return out


def overlay_charts(host: str, a: HostSeries | None, b: HostSeries | None,
                   isolated: Sequence[int]) -> HostCharts:
    """Run A (solid) and run B (dashed) of one host, each on its own window's time."""
    out = HostCharts()
    sides = [(name, s) for name, s in (("A", a), ("B", b)) if s is not None]
    cpus = sorted({cpu for _, s in sides for cpu, _, _ in busy_cpus(s)[:4]})
    if cpus:
        lines = [Line(f"CPU{cpu} {name}", s.times, per_cpu(s, NET_RX).get(cpu, []),
                      colour=i, dashed=name == "B", isolated=cpu in isolated)
                 for i, cpu in enumerate(cpus) for name, s in sides]
        out.charts.append((f"{host}: NET_RX softirqs per second on the CPUs busy in either run "
                           "(A solid, B dashed)",
                           line_chart(f"{host}: NET_RX softirqs per second, A vs B", lines,
                                      "softirqs per second", rate)))
    for metric, title in LOAD_METRICS:
        totals = [(name, s, s.line(metric)) for name, s in sides]
        lines = [Line(f"total {name}", s.times, line.values, colour=0, dashed=name == "B")
                 for name, s, line in totals if line is not None]
        if lines:
            out.charts.append((f"{host}: {title}, A solid, B dashed",
                               line_chart(f"{host}: {title}, A vs B", lines,
                                          "messages per second", rate)))
    return out

