"""Reports (pure): a run's summary -> report.html, one self-contained page.

The same facts as report.md, drawn for the eye: per-CPU heatmaps (CSS-coloured tables, class
``heatmap``; the NIC's RX IRQs by queue x CPU coloured against the table's largest count, the
per-CPU rows of softirqs, softnet_stat and CPU time each against its own row's largest value),
isolated CPUs marked ``*`` with a blue bar under their cells, and the run's flame graphs. Inline
CSS only, no external URL, no script of the page's own: the only scripts are the flame graphs'.

Keys of the summary's per-CPU dicts are ints when it is fresh from runner.build_summary and
strings when it was read back from summary.json; every lookup goes through int_keys(). Every
section says so when its data is missing (a netns run has no NIC IRQs, a run without load no
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

Page, Section and the blocks are the page's model; compare.py fills the same model, so
report.html and compare.html share one template (templates/report.html.j2) and one style.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar, Union

from labctl.analysis import perhost as analysis
from labctl.cpulist import parse_cpulist
from labctl.packaged import template_environment
from labctl.reports.markdown import (
    RATE_REACHED,
    SOFTNET_COLUMNS,
    cpu_label,
    generator_text,
    stopped_text,
    verdict_text,
)
from labctl.reports.profiles import RX_FRAMES

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

V = TypeVar("V")


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


Block = Union[Table, Note, Facts, Flamegraph]


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


# --- summary access (int or string keys) ----------------------------------------------------


def int_keys(mapping: Mapping[Any, V] | None) -> dict[int, V]:
    """{"3": v} or {3: v} -> {3: v}; keys that are not numbers are left out."""
    out: dict[int, V] = {}
    for key, value in (mapping or {}).items():
        try:
            out[int(key)] = value
        except (TypeError, ValueError):
            continue
    return out


def host_cpus(d: Mapping[str, Any]) -> list[int]:
    """A host's online CPUs, or the CPUs its per-CPU data mentions."""
    if d.get("cpus"):
        return sorted(int(c) for c in d["cpus"])
    seen: set[int] = set()
    for values in (d.get("softnet"), d.get("cpu_percent"), *(d.get("softirqs") or {}).values()):
        seen.update(int_keys(values))
    return sorted(seen)


def host_isolated(d: Mapping[str, Any]) -> list[int]:
    return sorted(int(c) for c in d.get("isolated") or [])


def nic_irqs_per_cpu(d: Mapping[str, Any]) -> dict[int, int] | None:
    """The NIC's RX IRQs per CPU, all queues together; None without IRQ data."""
    return analysis.nic_irqs_per_cpu(d["nic_irqs"]) if d.get("nic_irqs") else None


def softirq_per_cpu(d: Mapping[str, Any], name: str) -> dict[int, int] | None:
    values = (d.get("softirqs") or {}).get(name)
    return None if values is None else {c: int(v) for c, v in int_keys(values).items()}


def softnet_per_cpu(d: Mapping[str, Any], column: str) -> dict[int, int] | None:
    rows = int_keys(d.get("softnet"))
    if not rows or not any(column in row for row in rows.values()):
        return None
    return {cpu: int(row.get(column, 0)) for cpu, row in rows.items()}


# --- formatting and colour ------------------------------------------------------------------


def fmt(value: Any) -> str:
    """Numbers as report.md writes them: 1,234 and 12.3; None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def num(value: Any, style: str = "", cls: str = "") -> Cell:
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
               top: float | None = None, show: Callable[[Any], str] = fmt) -> list[Cell]:
    """One cell per CPU, coloured against top (default: the largest of these values)."""
    peak = max((values.get(c, 0) for c in cpus), default=0) if top is None else top
    return [Cell(show(values.get(c, 0)), "num iso" if c in isolated else "num",
                 heat_style(values.get(c, 0), peak)) for c in cpus]


def share_text(values: Mapping[int, float], cpus: Sequence[int]) -> str:
    total = sum(values.get(c, 0) for c in cpus)
    if not total:
        return "-"
    top = max(cpus, key=lambda c: values.get(c, 0))
    return f"{values.get(top, 0) / total:.0%} on CPU{top}"


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


def flamegraph_sections(graphs: Mapping[str, Mapping[Any, str]] | None,
                        isolated: Mapping[str, Sequence[int]], title: str, empty: str,
                        intro: Sequence[Block] = ()) -> Section:
    """Per host and CPU, the given SVGs (after `intro`); `empty` when there are none."""
    blocks: list[Block] = []
    for host in sorted(graphs or {}):
        per_cpu = int_keys((graphs or {})[host])
        for cpu in sorted(per_cpu):
            label = "no CPU field" if cpu < 0 else cpu_label(cpu, list(isolated.get(host, [])))
            blocks.append(flamegraph_block(per_cpu[cpu], f"{host} {label}"))
    if not blocks:
        blocks = [Note(empty, "muted")]
    return Section("flamegraphs", title, [*intro, *blocks])


# --- report.html ----------------------------------------------------------------------------


def render_html(summary: dict[str, Any],
                flamegraphs: dict[str, dict[int, str]] | None = None) -> str:
    """report.html of a run summary; flamegraphs[host][cpu] = SVG (labctl.reports.flamegraph)."""
    return render_page(report_page(summary, flamegraphs))


def report_page(s: Mapping[str, Any], flamegraphs: Mapping[str, Mapping[Any, str]] | None
                ) -> Page:
    hosts: Mapping[str, Any] = s.get("hosts") or {}
    sections = [_preparation(s), _expectations(s), _load(s), _server_cpus(s)]
    for host, d in hosts.items():
        sections += _host_sections(host, d)
    profile = _profile(s)
    sections += [_steps(s), flamegraph_sections(
        flamegraphs, {h: host_isolated(d) for h, d in hosts.items()}, "Profile and flame graphs",
        NO_FLAMEGRAPHS if profile else NO_PROFILE, profile)]
    return Page(f"labctl run {s.get('run_id', '?')}", _lead(s),
                [x for x in sections if x is not None])


def lab_name_and_facts(s: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The lab's name, and its facts (accelerator, virtio_net_backend) when the summary holds
    them: as ``lab_facts``, or ``lab`` as the manifest's {"name", "facts"}."""
    lab = s.get("lab")
    if isinstance(lab, Mapping):
        return str(lab.get("name", "?")), s.get("lab_facts") or lab.get("facts") or {}
    return str(lab or "?"), s.get("lab_facts") or {}


def _lead(s: Mapping[str, Any]) -> list[Block]:
    lab, lab_facts = lab_name_and_facts(s)
    items = [("scenario", str(s.get("scenario", "?")) + (f" — {s['description']}"
                                                         if s.get("description") else "")),
             ("lab", f"{lab} (provider {s.get('provider', '?')}), labctl "
                     f"{s.get('labctl_version', '?')}")]
    virt = [f"{k} {lab_facts[k]}" for k in ("accelerator", "virtio_net_backend") if lab_facts.get(k)]
    if virt:
        items.append(("virtualisation", ", ".join(virt).replace("_", "-")))
    items.append(("started", f"{s.get('started', '?')}, window "
                             f"{float(s.get('window_seconds') or 0):.1f} s"))
    items += [(host, _host_facts_text(f)) for host, f in (s.get("facts") or {}).items()]
    blocks: list[Block] = [Facts(items)]
    if s.get("provider") == "netns":
        blocks.append(Note("netns lab: /proc/interrupts, /proc/softirqs, /proc/stat and "
                           "softnet_stat are host-wide (all namespaces share one kernel); veth "
                           "has no IRQs.", "warn"))
    stopped = stopped_text(s.get("outcome"))
    judged = verdict_text(s)
    if stopped:
        blocks.append(Note(stopped, "fail"))
    elif judged:
        status = (s.get("verdict") or {}).get("status")
        blocks.append(Note(judged, {"passed": "pass", "failed": "fail"}.get(str(status), "warn")))
    elif s.get("interrupted") or s.get("error"):        # runs made before manifests had an outcome
        blocks.append(Note(f"The run stopped: {s.get('interrupted') or s.get('error')}", "fail"))
    return blocks


def _host_facts_text(f: Mapping[str, Any]) -> str:
    nic = f.get("nic") or {}
    channels = {k: v for k, v in (nic.get("channels_current") or {}).items() if v}
    nic_text = (f"NIC {nic.get('interface', '?')} ({nic.get('driver') or '?'}"
                + (f", {nic['device']}" if nic.get("device") else "")
                + (f", {nic['rx_queues']} RX queues" if nic.get("rx_queues") else "")
                + (", channels " + " ".join(f"{k} {v}" for k, v in channels.items())
                   if channels else "") + ")")
    sysctls = f.get("sysctls") or {}
    busy = [f"{k.rsplit('.', 1)[-1]} {v}" for k, v in sysctls.items() if "busy" in k]
    parts = [f"kernel {f.get('kernel', '?')}", f"CPUs {f.get('cpus_online', '?')}",
             f"isolated {f.get('isolated') or 'none'}", nic_text,
             f"tuned {f.get('tuned_profile') or 'off'}", f"irqbalance {f.get('irqbalance', '?')}"]
    return " · ".join(parts + (["busy polling: " + ", ".join(busy)] if busy else []))


def _preparation(s: Mapping[str, Any]) -> Section | None:
    preparation: Mapping[str, Any] = s.get("preparation") or {}
    if not preparation:
        return None
    blocks: list[Block] = []
    for host, prep in preparation.items():
        v = prep.get("verified") or {}
        items = [("tuned", str(v.get("tuned_profile") or "off")),
                 ("irqbalance", str(v.get("irqbalance", "?"))),
                 ("isolcpus", str(v.get("isolcpus") or "none")),
                 ("PID 1 CPUs", str(v.get("pid1_cpus_allowed", "?"))),
                 ("default IRQ affinity", str(v.get("default_smp_affinity", "?")))]
        reboot = prep.get("reboot")
        if reboot:
            items.append(("restarted", f"{reboot.get('method')}, "
                                       f"{float(reboot.get('seconds') or 0):.0f} s: "
                                       f"{reboot.get('reason', '')}".rstrip(": ")))
        blocks.append(Facts(items, f"{host}: verified after preparation"))
        changes: Mapping[str, Any] = prep.get("sysctl_changes") or {}
        if changes:
            rows = [[Cell(k, "warn" if "busy" in k else ""), Cell(str(c.get("before"))),
                     Cell(str(c.get("after")))] for k, c in changes.items()]
            blocks.append(Table([Cell("sysctl the profile changed"), Cell("before"),
                                 Cell("after")], rows, caption=f"{host}: {len(rows)} sysctl(s) "
                                 "changed by the tuned profile (busy polling marked)"))
    return Section("preparation", "Host preparation", blocks)


def _expectations(s: Mapping[str, Any]) -> Section:
    results = s.get("expectations") or []
    if not results:
        return Section("expectations", "Expectations", [Note("none in this scenario", "muted")])
    passed = sum(bool(r.get("passed")) for r in results)
    rows = [[result_cell(r),
             Cell(str(r.get("check", "")) + (" (generator)" if r.get("subject") == "generator" else "")),
             Cell(str(r.get("description", ""))),
             Cell(str(r.get("measured", ""))), Cell(str(r.get("bound", "")))]
            for r in results]
    table = Table([Cell("result"), Cell("check"), Cell("what"), Cell("measured"),
                   Cell("expected")], rows, "expectations")
    return Section("expectations", f"Expectations: {passed}/{len(results)} passed", [table])


def result_cell(result: Mapping[str, Any] | None, detail: bool = False) -> Cell:
    if result is None:
        return Cell("-", "muted")
    short = result.get("subject") == "generator"       # the generator's shortfall: not the DUT's
    word = "PASS" if result.get("passed") else "SHORT" if short else "FAIL"
    text = f"{word} {result.get('measured', '')}" if detail else word
    cls = "pass" if result.get("passed") else "warn" if short else "fail"
    return Cell(text, cls, title=str(result.get("bound", "")))


def _load(s: Mapping[str, Any]) -> Section:
    lg = s.get("loadgen")
    if not lg:
        text = ("no load in this run (the scenario has no load)" if not s.get("server")
                else "no load generator results in this run")
        return Section("load", "Load", [Note(text, "muted")])
    blocks: list[Block] = [Table(LOAD_HEADER, [load_row(lg)], "load")]
    blocks.append(load_verdict(lg))
    described = generator_text(dict(lg), s.get("generator"))
    if described:
        blocks.append(Note(described, "muted"))
    workers = lg.get("client_workers") or []
    if workers:
        rows = [[Cell(str(i)), Cell(str(w.get("pid", "?"))), num(w.get("rate")),
                 num(w.get("achieved_rate")), num(w.get("sent")), num(w.get("errors"))]
                for i, w in enumerate(workers)]
        blocks.append(Table([Cell("client worker"), Cell("PID"), Cell("asked msg/s", "num"),
                             Cell("achieved msg/s", "num"), Cell("sent", "num"),
                             Cell("errors", "num")], rows, "workers"))
    return Section("load", "Load: asked vs achieved", blocks)


LOAD_HEADER = [Cell(h, "" if i < 1 else "num") for i, h in enumerate(
    ["protocol", "asked msg/s", "achieved msg/s", "reached", "sent", "received", "loss",
     "server socket drops", "client errors"])]


def reached(lg: Mapping[str, Any]) -> float | None:
    asked = float(lg.get("asked_rate") or 0)
    return float(lg.get("achieved_rate") or 0) / asked if asked else None


def load_row(lg: Mapping[str, Any], first: Cell | None = None) -> list[Cell]:
    share = reached(lg)
    short = share is not None and share < RATE_REACHED
    loss = lg.get("loss")
    return [first or Cell(str(lg.get("protocol") or "?")), num(lg.get("asked_rate")),
            num(float(lg.get("achieved_rate") or 0), cls="fail" if short else ""),
            Cell("n/a" if share is None else f"{share:.1%}", "num fail" if short else "num"),
            num(lg.get("sent")), num(lg.get("received")),
            Cell("n/a" if loss is None else f"{loss:.2%}", "num fail" if loss else "num"),
            num(lg.get("server_socket_drops")), num(lg.get("client_errors"))]


def load_verdict(lg: Mapping[str, Any], who: str = "") -> Note:
    share, asked = reached(lg), lg.get("asked_rate") or 0
    if share is None:
        return Note(f"{who}The client sent as fast as it could: {float(lg.get('achieved_rate') or 0):.0f} "
                    "msg/s (reported, not judged).", "muted")
    achieved = float(lg.get("achieved_rate") or 0)
    if share < RATE_REACHED:
        return Note(f"{who}The client fell short: it reached only {achieved:.0f} of the asked "
                    f"{fmt(asked)} msg/s ({share:.0%}): the load generator is the limit, not the "
                    "DUT.", "fail")
    return Note(f"{who}The client reached the asked rate: {achieved:.0f} of {fmt(asked)} msg/s "
                f"({share:.0%}).", "pass")


def _server_cpus(s: Mapping[str, Any]) -> Section | None:
    """Per CPU the server may run on: how busy, and which server workers last ran there."""
    server, lg = s.get("server"), s.get("loadgen") or {}
    if not server:
        return None
    d = (s.get("hosts") or {}).get(server.get("host")) or {}
    percent = int_keys(d.get("cpu_percent"))
    workers = lg.get("server_workers") or []
    cpus = sorted(int(c) for c in server.get("cpus") or []) or sorted(
        {int(w["last_cpu"]) for w in workers if w.get("last_cpu") is not None})
    title = (f"Server CPUs ({server.get('host')}, {server.get('workers')} worker(s), pinned to "
             f"{','.join(map(str, cpus)) if server.get('cpus') else 'no CPUs'})")
    if not percent or not cpus:
        return Section("server-cpus", title, [Note("no CPU time for the server's CPUs", "muted")])
    iso, duration = host_isolated(d), lg.get("duration") or s.get("window_seconds") or 0
    rows = []
    for cpu in cpus:
        pct = percent.get(cpu, {})
        busy = 100.0 - pct.get("idle", 100.0) - pct.get("iowait", 0.0)
        here = [f"worker {i} (PID {w.get('pid')}, {_worker_cpu(w, duration)})"
                for i, w in enumerate(workers) if w.get("last_cpu") == cpu]
        rows.append([Cell(cpu_label(cpu, iso), "iso" if cpu in iso else ""),
                     num(busy, heat_style(busy, 100.0)), num(pct.get("user", 0.0)),
                     num(pct.get("system", 0.0)), num(pct.get("softirq", 0.0)),
                     Cell(", ".join(here) or "-")])
    header = [Cell("CPU")] + [Cell(h, "num") for h in ("busy %", "%user", "%system", "%softirq")]
    return Section("server-cpus", title, [Table(header + [Cell("server workers last ran here")],
                                                rows, "server-cpus heatmap")])


def _worker_cpu(worker: Mapping[str, Any], duration: float) -> str:
    used = float(worker.get("cpu_time_user", 0.0)) + float(worker.get("cpu_time_system", 0.0))
    return f"{100 * used / duration:.0f}% of a CPU" if duration else f"{used:.1f} s CPU"


# --- per host -------------------------------------------------------------------------------


def _host_sections(host: str, d: Mapping[str, Any]) -> list[Section]:
    cpus, iso = host_cpus(d), host_isolated(d)
    blocks: list[Block] = [ISOLATED_LEGEND] if iso else []
    for part in (_nic_irqs, _softirqs, _softnet, _cpu_time, _rps):
        blocks += part(d, cpus, iso)
    return [Section(f"host-{slug(host)}", f"{host}: per CPU", blocks)]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text) or "host"


def _nic_irqs(d: Mapping[str, Any], cpus: list[int], iso: list[int]) -> list[Block]:
    title = "NIC RX IRQs per queue and CPU (delta over the window)"
    if not d.get("nic_irqs"):
        text = ("none: veth in a netns lab has no IRQs" if d.get("shared_kernel")
                else "no interrupt snapshots (or no NIC device) in this run")
        return [Note(f"{title}: {text}", "muted")]
    affinity = int_keys(d.get("irq_affinity"))
    rows = [(r, int_keys(r.get("per_cpu"))) for r in d["nic_irqs"]]
    top = max((v for _, per_cpu in rows for v in per_cpu.values()), default=0)
    body = []
    for r, per_cpu in rows:
        label = Cell(f"rx-{r.get('queue')}", "label", title=f"{r.get('name')}, IRQ {r.get('irq')}")
        body.append([label, Cell(f"{r.get('irq')}", "num"),
                     Cell(_affinity_text(affinity.get(_int(r.get("irq")))))]
                    + heat_cells(per_cpu, cpus, iso, top) + [num(sum(per_cpu.values()))])
    header = ([Cell("queue"), Cell("IRQ", "num"), Cell("affinity (effective)")]
              + cpu_header(cpus, iso) + [Cell("all", "num")])
    return [Table(header, body, "heatmap nic-irqs",
                  f"{title}; colour: share of the largest count in the table")]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _affinity_text(affinity: Mapping[str, str] | None) -> str:
    if not affinity:
        return "?"
    smp, effective = affinity.get("smp", "?"), affinity.get("effective")
    return f"{smp} ({effective})" if effective and effective != smp else smp


def heat_rows(named: Iterable[tuple[str, Mapping[int, float] | None]], cpus: Sequence[int],
              iso: Sequence[int], total: bool = True, show: Callable[[Any], str] = fmt
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


def _softirqs(d: Mapping[str, Any], cpus: list[int], iso: list[int]) -> list[Block]:
    rows = heat_rows(((n, softirq_per_cpu(d, n)) for n in ("NET_RX", "NET_TX")), cpus, iso)
    if not rows:
        return [Note("Softirqs: no /proc/softirqs snapshots in this run", "muted")]
    header = [Cell("softirq")] + cpu_header(cpus, iso) + [Cell("all", "num"), Cell("share")]
    out: list[Block] = [Table(header, rows, "heatmap softirqs", "NET_RX / NET_TX softirqs per "
                              "CPU (delta); colour: share of the row's largest value")]
    counters = (d.get("softirq_counters") or {})
    before = int_keys((counters.get("before") or {}).get("NET_RX"))
    after = int_keys((counters.get("after") or {}).get("NET_RX"))
    if before and after:
        rows = [[Cell(phase, "label")] + heat_cells(values, cpus, iso, top=0)
                for phase, values in (("before", before), ("after", after))]
        out.append(Table([Cell("NET_RX")] + cpu_header(cpus, iso), rows, "counters",
                         "NET_RX per CPU: /proc/softirqs before and after the window"))
    return out


def _softnet(d: Mapping[str, Any], cpus: list[int], iso: list[int]) -> list[Block]:
    rows = heat_rows(((c, softnet_per_cpu(d, c)) for c in SOFTNET_COLUMNS), cpus, iso)
    if not rows:
        return [Note("softnet_stat: no snapshots in this run", "muted")]
    header = [Cell("column")] + cpu_header(cpus, iso) + [Cell("all", "num"), Cell("share")]
    return [Table(header, rows, "heatmap softnet", "softnet_stat per CPU (delta); colour: "
                  "share of the row's largest value")]


def _cpu_time(d: Mapping[str, Any], cpus: list[int], iso: list[int]) -> list[Block]:
    percent = int_keys(d.get("cpu_percent"))
    if not percent:
        return [Note("CPU time: no /proc/stat snapshots in this run", "muted")]
    named = [(f"%{k}", {c: float(p.get(k, 0.0)) for c, p in percent.items()})
             for k in CPU_TIME_KEYS]
    rows = heat_rows(named[:-1], cpus, iso, total=False)
    idle = named[-1][1]
    rows.append([Cell(named[-1][0], "label")] + heat_cells(idle, cpus, iso, top=0))
    return [Table([Cell("time")] + cpu_header(cpus, iso), rows, "heatmap cpu-time",
                  "CPU time per CPU over the window (%); colour: share of the row's largest "
                  "value (%idle not coloured)")]


def _rps(d: Mapping[str, Any], cpus: list[int], iso: list[int]) -> list[Block]:
    out: list[Block] = []
    queues: Mapping[str, Any] = d.get("nic_queues") or {}
    if queues:
        keys = sorted({k for v in queues.values() for k in v if k.endswith("packets")})
        rows = [[Cell(q, "label")] + [num(v.get(k, 0)) for k in keys]
                for q, v in sorted(queues.items())]
        out.append(Table([Cell("queue")] + [Cell(k, "num") for k in keys], rows, "queues",
                         "NIC queue counters (delta)"))
    before, after = int_keys(d.get("rps_before")), int_keys(d.get("rps_after"))
    if before or after:
        rows = [[Cell(f"rx-{q}", "label"), Cell(before.get(q) or "off"),
                 Cell(after.get(q) or "off")] for q in sorted(set(before) | set(after))]
        out.append(Table([Cell("queue"), Cell("before load"), Cell("after load")], rows, "rps",
                         "RPS CPUs (read back)"))
    out += _rps_moved(d, after)
    return out


def _rps_moved(d: Mapping[str, Any], after: Mapping[int, str]) -> list[Block]:
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


def _profile(s: Mapping[str, Any]) -> list[Block]:
    """Per profiled CPU: samples and the share of them whose stack holds each receive-path
    frame (as report.md), and the recording's diagnostics."""
    p = s.get("profile")
    if not p:
        return []
    iso = host_isolated((s.get("hosts") or {}).get(p.get("host")) or {})
    per_cpu = int_keys(p.get("per_cpu"))
    frames = [f for f in RX_FRAMES if any(f in (v.get("frames") or {}) for v in per_cpu.values())]
    rows = [[Cell(cpu_label(cpu, iso), "iso" if cpu in iso else ""), num(v.get("samples", 0))]
            + [_share_cell((v.get("frames") or {}).get(f)) for f in frames]
            for cpu, v in sorted(per_cpu.items())]
    title = (f"{p.get('host')}: perf record -g at {p.get('frequency', '?')} Hz on CPUs "
             f"{','.join(map(str, p.get('cpus') or []))}, event {p.get('event') or '?'}")
    blocks: list[Block] = [Note(title, "label")]
    if rows:
        blocks.append(Table([Cell("CPU"), Cell("samples", "num")] + [Cell(f, "num") for f in frames],
                            rows, "heatmap profile", "Share of each CPU's samples whose stack "
                            "holds the frame"))
    return blocks + [Note(str(d), "warn") for d in p.get("diagnostics") or []]


def _share_cell(share: float | None) -> Cell:
    if share is None:
        return Cell("-", "num muted")
    return Cell(f"{share:.1%}", "num", heat_style(share, 1.0))


# --- steps, restore, warnings ---------------------------------------------------------------

_STATUS_CLASS = {"ok": "pass", "refused-as-expected": "pass", "failed": "fail", "skipped": "warn",
                 "not-run": "warn"}


def _steps(s: Mapping[str, Any]) -> Section:
    blocks: list[Block] = []
    steps = [st for st in s.get("steps") or [] if st.get("kind") in ("change", "skip")]
    if steps:
        rows = [[Cell(str(st.get("host", ""))), _status(st), Cell(str(st.get("description", ""))),
                 Cell(str(st.get("observed") or "")), Cell(_output(st))] for st in steps]
        blocks.append(Table([Cell("host"), Cell("status"), Cell("step"), Cell("read back"),
                             Cell("output")], rows, "steps", "Tuning steps"))
    else:
        blocks.append(Note("no tuning steps in this run", "muted"))
    restore = s.get("restore") or []
    if restore:
        failed = [r for r in restore if r.get("status") != "ok"]
        blocks.append(Note(f"Restore: {len(restore) - len(failed)}/{len(restore)} steps ok"
                           + (" (keep_tuning: tuning left in place)" if s.get("keep_tuning")
                              else ""), "fail" if failed else "pass"))
        rows = [[Cell(str(r.get("host", ""))), _status(r), Cell(str(r.get("description", ""))),
                 Cell(_output(r))] for r in restore]
        blocks.append(Table([Cell("host"), Cell("status"), Cell("restore step"),
                             Cell("output")], rows, "restore"))
    elif s.get("keep_tuning"):
        blocks.append(Note("keep_tuning: tuning left in place, nothing restored", "warn"))
    blocks += [Note(str(w), "warn") for w in s.get("warnings") or []]
    return Section("steps", "Tuning steps and restore", blocks)


def _status(step: Mapping[str, Any]) -> Cell:
    status = str(step.get("status", "?"))
    return Cell(status, _STATUS_CLASS.get(status, ""))


def _output(step: Mapping[str, Any]) -> str:
    return str(step.get("output") or "") if step.get("status") != "ok" else ""
