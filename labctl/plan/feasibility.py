"""Feasibility (pure): a validated scenario against the hosts' facts (CPU count, isolated CPUs,
channel limits, profiles), still before anything on a host changes. All problems at once, with
file:line, as the input's own validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labctl.cpulist import format_cpulist
from labctl.errors import Problem
from labctl.host.facts import HostFacts
from labctl.input.config import Loaded
from labctl.input.model import (
    Inventory,
    Scenario,
    queue_index,
)
from labctl.input.yamlpos import (
    KeyPath,
    format_path,
)
from labctl.plan.guards import queues_after_channels
from labctl.plan.nicirq_checks import nic_irq_problems, nic_irq_warnings
from labctl.plan.rss import rss_problems, rx_queue_share_problems


def check_against_facts(loaded: Loaded[Scenario], inventory: Inventory,
                        facts: Mapping[str, HostFacts]) -> tuple[list[Problem], list[str]]:
    """Problems and warnings that need the hosts' facts; run before any change is made.

    ``facts`` maps host name -> labctl.host.facts.HostFacts.
    """
    scenario = loaded.model
    problems: list[Problem] = []
    warnings: list[str] = []
    for host, tuning in scenario.tuning.items():
        hf = facts[host]
        where = ("tuning", host)
        if not hf.nic.exists:
            problems.append(loaded.problem(where, f"interface {hf.nic.interface} does not exist on {host}"))
            continue
        problems += _channel_problems(loaded, where, tuning, hf)
        problems += rss_problems(loaded, host, tuning, hf)
        queues = queues_after_channels(tuning.channels, hf)
        for key, cpus in tuning.irq_affinity.items():
            problems += _cpu_problems(loaded, where + ("irq_affinity", key), cpus, hf)
            problems += _queue_problems(loaded, where + ("irq_affinity", key), key, queues, hf)
        for key, cpus in tuning.rps.items():
            path = where + ("rps", key)
            problems += _cpu_problems(loaded, path, cpus, hf)
            if key != "all":
                problems += _queue_problems(loaded, path, key, queues, hf)
            p, w = _isolation(loaded, path, cpus, hf, tuning.allow_isolated_rps)
            problems, warnings = problems + p, warnings + w
    problems += nic_irq_problems(loaded, facts)
    problems += rx_queue_share_problems(loaded, facts)
    warnings += nic_irq_warnings(facts)
    problems += _load_cpu_problems(loaded, facts)
    problems += _profile_problems(loaded, facts)
    if any(hf.shared_kernel for hf in facts.values()):
        warnings += _veth_queue_warnings(scenario, facts)
    for i, item in enumerate(scenario.expect):
        expected_cpus: frozenset[int] | None = getattr(item, "cpus", None)
        expected_host: str | None = getattr(item, "host", None)
        if expected_cpus and expected_host is not None and expected_host in facts:
            problems += _cpu_problems(loaded, ("expect", i, "cpus"), expected_cpus, facts[expected_host])
    return problems, warnings


def _veth_queue_warnings(scenario: Scenario, facts: Mapping[str, HostFacts]) -> list[str]:
    """veth hands a packet sent on TX queue N to the peer's RX queue N; with N at or above the
    peer's RX queue count it goes to netif_rx instead, and RPS skips it (its recorded queue is
    one the device no longer has): steering silently applies to part of the traffic only."""
    warnings = []
    for host, tuning in scenario.tuning.items():
        if not tuning.rps:
            continue
        rx = queues_after_channels(tuning.channels, facts[host])
        for peer, peer_facts in facts.items():
            peer_tuning = scenario.tuning.get(peer)
            channels = peer_tuning.channels if peer_tuning else None
            tx = (channels.combined or channels.tx) if channels else None
            tx = tx or peer_facts.nic.channels_current.get("tx") or 0
            if peer != host and tx > rx:
                warnings.append(
                    f"{host} keeps {rx} RX queue(s) while {peer} sends on {tx} TX queues: veth hands "
                    f"what {peer} sends on TX queue {rx} and up to netif_rx, where RPS skips it; give "
                    f"{peer} `channels: {{tx: {rx}}}` for RPS to see all the traffic")
    return warnings


def _cpu_problems(loaded: Loaded[Scenario], path: KeyPath, cpus: frozenset[int], hf: HostFacts) -> list[Problem]:
    missing = cpus - hf.cpus_online
    if not missing:
        return []
    return [loaded.problem(path, f"CPU(s) {format_cpulist(missing)} not online on {hf.host} "
                           f"(online: {format_cpulist(hf.cpus_online)})")]


def _queue_problems(loaded: Loaded[Scenario], path: KeyPath, key: str, queues: int, hf: HostFacts) -> list[Problem]:
    if queue_index(key) < queues:
        return []
    return [loaded.problem(path, f"{key} does not exist: {hf.nic.interface} on {hf.host} will have "
                           f"{queues} RX queue(s) (rx-0..rx-{queues - 1})")]


def _channel_problems(loaded: Loaded[Scenario], where: KeyPath, tuning: Any, hf: HostFacts) -> list[Problem]:
    if tuning.channels is None:
        return []
    maximum = hf.nic.channels_max
    problems = []
    for kind in ("combined", "rx", "tx"):
        want = getattr(tuning.channels, kind)
        if want is None:
            continue
        limit = maximum.get(kind) or (maximum.get("rx") if kind == "combined" else None)
        if not limit:
            problems.append(loaded.problem(where + ("channels", kind), f"{hf.nic.interface} on "
                                           f"{hf.host} has no {kind} channels to set"))
        elif want > limit:
            problems.append(loaded.problem(where + ("channels", kind), f"{hf.nic.interface} on "
                                           f"{hf.host} supports at most {limit} {kind} channels"))
    return problems


def _isolation(loaded: Loaded[Scenario], path: KeyPath, cpus: frozenset[int], hf: HostFacts,
               allowed: bool) -> tuple[list[Problem], list[str]]:
    isolated = cpus & hf.isolated
    if not isolated:
        return [], []
    housekeeping = format_cpulist(hf.housekeeping)
    if isolated == cpus:
        reason = (f"CPU(s) {format_cpulist(cpus)} are isolated on {hf.host} (isolcpus="
                  f"{format_cpulist(hf.isolated)}); the kernel rejects an RPS mask of only "
                  f"isolated CPUs (EINVAL). Use a housekeeping CPU: {housekeeping}.")
        if allowed:
            return [], [f"{format_path(path)}: {reason} The write will be attempted "
                        "(allow_isolated_rps) and the kernel's answer recorded."]
        return [loaded.problem(path, reason)], []
    return [], [f"{format_path(path)}: CPU(s) {format_cpulist(isolated)} are isolated on {hf.host};"
                f" the kernel silently keeps only {format_cpulist(cpus - hf.isolated)}"]


def _profile_problems(loaded: Loaded[Scenario], facts: Mapping[str, HostFacts]) -> list[Problem]:
    profile = loaded.model.profile
    if profile is None or profile.host not in facts:
        return []
    hf = facts[profile.host]
    problems = []
    if not hf.perf:
        problems.append(loaded.problem(("profile", "host"), f"perf is not installed on {hf.host} "
                                       "(Debian: apt-get install linux-perf)"))
    if profile.cpus != "auto":
        problems += _cpu_problems(loaded, ("profile", "cpus"), profile.cpus, hf)
    return problems


def _load_cpu_problems(loaded: Loaded[Scenario], facts: Mapping[str, HostFacts]) -> list[Problem]:
    load = loaded.model.load
    if load is None:
        return []
    problems = []
    for role, part in (("server", load.server), ("client", load.client)):
        if part.cpus and part.host in facts:
            problems += _cpu_problems(loaded, ("load", role, "cpus"), part.cpus, facts[part.host])
    return problems
