"""labctl-sampler: samples a lab host's receive-path counters every interval, on the host.

Layer: side effects (files, processes, signals). Like loadgen.py, this is ONE self-contained
file that labctl copies to lab hosts and starts detached; it uses only the Python standard
library (3.9+ syntax) and imports nothing from labctl:

    sampler.py --output series.raw --interval 1 --deadline 90 \\
        --file interrupts=/proc/interrupts --file softirqs=/proc/softirqs \\
        --command ethtool_stats='ethtool -S eth1' --keep interrupts=37,38,virtio1,eth1

Every `--interval` seconds (against absolute deadlines: no drift) it reads each `--file` whole
and runs each `--command` (split into words like sh does, run without a shell; its stdout is
kept), and appends one record with the raw text of all of them to `--output`. `--keep
NAME=WORD,...` keeps of that part only its first line and the lines a WORD names: the line's
label (the text before its first `:`, e.g. an IRQ number) is a WORD, or a WORD with a letter in
it is anywhere in the line (a device or interface name). So a 256-CPU x 2,000-IRQ
/proc/interrupts (5.8 MB) becomes the header and the NIC's rows (tens of kB a sample): what the
series and the live view use. Lines stay whole and in order. It stops on
SIGTERM, SIGINT or SIGHUP (after one last sample: the end of the window) and by itself
`--deadline` seconds after it started, so a sampler whose labctl died does not run forever.
Signals are blocked while a sample is read and written and only taken while waiting, so a
record is never cut by one; a record cut by a crash (SIGKILL, a full disk) is the file's last,
and a reader keeps every whole record before it.

The file is a stream of records, each one JSON line, some followed by raw bytes:
  {"kind": "start", "format": "labctl-series", "version": 1, "interval": S, "deadline": S,
   "pid": N, "sources": [NAME, ...], "clock_ticks": HZ, "time": UNIX, "mono": MONOTONIC,
   "cpu_user": S, ...: the CPU time of starting Python, as in the end record}
  {"kind": "sample", "seq": N, "time": UNIX, "mono": MONOTONIC, "read_seconds": S,
   "parts": [[NAME, BYTES, STATUS], ...]}  then the parts' raw bytes, in order, then "\\n"
  {"kind": "end", "reason": "signal" | "deadline", "samples": N, "time": ..., "mono": ...,
   "cpu_user": S, "cpu_system": S, "children_user": S, "children_system": S}
STATUS is 0, a command's exit code, or (a file) the errno of the failed read (its bytes are
then empty). `time` is when a sample's reads began; `mono` the same instant on the monotonic
clock (rates are computed from it). Names are those of labctl's snapshot files, so labctl
parses each part with the probe that parses the same file in a snapshot; later versions may
add parts (read-backs) without changing the format.

Exit codes: 0 done (signal or deadline), 1 the output cannot be written, 2 invalid arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import NoReturn

FORMAT = "labctl-series"
VERSION = 1
MIN_INTERVAL = 0.1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
COMMAND_TIMEOUT = 10.0


class Source:
    """One thing read each sample: a file (read whole) or a command (its stdout)."""

    def __init__(self, name: str, path: str = "", argv: list[str] | None = None):
        self.name, self.path, self.argv = name, path, argv
        self.keep: tuple[frozenset[bytes], tuple[bytes, ...]] | None = None   # (labels, words)

    def read(self) -> tuple[bytes, int]:
        data, status = self._read()
        if self.keep is not None and status == 0:
            data = kept_lines(data, *self.keep)
        return data, status

    def _read(self) -> tuple[bytes, int]:
        if self.argv is None:
            return read_file(self.path)
        try:
            done = subprocess.run(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT, check=False)
        except (OSError, subprocess.SubprocessError):
            return b"", 127
        return done.stdout, done.returncode


def read_file(path: str) -> tuple[bytes, int]:
    """The whole file (procfs files report size 0: read until EOF), or (b"", errno)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as err:
        return b"", err.errno or 1
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as err:
        return b"", err.errno or 1
    finally:
        os.close(fd)
    return b"".join(chunks), 0


def kept_lines(data: bytes, labels: frozenset[bytes], words: tuple[bytes, ...]) -> bytes:
    """The first line, and each other line whose label is in `labels` or that holds a word."""
    lines = data.splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:]
                        if line.split(b":", 1)[0].strip() in labels or any(w in line for w in words)]
    return b"".join(kept)


def keep_arg(text: str) -> tuple[str, frozenset[bytes], tuple[bytes, ...]]:
    """NAME=WORD,... -> (name, every word as a label, the words with a letter)."""
    name, sep, value = text.partition("=")
    words = [w for w in value.split(",") if w]
    if not sep or not name or not words:
        raise argparse.ArgumentTypeError(f"expected NAME=WORD[,WORD...], got {text!r}")
    encoded = [w.encode() for w in words]
    return name, frozenset(encoded), tuple(w for w in encoded if not w.isdigit())


def json_line(record: dict[str, object]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def sample_chunks(seq: int, sources: list[Source]) -> list[bytes]:
    """One sample record as the buffers to write in turn (no copy of a big file's text)."""
    wall, mono = time.time(), time.monotonic()
    parts = [(source.name, *source.read()) for source in sources]
    header = {"kind": "sample", "seq": seq, "time": wall, "mono": mono,
              "read_seconds": round(time.monotonic() - mono, 6),
              "parts": [[name, len(data), status] for name, data, status in parts]}
    return [json_line(header), *(data for _, data, _ in parts), b"\n"]


def sample_record(seq: int, sources: list[Source]) -> bytes:
    """One sample record as bytes."""
    return b"".join(sample_chunks(seq, sources))


def cpu_times() -> dict[str, float]:
    """CPU seconds used so far by this process and by the commands it ran (getrusage: finer
    than os.times' clock ticks)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"cpu_user": own.ru_utime, "cpu_system": own.ru_stime,
            "children_user": children.ru_utime, "children_system": children.ru_stime}


def end_record(reason: str, samples: int) -> bytes:
    return json_line({"kind": "end", "reason": reason, "samples": samples, "time": time.time(),
                      "mono": time.monotonic(), **cpu_times()})


def write_all(fd: int, data: bytes | list[bytes]) -> None:
    """Write every buffer, in order (os.writev: one call for a whole record, as a rule)."""
    views = [memoryview(data)] if isinstance(data, bytes) else [memoryview(b) for b in data if b]
    while views:
        written = os.writev(fd, views[:64])
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def run(output: str, interval: float, deadline: float, sources: list[Source]) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    started = time.monotonic()
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    except OSError as err:
        print(f"labctl-sampler: cannot write {output}: {err}", file=sys.stderr)
        return 1
    write_all(fd, json_line({
        "kind": "start", "format": FORMAT, "version": VERSION, "interval": interval,
        "deadline": deadline, "pid": os.getpid(), "sources": [s.name for s in sources],
        "clock_ticks": os.sysconf("SC_CLK_TCK"), "time": time.time(), "mono": started,
        **cpu_times()}))
    seq, reason = 0, "deadline"
    while True:
        write_all(fd, sample_chunks(seq, sources))
        seq += 1
        now = time.monotonic()
        if now - started >= deadline:
            break
        ticks = int((now - started) / interval) + 1        # skip ticks a slow sample missed
        wait = max(0.0, min(started + ticks * interval, started + deadline) - now)
        if signal.sigtimedwait(STOP_SIGNALS, wait) is not None:
            write_all(fd, sample_chunks(seq, sources))     # the end of the window
            seq, reason = seq + 1, "signal"
            break
    write_all(fd, end_record(reason, seq))
    os.close(fd)
    return 0


def source_arg(kind: str) -> Callable[[str], Source]:
    def parse(text: str) -> Source:
        name, sep, value = text.partition("=")
        if not sep or not name or not value:
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
        if kind == "file":
            return Source(name, path=value)
        try:
            argv = shlex.split(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{name}: {err}") from None
        return Source(name, argv=argv)
    return parse


def _number_arg(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def interval_arg(text: str) -> float:
    value = _number_arg(text)
    if not value >= MIN_INTERVAL:
        raise argparse.ArgumentTypeError(f"at least {MIN_INTERVAL} s, got {text}")
    return value


def positive_arg(text: str) -> float:
    value = _number_arg(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="labctl-sampler", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="the sample file (created or truncated)")
    parser.add_argument("--interval", type=interval_arg, default=1.0, help="seconds between samples")
    parser.add_argument("--deadline", type=positive_arg, required=True,
                        help="stop by itself this many seconds after starting")
    parser.add_argument("--file", dest="sources", action="append", type=source_arg("file"),
                        default=[], metavar="NAME=PATH", help="a file read whole each sample")
    parser.add_argument("--command", dest="sources", action="append", type=source_arg("command"),
                        metavar="NAME=COMMAND", help="a command run each sample (its stdout)")
    parser.add_argument("--keep", action="append", type=keep_arg, default=[], metavar="NAME=WORD,...",
                        help="keep of part NAME only its first line and the lines the words name")
    args = parser.parse_args(argv)
    names = [source.name for source in args.sources]
    if not names:
        parser.error("give at least one --file or --command")
    if len(set(names)) != len(names):
        parser.error(f"a source name given twice: {names}")
    by_name = {source.name: source for source in args.sources}
    for name, labels, words in args.keep:
        if name not in by_name:
            parser.error(f"--keep {name}: no such part (parts: {', '.join(names)})")
        by_name[name].keep = (labels, words)
    return args


def main(argv: list[str] | None = None) -> NoReturn:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.exit(run(args.output, args.interval, args.deadline, args.sources))


if __name__ == "__main__":
    main()
