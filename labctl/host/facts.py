"""Host facts (pure): the read-only script that gathers them, and its parser.

Facts are read in one round trip per host before anything is planned: kernel, CPUs, isolated
CPUs, command line, the test NIC (driver, channels, queues, its IRQs found through its
device), the original RPS masks and IRQ affinities (what restore puts back), irqbalance.
"""

from __future__ import annotations

import functools
import importlib.resources as resources
import shlex
from dataclasses import dataclass, field
from typing import Any

from labctl.cpulist import format_cpulist
from labctl.host import nicirqs, probes
from labctl.host.probes import Probe
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
    irq_method: str = "none"              # how rx_irqs were found: driver-table | none
    vectors: dict[str, str] = field(default_factory=dict)               # device's IRQs -> names
    unmapped_vectors: dict[str, str] = field(default_factory=dict)      # IRQ -> why no queue
    irq_note: str = ""                    # why none were mapped, or an unknown driver's warning
    msi_listed: bool = False              # vectors came from the device's msi_irqs
    netlink: str = ""                     # what the netdev netlink family said (or why not)
    rss_table: list[int] | None = None    # `ethtool -x`: the indirection table, None: none
    rss_key: str | None = None            # its hash key (lower case), None where not shown
    rss_hfuncs: dict[str, bool] = field(default_factory=dict)   # hash functions shown, which on
    rss_note: str = ""                    # the driver's answer where it has no table
    flow_hash: dict[str, str] = field(default_factory=dict)   # tcp4.. -> rx-flow-hash letters, "!why"

    @property
    def irqs_unmapped(self) -> bool:
        """The device has vectors but none was recognised as an RX queue's."""
        return bool(self.vectors) and not self.rx_irqs

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


def parse_last_line(text: str) -> str:
    """The answer of a command that may print warnings first (systemctl is-active)."""
    return _last_line(text, "unknown")


def parse_tuned_active(text: str) -> str:
    """`tuned-adm active` -> the profile's name, "" when none is active."""
    return _tuned(text)


def parse_perf_version(text: str) -> str:
    """`perf --version`, or "" where the output is not perf's (missing, or a wrapper's error)."""
    return text if text.startswith("perf version") else ""


def parse_sysctls(text: str) -> dict[str, str]:
    """`sysctl NAME...` -> {name: value}."""
    return _sysctls(text)


def parse_device_link(text: str) -> str:
    """`readlink -e /sys/class/net/IF/device` -> its basename ("virtio6")."""
    return text.rsplit("/", 1)[-1]


HOSTNAME: Probe[str] = Probe("hostname", "hostname", probes.parse_text)
KERNEL: Probe[str] = Probe("kernel", "uname -r", probes.parse_text)
IRQBALANCE: Probe[str] = Probe(
    "irqbalance", "if ! command -v irqbalance >/dev/null; then echo absent; "
    "elif [ -d /run/systemd/system ]; then systemctl is-active irqbalance; "
    "elif pidof irqbalance >/dev/null; then echo active; else echo inactive; fi", parse_last_line)
SYSTEMD: Probe[str] = Probe("systemd", "test -d /run/systemd/system", probes.parse_text)  # exit status
TUNED: Probe[str] = Probe(
    "tuned", "tuned-adm active 2>/dev/null || echo 'No current active profile.'", parse_tuned_active)
PYTHON3: Probe[str] = Probe("python3", "python3 -c 'import sys; print(sys.version.split()[0])'",
                            probes.parse_text)
PERF: Probe[str] = Probe("perf", "perf --version", parse_perf_version)
CMDLINE_TEXT: Probe[str] = Probe("cmdline", probes.CMDLINE.command, probes.parse_text)  # kept as text
SYSCTL_VALUES: Probe[dict[str, str]] = Probe("sysctls", "sysctl " + " ".join(SYSCTLS), parse_sysctls)


def nic_exists(interface: str) -> Probe[str]:
    """Exits 0 when the interface exists (the answer is the exit status)."""
    return Probe(f"nic_exists@{interface}", f"test -d {shlex.quote(f'/sys/class/net/{interface}')}",
                 probes.parse_text)


def parse_driver_link(text: str) -> str:
    """`readlink -e /sys/class/net/IF/device/driver` -> the driver's name ("ixgbe")."""
    return text.rsplit("/", 1)[-1]


def nic_driver_link(interface: str) -> Probe[str]:
    """The driver bound to the interface's device (where `ethtool -i` is missing or fails)."""
    path = shlex.quote(f"/sys/class/net/{interface}/device/driver")
    return Probe(f"nic_driver@{interface}", f"readlink -e {path}", parse_driver_link)


def nic_msi_irqs(interface: str) -> Probe[list[str]]:
    """The device's own MSI/MSI-X IRQ numbers (msi_irqs/; a virtio device's are on its PCI
    parent). Prints nothing where the device has none (veth, INTx) or there is no device."""
    device = shlex.quote(f"/sys/class/net/{interface}/device")
    command = (f"d=$(readlink -e {device}) || exit 0; case \"${{d##*/}}\" in virtio*) d=\"$d/..\";; esac; "
               "if [ -d \"$d/msi_irqs\" ]; then ls -1 \"$d/msi_irqs\"; fi")
    return Probe(f"nic_msi_irqs@{interface}", command, nicirqs.parse_msi_irqs)


@functools.lru_cache(maxsize=1)
def _netdevnl_source() -> str:
    return resources.files("labctl.agent").joinpath("netdevnl.py").read_text()


def nic_netdev_queues(interface: str) -> Probe[nicirqs.NetdevQueues]:
    """Queue -> NAPI -> IRQ from the netdev netlink family (labctl/agent/netdevnl.py, sent
    inline; read-only). Kernels before 6.8 answer `unsupported: ...`."""
    command = f"python3 -c {shlex.quote(_netdevnl_source())} {shlex.quote(interface)}"
    return Probe(f"netdev_queues@{interface}", command, nicirqs.parse_netdev_queues)


def nic_device(interface: str) -> Probe[str]:
    """The device behind the interface ("virtio6"): its IRQs are named after it."""
    sysdir = shlex.quote(f"/sys/class/net/{interface}")
    return Probe(f"nic_device@{interface}", f"readlink -e {sysdir}/device", parse_device_link)


def parse_sysctl_all(text: str) -> dict[str, str]:
    """`sysctl -a` -> {name: value} (split at " = ": a value may hold "=")."""
    pairs = (line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    return {k.strip(): v.strip() for k, v in pairs}


ALL_SYSCTLS: Probe[dict[str, str]] = Probe("sysctl_all", "sysctl -a 2>/dev/null", parse_sysctl_all)
TUNED_ACTIVE: Probe[str] = Probe("tuned_active", "tuned-adm active", parse_tuned_active)


def command_path(name: str) -> Probe[str]:
    """Where the command is (`command -v`); exits non-zero where it is missing."""
    return Probe(f"command_path@{name}", f"command -v {shlex.quote(name)}", probes.parse_text)


def service_enabled(unit: str) -> Probe[str]:
    """`systemctl is-enabled UNIT`: enabled | disabled | masked | ... (exits non-zero but for enabled)."""
    return Probe(f"service_enabled@{unit}", f"systemctl is-enabled {shlex.quote(unit)}", parse_last_line)


def service_active(unit: str) -> Probe[str]:
    """`systemctl is-active UNIT`: active | inactive | failed | ... (exits non-zero but for active)."""
    return Probe(f"service_active@{unit}", f"systemctl is-active {shlex.quote(unit)}", parse_last_line)


def existing_files(paths: list[str]) -> Probe[list[str]]:
    """Those of `paths` that exist, one a line."""
    quoted = " ".join(shlex.quote(path) for path in paths)
    return Probe(f"existing_files@{len(paths)}",
                 f"for f in {quoted}; do if test -e \"$f\"; then echo \"$f\"; fi; done",
                 str.splitlines)


def fact_probes(interface: str) -> dict[str, Probe[Any]]:
    """Section name -> probe of the facts script (read-only; the interface is quoted, not
    checked: an interface that does not exist is a fact too)."""
    return {
        "hostname": HOSTNAME,
        "kernel": KERNEL,
        "online": probes.CPUS_ONLINE,
        "possible": probes.CPUS_POSSIBLE,
        "isolated": probes.CPUS_ISOLATED,
        "cmdline": CMDLINE_TEXT,
        "pid1": probes.cpus_allowed(1),
        "default_affinity": probes.DEFAULT_SMP_AFFINITY,
        "irq_affinity": probes.SMP_AFFINITY_LISTS,
        "irqbalance": IRQBALANCE,
        "systemd": SYSTEMD,
        "tuned": TUNED,
        "python3": PYTHON3,
        "perf": PERF,
        "sysctls": SYSCTL_VALUES,
        "nic_exists": nic_exists(interface),
        "ethtool_i": probes.ethtool_info(interface, check=False),
        "ethtool_l": probes.ethtool_channels(interface, check=False),
        "ethtool_x": probes.ethtool_rss(interface, check=False),
        "flow_hash": probes.flow_hashes(interface),
        "device": nic_device(interface),
        "driver_link": nic_driver_link(interface),
        "msi_irqs": nic_msi_irqs(interface),
        "netdev_nl": nic_netdev_queues(interface),
        "rps": probes.rps_masks(interface),
        "interrupts": probes.INTERRUPTS,
    }


def facts_script(interface: str) -> str:
    """The read-only script run once per host; sections are parsed by parse_facts."""
    return build_script({name: probe.command for name, probe in fact_probes(interface).items()})


class _Sections:
    """The facts script's output, each section read by its probe."""

    def __init__(self, text: str, interface: str):
        self.sections = split_sections(text)
        self.probes = fact_probes(interface)

    def ok(self, name: str) -> bool:
        section = self.sections.get(name)
        return section is not None and section.status == 0

    def value(self, name: str, default: object) -> Any:
        """The section's parsed output; `default` when it failed or printed nothing."""
        section = self.sections.get(name)
        text = section.output.strip() if section is not None and section.status == 0 else ""
        return self.probes[name].parse(text) if text else default

    def output(self, name: str) -> str:
        """The section's output whatever its exit status (systemctl is-active exits 3)."""
        section = self.sections.get(name)
        return section.output if section is not None else ""


def parse_facts(host: str, text: str, interface: str, shared_kernel: bool) -> HostFacts:
    """Parse the output of facts_script (pure)."""
    s = _Sections(text, interface)
    return HostFacts(
        host=host,
        hostname=s.value("hostname", ""),
        kernel=s.value("kernel", ""),
        cpus_online=s.value("online", frozenset()),
        cpus_possible=len(s.value("possible", frozenset())),
        isolated=s.value("isolated", frozenset()),
        cmdline=s.value("cmdline", ""),
        pid1_cpus_allowed=s.value("pid1", frozenset()),
        default_smp_affinity=s.value("default_affinity", frozenset()),
        irq_affinity=s.value("irq_affinity", {}),
        irqbalance=s.probes["irqbalance"].parse(s.output("irqbalance")),
        systemd=s.ok("systemd"),
        tuned_profile=s.value("tuned", ""),
        python3=s.value("python3", ""),
        perf=s.value("perf", ""),
        sysctls=s.value("sysctls", {}),
        nic=_nic(interface, s),
        shared_kernel=shared_kernel,
    )


def _last_line(text: str, default: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1].strip() if lines else default


def _tuned(text: str) -> str:
    prefix = "Current active profile:"
    for line in text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return ""


def _sysctls(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _nic(interface: str, s: _Sections) -> NicFacts:
    if not s.ok("nic_exists"):
        return NicFacts(interface=interface, exists=False)
    info = s.value("ethtool_i", {})
    channels: probes.Channels | None = s.value("ethtool_l", None)
    device: str = s.value("device", "")
    rps: dict[int, frozenset[int]] = s.value("rps", {})
    table: probes.InterruptTable | None = s.value("interrupts", None)
    driver = info.get("driver", "") or s.value("driver_link", "")
    identity = nicirqs.NicIdentity(interface, driver, device, info.get("bus-info", ""))
    msi: list[str] = s.value("msi_irqs", [])
    netlink: nicirqs.NetdevQueues | None = s.value("netdev_nl", None)
    mapping = (nicirqs.map_queue_irqs(identity, table, msi, netlink) if table and device
               else nicirqs.QueueIrqMap(nicirqs.METHOD_NONE))
    rss_text = s.output("ethtool_x")
    rss = probes.parse_ethtool_rss(rss_text)
    return NicFacts(
        interface=interface, exists=True, driver=driver,
        bus_info=info.get("bus-info", ""), device=device,
        channels_max=dict(channels.maximum) if channels else {},
        channels_current=dict(channels.current) if channels else {},
        rx_queues=len(rps), rps_cpus=rps, rx_irqs=mapping.rx, tx_irqs=mapping.tx,
        irq_method=mapping.method, vectors=mapping.vectors,
        unmapped_vectors={v.irq: v.why for v in mapping.unmapped}, irq_note=mapping.note,
        msi_listed=bool(msi),
        netlink=netlink.describe() if netlink else "not read (no python3 on the host, or older facts)",
        rss_table=rss.indirection, rss_key=rss.key.lower() if rss.key else None,
        rss_hfuncs=rss.hash_functions,
        rss_note="" if rss.indirection else probes.rss_refusal(rss_text),
        flow_hash=s.value("flow_hash", {}),
    )
