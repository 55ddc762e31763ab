"""Host facts (pure): the read-only script that gathers them, and its parser.

Facts are read in one round trip per host before anything is planned: kernel, CPUs, isolated
CPUs, command line, the test NIC (driver, channels, queues, its IRQs found through its
device), the original RPS masks and IRQ affinities (what restore puts back), irqbalance.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from labctl.cpulist import format_cpulist, parse_cpulist, parse_mask
from labctl.host import probes
from labctl.host.sections import build_script, split_sections


@dataclass(frozen=True)
class NicFacts:
    interface: str
    exists: bool
    driver: str = ""
    bus_info: str = ""
    device: str = ""                      # basename of /sys/class/net/IF/device, e.g. virtio6
    channels_max: dict[str, int | None] = field(default_factory=dict)
    channels_current: dict[str, int | None] = field(default_factory=dict)
    rx_queues: int = 0                    # rx-N directories present now
    rps_cpus: dict[int, frozenset[int]] = field(default_factory=dict)   # queue -> original mask
    rx_irqs: dict[int, str] = field(default_factory=dict)               # queue -> IRQ number
    tx_irqs: dict[int, str] = field(default_factory=dict)

    @property
    def supports_combined(self) -> bool:
        return bool(self.channels_max.get("combined"))

    @property
    def has_irqs(self) -> bool:
        return bool(self.rx_irqs)


@dataclass(frozen=True)
class HostFacts:
    host: str
    hostname: str
    kernel: str
    cpus_online: frozenset[int]
    cpus_possible: int
    isolated: frozenset[int]
    cmdline: str
    pid1_cpus_allowed: frozenset[int]
    default_smp_affinity: frozenset[int]
    irq_affinity: dict[str, frozenset[int]]          # IRQ number -> smp_affinity_list
    irqbalance: str                                  # active | inactive | absent | unknown
    tuned_profile: str
    python3: str
    sysctls: dict[str, str]
    nic: NicFacts
    perf: str = ""                    # `perf --version`, "" where perf is missing
    shared_kernel: bool = False       # netns lab: /proc/irq, softirqs, stat are the host's
    systemd: bool = True              # services are managed with systemctl

    @property
    def housekeeping(self) -> frozenset[int]:
        return self.cpus_online - self.isolated

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("nic", "irq_affinity")}
        for key in ("cpus_online", "isolated", "pid1_cpus_allowed", "default_smp_affinity"):
            data[key] = format_cpulist(data[key])
        nic = dict(self.nic.__dict__)
        nic["rps_cpus"] = {f"rx-{q}": format_cpulist(c) for q, c in self.nic.rps_cpus.items()}
        nic["irq_affinity"] = {irq: format_cpulist(self.irq_affinity.get(irq, frozenset()))
                               for irq in list(self.nic.rx_irqs.values()) + list(self.nic.tx_irqs.values())}
        data["nic"] = nic
        return data


SYSCTLS = ("net.core.busy_read", "net.core.busy_poll", "net.core.rps_sock_flow_entries",
           "net.core.netdev_budget", "net.core.dev_weight")


def facts_script(interface: str) -> str:
    """The read-only script run once per host; sections are parsed by parse_facts."""
    iface = shlex.quote(interface)
    sysdir = shlex.quote(f"/sys/class/net/{interface}")
    return build_script({
        "hostname": "hostname",
        "kernel": "uname -r",
        "online": "cat /sys/devices/system/cpu/online",
        "possible": "cat /sys/devices/system/cpu/possible",
        "isolated": "cat /sys/devices/system/cpu/isolated",
        "cmdline": "cat /proc/cmdline",
        "pid1": "grep Cpus_allowed_list /proc/1/status",
        "default_affinity": "cat /proc/irq/default_smp_affinity",
        "irq_affinity": "grep -H . /proc/irq/*/smp_affinity_list",
        "irqbalance": "if ! command -v irqbalance >/dev/null; then echo absent; "
                      "elif [ -d /run/systemd/system ]; then systemctl is-active irqbalance; "
                      "elif pidof irqbalance >/dev/null; then echo active; else echo inactive; fi",
        "systemd": "test -d /run/systemd/system",
        "tuned": "tuned-adm active 2>/dev/null || echo 'No current active profile.'",
        "python3": "python3 -c 'import sys; print(sys.version.split()[0])'",
        "perf": "perf --version",
        "sysctls": "sysctl " + " ".join(SYSCTLS),
        "nic_exists": f"test -d {sysdir}",
        "ethtool_i": f"ethtool -i {iface}",
        "ethtool_l": f"ethtool -l {iface}",
        "device": f"readlink -e {sysdir}/device",
        "rps": f"for q in {sysdir}/queues/rx-*; do echo \"${{q##*/}} $(cat \"$q/rps_cpus\")\"; done",
        "interrupts": "cat /proc/interrupts",
    })


def parse_facts(host: str, text: str, interface: str, shared_kernel: bool) -> HostFacts:
    """Parse the output of facts_script (pure)."""
    s = {name: sec for name, sec in split_sections(text).items()}
    out = {name: sec.output.strip() if sec.status == 0 else "" for name, sec in s.items()}
    return HostFacts(
        host=host,
        hostname=out.get("hostname", ""),
        kernel=out.get("kernel", ""),
        cpus_online=parse_cpulist(out.get("online", "")),
        cpus_possible=len(parse_cpulist(out.get("possible", ""))),
        isolated=parse_cpulist(out.get("isolated", "")),
        cmdline=out.get("cmdline", ""),
        pid1_cpus_allowed=probes.parse_status_cpus_allowed(out.get("pid1", "")) if out.get("pid1") else frozenset(),
        default_smp_affinity=parse_mask(out["default_affinity"]) if out.get("default_affinity") else frozenset(),
        irq_affinity=_irq_affinities(out.get("irq_affinity", "")),
        irqbalance=_last_line(s["irqbalance"].output if "irqbalance" in s else "", "unknown"),
        systemd="systemd" in s and s["systemd"].status == 0,
        tuned_profile=_tuned(out.get("tuned", "")),
        python3=out.get("python3", ""),
        perf=out.get("perf", "") if out.get("perf", "").startswith("perf version") else "",
        sysctls=_sysctls(out.get("sysctls", "")),
        nic=_nic(interface, s, out),
        shared_kernel=shared_kernel,
    )


def _last_line(text: str, default: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1].strip() if lines else default


def _irq_affinities(text: str) -> dict[str, frozenset[int]]:
    result: dict[str, frozenset[int]] = {}
    for line in text.splitlines():
        path, _, value = line.partition(":")
        parts = path.split("/")
        if len(parts) >= 4 and parts[3].isdigit():
            result[parts[3]] = parse_cpulist(value)
    return result


def _tuned(text: str) -> str:
    prefix = "Current active profile:"
    for line in text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return ""


def _sysctls(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _nic(interface: str, sections: dict[str, Any], out: dict[str, str]) -> NicFacts:
    nic_section = sections.get("nic_exists")
    if nic_section is None or nic_section.status != 0:
        return NicFacts(interface=interface, exists=False)
    info = probes.parse_ethtool_info(out.get("ethtool_i", "")) if out.get("ethtool_i") else {}
    channels = probes.parse_ethtool_channels(out["ethtool_l"]) if out.get("ethtool_l") else None
    device = out.get("device", "").rsplit("/", 1)[-1]
    rps = {int(q.removeprefix("rx-")): parse_mask(mask)
           for q, _, mask in (line.partition(" ") for line in out.get("rps", "").splitlines())
           if q.startswith("rx-") and mask.strip()}
    table = probes.parse_interrupts(out.get("interrupts", "")) if out.get("interrupts") else None
    rx_irqs = {q: row.irq for q, row in probes.nic_queue_irqs(table, device).items()} if table and device else {}
    tx_irqs = {q: row.irq for q, row in probes.nic_tx_irqs(table, device).items()} if table and device else {}
    return NicFacts(
        interface=interface, exists=True, driver=info.get("driver", ""),
        bus_info=info.get("bus-info", ""), device=device,
        channels_max=dict(channels.maximum) if channels else {},
        channels_current=dict(channels.current) if channels else {},
        rx_queues=len(rps), rps_cpus=rps, rx_irqs=rx_irqs, tx_irqs=tx_irqs,
    )
