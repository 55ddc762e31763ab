"""Probes (pure): each probe is a shell command plus a parser of what the command prints.

The parsers turn procfs, sysfs and ethtool text into frozen dataclasses and dicts, and are
tolerant of the odd rows real kernels print (offline CPUs missing from headers, global ERR/MIS
counters, shared IRQ lines, chips without hwirq numbers, old and new softnet_stat layouts).
Nothing here runs a command: the executor runs `Probe.command` and hands its stdout to
`Probe.parse`. A probe is the one place that knows both what a read runs and how its output
reads: facts (`labctl.host.facts`), snapshots (`labctl.host.snapshots`), the executor's
read-backs and the analysis of raw files all go through the probes here. Before/after
arithmetic lives in `labctl.analysis.deltas`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from labctl.cpulist import CpuListError, parse_cpulist, parse_mask
from labctl.errors import LabctlError, RunError


class ProbeOutputError(RunError):
    """Probe output that cannot be parsed (a corrupt, truncated or unexpected snapshot)."""


class ProbeArgumentError(LabctlError):
    """A probe factory was given an interface, queue, IRQ or PID that cannot be valid."""


T = TypeVar("T")


@dataclass(frozen=True)
class Probe(Generic[T]):
    """A read-only shell command (already quoted) and the pure parser of its output into T.

    Factories below build a probe from its parameters (interface, queue, IRQ, PID): the
    command is a function of them, the parser and its result type are the probe's own.
    """

    name: str
    command: str
    parse: Callable[[str], T]


# --------------------------------------------------------------------------- /proc/interrupts

GLOBAL_IRQ_COUNTERS = frozenset({"ERR", "MIS", "Err"})
_ROW = re.compile(r"^\s*([^\s:]+):(.*)$")
_COUNT = re.compile(r"\s*(\d+)(?=\s|$)")
_HWIRQ = re.compile(r"(\d+)(?:-(\S+))?(?:\s+(Level|Edge))?(?=\s|$)\s*")


@dataclass(frozen=True)
class IrqRow:
    """One row of /proc/interrupts.

    `irq` is the row label ("53", "NMI", "LOC", "ERR"). Numbered rows split their tail into
    `chip` ("PCI-MSI", "PCI-MSIX-0000:07:00.0"), `hwirq` ("49153"), `trigger` ("edge",
    "fasteoi", "Level") and `name` (the action names, "ehci_hcd:usb3, mmc0" for a shared line);
    `description` is the whole tail ("Local timer interrupts" for named rows). Global counters
    (ERR, MIS) have an empty `per_cpu` and only a `total`.
    """

    irq: str
    per_cpu: dict[int, int] = field(default_factory=dict)
    total: int = 0
    chip: str = ""
    hwirq: str = ""
    trigger: str = ""
    name: str = ""
    description: str = ""

    @property
    def actions(self) -> tuple[str, ...]:
        """The action names sharing this line ("a, b" -> ("a", "b"))."""
        return tuple(part.strip() for part in self.name.split(",") if part.strip())


@dataclass(frozen=True)
class InterruptTable:
    """/proc/interrupts: the CPU ids of the header (offline CPUs absent) and the rows in order."""

    cpus: tuple[int, ...]
    rows: tuple[IrqRow, ...]

    def by_irq(self, irq: str | int) -> IrqRow | None:
        """The row labelled `irq` ("37", 37, "LOC"), or None."""
        wanted = str(irq)
        return next((row for row in self.rows if row.irq == wanted), None)

    def by_name(self, name: str) -> IrqRow | None:
        """The first row whose name, or one of whose shared action names, is `name`."""
        return next((row for row in self.rows if row.name == name or name in row.actions), None)

    def rows_matching(self, pattern: str) -> list[IrqRow]:
        """Rows whose name matches the regular expression `pattern` (re.search)."""
        regex = re.compile(pattern)
        return [row for row in self.rows if regex.search(row.name)]


def parse_interrupts(text: str) -> InterruptTable:
    """Parse /proc/interrupts, mapping columns to the CPU numbers of the header.

    Rows in the kernel's own layout (each count right-aligned in an 11-character column) take
    a fast path that touches only the non-zero columns; any other row goes through the general
    row parser, with the same result.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ProbeOutputError("/proc/interrupts: empty output")
    cpus = _header_cpus(lines[0], "/proc/interrupts")
    columns = _KernelColumns(cpus)
    rows = tuple(columns.parse(line) or _parse_irq_line(line, cpus, number)
                 for number, line in enumerate(lines[1:], 2))
    return InterruptTable(cpus=cpus, rows=rows)


# Digits 1-9 -> "1", "0" -> "0", space -> " ", anything else -> "x": the shape of a row's counts.
_COUNT_SHAPE = str.maketrans({chr(c): "1" if chr(c) in "123456789" else chr(c) if chr(c) in "0 "
                              else "x" for c in range(128)})
_LABEL = re.compile(r"\s*[^\s:]+")
_KERNEL_COLUMN = 11        # " %10u" per CPU: 32-bit counts have at most 10 digits
_ZERO_COLUMN = " " * 10 + "0"
_SPARSE = 8                # at most 1/8 of the columns non-zero: read those columns only


class _KernelColumns:
    """The fast path of parse_interrupts: rows whose counts sit in the kernel's fixed columns.

    `parse` returns None for any row it does not fully recognise (other spacing, a tab, fewer
    counts, two numbers in a column, non-ASCII, the global ERR/MIS counters): parse_interrupts
    then uses the general parser. In a recognised row every column is either exactly a zero
    (ten spaces and "0") or holds a "1" in its shape and reads as one number.
    """

    def __init__(self, cpus: tuple[int, ...]):
        self.cpus = cpus
        self.width = _KERNEL_COLUMN * len(cpus)
        self.starts = " " * len(cpus)
        self.zeros = dict.fromkeys(cpus, 0)

    def parse(self, line: str) -> IrqRow | None:
        colon = line.find(":")
        start, end = colon + 1, colon + 1 + self.width
        region = line[start:end]
        shape = region.translate(_COUNT_SHAPE)
        if (colon < 1 or len(region) != self.width or not line.isascii()
                or line[end:end + 1] not in ("", " ") or shape[::_KERNEL_COLUMN] != self.starts
                or " " in shape[_KERNEL_COLUMN - 1::_KERNEL_COLUMN] or "x" in shape
                or not _LABEL.fullmatch(line, 0, colon)):
            return None
        irq = line[:colon].strip()
        if irq in GLOBAL_IRQ_COUNTERS:
            return None
        nonzero = len(self.cpus) - shape.count(_ZERO_COLUMN)
        counts = (self._sparse(region, shape, nonzero) if nonzero * _SPARSE <= len(self.cpus)
                  else self._dense(region))
        if counts is None:
            return None
        per_cpu, total = counts
        rest = line[end:].strip()
        if not irq.isdigit():
            return IrqRow(irq=irq, per_cpu=per_cpu, total=total, description=rest)
        chip, hwirq, trigger, name = _split_irq_source(rest)
        return IrqRow(irq, per_cpu, total, chip, hwirq, trigger, name, rest)

    def _sparse(self, region: str, shape: str, nonzero: int) -> tuple[dict[int, int], int] | None:
        """Only the columns that are not exactly a zero; None if one is not one number."""
        per_cpu, total, found, cpus = self.zeros.copy(), 0, 0, self.cpus
        position = shape.find("1")
        while position >= 0:
            column = position // _KERNEL_COLUMN
            start = column * _KERNEL_COLUMN
            try:
                value = int(region[start:start + _KERNEL_COLUMN])
            except ValueError:          # "  12   3": two numbers in one column
                return None
            per_cpu[cpus[column]] = value
            total += value
            found += 1
            position = shape.find("1", start + _KERNEL_COLUMN)
        return (per_cpu, total) if found == nonzero else None

    def _dense(self, region: str) -> tuple[dict[int, int], int] | None:
        words = region.split()
        if len(words) != len(self.cpus):
            return None
        counts = list(map(int, words))
        return dict(zip(self.cpus, counts)), sum(counts)


def _header_cpus(header: str, source: str) -> tuple[int, ...]:
    cpus = tuple(int(cpu) for cpu in re.findall(r"\bCPU(\d+)\b", header))
    if not cpus:
        raise ProbeOutputError(f"{source}: no CPU header in first line: {header.strip()!r}")
    return cpus


def _take_counts(text: str, limit: int) -> tuple[list[int], str]:
    """Up to `limit` leading decimal counts of `text`, and the rest of it, stripped."""
    counts: list[int] = []
    pos = 0
    while len(counts) < limit:
        match = _COUNT.match(text, pos)
        if not match:
            break
        counts.append(int(match.group(1)))
        pos = match.end()
    return counts, text[pos:].strip()


def _parse_irq_line(line: str, cpus: tuple[int, ...], number: int) -> IrqRow:
    match = _ROW.match(line)
    if not match:
        raise ProbeOutputError(f"/proc/interrupts line {number}: not an IRQ row: {line!r}")
    irq, tail = match.groups()
    counts, rest = _take_counts(tail, len(cpus))
    lone_count = len(counts) == 1 and len(cpus) > 1 and not rest
    if irq in GLOBAL_IRQ_COUNTERS or lone_count:
        return IrqRow(irq=irq, total=counts[0] if counts else 0, description=rest)
    if len(counts) != len(cpus):
        raise ProbeOutputError(
            f"/proc/interrupts line {number}: {len(counts)} counts for {len(cpus)} CPUs: {line!r}"
        )
    per_cpu = dict(zip(cpus, counts))
    if not irq.isdigit():
        return IrqRow(irq=irq, per_cpu=per_cpu, total=sum(counts), description=rest)
    chip, hwirq, trigger, name = _split_irq_source(rest)
    return IrqRow(irq, per_cpu, sum(counts), chip, hwirq, trigger, name, rest)


def _split_irq_source(rest: str) -> tuple[str, str, str, str]:
    """Split "PCI-MSI 49153-edge  virtio1-input.0" into chip, hwirq, trigger and name. A chip
    name may hold spaces ("RISC-V INTC   5 Edge", "Hyper-V PCIe MSI 2701534461953-edge"): up to
    three words are taken as the chip when a hwirq with its trigger follows them."""
    parts = rest.split(None, 1)
    if not parts:
        return "", "", "", ""
    chip, tail = parts[0], (parts[1] if len(parts) > 1 else "")
    hw = _HWIRQ.match(tail)
    for count in (2, 3) if not (hw or chip.isdigit()) else ():
        words = rest.split(None, count)
        longer = _HWIRQ.match(words[count]) if len(words) > count else None
        if longer and (longer.group(2) or longer.group(3)) and not any(w.isdigit() for w in words[1:count]):
            chip, tail, hw = " ".join(words[:count]), words[count], longer
            break
    if not hw:  # old kernels ("IO-APIC-edge  timer"), Xen, s390: no hwirq column
        return chip, "", "", tail.strip()
    return chip, hw.group(1), hw.group(2) or hw.group(3) or "", tail[hw.end():].strip()


def _queue_rows(table: InterruptTable, patterns: list[str]) -> dict[int, IrqRow]:
    found: dict[int, IrqRow] = {}
    regexes = [re.compile(pattern) for pattern in patterns]
    for row in table.rows:
        for action in row.actions:
            match = next((m for m in (r.fullmatch(action) for r in regexes) if m), None)
            if match is None:
                continue
            queue = int(match.group(1))
            if queue in found and found[queue] is not row:
                first = found[queue].irq
                raise ProbeOutputError(
                    f"/proc/interrupts: queue {queue} appears on IRQ {first} and IRQ {row.irq}"
                )
            found[queue] = row
    return dict(sorted(found.items()))


def nic_queue_irqs(table: InterruptTable, device: str) -> dict[int, IrqRow]:
    """RX queue -> IRQ row of a NIC, found by its device name, never by guessed IRQ numbers.

    `device` is what /sys/class/net/IF/device points at for virtio ("virtio6" ->
    "virtio6-input.K"), or the prefix drivers use for combined/RX vectors ("eth0-TxRx-K",
    "eth0-rx-K"). Disabled queues still have rows: /proc/interrupts lists them all.
    """
    dev = re.escape(device)
    return _queue_rows(table, [rf"{dev}-input\.(\d+)", rf"{dev}-(?:TxRx|rx)-(\d+)"])


def nic_tx_irqs(table: InterruptTable, device: str) -> dict[int, IrqRow]:
    """TX queue -> IRQ row of a NIC ("virtioN-output.K", "eth0-TxRx-K", "eth0-tx-K")."""
    dev = re.escape(device)
    return _queue_rows(table, [rf"{dev}-output\.(\d+)", rf"{dev}-(?:TxRx|tx)-(\d+)"])


# --------------------------------------------------------------------------- /proc/softirqs


def parse_softirqs(text: str) -> dict[str, dict[int, int]]:
    """Parse /proc/softirqs: {"NET_RX": {cpu: count}} (the header lists possible CPUs)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ProbeOutputError("/proc/softirqs: empty output")
    cpus = _header_cpus(lines[0], "/proc/softirqs")
    table: dict[str, dict[int, int]] = {}
    for number, line in enumerate(lines[1:], 2):
        match = _ROW.match(line)
        counts, rest = _take_counts(match.group(2), len(cpus)) if match else ([], line)
        if not match or len(counts) != len(cpus) or rest:
            raise ProbeOutputError(f"/proc/softirqs line {number}: unexpected row: {line!r}")
        table[match.group(1)] = dict(zip(cpus, counts))
    return table


# --------------------------------------------------------------------------- softnet_stat


@dataclass(frozen=True)
class SoftnetRow:
    """One CPU's row of /proc/net/softnet_stat (hex counters).

    Columns a kernel does not print are None: received_rps appeared in 2.6.35 (10 columns),
    flow_limit in 3.11 (11), backlog_len and the CPU id in 5.10 (13), input_qlen and
    process_qlen in 6.x (15). cpu_collision has read 0 since 4.x ("was cpu_collision").
    """

    processed: int
    dropped: int
    time_squeeze: int
    cpu_collision: int
    received_rps: int | None = None
    flow_limit: int | None = None
    backlog_len: int | None = None
    input_qlen: int | None = None
    process_qlen: int | None = None


SOFTNET_CPU_COLUMN = 12


def _softnet_row(values: list[int]) -> SoftnetRow:
    def column(index: int) -> int | None:
        return values[index] if len(values) > index else None

    return SoftnetRow(
        processed=values[0],
        dropped=values[1],
        time_squeeze=values[2],
        cpu_collision=values[8],
        received_rps=column(9),
        flow_limit=column(10),
        backlog_len=column(11),
        input_qlen=column(13),
        process_qlen=column(14),
    )


def _softnet_values(text: str) -> list[list[int]]:
    rows: list[list[int]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append([int(word, 16) for word in line.split()])
        except ValueError as err:
            raise ProbeOutputError(f"softnet_stat line {number}: not hex: {line!r}") from err
    widths = {len(row) for row in rows}
    if len(widths) > 1 or (widths and min(widths) < 9):
        raise ProbeOutputError(f"softnet_stat: unexpected column counts {sorted(widths)}")
    return rows


def parse_softnet_stat(text: str, online_cpus: list[int] | None = None) -> dict[int, SoftnetRow]:
    """Parse /proc/net/softnet_stat into {cpu: SoftnetRow}.

    Kernels >= 5.10 print the CPU id (13th column) and it is used. Older kernels print one row
    per *online* CPU with no id: rows are then mapped, in order, to `online_cpus` (the
    cpus_online probe), or to 0..n-1 when it is not given.
    """
    rows = _softnet_values(text)
    if rows and len(rows[0]) > SOFTNET_CPU_COLUMN:
        return {row[SOFTNET_CPU_COLUMN]: _softnet_row(row) for row in rows}
    cpus = list(range(len(rows))) if online_cpus is None else sorted(online_cpus)
    if len(cpus) != len(rows):
        raise ProbeOutputError(
            f"softnet_stat: {len(rows)} rows without CPU ids but {len(cpus)} online CPUs {cpus}"
        )
    return {cpu: _softnet_row(row) for cpu, row in zip(cpus, rows)}


# --------------------------------------------------------------------------- /proc/stat

CPU_TIME_FIELDS = (
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice",
)


@dataclass(frozen=True)
class CpuTimes:
    """Jiffies of one `cpuN` line of /proc/stat (guest time is also counted in user/nice)."""

    user: int
    nice: int
    system: int
    idle: int
    iowait: int = 0
    irq: int = 0
    softirq: int = 0
    steal: int = 0
    guest: int = 0
    guest_nice: int = 0


def parse_proc_stat(text: str) -> dict[int, CpuTimes]:
    """Per-CPU times of /proc/stat ({cpu: CpuTimes}); only online CPUs have lines."""
    times: dict[int, CpuTimes] = {}
    for line in text.splitlines():
        match = re.match(r"^cpu(\d+)\s+(.*)$", line)
        if not match:
            continue
        values = [int(word) for word in match.group(2).split()][: len(CPU_TIME_FIELDS)]
        if len(values) < 4:
            raise ProbeOutputError(f"/proc/stat: short cpu line: {line!r}")
        times[int(match.group(1))] = CpuTimes(*values)
    if not times:
        raise ProbeOutputError("/proc/stat: no cpuN lines")
    return times


PF_KTHREAD = 0x00200000          # /proc/PID/stat flags: a kernel thread (ksoftirqd, kworker, ...)


@dataclass(frozen=True)
class ProcessTimes:
    """One process of `/proc/PID/stat` (all its threads' CPU time): what a neighbour check needs."""

    pid: int
    comm: str
    ppid: int
    kernel_thread: bool
    ticks: int                  # utime + stime, in USER_HZ ticks (the unit of /proc/stat)
    started: int                # starttime: tells a reused PID from the process before it
    last_cpu: int


def parse_process_stats(text: str) -> dict[int, ProcessTimes]:
    """`cat /proc/[0-9]*/stat`: one line per process. The name (field 2) may hold spaces and
    parentheses, so the fields are counted from its last `)`; a line cut short (a process that
    ended while it was read) is skipped."""
    processes: dict[int, ProcessTimes] = {}
    for line in text.splitlines():
        head, paren, tail = line.rpartition(")")
        pid_text, _, comm = head.partition(" (")
        fields = tail.split()
        if not paren or not pid_text.strip().isdigit() or len(fields) < 37:
            continue
        try:
            pid, ppid, flags = int(pid_text), int(fields[1]), int(fields[6])
            processes[pid] = ProcessTimes(pid, comm, ppid, bool(flags & PF_KTHREAD),
                                          int(fields[11]) + int(fields[12]), int(fields[19]), int(fields[36]))
        except ValueError:
            continue
    return processes


PROCESSES: Probe[dict[int, ProcessTimes]] = Probe(
    "processes", "cat /proc/[0-9]*/stat 2>/dev/null || true", parse_process_stats)


# --------------------------------------------------------------------------- ethtool


@dataclass(frozen=True)
class Channels:
    """`ethtool -l`: keys rx, tx, other, combined; None where ethtool prints "n/a"."""

    maximum: dict[str, int | None]
    current: dict[str, int | None]


def _channel_value(text: str) -> int | None:
    value = text.strip()
    if value == "n/a":
        return None
    if not value.isdigit():
        raise ProbeOutputError(f"ethtool -l: not a channel count: {value!r}")
    return int(value)


def parse_ethtool_channels(text: str) -> Channels:
    """Parse `ethtool -l IF` (Pre-set maximums / Current hardware settings)."""
    sections: dict[str, dict[str, int | None]] = {}
    section: dict[str, int | None] | None = None
    for line in text.splitlines():
        heading = line.strip().lower()
        if heading.startswith(("pre-set maximums", "current hardware settings")):
            section = sections.setdefault(heading.split()[0], {})
        elif section is not None and ":" in line:
            key, _, value = line.partition(":")
            section[key.strip().lower()] = _channel_value(value)
    if set(sections) != {"pre-set", "current"}:
        raise ProbeOutputError(f"ethtool -l: no channel settings in output: {text.strip()[:200]!r}")
    return Channels(maximum=sections["pre-set"], current=sections["current"])


def supports_combined(channels: Channels) -> bool:
    """True when the NIC takes `ethtool -L IF combined N` (veth and some NICs only rx/tx)."""
    return bool(channels.maximum.get("combined"))


@dataclass(frozen=True)
class RssInfo:
    """`ethtool -x`: None where the driver answers "Operation not supported"."""

    ring_count: int | None
    indirection: list[int] | None
    key: str | None
    hash_functions: dict[str, bool]
    input_transformations: dict[str, bool] = field(default_factory=dict)


_RSS_SECTIONS = {
    "rss hash key:": "key",
    "rss hash function:": "hfunc",
    "rss input transformation:": "xfrm",
}


def parse_ethtool_rss(text: str) -> RssInfo:
    """Parse `ethtool -x IF` (indirection table, hash key, hash functions)."""
    ring = re.search(r"with (\d+) RX ring", text)
    table: list[int] = []
    key: str | None = None
    flags: dict[str, dict[str, bool]] = {"hfunc": {}, "xfrm": {}}
    section = "indir"
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.lower() in _RSS_SECTIONS:
            section = _RSS_SECTIONS[stripped.lower()]
        elif section == "indir" and re.match(r"^\d+:(\s+\d+)+$", stripped):
            table.extend(int(word) for word in stripped.split(":", 1)[1].split())
        elif section == "key" and re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})*", stripped):
            key = stripped
        elif section in flags and re.fullmatch(r"[\w-]+:\s*(on|off)", stripped):
            name, _, state = stripped.partition(":")
            flags[section][name.strip()] = state.strip() == "on"
    return RssInfo(
        ring_count=int(ring.group(1)) if ring else None,
        indirection=table or None,
        key=key,
        hash_functions=flags["hfunc"],
        input_transformations=flags["xfrm"],
    )


def rss_refusal(text: str) -> str:
    """What the driver answered `ethtool -x` with where it has no indirection table, on one
    line ("Cannot get RX ring count: Operation not supported"; virtio without
    VIRTIO_NET_F_RSS: "RX flow hash indirection table for eth1 with 4 RX ring(s): Operation
    not supported")."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if "not supported" in line.lower() or line.lower().startswith("cannot"):
            heading = lines[index - 1] if index and lines[index - 1].endswith(":") else ""
            return f"{heading} {line}".strip()
    return " ".join(lines[:2]) or "no output"


def active_hash_function(info: RssInfo) -> str | None:
    """The hash function `ethtool -x` shows as on ("toeplitz"), None where it shows none."""
    return next((name for name, on in info.hash_functions.items() if on), None)


FLOW_HASH_FIELDS = {          # ethtool.c dump_rxfhash's lines -> the letters of `ethtool -N ... rx-flow-hash`
    "l2da": "m", "vlan tag": "v", "l3 proto": "t", "ip sa": "s", "ip da": "d",
    "l4 bytes 0 & 1 [tcp/udp src port]": "f", "l4 bytes 2 & 3 [tcp/udp dst port]": "n",
}
FLOW_HASH_ORDER = "mvtsdfn"


def canonical_flow_hash(letters: str) -> str:
    """Letters of rx-flow-hash in ethtool's order ("nfds" -> "sdfn")."""
    return "".join(c for c in FLOW_HASH_ORDER if c in letters)


def parse_flow_hash(text: str) -> str | None:
    """`ethtool -n IF rx-flow-hash FLOW` -> its fields as ethtool -N letters ("sdfn"); None where
    the driver did not answer with them (not supported) or printed a line labctl does not know."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines or "use these fields" not in lines[0]:
        return None
    fields = [FLOW_HASH_FIELDS.get(line.lower()) for line in lines[1:] if line.lower() != "none"]
    return None if None in fields else canonical_flow_hash("".join(f or "" for f in fields))


FLOW_TYPES = ("tcp4", "udp4", "tcp6", "udp6")


def parse_flow_hash_listing(text: str) -> dict[str, str]:
    """The facts' `@flow T` blocks of `ethtool -n IF rx-flow-hash T` -> {T: letters, or the
    driver's answer prefixed "!" where it gave no fields}."""
    found: dict[str, str] = {}
    for block in text.split("@flow ")[1:]:
        flow, _, body = block.partition("\n")
        letters = parse_flow_hash(body)
        found[flow.strip()] = letters if letters is not None else "!" + (" ".join(body.split()) or "no output")
    return found


def parse_ethtool_info(text: str) -> dict[str, str]:
    """Parse `ethtool -i IF` into {"driver": "virtio_net", "bus-info": "0000:00:03.0", ...}."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            info[key.strip()] = value.strip()
    if "driver" not in info:
        raise ProbeOutputError(f"ethtool -i: no driver line: {text.strip()[:200]!r}")
    return info


def parse_ethtool_stats(text: str) -> dict[str, int]:
    """Parse `ethtool -S IF` into {name: value}; names may hold ": " (bnxt's "[0]: rx_...")."""
    stats: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.rpartition(":")
        if not sep or not name.strip() or not re.fullmatch(r"-?\d+", value.strip()):
            continue
        stats[name.strip()] = int(value.strip())
    if not stats and "statistics" not in text.lower():
        raise ProbeOutputError(f"ethtool -S: no statistics in output: {text.strip()[:200]!r}")
    return stats


_QUEUE_STAT_PATTERNS = (
    re.compile(r"^(?P<dir>rx|tx)_queue_(?P<q>\d+)_(?P<stat>.+)$"),  # virtio <6.x, veth, igb, ixgbe
    re.compile(r"^(?P<dir>rx|tx)-(?P<q>\d+)\.(?P<stat>.+)$"),  # i40e, iavf, sfc
    re.compile(r"^(?P<dir>rx|tx)q?(?P<q>\d+)_(?P<stat>.+)$"),  # mlx5, virtio 6.x, hns3
    re.compile(r"^queue_(?P<q>\d+)_(?P<dir>rx|tx)_(?P<stat>.+)$"),  # ena
    re.compile(r"^\[(?P<q>\d+)\]:\s*(?P<dir>rx|tx)_(?P<stat>.+)$"),  # bnxt
)


def per_queue_stats(stats: dict[str, int]) -> dict[tuple[str, int], dict[str, int]]:
    """Group per-queue counters: {("rx", 0): {"packets": .., "xdp_packets": ..}, ...}."""
    queues: dict[tuple[str, int], dict[str, int]] = {}
    for name, value in stats.items():
        match = next((m for m in (p.match(name) for p in _QUEUE_STAT_PATTERNS) if m), None)
        if match:
            key = (match.group("dir"), int(match.group("q")))
            queues.setdefault(key, {})[match.group("stat")] = value
    return dict(sorted(queues.items()))


# --------------------------------------------------------------------------- masks, lists, cmdline


def parse_mask_file(text: str) -> frozenset[int]:
    """Parse a hex CPU mask file (rps_cpus, smp_affinity, default_smp_affinity)."""
    try:
        return parse_mask(text)
    except CpuListError as err:
        raise ProbeOutputError(f"not a CPU mask: {text.strip()!r}: {err}") from err


def parse_cpulist_file(text: str) -> frozenset[int]:
    """Parse a CPU list file (smp_affinity_list, effective_affinity_list, isolated, online)."""
    try:
        return parse_cpulist(text)
    except CpuListError as err:
        raise ProbeOutputError(f"not a CPU list: {text.strip()!r}: {err}") from err


@dataclass(frozen=True)
class IsolCpus:
    """isolcpus=[flag,...,]cpulist; no flags means the kernel's default ("domain")."""

    flags: tuple[str, ...]
    cpus: frozenset[int]


@dataclass(frozen=True)
class Cmdline:
    """/proc/cmdline: parameters in order (`items`), last-wins `params`, and the CPU sets."""

    raw: str
    items: tuple[tuple[str, str | None], ...]
    params: dict[str, str | None]
    init_args: tuple[str, ...]
    isolcpus: IsolCpus | None
    nohz_full: frozenset[int] | None
    irqaffinity: frozenset[int] | None


def _cmdline_words(text: str) -> list[str]:
    """Split like the kernel's next_arg(): whitespace outside double quotes, quotes dropped."""
    words: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text.strip():
        if char == '"':
            quoted = not quoted
        elif char.isspace() and not quoted:
            if current:
                words.append("".join(current))
            current = []
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words


def parse_isolcpus(value: str) -> IsolCpus:
    """Parse an isolcpus= value: "managed_irq,domain,4-7", "4-7", "nohz,1,3-5"."""
    parts = value.split(",")
    flags: list[str] = []
    while len(parts) > 1 and parts[0][:1].isalpha():
        flags.append(parts.pop(0))
    return IsolCpus(flags=tuple(flags), cpus=parse_cpulist_file(",".join(parts)))


def parse_cmdline(text: str) -> Cmdline:
    """Parse /proc/cmdline; words after a lone "--" are init's arguments, not parameters."""
    words = _cmdline_words(text)
    init_args: tuple[str, ...] = ()
    if "--" in words:
        cut = words.index("--")
        words, init_args = words[:cut], tuple(words[cut + 1 :])
    split_words = (word.partition("=") for word in words)
    items = tuple((key, value if sep else None) for key, sep, value in split_words)
    params = dict(items)

    def cpus(name: str) -> frozenset[int] | None:
        value = params.get(name)
        return parse_cpulist_file(value) if value is not None else None

    isolcpus = params.get("isolcpus")
    return Cmdline(
        raw=text.strip(),
        items=items,
        params=params,
        init_args=init_args,
        isolcpus=parse_isolcpus(isolcpus) if isolcpus is not None else None,
        nohz_full=cpus("nohz_full"),
        irqaffinity=cpus("irqaffinity"),
    )


def parse_status_cpus_allowed(text: str) -> frozenset[int]:
    """Cpus_allowed_list of /proc/PID/status."""
    match = re.search(r"^Cpus_allowed_list:\s*(\S*)\s*$", text, re.M)
    if not match:
        raise ProbeOutputError("/proc/PID/status: no Cpus_allowed_list line")
    return parse_cpulist_file(match.group(1))


# --------------------------------------------------------------------------- listings


def parse_rps_listing(text: str) -> dict[int, frozenset[int]]:
    """Lines 'rx-N MASK' (the rps_masks probe) -> queue -> CPUs."""
    result = {}
    for line in text.splitlines():
        name, _, mask = line.partition(" ")
        if name.startswith("rx-") and mask.strip():
            result[int(name[3:])] = parse_mask(mask)
    return result


def parse_irq_affinity_listing(text: str) -> dict[str, dict[str, str]]:
    """`grep -H . /proc/irq/N/{smp,effective}_affinity_list` -> {"37": {"smp": "2", "effective": "2"}}."""
    result: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        path, _, value = line.partition(":")
        parts = path.split("/")
        if len(parts) == 5 and parts[3].isdigit() and parts[4].endswith("_affinity_list"):
            result.setdefault(parts[3], {})[parts[4].split("_")[0]] = value.strip()
    return result


def parse_smp_affinity_lists(text: str) -> dict[str, frozenset[int]]:
    """`grep -H . /proc/irq/*/smp_affinity_list` -> {"37": frozenset({2})}."""
    result: dict[str, frozenset[int]] = {}
    for line in text.splitlines():
        path, _, value = line.partition(":")
        parts = path.split("/")
        if len(parts) >= 4 and parts[3].isdigit():
            result[parts[3]] = parse_cpulist(value)
    return result


def parse_text(text: str) -> str:
    """A one-value file or command (boot_id, hostname): its text without surrounding blanks."""
    return text.strip()


# --------------------------------------------------------------------------- registry

_IFNAME = re.compile(r"^[^/:\s]{1,15}$")


def _check_iface(iface: str) -> str:
    if not _IFNAME.match(iface) or iface in (".", ".."):
        raise ProbeArgumentError(f"not a network interface name: {iface!r}")
    return iface


def _iface(iface: str, check: bool) -> str:
    """The interface name, refused when `check` and no kernel would accept it. Without
    `check` the name is only quoted: read-backs and listings of the interface the facts name."""
    return _check_iface(iface) if check else iface


def _check_number(value: int | str, what: str) -> str:
    text = str(value)
    if not text.isdigit():
        raise ProbeArgumentError(f"not a valid {what}: {value!r}")
    return text


def _cat(path: str) -> str:
    return shlex.join(["cat", path])


INTERRUPTS: Probe[InterruptTable] = Probe("interrupts", _cat("/proc/interrupts"), parse_interrupts)
SOFTIRQS: Probe[dict[str, dict[int, int]]] = Probe("softirqs", _cat("/proc/softirqs"), parse_softirqs)
SOFTNET_STAT: Probe[dict[int, SoftnetRow]] = Probe(
    "softnet_stat", _cat("/proc/net/softnet_stat"), parse_softnet_stat)
STAT: Probe[dict[int, CpuTimes]] = Probe("stat", _cat("/proc/stat"), parse_proc_stat)
CMDLINE: Probe[Cmdline] = Probe("cmdline", _cat("/proc/cmdline"), parse_cmdline)
CPUS_ONLINE: Probe[frozenset[int]] = Probe(
    "cpus_online", _cat("/sys/devices/system/cpu/online"), parse_cpulist_file)
CPUS_POSSIBLE: Probe[frozenset[int]] = Probe(
    "cpus_possible", _cat("/sys/devices/system/cpu/possible"), parse_cpulist_file)
CPUS_ISOLATED: Probe[frozenset[int]] = Probe(
    "cpus_isolated", _cat("/sys/devices/system/cpu/isolated"), parse_cpulist_file)
DEFAULT_SMP_AFFINITY: Probe[frozenset[int]] = Probe(
    "default_smp_affinity", _cat("/proc/irq/default_smp_affinity"), parse_mask_file)
BOOT_ID: Probe[str] = Probe("boot_id", _cat("/proc/sys/kernel/random/boot_id"), parse_text)
SMP_AFFINITY_LISTS: Probe[dict[str, frozenset[int]]] = Probe(   # every IRQ of the host
    "smp_affinity_lists", "grep -H . /proc/irq/*/smp_affinity_list", parse_smp_affinity_lists)

PROBES: dict[str, Probe[Any]] = {
    probe.name: probe
    for probe in (INTERRUPTS, SOFTIRQS, SOFTNET_STAT, STAT, CMDLINE, CPUS_ONLINE, CPUS_POSSIBLE,
                  CPUS_ISOLATED, DEFAULT_SMP_AFFINITY, BOOT_ID)
}
# softnet_stat's registered parser maps id-less rows to CPUs 0..n-1: on old kernels with offline
# CPUs, use softnet_stat(online_cpus) (fed by the cpus_online probe) instead.


def softnet_stat(online_cpus: Iterable[int] | None = None) -> Probe[dict[int, SoftnetRow]]:
    """/proc/net/softnet_stat, its id-less rows (kernels < 5.10) mapped to `online_cpus`."""
    online = sorted(online_cpus) if online_cpus is not None else None

    def parse(text: str) -> dict[int, SoftnetRow]:
        return parse_softnet_stat(text, online)

    return Probe(SOFTNET_STAT.name, SOFTNET_STAT.command, parse)


def _ethtool(option: str, kind: str, iface: str, parse: Callable[[str], T], check: bool = True) -> Probe[T]:
    name = _iface(iface, check)
    return Probe(f"{kind}@{name}", shlex.join(["ethtool", option, name]), parse)


def ethtool_channels(iface: str, *, check: bool = True) -> Probe[Channels]:
    """`ethtool -l IF`."""
    return _ethtool("-l", "ethtool_channels", iface, parse_ethtool_channels, check)


def ethtool_stats(iface: str) -> Probe[dict[str, int]]:
    """`ethtool -S IF`."""
    return _ethtool("-S", "ethtool_stats", iface, parse_ethtool_stats)


def ethtool_rss(iface: str, *, check: bool = True) -> Probe[RssInfo]:
    """`ethtool -x IF` (exits 1 on drivers without RSS; its output still parses)."""
    return _ethtool("-x", "ethtool_rss", iface, parse_ethtool_rss, check)


def ethtool_info(iface: str, *, check: bool = True) -> Probe[dict[str, str]]:
    """`ethtool -i IF`."""
    return _ethtool("-i", "ethtool_info", iface, parse_ethtool_info, check)


def flow_hash(iface: str, flow: str, *, check: bool = True) -> Probe[str | None]:
    """`ethtool -n IF rx-flow-hash FLOW` as ethtool -N letters."""
    name = _iface(iface, check)
    if flow not in FLOW_TYPES:
        raise ValueError(f"not a flow type labctl tunes: {flow!r}")
    return Probe(f"flow_hash@{name}@{flow}", shlex.join(["ethtool", "-n", name, "rx-flow-hash", flow]),
                 parse_flow_hash)


def flow_hashes(iface: str) -> Probe[dict[str, str]]:
    """Every flow type's rx-flow-hash fields, one `@flow T` block each (facts: quoted, not checked)."""
    name = shlex.quote(iface)
    command = (f"for t in {' '.join(FLOW_TYPES)}; do echo \"@flow $t\"; "
               f"ethtool -n {name} rx-flow-hash \"$t\" 2>&1; done; true")
    return Probe(f"flow_hashes@{iface}", command, parse_flow_hash_listing)


def rps_cpus(iface: str, queue: int, *, check: bool = True) -> Probe[frozenset[int]]:
    """/sys/class/net/IF/queues/rx-N/rps_cpus."""
    name, rxq = _iface(iface, check), _check_number(queue, "RX queue number")
    path = f"/sys/class/net/{name}/queues/rx-{rxq}/rps_cpus"
    return Probe(f"rps_cpus@{name}@rx-{rxq}", _cat(path), parse_mask_file)


def rps_masks(iface: str) -> Probe[dict[int, frozenset[int]]]:
    """The RPS mask of every RX queue of IF, one 'rx-N MASK' line each (the name is quoted,
    not checked: facts list whatever interface the inventory names)."""
    queues = shlex.quote(f"/sys/class/net/{iface}/queues")
    command = f"for q in {queues}/rx-*; do echo \"${{q##*/}} $(cat \"$q/rps_cpus\")\"; done"
    return Probe(f"rps_masks@{iface}", command, parse_rps_listing)


def _irq_probe(irq: int | str, leaf: str, parse: Callable[[str], T], check: bool = True) -> Probe[T]:
    number = _check_number(irq, "IRQ number") if check else str(irq)
    return Probe(f"{leaf}@{number}", _cat(f"/proc/irq/{number}/{leaf}"), parse)


def smp_affinity(irq: int | str) -> Probe[frozenset[int]]:
    """/proc/irq/N/smp_affinity (hex mask)."""
    return _irq_probe(irq, "smp_affinity", parse_mask_file)


def smp_affinity_list(irq: int | str, *, check: bool = True) -> Probe[frozenset[int]]:
    """/proc/irq/N/smp_affinity_list (`check`: refuse an IRQ that is not a number; without it
    the number is only quoted, as for the IRQs the host's facts name)."""
    return _irq_probe(irq, "smp_affinity_list", parse_cpulist_file, check)


def effective_affinity_list(irq: int | str) -> Probe[frozenset[int]]:
    """/proc/irq/N/effective_affinity_list (lags smp_affinity until the next interrupt)."""
    return _irq_probe(irq, "effective_affinity_list", parse_cpulist_file)


def irq_affinities(irqs: Iterable[int | str]) -> Probe[dict[str, dict[str, str]]]:
    """smp_affinity_list and effective_affinity_list (it moves at the next interrupt) of
    each IRQ, as `grep -H` prints them (the IRQs of the host's facts: quoted, not checked).
    An IRQ that is gone is left out, not an error: drivers such as igb free vectors on
    `ethtool -L` (grep -s: no message; its status 2 then says only that)."""
    numbers = [str(irq) for irq in irqs]
    paths = [f"/proc/irq/{n}/{leaf}" for n in numbers
             for leaf in ("smp_affinity_list", "effective_affinity_list")]
    return Probe(f"irq_affinities@{','.join(numbers)}",
                 shlex.join(["grep", "-Hs", ".", *paths]) + " || [ $? -eq 2 ]",
                 parse_irq_affinity_listing)


def cpus_allowed(pid: int | str) -> Probe[frozenset[int]]:
    """Cpus_allowed_list of /proc/PID/status."""
    number = _check_number(pid, "PID")
    path = f"/proc/{number}/status"
    return Probe(f"cpus_allowed@{number}", _cat(path), parse_status_cpus_allowed)


def file_text(path: str) -> Probe[str]:
    """A file's whole text (a tuned variables file, a result file a run wrote)."""
    return Probe(f"file_text@{path}", _cat(path), str)


# --------------------------------------------------------------------------- read-backs

def _current_channels(text: str) -> dict[str, int | None]:
    return dict(parse_ethtool_channels(text).current)


# A plan's read-back kind -> the parser of the probe whose command it runs: `mask` an rps_cpus
# probe, `cpulist` smp_affinity_list, `channels` ethtool_channels (its current settings), `rss`
# ethtool_rss (its table, key and active hash function).
def _rss_readback(text: str) -> dict[str, Any]:
    info = parse_ethtool_rss(text)
    return {"table": info.indirection, "key": info.key.lower() if info.key else None,
            "hfunc": active_hash_function(info)}


READBACK_PARSERS: dict[str, Callable[[str], Any]] = {
    "mask": parse_mask_file,
    "cpulist": parse_cpulist_file,
    "channels": _current_channels,
    "rss": _rss_readback,
    "flow_hash": parse_flow_hash,
}


def parse_readback(kind: str, expected: Any, output: str) -> Any:
    """A read-back's output parsed by its kind's parser, in the shape of the value `expected`
    (channels: only those the plan set); ProbeOutputError if it does not parse."""
    value = READBACK_PARSERS[kind](output)
    if isinstance(expected, dict):
        return {k: value.get(k) for k in expected}
    return value
