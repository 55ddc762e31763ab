"""Reports (pure): a run's summary -> report.html, one self-contained page.

The same facts as report.md, drawn for the eye: per-CPU heatmaps (CSS-coloured tables, class
``heatmap``; the NIC's RX IRQs by queue x CPU coloured against the table's largest count, the
per-CPU rows of softirqs, softnet_stat and CPU time each against its own row's largest value),
isolated CPUs marked ``*`` with a blue bar under their cells, the series over the load window
as line charts (labctl.reports.seriescharts: one per metric per host, hover for the exact
values), and the run's flame graphs. Inline
CSS only, no external URL, no script of the page's own: the only scripts are the flame graphs'.

The summary is a labctl.runfiles.models.Summary (per-CPU keys are ints, whether it is fresh
from runner.build_summary or read back from summary.json). Every section says so when its data
is missing (a netns run has no NIC IRQs, a run without load no
load generator results, a run without profiling no flame graphs).

Flame graphs (labctl.reports.flamegraph) are embedded each in an ``<iframe srcdoc>``: their script was
written for a standalone SVG document. Inlined into the HTML page, it would find
``document.documentElement`` to be ``<html>`` (no data-left/data-span/data-char: every zoom draws
frames 0 px wide, search reports a share of 0 px), ``getElementById('frames')`` etc. would all
find the first graph's elements (the second graph's script wires itself to the first graph), and
the SVG's ``<style>`` (``.hide``, ``#title``, ``text``) would apply to the whole page. In a
srcdoc document of its own, the SVG gets its own ids, its own style and a root element
(``<html>``) that carries the SVG root's data-* attributes, so zoom, search (``prompt()``: the
srcdoc frame has the page's origin) and the frame tooltips work unchanged. ``<img>`` would run
no script at all; a ``data:`` URL in ``<iframe>``/``<object>`` runs it but is cut at Chromium's
2 MiB URL limit (flame graphs reach ~10 MB).

Page, Section and the blocks are the page's model; compare.py, comparemany.py and sweep.py
fill the same model, so report.html, compare.html and sweep.html share one template
(templates/report.html.j2) and one style. A Chart block is inline SVG markup made by
labctl.reports.charts, which escapes every text in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup
from pydantic import JsonValue

from labctl.cpulist import parse_cpulist
from labctl.packaged import template_environment
from labctl.reports.access import (
    RATE_REACHED,
    cpu_label,
    fell_short,
    host_cpus,
    host_isolated,
    reached,
    share_text,
    softirq_per_cpu,
    softnet_per_cpu,
)
from labctl.reports.markdown import (
    DRIFT_HEADER,
    NEIGHBOUR_HEADER,
    SOFTNET_COLUMNS,
    drift_lines,
    generator_text,
    neighbour_lines,
    stopped_text,
    verdict_text,
)
from labctl.reports.profiles import RX_FRAMES
from labctl.reports.seriescharts import HostCharts, host_charts
from labctl.runfiles.models import (
    AffinityRecord,
    ExpectationRecord,
    HostAnalysis,
    HostFactsRecord,
    LoadSummary,
    ServerWorker,
    StepRecord,
    Summary,
)
from labctl.runfiles.series import SeriesFile

TEMPLATE = "report.html.j2"
NO_PROFILE = "no profile in this run"
NO_FLAMEGRAPHS = "no flame graph given for this profile"
CPU_TIME_KEYS = ("irq", "softirq", "user", "system", "idle")
# Sequential colour scale (white -> dark orange) and the smallest share a non-zero value gets,
# so that 2 IRQs on an isolated CPU next to 2,000 elsewhere still show.
_HEAT_STOPS = ((0.0, (255, 255, 255)), (0.25, (254, 230, 206)), (0.5, (253, 174, 107)),
               (0.75, (241, 105, 19)), (1.0, (140, 45, 4)))
_HEAT_MIN = 0.08
_DARK = 0.6                  # above this share the cell's text turns white

# --- the page model -------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    text: str
    cls: str = ""             # num (right-aligned), iso (isolated CPU), pass, fail, warn, label
    style: str = ""           # the heat colour
    title: str = ""           # tooltip


@dataclass(frozen=True)
class Table:
    header: list[Cell]
    rows: list[list[Cell]]
    cls: str = ""
    caption: str = ""
    kind: str = "table"


@dataclass(frozen=True)
class Note:
    text: str
    cls: str = ""             # fail (said in bold red), warn, muted
    kind: str = "note"


@dataclass(frozen=True)
class Facts:
    items: list[tuple[str, str]]
    title: str = ""
    kind: str = "facts"


@dataclass(frozen=True)
class Flamegraph:
    caption: str
    srcdoc: str               # an HTML document holding the SVG (see the module docstring)
    width: int
    height: int
    kind: str = "flamegraph"


@dataclass(frozen=True)
class Chart:
    caption: str
    svg: Markup               # inline SVG, every text in it escaped (labctl.reports.charts)
    kind: str = "chart"


Block = Table | Note | Facts | Flamegraph | Chart


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    level: int = 2


@dataclass(frozen=True)
class Page:
    title: str
    lead: list[Block]
    sections: list[Section]


def render_page(page: Page) -> str:
    """The page through templates/report.html.j2 (every value escaped, none missing)."""
    return template_environment().get_template(TEMPLATE).render(page=page)


# --- formatting and colour ------------------------------------------------------------------


def fmt(value: object) -> str:
    """Numbers as report.md writes them: 1,234 and 12.3; None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def num(value: object, style: str = "", cls: str = "") -> Cell:
    return Cell(fmt(value), ("num " + cls).strip(), style)


def heat_style(value: float, top: float) -> str:
    """Background (white -> dark orange) for value as a share of top; '' for 0."""
    if value <= 0 or top <= 0:
        return ""
    share = max(min(value / top, 1.0), _HEAT_MIN)
    for (low, c0), (high, c1) in zip(_HEAT_STOPS, _HEAT_STOPS[1:]):
        if share <= high:
            t = (share - low) / (high - low)
            r, g, b = (round(a + (z - a) * t) for a, z in zip(c0, c1))
            return f"background:rgb({r},{g},{b})" + (";color:#fff" if share > _DARK else "")
    return ""


def diverging_style(delta: float, largest: float) -> str:
    """Red = more in B, blue = less (as the differential flame graph), by |delta| / largest."""
    if not delta or largest <= 0:
        return ""
    faded = int(round(250 - 210 * min(abs(delta) / largest, 1.0)))
    colour = f"rgb(250,{faded},{faded})" if delta > 0 else f"rgb({faded},{faded},250)"
    return f"background:{colour}" + (";color:#fff" if faded < 100 else "")


def cpu_header(cpus: Sequence[int], isolated: Sequence[int]) -> list[Cell]:
    return [Cell(cpu_label(c, list(isolated)), "num iso" if c in isolated else "num",
                 title=f"CPU {c} is isolated" if c in isolated else "") for c in cpus]


def heat_cells(values: Mapping[int, float], cpus: Sequence[int], isolated: Sequence[int],
               top: float | None = None, show: Callable[[float], str] = fmt) -> list[Cell]:
    """One cell per CPU, coloured against top (default: the largest of these values)."""
    peak = max((values.get(c, 0) for c in cpus), default=0) if top is None else top
    return [Cell(show(values.get(c, 0)), "num iso" if c in isolated else "num",
                 heat_style(values.get(c, 0), peak)) for c in cpus]


ISOLATED_LEGEND = Note("* and a blue bar under the cell mark the host's isolated CPUs.", "muted")


# --- flame graphs ---------------------------------------------------------------------------

_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
_DATA_ATTRIBUTE = re.compile(r"""\s(data-[A-Za-z0-9_.-]+)=("[^"]*"|'[^']*')""")
_SIZE = re.compile(r"""\s(width|height)=["'](\d+(?:\.\d+)?)(?:px)?["']""")
_FRAME_DOC = ('<!DOCTYPE html><html{attributes}><head><meta charset="utf-8"><style>'
              "html,body{{margin:0;padding:0;background:#fff}}svg{{display:block}}</style>"
              "</head><body>{svg}</body></html>")


def flamegraph_block(svg: str, caption: str) -> Block:
    """An SVG as an iframe's srcdoc document whose <html> carries the SVG root's data-*
    attributes (the flame graph's script reads them from document.documentElement)."""
    opening = _SVG_OPEN.search(svg)
    if opening is None:
        return Note(f"{caption}: not an SVG document; not embedded", "warn")
    attributes = "".join(f" {m.group(1)}={m.group(2)}"
                         for m in _DATA_ATTRIBUTE.finditer(opening.group(0)))
    size = {m.group(1): float(m.group(2)) for m in _SIZE.finditer(opening.group(0))}
    document = _FRAME_DOC.format(attributes=attributes, svg=svg[opening.start():])
    return Flamegraph(caption, document, round(size.get("width", 1200)),
                      round(size.get("height", 600)))


def flamegraph_sections(graphs: Mapping[str, Mapping[int, str]] | None,
                        isolated: Mapping[str, Sequence[int]], title: str, empty: str,
                        intro: Sequence[Block] = ()) -> Section:
    """Per host and CPU, the given SVGs (after `intro`); `empty` when there are none."""
    blocks: list[Block] = []
    for host in sorted(graphs or {}):
        per_cpu = (graphs or {})[host]
        for cpu in sorted(per_cpu):
            label = "no CPU field" if cpu < 0 else cpu_label(cpu, list(isolated.get(host, [])))
            blocks.append(flamegraph_block(per_cpu[cpu], f"{host} {label}"))
    if not blocks:
        blocks = [Note(empty, "muted")]
    return Section("flamegraphs", title, [*intro, *blocks])


# --- report.html ----------------------------------------------------------------------------


def render_html(summary: Summary, flamegraphs: Mapping[str, Mapping[int, str]] | None = None,
                series: SeriesFile | None = None) -> str:
    """report.html of a run summary; flamegraphs[host][cpu] = SVG (labctl.reports.flamegraph);
    `series` (series.json) adds the charts over time."""
    return render_page(report_page(summary, flamegraphs, series))


def report_page(s: Summary, flamegraphs: Mapping[str, Mapping[int, str]] | None,
                series: SeriesFile | None = None) -> Page:
    sections = [_preparation(s), _drift(s), _neighbours(s), _expectations(s), _load(s), _server_cpus(s),
                *series_sections(s, series)]
    for host, d in s.hosts.items():
        sections += _host_sections(host, d)
    profile = _profile(s)
    sections += [_steps(s), flamegraph_sections(
        flamegraphs, {h: host_isolated(d) for h, d in s.hosts.items()}, "Profile and flame graphs",
        NO_FLAMEGRAPHS if profile else NO_PROFILE, profile)]
    return Page(f"labctl run {s.run_id}", _lead(s), [x for x in sections if x is not None])


def isolated_of(s: Summary, host: str) -> list[int]:
    """A host's isolated CPUs: from its analysis, else from its facts."""
    if host in s.hosts:
        return host_isolated(s.hosts[host])
    facts = s.facts.get(host)
    return sorted(parse_cpulist(facts.isolated)) if facts is not None and facts.isolated else []


def series_sections(s: Summary, series: SeriesFile | None) -> list[Section]:
    """Per host of the series, its charts over the load window (none without a series)."""
    if series is None:
        return []
    sections = []
    for host, data in sorted(series.hosts.items()):
        server = s.server.cpus if s.server is not None and s.server.host == host else None
        made = host_charts(host, data, isolated_of(s, host), server or [])
        sections.append(Section(f"series-{slug(host)}", f"{host}: over time", charts_blocks(made)))
    if sections:
        sections[0].blocks.insert(0, Note(
            f"Per second over the load window (one value per {_intervals(series)}, at its end; "
            "gaps: a sample part was missing). Hover a point for its exact value. Every value is "
            f"in {SeriesFile.FILE}; `labctl export` gives one long table.", "muted"))
    for host, why in sorted(series.missing.items()):
        if host not in series.hosts:
            sections.append(Section(f"series-{slug(host)}", f"{host}: over time",
                                    [Note(f"no series: {why}", "warn")]))
    return sections


def _intervals(series: SeriesFile) -> str:
    seconds = sorted({d.interval for d in series.hosts.values()})
    return " / ".join(f"{v:g} s" for v in seconds) + " interval"


def charts_blocks(made: HostCharts) -> list[Block]:
    blocks: list[Block] = [Chart(caption, svg) for caption, svg in made.charts]
    blocks += [Note(text, "muted") for text in made.notes]
    return blocks or [Note("nothing to draw", "muted")]


def virtualisation_text(lab_facts: Mapping[str, JsonValue]) -> str:
    """The lab's accelerator, virtio-net backend, test NIC models, QEMU and libvirt versions
    ("" when the summary does not say)."""
    virt = [f"{k.replace('_', '-')} {lab_facts[k]}" for k in ("accelerator", "virtio_net_backend")
            if lab_facts.get(k)]
    models = lab_facts.get("test_nic_models")
    if isinstance(models, dict) and models:
        virt.append("test NIC " + ", ".join(f"{host} {model}" for host, model in models.items()))
    virt += [f"{name} {lab_facts[key]}" for key, name in (("qemu_version", "QEMU"),
                                                          ("libvirt_version", "libvirt"))
             if lab_facts.get(key)]
    return ", ".join(virt)


def _lead(s: Summary) -> list[Block]:
    items = [("scenario", s.scenario + (f" — {s.description}" if s.description else "")),
             ("lab", f"{s.lab} (provider {s.provider}), labctl {s.labctl_version}")]
    virt = virtualisation_text(s.lab_facts)
    if virt:
        items.append(("virtualisation", virt))
    items.append(("started", f"{s.started}, window {s.window_seconds:.1f} s"))
    items += [(host, _host_facts_text(f)) for host, f in s.facts.items()]
    blocks: list[Block] = [Facts(items)]
    if any(h.shared_kernel for h in s.hosts.values()):
        blocks.append(Note("netns lab: /proc/interrupts, /proc/softirqs, /proc/stat and "
                           "softnet_stat are host-wide (all namespaces share one kernel); veth "
                           "has no IRQs.", "warn"))
    stopped = stopped_text(s.outcome)
    judged = verdict_text(s)
    if stopped:
        blocks.append(Note(stopped, "fail"))
    elif judged and s.verdict is not None:
        blocks.append(Note(judged, {"passed": "pass", "failed": "fail", "invalid": "fail"}
                           .get(s.verdict.status, "warn")))
    elif s.interrupted or s.error:        # runs made before manifests had an outcome
        blocks.append(Note(f"The run stopped: {s.interrupted or s.error}", "fail"))
    return blocks


def _host_facts_text(f: HostFactsRecord) -> str:
    nic = f.nic
    channels = {k: v for k, v in nic.channels_current.items() if v}
    nic_text = (f"NIC {nic.interface or '?'} ({nic.driver or '?'}"
                + (f", {nic.device}" if nic.device else "")
                + (f", {nic.rx_queues} RX queues" if nic.rx_queues else "")
                + (", channels " + " ".join(f"{k} {v}" for k, v in channels.items())
                   if channels else "") + ")")
    busy = [f"{k.rsplit('.', 1)[-1]} {v}" for k, v in f.sysctls.items() if "busy" in k]
    parts = [f"kernel {f.kernel}", f"CPUs {f.cpus_online}",
             f"isolated {f.isolated or 'none'}", nic_text,
             f"tuned {f.tuned_profile or 'off'}", f"irqbalance {f.irqbalance}"]
    return " · ".join(parts + (["busy polling: " + ", ".join(busy)] if busy else []))


def _preparation(s: Summary) -> Section | None:
    if not s.preparation:
        return None
    blocks: list[Block] = []
    for host, prep in s.preparation.items():
        v = prep.verified
        items = [("tuned", str(v.tuned_profile or "off")),
                 ("irqbalance", str(v.irqbalance or "?")),
                 ("isolcpus", str(v.isolcpus or "none")),
                 ("PID 1 CPUs", str(v.pid1_cpus_allowed or "?")),
                 ("default IRQ affinity", str(v.default_smp_affinity or "?"))]
        reboot = prep.reboot
        if reboot:
            items.append(("restarted", f"{reboot.method}, {reboot.seconds:.0f} s: "
                                       f"{reboot.reason}".rstrip(": ")))
        blocks.append(Facts(items, f"{host}: verified after preparation"))
        if prep.sysctl_changes:
            rows = [[Cell(k, "warn" if "busy" in k else ""), Cell(str(c.before)),
                     Cell(str(c.after))] for k, c in prep.sysctl_changes.items()]
            blocks.append(Table([Cell("sysctl the profile changed"), Cell("before"),
                                 Cell("after")], rows, caption=f"{host}: {len(rows)} sysctl(s) "
                                 "changed by the tuned profile (busy polling marked)"))
    return Section("preparation", "Host preparation", blocks)


def _neighbours(s: Summary) -> Section | None:
    return _watch_section("neighbours", "Neighbours", NEIGHBOUR_HEADER, neighbour_lines(s), "warn")


def _drift(s: Summary) -> Section | None:
    return _watch_section("drift", "Drift", DRIFT_HEADER, drift_lines(s), "fail")


def _watch_section(key: str, title: str, header: list[str], lines: tuple[str, list[list[str]], list[str]],
                   found: str) -> Section | None:
    """A section of one of the run's watches (drift, neighbours): its sentence (styled `found`
    when it found something), a table of what it found, notes on hosts it could not watch."""
    head, rows, notes = lines
    if not head:
        return None
    blocks: list[Block] = [Note(head, found if rows else "pass")]
    if rows:
        blocks.append(Table([Cell(h) for h in header], [[Cell(v) for v in row] for row in rows], key))
    blocks += [Note(n, "warn") for n in notes]
    return Section(key, title, blocks)


def _expectations(s: Summary) -> Section:
    results = s.expectations
    if not results:
        return Section("expectations", "Expectations", [Note("none in this scenario", "muted")])
    passed = sum(r.passed for r in results)
    rows = [[result_cell(r), Cell(r.check + (" (generator)" if r.subject == "generator" else "")),
             Cell(r.description), Cell(r.measured), Cell(r.bound)] for r in results]
    table = Table([Cell("result"), Cell("check"), Cell("what"), Cell("measured"),
                   Cell("expected")], rows, "expectations")
    return Section("expectations", f"Expectations: {passed}/{len(results)} passed", [table])


def result_cell(result: ExpectationRecord | None, detail: bool = False) -> Cell:
    if result is None:
        return Cell("-", "muted")
    short = result.subject == "generator"       # the generator's shortfall: not the DUT's
    word = "PASS" if result.passed else "SHORT" if short else "FAIL"
    text = f"{word} {result.measured}" if detail else word
    cls = "pass" if result.passed else "warn" if short else "fail"
    return Cell(text, cls, title=result.bound)


def _load(s: Summary) -> Section:
    lg = s.loadgen
    if not lg:
        text = ("no load in this run (the scenario has no load)" if not s.server
                else "no load generator results in this run")
        return Section("load", "Load", [Note(text, "muted")])
    blocks: list[Block] = [Table(LOAD_HEADER, [load_row(lg)], "load")]
    blocks.append(load_verdict(lg))
    described = generator_text(lg, s.generator)
    if described:
        blocks.append(Note(described, "muted"))
    if lg.client_workers:
        rows = [[Cell(str(i)), Cell(str(w.pid if w.pid is not None else "?")), num(w.rate),
                 num(w.achieved_rate), num(w.sent), num(w.errors)]
                for i, w in enumerate(lg.client_workers)]
        blocks.append(Table([Cell("client worker"), Cell("PID"), Cell("asked msg/s", "num"),
                             Cell("achieved msg/s", "num"), Cell("sent", "num"),
                             Cell("errors", "num")], rows, "workers"))
    return Section("load", "Load: asked vs achieved", blocks)


LOAD_HEADER = [Cell(h, "" if i < 1 else "num") for i, h in enumerate(
    ["protocol", "asked msg/s", "achieved msg/s", "reached", "sent", "received", "loss",
     "server socket drops", "client errors"])]


def load_row(lg: LoadSummary, first: Cell | None = None) -> list[Cell]:
    share = reached(lg)
    short = fell_short(lg)
    loss = lg.loss
    return [first or Cell(str(lg.protocol or "?")), num(lg.asked_rate),
            num(lg.achieved_rate, cls="fail" if short else ""),
            Cell("n/a" if share is None else f"{share:.1%}", "num fail" if short else "num"),
            num(lg.sent), num(lg.received),
            Cell("n/a" if loss is None else f"{loss:.2%}", "num fail" if loss else "num"),
            num(lg.server_socket_drops), num(lg.client_errors)]


def load_verdict(lg: LoadSummary, who: str = "") -> Note:
    share, asked = reached(lg), lg.asked_rate or 0
    achieved = lg.achieved_rate
    if share is None:
        return Note(f"{who}The client sent as fast as it could: {achieved:.0f} "
                    "msg/s (reported, not judged).", "muted")
    if share < RATE_REACHED:
        return Note(f"{who}The client fell short: it reached only {achieved:.0f} of the asked "
                    f"{fmt(asked)} msg/s ({share:.0%}): the load generator is the limit, not the "
                    "DUT.", "fail")
    return Note(f"{who}The client reached the asked rate: {achieved:.0f} of {fmt(asked)} msg/s "
                f"({share:.0%}).", "pass")


def _server_cpus(s: Summary) -> Section | None:
    """Per CPU the server may run on: how busy, and which server workers last ran there."""
    server, lg = s.server, s.loadgen or LoadSummary()
    if not server:
        return None
    d = s.hosts.get(server.host) or HostAnalysis()
    percent = d.cpu_percent
    workers = lg.server_workers
    cpus = sorted(server.cpus or []) or sorted(
        {w.last_cpu for w in workers if w.last_cpu is not None})
    title = (f"Server CPUs ({server.host}, {server.workers} worker(s), pinned to "
             f"{','.join(map(str, cpus)) if server.cpus else 'no CPUs'})")
    if not percent or not cpus:
        return Section("server-cpus", title, [Note("no CPU time for the server's CPUs", "muted")])
    iso, duration = host_isolated(d), lg.duration or s.window_seconds or 0
    rows = []
    for cpu in cpus:
        pct = percent.get(cpu, {})
        busy = 100.0 - pct.get("idle", 100.0) - pct.get("iowait", 0.0)
        here = [f"worker {i} (PID {w.pid}, {_worker_cpu(w, duration)})"
                for i, w in enumerate(workers) if w.last_cpu == cpu]
        rows.append([Cell(cpu_label(cpu, iso), "iso" if cpu in iso else ""),
                     num(busy, heat_style(busy, 100.0)), num(pct.get("user", 0.0)),
                     num(pct.get("system", 0.0)), num(pct.get("softirq", 0.0)),
                     Cell(", ".join(here) or "-")])
    header = [Cell("CPU")] + [Cell(h, "num") for h in ("busy %", "%user", "%system", "%softirq")]
    return Section("server-cpus", title, [Table(header + [Cell("server workers last ran here")],
                                                rows, "server-cpus heatmap")])


def _worker_cpu(worker: ServerWorker, duration: float) -> str:
    used = worker.cpu_time_user + worker.cpu_time_system
    return f"{100 * used / duration:.0f}% of a CPU" if duration else f"{used:.1f} s CPU"


# --- per host -------------------------------------------------------------------------------


def _host_sections(host: str, d: HostAnalysis) -> list[Section]:
    cpus, iso = host_cpus(d), host_isolated(d)
    blocks: list[Block] = [ISOLATED_LEGEND] if iso else []
    for part in (_nic_irqs, _softirqs, _softnet, _cpu_time, _rps):
        blocks += part(d, cpus, iso)
    return [Section(f"host-{slug(host)}", f"{host}: per CPU", blocks)]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text) or "host"


def _nic_irqs(d: HostAnalysis, cpus: list[int], iso: list[int]) -> list[Block]:
    title = "NIC RX IRQs per queue and CPU (delta over the window)"
    if not d.nic_irqs:
        text = ("none: veth in a netns lab has no IRQs" if d.shared_kernel
                else "no interrupt snapshots (or no NIC device) in this run")
        return [Note(f"{title}: {text}", "muted")]
    top = max((v for r in d.nic_irqs for v in r.per_cpu.values()), default=0)
    body = []
    for r in d.nic_irqs:
        label = Cell(f"rx-{r.queue}", "label", title=f"{r.name}, IRQ {r.irq}")
        body.append([label, Cell(r.irq, "num"),
                     Cell(_affinity_text(d.irq_affinity.get(_int(r.irq))))]
                    + heat_cells(r.per_cpu, cpus, iso, top) + [num(sum(r.per_cpu.values()))])
    header = ([Cell("queue"), Cell("IRQ", "num"), Cell("affinity (effective)")]
              + cpu_header(cpus, iso) + [Cell("all", "num")])
    return [Table(header, body, "heatmap nic-irqs",
                  f"{title}; colour: share of the largest count in the table")] + _unmapped_irqs(d, cpus, iso)


def _unmapped_irqs(d: HostAnalysis, cpus: list[int], iso: list[int]) -> list[Block]:
    """The NIC's vectors that name no RX queue (a link vector, or a driver labctl does not
    know), per IRQ name, with why: measured, not attributed to a queue."""
    if not d.nic_unmapped_irqs:
        return []
    top = max((v for r in d.nic_unmapped_irqs for v in r.per_cpu.values()), default=0)
    body = [[Cell(f"IRQ {r.irq} {r.name}", "label"), Cell(r.why)]
            + heat_cells(r.per_cpu, cpus, iso, top) + [num(sum(r.per_cpu.values()))]
            for r in d.nic_unmapped_irqs]
    header = [Cell("vector"), Cell("why")] + cpu_header(cpus, iso) + [Cell("all", "num")]
    return [Table(header, body, "heatmap nic-unmapped",
                  "NIC vectors not mapped to an RX queue, per IRQ name (delta over the window)")]


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return -1


def _affinity_text(affinity: AffinityRecord | None) -> str:
    if not affinity:
        return "?"
    smp, effective = affinity.smp, affinity.effective
    return f"{smp} ({effective})" if effective and effective != smp else smp


def heat_rows(named: Iterable[tuple[str, Mapping[int, float] | None]], cpus: Sequence[int],
              iso: Sequence[int], total: bool = True, show: Callable[[float], str] = fmt
              ) -> list[list[Cell]]:
    """A heat row per (name, per-CPU values), each coloured against its own largest value."""
    rows = []
    for name, values in named:
        if values is None:
            continue
        cells = [Cell(name, "label")] + heat_cells(values, cpus, iso, show=show)
        if total:
            cells += [num(sum(values.get(c, 0) for c in cpus)), Cell(share_text(values, cpus))]
        rows.append(cells)
    return rows


def _softirqs(d: HostAnalysis, cpus: list[int], iso: list[int]) -> list[Block]:
    rows = heat_rows(((n, softirq_per_cpu(d, n)) for n in ("NET_RX", "NET_TX")), cpus, iso)
    if not rows:
        return [Note("Softirqs: no /proc/softirqs snapshots in this run", "muted")]
    header = [Cell("softirq")] + cpu_header(cpus, iso) + [Cell("all", "num"), Cell("share")]
    out: list[Block] = [Table(header, rows, "heatmap softirqs", "NET_RX / NET_TX softirqs per "
                              "CPU (delta); colour: share of the row's largest value")]
    before = d.softirq_counters.get("before", {}).get("NET_RX")
    after = d.softirq_counters.get("after", {}).get("NET_RX")
    if before and after:
        rows = [[Cell(phase, "label")] + heat_cells(values, cpus, iso, top=0)
                for phase, values in (("before", before), ("after", after))]
        out.append(Table([Cell("NET_RX")] + cpu_header(cpus, iso), rows, "counters",
                         "NET_RX per CPU: /proc/softirqs before and after the window"))
    return out


def _softnet(d: HostAnalysis, cpus: list[int], iso: list[int]) -> list[Block]:
    rows = heat_rows(((c, softnet_per_cpu(d, c)) for c in SOFTNET_COLUMNS), cpus, iso)
    if not rows:
        return [Note("softnet_stat: no snapshots in this run", "muted")]
    header = [Cell("column")] + cpu_header(cpus, iso) + [Cell("all", "num"), Cell("share")]
    return [Table(header, rows, "heatmap softnet", "softnet_stat per CPU (delta); colour: "
                  "share of the row's largest value")]


def _cpu_time(d: HostAnalysis, cpus: list[int], iso: list[int]) -> list[Block]:
    percent = d.cpu_percent
    if not percent:
        return [Note("CPU time: no /proc/stat snapshots in this run", "muted")]
    named = [(f"%{k}", {c: p.get(k, 0.0) for c, p in percent.items()}) for k in CPU_TIME_KEYS]
    rows = heat_rows(named[:-1], cpus, iso, total=False)
    idle = named[-1][1]
    rows.append([Cell(named[-1][0], "label")] + heat_cells(idle, cpus, iso, top=0))
    return [Table([Cell("time")] + cpu_header(cpus, iso), rows, "heatmap cpu-time",
                  "CPU time per CPU over the window (%); colour: share of the row's largest "
                  "value (%idle not coloured)")]


def _rps(d: HostAnalysis, cpus: list[int], iso: list[int]) -> list[Block]:
    out: list[Block] = []
    queues = d.nic_queues
    if queues:
        keys = sorted({k for v in queues.values() for k in v if k.endswith("packets")})
        rows = [[Cell(q, "label")] + [num(v.get(k, 0)) for k in keys]
                for q, v in sorted(queues.items())]
        out.append(Table([Cell("queue")] + [Cell(k, "num") for k in keys], rows, "queues",
                         "NIC queue counters (delta)"))
    before, after = d.rps_before, d.rps_after
    if before or after:
        rows = [[Cell(f"rx-{q}", "label"), Cell(before.get(q) or "off"),
                 Cell(after.get(q) or "off")] for q in sorted(set(before) | set(after))]
        out.append(Table([Cell("queue"), Cell("before load"), Cell("after load")], rows, "rps",
                         "RPS CPUs (read back)"))
    out += _rps_moved(d, after)
    return out


def _rps_moved(d: HostAnalysis, after: Mapping[int, str]) -> list[Block]:
    targets = sorted({c for mask in after.values() if mask for c in parse_cpulist(mask)})
    if not targets:
        return []
    rows = []
    for what, values in (("softnet received_rps", softnet_per_cpu(d, "received_rps")),
                         ("NET_RX softirqs", softirq_per_cpu(d, "NET_RX")),
                         ("softnet processed", softnet_per_cpu(d, "processed"))):
        total = sum((values or {}).values())
        on = sum((values or {}).get(c, 0) for c in targets)
        rows.append([Cell(what, "label"), num(on), num(total),
                     Cell(f"{on / total:.1%}" if total else "-", "num")])
    return [Table([Cell("counter"), Cell("on the RPS CPUs", "num"), Cell("all CPUs", "num"),
                   Cell("share moved", "num")], rows, "rps-moved",
                  f"RPS: work moved to CPUs {','.join(map(str, targets))}")]


def _profile(s: Summary) -> list[Block]:
    """Per profiled CPU: samples and the share of them whose stack holds each receive-path
    frame (as report.md), and the recording's diagnostics."""
    p = s.profile
    if not p:
        return []
    iso = host_isolated(s.hosts.get(p.host))
    frames = [f for f in RX_FRAMES if any(f in v.frames for v in p.per_cpu.values())]
    rows = [[Cell(cpu_label(cpu, iso), "iso" if cpu in iso else ""), num(v.samples)]
            + [_share_cell(v.frames.get(f)) for f in frames]
            for cpu, v in sorted(p.per_cpu.items())]
    title = (f"{p.host}: perf record -g at {p.frequency or '?'} Hz on CPUs "
             f"{','.join(map(str, p.cpus))}, event {p.event or '?'}")
    blocks: list[Block] = [Note(title, "label")]
    if rows:
        blocks.append(Table([Cell("CPU"), Cell("samples", "num")] + [Cell(f, "num") for f in frames],
                            rows, "heatmap profile", "Share of each CPU's samples whose stack "
                            "holds the frame"))
    return blocks + [Note(d, "warn") for d in p.diagnostics]


def _share_cell(share: float | None) -> Cell:
    if share is None:
        return Cell("-", "num muted")
    return Cell(f"{share:.1%}", "num", heat_style(share, 1.0))


# --- steps, restore, warnings ---------------------------------------------------------------

_STATUS_CLASS = {"ok": "pass", "refused-as-expected": "pass", "failed": "fail", "skipped": "warn",
                 "not-run": "warn"}


def _steps(s: Summary) -> Section:
    blocks: list[Block] = []
    steps = [st for st in s.steps if st.kind in ("change", "skip")]
    if steps:
        rows = [[Cell(st.host), _status(st), Cell(st.description),
                 Cell(st.observed or ""), Cell(_output(st))] for st in steps]
        blocks.append(Table([Cell("host"), Cell("status"), Cell("step"), Cell("read back"),
                             Cell("output")], rows, "steps", "Tuning steps"))
    else:
        blocks.append(Note("no tuning steps in this run", "muted"))
    restore = s.restore
    if restore:
        failed = [r for r in restore if r.status != "ok"]
        blocks.append(Note(f"Restore: {len(restore) - len(failed)}/{len(restore)} steps ok"
                           + (" (keep_tuning: tuning left in place)" if s.keep_tuning
                              else ""), "fail" if failed else "pass"))
        rows = [[Cell(r.host), _status(r), Cell(r.description), Cell(_output(r))]
                for r in restore]
        blocks.append(Table([Cell("host"), Cell("status"), Cell("restore step"),
                             Cell("output")], rows, "restore"))
    elif s.keep_tuning:
        blocks.append(Note("keep_tuning: tuning left in place, nothing restored", "warn"))
    blocks += [Note(w, "warn") for w in s.warnings]
    return Section("steps", "Tuning steps and restore", blocks)


def _status(step: StepRecord) -> Cell:
    return Cell(step.status, _STATUS_CLASS.get(step.status, ""))


def _output(step: StepRecord) -> str:
    return (step.output or "") if step.status != "ok" else ""
