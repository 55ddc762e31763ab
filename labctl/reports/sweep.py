"""Reports (pure rendering, plus reading and writing a sweep directory's files): sweep.md and
sweep.html from sweep.json and the runs' summary.json.

read_sweep() reads what is there: sweep.json (labctl.runfiles.sweep.SweepRecord) and, per
repetition that ended with a verdict, its run's summary.json and the CPUs its scenario names
(manifest.json). A sweep in progress (pending repetitions, runs without a summary yet) reads
without error: what is missing is counted, never guessed. The statistics are
labctl.analysis.sweepstats' (its docstring says which statistic and which noise rule; both
reports repeat them). write_sweep_reports() is what the sweep engine calls after each
repetition and `labctl collect SWEEP_DIR` calls to rebuild both files.

sweep.md / sweep.html: the sweep's facts and progress; one row per cell (median [min-max] per
metric, n, excluded repetitions, flaky); in the HTML a chart per swept parameter and metric
(labctl.reports.charts); the flaky cells; the differences beyond noise; every repetition.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import JsonValue

from labctl.analysis.sweepstats import (
    MIN_N,
    MWU_MIN_N,
    SIGNIFICANCE,
    CellStats,
    Repetition,
    Series,
    Spread,
    SweepStats,
    scenario_cpus,
    sweep_stats,
)
from labctl.errors import RunError
from labctl.reports import html as hr
from labctl.reports.charts import Point, spread_chart
from labctl.reports.html import Block, Cell, Chart, Facts, Note, Page, Section, Table
from labctl.reports.markdown import table
from labctl.runfiles.models import Summary
from labctl.runfiles.sweep import SWEEP_FILE, CellRecord, SweepRecord

SWEEP_MD, SWEEP_HTML = "sweep.md", "sweep.html"
STATISTIC = ("median over the cell's ended repetitions, [min-max] their range; with 4 or more "
             "repetitions also the interquartile range (IQR, in the chart and the hover text); "
             "with fewer than 3 the spread is only the range of what was measured")
RULE = (f"between two cells that differ in one swept parameter; with >= {MWU_MIN_N} "
        f"repetitions in both, the exact two-sided Mann-Whitney U test at p < {SIGNIFICANCE}; "
        f"with {MIN_N} (or {MIN_N} against more), their ranges (min-max) do not overlap (that is "
        "U = 0; its exact p is shown: 0.1 for 3 against 3, a screen rather than a proof); no "
        f"correction for the number of comparisons; cells with fewer than {MIN_N} repetitions "
        "are not judged")
FLAKY = ("flaky: the cell's expectations all passed in some repetitions and not in others")
EXCLUDED = "error, interrupted and pending repetitions (and ended ones without a summary)"


# --- reading ----------------------------------------------------------------------------------


def is_sweep_dir(path: Path) -> bool:
    return (path / SWEEP_FILE).is_file()


def read_sweep(sweep_dir: Path) -> tuple[SweepRecord, dict[tuple[int, int], Repetition]]:
    """sweep.json and every repetition's summary and named CPUs (see the module docstring)."""
    target = sweep_dir / SWEEP_FILE
    try:
        record = SweepRecord.from_json(target.read_text(), str(target))
    except FileNotFoundError:
        raise RunError(f"{target} is missing: is {sweep_dir} a labctl sweep directory?") from None
    reps = {}
    for cell in record.cells:
        for rep in cell.repetitions:
            summary, named = _run_files(sweep_dir, rep.run_dir) if rep.run_dir else (None, None)
            reps[(cell.index, rep.repetition)] = Repetition(rep, summary, scenario_cpus(named))
    return record, reps


def _run_files(sweep_dir: Path, run_dir: str) -> tuple[Summary | None, dict[str, JsonValue] | None]:
    path = sweep_dir / run_dir
    try:
        summary = Summary.from_json((path / Summary.FILE).read_text(), str(path / Summary.FILE))
    except (OSError, RunError):
        return None, None
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        scenario = manifest["scenario"]["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return summary, None
    return summary, scenario if isinstance(scenario, dict) else None


def sweep_statistics(sweep_dir: Path) -> SweepStats:
    record, reps = read_sweep(sweep_dir)
    return sweep_stats(record, reps)


def cell_summaries(sweep_dir: Path) -> list[tuple[CellRecord, list[Summary]]]:
    """Per cell, the summaries of its repetitions that count (for `labctl compare SWEEP_DIR`)."""
    record, reps = read_sweep(sweep_dir)
    stats = sweep_stats(record, reps)
    return [(c.cell, [s for r in c.used if (s := reps[(c.cell.index, r)].summary) is not None])
            for c in stats.cells]


def render_sweep(sweep_dir: Path) -> tuple[str, str]:
    """(sweep.md, sweep.html) of a sweep directory, complete or in progress."""
    stats = sweep_statistics(sweep_dir)
    return render_markdown(stats), render_html(stats)


@dataclass(frozen=True)
class SweepReports:
    markdown: Path
    html: Path
    text: str                      # sweep.md's text


def write_sweep_reports(sweep_dir: Path) -> SweepReports:
    """Rebuild sweep.md and sweep.html in the sweep directory (each replaced atomically)."""
    markdown, page = render_sweep(sweep_dir)
    return SweepReports(_replace(sweep_dir / SWEEP_MD, markdown),
                        _replace(sweep_dir / SWEEP_HTML, page), markdown)


def _replace(target: Path, text: str) -> Path:
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    os.replace(partial, target)
    return target


# --- formatting -------------------------------------------------------------------------------


def show(value: float, unit: str) -> str:
    if unit in ("share", "checks"):
        return f"{value:.1%}" if abs(value) >= 0.001 or value == 0 else f"{value:.2%}"
    if unit == "rate":
        return f"{value:,.0f}"
    if unit == "ratio":
        return f"{value:,.1f}"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def spread_text(s: Spread | None, unit: str, checks: int = 0) -> str:
    """median [min-max]; expectations (a share passed) as k/n of the cell's checks."""
    if s is None:
        return "n/a"
    if unit == "checks":
        med = _checks_text(s.median, checks) + (f"/{checks}" if checks else "")
        return (med if s.low == s.high
                else f"{med} [{_checks_text(s.low, checks)}–{_checks_text(s.high, checks)}]")
    med = show(s.median, unit)
    if s.low == s.high:
        return med
    return f"{med} [{show(s.low, unit)}–{show(s.high, unit)}]"


def _checks_text(share: float, checks: int) -> str:
    return f"{share * checks:.3g}" if checks else f"{share:.0%}"


def _hover(stats: CellStats, s: Spread, series: Series) -> str:
    iqr = (f", IQR {show(s.q1, series.unit)}–{show(s.q3, series.unit)}"
           if s.q1 is not None and s.q3 is not None else "")
    values = ", ".join(show(v, series.unit) for v in s.values)
    return (f"cell {stats.cell.index} ({stats.cell.label}): {series.label} median "
            f"{show(s.median, series.unit)}, range {show(s.low, series.unit)}–"
            f"{show(s.high, series.unit)}{iqr}, n = {s.n} ({values})")


def _value(v: JsonValue) -> str:
    return "none" if v is None else json.dumps(v) if not isinstance(v, str) else v


def _progress(stats: SweepStats) -> str:
    st, total = stats.statuses, sum(stats.statuses.values())
    ended = sum(n for k, n in st.items() if k != "pending")
    parts = ", ".join(f"{k} {n}" for k, n in sorted(st.items()) if k != "pending")
    return (f"{ended} of {total} repetitions ended" + (f" ({parts})" if parts else "")
            + (f", {st['pending']} pending" if st.get("pending") else ""))


def _excluded_text(c: CellStats) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(c.excluded.items())) or "-"


def _facts(stats: SweepStats) -> list[tuple[str, str]]:
    r = stats.record
    order = r.order + (f" (seed {r.seed})" if r.seed is not None else "")
    items = [("sweep", r.sweep_id),
             ("scenario", f"{r.scenario} ({r.scenario_path}, sha256 {r.scenario_sha256[:12]})"),
             ("labctl", f"{r.labctl_version}, started {r.created_at}")]
    items += [(f"matrix: {a.path}", ", ".join(_value(v) for v in a.values)
               + (f" (line {a.line})" if a.line else "")) for a in r.matrix]
    items += [("cells x repeat", f"{len(r.cells)} x {r.repeat}, order {order}"),
              ("status", f"{r.status}: {_progress(stats)}"),
              ("CPUs of interest", (", ".join(f"CPU{c}" for c in stats.cpus) or "none")
               + f" ({stats.cpus_source})"),
              ("statistic", STATISTIC),
              ("excluded from the statistics", EXCLUDED + ", counted per cell")]
    if stats.unknown_metrics:
        items.append(("unknown metrics (ignored)", ", ".join(stats.unknown_metrics)))
    return items


# --- sweep.md ---------------------------------------------------------------------------------


def render_markdown(stats: SweepStats) -> str:
    out = [f"# labctl sweep {stats.record.sweep_id}", ""]
    out += [f"- {k}: {v}" for k, v in _facts(stats)] + [""]
    out += _cells_md(stats) + _flaky_md(stats) + _differences_md(stats) + _repetitions_md(stats)
    return "\n".join(out).rstrip() + "\n"


def _axes(stats: SweepStats) -> list[str]:
    return [a.path for a in stats.record.matrix]


def _cells_md(stats: SweepStats) -> list[str]:
    axes = _axes(stats)
    header = ["cell", *axes, "n", "excluded", *(s.label for s in stats.series), "flaky"]
    rows = [[str(c.cell.index), *(_value(c.cell.values.get(a)) for a in axes), str(len(c.used)),
             _excluded_text(c),
             *(spread_text(c.metrics.get(s.key), s.unit, c.checks) for s in stats.series),
             "**flaky**" if c.flaky else ""] for c in stats.cells]
    return ["## Cells", "", "Each value: " + STATISTIC + ".", "", table(header, rows), ""]


def _flaky_md(stats: SweepStats) -> list[str]:
    flaky = [c for c in stats.cells if c.flaky]
    out = ["## Flaky cells", "", FLAKY + ".", ""]
    if not flaky:
        return out + ["none", ""]
    for c in flaky:
        out.append(f"- **cell {c.cell.index}** ({c.cell.label}): {_flaky_text(c)}")
    return out + [""]


def _flaky_text(c: CellStats) -> str:
    passed = c.statuses.get("passed", 0)
    return (f"passed in {passed} of {len(c.used)} repetitions; checks that flipped: "
            + ("; ".join(c.flaky_checks) or "none (the verdicts differ)"))


def _differences_md(stats: SweepStats) -> list[str]:
    out = ["## Differences beyond noise", "", "Rule: " + RULE + ".", ""]
    if not stats.differences:
        return out + [_no_differences(stats), ""]
    rows = [[d.series.label, d.axis, *_pair(stats, d.a, d.series), *_pair(stats, d.b, d.series),
             d.call.rule, d.call.text] for d in stats.differences]
    header = ["metric", "parameter", "lower: cell", "value", "higher: cell", "value", "rule", "test"]
    return out + [table(header, rows), ""]


def _no_differences(stats: SweepStats) -> str:
    few = [str(c.cell.index) for c in stats.cells if len(c.used) < MIN_N]
    return ("none: no difference between cells exceeds the repetitions' noise"
            + (f" (not judged, fewer than {MIN_N} repetitions: cell(s) {', '.join(few)})"
               if few else ""))


def _pair(stats: SweepStats, index: int, series: Series) -> list[str]:
    c = stats.cell(index)
    return [f"{index} ({c.cell.label})", spread_text(c.metrics.get(series.key), series.unit, c.checks)]


def _repetitions_md(stats: SweepStats) -> list[str]:
    rows = [[str(c.index), str(r.repetition), r.status, r.run_dir or "-", r.reason or "",
             f"{r.seconds:.0f} s" if r.seconds is not None else "-"]
            for c in stats.record.cells for r in c.repetitions]
    return ["## Repetitions", "", table(["cell", "repetition", "status", "run", "reason", "time"],
                                        rows), ""]


# --- sweep.html -------------------------------------------------------------------------------


def render_html(stats: SweepStats) -> str:
    sections = [_cells_html(stats), *_charts_html(stats), _flaky_html(stats),
                _differences_html(stats), _repetitions_html(stats)]
    lead: list[Block] = [Facts(_facts(stats))]
    if stats.record.status != "completed":
        lead.append(Note(f"This sweep is {stats.record.status}: {_progress(stats)}.", "warn"))
    return hr.render_page(Page(f"labctl sweep {stats.record.sweep_id}", lead, sections))


def _cells_html(stats: SweepStats) -> Section:
    axes = _axes(stats)
    header = ([Cell("cell", "num")] + [Cell(a) for a in axes] + [Cell("n", "num"),
              Cell("excluded")] + [Cell(s.label, "num") for s in stats.series] + [Cell("flaky")])
    rows = []
    for c in stats.cells:
        cells = [Cell(str(c.cell.index), "num", title=c.cell.label)]
        cells += [Cell(_value(c.cell.values.get(a))) for a in axes]
        cells += [Cell(str(len(c.used)), "num"), Cell(_excluded_text(c), "muted")]
        for s in stats.series:
            found = c.metrics.get(s.key)
            cells.append(Cell(spread_text(found, s.unit, c.checks), "num",
                              title=_hover(c, found, s) if found else "no value"))
        cells.append(Cell("flaky", "fail", title=_flaky_text(c)) if c.flaky else Cell(""))
        rows.append(cells)
    return Section("cells", "Cells", [Note("Each value: " + STATISTIC + ".", "muted"),
                                      Table(header, rows, "cells")])


def _charts_html(stats: SweepStats) -> list[Section]:
    """A section per swept parameter: a chart per metric, the other parameters as colours."""
    out = []
    for axis in stats.record.matrix:
        categories = [_value(v) for v in axis.values]
        others = [a.path for a in stats.record.matrix if a.path != axis.path]
        groups = sorted({_group(c.cell, others) for c in stats.cells})
        blocks: list[Block] = []
        for s in stats.series:
            points = _points(stats, s, axis.path, categories, others, groups)
            caption = (f"{s.label} against {axis.path}: dot = median, thin bar = range, thick "
                       "bar = IQR (n >= 4)" + (f"; colour: {', '.join(others)}" if others else ""))
            if not points:
                blocks.append(Note(f"{s.label}: no values yet", "muted"))
                continue
            blocks.append(Chart(caption, spread_chart(f"{s.label} vs {axis.path}", categories,
                                                      groups, points, _axis_show(s))))
        out.append(Section(f"charts-{hr.slug(axis.path)}", f"Charts: against {axis.path}", blocks))
    return out


def _axis_show(series: Series) -> Callable[[float], str]:
    return lambda v: show(v, series.unit)


def _group(cell: CellRecord, others: Sequence[str]) -> str:
    return ", ".join(f"{p.rsplit('.', 1)[-1]}={_value(cell.values.get(p))}" for p in others) or "all"


def _points(stats: SweepStats, s: Series, axis: str, categories: Sequence[str],
            others: Sequence[str], groups: Sequence[str]) -> list[Point]:
    points = []
    for c in stats.cells:
        found = c.metrics.get(s.key)
        x = _value(c.cell.values.get(axis))
        if found is None or x not in categories:
            continue
        points.append(Point(categories.index(x), groups.index(_group(c.cell, others)),
                            found.median, found.low, found.high, found.q1, found.q3,
                            _hover(c, found, s)))
    return points


def _flaky_html(stats: SweepStats) -> Section:
    flaky = [c for c in stats.cells if c.flaky]
    blocks: list[Block] = [Note(FLAKY + ".", "muted")]
    if not flaky:
        blocks.append(Note("none", "muted"))
    blocks += [Note(f"cell {c.cell.index} ({c.cell.label}): {_flaky_text(c)}", "fail")
               for c in flaky]
    return Section("flaky", "Flaky cells", blocks)


def _differences_html(stats: SweepStats) -> Section:
    blocks: list[Block] = [Note("Rule: " + RULE + ".", "muted")]
    if not stats.differences:
        blocks.append(Note(_no_differences(stats)))
        return Section("differences", "Differences beyond noise", blocks)
    rows = [[Cell(d.series.label, "label"), Cell(d.axis)]
            + [Cell(t) for t in _pair(stats, d.a, d.series)]
            + [Cell(t) for t in _pair(stats, d.b, d.series)]
            + [Cell(d.call.rule), Cell(d.call.text)] for d in stats.differences]
    header = [Cell(h) for h in ("metric", "parameter", "lower: cell", "value", "higher: cell",
                                "value", "rule", "test")]
    blocks.append(Table(header, rows, "differences"))
    return Section("differences", "Differences beyond noise", blocks)


_STATUS_CLASS = {"passed": "pass", "failed": "fail", "error": "fail", "invalid": "fail", "inconclusive": "warn",
                 "interrupted": "warn", "pending": "muted"}


def _repetitions_html(stats: SweepStats) -> Section:
    rows = [[Cell(str(c.index), "num", title=c.label), Cell(str(r.repetition), "num"),
             Cell(r.status, _STATUS_CLASS.get(r.status, "")), Cell(r.run_dir or "-"),
             Cell(r.reason or ""), Cell(f"{r.seconds:.0f} s" if r.seconds is not None else "-",
                                        "num")]
            for c in stats.record.cells for r in c.repetitions]
    header = [Cell("cell", "num"), Cell("repetition", "num"), Cell("status"), Cell("run"),
              Cell("reason"), Cell("time", "num")]
    return Section("repetitions", "Repetitions", [Table(header, rows, "repetitions")])
