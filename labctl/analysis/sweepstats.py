"""Sweep statistics (pure, layer "analysis"): a sweep's repetitions -> per cell the median and
spread of each metric, the differences between cells beyond the repetitions' noise, flaky cells.

Only repetitions that ended with a verdict (passed, failed, inconclusive) and have a
summary.json count; invalid ones (their tuning drifted during the load window: not the cell's
tuning), error, interrupted and pending ones (and ended ones without a summary) are excluded
from the statistics and counted per status.

- **Median and spread.** Per cell and metric: the median of its repetitions' values, their
  range (min-max) and, with 4 or more values, the interquartile range (quartiles by the
  "inclusive" method of Python's ``statistics.quantiles``). With fewer than 3 values the spread
  is only the range of what was measured.
- **Differences beyond noise** are judged between two cells that differ in one swept parameter
  only (every pair when one parameter is swept), per metric, and need at least 3 repetitions in
  each cell (with 2 against 2 even fully separated values have an exact p of 1/3). With at
  least 4 in both: the exact two-sided Mann-Whitney U test (rank sums, ties by mid-ranks, the
  exact permutation distribution) at p < 0.05. With 3: the two ranges (min-max) do not
  overlap; that is U = 0, whose exact p is 2 / C(n1 + n2, n1) (0.1 for 3 against 3, 0.057 for
  3 against 4): a screen, not a proof. No correction for the number of comparisons.
- **Flaky**: a cell whose expectations all pass in some repetitions and not in others; the
  checks that flipped are named (a generator's check marked so: a generator that fell short
  in one repetition makes the cell flaky, but not the DUT).

Metrics (``sweep.json``'s ``metrics``, empty = the defaults of DEFAULT_METRICS): NET_RX share
per CPU of interest (the CPUs the runs' scenarios name in their tuning and expectations, or
else the CPUs holding most NET_RX), achieved rate, loss, drops (softnet dropped + time_squeeze),
expectations passed; on request also NET_RX softirqs and NIC RX IRQs per 1,000 packets received.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import JsonValue
from pydantic import ValidationError as ModelError

from labctl.input.model import (
    IrqConfined,
    Scenario,
    SoftirqFollowsIrqs,
    SoftirqShare,
    SoftnetShare,
)
from labctl.runfiles.models import HostAnalysis, Summary
from labctl.runfiles.sweep import CellRecord, RepetitionRecord, SweepRecord

JUDGED_STATUSES = frozenset({"passed", "failed", "inconclusive"})
NO_SUMMARY = "no summary"            # an ended repetition whose summary.json is missing or unreadable
SIGNIFICANCE = 0.05
MWU_MIN_N = 4                        # below this per cell, the ranges rule
MIN_N = 3                            # fewer repetitions in a cell: its differences are not judged
TOP_NET_RX_SHARE = 0.10              # a CPU "holds" NET_RX from this median share in some cell
TOP_NET_RX_CPUS = 4

NET_RX_SHARE = "net_rx_share"
DEFAULT_METRICS = (NET_RX_SHARE, "rate", "loss", "drops", "expectations")


# --- median and spread ------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """The values of one metric over a cell's repetitions (sorted)."""

    values: tuple[float, ...]
    median: float
    low: float
    high: float
    q1: float | None = None           # quartiles: only with 4 or more values
    q3: float | None = None

    @property
    def n(self) -> int:
        return len(self.values)


def spread(values: Sequence[float]) -> Spread | None:
    """Median, range and (n >= 4) quartiles of values; None without values."""
    ordered = tuple(sorted(float(v) for v in values))
    if not ordered:
        return None
    q1 = q3 = None
    if len(ordered) >= MWU_MIN_N:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return Spread(ordered, statistics.median(ordered), ordered[0], ordered[-1], q1, q3)


# --- the noise rule ---------------------------------------------------------------------------


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(U of a, exact two-sided p) of the Mann-Whitney U test; ties get mid-ranks and the
    permutation distribution of the rank sum is counted exactly (no normal approximation)."""
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    doubled: list[int] = []                      # 2 x mid-rank, so ties stay integers
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        doubled += [i + j + 2] * (j - i + 1)     # 2 x (mean of ranks i+1 .. j+1)
        i = j + 1
    n1, total = len(a), len(pooled)
    observed = sum(r for r, (_, side) in zip(doubled, pooled) if side == 0)
    counts = _rank_sum_counts(doubled, n1)
    centre = n1 * (total + 1)                    # 2 x the rank sum's mean
    extreme = sum(c for s, c in counts.items() if abs(s - centre) >= abs(observed - centre))
    u = observed / 2 - n1 * (n1 + 1) / 2
    return u, min(1.0, extreme / math.comb(total, n1))


def _rank_sum_counts(doubled: Sequence[int], n1: int) -> dict[int, int]:
    """How many ways n1 of the (doubled) ranks add up to each sum."""
    ways: list[dict[int, int]] = [{0: 1}] + [{} for _ in range(n1)]
    for rank in doubled:
        for k in range(n1, 0, -1):
            for s, c in ways[k - 1].items():
                ways[k][s + rank] = ways[k].get(s + rank, 0) + c
    return ways[n1]


@dataclass(frozen=True)
class NoiseCall:
    """Why two cells' values differ beyond noise."""

    rule: str                   # "Mann-Whitney U" | "ranges do not overlap"
    text: str                   # e.g. "U = 0, p = 0.029 (n = 4, 4)"
    p: float


def beyond_noise(a: Spread, b: Spread) -> NoiseCall | None:
    """The module's rule: exact Mann-Whitney U at p < 0.05 with n >= 4 in both cells, else
    non-overlapping ranges; None when the difference is within the noise (or n < 3)."""
    if a.n < MIN_N or b.n < MIN_N:
        return None
    u, p = mann_whitney(a.values, b.values)
    u = min(u, a.n * b.n - u)                    # the smaller of U1, U2, as usually reported
    sizes = f"n = {a.n}, {b.n}"
    if a.n >= MWU_MIN_N and b.n >= MWU_MIN_N:
        if p < SIGNIFICANCE:
            return NoiseCall("Mann-Whitney U", f"U = {u:g}, exact p = {p:.3g} ({sizes})", p)
        return None
    if a.high < b.low or b.high < a.low:
        return NoiseCall("ranges do not overlap", f"ranges apart, U = {u:g}, exact p = {p:.3g} "
                         f"({sizes})", p)
    return None


# --- metrics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One metric shown for every cell: key, label and how its values read."""

    key: str                    # "rate", "net_rx_share:1"
    label: str                  # "achieved msg/s", "NET_RX share CPU1"
    unit: str                   # share | rate | count | ratio | checks


Extract = Callable[[Summary], float | None]


def _measured_host(s: Summary) -> HostAnalysis | None:
    host = s.server.host if s.server else "dut"
    return s.hosts.get(host) or next(iter(s.hosts.values()), None)


def net_rx_shares(s: Summary) -> dict[int, float]:
    """NET_RX softirqs per CPU as a share of all of them on the measured (server's) host."""
    d = _measured_host(s)
    values = d.softirqs.get("NET_RX", {}) if d else {}
    total = sum(values.values())
    return {cpu: count / total for cpu, count in values.items()} if total else {}


def _rate(s: Summary) -> float | None:
    return s.loadgen.achieved_rate if s.loadgen else None


def _loss(s: Summary) -> float | None:
    return s.loadgen.loss if s.loadgen else None


def _drops(s: Summary) -> float | None:
    d = _measured_host(s)
    if d is None or not d.softnet:
        return None
    return float(sum(row.get("dropped", 0) + row.get("time_squeeze", 0) for row in d.softnet.values()))


def per_kilo_packet(count: int | None, s: Summary) -> float | None:
    """count per 1,000 packets the server received (None without either)."""
    received = s.loadgen.received if s.loadgen else None
    return None if count is None or not received else 1000.0 * count / received


def _net_rx_per_kpkt(s: Summary) -> float | None:
    d = _measured_host(s)
    values = d.softirqs.get("NET_RX") if d else None
    return per_kilo_packet(None if values is None else sum(values.values()), s)


def _irqs_per_kpkt(s: Summary) -> float | None:
    d = _measured_host(s)
    irqs = sum(sum(row.per_cpu.values()) for row in d.nic_irqs) if d and d.nic_irqs else None
    return per_kilo_packet(irqs, s)


def _passed(s: Summary) -> float | None:
    """The share of the run's expectations that passed (cells may differ in their checks)."""
    return sum(e.passed for e in s.expectations) / len(s.expectations) if s.expectations else None


SIMPLE_METRICS: dict[str, tuple[str, str, Extract]] = {
    "rate": ("achieved msg/s", "rate", _rate),
    "loss": ("loss", "share", _loss),
    "drops": ("softnet dropped + squeezed", "count", _drops),
    "expectations": ("expectations passed", "checks", _passed),
    "net_rx_per_1000": ("NET_RX per 1,000 packets", "ratio", _net_rx_per_kpkt),
    "irqs_per_1000": ("NIC RX IRQs per 1,000 packets", "ratio", _irqs_per_kpkt),
}
METRIC_NAMES = (NET_RX_SHARE, *SIMPLE_METRICS)


def scenario_cpus(scenario: Mapping[str, JsonValue] | None, host: str = "dut") -> frozenset[int]:
    """CPUs a run's scenario (manifest.json's scenario model) names for `host` in its tuning
    (IRQ affinity, RPS) and its per-CPU expectations; none when it does not validate."""
    if scenario is None:
        return frozenset()
    try:
        model = Scenario.model_validate(scenario)
    except ModelError:
        return frozenset()
    named: set[int] = set()
    tuning = model.tuning.get(host)
    if tuning is not None:
        for cpus in [*tuning.irq_affinity.values(), *tuning.rps.values()]:
            named |= cpus
    for item in model.expect:
        if isinstance(item, SoftirqShare | SoftnetShare | IrqConfined) and item.host == host:
            named |= item.cpus
        elif isinstance(item, SoftirqFollowsIrqs) and item.host == host and item.also_cpus:
            named |= item.also_cpus
    return frozenset(named)


# --- per cell ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Repetition:
    """One repetition as read from the sweep directory."""

    record: RepetitionRecord
    summary: Summary | None = None
    named_cpus: frozenset[int] = frozenset()      # scenario_cpus() of its run


@dataclass(frozen=True)
class CellStats:
    cell: CellRecord
    used: list[int]                               # repetition numbers in the statistics
    excluded: dict[str, int]                      # status (or NO_SUMMARY) -> count
    metrics: dict[str, Spread]                    # series key -> spread over `used`
    checks: int                                   # expectations per repetition (the most seen)
    flaky: bool = False
    flaky_checks: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)   # every repetition's status


@dataclass(frozen=True)
class Difference:
    series: Series
    a: int                                        # cell indexes, a's median the lower
    b: int
    axis: str                                     # the swept parameter in which they differ
    call: NoiseCall


@dataclass(frozen=True)
class SweepStats:
    record: SweepRecord
    series: list[Series]
    cells: list[CellStats]
    differences: list[Difference]
    cpus: list[int]                               # the CPUs of interest
    cpus_source: str                              # how they were chosen
    unknown_metrics: list[str]
    statuses: dict[str, int]                      # over all repetitions

    def cell(self, index: int) -> CellStats:
        return next(c for c in self.cells if c.cell.index == index)


def usable(rep: Repetition) -> bool:
    return rep.record.status in JUDGED_STATUSES and rep.summary is not None


def sweep_stats(record: SweepRecord, reps: Mapping[tuple[int, int], Repetition]) -> SweepStats:
    """Statistics of every cell of the sweep; reps[(cell index, repetition)] as read (a
    repetition missing from reps counts as its record's status, without a summary)."""
    per_cell = {c.index: [reps.get((c.index, r.repetition), Repetition(r)) for r in c.repetitions]
                for c in record.cells}
    used = [r for rs in per_cell.values() for r in rs if usable(r)]
    cpus, source = _cpus_of_interest(used)
    names = list(record.metrics or DEFAULT_METRICS)
    unknown = [n for n in names if n not in METRIC_NAMES]
    series = _series([n for n in names if n in METRIC_NAMES], cpus)
    extract = {s.key: _extractor(s.key) for s in series}
    cells = [_cell_stats(c, per_cell[c.index], series, extract) for c in record.cells]
    statuses = Counter(str(r.record.status) for rs in per_cell.values() for r in rs)
    return SweepStats(record, series, cells, _differences(record, cells, series), cpus, source,
                      unknown, dict(statuses))


def _cpus_of_interest(used: Sequence[Repetition]) -> tuple[list[int], str]:
    named = sorted(set().union(*(r.named_cpus for r in used))) if used else []
    if named:
        return named, "named in the scenario's tuning and expectations"
    shares: dict[int, list[float]] = {}
    for r in used:
        for cpu, value in net_rx_shares(r.summary or Summary()).items():
            shares.setdefault(cpu, []).append(value)
    ranked = sorted(((statistics.median(v), c) for c, v in shares.items()), reverse=True)
    top = sorted(c for m, c in ranked[:TOP_NET_RX_CPUS] if m >= TOP_NET_RX_SHARE)
    return top, f"holding most NET_RX (median share >= {TOP_NET_RX_SHARE:.0%})"


def _series(names: Sequence[str], cpus: Sequence[int]) -> list[Series]:
    out: list[Series] = []
    for name in names:
        if name == NET_RX_SHARE:
            out += [Series(f"{NET_RX_SHARE}:{c}", f"NET_RX share CPU{c}", "share") for c in cpus]
        else:
            label, unit, _ = SIMPLE_METRICS[name]
            out.append(Series(name, label, unit))
    return out


def _extractor(key: str) -> Extract:
    if key.startswith(NET_RX_SHARE + ":"):
        cpu = int(key.split(":", 1)[1])
        return lambda s: net_rx_shares(s).get(cpu, 0.0) if _measured_host(s) else None
    return SIMPLE_METRICS[key][2]


def _cell_stats(cell: CellRecord, reps: Sequence[Repetition], series: Sequence[Series],
                extract: Mapping[str, Extract]) -> CellStats:
    good = [r for r in reps if usable(r)]
    excluded = Counter(NO_SUMMARY if r.record.status in JUDGED_STATUSES else r.record.status
                       for r in reps if not usable(r))
    metrics = {}
    for s in series:
        values = [v for r in good if (v := extract[s.key](r.summary or Summary())) is not None]
        found = spread(values)
        if found is not None:
            metrics[s.key] = found
    flaky, flipped = _flaky([r.summary or Summary() for r in good])
    checks = max((len(r.summary.expectations) for r in good if r.summary), default=0)
    return CellStats(cell, [r.record.repetition for r in good], dict(excluded), metrics, checks,
                     flaky, flipped, dict(Counter(str(r.record.status) for r in reps)))


def _flaky(summaries: Sequence[Summary]) -> tuple[bool, list[str]]:
    """Whether all expectations pass in some repetitions and not in others, and the checks
    (check: description) that passed in some and failed in others."""
    verdicts = {all(e.passed for e in s.expectations) for s in summaries if s.expectations}
    results: dict[str, set[bool]] = {}
    for s in summaries:
        for e in s.expectations:
            who = " (generator)" if e.subject == "generator" else ""
            results.setdefault(f"{e.check}{who}: {e.description}", set()).add(e.passed)
    return len(verdicts) == 2, [name for name, seen in results.items() if len(seen) == 2]


# --- between cells ----------------------------------------------------------------------------


def comparable_pairs(cells: Sequence[CellRecord]) -> list[tuple[CellRecord, CellRecord, str]]:
    """Pairs of cells whose values differ in exactly one swept parameter, and that parameter."""
    pairs = []
    for a, b in itertools.combinations(cells, 2):
        differing = [k for k in a.values.keys() | b.values.keys()
                     if a.values.get(k) != b.values.get(k)]
        if len(differing) == 1:
            pairs.append((a, b, differing[0]))
    return pairs


def _differences(record: SweepRecord, cells: Sequence[CellStats], series: Sequence[Series]
                 ) -> list[Difference]:
    by_index = {c.cell.index: c for c in cells}
    found = []
    for a, b, axis in comparable_pairs(record.cells):
        for s in series:
            sa, sb = by_index[a.index].metrics.get(s.key), by_index[b.index].metrics.get(s.key)
            call = beyond_noise(sa, sb) if sa and sb else None
            if call is not None and sa and sb:
                low, high = (a, b) if sa.median <= sb.median else (b, a)
                found.append(Difference(s, low.index, high.index, axis, call))
    return found
