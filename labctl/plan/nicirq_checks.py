"""NIC IRQ feasibility (pure, layer "plan"): IRQ tuning and IRQ expectations against what the
facts found of each NIC's vectors, before anything on a host changes.

A NIC without vectors (veth, a bridge, a netns lab host) keeps "not applicable". A NIC whose
vectors exist but could not be mapped to queues is refused, naming the vectors and why, instead
of having its tuning skipped; a driver the table does not know is a warning on every run.
"""

from __future__ import annotations

from collections.abc import Mapping

from labctl.errors import Problem
from labctl.host.facts import HostFacts, NicFacts
from labctl.input.config import Loaded
from labctl.input.model import IrqConfined, QueueIrqs, Scenario, SoftirqFollowsIrqs

IRQ_EXPECTATIONS = (IrqConfined, QueueIrqs, SoftirqFollowsIrqs)


def describe_vectors(nic: NicFacts, limit: int = 8) -> str:
    """"IRQ 130 eth0-TxRx-0, IRQ 134 eth0 (why); ..." for the device's vectors, grouped by why,
    at most `limit` of them named."""
    groups: dict[str, list[str]] = {}
    for irq, name in sorted(nic.vectors.items(), key=lambda kv: int(kv[0])):
        groups.setdefault(nic.unmapped_vectors.get(irq, "mapped"), []).append(f"IRQ {irq} {name or '(no name)'}")
    parts, shown = [], 0
    for why, names in groups.items():
        kept = names[:max(0, limit - shown)]
        shown += len(kept)
        more = f" and {len(names) - len(kept)} more" if len(names) > len(kept) else ""
        if kept or more:
            parts.append(f"{', '.join(kept)}{more} ({why})")
    return "; ".join(parts)


def unmapped_reason(facts: HostFacts) -> str:
    nic = facts.nic
    source = "msi_irqs" if nic.msi_listed else "/proc/interrupts"
    return (f"{nic.interface} on {facts.host} (driver {nic.driver or 'unknown'}, device "
            f"{nic.device or '?'}) has {len(nic.vectors)} IRQ vector(s) in {source} but labctl "
            f"could not tell which serves which RX queue: {describe_vectors(nic)}"
            + (f". {nic.irq_note}" if nic.irq_note else ""))


def nic_irq_problems(loaded: Loaded[Scenario], facts: Mapping[str, HostFacts]) -> list[Problem]:
    """irq_affinity steps and IRQ expectations on a NIC whose vectors could not be mapped."""
    scenario = loaded.model
    problems: list[Problem] = []
    for host, tuning in scenario.tuning.items():
        hf = facts.get(host)
        if hf is None or hf.shared_kernel or not hf.nic.irqs_unmapped or not tuning.irq_affinity:
            continue
        problems.append(loaded.problem(("tuning", host, "irq_affinity"),
                                       f"refused: {unmapped_reason(hf)}"))
    for index, item in enumerate(scenario.expect):
        if not isinstance(item, IRQ_EXPECTATIONS):
            continue
        hf = facts.get(item.host)
        if hf is not None and not hf.shared_kernel and hf.nic.irqs_unmapped:
            problems.append(loaded.problem(("expect", index, "check"),
                                           f"{item.check} refused: {unmapped_reason(hf)}"))
    return problems


def nic_irq_warnings(facts: Mapping[str, HostFacts]) -> list[str]:
    """One warning per NIC whose vectors are not all understood (for the manifest and report)."""
    warnings = []
    for host, hf in facts.items():
        nic = hf.nic
        if hf.shared_kernel or not nic.vectors:
            continue
        if nic.irqs_unmapped:
            warnings.append(f"{host}: {unmapped_reason(hf)}; IRQ deltas are reported per IRQ name")
        elif nic.irq_note:
            warnings.append(f"{host}: {nic.interface}: {nic.irq_note}")
    return warnings
