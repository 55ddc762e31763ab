"""Reports (pure): two runs' summaries side by side -> a comparison, as text and as compare.html.

compare() takes two summaries (labctl.runfiles.models.Summary) and returns a Comparison: per host and CPU
the NIC's RX IRQs (all queues), NET_RX softirqs and the softnet_stat columns processed,
received_rps and dropped of run A and run B with the difference B - A (None where a run has no
such data, e.g. a netns run has no NIC IRQs), the load generator results of both, and both runs'
expectations, paired by check and description, and the like-for-like table of both
(labctl.reports.likeforlike: rates, per-1,000-packet costs, shares beside the raw counts; more
than two runs: labctl.reports.comparemany). With both runs' series, compare.html overlays them
over time (labctl.reports.seriescharts.overlay_charts: A solid, B dashed). render_compare_text() draws it as terminal
tables (labctl.reports.markdown.table); render_compare_html() as compare.html, in report.html's style
(htmlreport's page model and template), with differential flame graphs when given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from labctl.reports import html as hr
from labctl.reports.access import (
    cpu_label,
    fell_short,
    host_cpus,
    host_isolated,
    nic_irqs_per_cpu,
    reached,
    softirq_per_cpu,
    softnet_per_cpu,
)
from labctl.reports.html import Block, Cell, Note, Page, Section, Table
from labctl.reports.likeforlike import LikeForLike, like_for_like, render_section
from labctl.reports.likeforlike import render_text as like_for_like_text
from labctl.reports.markdown import table
from labctl.reports.seriescharts import overlay_charts
from labctl.runfiles.models import ExpectationRecord, HostAnalysis, LoadSummary, Summary
from labctl.runfiles.series import SeriesFile

# (key, label, per-CPU values of a host's summary or None when the run has no such data)
Metric = tuple[str, str, Callable[[HostAnalysis], "dict[int, int] | None"]]
METRICS: tuple[Metric, ...] = (
    ("nic_irqs", "NIC RX IRQs", nic_irqs_per_cpu),
    ("net_rx", "NET_RX softirqs", lambda d: softirq_per_cpu(d, "NET_RX")),
    ("processed", "softnet processed", lambda d: softnet_per_cpu(d, "processed")),
    ("received_rps", "softnet received_rps", lambda d: softnet_per_cpu(d, "received_rps")),
    ("dropped", "softnet dropped", lambda d: softnet_per_cpu(d, "dropped")),
)
NO_DIFFERENTIAL = "no differential flame graph given"


PerCpu = dict[int, int]


@dataclass(frozen=True)
class RunLoad:
    """One run's load results, and the share of the asked rate the client reached."""

    load: LoadSummary
    reached: float | None
    short: bool


@dataclass(frozen=True)
class RunFacts:
    """What a comparison says about one of its runs."""

    run_id: str
    scenario: str
    description: str
    started: str
    lab: str
    provider: str
    virtualisation: str
    passed: int
    checks: int
    load: RunLoad | None
    expectations: list[ExpectationRecord]


@dataclass(frozen=True)
class MetricComparison:
    """One per-CPU counter of a host in both runs; None where a run has no such data."""

    key: str
    label: str
    a: PerCpu | None
    b: PerCpu | None
    diff: PerCpu | None
    total_a: int | None
    total_b: int | None

    def side(self, run: str) -> PerCpu | None:
        return self.a if run == "a" else self.b


@dataclass(frozen=True)
class HostComparison:
    in_a: bool
    in_b: bool
    cpus: list[int]
    isolated: list[int]
    isolated_a: list[int]
    isolated_b: list[int]
    metrics: list[MetricComparison]


@dataclass
class PairedExpectation:
    check: str
    description: str
    a: ExpectationRecord | None
    b: ExpectationRecord | None


@dataclass(frozen=True)
class Comparison:
    a: RunFacts
    b: RunFacts
    hosts: dict[str, HostComparison]
    paired: list[PairedExpectation]
    like_for_like: LikeForLike | None = None     # rates, per-1,000-packet costs, shares

    def sides(self) -> tuple[tuple[str, RunFacts], tuple[str, RunFacts]]:
        return ("A", self.a), ("B", self.b)


def compare(summary_a: Summary, summary_b: Summary) -> Comparison:
    """Runs A and B side by side, per host and CPU, with B - A (see the module docstring)."""
    hosts_a, hosts_b = summary_a.hosts, summary_b.hosts
    return Comparison(
        _run(summary_a), _run(summary_b),
        {host: _host(hosts_a.get(host), hosts_b.get(host))
         for host in [*hosts_a, *(h for h in hosts_b if h not in hosts_a)]},
        _paired(summary_a.expectations, summary_b.expectations),
        like_for_like([("A", summary_a.run_id, [summary_a]), ("B", summary_b.run_id, [summary_b])]))


def _run(s: Summary) -> RunFacts:
    return RunFacts(s.run_id, s.scenario, s.description, s.started, s.lab, s.provider,
                    hr.virtualisation_text(s.lab_facts), sum(r.passed for r in s.expectations),
                    len(s.expectations), _load(s.loadgen), list(s.expectations))


def _host(a: HostAnalysis | None, b: HostAnalysis | None) -> HostComparison:
    cpus = sorted(set(host_cpus(a or HostAnalysis())) | set(host_cpus(b or HostAnalysis())))
    iso_a, iso_b = host_isolated(a), host_isolated(b)
    metrics = []
    for key, label, values in METRICS:
        va = values(a) if a is not None else None
        vb = values(b) if b is not None else None
        metrics.append(MetricComparison(key, label, _filled(va, cpus), _filled(vb, cpus),
                                        _diff(va, vb, cpus),
                                        None if va is None else sum(va.values()),
                                        None if vb is None else sum(vb.values())))
    return HostComparison(a is not None, b is not None, cpus, sorted(set(iso_a) | set(iso_b)),
                          iso_a, iso_b, metrics)


def _filled(values: Mapping[int, int] | None, cpus: Sequence[int]) -> dict[int, int] | None:
    return None if values is None else {c: int(values.get(c, 0)) for c in cpus}


def _diff(a: Mapping[int, int] | None, b: Mapping[int, int] | None, cpus: Sequence[int]
          ) -> dict[int, int] | None:
    if a is None or b is None:
        return None
    return {c: int(b.get(c, 0)) - int(a.get(c, 0)) for c in cpus}


def _load(lg: LoadSummary | None) -> RunLoad | None:
    if not lg:
        return None
    return RunLoad(lg, reached(lg), fell_short(lg))


def _paired(a: Iterable[ExpectationRecord], b: Iterable[ExpectationRecord]
            ) -> list[PairedExpectation]:
    """Expectations of both runs matched by (check, description) and, for a check a run makes
    more than once, by occurrence: A's order, then B's own."""
    rows: dict[tuple[str, str, int], PairedExpectation] = {}
    for side, results in (("a", a), ("b", b)):
        seen: dict[tuple[str, str], int] = {}
        for r in results:
            n = seen[(r.check, r.description)] = seen.get((r.check, r.description), -1) + 1
            row = rows.setdefault((r.check, r.description, n),
                                  PairedExpectation(r.check, r.description, None, None))
            if side == "a":
                row.a = r
            else:
                row.b = r
    return list(rows.values())


# --- text -----------------------------------------------------------------------------------


def render_compare_text(comparison: Comparison) -> str:
    """Terminal tables: expectations of both, load, and per host CPU x counter for A, B, B-A."""
    out = ["# labctl compare", ""]
    out += [f"- {name}: {run.run_id} ({run.scenario}"
            + (f" — {run.description}" if run.description else "") + ")"
            for name, run in comparison.sides()]
    out += ["- `*` marks isolated CPUs; B-A is run B minus run A.", ""]
    out += _expectations_text(comparison)
    out += _load_text(comparison)
    for host, h in comparison.hosts.items():
        out += _host_text(host, h)
    if comparison.like_for_like is not None:
        out += like_for_like_text(comparison.like_for_like)
    return "\n".join(out).rstrip() + "\n"


def _expectations_title(c: Comparison) -> str:
    return f"Expectations: A {c.a.passed}/{c.a.checks} passed, B {c.b.passed}/{c.b.checks} passed"


def _expectations_text(c: Comparison) -> list[str]:
    title, paired = "## " + _expectations_title(c), c.paired
    if not paired:
        return [title, "", "none in either run", ""]
    rows = [[r.check, r.description, _result_text(r.a), _result_text(r.b)] for r in paired]
    return [title, "", table(["check", "what", "A", "B"], rows), ""]


def _result_text(result: ExpectationRecord | None) -> str:
    if result is None:
        return "-"
    return f"{'PASS' if result.passed else 'FAIL'} {result.measured}"


def _load_text(c: Comparison) -> list[str]:
    if not c.a.load and not c.b.load:
        return ["## Load", "", "no load in either run", ""]
    header = ["run", "asked msg/s", "achieved msg/s", "reached", "loss", "sent", "received",
              "socket drops", "client errors"]
    rows, notes = [], []
    for side, facts in c.sides():
        run = facts.load
        if run is None:
            rows.append([side] + ["-"] * (len(header) - 1))
            continue
        lg = run.load
        rows.append([side, hr.fmt(lg.asked_rate), hr.fmt(lg.achieved_rate),
                     _percent(run.reached, 1), _percent(lg.loss, 2), hr.fmt(lg.sent),
                     hr.fmt(lg.received), hr.fmt(lg.server_socket_drops),
                     hr.fmt(lg.client_errors)])
        if run.short:
            notes.append(f"**{side}: the client fell short: it reached only "
                         f"{_percent(run.reached, 0)} of the asked rate; the load generator "
                         "is the limit, not the DUT.**")
    return (["## Load", "", table(*_right_aligned(header, rows, first=1)), ""]
            + [n for note in notes for n in (note, "")])


def _percent(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}%}"


def _host_text(host: str, h: HostComparison) -> list[str]:
    out = [f"## {host}: per CPU (A, B, B-A)", ""]
    if not (h.in_a and h.in_b):
        out += [f"only in run {'A' if h.in_a else 'B'}", ""]
    if h.isolated_a != h.isolated_b:
        out += [f"isolated CPUs differ: A {_cpus(h.isolated_a)}, B {_cpus(h.isolated_b)}", ""]
    cpus, iso = h.cpus, h.isolated
    rows: list[list[str]] = []
    missing = []
    for m in h.metrics:
        if m.a is None and m.b is None:
            missing.append(m.label)
            continue
        for run, values in (("A", m.a), ("B", m.b), ("B-A", m.diff)):
            label = m.label if run == "A" else ""
            total = _total(values, signed=run == "B-A")
            rows.append([label, run] + [_count(values, c, run == "B-A") for c in cpus] + [total])
    if rows:
        header = ["counter", "run"] + [cpu_label(c, iso) for c in cpus] + ["all"]
        out += [table(*_right_aligned(header, rows, first=2)), ""]
    if missing:
        out += ["no data in either run: " + ", ".join(missing), ""]
    return out


def _cpus(cpus: Sequence[int]) -> str:
    return ",".join(map(str, cpus)) or "none"


def _count(values: Mapping[int, int] | None, cpu: int, signed: bool) -> str:
    if values is None:
        return "n/a"
    return _signed(values.get(cpu, 0)) if signed else hr.fmt(values.get(cpu, 0))


def _total(values: Mapping[int, int] | None, signed: bool) -> str:
    if values is None:
        return "n/a"
    return _signed(sum(values.values())) if signed else hr.fmt(sum(values.values()))


def _signed(value: int) -> str:
    return f"{value:+,}" if value else "0"


def _right_aligned(header: list[str], rows: list[list[str]], first: int
                   ) -> tuple[list[str], list[list[str]]]:
    """Right-justify the columns after the first `first` (table() left-aligns "+12" text)."""
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    def line(cells: list[str]) -> list[str]:
        return [c if i < first else c.rjust(widths[i]) for i, c in enumerate(cells)]
    return line(header), [line(r) for r in rows]


# --- HTML -----------------------------------------------------------------------------------


def render_compare_html(comparison: Comparison,
                        differential_flamegraphs: dict[str, dict[int, str]] | None = None,
                        series: tuple[SeriesFile | None, SeriesFile | None] = (None, None)) -> str:
    """compare.html: report.html's style; differential_flamegraphs[host][cpu] = SVG; `series`
    (both runs' series.json, where they have one) adds the overlays over time."""
    a, b = comparison.a, comparison.b
    sections = [_expectations_html(comparison), _load_html(comparison),
                *_overlay_sections(comparison, series)]
    if comparison.like_for_like is not None:
        sections.append(render_section(comparison.like_for_like))
    sections += [_host_html(host, h) for host, h in comparison.hosts.items()]
    isolated = {host: h.isolated for host, h in comparison.hosts.items()}
    sections.append(hr.flamegraph_sections(
        differential_flamegraphs, isolated, "Differential flame graphs (widths: B; red = more "
        "in B, blue = less)", NO_DIFFERENTIAL))
    title = f"labctl compare: {a.scenario} (A) vs {b.scenario} (B)"
    return hr.render_page(Page(title, [hr.Facts([("A", _run_text(a)), ("B", _run_text(b))]),
                                       Note("B - A is run B minus run A.", "muted")], sections))


def _overlay_sections(c: Comparison, series: tuple[SeriesFile | None, SeriesFile | None]
                      ) -> list[Section]:
    """Per host with a series in either run: A's and B's lines over each other."""
    a, b = series
    hosts = sorted({*(a.hosts if a else {}), *(b.hosts if b else {})})
    sections = []
    for host in hosts:
        side_a, side_b = (a.hosts.get(host) if a else None), (b.hosts.get(host) if b else None)
        h = c.hosts.get(host)
        made = overlay_charts(host, side_a, side_b, h.isolated if h is not None else [])
        if made.charts:
            missing = [name for name, side in (("A", side_a), ("B", side_b)) if side is None]
            notes = [Note(f"run {missing[0]} has no series of {host}", "warn")] if missing else []
            sections.append(Section(f"overlay-{hr.slug(host)}", f"{host}: A vs B over time",
                                    [*hr.charts_blocks(made), *notes]))
    return sections


def _run_text(run: RunFacts) -> str:
    virt = run.virtualisation
    return (f"{run.run_id} — {run.scenario}"
            + (f": {run.description}" if run.description else "")
            + f" (lab {run.lab}, provider {run.provider}" + (f", {virt}" if virt else "")
            + f"; started {run.started})")


def _expectations_html(c: Comparison) -> Section:
    title, paired = _expectations_title(c), c.paired
    if not paired:
        return Section("expectations", title, [Note("none in either run", "muted")])
    rows = [[Cell(r.check), Cell(r.description), hr.result_cell(r.a, detail=True),
             hr.result_cell(r.b, detail=True)] for r in paired]
    return Section("expectations", title, [Table(
        [Cell("check"), Cell("what"), Cell("A"), Cell("B")], rows, "expectations")])


def _load_html(c: Comparison) -> Section:
    if not c.a.load and not c.b.load:
        return Section("load", "Load", [Note("no load in either run", "muted")])
    rows, notes = [], []
    for side, facts in c.sides():
        run = facts.load
        if run is None:
            rows.append([Cell(side, "label")] + [Cell("-", "muted")] * 8)
            notes.append(Note(f"{side}: no load in this run", "muted"))
            continue
        rows.append(hr.load_row(run.load, Cell(f"{side} ({run.load.protocol or '?'})", "label")))
        notes.append(hr.load_verdict(run.load, f"{side}: "))
    header = [Cell("run")] + hr.LOAD_HEADER[1:]
    return Section("load", "Load: asked vs achieved", [Table(header, rows, "load"), *notes])


def _host_html(host: str, h: HostComparison) -> Section:
    cpus, iso = h.cpus, h.isolated
    blocks: list[Block] = [hr.ISOLATED_LEGEND] if iso else []
    if not (h.in_a and h.in_b):
        blocks.append(Note(f"{host} is only in run {'A' if h.in_a else 'B'}", "warn"))
    if h.isolated_a != h.isolated_b:
        blocks.append(Note(f"isolated CPUs differ: A {_cpus(h.isolated_a)}, "
                           f"B {_cpus(h.isolated_b)}", "warn"))
    rows: list[list[Cell]] = []
    for m in h.metrics:
        rows += _metric_rows(m, cpus, iso)
    missing = [m.label for m in h.metrics if m.a is None and m.b is None]
    if rows:
        header = [Cell("counter"), Cell("run")] + hr.cpu_header(cpus, iso) + [Cell("all", "num")]
        blocks.append(Table(header, rows, "heatmap compare", "per CPU, A and B coloured against "
                            "the larger of both runs, B - A red where B has more, blue less"))
    if missing:
        blocks.append(Note("no data in either run: " + ", ".join(missing), "muted"))
    return Section(f"host-{hr.slug(host)}", f"{host}: per CPU, A vs B", blocks)


def _metric_rows(m: MetricComparison, cpus: Sequence[int], iso: Sequence[int]
                 ) -> list[list[Cell]]:
    if m.a is None and m.b is None:
        return []
    top = max([*(m.a or {}).values(), *(m.b or {}).values(), 0])
    rows = []
    for run in ("a", "b"):
        label = Cell(m.label, "label") if run == "a" else Cell("")
        values = m.side(run)
        if values is None:
            rows.append([label, Cell(run.upper())] + [Cell("n/a", "num muted")] * (len(cpus) + 1))
            continue
        rows.append([label, Cell(run.upper())] + hr.heat_cells(values, cpus, iso, top)
                    + [hr.num(sum(values.values()))])
    diff = m.diff
    if diff is None:
        rows.append([Cell(""), Cell("B - A")] + [Cell("n/a", "num muted")] * (len(cpus) + 1))
        return rows
    largest = max([abs(v) for v in diff.values()] + [0])
    rows.append([Cell(""), Cell("B - A")]
                + [Cell(_signed(diff[c]), "num iso" if c in iso else "num",
                        hr.diverging_style(diff[c], largest)) for c in cpus]
                + [Cell(_signed(sum(diff.values())), "num")])
    return rows
