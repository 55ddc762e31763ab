"""Series (pure): a host's raw sample stream -> per-interval rates (labctl.runfiles.series).

Each sample's parts are parsed by the probes that parse the same files in a snapshot
(labctl.host.snapshots.parse_raw), reduced at once to what the series keeps (the NIC's RX
queue rows of /proc/interrupts, not all 2,000 rows of a big server), and consecutive samples
go through the same delta functions as before/after snapshots (32-bit wraps, resets), divided
by the time between them on the sampler's monotonic clock. A queue's IRQs on a CPU where it
never fired in the window make no line (a 64-queue NIC on 256 CPUs would make 16,384).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from labctl.analysis import deltas
from labctl.analysis.perhost import nic_queue_rows
from labctl.host.probes import CpuTimes, InterruptTable, ProbeOutputError, SoftnetRow
from labctl.host.samples import Sample, SampleStream
from labctl.host.snapshots import SnapshotHost, parse_raw
from labctl.runfiles.series import HostSeries, SeriesLine

Key = tuple[str, int | None, str | None]          # (metric, cpu, queue)


@dataclass(frozen=True)
class Reading:
    """What the series keeps of one sample (None: the part is missing or did not parse)."""

    mono: float
    nic_irqs: InterruptTable | None = None        # the NIC's RX queue rows only
    queue_of_irq: Mapping[str, int] = dataclasses.field(default_factory=dict)
    softirqs: dict[str, dict[int, int]] | None = None
    softnet: dict[int, SoftnetRow] | None = None
    stat: dict[int, CpuTimes] | None = None
    nic_stats: dict[str, int] | None = None


def _parsed(sample: Sample, name: str, host: SnapshotHost, problems: list[str]) -> Any:
    text = sample.texts.get(name)
    if text is None:
        return None
    status = sample.status.get(name, 0)
    if status != 0 or not text.strip():
        problems.append(f"sample {sample.seq}: {name} exited {status}" if status else
                        f"sample {sample.seq}: {name} is empty")
        return None
    try:
        return parse_raw(name, text, host)
    except ProbeOutputError as exc:
        problems.append(f"sample {sample.seq}: {name}: {exc}")
        return None


def read_sample(sample: Sample, host: SnapshotHost, nic: Mapping[str, Any], problems: list[str]) -> Reading:
    """Parse one sample's parts and keep what the series needs (`nic`: the facts' NIC, whose
    queues' IRQ rows are found as in the before/after snapshots)."""
    table = _parsed(sample, "interrupts", host, problems)
    nic_irqs, queue_of_irq = None, {}
    if table is not None and nic.get("device"):
        queues = nic_queue_rows(table, nic)
        nic_irqs = InterruptTable(table.cpus, tuple(queues.values()))
        queue_of_irq = {row.irq: queue for queue, row in queues.items()}
    return Reading(sample.mono, nic_irqs, queue_of_irq,
                   softirqs=_parsed(sample, "softirqs", host, problems),
                   softnet=_parsed(sample, "softnet_stat", host, problems),
                   stat=_parsed(sample, "stat", host, problems),
                   nic_stats=_parsed(sample, "ethtool_stats", host, problems))


def interval_values(before: Reading, after: Reading) -> dict[Key, float]:
    """Every value of the interval between two readings: rates per second, percentages,
    queue lengths."""
    seconds = after.mono - before.mono
    if seconds <= 0:
        return {}
    values: dict[Key, float] = {}
    if before.nic_irqs is not None and after.nic_irqs is not None:
        for irq, per_cpu in deltas.irq_deltas(before.nic_irqs, after.nic_irqs).items():
            queue = f"rx-{after.queue_of_irq[irq]}"
            values.update({("irqs_per_s", cpu, queue): n / seconds for cpu, n in per_cpu.items()})
    if before.softirqs is not None and after.softirqs is not None:
        for name, per_cpu in deltas.softirq_deltas(before.softirqs, after.softirqs).items():
            values.update({(f"softirqs_per_s.{name}", cpu, None): n / seconds
                           for cpu, n in per_cpu.items()})
    if before.softnet is not None and after.softnet is not None:
        for cpu, row in deltas.softnet_deltas(before.softnet, after.softnet).items():
            values.update(_softnet_values(cpu, row, seconds))
    if before.stat is not None and after.stat is not None:
        for cpu, split in deltas.cpu_percentages(before.stat, after.stat).items():
            values.update({(f"cpu_percent.{name}", cpu, None): pct for name, pct in split.items()})
    if before.nic_stats is not None and after.nic_stats is not None:
        for (direction, number), counters in deltas.nic_queue_deltas(before.nic_stats, after.nic_stats).items():
            values.update({(f"nic_per_s.{name}", None, f"{direction}-{number}"): n / seconds
                           for name, n in counters.items()})
    return values


def _softnet_values(cpu: int, row: SoftnetRow, seconds: float) -> dict[Key, float]:
    values: dict[Key, float] = {}
    for column, count in dataclasses.asdict(row).items():
        if count is None:
            continue
        if column in deltas.SOFTNET_GAUGES:
            values[(f"softnet.{column}", cpu, None)] = float(count)
        else:
            values[(f"softnet_per_s.{column}", cpu, None)] = count / seconds
    return values


def derive_series(stream: SampleStream, facts: Mapping[str, Any]) -> HostSeries:
    """A host's series from its sample stream and its facts (as the run's manifest keeps them)."""
    host = SnapshotHost.from_json(facts)
    nic: Mapping[str, Any] = facts.get("nic") or {}
    problems: list[str] = []
    first = stream.samples[0] if stream.samples else None
    times: list[float] = []
    intervals: list[dict[Key, float]] = []
    previous: Reading | None = None
    for sample in stream.samples:
        reading = read_sample(sample, host, nic, problems)
        if previous is not None and first is not None:
            times.append(round(reading.mono - first.mono, 6))
            intervals.append(interval_values(previous, reading))
        previous = reading
    keys = sorted({key for values in intervals for key in values}, key=_order)
    lines = [SeriesLine.model_construct(metric=metric, cpu=cpu, queue=queue,
                                        values=[values.get((metric, cpu, queue)) for values in intervals])
             for metric, cpu, queue in keys]
    lines = [line for line in lines if line.metric != "irqs_per_s" or any(line.values)]
    cpu_seconds, sampling = stream.cpu_seconds, stream.sampling_cpu_seconds
    reads = [s.read_seconds for s in stream.samples]
    return HostSeries(
        interval=stream.interval, samples=len(stream.samples),
        started=first.time if first else None, times=times, lines=lines,
        complete=stream.complete, truncated=stream.truncated,
        end_reason=str(stream.end["reason"]) if stream.end and "reason" in stream.end else None,
        sampler_cpu_seconds=cpu_seconds,
        sampler_cpu_per_sample=(sampling / len(stream.samples)
                                if sampling is not None and stream.samples else None),
        read_seconds_mean=sum(reads) / len(reads) if reads else None,
        sources=list(stream.sources), problems=problems[:20])


def _order(key: Key) -> tuple[str, int, str]:
    metric, cpu, queue = key
    return metric, -1 if cpu is None else cpu, _queue_order(queue)


def _queue_order(queue: str | None) -> str:
    if queue is None:
        return ""
    direction, _, number = queue.partition("-")
    return f"{direction}-{int(number):06d}" if number.isdigit() else queue


def busy_cpus(series: HostSeries, metric: str = "softirqs_per_s.NET_RX",
              share: float = 0.05) -> list[tuple[int, float, float]]:
    """(cpu, mean, peak) of `metric` on the CPUs that carried at least `share` of its total,
    busiest first."""
    stats = []
    for line in series.lines:
        if line.metric == metric and line.cpu is not None:
            numbers = [v for v in line.values if v is not None]
            if numbers:
                stats.append((line.cpu, sum(numbers) / len(numbers), max(numbers)))
    total = sum(mean for _, mean, _ in stats)
    busy = [s for s in stats if total > 0 and s[1] >= share * total]
    return sorted(busy, key=lambda s: -s[1])
