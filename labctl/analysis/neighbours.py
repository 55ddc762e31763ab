"""Neighbour check (pure): processes outside the run that used a host's CPUs in the window.

Each before/after snapshot reads every process's CPU time (`/proc/PID/stat`, the `processes`
probe). Between the two, a process is a neighbour when it is not the run's own (a process the
run started — server, sampler, perf; on a shared kernel also those on the other lab hosts, the
client — or a child of one), not a kernel thread (ksoftirqd and the NIC's threads are the
receive path itself), and used at least NEIGHBOUR_SHARE of one CPU over the interval. The
interval is measured in the same ticks as the processes' times: the growth of a CPU's total
in /proc/stat. A process that started and ended between the snapshots is not seen.

A failed run with a neighbour is not counted as the DUT's result: it is inconclusive, the
neighbours named (their load, not the tuning, may be what failed). A passed run stays passed
(the result held with them there); its report names them all the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from labctl.analysis.expectations import Verdict
from labctl.analysis.perhost import RawReader
from labctl.host.probes import CpuTimes, ProbeOutputError, ProcessTimes
from labctl.host.snapshots import SnapshotHost, parse_raw
from labctl.runfiles.models import NeighbourRecord, NeighboursRecord, StepRecord

NEIGHBOUR_SHARE = 0.25          # of one CPU over the window: a quarter of a core
USER_HZ = 100                   # the tick of /proc/PID/stat and /proc/stat (fixed by the kernel ABI)
MAX_NAMED = 3


@dataclass(frozen=True)
class HostProcesses:
    """One host's side of the check: its process listings and /proc/stat at both snapshots,
    and the PIDs the run started that are seen there."""

    before: Mapping[int, ProcessTimes]
    after: Mapping[int, ProcessTimes]
    stat_before: Mapping[int, CpuTimes]
    stat_after: Mapping[int, CpuTimes]
    own: frozenset[int]
    controller: int | None = None      # labctl itself (a shared kernel): left out, not its children


def elapsed_ticks(before: Mapping[int, CpuTimes], after: Mapping[int, CpuTimes]) -> int:
    """Ticks between two /proc/stat readings: the growth of a CPU's total (busy and idle),
    the largest over the CPUs online in both (an offline spell only shortens a CPU's)."""
    return max((_total(after[cpu]) - _total(before[cpu]) for cpu in before.keys() & after.keys()), default=0)


def _total(t: CpuTimes) -> int:
    """All of a CPU's ticks (guest time is already in user and nice)."""
    return t.user + t.nice + t.system + t.idle + t.iowait + t.irq + t.softirq + t.steal


def run_processes(own: Iterable[int], *listings: Mapping[int, ProcessTimes]) -> set[int]:
    """The run's processes: `own` and every descendant of one, in any of the listings."""
    children: dict[int, set[int]] = {}
    for listing in listings:
        for proc in listing.values():
            children.setdefault(proc.ppid, set()).add(proc.pid)
    found, todo = set(), list(own)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, ())
    return found


def find_neighbours(host: HostProcesses, threshold: float = NEIGHBOUR_SHARE) -> list[NeighbourRecord]:
    """The host's neighbours over the interval between the snapshots, busiest first."""
    elapsed = elapsed_ticks(host.stat_before, host.stat_after)
    if elapsed <= 0:
        return []
    ours = run_processes(host.own, host.before, host.after) | {host.controller}
    found = []
    for pid, proc in host.after.items():
        if proc.kernel_thread or pid in ours:
            continue
        earlier = host.before.get(pid)
        used = proc.ticks - earlier.ticks if earlier is not None and earlier.started == proc.started else proc.ticks
        if used / elapsed >= threshold:
            found.append(NeighbourRecord(pid=pid, name=proc.comm, cpu_seconds=round(used / USER_HZ, 2),
                                         share=round(used / elapsed, 3), last_cpu=proc.last_cpu))
    return sorted(found, key=lambda n: (-n.share, n.pid))


def neighbour_text(host: str, neighbour: NeighbourRecord) -> str:
    return (f"{host}: PID {neighbour.pid} ({neighbour.name}) used {neighbour.share:.0%} of a CPU "
            f"({neighbour.cpu_seconds:g} CPU s, last on CPU {neighbour.last_cpu})")


def spoiled(verdict: Verdict, record: NeighboursRecord | None) -> Verdict:
    """A failed run with a neighbour is inconclusive (its checks are kept, as measured); any
    other verdict stands."""
    if record is None or verdict.status != "failed" or not any(record.found.values()):
        return verdict
    named = [neighbour_text(h, n) for h, found in sorted(record.found.items()) for n in found]
    more = len(named) - MAX_NAMED
    return Verdict("inconclusive", "a neighbour shared the host during the window, not counted as the "
                   f"DUT's result: {'; '.join(named[:MAX_NAMED])}"
                   + (f"; and {more} more" if more > 0 else "") + f" (the checks alone said: {verdict.reason})")


def neighbours_record(hosts: Mapping[str, HostProcesses | str]) -> NeighboursRecord | None:
    """The check over the snapshot hosts (a host's text: why it could not be checked); None
    for a run without snapshot hosts."""
    if not hosts:
        return None
    record = NeighboursRecord(threshold=NEIGHBOUR_SHARE)
    for host, side in sorted(hosts.items()):
        if isinstance(side, str):
            record.unchecked[host] = side
            continue
        record.checked[host] = len(side.after)
        found = find_neighbours(side)
        if found:
            record.found[host] = found
    return record


def started_pids(steps: Iterable[StepRecord], hosts: Iterable[str]) -> frozenset[int]:
    """The PIDs of the processes the run started on `hosts` (its start steps' observed PID)."""
    wanted = set(hosts)
    return frozenset(int(s.observed) for s in steps
                     if s.kind == "start" and s.host in wanted and s.observed and s.observed.isdigit())


def host_processes(read: RawReader, facts: Mapping[str, Any], own: frozenset[int],
                   controller: int | None = None) -> HostProcesses | str:
    """One host's side of the check from its raw snapshot files, or why it has none."""
    texts = {(name, phase): read(name, phase) or "" for name in ("processes", "stat") for phase in ("before", "after")}
    missing = [f"{name}.{phase}" for (name, phase), text in texts.items() if not text.strip()]
    if missing:
        return f"no {', '.join(missing)} snapshot (a run of a labctl before this check, or a failed snapshot)"
    host = SnapshotHost.from_json(facts)
    try:
        before, after, stat_before, stat_after = (parse_raw(name, text, host) for (name, _), text in texts.items())
    except ProbeOutputError as exc:
        return f"unreadable snapshot: {exc}"
    return HostProcesses(before, after, stat_before, stat_after, own, controller)
