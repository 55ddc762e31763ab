"""Sample streams (pure): what the on-host sampler reads, and the parser of the file it writes.

`labctl/agent/sampler.py` appends, every interval, one record holding the raw text of a host's
counters (the format is in its docstring). SERIES_SOURCES says where each snapshot probe's
text comes from on the host, so a sample's part named "interrupts" is parsed by the very probe
that parses interrupts.before (labctl.host.snapshots.parse_raw). parse_sample_stream reads a
file cut short by a crash up to its last whole record and says that it was cut.
SampleTail reads the same file as it grows, a piece at a time (the live view), and
watch_script / watch_sample take the same raw texts straight from /proc (`labctl watch`).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from labctl.host.probes import ProbeOutputError
from labctl.host.sections import build_script, split_sections
from labctl.host.snapshots import SNAPSHOT_PROBES, SnapshotHost

FORMAT = "labctl-series"
VERSION = 1
MIN_INTERVAL = 0.1          # seconds; the sampler refuses less too

# Snapshot probe -> the procfs file the sampler reads whole each sample.
SERIES_FILES = {
    "interrupts": "/proc/interrupts",
    "softirqs": "/proc/softirqs",
    "softnet_stat": "/proc/net/softnet_stat",
    "stat": "/proc/stat",
}
SERIES_COMMANDS = ("ethtool_stats",)     # probes the sampler runs as a command each sample


def sampler_sources(probe_names: Iterable[str], host: SnapshotHost) -> list[tuple[str, str, str]]:
    """(kind "file" | "command", name, path or command) for each probe a scenario snapshots
    (a command is the probe's own, quoted there)."""
    sources: list[tuple[str, str, str]] = []
    for name in dict.fromkeys(probe_names):
        if name in SERIES_FILES:
            sources.append(("file", name, SERIES_FILES[name]))
        elif name in SERIES_COMMANDS and host.interface:
            sources.append(("command", name, SNAPSHOT_PROBES[name](host).command))
    return sources


@dataclass(frozen=True)
class Sample:
    """One record: when its reads began (Unix and monotonic time), each part's text and status."""

    seq: int
    time: float
    mono: float
    read_seconds: float
    texts: dict[str, str]
    status: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleStream:
    """A parsed sample file. `end` is the sampler's end record (its CPU time), None when the
    file stops before it; `truncated` says a partial record at the end was dropped."""

    interval: float
    sources: tuple[str, ...]
    samples: tuple[Sample, ...]
    start: dict[str, Any]
    end: dict[str, Any] | None
    truncated: bool

    @property
    def complete(self) -> bool:
        return self.end is not None and not self.truncated

    @property
    def cpu_seconds(self) -> float | None:
        """The sampler's own CPU time and its commands' (ethtool), from its end record."""
        return None if self.end is None else _cpu(self.end)

    @property
    def sampling_cpu_seconds(self) -> float | None:
        """cpu_seconds without what starting Python cost (the start record's CPU time)."""
        return None if self.end is None else max(0.0, _cpu(self.end) - _cpu(self.start))


def _cpu(record: dict[str, Any]) -> float:
    keys = ("cpu_user", "cpu_system", "children_user", "children_system")
    return float(sum(float(record.get(key, 0.0)) for key in keys))


def _record(data: bytes, pos: int) -> tuple[dict[str, Any], int] | None:
    """The JSON line at `pos` and the position after it; None if the line is not whole."""
    newline = data.find(b"\n", pos)
    if newline < 0:
        return None
    try:
        record = json.loads(data[pos:newline])
    except (ValueError, UnicodeDecodeError):
        return None
    return (record, newline + 1) if isinstance(record, dict) else None


Parts = tuple[dict[str, str], dict[str, int], int]     # texts, statuses, the position after them


def _parts(record: dict[str, Any], data: bytes, pos: int) -> Parts | None:
    """A record's parts, read from the bytes after its line; None if cut short or corrupt."""
    texts: dict[str, str] = {}
    status: dict[str, int] = {}
    try:
        for name, size, code in record["parts"]:
            if int(size) < 0 or pos + int(size) > len(data):
                return None
            texts[str(name)] = data[pos:pos + int(size)].decode("utf-8", "replace")
            status[str(name)] = int(code)
            pos += int(size)
    except (KeyError, TypeError, ValueError):
        return None
    if data[pos:pos + 1] != b"\n":
        return None
    return texts, status, pos + 1


def _sample(record: dict[str, Any], texts: dict[str, str], status: dict[str, int]) -> Sample | None:
    try:
        return Sample(int(record["seq"]), float(record["time"]), float(record["mono"]),
                      float(record.get("read_seconds", 0.0)), texts, status)
    except (KeyError, TypeError, ValueError):
        return None


def parse_sample_stream(data: bytes) -> SampleStream:
    """Every whole record of a sampler's file, in order; a cut or corrupt tail is dropped."""
    first = _record(data, 0)
    if first is None or first[0].get("kind") != "start" or first[0].get("format") != FORMAT:
        raise ProbeOutputError("series: not a labctl sample file (no start record)")
    start, pos = first
    if int(start.get("version", 0)) > VERSION:
        raise ProbeOutputError(f"series: sample file version {start.get('version')} is newer "
                               f"than this labctl reads ({VERSION})")
    samples: list[Sample] = []
    end: dict[str, Any] | None = None
    while pos < len(data) and end is None:
        found = _record(data, pos)
        if found is None:
            break
        record, after = found
        if record.get("kind") == "end":
            end, pos = record, after
        elif record.get("kind") == "sample" or "parts" in record:
            parts = _parts(record, data, after)
            sample = None if parts is None else _sample(record, parts[0], parts[1])
            if parts is None or (sample is None and record.get("kind") == "sample"):
                break
            if sample is not None and record.get("kind") == "sample":
                samples.append(sample)
            pos = parts[2]
        else:               # a kind of record this version does not know, without parts
            pos = after
    return SampleStream(interval=float(start.get("interval", 0.0)),
                        sources=tuple(str(s) for s in start.get("sources", ())),
                        samples=tuple(samples), start=start, end=end, truncated=pos < len(data))


class SampleTail:
    """A sampler's file read as it grows: `feed` takes the bytes that came after the last read
    and returns the samples they complete; a record not yet whole waits for the next bytes.
    `offset` is how many bytes of the file were read so far (where the next read starts).
    `feed_from` takes bytes that start further on (older samples skipped): reading resumes at
    the first record that begins in them."""

    def __init__(self) -> None:
        self.offset = 0
        self.interval: float | None = None      # from the start record, once read
        self.ended = False
        self.largest = 0                        # the largest record so far, in bytes
        self._pending = b""

    def feed(self, data: bytes) -> list[Sample]:
        self.offset += len(data)
        buffer, pos = self._pending + data, 0
        if self.interval is None:
            first = _record(buffer, 0)
            if first is None:
                self._pending = buffer
                return []
            if first[0].get("kind") != "start" or first[0].get("format") != FORMAT:
                raise ProbeOutputError("series: not a labctl sample file (no start record)")
            self.interval, pos = float(first[0].get("interval", 0.0)), first[1]
        samples, pos = self._records(buffer, pos)
        self._pending = buffer[pos:]
        return samples

    def feed_from(self, offset: int, data: bytes) -> list[Sample]:
        """Bytes of the file from `offset` on; `offset` past what was read skips what is between."""
        if offset <= self.offset or self.interval is None:
            return self.feed(data[self.offset - offset:] if offset <= self.offset else data)
        self.offset, self._pending = offset + len(data), b""
        boundary = data.find(RECORD_START)
        if boundary < 0:
            return []
        samples, pos = self._records(data, boundary + 1)
        self._pending = data[pos:]
        return samples

    def _records(self, buffer: bytes, pos: int) -> tuple[list[Sample], int]:
        samples: list[Sample] = []
        while pos < len(buffer) and not self.ended:
            found = _record(buffer, pos)
            if found is None:
                break
            record, after = found
            if record.get("kind") == "end":
                self.ended, pos = True, after
            elif "parts" in record:
                parts = _parts(record, buffer, after)
                if parts is None:
                    break
                sample = _sample(record, parts[0], parts[1])
                if sample is not None and record.get("kind") == "sample":
                    samples.append(sample)
                self.largest = max(self.largest, parts[2] - pos)
                pos = parts[2]
            else:
                pos = after
        return samples, pos


RECORD_START = b'\n{"kind":"'     # a record's first bytes, after the newline that ends the one before


def tail_command(path: str, offset: int, window: int | None = None) -> str:
    """The size-limited rest of `path`: its first line the offset it starts at (`offset`, or
    the file's size minus `window` when more than `window` bytes came since), then the bytes
    from there, base64-encoded (the transport decodes output as text; sizes count bytes)."""
    start = f"o={int(offset)}"
    if window is not None:
        start += f"; s=$(wc -c < \"$f\") || exit 1; [ $((s - o)) -gt {int(window)} ] && o=$((s - {int(window)}))"
    return f"f={shlex.quote(path)}; {start}; echo \"$o\"; tail -c +$((o + 1)) \"$f\" | base64"


def watch_script(keep: Sequence[str] = ()) -> str:
    """One read-only round trip: the raw text of every /proc file the sampler reads; of
    /proc/interrupts only the lines `keep` names, as the sampler's `--keep` (kept_rows_command)."""
    commands = {name: f"cat {shlex.quote(path)}" for name, path in SERIES_FILES.items()}
    if keep:
        commands["interrupts"] = kept_rows_command(SERIES_FILES["interrupts"], keep)
    return build_script(commands)


KEPT_ROWS_AWK = ('BEGIN { n = split(words, w, " ") } NR == 1 { print; next } '
                 '{ l = $1; sub(/:$/, "", l); if (index(labels, " " l " ")) { print; next } '
                 'for (i = 1; i <= n; i++) if (index($0, w[i])) { print; next } }')


def kept_rows_command(path: str, keep: Sequence[str]) -> str:
    """`awk` that prints of `path` what the sampler's `--keep` keeps: the first line, and each
    line whose label (before its `:`) is a word or that holds a word with a letter in it."""
    labels = " " + " ".join(keep) + " "
    words = " ".join(word for word in keep if not word.isdigit())
    return shlex.join(["awk", "-v", f"labels={labels}", "-v", f"words={words}", KEPT_ROWS_AWK, path])


def watch_sample(seq: int, wall: float, mono: float, output: str) -> Sample:
    """watch_script's output as one sample taken at (wall, mono)."""
    sections = split_sections(output)
    return Sample(seq, wall, mono, 0.0, {n: s.output for n, s in sections.items()},
                  {n: s.status for n, s in sections.items()})
