"""Live view data (pure): the last interval of a host's samples -> one row per CPU.

The live view (`labctl run` in a terminal, `labctl watch`) shows, per CPU, the rates of the
interval between the newest sample of a refresh and that of the refresh before. Samples are
parsed and differenced by the very functions that make a run's series
(labctl.analysis.series), so the live numbers are the series' numbers. LiveHost keeps only
the newest reading: each update parses one sample, whatever the sampler's interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labctl.analysis.series import Key, Reading, interval_values, read_sample
from labctl.host.samples import Sample
from labctl.host.snapshots import SnapshotHost

# column -> the series metric it shows (IRQs are summed over the NIC's RX queues)
COLUMNS: dict[str, str] = {
    "irqs": "irqs_per_s",
    "net_rx": "softirqs_per_s.NET_RX",
    "processed": "softnet_per_s.processed",
    "received_rps": "softnet_per_s.received_rps",
    "dropped": "softnet_per_s.dropped",
    "softirq_pct": "cpu_percent.softirq",
}


@dataclass(frozen=True)
class CpuRow:
    """One CPU's values over the last interval (None: not known, e.g. a part missing)."""

    cpu: int
    isolated: bool
    irqs: float | None = None
    net_rx: float | None = None
    processed: float | None = None
    received_rps: float | None = None
    dropped: float | None = None
    softirq_pct: float | None = None


@dataclass(frozen=True)
class HostView:
    """What the live view shows of one host: its rows, the interval they cover, a note."""

    host: str
    rows: tuple[CpuRow, ...]
    seconds: float | None = None        # length of the interval shown
    note: str = ""                      # "waiting for samples", a problem with the last one


def cpu_rows(values: dict[Key, float], cpus: Iterable[int], isolated: Iterable[int]) -> list[CpuRow]:
    """One row per CPU of `cpus` (and of any CPU the values name), from interval_values."""
    isolated_set = set(isolated)
    sums: dict[tuple[str, int], float] = {}
    for (metric, cpu, _queue), value in values.items():
        if cpu is not None:
            sums[(metric, cpu)] = sums.get((metric, cpu), 0.0) + value
    seen = {cpu for _, cpu in sums}
    rows = []
    for cpu in sorted(set(cpus) | seen):
        fields = {column: sums.get((metric, cpu)) for column, metric in COLUMNS.items()}
        if fields["irqs"] is None and any(m == "irqs_per_s" for m, _ in sums):
            fields["irqs"] = 0.0            # the NIC's queue IRQs never fired on this CPU
        rows.append(CpuRow(cpu, cpu in isolated_set, **fields))
    return rows


class LiveHost:
    """A host followed sample by sample: `update` takes new samples, `view` the last interval."""

    def __init__(self, host: str, snapshot: SnapshotHost, nic: Mapping[str, Any],
                 cpus: Sequence[int], isolated: Iterable[int]):
        self.host, self.snapshot, self.nic = host, snapshot, nic
        self.cpus, self.isolated = tuple(cpus), frozenset(isolated)
        self.previous: Reading | None = None
        self.last: Reading | None = None
        self.problems: list[str] = []

    def update(self, samples: Sequence[Sample]) -> None:
        """Take the newest of `samples` (the view then covers the time since the newest one
        before it: the last refresh); on the first update, the newest two."""
        if not samples:
            return
        self.problems.clear()
        if self.last is None and len(samples) >= 2:
            self.last = self._read(samples[-2])
        self.previous, self.last = self.last, self._read(samples[-1])

    def _read(self, sample: Sample) -> Reading:
        return read_sample(sample, self.snapshot, self.nic, self.problems)

    def view(self) -> HostView:
        if self.previous is None or self.last is None:
            return HostView(self.host, tuple(CpuRow(c, c in self.isolated) for c in self.cpus),
                            note="waiting for samples")
        values = interval_values(self.previous, self.last)
        rows = cpu_rows(values, self.cpus, self.isolated)
        return HostView(self.host, tuple(rows), round(self.last.mono - self.previous.mono, 3),
                        note=self.problems[-1] if self.problems else "")
