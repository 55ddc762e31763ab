"""Expectations (pure): evaluate a scenario's assertions against a run's measured deltas."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

from labctl.analysis import nic_irqs_per_cpu
from labctl.cpulist import format_cpulist, parse_cpulist
from labctl.deltas import share
from labctl.model import (Expectation, IrqConfined, Loss, QueueIrqs, Rate, RpsMask, Scenario,
                          SoftirqFollowsIrqs, SoftirqShare, SoftnetShare, queue_index)


@dataclass(frozen=True)
class ExpectationResult:
    check: str
    description: str
    measured: str
    bound: str
    passed: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def share_of(values: dict[int, int], cpus: frozenset[int]) -> tuple[float, int]:
    """(fraction of the total on cpus, total)."""
    return share(values, cpus), sum(values.values())


def _bounds(low: float | None, high: float | None) -> str:
    parts = ([f">= {low:.0%}"] if low is not None else []) + ([f"<= {high:.0%}"] if high is not None else [])
    return " and ".join(parts)


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def evaluate(scenario: Scenario, measured: dict[str, Any]) -> list[ExpectationResult]:
    """measured: the analysis of a run (see labctl.analysis.analyse)."""
    return [_evaluate_one(item, measured) for item in scenario.expect]


def _evaluate_one(item: Expectation, m: dict[str, Any]) -> ExpectationResult:
    if isinstance(item, SoftirqShare):
        return _softirq_share(item, m)
    if isinstance(item, SoftnetShare):
        return _softnet_share(item, m)
    if isinstance(item, IrqConfined):
        return _irq_confined(item, m)
    if isinstance(item, QueueIrqs):
        return _queue_irqs(item, m)
    if isinstance(item, SoftirqFollowsIrqs):
        return _softirq_follows_irqs(item, m)
    if isinstance(item, Loss):
        return _loss(item, m)
    if isinstance(item, Rate):
        return _rate(item, m)
    return _rps_mask(item, m)


def _host(m: dict[str, Any], host: str) -> dict[str, Any]:
    found: dict[str, Any] = m.get("hosts", {}).get(host, {})
    return found


def _share_result(check: str, what: str, values: dict[int, int], cpus: frozenset[int],
                  low: float | None, high: float | None) -> ExpectationResult:
    fraction, total = share_of(values, cpus)
    description = f"{what} on CPUs {format_cpulist(cpus)}"
    if total == 0:   # nothing at all: passes an upper bound only, never a lower one
        return ExpectationResult(check, description, f"none counted ({what})", _bounds(low, high),
                                 not low)
    return ExpectationResult(check, description, f"{fraction:.1%} of {total}", _bounds(low, high),
                             _within(fraction, low, high))


def _softirq_share(item: SoftirqShare, m: dict[str, Any]) -> ExpectationResult:
    values = _host(m, item.host).get("softirqs", {}).get(item.softirq, {})
    return _share_result(item.check, f"{item.host} {item.softirq}", values, item.cpus, item.min, item.max)


def _softnet_share(item: SoftnetShare, m: dict[str, Any]) -> ExpectationResult:
    softnet = _host(m, item.host).get("softnet", {})
    values = {cpu: row.get(item.column, 0) for cpu, row in softnet.items()}
    return _share_result(item.check, f"{item.host} softnet {item.column}", values, item.cpus,
                         item.min, item.max)


def _irq_confined(item: IrqConfined, m: dict[str, Any]) -> ExpectationResult:
    rows = _host(m, item.host).get("nic_irqs", [])
    wanted = None if item.queues == "all" else {queue_index(q) for q in item.queues}
    per_cpu = nic_irqs_per_cpu(rows, wanted)
    what = f"{item.host} NIC RX IRQs ({'all queues' if wanted is None else ', '.join(item.queues)})"
    if not rows:
        return ExpectationResult(item.check, what + f" on CPUs {format_cpulist(item.cpus)}",
                                 "this NIC has no IRQs", f">= {item.min_share:.0%}", False)
    return _share_result(item.check, what, per_cpu, item.cpus, item.min_share, None)


def _queue_irqs(item: QueueIrqs, m: dict[str, Any]) -> ExpectationResult:
    rows = _host(m, item.host).get("nic_irqs", [])
    wanted = {queue_index(q) for q in item.queues}
    per_queue = {row["queue"]: sum(row["per_cpu"].values()) for row in rows}
    total = sum(per_queue.values())
    description = f"{item.host} NIC RX IRQs taken by {', '.join(item.queues)}"
    bound = _bounds(item.min, item.max)
    if not total:
        return ExpectationResult(item.check, description, "no NIC RX IRQs counted", bound, not item.min)
    mine = sum(v for q, v in per_queue.items() if q in wanted)
    shown = ", ".join(f"rx-{q} {v}" for q, v in sorted(per_queue.items()))
    return ExpectationResult(item.check, description, f"{mine / total:.1%} of {total} ({shown})", bound,
                             _within(mine / total, item.min, item.max))


def irq_cpus(rows: list[dict[str, Any]], floor: float = 0.01) -> frozenset[int]:
    """CPUs that took at least `floor` of the NIC's RX IRQs (a stray one does not count)."""
    per_cpu = nic_irqs_per_cpu(rows)
    total = sum(per_cpu.values())
    return frozenset(c for c, v in per_cpu.items() if total and v >= floor * total)


def _softirq_follows_irqs(item: SoftirqFollowsIrqs, m: dict[str, Any]) -> ExpectationResult:
    host = _host(m, item.host)
    cpus = irq_cpus(host.get("nic_irqs", [])) | (item.also_cpus or frozenset())
    values = {int(c): v for c, v in host.get("softirqs", {}).get(item.softirq, {}).items()}
    if not cpus:
        return ExpectationResult(item.check, f"{item.host} {item.softirq} on the NIC's IRQ CPUs",
                                 "no NIC RX IRQs counted", _bounds(item.min, item.max), False)
    result = _share_result(item.check, f"{item.host} {item.softirq}", values, cpus, item.min, item.max)
    extra = f" + {format_cpulist(item.also_cpus)}" if item.also_cpus else ""
    return dataclasses.replace(result, description=f"{item.host} {item.softirq} on the CPUs that took the "
                               f"NIC's IRQs ({format_cpulist(cpus - (item.also_cpus or frozenset()))}){extra}")


def _loss(item: Loss, m: dict[str, Any]) -> ExpectationResult:
    lg = m.get("loadgen") or {}
    loss = lg.get("loss")
    bound = f"<= {item.max:.2%}"
    if loss is None:
        return ExpectationResult(item.check, "message loss", "no loadgen results", bound, False)
    return ExpectationResult(item.check, "message loss (client sent vs server received)",
                             f"{loss:.2%} ({lg['received']} of {lg['sent']} received)", bound,
                             loss <= item.max)


def _rate(item: Rate, m: dict[str, Any]) -> ExpectationResult:
    lg = m.get("loadgen") or {}
    bound = f">= {item.min_fraction:.0%} of asked"
    if not lg.get("asked_rate"):
        return ExpectationResult(item.check, "achieved rate", "no loadgen results", bound, False)
    fraction = lg["achieved_rate"] / lg["asked_rate"]
    return ExpectationResult(item.check, "achieved client rate vs asked",
                             f"{lg['achieved_rate']:.0f}/s of {lg['asked_rate']}/s ({fraction:.1%})",
                             bound, fraction >= item.min_fraction)


def _rps_mask(item: RpsMask, m: dict[str, Any]) -> ExpectationResult:
    rps = _host(m, item.host).get("rps_after", {})
    want = item.equals
    queues = sorted(rps) if item.queue == "all" else [queue_index(item.queue)]
    observed = {q: rps.get(q) for q in queues}
    shown = ", ".join(f"rx-{q}: {v or 'none' if v is not None else 'missing'}"
                      for q, v in observed.items())
    passed = bool(observed) and all(v is not None and parse_cpulist(v) == want
                                    for v in observed.values())
    return ExpectationResult(item.check, f"{item.host} read-back RPS mask of {item.queue}",
                             shown or "no queues", f"== {format_cpulist(want) or 'none'}", passed)
