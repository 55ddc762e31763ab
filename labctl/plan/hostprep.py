"""Host preparation (pure): what a host must look like before runs, and the steps to get there.

Preparation is the part of the blog done once per host and kept across runs: irqbalance
stopped and disabled, a tuned profile (realtime) with its variables file, and — when the
profile isolates CPUs — a reboot so that `isolcpus` is on the running kernel's command line.
This module reads nothing and runs nothing: a read-only facts script and its parser, the
steps that bring a host from its facts to the wanted state (empty when it is there), the
checks that prove it, the sysctls the profile changed, and the steps that put the original
state back (`labctl unprepare`). Side effects live in labctl.execution.preparer.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from labctl.cpulist import format_cpulist, parse_cpulist
from labctl.host import probes
from labctl.host.facts import (
    ALL_SYSCTLS,
    CMDLINE_TEXT,
    SYSTEMD,
    TUNED_ACTIVE,
    command_path,
    existing_files,
    parse_sysctl_all,
    service_active,
    service_enabled,
)
from labctl.host.sections import build_script, split_sections
from labctl.input.model import HostPrepare
from labctl.plan.dryrun import one_line, shown_command

# sysctls that move by themselves (counters, random values): never "changed by the profile"
VOLATILE_SYSCTLS = re.compile(
    r"^(fs\.(dentry-state|inode-nr|inode-state|file-nr|aio-nr|quota\..*)|kernel\.ns_last_pid|"
    r"kernel\.random\..*|kernel\.pty\.nr|net\.netfilter\.nf_conntrack_count|"
    r"kernel\.(tainted|perf_event_max_sample_rate)|vm\.user_reserve_kbytes|dev\.cdrom\..*)$")


@dataclass(frozen=True)
class PrepFacts:
    """What preparation reads from a host (one round trip)."""

    host: str
    boot_id: str
    cpus_online: frozenset[int]
    isolated: frozenset[int]
    cmdline: str
    pid1_cpus_allowed: frozenset[int]
    default_smp_affinity: frozenset[int]
    systemd: bool
    irqbalance_installed: bool
    irqbalance_enabled: str          # enabled | disabled | ... (systemctl is-enabled)
    irqbalance_active: str           # active | inactive | ...
    tuned_installed: bool
    tuned_enabled: str
    tuned_active: str
    tuned_profile: str               # "" when no profile is active
    profile_exists: bool
    variables_text: str | None       # /etc/tuned/<profile>-variables.conf, None if absent
    nic_max_combined: int | None
    sysctls: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PrepStep:
    description: str
    command: str = ""
    write_path: str | None = None    # write `content` to this file instead of running a command
    content: str = ""
    old_content: str | None = None   # the file as it was (None: absent), for showing the change


TUNED_DIRS = ("/etc/tuned", "/usr/lib/tuned")


def variables_path(profile: str) -> str:
    return f"/etc/tuned/{profile}-variables.conf"


def prep_fact_probes(spec: HostPrepare, interface: str) -> dict[str, probes.Probe[Any]]:
    """Section name -> probe of the preparation facts script."""
    profile = spec.tuned.profile if spec.tuned else "realtime"
    return {
        "boot_id": probes.BOOT_ID,
        "online": probes.CPUS_ONLINE,
        "isolated": probes.CPUS_ISOLATED,
        "cmdline": CMDLINE_TEXT,
        "pid1": probes.cpus_allowed(1),
        "default_affinity": probes.DEFAULT_SMP_AFFINITY,
        "systemd": SYSTEMD,
        "irqbalance_installed": command_path("irqbalance"),
        "irqbalance_enabled": service_enabled("irqbalance"),
        "irqbalance_active": service_active("irqbalance"),
        "tuned_installed": command_path("tuned-adm"),
        "tuned_enabled": service_enabled("tuned"),
        "tuned_active": service_active("tuned"),
        "tuned_profile": TUNED_ACTIVE,
        "profile_exists": existing_files([f"{d}/{profile}/tuned.conf" for d in TUNED_DIRS]),
        "variables": probes.file_text(variables_path(profile)),
        "ethtool_l": probes.ethtool_channels(interface, check=False),
        "sysctls": ALL_SYSCTLS,
    }


def prep_facts_script(spec: HostPrepare, interface: str) -> str:
    return build_script({name: probe.command for name, probe in prep_fact_probes(spec, interface).items()})


def parse_prep_facts(host: str, text: str) -> PrepFacts:
    sections = split_sections(text)
    found = prep_fact_probes(HostPrepare(), "lo")      # the parsers do not depend on the parameters

    def value(name: str, default: object) -> Any:
        sec = sections.get(name)
        out = sec.output.strip() if sec is not None and sec.status == 0 else ""
        return found[name].parse(out) if out else default

    def ok(name: str) -> bool:
        sec = sections.get(name)
        return sec is not None and sec.status == 0

    def word(name: str) -> str:
        sec = sections.get(name)       # systemctl is-* prints its answer with a non-zero status
        answer: str = found[name].parse(sec.output if sec is not None else "")
        return answer

    channels: probes.Channels | None = value("ethtool_l", None)
    variables = sections.get("variables")
    return PrepFacts(
        host=host,
        boot_id=value("boot_id", ""),
        cpus_online=value("online", frozenset()),
        isolated=value("isolated", frozenset()),
        cmdline=value("cmdline", ""),
        pid1_cpus_allowed=value("pid1", frozenset()),
        default_smp_affinity=value("default_affinity", frozenset()),
        systemd=ok("systemd"),
        irqbalance_installed=ok("irqbalance_installed"),
        irqbalance_enabled=word("irqbalance_enabled") if ok("irqbalance_installed") else "absent",
        irqbalance_active=word("irqbalance_active") if ok("irqbalance_installed") else "absent",
        tuned_installed=ok("tuned_installed"),
        tuned_enabled=word("tuned_enabled"),
        tuned_active=word("tuned_active"),
        tuned_profile=value("tuned_profile", ""),
        profile_exists=bool(value("profile_exists", [])),
        variables_text=(found["variables"].parse(variables.output)
                        if variables is not None and variables.status == 0 else None),
        nic_max_combined=channels.maximum.get("combined") if channels else None,
        sysctls=value("sysctls", {}),
    )


def parse_sysctls(text: str) -> dict[str, str]:
    return parse_sysctl_all(text)


# --------------------------------------------------------------------------- checks before any change

def spec_problems(spec: HostPrepare, facts: PrepFacts) -> list[tuple[tuple[str, ...], str]]:
    """(key path under `prepare`, message) for what this host cannot do; checked before any change."""
    problems: list[tuple[tuple[str, ...], str]] = []
    if not facts.systemd:
        problems.append(((), f"{facts.host} does not run systemd: labctl prepares irqbalance "
                             "and tuned through systemctl"))
    tuned = spec.tuned
    if tuned is None:
        return problems
    if not facts.tuned_installed:
        problems.append((("tuned",), f"tuned is not installed on {facts.host} (tuned-adm not found)"))
    elif not facts.profile_exists:
        problems.append((("tuned", "profile"), f"tuned profile {tuned.profile!r} does not exist on "
                                               f"{facts.host} (/usr/lib/tuned, /etc/tuned)"))
    if tuned.isolated_cores is not None:
        missing = tuned.isolated_cores - facts.cpus_online
        if missing:
            problems.append((("tuned", "isolated_cores"), f"CPU(s) {format_cpulist(missing)} do not "
                             f"exist on {facts.host} (online: {format_cpulist(facts.cpus_online)})"))
        elif tuned.isolated_cores >= facts.cpus_online:
            problems.append((("tuned", "isolated_cores"), f"isolating every CPU of {facts.host} "
                             f"({format_cpulist(facts.cpus_online)}) leaves none for housekeeping: "
                             "the kernel, its IRQs and SSH need at least one"))
    count = tuned.netdev_queue_count
    if count is not None and facts.nic_max_combined and count > facts.nic_max_combined:
        problems.append((("tuned", "netdev_queue_count"), f"the test NIC of {facts.host} has at most "
                         f"{facts.nic_max_combined} combined channels"))
    return problems


# --------------------------------------------------------------------------- steps

def wanted_variables(spec: HostPrepare, facts: PrepFacts) -> dict[str, str]:
    tuned = spec.tuned
    if tuned is None:
        return {}
    values: dict[str, str] = {}
    if tuned.isolated_cores is not None:
        values["isolated_cores"] = format_cpulist(tuned.isolated_cores)
    count = tuned.netdev_queue_count or facts.nic_max_combined
    if count and tuned.isolated_cores is not None:
        values["netdev_queue_count"] = str(count)
    values.update(tuned.variables)
    return values


def set_variables(text: str | None, values: dict[str, str]) -> str:
    """The variables file with each `key=value` set: an active line replaced in place, else
    appended; comments and other keys kept as they are."""
    lines = (text or "").splitlines()
    pending = dict(values)
    for i, line in enumerate(lines):
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith("#") else None
        if key in pending:
            lines[i] = f"{key}={pending.pop(key)}"
    if pending and lines and lines[-1].strip():
        lines.append("")
    lines += [f"{k}={v}" for k, v in pending.items()]
    return "\n".join(lines) + "\n"


def prep_steps(spec: HostPrepare, facts: PrepFacts) -> list[PrepStep]:
    """Steps from the host's facts to the wanted state; empty when it is there (idempotent)."""
    steps: list[PrepStep] = []
    if spec.irqbalance == "disable" and facts.irqbalance_installed and (
            facts.irqbalance_enabled == "enabled" or facts.irqbalance_active == "active"):
        steps.append(PrepStep(f"stop and disable irqbalance (was {facts.irqbalance_active}, "
                              f"{facts.irqbalance_enabled})", "systemctl disable --now irqbalance"))
    tuned = spec.tuned
    if tuned is None:
        return steps
    if facts.tuned_enabled != "enabled" or facts.tuned_active != "active":
        steps.append(PrepStep(f"enable and start tuned (was {facts.tuned_active}, {facts.tuned_enabled})",
                              "systemctl enable --now tuned"))
    values = wanted_variables(spec, facts)
    path = variables_path(tuned.profile)
    new_text = set_variables(facts.variables_text, values) if values else facts.variables_text
    variables_change = values and new_text != facts.variables_text
    if variables_change:
        shown = " ".join(f"{k}={v}" for k, v in values.items())
        steps.append(PrepStep(f"set {shown} in {path}", write_path=path, content=new_text or "",
                              old_content=facts.variables_text))
    if variables_change or facts.tuned_profile != tuned.profile:
        steps.append(PrepStep(f"activate tuned profile {tuned.profile} (was "
                              f"{facts.tuned_profile or 'none'})",
                              shlex.join(["tuned-adm", "profile", tuned.profile])))
    return steps


def reboot_reason(spec: HostPrepare, facts: PrepFacts) -> str:
    """Why the running kernel must be rebooted (its isolated CPUs differ), or ""."""
    want = spec.tuned.isolated_cores if spec.tuned else None
    if want is None or facts.isolated == want:
        return ""
    return (f"the running kernel isolates {format_cpulist(facts.isolated) or 'no CPU'}, the profile "
            f"asks for {format_cpulist(want)} (isolcpus takes effect at boot)")


def verify(spec: HostPrepare, facts: PrepFacts) -> list[str]:
    """What is not as prepared; empty when every check holds."""
    problems = []
    if spec.irqbalance == "disable" and facts.irqbalance_installed:
        if facts.irqbalance_active == "active" or facts.irqbalance_enabled == "enabled":
            problems.append(f"irqbalance is {facts.irqbalance_active} and {facts.irqbalance_enabled}")
    tuned = spec.tuned
    if tuned is not None and facts.tuned_profile != tuned.profile:
        problems.append(f"tuned profile is {facts.tuned_profile or 'none'}, not {tuned.profile}")
    want = tuned.isolated_cores if tuned else None
    if want is not None:
        cmdline = probes.parse_cmdline(facts.cmdline)
        iso = cmdline.isolcpus.cpus if cmdline.isolcpus else frozenset()
        if iso != want:
            problems.append(f"/proc/cmdline isolcpus is {format_cpulist(iso) or 'absent'}, not "
                            f"{format_cpulist(want)}")
        if facts.isolated != want:
            problems.append(f"/sys/devices/system/cpu/isolated is {format_cpulist(facts.isolated) or 'empty'}")
        if facts.pid1_cpus_allowed & want:
            problems.append(f"PID 1 may run on isolated CPUs (Cpus_allowed_list "
                            f"{format_cpulist(facts.pid1_cpus_allowed)})")
        if facts.default_smp_affinity & want:
            problems.append(f"the default IRQ affinity includes isolated CPUs "
                            f"({format_cpulist(facts.default_smp_affinity)})")
    return problems


def verified_facts(facts: PrepFacts) -> dict[str, Any]:
    """The facts the checks looked at, as they go into the lab record and every manifest."""
    cmdline = probes.parse_cmdline(facts.cmdline)
    return {
        "boot_id": facts.boot_id,
        "cmdline": facts.cmdline,
        "isolcpus": cmdline.params.get("isolcpus"),
        "isolated": format_cpulist(facts.isolated),
        "pid1_cpus_allowed": format_cpulist(facts.pid1_cpus_allowed),
        "default_smp_affinity": format_cpulist(facts.default_smp_affinity),
        "irqbalance": f"{facts.irqbalance_active}, {facts.irqbalance_enabled}",
        "tuned_profile": facts.tuned_profile,
    }


def sysctl_changes(before: dict[str, str], after: dict[str, str]) -> dict[str, dict[str, str | None]]:
    """Sysctls whose value differs (counters and random values left out)."""
    keys = sorted((set(before) | set(after)) - {k for k in set(before) | set(after) if VOLATILE_SYSCTLS.match(k)})
    return {k: {"before": before.get(k), "after": after.get(k)} for k in keys if before.get(k) != after.get(k)}


# --------------------------------------------------------------------------- putting it back

def original_state(spec: HostPrepare, facts: PrepFacts) -> dict[str, Any]:
    """What `labctl unprepare` puts back, read before the first change."""
    profile = spec.tuned.profile if spec.tuned else None
    return {
        "irqbalance_enabled": facts.irqbalance_enabled,
        "irqbalance_active": facts.irqbalance_active,
        "tuned_enabled": facts.tuned_enabled,
        "tuned_active": facts.tuned_active,
        "tuned_profile": facts.tuned_profile,
        "variables_path": variables_path(profile) if profile else None,
        "variables_text": facts.variables_text,
        "isolated": format_cpulist(facts.isolated),
        "cmdline": facts.cmdline,
    }


def unprepare_steps(original: dict[str, Any], facts: PrepFacts) -> list[PrepStep]:
    """Steps from the prepared host back to the recorded original state."""
    steps: list[PrepStep] = []
    path = original.get("variables_path")
    if path and original.get("variables_text") is not None:
        if original["variables_text"] != facts.variables_text:
            steps.append(PrepStep(f"put back {path}", write_path=path, content=original["variables_text"],
                                  old_content=facts.variables_text))
    elif path and facts.variables_text is not None:
        steps.append(PrepStep(f"remove {path} (labctl wrote it)", shlex.join(["rm", "-f", path])))
    profile = original.get("tuned_profile") or ""
    if facts.tuned_installed and profile != facts.tuned_profile:
        steps.append(PrepStep(f"put back tuned profile {profile or 'none'}",
                              shlex.join(["tuned-adm", "profile", profile]) if profile else "tuned-adm off"))
    if original.get("tuned_enabled") == "disabled" and facts.tuned_enabled == "enabled":
        steps.append(PrepStep("disable tuned again", "systemctl disable --now tuned"))
    if facts.irqbalance_installed:
        if original.get("irqbalance_enabled") == "enabled" and facts.irqbalance_enabled != "enabled":
            steps.append(PrepStep("enable irqbalance again", "systemctl enable irqbalance"))
        if original.get("irqbalance_active") == "active" and facts.irqbalance_active != "active":
            steps.append(PrepStep("start irqbalance again", "systemctl start irqbalance"))
    return steps


def unprepare_reboot_reason(original: dict[str, Any], facts: PrepFacts) -> str:
    was = parse_cpulist(original.get("isolated") or "")
    if facts.isolated == was:
        return ""
    return (f"the running kernel isolates {format_cpulist(facts.isolated) or 'no CPU'}, originally "
            f"{format_cpulist(was) or 'none'}")


def render_steps(host: str, steps: list[PrepStep], reboot: str) -> list[str]:
    """Lines for --dry-run and progress: each step with its literal command (shown as
    labctl.plan.dryrun.render_plan shows commands: no part of a value can pass for a command)."""
    lines = []
    for step in steps:
        lines.append(f"[{host}] {one_line(step.description)}")
        if step.write_path:
            lines.append(f"       (sftp) write {one_line(step.write_path)}, changing:")
            diff = difflib.unified_diff((step.old_content or "").splitlines(), step.content.splitlines(),
                                        "before", "after", n=0, lineterm="")
            lines += [f"         {one_line(line)}" for line in list(diff)[2:]]
        else:
            lines += shown_command("       $ ", step.command)
    if reboot:
        lines.append(f"[{host}] reboot: {one_line(reboot)}; then wait for SSH and verify")
    return lines
