"""Reports (pure): runs (or sweep cells) compared like with like: per-second rates, costs per
1,000 packets and per-CPU shares beside the raw counts.

Two runs whose load differed (irq_pin's 12,540 vs rps_cpu1's 16,454 messages) have raw
counter differences that mix the load's difference with the tuning's. Per column (a run, or a
sweep cell: then the median over its repetitions) and per counter of the measured host (the
server's): the raw delta over the snapshot window, the same per second of that window, per
1,000 packets the server received, and the per-CPU shares. Every column after the first is also
shown relative to the first (the baseline): a ratio (×1.31) for counts, rates and costs, a
difference in percentage points for shares and loss.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from labctl.reports import html as hr
from labctl.reports.access import nic_irqs_per_cpu, softirq_per_cpu, softnet_per_cpu
from labctl.reports.html import Cell, Note, Section, Table
from labctl.reports.markdown import table
from labctl.runfiles.models import HostAnalysis, Summary

SHARE_SHOWN = 0.05           # a CPU's share row is shown when it reaches this in some column

PerCpuOf = Callable[[HostAnalysis], "dict[int, int] | None"]
COUNTERS: tuple[tuple[str, PerCpuOf], ...] = (
    ("NIC RX IRQs", nic_irqs_per_cpu),
    ("NET_RX softirqs", lambda d: softirq_per_cpu(d, "NET_RX")),
    ("softnet processed", lambda d: softnet_per_cpu(d, "processed")),
    ("softnet received_rps", lambda d: softnet_per_cpu(d, "received_rps")),
    ("softnet dropped", lambda d: softnet_per_cpu(d, "dropped")),
)
SHARED_COUNTERS = ("NIC RX IRQs", "NET_RX softirqs")


@dataclass(frozen=True)
class Row:
    group: str                      # "load" or the counter's label
    label: str                      # "raw count", "per second", "per 1,000 packets", "share CPU1"
    unit: str                       # count | rate | ratio | share | seconds
    values: list[float | None]      # one per column
    relative: list[str]             # vs the first column ("" for it, "n/a" without data)


@dataclass(frozen=True)
class LikeForLike:
    names: list[str]                # column names ("A", "B", ... or cell labels)
    titles: list[str]               # run ids or cell descriptions
    repetitions: list[int]          # summaries behind each column (1 for a run)
    rows: list[Row]


Extract = Callable[[Summary], "float | None"]


def like_for_like(columns: Sequence[tuple[str, str, Sequence[Summary]]]) -> LikeForLike:
    """columns: (name, title, summaries); a column's value is the median over its summaries."""
    def row(group: str, label: str, unit: str, extract: Extract) -> Row:
        values = [_median([v for s in sums if (v := extract(s)) is not None])
                  for _, _, sums in columns]
        return Row(group, label, unit, values, _relative(values, unit))

    rows = [row("load", "window (s)", "seconds", lambda s: s.window_seconds or None),
            row("load", "achieved msg/s", "rate",
                lambda s: s.loadgen.achieved_rate if s.loadgen else None),
            row("load", "packets received", "count",
                lambda s: s.loadgen.received if s.loadgen else None),
            row("load", "loss", "share", lambda s: s.loadgen.loss if s.loadgen else None)]
    all_summaries = [s for _, _, sums in columns for s in sums]
    for label, per_cpu in COUNTERS:
        if not any(_per_cpu(s, per_cpu) for s in all_summaries):
            continue
        rows += [row(label, "raw count", "count", _total(per_cpu)),
                 row(label, "per second", "rate", _per_second(per_cpu)),
                 row(label, "per 1,000 packets", "ratio", _per_kilo_packet(per_cpu))]
        if label in SHARED_COUNTERS:
            rows += _share_rows(label, per_cpu, columns, row)
    return LikeForLike([n for n, _, _ in columns], [t for _, t, _ in columns],
                       [len(sums) for _, _, sums in columns], [r for r in rows if any(
                           v is not None for v in r.values)])


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def measured_host(s: Summary) -> HostAnalysis | None:
    """The server's host (the DUT), else the first host the summary has."""
    host = s.server.host if s.server else "dut"
    return s.hosts.get(host) or next(iter(s.hosts.values()), None)


def _per_cpu(s: Summary, per_cpu: PerCpuOf) -> dict[int, int] | None:
    d = measured_host(s)
    return per_cpu(d) if d is not None else None


def _total(per_cpu: PerCpuOf) -> Extract:
    def extract(s: Summary) -> float | None:
        values = _per_cpu(s, per_cpu)
        return None if values is None else float(sum(values.values()))
    return extract


def _per_second(per_cpu: PerCpuOf) -> Extract:
    def extract(s: Summary) -> float | None:
        total = _total(per_cpu)(s)
        return None if total is None or not s.window_seconds else total / s.window_seconds
    return extract


def _per_kilo_packet(per_cpu: PerCpuOf) -> Extract:
    def extract(s: Summary) -> float | None:
        total, received = _total(per_cpu)(s), s.loadgen.received if s.loadgen else None
        return None if total is None or not received else 1000.0 * total / received
    return extract


def _share_rows(label: str, per_cpu: PerCpuOf,
                columns: Sequence[tuple[str, str, Sequence[Summary]]],
                row: Callable[[str, str, str, Extract], Row]) -> list[Row]:
    def share(cpu: int) -> Extract:
        def extract(s: Summary) -> float | None:
            values = _per_cpu(s, per_cpu)
            total = sum(values.values()) if values else 0
            return values.get(cpu, 0) / total if values and total else None
        return extract

    cpus = sorted({c for _, _, sums in columns for s in sums
                   for c in (_per_cpu(s, per_cpu) or {})})
    rows = [row(label, f"share CPU{c}", "share", share(c)) for c in cpus]
    return [r for r in rows if any(v is not None and v >= SHARE_SHOWN for v in r.values)]


def _relative(values: Sequence[float | None], unit: str) -> list[str]:
    base = values[0] if values else None
    out = [""]
    for v in values[1:]:
        if v is None or base is None:
            out.append("n/a")
        elif unit == "share":
            out.append(f"{100 * (v - base):+.1f} pp")
        elif base == 0:
            out.append("=" if v == 0 else "new")
        else:
            out.append(f"×{v / base:.2f}")
    return out


def value_text(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "share":
        return f"{value:.1%}"
    if unit in ("ratio", "seconds"):
        return f"{value:,.2f}" if value < 100 else f"{value:,.1f}"
    if unit == "rate":
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def _cell_text(r: Row, i: int) -> str:
    text = value_text(r.values[i], r.unit)
    return text if i == 0 or not r.relative[i] or r.relative[i] == "n/a" else \
        f"{text} ({r.relative[i]})"


INTRO = ("Like with like: raw counts over the snapshot window, the same per second of it and "
         "per 1,000 packets the server received, and per-CPU shares; each column after the "
         "first also relative to it (×N: ratio; pp: percentage points).")


def render_text(lf: LikeForLike, title: str = "Like with like") -> list[str]:
    """Markdown lines: one table, a row per measure, a column per run or cell."""
    if not lf.rows:
        return [f"## {title}", "", "no counters in any run", ""]
    header = ["what", "measure", *lf.names]
    rows = [[r.group, r.label, *(_cell_text(r, i) for i in range(len(lf.names)))] for r in lf.rows]
    notes = [f"- {n}: {t}" + (f" (median of {k})" if k > 1 else
                              " (no ended repetition yet)" if k == 0 else "")
             for n, t, k in zip(lf.names, lf.titles, lf.repetitions)]
    return [f"## {title}", "", INTRO, "", *notes, "", table(*_right_aligned(header, rows)), ""]


def _right_aligned(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """Numbers right-justified (table() left-aligns text such as "1,234 (×1.31)")."""
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    def line(cells: list[str]) -> list[str]:
        return [c if i < 2 else c.rjust(widths[i]) for i, c in enumerate(cells)]
    return line(header), [line(r) for r in rows]


def render_section(lf: LikeForLike, title: str = "Like with like") -> Section:
    """The same table for compare.html; ratios coloured red above 1, blue below."""
    if not lf.rows:
        return Section("like-for-like", title, [Note("no counters in any run", "muted")])
    header = [Cell("what"), Cell("measure")] + [Cell(n, "num", title=t)
                                                    for n, t in zip(lf.names, lf.titles)]
    body = [[Cell(r.group, "label"), Cell(r.label)]
            + [Cell(_cell_text(r, i), "num", _style(r, i),
                    title=f"{lf.names[i]}: {value_text(r.values[i], r.unit)}"
                    + (f", median of {lf.repetitions[i]}" if lf.repetitions[i] > 1 else ""))
               for i in range(len(lf.names))] for r in lf.rows]
    return Section("like-for-like", title, [Note(INTRO, "muted"),
                                            Table(header, body, "like-for-like")])


def _style(r: Row, i: int) -> str:
    base, v = r.values[0], r.values[i]
    if i == 0 or base is None or v is None:
        return ""
    if r.unit == "share":
        return hr.diverging_style(v - base, 1.0)
    return hr.diverging_style(v - base, max(abs(base), abs(v))) if base else ""
