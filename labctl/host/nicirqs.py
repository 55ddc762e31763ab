"""NIC queue <-> IRQ discovery (pure, layer "host"): a device's vectors, named by its driver.

Start from what the kernel says is the device's: its MSI/MSI-X vectors (the IRQ numbers under
/sys/class/net/IF/device/msi_irqs; virtio's are on the PCI parent). Each vector's action name in
/proc/interrupts is then read with the driver's own naming (DRIVERS, each rule from the driver
source's format string). Where no MSI listing was read (older facts, a snapshot), the vectors are
the rows whose names the driver's rules match for this very interface or device.

Never a guess: a vector whose name the table cannot read, or a driver the table does not know,
ends up in `unmapped` with the reason, and the method is "none" when no RX queue could be named.
Where the kernel has it (6.8+) and the driver reports its NAPIs' IRQs, the netdev netlink
family's answer (queue-get -> napi-id, napi-get -> irq; `labctl/agent/netdevnl.py`, parsed by
`parse_netdev_queues`) is authoritative and used first ("netlink"); kernels without it (Debian
12's 6.1) or drivers that report no IRQ (virtio_net on 6.18) fall back to the driver table,
and the fact says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from labctl.host.probes import InterruptTable, IrqRow, ProbeOutputError

Role = Literal["rxtx", "rx", "tx", "ntfy", "other"]
Numbering = Literal["queue", "rank"]

METHOD_NETLINK = "netlink"
METHOD_TABLE = "driver-table"
METHOD_NONE = "none"


@dataclass(frozen=True)
class VectorRule:
    """One vector name a driver gives: a regular expression over the action name with
    {if} (interface), {dev} (the device link's basename) and {pci} (the PCI address) filled in,
    and its number group `n`. `numbering`: "queue" when n is the queue index, "rank" when the
    driver counts vectors of that role (0, 1, ... or 0, 2, ... on hns3, vector indices on
    vmxnet3): the queue is then the vector's position among that role's vectors."""

    pattern: str
    role: Role
    numbering: Numbering = "queue"
    why: str = ""                       # for role "other": what the vector serves


@dataclass(frozen=True)
class DriverNaming:
    driver: str
    rules: tuple[VectorRule, ...]
    source: str                         # the driver source that holds the format strings
    single_vector: bool = False         # MSI/INTx: one vector named IF serves the one queue
    name_limit: int = 0                 # older versions cut names to this many characters


def _q(prefix: str, *, rank: bool = False, roles: tuple[tuple[str, Role], ...] = (
        ("TxRx", "rxtx"), ("rx", "rx"), ("tx", "tx"))) -> tuple[VectorRule, ...]:
    numbering: Numbering = "rank" if rank else "queue"
    return tuple(VectorRule(rf"{prefix}-{word}-(?P<n>\d+)", role, numbering) for word, role in roles)


LINK = "link and other causes (no queue)"
SAME_NAME_HINT = ("; without the device's msi_irqs listing the rows are matched by name only, and another "
                  "device may use the same name (an interface of that name in another network namespace)")
DRIVERS: dict[str, DriverNaming] = {d.driver: d for d in (
    DriverNaming("virtio_net", (
        VectorRule(r"{dev}-input\.(?P<n>\d+)", "rx"),
        VectorRule(r"{dev}-output\.(?P<n>\d+)", "tx"),
        VectorRule(r"{dev}-config", "other", why="configuration changes (no queue)"),
        VectorRule(r"{dev}-control", "other", why="control virtqueue (no data queue)"),
        VectorRule(r"{dev}-virtqueues", "other",
                   why="one vector shared by every virtqueue (no per-queue MSI-X vectors)"),
    ), "drivers/virtio/virtio_pci_common.c (\"%s-%s\", \"%s-config\", \"%s-virtqueues\"); "
       "drivers/net/virtio_net.c (\"input.%u\", \"output.%u\")"),
    DriverNaming("igb", _q("{if}") + (
        VectorRule(r"{if}", "other", why=LINK),
        VectorRule(r"{if}-unused", "other", why="a q_vector without rings"),
    ), "drivers/net/ethernet/intel/igb/igb_main.c (\"%s-TxRx-%u\", \"%s-rx-%u\", \"%s-tx-%u\" "
       "with the ring's queue_index; the link vector is netdev->name)", single_vector=True),
    DriverNaming("ixgbe", _q("{if}", rank=True) + (VectorRule(r"{if}", "other", why=LINK),),
                 "drivers/net/ethernet/intel/ixgbe/ixgbe_main.c (\"%s-TxRx-%u\" ri++, \"%s-rx-%u\", "
                 "\"%s-tx-%u\" ti++; the other-causes vector is netdev->name)", single_vector=True),
    DriverNaming("i40e", _q("i40e-{if}", rank=True) + (
        VectorRule(r"i40e-{pci}:misc", "other", why="admin queue, link and other causes (no queue)"),
        VectorRule(r"i40e-{pci}:fdir-TxRx-\d+", "other", why="Flow Director sideband ring (no netdev queue)"),
    ), "drivers/net/ethernet/intel/i40e/i40e_main.c (basename \"%s-%s\" driver-netdev, "
       "\"%s-%s-%d\" TxRx/rx/tx; \"%s-%s:misc\")"),
    DriverNaming("ice", _q("ice-{if}", rank=True) + (
        VectorRule(r"ice-{pci}:misc", "other", why="OICR: admin queue, link and other causes (no queue)"),
        VectorRule(r"ice-{pci}:ctrl-TxRx-\d+", "other", why="Flow Director control VSI (no netdev queue)"),
    ), "drivers/net/ethernet/intel/ice/ice_lib.c / ice_main.c (basename \"%s-%s\" driver-netdev, "
       "\"%s-%s-%d\" TxRx/rx/tx; \"%s-%s:misc\"; the ctrl VSI's \"ice-PCI:ctrl-TxRx-0\")"),
    DriverNaming("iavf", _q("iavf-{if}", rank=True) + (
        VectorRule(r"iavf-{pci}:mbx", "other", why="mailbox to the PF (no queue)"),
    ), "drivers/net/ethernet/intel/iavf/iavf_main.c (\"iavf-%s-TxRx-%u\", \"iavf-%s:mbx\")"),
    DriverNaming("mlx5_core", (
        VectorRule(r"mlx5_comp(?P<n>\d+)@pci:{pci}", "rxtx"),
        VectorRule(r"mlx5_async\d*@pci:{pci}", "other", why="async events: commands, pages, port state (no queue)"),
        VectorRule(r"mlx5_async_eq@pci:{pci}", "other", why="async events (no queue)"),
        VectorRule(r"mlx5_(?:ctrl|pages|cmd)_eq@pci:{pci}", "other", why="control event queue (no queue)"),
    ), "drivers/net/ethernet/mellanox/mlx5/core/pci_irq.c (\"mlx5_comp%d\", \"mlx5_async%d\" "
       "+ \"@pci:%s\"; older kernels, e.g. RHEL 7's 3.10, eq.c: \"mlx5_cmd_eq\", \"mlx5_async_eq\", "
       "\"mlx5_pages_eq\"); channel i uses completion vector i"),
    DriverNaming("bnxt_en", _q("{if}", rank=True),
                 "drivers/net/ethernet/broadcom/bnxt/bnxt.c (\"%s-%s-%d\" with TxRx/rx/tx and the "
                 "completion ring index: tx vectors count on from the rx rings; before 6.12 the name "
                 "field was char[IFNAMSIZ + 2], so names were cut to 17 characters)", name_limit=17),
    DriverNaming("ena", (
        VectorRule(r"{if}-Tx-Rx-(?P<n>\d+)", "rxtx"),
        VectorRule(r"ena-mgmnt@pci:{pci}", "other", why="management/admin queue (no queue)"),
    ), "drivers/net/ethernet/amazon/ena/ena_netdev.c (\"%s-Tx-Rx-%d\", \"ena-mgmnt@pci:%s\")"),
    DriverNaming("gve", (
        VectorRule(r"gve-ntfy-blk(?P<n>\d+)@pci:{pci}", "ntfy"),
        VectorRule(r"gve-mgmnt@pci:{pci}", "other", why="management (no queue)"),
    ), "drivers/net/ethernet/google/gve/gve_main.c (\"gve-ntfy-blk%d@pci:%s\"; gve.h: "
       "TX queue q uses block q, RX queue q block num_ntfy_blks/2 + q)"),
    DriverNaming("sfc", (
        VectorRule(r"{if}-(?P<n>\d+)", "rxtx"),
        VectorRule(r"{if}-rx-(?P<n>\d+)", "rx"),
        VectorRule(r"{if}-tx-(?P<n>\d+)", "tx"),
        VectorRule(r"{if}-xdp-\d+", "other", why="XDP TX channel (no RX queue)"),
        VectorRule(r"{if}-ptp", "other", why="PTP channel (no RX queue of the netdev)"),
    ), "drivers/net/ethernet/sfc/efx_channels.c efx_get_channel_name (\"%s%s-%d\" with \"\", "
       "\"-rx\", \"-tx\", \"-xdp\")"),
    DriverNaming("hns3", _q("hns3-{pci}", rank=True, roles=(("TxRx", "rxtx"), ("Rx", "rx"), ("Tx", "tx"))) + (
        VectorRule(r"hclge(?:vf)?-misc-{pci}|hclge_misc", "other", why="misc: mailbox, reset, errors (no queue)"),
    ), "drivers/net/ethernet/hisilicon/hns3/hns3_enet.c (\"%s-%s-%s-%d\" driver-pci-TxRx-idx, "
       "idx counting 0, 2, 4, ...); hns3pf/hclge_main.c (\"%s-misc-%s\" hclge-PCI)"),
    DriverNaming("e1000e", (
        VectorRule(r"{if}-rx-(?P<n>\d+)", "rx"),
        VectorRule(r"{if}-tx-(?P<n>\d+)", "tx"),
        VectorRule(r"{if}", "other", why=LINK),
    ), "drivers/net/ethernet/intel/e1000e/netdev.c (\"%s-rx-0\", \"%s-tx-0\", netdev->name)",
        single_vector=True),
    DriverNaming("vmxnet3", _q("{if}", rank=True, roles=(("rxtx", "rxtx"), ("rx", "rx"), ("tx", "tx"))) + (
        VectorRule(r"{if}-event-\d+", "other", why="device events (no queue)"),
    ), "drivers/net/vmxnet3/vmxnet3_drv.c (\"%s-rxtx-%d\", \"%s-rx-%d\", \"%s-tx-%d\", "
       "\"%s-event-%d\", numbered by vector)", single_vector=True),
)}


@dataclass(frozen=True)
class NicIdentity:
    """What names a NIC's vectors: interface, driver, device link basename, PCI address."""

    interface: str
    driver: str
    device: str = ""
    bus_info: str = ""

    @property
    def pci(self) -> str:
        for candidate in (self.bus_info, self.device):
            if re.fullmatch(r"[0-9a-fA-F]{4,}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]", candidate):
                return candidate
        return ""


@dataclass(frozen=True)
class UnmappedVector:
    irq: str
    name: str
    why: str


@dataclass(frozen=True)
class QueueIrqMap:
    """A NIC's queues -> IRQ numbers, how they were found, and the device's other vectors."""

    method: str                                   # driver-table | none
    rx: dict[int, str] = field(default_factory=dict)
    tx: dict[int, str] = field(default_factory=dict)
    vectors: dict[str, str] = field(default_factory=dict)      # the device's IRQs -> names seen
    unmapped: tuple[UnmappedVector, ...] = ()
    note: str = ""                                # why "none", or an unknown driver's warning

    @property
    def unusable(self) -> bool:
        """Vectors exist but name no RX queue: IRQ tuning must be refused, not skipped."""
        return bool(self.vectors) and not self.rx


@dataclass(frozen=True)
class NetdevQueues:
    """The netdev netlink family's answer for one interface: queue -> IRQ (None where the
    driver reports no NAPI or no IRQ for it); `unsupported` says why there is no answer."""

    rx: dict[int, int | None] = field(default_factory=dict)
    tx: dict[int, int | None] = field(default_factory=dict)
    unsupported: str = ""

    @property
    def usable(self) -> bool:
        """Every RX queue it lists has an IRQ: then it, not the names, maps the queues."""
        return bool(self.rx) and all(irq is not None for irq in self.rx.values())

    def describe(self) -> str:
        if self.unsupported:
            return f"netdev netlink not available: {self.unsupported}"
        if not self.rx:
            return "netdev netlink listed no RX queue"
        missing = sorted(q for q, irq in self.rx.items() if irq is None)
        if missing:
            return (f"netdev netlink: the driver reports no IRQ for {len(missing)} of "
                    f"{len(self.rx)} RX queue(s) (its NAPIs carry none): not used")
        return "netdev netlink: queue -> NAPI -> IRQ for every RX queue"


def parse_netdev_queues(text: str) -> NetdevQueues:
    """Output of labctl/agent/netdevnl.py: `rx 0 37` lines, or `unsupported: why`."""
    rx: dict[int, int | None] = {}
    tx: dict[int, int | None] = {}
    for line in text.splitlines():
        words = line.split()
        if line.startswith("unsupported:"):
            return NetdevQueues(unsupported=line.partition(":")[2].strip())
        if len(words) != 3 or words[0] not in ("rx", "tx") or not words[1].isdigit() or \
                not (words[2].isdigit() or words[2] == "-"):
            raise ProbeOutputError(f"netdev netlink: unexpected line {line!r}")
        irq = int(words[2]) if words[2].isdigit() else None
        (rx if words[0] == "rx" else tx)[int(words[1])] = irq
    return NetdevQueues(rx, tx)


def parse_msi_irqs(text: str) -> list[str]:
    """`ls msi_irqs/` (one IRQ number a line, or a `ls -1`): the numbers, in numeric order."""
    numbers = {word for word in text.split() if word.isdigit()}
    bad = [word for word in text.split() if not word.isdigit()]
    if bad:
        raise ProbeOutputError(f"msi_irqs: not an IRQ number: {bad[0]!r}")
    return sorted(numbers, key=int)


def _compile(rule: VectorRule, nic: NicIdentity) -> re.Pattern[str] | None:
    needed = {"{if}": nic.interface, "{dev}": nic.device, "{pci}": nic.pci}
    pattern = rule.pattern
    for placeholder, value in needed.items():
        if placeholder in pattern:
            if not value:
                return None
            pattern = pattern.replace(placeholder, re.escape(value))
    return re.compile(pattern)


@dataclass(frozen=True)
class _Named:
    irq: str
    name: str
    rule: VectorRule | None
    number: int | None


def _classify(row_names: tuple[str, ...], irq: str, rules: list[tuple[VectorRule, re.Pattern[str]]]) -> _Named:
    for name in row_names:
        for rule, regex in rules:
            match = regex.fullmatch(name)
            if match:
                number = match.groupdict().get("n")
                return _Named(irq, name, rule, int(number) if number is not None else None)
    return _Named(irq, ", ".join(row_names), None, None)


def _rules(naming: DriverNaming, nic: NicIdentity) -> list[tuple[VectorRule, re.Pattern[str]]]:
    compiled = ((rule, _compile(rule, nic)) for rule in naming.rules)
    return [(rule, regex) for rule, regex in compiled if regex is not None] + _cut_name_rules(naming, nic)


def _cut_name_rules(naming: DriverNaming, nic: NicIdentity) -> list[tuple[VectorRule, re.Pattern[str]]]:
    """Names an older driver cut to `name_limit` characters before the ring number ("enp4s0f0np0-TxRx-"
    on bnxt_en before 6.12): known, listed with why, never numbered. A cut inside the number
    ("...-TxRx-1" for ring 12) reads as a valid name; two rings then share it and are refused."""
    cuts = {f"{nic.interface}-{word}-"[:naming.name_limit] for word in ("TxRx", "rx", "tx")
            if naming.name_limit and nic.interface and len(f"{nic.interface}-{word}-") >= naming.name_limit}
    why = (f"name cut to {naming.name_limit} characters by the driver (an older {naming.driver}): "
           "its ring number is lost")
    rules = [VectorRule(re.escape(cut), "other", why=why) for cut in sorted(cuts)]
    return [(rule, re.compile(rule.pattern)) for rule in rules]


def _device_rows(table: InterruptTable, msi_irqs: list[str] | None,
                 rules: list[tuple[VectorRule, re.Pattern[str]]]) -> list[tuple[str, tuple[str, ...]]]:
    """(IRQ, action names) of the device's vectors: the MSI listing's, or those the rules name."""
    if msi_irqs:
        rows = (table.by_irq(irq) for irq in msi_irqs)
        return [(irq, row.actions if row else ()) for irq, row in zip(msi_irqs, rows)]
    found = []
    for row in table.rows:
        if row.irq.isdigit() and any(regex.fullmatch(a) for a in row.actions for _, regex in rules):
            found.append((row.irq, row.actions))
    return found


def _place(queues: dict[int, str], queue: int, irq: str, nic: NicIdentity, role: str) -> None:
    if queue in queues and queues[queue] != irq:
        raise ProbeOutputError(f"/proc/interrupts: {nic.interface} {role} queue {queue} appears on "
                               f"IRQ {queues[queue]} and IRQ {irq}")
    queues[queue] = irq


def _refuse_repeated_names(vectors: list[_Named], nic: NicIdentity) -> None:
    """A ranked role's vectors carry distinct numbers; one number twice means two devices' vectors
    (the same interface name in two network namespaces: two VFs both named net1, say)."""
    for first, second in zip(vectors, vectors[1:]):
        if first.number == second.number:
            raise ProbeOutputError(f"/proc/interrupts: {nic.interface}: IRQ {first.irq} and IRQ {second.irq} "
                                   f"are both named {first.name!r}")


def _assign(named: list[_Named], nic: NicIdentity) -> tuple[dict[int, str], dict[int, str]]:
    rx: dict[int, str] = {}
    tx: dict[int, str] = {}
    by_rule: dict[VectorRule, list[_Named]] = {}
    for vector in named:
        if vector.rule is not None and vector.rule.role != "other" and vector.number is not None:
            by_rule.setdefault(vector.rule, []).append(vector)
    for rule, vectors in by_rule.items():
        vectors.sort(key=lambda v: v.number or 0)
        if rule.numbering == "rank":
            _refuse_repeated_names(vectors, nic)
        for rank, vector in enumerate(vectors):
            assert vector.number is not None
            queue = rank if rule.numbering == "rank" else vector.number
            if rule.role == "ntfy":
                half = len(vectors) // 2
                target, queue = (tx, queue) if queue < half else (rx, queue - half)
                _place(target, queue, vector.irq, nic, "ntfy")
                continue
            if rule.role in ("rxtx", "rx"):
                _place(rx, queue, vector.irq, nic, "RX")
            if rule.role in ("rxtx", "tx"):
                _place(tx, queue, vector.irq, nic, "TX")
    return dict(sorted(rx.items())), dict(sorted(tx.items()))


def _unmapped(named: list[_Named], naming: DriverNaming, used: set[str],
              refused: bool = False) -> tuple[UnmappedVector, ...]:
    result = []
    for vector in named:
        if vector.irq in used:
            continue
        if vector.rule is not None and vector.rule.role == "other":
            why = vector.rule.why
        elif vector.rule is not None and refused:
            why = "a queue vector left unmapped: its queue number is ambiguous (see the note)"
        elif vector.rule is not None:
            why = "a queue vector that no queue uses now"
        elif not vector.name:
            why = "no action name in /proc/interrupts (no handler requested on this vector)"
        else:
            why = f"name {vector.name!r} matches none of the {naming.driver} names labctl knows"
        result.append(UnmappedVector(vector.irq, vector.name, why))
    return tuple(result)


def _gve_check(named: list[_Named]) -> str:
    blocks = [v for v in named if v.rule is not None and v.rule.role == "ntfy"]
    if len(blocks) % 2:
        return f"gve has {len(blocks)} notify blocks (odd): the TX/RX split is unknown"
    return ""


def map_queue_irqs(nic: NicIdentity, table: InterruptTable | None,
                   msi_irqs: list[str] | None = None, netlink: NetdevQueues | None = None) -> QueueIrqMap:
    """Queue -> IRQ of one NIC: the netdev netlink answer where it is complete, else its
    vectors (`msi_irqs`, or the rows its driver's rules name for this interface/device) read
    with the driver table; the vectors that serve no queue come back with why."""
    if table is None:
        return QueueIrqMap(METHOD_NONE, note="no /proc/interrupts was read")
    if netlink is not None and netlink.usable:
        return _from_netlink(nic, table, msi_irqs, netlink)
    naming = DRIVERS.get(nic.driver)
    if naming is None:
        rows = _device_rows(table, msi_irqs, [])
        vectors = {irq: ", ".join(names) for irq, names in rows}
        why = f"driver {nic.driver or '(unknown)'!r} is not in labctl's driver table"
        note = (f"{nic.interface}: {why}; its {len(vectors)} vector(s) are counted per IRQ name, "
                "not per queue") if vectors else ""
        return QueueIrqMap(METHOD_NONE, vectors=vectors,
                           unmapped=tuple(UnmappedVector(i, n, why) for i, n in vectors.items()), note=note)
    rules = _rules(naming, nic)
    rows = _device_rows(table, msi_irqs, rules)
    named = [_classify(names, irq, rules) for irq, names in rows]
    note = _gve_check(named) if naming.driver == "gve" else ""
    rx: dict[int, str] = {}
    tx: dict[int, str] = {}
    refused = False
    if not note:
        try:
            rx, tx = _assign(named, nic)
        except ProbeOutputError as err:          # two vectors name one queue: say so, map none
            note, refused = str(err) + ("" if msi_irqs else SAME_NAME_HINT), True
    if not rx and naming.single_vector and len(named) == 1 and named[0].name == nic.interface:
        rx, tx = {0: named[0].irq}, {0: named[0].irq}      # MSI or INTx: one vector, one queue
    vectors = {v.irq: v.name for v in named}
    unmapped = _unmapped(named, naming, set(rx.values()) | set(tx.values()), refused)
    if vectors and not rx and not note:
        note = (f"{nic.interface} ({naming.driver}): none of its {len(vectors)} vector(s) names an "
                "RX queue")
    return QueueIrqMap(METHOD_TABLE if rx else METHOD_NONE, rx, tx, vectors, unmapped, note)


def _from_netlink(nic: NicIdentity, table: InterruptTable, msi_irqs: list[str] | None,
                  netlink: NetdevQueues) -> QueueIrqMap:
    rx = {q: str(irq) for q, irq in sorted(netlink.rx.items()) if irq is not None}
    tx = {q: str(irq) for q, irq in sorted(netlink.tx.items()) if irq is not None}
    naming = DRIVERS.get(nic.driver)
    rules = _rules(naming, nic) if naming else []
    rows = _device_rows(table, msi_irqs, rules) if (msi_irqs or rules) else []
    rows_by_irq = dict(rows)
    for irq in list(rx.values()) + list(tx.values()):
        if irq not in rows_by_irq:
            row = table.by_irq(irq)
            rows_by_irq[irq] = row.actions if row else ()
    named = [_classify(names, irq, rules) for irq, names in sorted(rows_by_irq.items(), key=lambda kv: int(kv[0]))]
    used = set(rx.values()) | set(tx.values())
    unmapped = tuple(UnmappedVector(v.irq, v.name, v.rule.why if v.rule and v.rule.role == "other"
                                    else "serves no queue according to netdev netlink")
                     for v in named if v.irq not in used)
    return QueueIrqMap(METHOD_NETLINK, rx, tx, {v.irq: v.name for v in named}, unmapped)


def queue_rows(mapping: QueueIrqMap, table: InterruptTable) -> dict[int, IrqRow]:
    """RX queue -> its /proc/interrupts row (queues whose IRQ the table lacks are left out)."""
    rows = ((queue, table.by_irq(irq)) for queue, irq in mapping.rx.items())
    return {queue: row for queue, row in rows if row is not None}
