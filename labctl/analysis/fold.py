"""Folding (pure): `perf script` text -> per-CPU folded stacks (the stackcollapse format).

Input is the default text of `perf script` on a `perf record -g` recording: a header line per
sample (``comm tid [cpu] time: period event:``), one tab-indented line per frame, leaf first
(``\\t<address> <symbol>+0x<offset> (<dso>)``), and a blank line after each sample. Output is
what perf's own ``perf script report stackcollapse`` prints (stackcollapse.py), split per CPU:
root first, frames joined by ``;``, the comm as the first frame (spaces turned into ``_``),
symbol offsets dropped, ``;`` inside a symbol turned into ``:``, ``[unknown]`` for unresolved
symbols, and optionally ``-pid``/``/tid`` on the comm and a ``_[k]`` suffix on kernel frames.

Two differences from stackcollapse.py, both on purpose:
- a sample without a call chain (recorded without -g) folds to ``comm;symbol`` from its header
  line, not to ``comm`` alone, so a flat profile still shows functions (a diagnostic says so);
- ``_[k]`` also marks frames at kernel addresses (>= 0xffff800000000000) whose dso is neither
  ``[kernel.kallsyms]`` nor ``[unknown]`` (a module's ``[name]``; inlined frames, which perf
  prints without a dso). Kernel-looking addresses with an ``[unknown]`` dso stay unmarked:
  they are junk read past the end of user stacks (seen in qemu's stacks on this machine).

What the text cannot tell: perf 6.1's Python scripting (stackcollapse.py) names a kernel
module's symbol ``sym\\0[module]`` (a NUL byte between them, a perf bug: see MODULE_SUFFIX in
bench/fold.py), while `perf script` text prints it as ``sym+0x.. ([kernel.kallsyms])`` without
the module, so such frames fold to ``sym`` here.

The text is folded one sample block at a time (split on blank lines, C speed), with caches from
a block's frame lines to its folded chain and from a line to its frame name, so a stack seen
before costs two dictionary lookups. Blocks that are not well formed (odd lines, no blank lines
between samples, a cut end) go through a line-by-line path that keeps what is complete.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, cast

from labctl.errors import RunError

KERNEL_DSO = "[kernel.kallsyms]"
KERNEL_SUFFIX = "_[k]"
# Kernel space on x86-64 (and arm64 with 48-bit VAs) starts at the canonical upper half.
KERNEL_ADDRESS_MIN = 0xFFFF_8000_0000_0000
UNKNOWN_SYMBOL = "[unknown]"
NO_CPU = -1
SOFTWARE_CLOCK_EVENTS = frozenset({"cpu-clock", "task-clock"})

NO_SAMPLES = "no samples"
NO_CALLCHAINS = "recording has no call chains (perf record without -g)"
NO_CPU_FIELD = (
    f"samples have no CPU field (perf record without -a or -C): counted under CPU {NO_CPU}"
)
NO_PID_FIELD = (
    "perf script printed the tid only (add -F +pid for pid/tid): the comm frame shows the tid"
)
TRUNCATED = "input ends inside a sample (truncated)"
HEADLESS = "frame lines without a sample header"

_INLINED = " (inlined)"
_DELETED = " (deleted))"
_ODD_EXAMPLES = 3
_HEADER_CACHE_MAX = 65536
_TIME_CHARS = "0123456789."
_EXAMPLE_CHARS = 80

# Only for header lines the fast path has not seen before (comm may hold spaces and digits).
_HEADER = re.compile(r"\s*(?P<who>.*?\S)\s+(?P<time>\d+\.\d+):\s(?P<tail>.*)")
_WHO = re.compile(
    r"\s*(?P<comm>.*?)\s+(?P<first>-?\d+)(?:/(?P<tid>-?\d+))?(?:\s+\[(?P<cpu>\d+)\])?\s*"
)


@dataclass(frozen=True)
class FoldOptions:
    """What goes into each stack: the options of stackcollapse.py."""

    include_comm: bool = True
    include_pid: bool = False
    include_tid: bool = False
    annotate_kernel: bool = False

    def __post_init__(self) -> None:
        if (self.include_pid or self.include_tid) and not self.include_comm:
            raise RunError("folding: pid/tid go into the comm frame; they need include_comm")


@dataclass(frozen=True)
class FoldResult:
    """Folded stacks per CPU, what was counted, and what was odd about the input."""

    stacks: dict[int, dict[str, int]]
    samples: dict[int, int]
    events: dict[str, int]
    chainless_samples: int
    dropped_samples: int
    odd_lines: int
    diagnostics: tuple[str, ...]

    @property
    def total_samples(self) -> int:
        return sum(self.samples.values())

    @property
    def cpus(self) -> list[int]:
        return sorted(self.stacks)

    @property
    def has_callchains(self) -> bool:
        return self.chainless_samples < self.total_samples

    @property
    def software_clock(self) -> bool:
        """True if an event is a software clock: perf's fallback when there is no PMU."""
        return any(event_base(name) in SOFTWARE_CLOCK_EVENTS for name in self.events)

    def merged(self) -> dict[str, int]:
        """Stacks of all CPUs together (what one whole-recording stackcollapse prints)."""
        return merge_stacks(self.stacks.values())


class _Header(NamedTuple):
    cpu: int
    comm: str  # the comm frame as options want it, "" without include_comm
    event: str
    leaf: str | None  # symbol on the header line itself (recordings without -g)


def event_base(event: str) -> str:
    """``cpu-clock`` from ``cpu-clock:ppp`` (modifiers dropped; tracepoints kept whole)."""
    base, _, modifiers = event.rpartition(":")
    if base and modifiers and set(modifiers) <= set("ukhGHIpPSDWeb"):
        return base
    return event


def fold_perf_script(text: str, options: FoldOptions = FoldOptions()) -> FoldResult:
    """Fold `perf script` text into per-CPU stacks; never raises on odd input."""
    folder = _Folder(options)
    folder.feed(text.replace("\r\n", "\n") if "\r" in text[:4096] else text)
    return folder.result()


def merge_stacks(per_cpu: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Sum several stack -> count maps."""
    merged: Counter[str] = Counter()
    for stacks in per_cpu:
        merged.update(stacks)
    return dict(merged)


def format_folded(stacks: Mapping[str, int]) -> str:
    """The ``.folded`` text: one ``stack count`` line per stack, sorted as perf sorts them."""
    return "".join(f"{stack} {stacks[stack]}\n" for stack in sorted(stacks))


def parse_folded(text: str) -> dict[str, int]:
    """Stacks from ``.folded`` text (ours or any stackcollapse's); RunError names bad lines."""
    stacks: dict[str, int] = {}
    bad: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            bad.append(number)
            continue
        stacks[stack] = stacks.get(stack, 0) + int(count)
    if bad:
        shown = ", ".join(str(n) for n in bad[:10]) + (", ..." if len(bad) > 10 else "")
        raise RunError(f"folded stacks: {len(bad)} line(s) are not 'stack count': line {shown}")
    return stacks


def frame_name(line: str, annotate_kernel: bool = False) -> str | None:
    """The folded frame of one call-chain line, or None if the line is not one."""
    address, _, rest = line.strip().partition(" ")
    if not rest or not _is_hex(address):
        return None
    symbol, dso = _split_symbol_dso(rest.strip())
    name = _strip_offset(symbol).replace(";", ":") or UNKNOWN_SYMBOL
    if annotate_kernel and _is_kernel_frame(address, dso):
        return name + KERNEL_SUFFIX
    return name


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


def _split_symbol_dso(rest: str) -> tuple[str, str | None]:
    """``sym+0x1 (dso)`` -> (``sym+0x1``, ``dso``); inlined frames have no dso."""
    if rest.endswith(_INLINED):
        return rest[: -len(_INLINED)], None
    if not rest.endswith(")"):
        return rest, None
    # A dso of a deleted file prints as "(/path (deleted))": look before its inner " (".
    search_end = len(rest) - len(_DELETED) if rest.endswith(_DELETED) else len(rest)
    opening = rest.rfind(" (", 0, search_end)
    if opening < 0:
        return rest, None
    return rest[:opening], rest[opening + 2 : -1]


def _strip_offset(symbol: str) -> str:
    base, plus, offset = symbol.rpartition("+0x")
    return base if plus and _is_hex(offset) else symbol


def _is_kernel_frame(address: str, dso: str | None) -> bool:
    if dso is not None and dso.startswith(KERNEL_DSO):
        return True
    # An [unknown] dso at a kernel address is, in the captures seen, junk that a frame-pointer
    # walk read past the end of a user stack (qemu: ffff8bc2... data addresses): not kernel.
    return dso != UNKNOWN_SYMBOL and int(address, 16) >= KERNEL_ADDRESS_MIN


def _event_part(tail: str) -> str:
    """``event: rest`` from what follows the time field, the period (if any) dropped."""
    tail = tail.lstrip(" ")
    first, _, after = tail.partition(" ")
    return after.lstrip(" ") if first.isdigit() else tail


def _parse_event_part(part: str, annotate_kernel: bool) -> tuple[str, str | None] | None:
    """(event, leaf symbol or None) from ``event: [ip sym (dso)]``."""
    event, separator, rest = part.partition(": ")
    if not separator:
        event = part.rstrip()
        if not event.endswith(":"):
            return None
        event, rest = event[:-1], ""
    if not event or " " in event:
        return None
    leaf = frame_name(rest, annotate_kernel) if rest.strip() else None
    return event, leaf


class _OddLines:
    """Lines that are neither header, frame nor blank: counted, a few kept as examples."""

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[str] = []

    def add(self, line: str) -> None:
        self.count += 1
        if len(self.examples) < _ODD_EXAMPLES:
            self.examples.append(line.strip()[:_EXAMPLE_CHARS])

    def diagnostic(self) -> str:
        shown = "; ".join(repr(line) for line in self.examples)
        return f"ignored {self.count} unrecognised line(s), e.g. {shown}"


class _Folder:
    """One pass over `perf script` text; the caches live as long as the pass."""

    def __init__(self, options: FoldOptions):
        self.options = options
        self.headers: list[_Header] = []
        self.header_ids: dict[tuple[str, str], int] = {}
        self.header_ids_by_event: dict[tuple[str, str], int] = {}
        self.header_by_value: dict[_Header, int] = {}
        self.frame_names: dict[str, str] = {}
        self.chains: dict[str, str] = {}  # a block's frame lines -> its chain
        self.samples: list[tuple[int, str]] = []  # (header id, chain) of every sample
        self.odd = _OddLines()
        self.dropped: Counter[str] = Counter()
        self.pid_missing = False

    def feed(self, text: str) -> None:
        blocks = text.split("\n\n")
        last = blocks.pop()
        self._feed_blocks(blocks)
        self._feed_last(last)

    def _feed_blocks(self, blocks: list[str]) -> None:
        """Blocks followed by a blank line: complete samples, normally one each."""
        header_ids = self.header_ids
        known_chain = self.chains.get
        new_chain = self._new_chain
        add_sample = self.samples.append
        for block in blocks:
            header_line, _, frames = block.partition("\n")
            head, _, tail = header_line.partition(": ")
            hid = header_ids.get((head.rstrip(_TIME_CHARS), tail))
            if hid is None:
                hid = self._header_id(header_line)
            if hid is not None:
                chain = known_chain(frames)
                if chain is None:
                    chain = new_chain(frames)
                if chain is not None:
                    add_sample((hid, chain))
                    continue
            self._feed_lines(block.split("\n"), complete=True)

    def _feed_last(self, last: str) -> None:
        """What follows the last blank line: a cut sample, or all of a text without -g."""
        if not last:
            return
        lines = last.split("\n")
        cut_line = lines.pop()  # "" when the text ends with a newline, else a line cut short
        if cut_line and not cut_line.startswith("\t"):
            self.dropped[TRUNCATED] += 1  # a header cut short: a sample of its own
            cut_line = ""
        self._feed_lines(lines, complete=False, cut=bool(cut_line))

    def _header_id(self, line: str) -> int | None:
        """Samples of one thread, CPU and event differ only by time (and by period, with
        hardware events): headers are cached by their text around the time, then by
        thread and event; only new ones are parsed."""
        head, _, tail = line.partition(": ")
        key = (head.rstrip(_TIME_CHARS), tail)
        hid = self.header_ids.get(key)
        if hid is not None:
            return hid
        by_event = (key[0], _event_part(tail))
        hid = self.header_ids_by_event.get(by_event)
        if hid is None:
            hid = self._new_header(line)
            if hid is None or key[0] == head:  # not a header, or no time before the ": "
                return hid
            self.header_ids_by_event[by_event] = hid
        if len(self.header_ids) < _HEADER_CACHE_MAX:
            self.header_ids[key] = hid
        return hid

    def _new_header(self, line: str) -> int | None:
        parsed = _HEADER.fullmatch(line)
        if parsed is None:
            return None
        thread = _WHO.fullmatch(parsed["who"])
        event = _parse_event_part(_event_part(parsed["tail"]), self.options.annotate_kernel)
        if thread is None or event is None:
            return None
        cpu = int(thread["cpu"]) if thread["cpu"] is not None else NO_CPU
        header = _Header(cpu, self._comm_frame(thread), *event)
        hid = self.header_by_value.get(header)
        if hid is None:
            hid = self.header_by_value[header] = len(self.headers)
            self.headers.append(header)
        return hid

    def _comm_frame(self, thread: re.Match[str]) -> str:
        options = self.options
        if not options.include_comm:
            return ""
        frame = thread["comm"].replace(" ", "_")
        tid = thread["tid"] or thread["first"]
        if options.include_pid:
            if thread["tid"] is None:
                self.pid_missing = True
            frame += "-" + thread["first"]
        if options.include_tid:
            frame += ("/" if options.include_pid else "-") + tid
        return frame

    def _new_chain(self, frames: str) -> str | None:
        """Folded chain (root first) of a block's frame lines; None if one is not a frame."""
        if not frames:
            return ""
        lines = frames.split("\n")
        names = list(map(self.frame_names.get, lines))
        if not all(names):
            for index, name in enumerate(names):
                if name is None:
                    name = names[index] = self._tab_frame_name(lines[index])
                    if name is None:
                        return None
        names.reverse()
        chain = self.chains[frames] = ";".join(cast(list[str], names))
        return chain

    def _tab_frame_name(self, line: str) -> str | None:
        name = self.frame_names.get(line)
        if name is None and line.startswith("\t"):
            name = frame_name(line, self.options.annotate_kernel)
            if name is not None:
                self.frame_names[line] = name
        return name

    def _feed_lines(self, lines: list[str], complete: bool, cut: bool = False) -> None:
        """Line by line, for blocks the fast path could not take."""
        sample = _OpenSample(self)
        for line in lines:
            if not line.strip():
                sample.end()
                continue
            name = self._tab_frame_name(line)
            if name is not None:
                sample.add_frame(name)
                continue
            hid = self._header_id(line)
            if hid is not None:
                sample.end()
                sample.start(hid)
                continue
            name = frame_name(line, self.options.annotate_kernel) if line[0].isspace() else None
            if name is not None:
                sample.add_frame(name)
            else:
                self.odd.add(line)
        self._end_last(sample, complete, cut)

    def _end_last(self, sample: _OpenSample, complete: bool, cut: bool) -> None:
        if complete or not sample.is_open:
            sample.end()
        # perf prints a blank line after every call chain: without one, a sample is whole
        # only in a recording without call chains (whose header line then names the symbol),
        # and only if its line is whole.
        elif sample.frames or cut or self._any_chain() or not self._has_leaf(sample):
            sample.drop(HEADLESS if sample.headless else TRUNCATED)
        else:
            sample.end()

    def _has_leaf(self, sample: _OpenSample) -> bool:
        return sample.header >= 0 and bool(self.headers[sample.header].leaf)

    def _any_chain(self) -> bool:
        return any(chain for _, chain in self.samples)

    def count(self, hid: int, chain: str) -> None:
        self.samples.append((hid, chain))

    def result(self) -> FoldResult:
        stacks: dict[int, dict[str, int]] = {}
        events: Counter[str] = Counter()
        chainless = 0
        for (hid, chain), count in Counter(self.samples).items():
            header = self.headers[hid]
            per_cpu = stacks.setdefault(header.cpu, {})
            stack = _stack(header, chain)
            per_cpu[stack] = per_cpu.get(stack, 0) + count
            events[header.event] += count
            chainless += 0 if chain else count
        samples = {cpu: sum(per_cpu.values()) for cpu, per_cpu in stacks.items()}
        return FoldResult(
            stacks=stacks,
            samples=samples,
            events=dict(events),
            chainless_samples=chainless,
            dropped_samples=sum(self.dropped.values()),
            odd_lines=self.odd.count,
            diagnostics=tuple(self._diagnostics(sum(samples.values()), chainless, stacks)),
        )

    def _diagnostics(
        self, total: int, chainless: int, stacks: Mapping[int, object]
    ) -> Iterable[str]:
        if total == 0:
            yield NO_SAMPLES
        elif chainless == total:
            yield NO_CALLCHAINS
        elif chainless:
            yield f"{chainless} of {total} samples have no call chain"
        if NO_CPU in stacks:
            yield NO_CPU_FIELD
        if self.pid_missing:
            yield NO_PID_FIELD
        for reason, count in sorted(self.dropped.items()):
            yield f"dropped {count} incomplete sample(s): {reason}"
        if self.odd.count:
            yield self.odd.diagnostic()


def _stack(header: _Header, chain: str) -> str:
    body = chain or header.leaf or ""
    if header.comm and body:
        return header.comm + ";" + body
    # stackcollapse.py would print an empty stack here (no comm, no frames): name it instead.
    return header.comm or body or UNKNOWN_SYMBOL


class _OpenSample:
    """The sample being read on the line-by-line path."""

    def __init__(self, folder: _Folder):
        self.folder = folder
        self.header: int = -1
        self.frames: list[str] = []
        self.headless = False

    @property
    def is_open(self) -> bool:
        return self.header >= 0 or self.headless

    def start(self, hid: int) -> None:
        self.header, self.frames, self.headless = hid, [], False

    def add_frame(self, name: str) -> None:
        if self.header < 0:
            self.headless = True
        self.frames.append(name)

    def end(self) -> None:
        if self.headless:
            self.drop(HEADLESS)
        elif self.header >= 0:
            self.folder.count(self.header, ";".join(reversed(self.frames)))
        self.start(-1)

    def drop(self, reason: str) -> None:
        self.folder.dropped[reason] += 1
        self.start(-1)
