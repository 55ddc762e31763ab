"""The model (pure): inventory and scenario as frozen pydantic models.

The same classes validate the YAML files and generate `labctl schema`. Unknown keys are
forbidden everywhere; CPU sets accept the kernel's list syntax ("0-3,6"), a single number or
a YAML list of numbers. Every string that reaches a command line, a file name or a remote
path (names, interfaces, addresses, paths, URIs) is held to a pattern without shell
metacharacters, whitespace or control characters, even where it is quoted later.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from labctl.cpulist import CpuListError, format_cpulist, parse_cpulist

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,11}$"
QUEUE_PATTERN = re.compile(r"^rx-(\d+)$")
SCENARIO_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
TOKEN_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"      # netns, tuned profile, CPU model
INTERFACE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$"  # the kernel's: < 16 bytes, no / : or space
USER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$"
URI_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9_.~:@/?&=%+,-]{0,1024}$"
SAFE_PATH = re.compile(r"[A-Za-z0-9_./+@,=][A-Za-z0-9_./+@,=-]{0,4095}")
HOSTNAME_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
MAX_CPU = 8191          # Linux's NR_CPUS is at most 8192 on every 64-bit architecture


def _to_cpuset(value: Any) -> frozenset[int]:
    if isinstance(value, bool):
        raise ValueError("a CPU set, not a boolean")
    if isinstance(value, int):
        cpus = frozenset({value})
    elif isinstance(value, str):
        try:
            cpus = parse_cpulist(value, max_cpu=MAX_CPU)
        except CpuListError as exc:
            raise ValueError(str(exc)) from None
    elif isinstance(value, (list, tuple, set, frozenset)):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError("a list of CPU numbers must hold integers only")
        cpus = frozenset(value)
    else:
        raise ValueError('a CPU set: "0-3,6", a CPU number, or a list of CPU numbers')
    if any(c < 0 for c in cpus):
        raise ValueError("CPU numbers are >= 0")
    if any(c > MAX_CPU for c in cpus):
        raise ValueError(f"CPU numbers are at most {MAX_CPU}")
    if not cpus:
        raise ValueError("an empty CPU set")
    return cpus


CpuSet = Annotated[
    frozenset[int],
    BeforeValidator(_to_cpuset),
    PlainSerializer(lambda cpus: format_cpulist(cpus), return_type=str),
    WithJsonSchema({
        "description": 'CPU set: kernel list syntax "0-3,6", a CPU number, or a list of numbers',
        "anyOf": [
            {"type": "string", "pattern": r"^\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*$"},
            {"type": "integer", "minimum": 0},
            {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
        ],
    }),
]



def _to_rps_cpuset(value: Any) -> frozenset[int]:
    if isinstance(value, str) and value.strip().lower() in ("none", "off"):
        return frozenset()
    return _to_cpuset(value)


RpsCpuSet = Annotated[
    frozenset[int],
    BeforeValidator(_to_rps_cpuset),
    PlainSerializer(lambda cpus: format_cpulist(cpus) or "none", return_type=str),
    WithJsonSchema({
        "description": 'RPS CPUs: like a CPU set, or "none" to turn RPS off',
        "anyOf": [
            {"type": "string", "pattern": r"^\s*(none|off|\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*)\s*$"},
            {"type": "integer", "minimum": 0},
            {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
        ],
    }),
]

QueueName = Annotated[str, Field(pattern=r"^rx-(0|[1-9][0-9]{0,3})$",
                                 description="an RX queue: rx-0, rx-1, ...")]
QueueKey = Annotated[str, Field(pattern=r"^(rx-(0|[1-9][0-9]{0,3})|all)$",
                                description="an RX queue (rx-0, rx-1, ...) or 'all'")]
HostName = Annotated[str, Field(pattern=NAME_PATTERN, description="a host of the inventory")]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def queue_index(name: str) -> int:
    """'rx-3' -> 3."""
    match = QUEUE_PATTERN.match(name)
    if not match:
        raise ValueError(f"not an RX queue name: {name!r}")
    return int(match.group(1))


def _safe_path(value: str) -> str:
    if not SAFE_PATH.fullmatch(value):
        raise ValueError("not a safe path (letters, digits and _ . / + @ , = - only, not "
                         "starting with -)")
    return value


SafePath = Annotated[str, AfterValidator(_safe_path), WithJsonSchema(
    {"type": "string", "pattern": "^" + SAFE_PATH.pattern + "$"})]


def _host_address(value: str) -> str:
    """An IP address (no IPv6 zone) or a DNS host name (its last label not all digits)."""
    try:
        ipaddress.ip_address(value)
        valid = "%" not in value
    except ValueError:
        labels = value.removesuffix(".").split(".")
        valid = (len(value) <= 253 and all(HOSTNAME_LABEL.fullmatch(label) for label in labels)
                 and not labels[-1].isdigit())
    if not valid:
        raise ValueError("not an IP address or host name")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


# --------------------------------------------------------------------------- inventory

JUMP_SPEC = re.compile(r"^(?:(?P<user>[^@]*)@)?(?:\[(?P<v6>[^\]]*)\]|(?P<name>[^:@\[\]]*))"
                       r"(?::(?P<port>[0-9]{1,5}))?$")


def _jump_spec(value: Any) -> Any:
    """`[user@]host[:port]` (IPv6 in brackets, as ProxyJump writes it) as the mapping form."""
    if not isinstance(value, str):
        return value
    found = JUMP_SPEC.match(value)
    if found is None:
        raise ValueError(f"not [user@]host[:port]: {value!r} (e.g. admin@bastion.example:22)")
    spec: dict[str, Any] = {"address": found["v6"] if found["v6"] is not None else found["name"]}
    if found["user"] is not None:
        spec["user"] = found["user"]
    if found["port"] is not None:
        spec["port"] = int(found["port"])
    return spec


class SshJump(Strict):
    """A host the SSH connection goes through (as OpenSSH's ProxyJump); it opens the TCP
    connection to the lab host, which needs no route from here."""

    address: Annotated[str, AfterValidator(_host_address)] = Field(
        description="IP address or DNS name of the jump host's SSH server")
    port: int = Field(22, ge=1, le=65535)
    user: str | None = Field(None, pattern=USER_PATTERN,
                             description="login on the jump host; default: the host's `user`")
    key: SafePath | None = Field(None, description="private key for the jump host; default: the host's")
    known_hosts: SafePath | None = Field(None, description=(
        "known_hosts file pinning the jump host's key; default: the host's"))
    netns: str | None = Field(None, pattern=TOKEN_PATTERN,
                              description="open the TCP connection to the jump host inside this netns")


class SshAccess(Strict):
    """How to reach an existing host (provider `ssh`)."""

    address: Annotated[str, AfterValidator(_host_address)] = Field(
        description="IP address or DNS name of the host's SSH server")
    port: int = Field(22, ge=1, le=65535)
    user: str = Field("root", pattern=USER_PATTERN)
    become: Literal["sudo"] | None = Field(None, description=(
        "sudo: `user` is not root and becomes root with `sudo -n` (sudoers: "
        "`USER ALL=(root) NOPASSWD: ALL`; labctl never answers a password prompt)"))
    key: SafePath = Field(description="path to the private key (relative to the inventory file)")
    known_hosts: SafePath = Field(description="known_hosts file that pins the host's key")
    netns: str | None = Field(None, pattern=TOKEN_PATTERN,
                              description="open the TCP connection inside this netns")
    jump: Annotated[SshJump | None, BeforeValidator(
        _jump_spec, json_schema_input_type=SshJump | Annotated[str, Field(
            pattern=r"^([^@]*@)?(\[[^\]]*\]|[^:@\[\]]*)(:[0-9]{1,5})?$")] | None)] = Field(None, description=(
        "connect through this host (as ProxyJump): `[user@]host[:port]` or a mapping; the "
        "connection to it opens in its own `netns`, so not with the host's `netns`"))

    @model_validator(mode="after")
    def _root_somehow(self) -> SshAccess:
        if self.user != "root" and self.become is None:
            raise ValueError(f"user {self.user} is not root and labctl needs root on the host: "
                             "add `become: sudo` (with NOPASSWD for that user), or log in as root")
        if self.jump is not None and self.netns is not None:
            raise ValueError("netns and jump together: the connection starts at the jump host; "
                             "give the jump its own `netns` instead")
        return self


NicModelName = Literal["virtio", "igb", "e1000e", "vmxnet3"]
MGMT_NIC_MODEL = "virtio"       # the guests' management NIC; another test NIC model means two drivers


class VmSpec(Strict):
    """A guest of the libvirt lab."""

    vcpus: int = Field(8, ge=1, le=256)
    memory_mib: int = Field(768, ge=256, le=1_048_576)
    nic: NicModelName = Field("virtio", description=(
        "model of the test NIC, each driven by the guest's own driver: virtio (virtio_net, "
        "`libvirt.queues` queues); igb (an Intel 82576, QEMU >= 8: per-queue MSI-X vectors, RSS "
        "with an indirection table, the driver picks its queue count, `ethtool -L` changes it); "
        "e1000e (an Intel 82574L: one RX and one TX queue, an MSI-X vector each plus one for the "
        "link, no RSS table, no `ethtool -L`); vmxnet3 (VMware's paravirtual NIC: min(8, vCPUs) "
        "combined queues, one MSI-X vector per queue pair plus one for events; the driver shows "
        "an RSS table but QEMU delivers every packet to RX queue 0). Any but virtio needs an "
        "`interface` name outside eth<N>"))


def _no_tuned_exec(value: str) -> str:
    """tuned expands ${f:exec:PROGRAM:...} in its variables file by running PROGRAM when the
    profile is applied: a command that no plan would print."""
    if re.search(r"\$\{\s*f\s*:\s*exec\b", value):
        raise ValueError("${f:exec:...} would run a program on the host when tuned applies the "
                         "profile; not allowed")
    return value


class TunedPrep(Strict):
    """A tuned profile to activate, with the variables its `<profile>-variables.conf` reads."""

    profile: str = Field("realtime", pattern=TOKEN_PATTERN)
    isolated_cores: CpuSet | None = Field(None, description=(
        "CPUs to isolate (isolcpus on the kernel command line: takes a reboot, which labctl does "
        "only when the running kernel does not isolate exactly these CPUs yet)"))
    netdev_queue_count: int | None = Field(None, ge=1, le=1024, description=(
        "combined channels the profile sets on every NIC; default: the test NIC's maximum "
        "(without it the realtime profile picks the number of housekeeping CPUs)"))
    variables: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")],
                    Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$", max_length=1024),
                              AfterValidator(_no_tuned_exec)]] = Field(
        default_factory=dict, description="further variables for <profile>-variables.conf")


class HostPrepare(Strict):
    """Host preparation that lasts beyond a run (idempotent; `labctl unprepare` undoes it)."""

    irqbalance: Literal["disable", "leave"] = Field(
        "leave", description="disable: stop irqbalance and keep it off across reboots")
    tuned: TunedPrep | None = None
    reboot_timeout: float = Field(900, gt=0, le=7200, description="seconds for the host to come back")


class HostSpec(Strict):
    role: Literal["dut", "loadgen"]
    interface: str = Field("eth1", pattern=INTERFACE_PATTERN,
                           description="the test (data) interface")
    data_address: str = Field(description="address/prefix on the test interface, e.g. 198.18.0.1/24")
    ssh: SshAccess | None = None
    vm: VmSpec = VmSpec()
    prepare: HostPrepare | None = Field(None, description=(
        "irqbalance and tuned state the host must be in before any run (done by `labctl run` "
        "and `labctl prepare`)"))

    @model_validator(mode="after")
    def _renamable_interface(self) -> HostSpec:
        """Guests name their NICs by MAC address; with two NIC drivers the kernel's eth0/eth1
        go to whichever driver loads first, so a rename into those names can collide."""
        if self.vm.nic != MGMT_NIC_MODEL and re.fullmatch(r"eth\d+", self.interface):
            raise ValueError(
                f"interface {self.interface!r} with vm.nic {self.vm.nic}: the kernel names a "
                "guest's NICs eth0, eth1... in the order their drivers load, so the test NIC "
                "of another model than the management NIC's (virtio) needs a name outside eth<N>, "
                "e.g. data0")
        return self

    @field_validator("data_address")
    @classmethod
    def _interface_address(cls, value: str) -> str:
        try:
            iface = ipaddress.ip_interface(value)
        except ValueError:
            raise ValueError(f"not an address/prefix: {value!r} (e.g. 198.18.0.1/24)") from None
        if "/" not in value:
            raise ValueError(f"give a prefix length too: {value}/24")
        if "%" in value:
            raise ValueError("no IPv6 zone (%...) in a data address")
        return str(iface)


class NetnsOptions(Strict):
    queues: int = Field(4, ge=1, le=64, description="RX and TX queues of each veth end")


class LibvirtOptions(Strict):
    uri: str = Field("qemu:///system", pattern=URI_PATTERN,
                     description="libvirt URI (qemu+ssh://host/system works)")
    netns: str | None = Field(None, pattern=TOKEN_PATTERN, description=(
        "network namespace the guests' networks live in (libvirtd started inside it); "
        "SSH to the guests is opened from inside it"))
    accel: Literal["auto", "kvm", "tcg"] = Field("auto", description="auto: KVM only where the CPU has vmx/svm")
    cpu_model: str = Field("qemu64", pattern=TOKEN_PATTERN, description="CPU model under TCG")
    queues: int = Field(4, ge=1, le=64, description="queues of each guest's virtio test NIC")
    backend: Literal["auto", "vhost", "qemu"] = Field(
        "auto", description="virtio-net backend; auto: vhost where /dev/vhost-net exists, else qemu")
    management_subnet: str = Field("198.19.0.0/24", description="SSH network (DHCP, fixed per guest)")
    image: SafePath | None = Field(None, description="base qcow2; default: the `labctl image build` image")
    boot_timeout: float = Field(900, gt=0, le=7200, description="seconds for guests to get ready")

    @field_validator("management_subnet")
    @classmethod
    def _subnet(cls, value: str) -> str:
        try:
            net = ipaddress.ip_network(value)
        except ValueError:
            raise ValueError(f"not a network: {value!r} (e.g. 198.19.0.0/24)") from None
        if net.version != 4 or net.prefixlen > 24:
            raise ValueError("an IPv4 network of at least /24")
        return str(net)


class Inventory(Strict):
    """A lab: where its hosts are and how to reach them."""

    lab: str = Field(pattern=NAME_PATTERN, description="lab name; prefixes what `up` creates")
    provider: Literal["netns", "libvirt", "ssh"]
    netns: NetnsOptions = NetnsOptions()
    libvirt: LibvirtOptions = LibvirtOptions()
    hosts: dict[Annotated[str, Field(pattern=NAME_PATTERN)], HostSpec]

    @field_validator("hosts")
    @classmethod
    def _roles_and_access(cls, hosts: dict[str, HostSpec], info: ValidationInfo) -> dict[str, HostSpec]:
        roles = [h.role for h in hosts.values()]
        if roles.count("dut") != 1 or roles.count("loadgen") != 1:
            raise ValueError("a lab has exactly one host with role dut and one with role "
                             f"loadgen (got {sorted(roles)})")
        missing = [n for n, h in hosts.items() if h.ssh is None]
        if info.data.get("provider") == "ssh" and missing:
            raise ValueError(f"provider ssh: hosts {missing} need an `ssh:` section")
        return hosts

    def host_with_role(self, role: str) -> str:
        return next(name for name, h in self.hosts.items() if h.role == role)

    @property
    def hosts_share_kernel(self) -> bool:
        """All lab hosts are namespaces of one kernel (netns): IRQs, softirqs and CPU times are
        host-wide, and nothing can be prepared per host. The one place that knows which
        provider does this; everything downstream reads it, or the facts' ``shared_kernel``."""
        return self.provider == "netns"


# --------------------------------------------------------------------------- scenario

class Channels(Strict):
    """`ethtool -L`: either combined, or rx and tx, as the device supports."""

    combined: int | None = Field(None, ge=1, le=1024)
    rx: int | None = Field(None, ge=1, le=1024)
    tx: int | None = Field(None, ge=1, le=1024)

    @model_validator(mode="after")
    def _one_kind(self) -> Channels:
        if self.combined is None and self.rx is None and self.tx is None:
            raise ValueError("give combined, or rx and/or tx")
        if self.combined is not None and (self.rx is not None or self.tx is not None):
            raise ValueError("combined and rx/tx are exclusive")
        return self

    @property
    def rx_queues(self) -> int | None:
        return self.combined if self.combined is not None else self.rx


HKEY_PATTERN = r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){3,255}$"


class Rss(Strict):
    """The RSS indirection table, hash key and hash function (`ethtool -X`, its semantics):
    `equal: N` spreads flows evenly over N queues, `weight: [W0, W1, ...]` by weight, both
    from queue `start`. Read back with `ethtool -x`; restored to the original table (the
    driver's own with `ethtool -X default`, a table a user set exactly, else refused)."""

    equal: int | None = Field(None, ge=1, le=4096, description="spread evenly over this many RX queues")
    weight: list[Annotated[int, Field(ge=0, le=65535)]] | None = Field(
        None, min_length=1, max_length=4096, description="RX queue weights (queue start, start+1, ...)")
    start: int = Field(0, ge=0, le=4095, description="first RX queue of equal or weight")
    hkey: str | None = Field(None, pattern=HKEY_PATTERN, description=(
        "hash key, xx:yy:... of the length the driver shows (`ethtool -x`)"))
    hfunc: str | None = Field(None, pattern=r"^[a-z][a-z0-9_-]{0,31}$", description=(
        "hash function, one the driver lists (toeplitz, xor, crc32)"))
    flow_hash: dict[Literal["tcp4", "udp4", "tcp6", "udp6"],
                    Annotated[str, Field(pattern=r"^[mvtsdfn]{1,7}$")]] = Field(
        default_factory=dict, description=(
            "flow type -> header fields hashed (`ethtool -N IF rx-flow-hash udp4 sdfn`: m L2 "
            "destination, v VLAN, t L3 protocol, s/d IP source/destination, f/n L4 source/"
            "destination port)"))

    @model_validator(mode="after")
    def _one_spread(self) -> Rss:
        if self.equal is not None and self.weight is not None:
            raise ValueError("equal and weight are exclusive")
        if self.weight is not None and not any(self.weight):
            raise ValueError("at least one weight must be non-zero")
        if self.start and self.equal is None and self.weight is None:
            raise ValueError("start applies to equal or weight: give one of them")
        if not (self.spreads or self.hkey or self.hfunc or self.flow_hash):
            raise ValueError("give equal or weight (and start), hkey, hfunc and/or flow_hash")
        return self

    @property
    def sets_rxfh(self) -> bool:
        """It takes an `ethtool -X` (table, key or function), not only flow hashing."""
        return self.spreads or self.hkey is not None or self.hfunc is not None

    @property
    def spreads(self) -> bool:
        """It sets the indirection table (not only the key or function)."""
        return self.equal is not None or self.weight is not None

    @property
    def queues_used(self) -> int:
        """One past the highest RX queue the table will name (0: the table is not set)."""
        count = self.equal if self.equal is not None else len(self.weight or [])
        return self.start + count if self.spreads else 0


class HostTuning(Strict):
    irqbalance: Literal["stop", "start", "leave"] = "leave"
    channels: Channels | None = None
    rss: Rss | None = Field(None, description=(
        "RSS indirection table / hash key / hash function (`ethtool -X`), refused up front where "
        "the driver has no indirection table"))
    irq_affinity: dict[QueueName, CpuSet] = Field(
        default_factory=dict, description="RX queue -> CPUs for its IRQ (smp_affinity_list)")
    rps: dict[QueueKey, RpsCpuSet] = Field(
        default_factory=dict, description="RX queue (or all) -> RPS CPUs (rps_cpus), or none")
    allow_isolated_rps: bool = Field(
        False, description="attempt RPS masks the kernel will refuse (to record its answer)")


class ServerLoad(Strict):
    host: HostName = "dut"
    protocol: Literal["udp", "tcp"] = "udp"
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=256)
    cpus: CpuSet | None = None


class ClientLoad(Strict):
    host: HostName = "loadgen"
    rate: Annotated[int, Field(gt=0, le=10_000_000)] | Literal["max"] = Field(description=(
        "messages per second, all workers; max: as fast as the generator can (the blog's "
        "`-rate-per-second 1000000000`): the achieved rate is reported, not judged"))
    duration: float = Field(gt=0, le=3600, description="seconds of load")
    payload: int = Field(64, ge=1, le=65507, description="bytes per message")
    flows: int = Field(4, ge=1, le=4096)
    workers: int = Field(1, ge=1, le=256)
    new_socket_per_message: bool = False
    cpus: CpuSet | None = None


class Load(Strict):
    server: ServerLoad = ServerLoad()
    client: ClientLoad


ProbeName = Literal["interrupts", "softirqs", "softnet_stat", "stat", "ethtool_stats"]


class Snapshot(Strict):
    hosts: list[HostName] = Field(default_factory=lambda: ["dut"])
    probes: list[ProbeName] = Field(default_factory=lambda: list(typing.get_args(ProbeName)))
    interval: float | None = Field(1.0, ge=0.1, le=3600, description=(
        "seconds between the samples each of these hosts takes of the same probes during the "
        "load window (the per-second series; shorter than the window); null: no series. "
        "Unset, it is 1 s, and no series is taken of a window of 1 s or less"))


class _Bounded(Strict):
    """A share with at least one bound (min <= max)."""

    min: Fraction | None = None
    max: Fraction | None = None

    @model_validator(mode="after")
    def _bounds(self) -> _Bounded:
        if self.min is None and self.max is None:
            raise ValueError("give min and/or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class _CpuShare(_Bounded):
    """A share of a per-CPU counter on a CPU set, with at least one bound (min <= max)."""

    host: HostName = "dut"
    cpus: CpuSet


class SoftirqShare(_CpuShare):
    check: Literal["softirq_share"]
    softirq: str = Field("NET_RX", pattern=r"^[A-Z_]{1,32}$")


class SoftnetShare(_CpuShare):
    check: Literal["softnet_share"]
    column: Literal["processed", "dropped", "time_squeeze", "received_rps", "flow_limit"]


class IrqConfined(Strict):
    check: Literal["irq_confined"]
    host: HostName = "dut"
    queues: list[QueueName] | Literal["all"] = "all"
    cpus: CpuSet
    min_share: Fraction = Field(1.0, description="share of the queues' IRQs on those CPUs")


class QueueIrqs(_Bounded):
    """Share of the NIC's RX IRQs (all its queues) taken by these queues."""

    check: Literal["queue_irqs"]
    host: HostName = "dut"
    queues: list[QueueName] = Field(min_length=1)


class SoftirqFollowsIrqs(_Bounded):
    """Share of a softirq on the CPUs that took the NIC's RX IRQs in the window (plus
    `also_cpus`, e.g. RPS targets): 'NET_RX follows the IRQs'."""

    check: Literal["softirq_follows_irqs"]
    host: HostName = "dut"
    softirq: str = Field("NET_RX", pattern=r"^[A-Z_]{1,32}$")
    also_cpus: CpuSet | None = None


class Loss(Strict):
    check: Literal["loss"]
    max: Fraction


class Rate(Strict):
    """A check of the load generator, not of the DUT: when it fails while every DUT check
    passes, the run is inconclusive (generator-bound), unless `required` makes it a failure."""

    check: Literal["rate"]
    min_fraction: Fraction | None = Field(None, description="achieved / asked rate of the client")
    min: float | None = Field(None, gt=0, le=10_000_000, description=(
        "achieved messages per second, at least (also with rate: max: enough packets to judge)"))
    required: bool = Field(False, description=(
        "a shortfall fails the run (exit 3) instead of making it inconclusive (exit 5)"))

    @model_validator(mode="after")
    def _one_bound(self) -> Rate:
        if self.min_fraction is None and self.min is None:
            raise ValueError("give min_fraction (of the asked rate) or min (messages per second)")
        return self


class RpsMask(Strict):
    check: Literal["rps_mask"]
    host: HostName = "dut"
    queue: QueueKey
    equals: RpsCpuSet


class RxQueueShare(_Bounded):
    """Share of the NIC's received packets (the driver's per-queue `ethtool -S` counters,
    over the window) that these RX queues took: where RSS spread the flows."""

    check: Literal["rx_queue_share"]
    host: HostName = "dut"
    queues: list[QueueName] = Field(min_length=1)


Expectation = Annotated[
    SoftirqShare | SoftnetShare | IrqConfined | QueueIrqs | SoftirqFollowsIrqs | Loss | Rate | RpsMask
    | RxQueueShare,
    Field(discriminator="check"),
]
EXPECTATION_KINDS = ("softirq_share", "softnet_share", "irq_confined", "queue_irqs",
                     "softirq_follows_irqs", "loss", "rate", "rps_mask", "rx_queue_share")


class Profile(Strict):
    """`perf record -g` of chosen CPUs during the load window (all of them in the same window),
    folded and drawn as one flamegraph per CPU."""

    host: HostName = "dut"
    cpus: CpuSet | Literal["auto"] = Field("auto", description=(
        "CPUs to profile; auto: the CPUs of the NIC's RX IRQs, the RPS CPUs and the server's CPUs"))
    frequency: int = Field(99, ge=1, le=10_000, description="samples per second per CPU (perf -F)")


class Scenario(Strict):
    """One experiment: tuning per host, load, snapshots and expectations."""

    name: str | None = Field(None, pattern=SCENARIO_NAME_PATTERN, description=(
        "names the run (runs/<time>-<name>); default: the file's name"))
    description: str = ""
    keep_tuning: bool = False
    tuning: dict[HostName, HostTuning] = Field(default_factory=dict)
    load: Load | None = None
    settle: float = Field(0.0, ge=0, le=60, description="seconds to wait between tuning and the first snapshot")
    snapshot: Snapshot = Snapshot()
    profile: Profile | None = None
    expect: list[Expectation] = Field(default_factory=list)
