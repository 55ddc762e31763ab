"""Reports (pure): a run's summary -> report.md (tables a person reads at a glance)."""

from __future__ import annotations

from typing import Any, Iterable

from labctl.cpulist import parse_cpulist
from labctl.reports.profiles import RX_FRAMES

RATE_REACHED = 0.95          # below this share of the asked rate the report says so
SOFTNET_COLUMNS = ("processed", "dropped", "time_squeeze", "received_rps", "flow_limit")


def table(header: list[str], rows: Iterable[list[Any]]) -> str:
    """A Markdown table with right-aligned numeric columns."""
    rows = [[_cell(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    numeric = [bool(rows) and all(_is_number(r[i]) for r in rows) for i in range(len(header))]
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if n else c.ljust(w)
                                 for c, w, n in zip(cells, widths, numeric)) + " |"
    sep = "|" + "|".join(("-" * (w + 1) + ":") if n else ("-" * (w + 2))
                         for w, n in zip(widths, numeric)) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _is_number(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).replace("%", "").lstrip("-").isdigit()


def cpu_label(cpu: int, isolated: list[int]) -> str:
    return f"CPU{cpu}*" if cpu in isolated else f"CPU{cpu}"


def cpu_keys(value: Any) -> Any:
    """A summary read back from JSON has string CPU keys: make them ints again (deep)."""
    if isinstance(value, dict):
        digits = bool(value) and all(isinstance(k, str) and k.isdigit() for k in value)
        return {(int(k) if digits else k): cpu_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [cpu_keys(v) for v in value]
    return value


def render_markdown(summary: dict[str, Any]) -> str:
    summary = dict(summary, hosts=cpu_keys(summary.get("hosts", {})))
    out = [f"# labctl run {summary['run_id']}", ""]
    out += _header(summary)
    out += _expectations(summary)
    out += _loadgen(summary.get("loadgen"), summary.get("generator"))
    out += _server_cpus(summary)
    for host, data in summary.get("hosts", {}).items():
        out += _host_section(host, data)
        out += _rps_section(host, data)
    out += _profile(summary)
    out += _steps(summary)
    return "\n".join(out).rstrip() + "\n"


def _header(s: dict[str, Any]) -> list[str]:
    lines = [f"- scenario: **{s['scenario']}**" + (f" — {s['description']}" if s.get("description") else ""),
             f"- lab: {s['lab']} (provider {s['provider']}), labctl {s['labctl_version']}",
             f"- started {s['started']}, window {s.get('window_seconds', 0):.1f} s"]
    for host, f in s.get("facts", {}).items():
        lines.append(f"- {host}: kernel {f.get('kernel')}, CPUs {f.get('cpus_online')}, isolated "
                     f"{f.get('isolated') or 'none'}, NIC {f.get('nic', {}).get('interface')} "
                     f"({f.get('nic', {}).get('driver') or '?'})")
    for host, prep in (s.get("preparation") or {}).items():
        lines.append(f"- {host} prepared: " + _preparation_text(prep))
    if s["provider"] == "netns":
        lines.append("- netns lab: /proc/interrupts, /proc/softirqs, /proc/stat and softnet_stat are "
                     "host-wide (all namespaces share one kernel); veth has no IRQs.")
    lines.append("- `*` marks isolated CPUs.")
    stopped = stopped_text(s.get("outcome"))
    judged = verdict_text(s)
    return (lines + [""] + ([f"**{stopped}**", ""] if stopped else [])
            + ([f"**{judged}**", ""] if judged and not stopped else []))


VERDICT_WORDS = {"passed": "PASSED", "failed": "FAILED (the DUT)",
                 "inconclusive": "INCONCLUSIVE (not the DUT's result)"}


def verdict_text(s: dict[str, Any]) -> str:
    """The run's verdict in one line: passed, failed, or inconclusive and why."""
    judged = s.get("verdict")
    if not judged:
        return ""
    return f"Verdict: {VERDICT_WORDS.get(judged['status'], judged['status'])}: {judged['reason']}."


def generator_text(lg: dict[str, Any] | None, generator: dict[str, Any] | None) -> str:
    """What the generator was asked, what it did, and its measured ceiling in this mode."""
    if not generator:
        return ""
    ceiling = generator.get("ceiling")
    asked = generator.get("asked_rate")
    text = f"Load generator: {generator.get('description')}; asked: " + (
        "as fast as it can (the achieved rate is reported, not judged)" if asked == "max" else f"{asked} msg/s")
    if ceiling:
        text += (f"; its measured ceiling in this mode: {ceiling['rate']:.0f} msg/s "
                 f"(measured {ceiling['measured_at']})")
        if lg and ceiling["rate"]:
            text += f"; this run reached {float(lg.get('achieved_rate') or 0) / ceiling['rate']:.0%} of it"
    return text + "."


def stopped_text(outcome: dict[str, Any] | None) -> str:
    """Where and why a run stopped early, and how far its restore got ("" for a whole run)."""
    if not outcome or outcome.get("status") in (None, "completed"):
        return ""
    where = outcome.get("checkpoint") or outcome.get("phase") or "?"
    step = f" (step: {outcome['step']})" if outcome.get("step") else ""
    return (f"The run stopped: {outcome['status']} in {where}{step}: {outcome.get('reason')}. "
            f"Restore: {outcome.get('restore')}.")


def _preparation_text(prep: dict[str, Any]) -> str:
    v = prep.get("verified", {})
    reboot = prep.get("reboot")
    changes = prep.get("sysctl_changes", {})
    busy = ", ".join(f"{k} {c['after']}" for k, c in changes.items() if "busy" in k)
    text = (f"tuned {v.get('tuned_profile') or 'off'}, irqbalance {v.get('irqbalance')}, isolcpus="
            f"{v.get('isolcpus') or 'none'}, PID 1 on CPUs {v.get('pid1_cpus_allowed')}, default IRQ "
            f"affinity {v.get('default_smp_affinity')}")
    if changes:
        text += f"; the profile changed {len(changes)} sysctl(s)" + (f" ({busy}: busy polling)" if busy else "")
    if reboot:
        text += f"; restarted for it ({reboot.get('method')}, {reboot.get('seconds'):.0f} s)"
    return text


def _expectations(s: dict[str, Any]) -> list[str]:
    results = s.get("expectations", [])
    if not results:
        return ["## Expectations", "", "none", ""]
    passed = sum(r["passed"] for r in results)
    rows = [["PASS" if r["passed"] else ("SHORT" if r.get("subject") == "generator" else "FAIL"),
             r["check"] + (" (generator)" if r.get("subject") == "generator" else ""),
             r["description"], r["measured"], r["bound"]] for r in results]
    return [f"## Expectations: {passed}/{len(results)} passed", "",
            table(["result", "check", "what", "measured", "expected"], rows), ""]


def _loadgen(lg: dict[str, Any] | None, generator: dict[str, Any] | None = None) -> list[str]:
    if not lg:
        return []
    loss = "n/a" if lg.get("loss") is None else f"{lg['loss']:.2%}"
    drops = lg.get("server_socket_drops")
    rows = [[lg.get("protocol"), lg.get("asked_rate") or "max", lg.get("achieved_rate", 0.0),
             lg.get("sent"), lg.get("received"), loss, "n/a" if drops is None else drops, lg.get("client_errors")]]
    out = ["## Load", "", table(["protocol", "asked msg/s", "achieved msg/s", "sent", "received",
                                 "loss", "server socket drops", "client errors"], rows), ""]
    asked = lg.get("asked_rate") or 0
    if asked and lg.get("achieved_rate", 0.0) < RATE_REACHED * asked:
        out += [f"**The client reached only {lg['achieved_rate']:.0f} of the asked {asked} msg/s "
                f"({lg['achieved_rate'] / asked:.0%}): the load generator is the limit, not the DUT.**", ""]
    described = generator_text(lg, generator)
    return out + ([described, ""] if described else [])


def _server_cpus(s: dict[str, Any]) -> list[str]:
    """Per CPU the server may run on: how busy it was, and which server workers last ran there."""
    server, lg = s.get("server"), s.get("loadgen") or {}
    host = (s.get("hosts") or {}).get(server["host"]) if server else None
    if not server or not host or not host.get("cpu_percent"):
        return []
    workers = lg.get("server_workers", [])
    cpus = server["cpus"] or sorted({w["last_cpu"] for w in workers if w.get("last_cpu") is not None})
    if not cpus:
        return []
    duration = lg.get("duration") or s.get("window_seconds") or 0
    rows = []
    for cpu in cpus:
        pct = host["cpu_percent"].get(cpu, {})
        here = [f"worker {i} (PID {w.get('pid')}, {_worker_cpu(w, duration)})"
                for i, w in enumerate(workers) if w.get("last_cpu") == cpu]
        rows.append([cpu_label(cpu, host.get("isolated", [])), 100.0 - pct.get("idle", 100.0) - pct.get("iowait", 0.0),
                     pct.get("user", 0.0), pct.get("system", 0.0), pct.get("softirq", 0.0),
                     ", ".join(here) or "-"])
    return [f"## Server CPUs ({server['host']}, {server['workers']} worker(s), pinned to "
            f"{','.join(map(str, server['cpus'])) if server['cpus'] else 'no CPUs'})", "",
            table(["CPU", "busy %", "%user", "%system", "%softirq", "server workers last ran here"], rows), ""]


def _worker_cpu(worker: dict[str, Any], duration: float) -> str:
    used = worker.get("cpu_time_user", 0.0) + worker.get("cpu_time_system", 0.0)
    return f"{100 * used / duration:.0f}% of a CPU" if duration else f"{used:.1f} s CPU"


def _rps_section(host: str, d: dict[str, Any]) -> list[str]:
    """Where RPS moved the work: received_rps, NET_RX and processed on the RPS CPUs."""
    targets = sorted({int(c) for mask in d.get("rps_after", {}).values() if mask
                      for c in _cpus(mask)})
    if not targets:
        return []
    rows = []
    for what, values in (("softnet received_rps", _column(d, "received_rps")),
                         ("NET_RX softirqs", d.get("softirqs", {}).get("NET_RX", {})),
                         ("softnet processed", _column(d, "processed"))):
        total = sum(values.values())
        on = sum(values.get(c, 0) for c in targets)
        rows.append([what, on, total, f"{on / total:.1%}" if total else "-"])
    return [f"### RPS on {host}: work moved to CPUs {','.join(map(str, targets))}", "",
            table(["counter", "on the RPS CPUs", "all CPUs", "share moved"], rows), ""]


def _column(d: dict[str, Any], column: str) -> dict[int, int]:
    return {cpu: row.get(column, 0) for cpu, row in d.get("softnet", {}).items()}


def _cpus(text: str) -> list[int]:
    return sorted(parse_cpulist(text))


def _host_section(host: str, d: dict[str, Any]) -> list[str]:
    cpus, iso = d.get("cpus", []), d.get("isolated", [])
    labels = [cpu_label(c, iso) for c in cpus]
    out = [f"## {host}", ""]
    if d.get("nic_irqs"):
        affinity = d.get("irq_affinity", {})
        rows = [[f"rx-{r['queue']} ({r['name']}, IRQ {r['irq']})", _affinity_text(affinity.get(int(r["irq"])))]
                + [r["per_cpu"].get(c, 0) for c in cpus] for r in d["nic_irqs"]]
        out += ["### NIC RX IRQs per CPU (delta)", "", table(["queue", "affinity (effective)"] + labels, rows), ""]
    elif d.get("shared_kernel"):
        out += ["NIC RX IRQs: none (veth in a netns lab has no IRQs).", ""]
    if d.get("softirqs"):
        rows = [[name] + [d["softirqs"][name].get(c, 0) for c in cpus] + [_share_text(d["softirqs"][name], cpus)]
                for name in ("NET_RX", "NET_TX") if name in d["softirqs"]]
        out += ["### Softirqs per CPU (delta)", "", table(["softirq"] + labels + ["share"], rows), ""]
    counters = d.get("softirq_counters", {})
    if counters.get("before", {}).get("NET_RX") and counters.get("after", {}).get("NET_RX"):
        before, after = counters["before"]["NET_RX"], counters["after"]["NET_RX"]
        rows = [[phase] + [values.get(c, 0) for c in cpus] for phase, values in
                (("before", before), ("after", after))]
        rows.append(["delta"] + [d["softirqs"]["NET_RX"].get(c, 0) for c in cpus])
        out += ["### NET_RX per CPU (/proc/softirqs before and after the window)", "",
                table(["NET_RX"] + labels, rows), ""]
    if d.get("softnet"):
        rows = [[col] + [d["softnet"].get(c, {}).get(col, 0) for c in cpus] for col in SOFTNET_COLUMNS]
        out += ["### softnet_stat per CPU (delta)", "", table(["column"] + labels, rows), ""]
    if d.get("cpu_percent"):
        keys = ("irq", "softirq", "user", "system", "idle")
        rows = [[f"%{k}"] + [d["cpu_percent"].get(c, {}).get(k, 0.0) for c in cpus] for k in keys]
        out += ["### CPU time per CPU (%)", "", table(["time"] + labels, rows), ""]
    out += _queues_and_rps(d)
    return out


def _affinity_text(affinity: dict[str, str] | None) -> str:
    if not affinity:
        return "?"
    smp, effective = affinity.get("smp", "?"), affinity.get("effective")
    return f"{smp} ({effective})" if effective and effective != smp else smp


def _share_text(values: dict[int, int], cpus: list[int]) -> str:
    total = sum(values.values())
    if not total:
        return "-"
    top = max(cpus, key=lambda c: values.get(c, 0))
    return f"{values.get(top, 0) / total:.0%} on CPU{top}"


def _queues_and_rps(d: dict[str, Any]) -> list[str]:
    out: list[str] = []
    queues = d.get("nic_queues", {})
    if queues:
        keys = sorted({k for v in queues.values() for k in v if k.endswith("packets")})
        rows = [[q] + [v.get(k, 0) for k in keys] for q, v in sorted(queues.items())]
        out += ["### NIC queue counters (delta)", "", table(["queue"] + keys, rows), ""]
    before, after = d.get("rps_before", {}), d.get("rps_after", {})
    if before or after:
        rows = [[f"rx-{q}", before.get(q) or "off", after.get(q) or "off"]
                for q in sorted(set(before) | set(after))]
        out += ["### RPS CPUs (read back)", "", table(["queue", "before load", "after load"], rows), ""]
    return out


def _profile(s: dict[str, Any]) -> list[str]:
    """Per profiled CPU: samples, the share of samples in each receive-path frame, the SVG."""
    p = s.get("profile")
    if not p:
        return []
    isolated = (s.get("hosts", {}).get(p["host"]) or {}).get("isolated", [])
    per_cpu = {int(c): v for c, v in p.get("per_cpu", {}).items()}
    frames = [f for f in RX_FRAMES if any(f in v.get("frames", {}) for v in per_cpu.values())]
    rows = [[cpu_label(cpu, isolated), v.get("samples", 0)]
            + [f"{v['frames'][f]:.1%}" if f in v.get("frames", {}) else "-" for f in frames]
            + [v.get("flamegraph", "-")] for cpu, v in sorted(per_cpu.items())]
    out = [f"## Profile ({p['host']}: perf record -g at {p['frequency']} Hz on CPUs "
           f"{','.join(map(str, p['cpus']))}, event {p.get('event') or '?'})", ""]
    if rows:
        out += ["Share of each CPU's samples whose stack holds the frame:", "",
                table(["CPU", "samples"] + frames + ["flamegraph"], rows), ""]
    out += [f"- {d}" for d in p.get("diagnostics", [])]
    return out + ([""] if p.get("diagnostics") else [])


def _steps(s: dict[str, Any]) -> list[str]:
    steps = [st for st in s.get("steps", []) if st["kind"] in ("change", "skip")]
    out = []
    if steps:
        rows = [[st["host"], st["status"], st["description"], st.get("observed") or ""] for st in steps]
        out += ["## Tuning steps", "", table(["host", "status", "step", "read back"], rows), ""]
    restore = s.get("restore", [])
    if restore:
        failed = [r for r in restore if r["status"] != "ok"]
        out += [f"## Restore: {len(restore) - len(failed)}/{len(restore)} steps ok"
                + ("" if not s.get("keep_tuning") else " (keep_tuning: tuning left in place)"), ""]
        out += [f"- FAILED {r['host']}: {r['description']}: {r['output']}" for r in failed]
        out += [""] if failed else []
    warnings = s.get("warnings", [])
    if warnings:
        out += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    return out
