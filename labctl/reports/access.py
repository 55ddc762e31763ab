"""Reports (pure): what every report reads off a run's summary, in one place.

CPU labels, a host's CPUs and isolated CPUs, its per-CPU counters (NIC RX IRQs, softirqs,
softnet_stat columns), the share of the asked rate the client reached. report.md, report.html
and the comparison all read the summary through these, so they say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from labctl.runfiles.models import HostAnalysis, LoadSummary

RATE_REACHED = 0.95          # below this share of the asked rate the reports say so


def cpu_label(cpu: int, isolated: Sequence[int]) -> str:
    return f"CPU{cpu}*" if cpu in isolated else f"CPU{cpu}"


def host_cpus(d: HostAnalysis) -> list[int]:
    """A host's online CPUs, or the CPUs its per-CPU data mentions."""
    if d.cpus:
        return sorted(d.cpus)
    seen: set[int] = set(d.softnet) | set(d.cpu_percent)
    for values in d.softirqs.values():
        seen.update(values)
    return sorted(seen)


def host_isolated(d: HostAnalysis | None) -> list[int]:
    return sorted(d.isolated) if d is not None else []


def nic_irqs_per_cpu(d: HostAnalysis) -> dict[int, int] | None:
    """The NIC's RX IRQs per CPU, all queues together; None without IRQ data."""
    if not d.nic_irqs:
        return None
    per_cpu: dict[int, int] = {}
    for row in d.nic_irqs:
        for cpu, count in row.per_cpu.items():
            per_cpu[cpu] = per_cpu.get(cpu, 0) + count
    return per_cpu


def softirq_per_cpu(d: HostAnalysis, name: str) -> dict[int, int] | None:
    values = d.softirqs.get(name)
    return None if values is None else dict(values)


def softnet_per_cpu(d: HostAnalysis, column: str) -> dict[int, int] | None:
    """One softnet_stat column per CPU; None when no snapshot has it."""
    if not d.softnet or not any(column in row for row in d.softnet.values()):
        return None
    return {cpu: row.get(column, 0) for cpu, row in d.softnet.items()}


def share_text(values: Mapping[int, float], cpus: Sequence[int]) -> str:
    """The largest share of values on one CPU: "87% on CPU2"."""
    total = sum(values.get(c, 0) for c in cpus)
    if not total:
        return "-"
    top = max(cpus, key=lambda c: values.get(c, 0))
    return f"{values.get(top, 0) / total:.0%} on CPU{top}"


def asked_rate(lg: LoadSummary) -> float:
    """The asked rate in msg/s; 0 for "as fast as it can"."""
    return lg.asked_rate if isinstance(lg.asked_rate, (int, float)) else 0.0


def reached(lg: LoadSummary) -> float | None:
    """The share of the asked rate the client reached; None when it was asked for "max"."""
    asked = asked_rate(lg)
    return lg.achieved_rate / asked if asked else None


def fell_short(lg: LoadSummary) -> bool:
    share = reached(lg)
    return share is not None and share < RATE_REACHED
