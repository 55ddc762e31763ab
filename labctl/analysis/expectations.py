"""Expectations (pure): evaluate a scenario's assertions against a run's measured deltas, and
the run's verdict from them.

Checks judge one of two subjects: the DUT (where IRQs, softirqs and packets went, loss) or the
load generator (did it send what was asked: `rate`). A run passes when both hold, fails when a
DUT check fails, and is inconclusive (generator-bound) when only the generator fell short: the
DUT checks are still shown, on the packets that were actually sent, but a generator that could
not deliver is never read as the DUT's failure. A `rate` check with `required: true` is a
requirement of the experiment itself: its shortfall fails the run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

from labctl.analysis.deltas import share
from labctl.analysis.perhost import nic_irqs_per_cpu
from labctl.cpulist import format_cpulist, parse_cpulist
from labctl.input.model import (
    Expectation,
    IrqConfined,
    Loss,
    QueueIrqs,
    Rate,
    RpsMask,
    RxQueueShare,
    Scenario,
    SoftirqFollowsIrqs,
    SoftirqShare,
    SoftnetShare,
    queue_index,
)


@dataclass(frozen=True)
class ExpectationResult:
    check: str
    description: str
    measured: str
    bound: str
    passed: bool
    subject: str = "dut"            # dut | generator (a shortfall: inconclusive, not failed)

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


IMPLICIT_RATE = Rate(check="rate", min_fraction=0.9)    # a paced run without a rate check of its own


def evaluate(scenario: Scenario, measured: dict[str, Any]) -> list[ExpectationResult]:
    """measured: the analysis of a run (see labctl.analysis.perhost.analyse). A paced load without a
    `rate` check of its own gets the implicit one (90 % of the asked rate): the generator's
    shortfall must be said, whatever the scenario checks."""
    results = [_evaluate_one(item, measured) for item in scenario.expect]
    load = scenario.load
    if load and load.client.rate != "max" and not any(isinstance(i, Rate) for i in scenario.expect):
        implicit = _rate(IMPLICIT_RATE, measured)
        results.append(dataclasses.replace(implicit, description=implicit.description + " (implicit)"))
    return results


@dataclass(frozen=True)
class Verdict:
    """passed | failed | inconclusive, and why in one sentence."""

    status: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def verdict(results: list[ExpectationResult], loadgen: dict[str, Any] | None = None,
            ceiling: float | None = None) -> Verdict:
    """The run's outcome from its checks; `ceiling` (msg/s) is the generator's calibration."""
    dut_failed = [r for r in results if not r.passed and r.subject == "dut"]
    generator_short = [r for r in results if not r.passed and r.subject == "generator"]
    dut_total = sum(r.subject == "dut" for r in results)
    if dut_failed:
        reason = f"{len(dut_failed)} of {dut_total} DUT check(s) failed"
        if generator_short:
            reason += " (and the load generator fell short: " + generator_short[0].measured + ")"
        return Verdict("failed", reason)
    if generator_short:
        lg = loadgen or {}
        reason = (f"generator-bound: {generator_short[0].measured}; every DUT check passed "
                  f"({dut_total}/{dut_total}) on the {lg.get('sent', 0)} messages actually sent")
        if ceiling:
            reason += f"; the generator's measured ceiling in this mode: {ceiling:.0f} msg/s"
        return Verdict("inconclusive", reason)
    return Verdict("passed", f"{len(results)}/{len(results)} checks passed")


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
    if isinstance(item, RxQueueShare):
        return _rx_queue_share(item, m)
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


def _rx_queue_share(item: RxQueueShare, m: dict[str, Any]) -> ExpectationResult:
    per_queue: dict[str, int] = _host(m, item.host).get("rx_queue_packets", {})
    total = sum(per_queue.values())
    description = f"{item.host} RX packets on {', '.join(item.queues)} (per-queue counters)"
    bound = _bounds(item.min, item.max)
    if not total:
        return ExpectationResult(item.check, description, "no per-queue RX packets counted", bound,
                                 not item.min)
    mine = sum(per_queue.get(q, 0) for q in item.queues)
    shown = ", ".join(f"{q} {v}" for q, v in sorted(per_queue.items(), key=lambda kv: queue_index(kv[0])))
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
    subject = "dut" if item.required else "generator"
    bounds = ([f">= {item.min_fraction:.0%} of asked"] if item.min_fraction is not None else []) + (
        [f">= {item.min:g}/s"] if item.min is not None else [])
    bound = " and ".join(bounds) + (" (required)" if item.required else "")
    if not lg or "achieved_rate" not in lg:
        return ExpectationResult(item.check, "achieved rate", "no loadgen results", bound, False, subject)
    achieved, asked = float(lg["achieved_rate"]), lg.get("asked_rate")
    passed = item.min is None or achieved >= item.min
    if item.min_fraction is not None:
        if not asked:
            return ExpectationResult(item.check, "achieved client rate vs asked",
                                     f"{achieved:.0f}/s, no asked rate (as fast as it can)", bound,
                                     False, subject)
        passed = passed and achieved / asked >= item.min_fraction
        measured = f"{achieved:.0f}/s of {asked:g}/s ({achieved / asked:.1%})"
        return ExpectationResult(item.check, "achieved client rate vs asked", measured, bound, passed, subject)
    return ExpectationResult(item.check, "achieved client rate", f"{achieved:.0f}/s"
                             + (f" of {asked:g}/s asked" if asked else " (as fast as it can)"),
                             bound, passed, subject)


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
