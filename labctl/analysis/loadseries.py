"""Load series (pure): the load generator's per-interval counts -> series lines
(labctl.runfiles.series) on the time base of the host that counted them.

A loadgen result file of format 2 (labctl/agent/loadgen.py) holds, per worker, its counts per
interval with the Unix times of its window. The client's counts become ``load.sent_per_s`` on
the client's host, the server's ``load.received_per_s`` on the server's host: one line per
worker (queue "w0", "w1", ...) and the total (queue None), each in messages per second.

Where the host has a sampler series, the counts are spread over its intervals (the host's
Unix ``started`` plus its ``times``) in proportion to how much of each worker interval falls
into each host interval: a rate is assumed even within one worker interval (1 s by default),
and the time before and after a worker's window counts 0 (it was not sending/receiving).
Where the host has none (a client host that takes no snapshot), the host gets a series of its
own, on the workers' grid from their earliest start (``samples`` 0: no sampler). A result of
format 1 (no per-interval counts) gives no line.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labctl.runfiles.series import HostSeries, SeriesLine

SENT = "load.sent_per_s"
RECEIVED = "load.received_per_s"
METRIC_OF_ROLE = {"client": SENT, "server": RECEIVED}
LOAD_SOURCE = "loadgen"


@dataclass(frozen=True)
class WorkerCounts:
    """One worker's counts per interval: counts[k] from started + k * seconds to the next
    boundary (the last one ends at stopped); Unix times."""

    name: str
    started: float
    seconds: float
    stopped: float
    counts: list[int]

    def spans(self) -> list[tuple[float, float, int]]:
        """(start, end, count) of each interval."""
        out = []
        for k, count in enumerate(self.counts):
            start = self.started + k * self.seconds
            end = self.stopped if k == len(self.counts) - 1 else start + self.seconds
            out.append((start, max(start, end), count))
        return out


def worker_counts(result: Mapping[str, Any] | None) -> list[WorkerCounts]:
    """The per-interval counts of a result's workers ([] for format 1 or a broken record)."""
    if not result:
        return []
    workers = []
    for index, worker in enumerate(result.get("workers") or []):
        intervals = worker.get("intervals") if isinstance(worker, Mapping) else None
        if not isinstance(intervals, Mapping):
            continue
        try:
            counts = [int(c) for c in intervals["counts"]]
            workers.append(WorkerCounts(f"w{index}", float(intervals["started"]),
                                        float(intervals["seconds"]), float(intervals["stopped"]),
                                        counts))
        except (KeyError, TypeError, ValueError):
            continue
    return [w for w in workers if w.seconds > 0 and w.counts]


def rates_on(boundaries: Sequence[float], worker: WorkerCounts) -> list[float]:
    """The worker's rate (per second) over each interval between consecutive `boundaries`
    (Unix times, ascending), its counts spread by overlap."""
    totals = [0.0] * (len(boundaries) - 1)
    for start, end, count in worker.spans():
        if not count:
            continue
        if end <= start:                        # an empty last interval: its count at its start
            index = bisect_right(boundaries, start) - 1
            if 0 <= index < len(totals):
                totals[index] += count
            continue
        first = max(bisect_right(boundaries, start) - 1, 0)
        for index in range(first, len(totals)):
            low, high = boundaries[index], boundaries[index + 1]
            if low >= end:
                break
            overlap = min(high, end) - max(low, start)
            if overlap > 0:
                totals[index] += count * overlap / (end - start)
    return [total / (high - low) if high > low else 0.0
            for total, low, high in zip(totals, boundaries, boundaries[1:])]


def load_lines(metric: str, workers: Sequence[WorkerCounts], started: float,
               times: Sequence[float]) -> list[SeriesLine]:
    """One line per worker and the total, on the grid `started` + `times` (interval ends)."""
    boundaries = [started, *(started + t for t in times)]
    per_worker = [rates_on(boundaries, w) for w in workers]
    lines = [SeriesLine(metric=metric, queue=w.name, values=[round(v, 3) for v in values])
             for w, values in zip(workers, per_worker)]
    total = [round(sum(column), 3) for column in zip(*per_worker)]
    return [*lines, SeriesLine(metric=metric, values=list(total))]


def own_grid(workers: Sequence[WorkerCounts]) -> tuple[float, list[float]]:
    """(started, interval ends) covering the workers' windows, every worker interval long."""
    started = min(w.started for w in workers)
    stopped = max(w.stopped for w in workers)
    seconds = workers[0].seconds
    ends, t = [], seconds
    while t < stopped - started - 1e-6:
        ends.append(round(t, 6))
        t += seconds
    ends.append(round(max(stopped - started, 0.0), 6))
    return started, ends


def with_load(series: HostSeries | None, role: str, result: Mapping[str, Any] | None
              ) -> HostSeries | None:
    """`series` (a copy) with the lines of a loadgen `role`'s result added; a series of the
    load alone when `series` is None; `series` unchanged when the result has no intervals."""
    workers = worker_counts(result)
    if not workers:
        return series
    metric = METRIC_OF_ROLE[role]
    if series is None or series.started is None or not series.times:
        started, times = own_grid(workers)
        return HostSeries(interval=workers[0].seconds, samples=0, started=started, times=times,
                          lines=load_lines(metric, workers, started, times),
                          sources=[LOAD_SOURCE])
    lines = [line for line in series.lines if line.metric != metric]
    return series.model_copy(update={
        "lines": lines + load_lines(metric, workers, series.started, series.times),
        "sources": [*series.sources, LOAD_SOURCE]})
