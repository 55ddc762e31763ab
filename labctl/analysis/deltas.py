"""Deltas (pure): parsed before/after snapshots -> what happened during the measurement window.

Kernel counters are monotonic until they wrap or reset. /proc/interrupts, /proc/softirqs and
softnet_stat print 32-bit unsigned counters, which a busy CPU wraps within hours: a 32-bit
counter that went backwards from the upper half of its range is taken as one wrap. Any other
counter that went backwards is taken as a reset (IRQ re-registered, device re-probed, reboot):
the delta is then the after value. Rows or CPUs present on one side only are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

from labctl.host.probes import (
    CPU_TIME_FIELDS,
    CpuTimes,
    InterruptTable,
    SoftnetRow,
    per_queue_stats,
)

COUNTER_BITS_32 = 32
SOFTNET_GAUGES = frozenset({"backlog_len", "input_qlen", "process_qlen"})
# /proc/stat fields that add up to the time that passed (guest time is inside user and nice).
TIME_SPLIT = CPU_TIME_FIELDS[:8]


def counter_delta(before: int, after: int, bits: int | None = None) -> int:
    """after - before for a monotonic counter, allowing one wrap of a `bits`-wide counter.

    Without `bits` (64-bit counters), or when `before` was in the lower half of the range,
    a counter that went backwards is taken as reset and the delta is `after`.
    """
    if after >= before:
        return after - before
    if bits is not None and before >= 1 << (bits - 1):
        return after + (1 << bits) - before
    return after


def _per_cpu_deltas(
    before: Mapping[int, int], after: Mapping[int, int], bits: int | None
) -> dict[int, int]:
    return {
        cpu: counter_delta(before[cpu], value, bits)
        for cpu, value in after.items()
        if cpu in before
    }


def irq_deltas(before: InterruptTable, after: InterruptTable) -> dict[str, dict[int, int]]:
    """{irq: {cpu: count}} for rows present on both sides with the same IRQ id and name.

    Global counters (ERR, MIS) have no per-CPU columns and come out as empty dicts; use
    irq_total_deltas for them.
    """
    old = {(row.irq, row.name): row for row in before.rows}
    deltas: dict[str, dict[int, int]] = {}
    for row in after.rows:
        previous = old.get((row.irq, row.name))
        if previous is not None:
            deltas[row.irq] = _per_cpu_deltas(previous.per_cpu, row.per_cpu, COUNTER_BITS_32)
    return deltas


def irq_total_deltas(before: InterruptTable, after: InterruptTable) -> dict[str, int]:
    """{irq: count} over all CPUs (and for the global ERR/MIS counters) during the window."""
    old = {(row.irq, row.name): row for row in before.rows}
    deltas: dict[str, int] = {}
    for row in after.rows:
        previous = old.get((row.irq, row.name))
        if previous is None:
            continue
        if row.per_cpu:
            per_cpu = _per_cpu_deltas(previous.per_cpu, row.per_cpu, COUNTER_BITS_32)
            deltas[row.irq] = sum(per_cpu.values())
        else:
            deltas[row.irq] = counter_delta(previous.total, row.total, COUNTER_BITS_32)
    return deltas


def softirq_deltas(
    before: Mapping[str, Mapping[int, int]], after: Mapping[str, Mapping[int, int]]
) -> dict[str, dict[int, int]]:
    """{"NET_RX": {cpu: count}} during the window (32-bit counters)."""
    return {
        name: _per_cpu_deltas(before[name], counts, COUNTER_BITS_32)
        for name, counts in after.items()
        if name in before
    }


def _softnet_row_delta(before: SoftnetRow, after: SoftnetRow) -> SoftnetRow:
    values: dict[str, int | None] = {}
    for column in fields(SoftnetRow):
        old, new = getattr(before, column.name), getattr(after, column.name)
        if column.name in SOFTNET_GAUGES or old is None or new is None:
            values[column.name] = new  # a queue length is a level, not a counter
        else:
            values[column.name] = counter_delta(old, new, COUNTER_BITS_32)
    return SoftnetRow(**values)  # type: ignore[arg-type]


def softnet_deltas(
    before: Mapping[int, SoftnetRow], after: Mapping[int, SoftnetRow]
) -> dict[int, SoftnetRow]:
    """{cpu: SoftnetRow of deltas}; queue-length columns keep their after value."""
    return {
        cpu: _softnet_row_delta(before[cpu], row) for cpu, row in after.items() if cpu in before
    }


def nic_queue_deltas(
    before_stats: Mapping[str, int], after_stats: Mapping[str, int]
) -> dict[tuple[str, int], dict[str, int]]:
    """Per-queue `ethtool -S` deltas: {("rx", 0): {"packets": 120, ...}} (64-bit counters)."""
    old = per_queue_stats(dict(before_stats))
    deltas: dict[tuple[str, int], dict[str, int]] = {}
    for queue, counters in per_queue_stats(dict(after_stats)).items():
        previous = old.get(queue, {})
        deltas[queue] = {
            name: counter_delta(previous[name], value)
            for name, value in counters.items()
            if name in previous
        }
    return {queue: counters for queue, counters in deltas.items() if counters}


def share(values: Mapping[int, int], cpus: set[int] | frozenset[int]) -> float:
    """Fraction of the total of `values` ({cpu: count}) that landed on `cpus`; 0.0 if no total."""
    total = sum(values.values())
    if total == 0:
        return 0.0
    return sum(count for cpu, count in values.items() if cpu in cpus) / total


def cpu_percentages(
    before: Mapping[int, CpuTimes], after: Mapping[int, CpuTimes]
) -> dict[int, dict[str, float]]:
    """Per-CPU time split over the window, in percent: {cpu: {"irq": 3.1, "softirq": 20.4, ...}}.

    Keys: user, nice, system, idle, iowait, irq, softirq, steal (they add up to 100). Guest
    time is already inside user/nice, so it is not counted twice. A field that went backwards
    (iowait can, on NO_HZ kernels) counts as 0.
    """
    result: dict[int, dict[str, float]] = {}
    for cpu, new in after.items():
        if cpu not in before:
            continue
        old = before[cpu]
        spent = {name: max(0, getattr(new, name) - getattr(old, name)) for name in TIME_SPLIT}
        total = sum(spent.values())
        result[cpu] = {
            name: (100.0 * value / total if total else 0.0) for name, value in spent.items()
        }
    return result
