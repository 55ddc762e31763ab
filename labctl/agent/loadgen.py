"""labctl-loadgen: the UDP/TCP load generator and sink that labctl runs on lab hosts.

Layer: side effects (sockets, processes, signals, files). This file is copied to lab hosts
and run there as ``python3 loadgen.py server|client ...``: it is ONE self-contained file that
uses only the Python standard library (3.9+ syntax) and imports nothing from labctl. The
console script ``labctl-loadgen`` points at ``main``.

It replaces the blog's golang-loadgen (a client that opens a new connection per message at
a fixed rate, a server that reads in a loop) with one that can also keep F flows open and
spread them over W worker processes, paces against absolute deadlines, and writes JSON
results:

    loadgen.py server --protocol udp --bind 0.0.0.0 --port 8080 --workers 2 --cpus 6,7 \\
        --result server.json --ready-file server.ready          # until SIGTERM / SIGINT
    loadgen.py client --protocol udp --host 192.168.123.10 --port 8080 --rate 2000 \\
        --duration 24 --payload 64 --flows 8 --workers 4 --result client.json

Processes: the parent forks the workers, talks to each over a socketpair (JSON lines:
ready, go, result, error), forwards SIGTERM/SIGINT/SIGHUP to them, gathers their counts
and writes the result file (atomically). Workers die with the parent (PR_SET_PDEATHSIG).

Wire format: every message starts with an 8-byte header ``!2sHI`` = magic ``LG``, total
message length (header included), sequence number (mod 2**32; 0 in ``--max`` mode, whose
messages are pre-built). The UDP server counts datagrams without parsing them; the TCP
server frames the stream with the header to count messages.

Result files (JSON, written atomically when the run ends):
  server: {format, role, protocol, bind, port, received, bytes, errors, started, stopped,
           duration, rate_achieved, interval, drops (udp: socket buffer overflows) |
           connections (tcp),
           workers: [{pid, cpus, received, bytes, errors, connections, drops,
                      cpu_time_user, cpu_time_system, intervals}]}
  client: {format, role, protocol, host, port, mode (paced|max), asked_rate, asked_duration,
           payload, flows (null with --new-socket-per-message), new_socket_per_message,
           duration, sent, bytes, errors, achieved_rate, started, stopped, interval,
           workers: [{pid, cpus, flows, source_ports, rate, sent, bytes, errors, duration,
                      achieved_rate, intervals}]}
  started/stopped are Unix times; "received" counts datagrams (udp) or whole messages (tcp).
  format 2 (absent: 1, which has no "interval" and no "intervals") adds each worker's
  per-interval counts: intervals = {seconds, started, stopped, counts}: counts[k] is what the
  worker sent (client) or received (server) from started + k * seconds to the next boundary
  (the last one ends at stopped, Unix times of the worker's window: from its "go" for a
  client, from its "ready" for a server); sum(counts) is its sent / received. The worker
  reads the clock after every message received (server) or every batch sent (client), so a
  count lands in its interval to within a batch (at most 256 messages).
  A run with a failed worker still writes its file, with "failures", and exits 1.
The ready file (server) holds {pid, protocol, port, workers: [pids]}: SIGTERM that pid.

Exit codes: 0 done, 1 runtime failure (port in use, worker crashed), 2 invalid arguments.
Errors while sending/receiving (ECONNREFUSED, ECONNRESET, ...) are counted, not fatal.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import (
    Any,
    NoReturn,
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

HEADER = struct.Struct("!2sHI")
MAGIC = b"LG"
MAX_UDP_PAYLOAD = 65507
MAX_MESSAGE = 65535
MAX_WORKERS = 512
MAX_FLOWS = 60000

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
READY_TIMEOUT = 30.0  # seconds the parent waits for every worker to bind/connect
STOP_GRACE = 5.0  # seconds a worker gets to report after SIGTERM, before SIGKILL
START_MARGIN = 0.05  # the common client start lies this far after the "go" message
PACED_MAX_BATCH = 256  # messages sent back to back when behind schedule, between clock reads
MAX_MODE_BATCH = 64  # messages per flow between clock reads in --max mode
TCP_MAX_BLOCK = 64  # messages joined into one write per flow in TCP --max mode
DRAIN_LIMIT = 65536  # datagrams read after a stop request from what is already queued
DRAIN_SECONDS = 2.0  # at most this long reading what TCP peers had sent before the stop
CONNECT_TIMEOUT = 3.0  # seconds a long-lived TCP flow waits for its connect
RESULT_FORMAT = 2  # 2: per-interval counts per worker ("intervals"); 1 had none
DEFAULT_INTERVAL = 1.0  # seconds per interval of the workers' counts
CLOCK_CHECKS = 64  # clock reads per interval the UDP server aims at (after every datagram below)
MAX_CHECK_EVERY = 4096  # datagrams at most between two of its clock reads

Message = dict[str, Any]
SendFunction = Callable[[Any], Any]


class UsageError(Exception):
    """Invalid command-line arguments (exit 2)."""


class LoadgenError(Exception):
    """A runtime failure that ends the run (exit 1)."""


class _Stop(BaseException):
    """Raised inside a worker by its SIGTERM/SIGINT/SIGHUP handler (once)."""


# ---------------------------------------------------------------------------------------
# Configuration (pure)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    """What `loadgen.py server` was asked to do."""

    protocol: str
    bind: str
    port: int
    workers: int
    cpus: tuple[int, ...] | None
    duration: float | None
    result: str
    ready_file: str | None
    interval: float = DEFAULT_INTERVAL


@dataclass(frozen=True)
class ClientConfig:
    """What `loadgen.py client` was asked to do (rate is None in --max mode)."""

    protocol: str
    host: str
    port: int
    rate: float | None
    duration: float
    payload: int
    flows: int
    workers: int
    cpus: tuple[int, ...] | None
    new_socket_per_message: bool
    result: str
    interval: float = DEFAULT_INTERVAL


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """Parse a CPU list like "6,7" or "0-3,6" into sorted CPU numbers (non-empty)."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise UsageError(f"--cpus: not a CPU list element: {part!r} (use e.g. 6,7 or 0-3)")
        low, high = int(first), int(last) if last else int(first)
        if high < low:
            raise UsageError(f"--cpus: descending range {part!r}")
        cpus.update(range(low, high + 1))
    return tuple(sorted(cpus))


def messages_due(elapsed: float, rate: float, window: float) -> int:
    """How many messages a schedule of `rate`/s starting at 0 owes after `elapsed` seconds.

    Message k is due at k / rate; only messages due before `window` exist.
    """
    if elapsed < 0:
        return 0
    return min(int(elapsed * rate) + 1, math.ceil(window * rate))


def flows_of_worker(flows: int, workers: int, index: int) -> list[int]:
    """The flow numbers worker `index` owns: flows are dealt round-robin over workers."""
    return list(range(index, flows, workers))


def worker_rate(config: ClientConfig, index: int) -> float:
    """The share of the total rate worker `index` sends (proportional to its flows)."""
    assert config.rate is not None
    if config.new_socket_per_message:
        return config.rate / config.workers
    return config.rate * len(flows_of_worker(config.flows, config.workers, index)) / config.flows


def build_message(size: int, sequence: int = 0) -> bytearray:
    """One message of `size` bytes: the header, then filler."""
    message = bytearray(b"\x55" * size)
    HEADER.pack_into(message, 0, MAGIC, size, sequence & 0xFFFFFFFF)
    return message


class StreamFramer:
    """Counts whole messages in a TCP byte stream, using each message's header."""

    __slots__ = ("remaining", "header")

    def __init__(self) -> None:
        self.remaining = 0  # body bytes still to come of the current message
        self.header = b""  # a header split over reads, so far

    @property
    def in_message(self) -> bool:
        """True while a message has started but not ended."""
        return self.remaining > 0 or bool(self.header)

    def feed(self, data: bytes | memoryview) -> int:
        """Consume `data`; return how many messages it completed. ValueError on garbage."""
        completed, position, size = 0, 0, len(data)
        while position < size:
            if self.remaining:
                taken = min(self.remaining, size - position)
                self.remaining -= taken
                position += taken
                completed += self.remaining == 0
                continue
            if not self.header and size - position >= HEADER.size:
                magic, length, _sequence = HEADER.unpack_from(data, position)
                position += HEADER.size
            else:
                needed = HEADER.size - len(self.header)
                self.header += bytes(data[position : position + needed])
                position += min(needed, size - position)
                if len(self.header) < HEADER.size:
                    break
                magic, length, _sequence = HEADER.unpack(self.header)
                self.header = b""
            if magic != MAGIC or length < HEADER.size:
                raise ValueError(f"not a loadgen message header: {magic!r} length {length}")
            self.remaining = length - HEADER.size
            completed += self.remaining == 0
        return completed


class Ticker:
    """A worker's per-interval counts: the running count at every interval boundary.

    The hot loops keep their own counters; where they read the clock anyway (or, for the
    UDP server, after each datagram) they compare it with `next_at` and call `cross` with
    their running count. A gap (no traffic, a sleep) closes every boundary it spans at the
    same count, so its intervals count 0.
    """

    __slots__ = ("seconds", "origin", "origin_unix", "next_at", "marks", "stopped")

    def __init__(self, seconds: float, origin: float, origin_unix: float | None = None) -> None:
        self.seconds, self.origin = seconds, origin       # origin: time.monotonic()
        self.origin_unix = origin_unix if origin_unix is not None else unix_time_of(origin)
        self.next_at = origin + seconds
        self.marks: list[int] = []
        self.stopped = origin

    def cross(self, now: float, count: int) -> float:
        """Close every boundary up to `now` at `count`; return the next boundary."""
        while now >= self.next_at:
            self.marks.append(count)
            self.next_at = self.origin + self.seconds * (len(self.marks) + 1)
        self.stopped = max(self.stopped, now)
        return self.next_at

    def cross_spread(self, since: float, since_count: int, now: float, count: int) -> float:
        """Close every boundary up to `now`, the `count - since_count` messages that came
        between two clock reads (at `since` and `now`) spread evenly over that time."""
        span = now - since
        while now >= self.next_at:
            share = (self.next_at - since) / span if span > 0 else 1.0
            self.cross(self.next_at, since_count + int((count - since_count) * max(share, 0.0)))
        self.stopped = max(self.stopped, now)
        return self.next_at

    def record(self, total: int) -> Message:
        """The worker's "intervals" (see the module docstring); `total`: its final count."""
        ends = [*self.marks, max(total, self.marks[-1] if self.marks else 0)]
        counts = [end - start for start, end in zip([0, *self.marks], ends)]
        if len(counts) > 1 and counts[-1] == 0 and self.stopped - self.origin <= self.seconds * len(self.marks) + 1e-6:
            counts.pop()            # the window ended on a boundary: no partial interval after it
        return {"seconds": self.seconds, "started": self.origin_unix,
                "stopped": self.origin_unix + (self.stopped - self.origin), "counts": counts}


def unix_time_of(moment: float) -> float:
    """The Unix time of a time.monotonic() reading."""
    return time.time() - (time.monotonic() - moment)


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line) instead of printing usage and exiting."""

    def error(self, message: str) -> Any:
        raise UsageError(message)


def _program_name() -> str:
    """"loadgen.py" when run as a file, "labctl-loadgen" as the console script."""
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "loadgen.py"


def build_parser() -> argparse.ArgumentParser:
    """The `loadgen.py` command line: `server` and `client` subcommands."""
    parser = _ArgumentParser(prog=_program_name(), description="UDP/TCP load generator for labctl")
    commands = parser.add_subparsers(dest="role", required=True, metavar="{server,client}")
    server = commands.add_parser("server", help="receive and count until stopped")
    server.add_argument("--protocol", choices=("udp", "tcp"), required=True)
    server.add_argument("--bind", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    server.add_argument("--port", type=int, required=True)
    server.add_argument("--workers", type=int, default=1, help="processes, one socket each")
    server.add_argument("--cpus", help="pin the server to these CPUs, e.g. 6,7")
    server.add_argument("--duration", type=float, help="seconds (default: until SIGTERM)")
    server.add_argument("--result", required=True, help="JSON result file")
    server.add_argument("--ready-file", help="written once every socket is bound")
    server.add_argument("--interval", type=float, default=DEFAULT_INTERVAL,
                        help="seconds per interval of the per-worker counts (default 1)")
    client = commands.add_parser("client", help="send at a fixed rate for a duration")
    client.add_argument("--protocol", choices=("udp", "tcp"), required=True)
    client.add_argument("--host", required=True)
    client.add_argument("--port", type=int, required=True)
    pace = client.add_mutually_exclusive_group(required=True)
    pace.add_argument("--rate", type=float, help="messages per second, all workers together")
    pace.add_argument("--max", action="store_true", help="send as fast as possible")
    client.add_argument("--duration", type=float, required=True, help="seconds")
    client.add_argument("--payload", type=int, default=64, help="message size in bytes")
    client.add_argument("--flows", type=int, help="sockets (source ports); default --workers")
    client.add_argument("--workers", type=int, default=1, help="sending processes")
    client.add_argument("--cpus", help="pin the client to these CPUs, e.g. 0-3")
    client.add_argument("--new-socket-per-message", action="store_true",
                        help="open and close a socket per message, as golang-loadgen (a new flow each)")
    client.add_argument("--result", required=True, help="JSON result file")
    client.add_argument("--interval", type=float, default=DEFAULT_INTERVAL,
                        help="seconds per interval of the per-worker counts (default 1)")
    return parser


def _check_common(args: argparse.Namespace) -> None:
    """Checks shared by both roles."""
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be 1-65535, got {args.port}")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be 1-{MAX_WORKERS}, got {args.workers}")
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise UsageError(f"--duration must be > 0 seconds, got {args.duration}")
    if not (math.isfinite(args.interval) and args.interval >= 0.01):
        raise UsageError(f"--interval must be >= 0.01 seconds, got {args.interval}")
    result_dir = os.path.dirname(os.path.abspath(args.result))
    if not os.path.isdir(result_dir):
        raise UsageError(f"--result: directory {result_dir} does not exist")


def _server_config(args: argparse.Namespace) -> ServerConfig:
    _check_common(args)
    if args.ready_file and not os.path.isdir(os.path.dirname(os.path.abspath(args.ready_file))):
        raise UsageError(f"--ready-file: directory of {args.ready_file} does not exist")
    return ServerConfig(
        protocol=args.protocol,
        bind=args.bind,
        port=args.port,
        workers=args.workers,
        cpus=parse_cpu_list(args.cpus) if args.cpus is not None else None,
        duration=args.duration,
        result=args.result,
        ready_file=args.ready_file,
        interval=args.interval,
    )


def _check_client(args: argparse.Namespace, flows: int) -> None:
    """Client-only checks: rate, payload size, flows."""
    if args.rate is not None and not (math.isfinite(args.rate) and args.rate > 0):
        raise UsageError(f"--rate must be > 0 messages/s, got {args.rate:g} (use --max for as fast as possible)")
    limit = MAX_UDP_PAYLOAD if args.protocol == "udp" else MAX_MESSAGE
    if not HEADER.size <= args.payload <= limit:
        raise UsageError(f"--payload must be {HEADER.size}-{limit} bytes for {args.protocol}, got {args.payload}")
    if not 1 <= flows <= MAX_FLOWS:
        raise UsageError(f"--flows must be 1-{MAX_FLOWS}, got {flows}")
    if flows < args.workers and not args.new_socket_per_message:
        raise UsageError(f"--flows ({flows}) must be >= --workers ({args.workers}): each worker needs a flow")


def _client_config(args: argparse.Namespace) -> ClientConfig:
    _check_common(args)
    flows = args.flows if args.flows is not None else args.workers
    _check_client(args, flows)
    return ClientConfig(
        protocol=args.protocol,
        host=args.host,
        port=args.port,
        rate=None if args.max else args.rate,
        duration=args.duration,
        payload=args.payload,
        flows=flows,
        workers=args.workers,
        cpus=parse_cpu_list(args.cpus) if args.cpus is not None else None,
        new_socket_per_message=args.new_socket_per_message,
        result=args.result,
        interval=args.interval,
    )


def parse_config(argv: Sequence[str]) -> ServerConfig | ClientConfig:
    """Parse and validate the command line; UsageError on anything invalid."""
    args = build_parser().parse_args(list(argv))
    return _server_config(args) if args.role == "server" else _client_config(args)


# ---------------------------------------------------------------------------------------
# Process plumbing: workers, their channel to the parent, signals
# ---------------------------------------------------------------------------------------


def _send_message(channel: socket.socket, kind: str, data: Message) -> None:
    channel.sendall(json.dumps({"kind": kind, "data": data}).encode() + b"\n")


def _receive_message(channel: socket.socket, pending: bytearray) -> Message:
    """Block until one whole JSON line arrives on `channel` (worker side)."""
    while b"\n" not in pending:
        chunk = channel.recv(65536)
        if not chunk:
            raise LoadgenError("parent went away")
        pending += chunk
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    message: Message = json.loads(line)
    return message


def _raise_stop(signum: int, frame: Any) -> None:
    """Worker stop handler: ignore further stop signals, then unwind the work loop once."""
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    raise _Stop()


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGTERM this worker when the parent dies (best effort)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (ImportError, OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def pin_to_cpus(cpus: tuple[int, ...] | None) -> None:
    """Pin the calling process (and what it forks later) to `cpus`."""
    if cpus is None:
        return
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        raise UsageError(f"--cpus {','.join(map(str, cpus))}: cannot pin to these CPUs ({exc.strerror})") from None


def current_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def raise_file_limit() -> None:
    """Many flows / short connections need many descriptors: lift the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


@dataclass
class WorkerHandle:
    """The parent's view of one worker process."""

    index: int
    pid: int
    channel: socket.socket
    pending: bytearray = field(default_factory=bytearray)
    messages: dict[str, Message] = field(default_factory=dict)
    exited: bool = False


WorkerBody = Callable[[int, socket.socket], None]


def _worker_process(index: int, channel: socket.socket, body: WorkerBody, parent_pid: int) -> NoReturn:
    """Run in the forked child: never returns."""
    code = EXIT_OK
    try:
        _die_with_parent(parent_pid)
        body(index, channel)
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent
        code = EXIT_FAILURE
        try:
            _send_message(channel, "error", {"message": f"{type(exc).__name__}: {exc}"})
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


def _fork_worker(index: int, body: WorkerBody, parent_pid: int, siblings: list[WorkerHandle]) -> WorkerHandle:
    """Fork one worker; if forking fails, kill the ones already forked (`siblings`)."""
    parent_end, child_end = socket.socketpair()
    try:
        pid = os.fork()
    except OSError as exc:
        for sibling in siblings:
            os.kill(sibling.pid, signal.SIGKILL)
            os.waitpid(sibling.pid, 0)
        raise LoadgenError(f"cannot fork worker {index}: {exc.strerror}") from None
    if pid == 0:
        for sibling in siblings:
            sibling.channel.close()
        parent_end.close()
        _worker_process(index, child_end, body, parent_pid)
    child_end.close()
    return WorkerHandle(index, pid, parent_end)


class WorkerPool:
    """Forked workers, the parent's channel to each, and stop forwarding."""

    def __init__(self, handles: list[WorkerHandle]) -> None:
        self.handles = handles
        self.stop_requested_at: float | None = None
        self.problems: list[str] = []
        self._selector = selectors.DefaultSelector()
        for handle in handles:
            self._selector.register(handle.channel, selectors.EVENT_READ, handle)

    @classmethod
    def start(cls, count: int, body: WorkerBody) -> WorkerPool:
        """Fork `count` workers running `body(index, channel)`, stop signals blocked meanwhile."""
        parent_pid = os.getpid()
        handles: list[WorkerHandle] = []
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            for index in range(count):
                handles.append(_fork_worker(index, body, parent_pid, handles))
            pool = cls(handles)
            for stop_signal in STOP_SIGNALS:
                signal.signal(stop_signal, lambda signum, frame: pool.request_stop())
            return pool
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def request_stop(self) -> None:
        """SIGTERM every worker that has not exited yet (idempotent; safe in a handler)."""
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
        for handle in self.handles:
            if not handle.exited:
                try:
                    os.kill(handle.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def broadcast(self, kind: str, data: Message) -> None:
        for handle in self.handles:
            try:
                _send_message(handle.channel, kind, data)
            except OSError:
                pass

    def _pump(self, timeout: float | None) -> None:
        """Read whatever the workers sent within `timeout` seconds."""
        for key, _events in self._selector.select(timeout):
            handle: WorkerHandle = key.data
            try:
                chunk = handle.channel.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                handle.exited = True
                self._selector.unregister(handle.channel)
                continue
            handle.pending += chunk
            while b"\n" in handle.pending:
                line, _, rest = bytes(handle.pending).partition(b"\n")
                handle.pending[:] = rest
                message = json.loads(line)
                handle.messages[message["kind"]] = message["data"]

    def gather(self, kind: str, deadline: float | None) -> bool:
        """Wait until every worker sent `kind`, failed or exited; False at `deadline`/stop."""
        while True:
            waiting = [h for h in self.handles if not (h.exited or kind in h.messages or "error" in h.messages)]
            if not waiting:
                return True
            if kind == "ready" and self.stop_requested_at is not None:
                return False
            limit = deadline
            if self.stop_requested_at is not None:
                stop_limit = self.stop_requested_at + STOP_GRACE
                limit = stop_limit if limit is None else min(limit, stop_limit)
            timeout = None if limit is None else limit - time.monotonic()
            if timeout is not None and timeout <= 0:
                return False
            self._pump(timeout)

    def wait_ready(self) -> bool:
        """Wait until every worker is ready; False (and a noted problem unless stopped) if not."""
        self.gather("ready", time.monotonic() + READY_TIMEOUT)
        if all("ready" in h.messages for h in self.handles):
            return True
        if self.stop_requested_at is None and not any("error" in h.messages for h in self.handles):
            self.problems.append(f"workers not ready within {READY_TIMEOUT:g} s")
        return False

    def collect_results(self, deadline: float | None) -> None:
        """Wait for every result; at `deadline` stop the workers, after the grace kill them."""
        if self.gather("result", deadline):
            return
        self.request_stop()
        if not self.gather("result", None):
            self.kill_remaining()

    def failures(self) -> list[str]:
        """One line per worker that reported an error or no result."""
        lines = list(self.problems)
        for handle in self.handles:
            if "error" in handle.messages:
                lines.append(f"worker {handle.pid}: {handle.messages['error']['message']}")
            elif "result" not in handle.messages:
                lines.append(f"worker {handle.pid}: exited without a result")
        return lines

    def kill_remaining(self) -> None:
        for handle in self.handles:
            if "result" not in handle.messages:
                try:
                    os.kill(handle.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def close(self) -> None:
        """Stop anything still running, reap every worker, close the channels."""
        if any(not h.exited and "result" not in h.messages for h in self.handles):
            self.request_stop()
            if not self.gather("result", time.monotonic() + STOP_GRACE):
                self.kill_remaining()
        for handle in self.handles:
            try:
                os.waitpid(handle.pid, 0)
            except ChildProcessError:
                pass
            handle.channel.close()
        self._selector.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _worker_signals_on() -> None:
    """In a worker: stop signals raise _Stop from now on (they were blocked since fork)."""
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, _raise_stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _worker_signals_off() -> None:
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)


def write_json_atomically(path: str, document: Message) -> None:
    """Write `document` to `path` so that a reader never sees a partial file."""
    temporary = f"{path}.tmp.{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    os.replace(temporary, path)


def _resolve(host: str, port: int, kind: int, passive: bool) -> tuple[int, tuple[Any, ...]]:
    """(family, sockaddr) of host:port."""
    flags = socket.AI_PASSIVE if passive else 0
    try:
        infos = socket.getaddrinfo(host, port, type=kind, flags=flags)
    except socket.gaierror as exc:
        raise LoadgenError(f"cannot resolve {host}: {exc}") from None
    family, _type, _proto, _name, address = infos[0]
    return family, address


# ---------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------


@dataclass
class ServerStats:
    """One server worker's counts (received = datagrams for UDP, messages for TCP)."""

    pid: int
    cpus: list[int]
    received: int = 0
    bytes: int = 0
    errors: int = 0
    connections: int = 0
    drops: int | None = None
    cpu_time_user: float = 0.0
    cpu_time_system: float = 0.0
    last_cpu: int | None = None
    intervals: Message | None = None


def last_cpu() -> int | None:
    """The CPU this process last ran on (field 39 of /proc/self/stat), None where unknown."""
    try:
        with open("/proc/self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[36])
    except (OSError, IndexError, ValueError):
        return None


def bind_server_sockets(config: ServerConfig) -> list[socket.socket]:
    """One SO_REUSEPORT socket per worker, bound (and listening for TCP) in the parent."""
    kind = socket.SOCK_DGRAM if config.protocol == "udp" else socket.SOCK_STREAM
    family, address = _resolve(config.bind, config.port, kind, passive=True)
    _check_port_free(family, kind, address)
    sockets = []
    try:
        for _ in range(config.workers):
            sock = socket.socket(family, kind)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            if kind == socket.SOCK_STREAM:
                sock.listen(4096)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise LoadgenError(f"cannot bind {config.protocol} {config.bind}:{config.port}: {exc.strerror}") from None
    return sockets


def _check_port_free(family: int, kind: int, address: tuple[Any, ...]) -> None:
    """Refuse a port someone already uses: SO_REUSEPORT would silently share its traffic."""
    probe = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
    except OSError as exc:
        raise LoadgenError(f"cannot bind {address[0]}:{address[1]}: {exc.strerror}") from None
    finally:
        probe.close()


def udp_receive_loop(sock: socket.socket, stats: ServerStats, ticker: Ticker) -> None:
    """Count datagrams until _Stop (blocking reads, no parsing), and per interval.

    The clock is read about CLOCK_CHECKS times per interval, not per datagram (a clock read
    is a system call where the vDSO has no usable clocksource, as in a TCG guest): every
    `every` datagrams, `every` following the rate; the datagrams between two reads that
    straddle a boundary are split in proportion to the time on each side (Ticker.cross_spread).
    """
    recv_into, monotonic = sock.recv_into, time.monotonic
    buffer = bytearray(65536)
    received = received_bytes = errors = 0
    next_tick, spacing = ticker.next_at, ticker.seconds / CLOCK_CHECKS
    left = every = 1
    checked_at, checked = monotonic(), 0
    try:
        while True:
            try:
                size = recv_into(buffer)
            except OSError:
                errors += 1
                continue
            received += 1
            received_bytes += size
            left -= 1
            if left:
                continue
            now = monotonic()
            if now >= next_tick:
                next_tick = ticker.cross_spread(checked_at, checked, now, received)
            elapsed = now - checked_at
            if elapsed > 0:
                every = max(1, min(MAX_CHECK_EVERY, int((received - checked) * spacing / elapsed)))
            left, checked_at, checked = every, now, received
    finally:
        ticker.cross_spread(checked_at, checked, monotonic(), received)
        stats.received += received
        stats.bytes += received_bytes
        stats.errors += errors


def udp_drain(sock: socket.socket, stats: ServerStats) -> None:
    """Count what is already queued on the socket (bounded), without blocking."""
    sock.setblocking(False)
    buffer = bytearray(65536)
    for _ in range(DRAIN_LIMIT):
        try:
            size = sock.recv_into(buffer)
        except BlockingIOError:
            return
        except OSError:
            stats.errors += 1
            continue
        stats.received += 1
        stats.bytes += size


def udp_socket_drops(sock: socket.socket) -> int | None:
    """The socket's receive-buffer drops, from /proc/net/udp[6] (None if not found)."""
    inode = str(os.fstat(sock.fileno()).st_ino)
    path = "/proc/net/udp6" if sock.family == socket.AF_INET6 else "/proc/net/udp"
    try:
        with open(path, encoding="ascii") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                if len(fields) >= 13 and fields[9] == inode:
                    return int(fields[12])
    except OSError:
        return None
    return None


def tcp_accept_all(listener: socket.socket, selector: selectors.BaseSelector, stats: ServerStats) -> None:
    """Accept every pending connection and watch it."""
    while True:
        try:
            connection, _peer = listener.accept()
        except BlockingIOError:
            return
        except OSError:
            stats.errors += 1
            return
        connection.setblocking(False)
        stats.connections += 1
        selector.register(connection, selectors.EVENT_READ, StreamFramer())


def tcp_read(
    key: selectors.SelectorKey, selector: selectors.BaseSelector, view: memoryview, stats: ServerStats
) -> None:
    """Read once from a connection; count bytes and whole messages; close at EOF/error."""
    connection: socket.socket = key.fileobj  # type: ignore[assignment]
    framer: StreamFramer = key.data
    try:
        size = connection.recv_into(view)
    except BlockingIOError:
        return
    except OSError:
        stats.errors += 1
        size = 0
    if size:
        stats.bytes += size
        try:
            stats.received += framer.feed(view[:size])
            return
        except ValueError:
            stats.errors += 1
    elif framer.in_message:
        stats.errors += 1  # the peer closed in the middle of a message
    selector.unregister(connection)
    connection.close()


def tcp_serve_once(
    listener: socket.socket,
    selector: selectors.BaseSelector,
    view: memoryview,
    stats: ServerStats,
    timeout: float | None,
) -> int:
    """Handle one round of readiness events; return how many there were."""
    events = selector.select(timeout)
    for key, _mask in events:
        if key.fileobj is listener:
            tcp_accept_all(listener, selector, stats)
        else:
            tcp_read(key, selector, view, stats)
    return len(events)


def tcp_serve(listener: socket.socket, stats: ServerStats, ticker: Ticker) -> None:
    """Accept and read many short or long connections with one epoll until _Stop, then drain.
    Each round of events closes the intervals that ended before it."""
    selector = selectors.DefaultSelector()
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, None)
    view = memoryview(bytearray(262144))
    monotonic = time.monotonic
    try:
        try:
            while True:
                now = monotonic()
                if now >= ticker.next_at:
                    ticker.cross(now, stats.received)
                tcp_serve_once(listener, selector, view, stats, max(0.0, ticker.next_at - now))
        except _Stop:
            pass
        drain_until = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < drain_until and tcp_serve_once(listener, selector, view, stats, 0):
            pass
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()


def _server_worker(index: int, channel: socket.socket, sockets: list[socket.socket], config: ServerConfig) -> None:
    """Body of one server worker: report ready, count until stopped, report the result."""
    sock = sockets[index]
    for other in sockets:
        if other is not sock:
            other.close()
    pin_to_cpus(config.cpus)
    stats = ServerStats(pid=os.getpid(), cpus=current_cpus())
    ticker = Ticker(config.interval, time.monotonic())
    try:
        _worker_signals_on()
        _send_message(channel, "ready", {"pid": stats.pid, "cpus": stats.cpus})
        ticker = Ticker(config.interval, time.monotonic())
        if config.protocol == "udp":
            udp_receive_loop(sock, stats, ticker)
        else:
            tcp_serve(sock, stats, ticker)
    except _Stop:
        pass
    _worker_signals_off()
    ticker.cross(time.monotonic(), stats.received)
    if config.protocol == "udp":
        udp_drain(sock, stats)
        stats.drops = udp_socket_drops(sock)
    sock.close()
    stats.intervals = ticker.record(stats.received)
    times = os.times()
    stats.cpu_time_user, stats.cpu_time_system = times.user, times.system
    stats.last_cpu = last_cpu()
    _send_message(channel, "result", asdict(stats))


def server_summary(config: ServerConfig, workers: list[Message], started: float, duration: float) -> Message:
    """The server's result document from its workers' counts."""
    received = sum(w["received"] for w in workers)
    summary: Message = {
        "format": RESULT_FORMAT,
        "role": "server",
        "protocol": config.protocol,
        "bind": config.bind,
        "port": config.port,
        "workers": workers,
        "received": received,
        "bytes": sum(w["bytes"] for w in workers),
        "errors": sum(w["errors"] for w in workers),
        "started": started,
        "stopped": started + duration,
        "duration": duration,
        "rate_achieved": received / duration if duration > 0 else 0.0,
        "interval": config.interval,
    }
    if config.protocol == "tcp":
        summary["connections"] = sum(w["connections"] for w in workers)
    else:
        summary["drops"] = sum(w["drops"] or 0 for w in workers)
    return summary


def _write_ready_file(path: str, config: ServerConfig, pool: WorkerPool) -> None:
    workers = [h.pid for h in pool.handles]
    write_json_atomically(path, {"pid": os.getpid(), "protocol": config.protocol, "port": config.port,
                                 "workers": workers})


def run_server(config: ServerConfig) -> int:
    """Bind, fork the workers, count until SIGTERM/SIGINT (or --duration), write the result."""
    pin_to_cpus(config.cpus)
    raise_file_limit()
    sockets = bind_server_sockets(config)
    with WorkerPool.start(config.workers, lambda i, ch: _server_worker(i, ch, sockets, config)) as pool:
        for sock in sockets:
            sock.close()
        ready_at, started = time.monotonic(), time.time()
        if pool.wait_ready():
            if config.ready_file:
                _write_ready_file(config.ready_file, config, pool)
            ready_at, started = time.monotonic(), time.time()
            deadline = ready_at + config.duration if config.duration else None
            pool.collect_results(deadline)
        else:
            pool.collect_results(time.monotonic())
        stopped_at = pool.stop_requested_at or time.monotonic()
    duration = max(0.0, stopped_at - ready_at)
    return _finish(config.result, pool, server_summary(config, _results(pool), started, duration))


def _results(pool: WorkerPool) -> list[Message]:
    return [h.messages["result"] for h in pool.handles if "result" in h.messages]


def _finish(path: str, pool: WorkerPool, summary: Message) -> int:
    """Write the result (with failures, if any); the exit code follows the failures."""
    failures = pool.failures()
    if failures:
        summary["failures"] = failures
    write_json_atomically(path, summary)
    if failures:
        raise LoadgenError("; ".join(failures))
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------


@dataclass
class ClientStats:
    """One client worker's counts."""

    pid: int
    cpus: list[int]
    flows: int
    source_ports: list[int]
    rate: float | None
    sent: int = 0
    bytes: int = 0
    errors: int = 0
    duration: float = 0.0
    achieved_rate: float = 0.0
    intervals: Message | None = None


class TcpFlow:
    """One long-lived TCP connection; reconnects after an error on the next send."""

    def __init__(self, family: int, address: tuple[Any, ...]) -> None:
        self.family, self.address = family, address
        self.sock: socket.socket | None = None
        self.source_port: int | None = None

    def connect(self) -> None:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(self.address)
            sock.settimeout(None)
        except OSError:
            sock.close()
            raise
        self.sock, self.source_port = sock, sock.getsockname()[1]

    def send(self, data: Any) -> None:
        if self.sock is None:
            self.connect()
        try:
            self.sock.sendall(data)  # type: ignore[union-attr]
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _new_socket_sender(family: int, kind: int, address: tuple[Any, ...]) -> SendFunction:
    """golang-loadgen's way: a new socket (a new source port, a new flow) for every message.

    UDP sends with sendto on the unconnected socket, which binds an ephemeral port and routes
    in the same system call: three calls per message instead of four (socket, connect, send,
    close), +30-35 % msg/s in a TCG guest on a quiet host, +4-7 % on a busy one
    (bench/generator_ceiling.py). TCP connects.
    """
    new_socket = socket.socket
    if kind == socket.SOCK_DGRAM:
        def send_datagram(data: Any) -> None:
            sock = new_socket(family, kind)
            try:
                sock.sendto(data, address)
            finally:
                sock.close()
        return send_datagram

    def send(data: Any) -> None:
        sock = new_socket(family, kind)
        try:
            sock.connect(address)
            sock.sendall(data)
        finally:
            sock.close()

    return send


@dataclass
class FlowSet:
    """A worker's send functions (one per flow) and what to close at the end."""

    senders: list[SendFunction]
    closers: list[Callable[[], None]]
    source_ports: list[int]


def open_flows(config: ClientConfig, count: int, errors: list[int]) -> FlowSet:
    """Open `count` flows (sockets) to the server; failed TCP connects are retried on send."""
    kind = socket.SOCK_DGRAM if config.protocol == "udp" else socket.SOCK_STREAM
    family, address = _resolve(config.host, config.port, kind, passive=False)
    if config.new_socket_per_message:
        return FlowSet([_new_socket_sender(family, kind, address)], [], [])
    flows = FlowSet([], [], [])
    for _ in range(count):
        if kind == socket.SOCK_DGRAM:
            sock = socket.socket(family, kind)
            sock.connect(address)
            flows.senders.append(sock.send)
            flows.closers.append(sock.close)
            flows.source_ports.append(sock.getsockname()[1])
            continue
        tcp = TcpFlow(family, address)
        try:
            tcp.connect()
            flows.source_ports.append(tcp.source_port or 0)
        except OSError:
            errors[0] += 1
        flows.senders.append(tcp.send)
        flows.closers.append(tcp.close)
    return flows


def send_paced(
    senders: list[SendFunction], rate: float, start: float, end: float, payload_size: int, stats: ClientStats,
    ticker: Ticker,
) -> None:
    """Send at `rate`/s against absolute deadlines from `start`, round-robin over flows.

    When behind (slow sends, preemption) it sends the owed messages back to back, in batches
    with a clock read in between, and sleeps until the next deadline otherwise.
    """
    message = build_message(payload_size)
    pack_into, monotonic, sleep = HEADER.pack_into, time.monotonic, time.sleep
    flow_count, window = len(senders), end - start
    attempted = sent = errors = 0
    next_tick = ticker.next_at
    try:
        while True:
            now = monotonic()
            if now >= next_tick:
                next_tick = ticker.cross(min(now, end), stats.sent + sent)
            if now >= end:
                break
            owed = messages_due(now - start, rate, window) - attempted
            if owed <= 0:
                sleep(max(0.0, min(start + attempted / rate, end) - now))
                continue
            for _ in range(min(owed, PACED_MAX_BATCH)):
                pack_into(message, 0, MAGIC, payload_size, attempted & 0xFFFFFFFF)
                try:
                    senders[attempted % flow_count](message)
                    sent += 1
                except OSError:
                    errors += 1
                attempted += 1
    finally:
        stats.sent += sent
        stats.errors += errors


def send_max(
    senders: list[SendFunction], end: float, payload: bytes, per_call: int, stats: ClientStats, ticker: Ticker
) -> None:
    """Send a pre-built payload as fast as possible: batches per flow, clock read per batch.

    `per_call` is how many messages one send carries (TCP joins several into one write).
    """
    monotonic = time.monotonic
    batch = range(MAX_MODE_BATCH)
    full_batch = MAX_MODE_BATCH * per_call
    sent = errors = 0
    next_tick = ticker.next_at
    try:
        for send in itertools.cycle(senders):
            now = monotonic()
            if now >= next_tick:
                next_tick = ticker.cross(min(now, end), stats.sent + sent)
            if now >= end:
                break
            index = 0
            try:
                for index in batch:  # noqa: B007 (how far it got is read below)
                    send(payload)
                sent += full_batch
            except OSError:
                sent += index * per_call
                errors += 1
    finally:
        stats.sent += sent
        stats.errors += errors


def _max_payload(config: ClientConfig) -> tuple[bytes, int]:
    """(bytes per send, messages per send) for --max mode."""
    message = bytes(build_message(config.payload))
    if config.protocol == "tcp" and not config.new_socket_per_message:
        return message * TCP_MAX_BLOCK, TCP_MAX_BLOCK
    return message, 1


def _client_send(
    config: ClientConfig, index: int, flows: FlowSet, start: float, end: float, stats: ClientStats, ticker: Ticker
) -> None:
    if config.rate is None:
        payload, per_call = _max_payload(config)
        send_max(flows.senders, end, payload, per_call, stats, ticker)
    else:
        send_paced(flows.senders, worker_rate(config, index), start, end, config.payload, stats, ticker)


def _client_worker(index: int, channel: socket.socket, config: ClientConfig) -> None:
    """Body of one client worker: open flows, report ready, wait for go, send, report."""
    pin_to_cpus(config.cpus)
    my_flows = [] if config.new_socket_per_message else flows_of_worker(config.flows, config.workers, index)
    rate = worker_rate(config, index) if config.rate is not None else None
    stats = ClientStats(pid=os.getpid(), cpus=current_cpus(), flows=len(my_flows), source_ports=[], rate=rate)
    flows = FlowSet([], [], [])
    connect_errors = [0]
    start = end = time.monotonic()
    ticker = Ticker(config.interval, start)
    try:
        _worker_signals_on()
        flows = open_flows(config, len(my_flows), connect_errors)
        stats.source_ports = flows.source_ports
        _send_message(channel, "ready", {"pid": stats.pid})
        go = _receive_message(channel, bytearray())
        start, end = go["data"]["start"], go["data"]["end"]
        ticker = Ticker(config.interval, start, go["data"].get("started"))
        sleep_until(start)
        _client_send(config, index, flows, start, end, stats, ticker)
    except _Stop:
        pass
    _worker_signals_off()
    ticker.cross(min(time.monotonic(), end), stats.sent)
    stats.intervals = ticker.record(stats.sent)
    _finish_client_worker(stats, flows, start, connect_errors[0], config.payload)
    _send_message(channel, "result", asdict(stats))


def _finish_client_worker(stats: ClientStats, flows: FlowSet, start: float, connect_errors: int, payload: int) -> None:
    stats.duration = max(0.0, time.monotonic() - start)
    stats.errors += connect_errors
    stats.bytes = stats.sent * payload
    stats.achieved_rate = stats.sent / stats.duration if stats.duration > 0 else 0.0
    for close in flows.closers:
        close()


def sleep_until(moment: float) -> None:
    """Sleep until time.monotonic() reaches `moment`."""
    remaining = moment - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def client_summary(config: ClientConfig, workers: list[Message], started: float, duration: float) -> Message:
    """The client's result document from its workers' counts."""
    sent = sum(w["sent"] for w in workers)
    return {
        "format": RESULT_FORMAT,
        "role": "client",
        "protocol": config.protocol,
        "host": config.host,
        "port": config.port,
        "mode": "max" if config.rate is None else "paced",
        "asked_rate": config.rate,
        "asked_duration": config.duration,
        "payload": config.payload,
        "flows": None if config.new_socket_per_message else config.flows,  # None: one per message
        "new_socket_per_message": config.new_socket_per_message,
        "duration": duration,
        "sent": sent,
        "bytes": sum(w["bytes"] for w in workers),
        "errors": sum(w["errors"] for w in workers),
        "achieved_rate": sent / duration if duration > 0 else 0.0,
        "workers": workers,
        "started": started,
        "stopped": started + duration,
        "interval": config.interval,
    }


def run_client(config: ClientConfig) -> int:
    """Fork the workers, start them together, send for --duration, write the result."""
    pin_to_cpus(config.cpus)
    raise_file_limit()
    with WorkerPool.start(config.workers, lambda i, ch: _client_worker(i, ch, config)) as pool:
        start = time.monotonic() + START_MARGIN
        started = time.time() + START_MARGIN
        if pool.wait_ready():
            start = time.monotonic() + START_MARGIN
            started = time.time() + START_MARGIN
            end = start + config.duration
            pool.broadcast("go", {"start": start, "end": end, "started": started})
            pool.collect_results(end + STOP_GRACE)
        else:
            pool.collect_results(time.monotonic())
    workers = _results(pool)
    duration = max((w["duration"] for w in workers), default=0.0)
    return _finish(config.result, pool, client_summary(config, workers, started, duration))


# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------


def main(argv: Iterable[str] | None = None) -> int:
    """`loadgen.py server|client ...`: returns the exit code (0 ok, 1 failure, 2 usage)."""
    try:
        config = parse_config(sys.argv[1:] if argv is None else list(argv))
        if isinstance(config, ServerConfig):
            return run_server(config)
        return run_client(config)
    except UsageError as exc:
        print(f"{_program_name()}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LoadgenError as exc:
        print(f"{_program_name()}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:  # result or ready file not writable, ...
        print(f"{_program_name()}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:  # Ctrl-C before the workers were started
        return 130
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
