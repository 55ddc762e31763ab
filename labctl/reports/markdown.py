"""Reports (pure): a run's summary -> report.md (tables a person reads at a glance)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from labctl.cpulist import parse_cpulist
from labctl.reports.access import RATE_REACHED, asked_rate, cpu_label
from labctl.reports.profiles import RX_FRAMES
from labctl.runfiles.models import (
    AffinityRecord,
    GeneratorRecord,
    HostAnalysis,
    LoadSummary,
    OutcomeRecord,
    PreparationRecord,
    ServerWorker,
    Summary,
)

__all__ = ["RATE_REACHED", "SOFTNET_COLUMNS", "cpu_label", "generator_text", "render_markdown",
           "stopped_text", "table", "verdict_text"]
Value = str | int | float | bool | None       # a table cell before formatting
SOFTNET_COLUMNS = ("processed", "dropped", "time_squeeze", "received_rps", "flow_limit")


def table(header: list[str], rows: Iterable[Sequence[Value]]) -> str:
    """A Markdown table with right-aligned numeric columns."""
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    numeric = [bool(cells) and all(_is_number(r[i]) for r in cells) for i in range(len(header))]
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if n else c.ljust(w)
                                 for c, w, n in zip(cells, widths, numeric)) + " |"
    sep = "|" + "|".join(("-" * (w + 1) + ":") if n else ("-" * (w + 2))
                         for w, n in zip(widths, numeric)) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in cells])


def _cell(value: Value) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _is_number(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).replace("%", "").lstrip("-").isdigit()


def render_markdown(summary: Summary) -> str:
    s = summary
    out = [f"# labctl run {s.run_id}", ""]
    out += _header(s)
    out += _drift(s)
    out += _neighbours(s)
    out += _expectations(s)
    out += _loadgen(s.loadgen, s.generator)
    out += _server_cpus(s)
    for host, data in s.hosts.items():
        out += _host_section(host, data)
        out += _rps_section(host, data)
    out += _profile(s)
    out += _steps(s)
    return "\n".join(out).rstrip() + "\n"


def _header(s: Summary) -> list[str]:
    lines = [f"- scenario: **{s.scenario}**" + (f" — {s.description}" if s.description else ""),
             f"- lab: {s.lab} (provider {s.provider}), labctl {s.labctl_version}",
             f"- started {s.started}, window {s.window_seconds:.1f} s"]
    for host, f in s.facts.items():
        lines.append(f"- {host}: kernel {f.kernel}, CPUs {f.cpus_online}, isolated "
                     f"{f.isolated or 'none'}, NIC {f.nic.interface} "
                     f"({f.nic.driver or '?'})")
    for host, prep in s.preparation.items():
        lines.append(f"- {host} prepared: " + _preparation_text(prep))
    if any(h.shared_kernel for h in s.hosts.values()):
        lines.append("- netns lab: /proc/interrupts, /proc/softirqs, /proc/stat and softnet_stat are "
                     "host-wide (all namespaces share one kernel); veth has no IRQs.")
    lines.append("- `*` marks isolated CPUs.")
    stopped = stopped_text(s.outcome)
    judged = verdict_text(s)
    return (lines + [""] + ([f"**{stopped}**", ""] if stopped else [])
            + ([f"**{judged}**", ""] if judged and not stopped else []))


VERDICT_WORDS = {"passed": "PASSED", "failed": "FAILED (the DUT)",
                 "inconclusive": "INCONCLUSIVE (not the DUT's result)",
                 "invalid": "INVALID (the tuning drifted: not the scenario's result)"}


def verdict_text(s: Summary) -> str:
    """The run's verdict in one line: passed, failed, or inconclusive and why."""
    judged = s.verdict
    if judged is None:
        return ""
    return f"Verdict: {VERDICT_WORDS.get(judged.status, judged.status)}: {judged.reason}."


def generator_text(lg: LoadSummary | None, generator: GeneratorRecord | None) -> str:
    """What the generator was asked, what it did, and its measured ceiling in this mode."""
    if generator is None:
        return ""
    ceiling = generator.ceiling
    asked = generator.asked_rate
    text = f"Load generator: {generator.description}; asked: " + (
        "as fast as it can (the achieved rate is reported, not judged)" if asked == "max" else f"{asked} msg/s")
    if ceiling:
        text += (f"; its measured ceiling in this mode: {ceiling.rate:.0f} msg/s "
                 f"(measured {ceiling.measured_at})")
        if lg and ceiling.rate:
            text += f"; this run reached {lg.achieved_rate / ceiling.rate:.0%} of it"
    return text + "."


def stopped_text(outcome: OutcomeRecord | None) -> str:
    """Where and why a run stopped early, and how far its restore got ("" for a whole run)."""
    if outcome is None or outcome.status in (None, "completed"):
        return ""
    where = outcome.checkpoint or outcome.phase or "?"
    step = f" (step: {outcome.step})" if outcome.step else ""
    return (f"The run stopped: {outcome.status} in {where}{step}: {outcome.reason}. "
            f"Restore: {outcome.restore}.")


def _preparation_text(prep: PreparationRecord) -> str:
    v = prep.verified
    reboot = prep.reboot
    changes = prep.sysctl_changes
    busy = ", ".join(f"{k} {c.after}" for k, c in changes.items() if "busy" in k)
    text = (f"tuned {v.tuned_profile or 'off'}, irqbalance {v.irqbalance}, isolcpus="
            f"{v.isolcpus or 'none'}, PID 1 on CPUs {v.pid1_cpus_allowed}, default IRQ "
            f"affinity {v.default_smp_affinity}")
    if changes:
        text += f"; the profile changed {len(changes)} sysctl(s)" + (f" ({busy}: busy polling)" if busy else "")
    if reboot:
        text += f"; restarted for it ({reboot.method}, {reboot.seconds:.0f} s)"
    return text


def drift_lines(s: Summary) -> tuple[str, list[list[str]], list[str]]:
    """The drift watchdog's result: a sentence, a row per change (host, what, seconds into the
    window, sample time, from, to, planned), and notes on hosts it could not watch."""
    d = s.drift
    if d is None:
        return "", [], []
    total = sum(d.watched.values())
    head = (f"The sampler read back {total} value(s) the plan set "
            f"({', '.join(f'{h}: {n} in {d.samples.get(h, 0)} samples' for h, n in d.watched.items()) or 'none'})")
    head += (f": {len(d.changes)} change(s) during the load window; the run is invalid." if d.changes
             else ": none changed during the load window.")
    rows = [[c.host, c.what, f"{c.seconds:.1f} s", c.time, c.before, c.after, c.planned]
            for c in d.changes]
    notes = [f"{host}: not watched ({why})" for host, why in d.unwatched.items()]
    return head, rows, notes


DRIFT_HEADER = ["host", "what", "into the window", "sample time (UTC)", "from", "to", "planned"]


def _drift(s: Summary) -> list[str]:
    return _watch_section("Drift", DRIFT_HEADER, drift_lines(s))


def _watch_section(title: str, header: list[str], lines: tuple[str, list[list[str]], list[str]]) -> list[str]:
    """A section of one of the run's watches (drift, neighbours): its sentence, a table of what
    it found, notes on hosts it could not watch; nothing when it did not run."""
    head, rows, notes = lines
    if not head:
        return []
    out = [f"## {title}", "", head, ""]
    if rows:
        out += [table(header, rows), ""]
    return out + [f"- {n}" for n in notes] + ([""] if notes else [])


def neighbour_lines(s: Summary) -> tuple[str, list[list[str]], list[str]]:
    """The neighbour check: a sentence, a row per neighbour (host, PID, name, CPU seconds, share
    of a CPU, last CPU), and notes on hosts it could not check."""
    n = s.neighbours
    if n is None:
        return "", [], []
    compared = ", ".join(f"{h}: {c} processes compared" for h, c in n.checked.items()) or "no host checked"
    found = [(h, x) for h, xs in n.found.items() for x in xs]
    head = (f"{len(found)} process(es) outside the run used {n.threshold:.0%} of a CPU or more between the "
            f"snapshots ({compared}): the measurement shared the host with them." if found else
            f"No process outside the run used {n.threshold:.0%} of a CPU or more between the snapshots "
            f"({compared}).")
    rows = [[h, str(x.pid), _process_name(x.name), f"{x.cpu_seconds:g}", f"{x.share:.0%}", str(x.last_cpu)]
            for h, x in found]
    return head, rows, [f"{host}: not checked ({why})" for host, why in n.unchecked.items()]


NEIGHBOUR_HEADER = ["host", "PID", "name", "CPU s", "of a CPU", "last CPU"]


def _process_name(name: str) -> str:
    """A process's name (any bytes its owner chose) as one table cell."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name).replace("|", "\\|")


def _neighbours(s: Summary) -> list[str]:
    return _watch_section("Neighbours", NEIGHBOUR_HEADER, neighbour_lines(s))


def _expectations(s: Summary) -> list[str]:
    results = s.expectations
    if not results:
        return ["## Expectations", "", "none", ""]
    passed = sum(r.passed for r in results)
    rows = [["PASS" if r.passed else ("SHORT" if r.subject == "generator" else "FAIL"),
             r.check + (" (generator)" if r.subject == "generator" else ""),
             r.description, r.measured, r.bound] for r in results]
    return [f"## Expectations: {passed}/{len(results)} passed", "",
            table(["result", "check", "what", "measured", "expected"], rows), ""]


def _loadgen(lg: LoadSummary | None, generator: GeneratorRecord | None = None) -> list[str]:
    if not lg:
        return []
    loss = "n/a" if lg.loss is None else f"{lg.loss:.2%}"
    drops = lg.server_socket_drops
    rows = [[lg.protocol, lg.asked_rate or "max", lg.achieved_rate,
             lg.sent, lg.received, loss, "n/a" if drops is None else drops, lg.client_errors]]
    out = ["## Load", "", table(["protocol", "asked msg/s", "achieved msg/s", "sent", "received",
                                 "loss", "server socket drops", "client errors"], rows), ""]
    asked = asked_rate(lg)
    if asked and lg.achieved_rate < RATE_REACHED * asked:
        out += [f"**The client reached only {lg.achieved_rate:.0f} of the asked {lg.asked_rate} msg/s "
                f"({lg.achieved_rate / asked:.0%}): the load generator is the limit, not the DUT.**", ""]
    described = generator_text(lg, generator)
    return out + ([described, ""] if described else [])


def _server_cpus(s: Summary) -> list[str]:
    """Per CPU the server may run on: how busy it was, and which server workers last ran there."""
    server, lg = s.server, s.loadgen or LoadSummary()
    host = s.hosts.get(server.host) if server else None
    if not server or not host or not host.cpu_percent:
        return []
    workers = lg.server_workers
    cpus = server.cpus or sorted({w.last_cpu for w in workers if w.last_cpu is not None})
    if not cpus:
        return []
    duration = lg.duration or s.window_seconds or 0
    rows: list[list[Value]] = []
    for cpu in cpus:
        pct = host.cpu_percent.get(cpu, {})
        here = [f"worker {i} (PID {w.pid}, {_worker_cpu(w, duration)})"
                for i, w in enumerate(workers) if w.last_cpu == cpu]
        rows.append([cpu_label(cpu, host.isolated), 100.0 - pct.get("idle", 100.0) - pct.get("iowait", 0.0),
                     pct.get("user", 0.0), pct.get("system", 0.0), pct.get("softirq", 0.0),
                     ", ".join(here) or "-"])
    return [f"## Server CPUs ({server.host}, {server.workers} worker(s), pinned to "
            f"{','.join(map(str, server.cpus)) if server.cpus else 'no CPUs'})", "",
            table(["CPU", "busy %", "%user", "%system", "%softirq", "server workers last ran here"], rows), ""]


def _worker_cpu(worker: ServerWorker, duration: float) -> str:
    used = worker.cpu_time_user + worker.cpu_time_system
    return f"{100 * used / duration:.0f}% of a CPU" if duration else f"{used:.1f} s CPU"


def _rps_section(host: str, d: HostAnalysis) -> list[str]:
    """Where RPS moved the work: received_rps, NET_RX and processed on the RPS CPUs."""
    targets = sorted({int(c) for mask in d.rps_after.values() if mask
                      for c in _cpus(mask)})
    if not targets:
        return []
    rows: list[list[Value]] = []
    for what, values in (("softnet received_rps", _column(d, "received_rps")),
                         ("NET_RX softirqs", d.softirqs.get("NET_RX", {})),
                         ("softnet processed", _column(d, "processed"))):
        total = sum(values.values())
        on = sum(values.get(c, 0) for c in targets)
        rows.append([what, on, total, f"{on / total:.1%}" if total else "-"])
    return [f"### RPS on {host}: work moved to CPUs {','.join(map(str, targets))}", "",
            table(["counter", "on the RPS CPUs", "all CPUs", "share moved"], rows), ""]


def _column(d: HostAnalysis, column: str) -> dict[int, int]:
    return {cpu: row.get(column, 0) for cpu, row in d.softnet.items()}


def _cpus(text: str) -> list[int]:
    return sorted(parse_cpulist(text))


def _host_section(host: str, d: HostAnalysis) -> list[str]:
    cpus, iso = d.cpus, d.isolated
    labels = [cpu_label(c, iso) for c in cpus]
    out = [f"## {host}", ""]
    rows: list[list[Value]]
    if d.nic_irqs:
        affinity = d.irq_affinity
        rows = [[f"rx-{r.queue} ({r.name}, IRQ {r.irq})", _affinity_text(affinity.get(int(r.irq)))]
                + [r.per_cpu.get(c, 0) for c in cpus] for r in d.nic_irqs]
        out += ["### NIC RX IRQs per CPU (delta)", "", table(["queue", "affinity (effective)"] + labels, rows), ""]
    elif d.shared_kernel:
        out += ["NIC RX IRQs: none (veth in a netns lab has no IRQs).", ""]
    if d.nic_unmapped_irqs:
        rows = [[f"IRQ {r.irq} {r.name}", r.why] + [r.per_cpu.get(c, 0) for c in cpus] for r in d.nic_unmapped_irqs]
        out += ["### NIC vectors not mapped to an RX queue, per IRQ name (delta)", "",
                table(["vector", "why"] + labels, rows), ""]
    if d.softirqs:
        rows = [[name, *(d.softirqs[name].get(c, 0) for c in cpus), _share_text(d.softirqs[name], cpus)]
                for name in ("NET_RX", "NET_TX") if name in d.softirqs]
        out += ["### Softirqs per CPU (delta)", "", table(["softirq"] + labels + ["share"], rows), ""]
    counters = d.softirq_counters
    if counters.get("before", {}).get("NET_RX") and counters.get("after", {}).get("NET_RX"):
        before, after = counters["before"]["NET_RX"], counters["after"]["NET_RX"]
        rows = [[phase, *(values.get(c, 0) for c in cpus)] for phase, values in
                (("before", before), ("after", after))]
        rows.append(["delta", *(d.softirqs["NET_RX"].get(c, 0) for c in cpus)])
        out += ["### NET_RX per CPU (/proc/softirqs before and after the window)", "",
                table(["NET_RX"] + labels, rows), ""]
    if d.softnet:
        rows = [[col, *(d.softnet.get(c, {}).get(col, 0) for c in cpus)] for col in SOFTNET_COLUMNS]
        out += ["### softnet_stat per CPU (delta)", "", table(["column"] + labels, rows), ""]
    if d.cpu_percent:
        keys = ("irq", "softirq", "user", "system", "idle")
        rows = [[f"%{k}", *(d.cpu_percent.get(c, {}).get(k, 0.0) for c in cpus)] for k in keys]
        out += ["### CPU time per CPU (%)", "", table(["time"] + labels, rows), ""]
    out += _queues_and_rps(d)
    return out


def _affinity_text(affinity: AffinityRecord | None) -> str:
    if not affinity:
        return "?"
    smp, effective = affinity.smp, affinity.effective
    return f"{smp} ({effective})" if effective and effective != smp else smp


def _share_text(values: Mapping[int, int], cpus: list[int]) -> str:
    total = sum(values.values())
    if not total:
        return "-"
    top = max(cpus, key=lambda c: values.get(c, 0))
    return f"{values.get(top, 0) / total:.0%} on CPU{top}"


def _queues_and_rps(d: HostAnalysis) -> list[str]:
    out: list[str] = []
    queues = d.nic_queues
    rows: list[list[Value]]
    if queues:
        keys = sorted({k for v in queues.values() for k in v if k.endswith("packets")})
        rows = [[q, *(v.get(k, 0) for k in keys)] for q, v in sorted(queues.items())]
        out += ["### NIC queue counters (delta)", "", table(["queue"] + keys, rows), ""]
    before, after = d.rps_before, d.rps_after
    if before or after:
        rows = [[f"rx-{q}", before.get(q) or "off", after.get(q) or "off"]
                for q in sorted(set(before) | set(after))]
        out += ["### RPS CPUs (read back)", "", table(["queue", "before load", "after load"], rows), ""]
    return out


def _profile(s: Summary) -> list[str]:
    """Per profiled CPU: samples, the share of samples in each receive-path frame, the SVG."""
    p = s.profile
    if not p:
        return []
    host = s.hosts.get(p.host)
    isolated = host.isolated if host else []
    per_cpu = p.per_cpu
    frames = [f for f in RX_FRAMES if any(f in v.frames for v in per_cpu.values())]
    rows: list[list[Value]] = [
        [cpu_label(cpu, isolated), v.samples, *(f"{v.frames[f]:.1%}" if f in v.frames else "-" for f in frames),
         v.flamegraph or "-"] for cpu, v in sorted(per_cpu.items())]
    out = [f"## Profile ({p.host}: perf record -g at {p.frequency} Hz on CPUs "
           f"{','.join(map(str, p.cpus))}, event {p.event or '?'})", ""]
    if rows:
        out += ["Share of each CPU's samples whose stack holds the frame:", "",
                table(["CPU", "samples"] + frames + ["flamegraph"], rows), ""]
    out += [f"- {d}" for d in p.diagnostics]
    return out + ([""] if p.diagnostics else [])


def _steps(s: Summary) -> list[str]:
    steps = [st for st in s.steps if st.kind in ("change", "skip")]
    out = []
    if steps:
        rows = [[st.host, st.status, st.description, st.observed or ""] for st in steps]
        out += ["## Tuning steps", "", table(["host", "status", "step", "read back"], rows), ""]
    restore = s.restore
    if restore:
        failed = [r for r in restore if r.status != "ok"]
        out += [f"## Restore: {len(restore) - len(failed)}/{len(restore)} steps ok"
                + ("" if not s.keep_tuning else " (keep_tuning: tuning left in place)"), ""]
        out += [f"- FAILED {r.host}: {r.description}: {r.output}" for r in failed]
        out += [""] if failed else []
    warnings = s.warnings
    if warnings:
        out += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    return out
