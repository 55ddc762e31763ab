"""The live view (side effects over the transport): per-CPU rates of each host, every interval.

Two sources feed it. During a run's load window (`LiveWindow`, the executor's window hook) a
thread reads the bytes each host's sampler appended to its file since the last read
(`tail -c +OFFSET`, through a transport of its own: the run's transports stay the run's), so the
sampler remains the only reader of /proc on the host. `labctl watch` (`watch`) reads the same
/proc files itself, one `cat` per interval, and writes nothing on the host.

A failure of the live view never fails the run: it is said once (through `warn`) and the view
stops; the run goes on with its progress lines.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from labctl.analysis.live import HostView, LiveHost
from labctl.errors import HostError, LabctlError
from labctl.host.facts import HostFacts
from labctl.host.samples import Sample, SampleTail, tail_command, watch_sample, watch_script
from labctl.host.snapshots import SnapshotHost
from labctl.transport.base import Transport

Reader = Callable[[], list[Sample]]
READ_TIMEOUT = 10.0
WINDOW_RECORDS = 3          # read at most this many of the largest records per refresh...
MIN_WINDOW = 256 * 1024     # ...or this many bytes
CLOSE_WAIT = 2.0            # seconds the end of the window waits for the view's thread


class LiveDisplay(Protocol):
    """Where the views go (the terminal, at the edge)."""

    def show(self, views: list[HostView]) -> None: ...

    def stop(self) -> None:
        """The window ended: keep the last table on screen; later lines go below it."""
        ...


def live_host(host: str, facts: HostFacts) -> LiveHost:
    return LiveHost(host, SnapshotHost.of(facts), facts.to_json()["nic"], sorted(facts.cpus_online),
                    facts.isolated)


def sampler_reader(transport: Transport, path: str, tail: SampleTail | None = None) -> Reader:
    """The newest samples a sampler appended to `path` since the last call (whole records
    only). When more came than a few records (a short sampler interval, big /proc files), the
    older ones are skipped on the host: the view needs only the newest."""
    state = tail or SampleTail()

    def read() -> list[Sample]:
        window = max(MIN_WINDOW, WINDOW_RECORDS * state.largest) if state.interval else None
        command = tail_command(path, state.offset, window)
        result = transport.run(command, check=False, timeout=READ_TIMEOUT)
        first, _, encoded = result.stdout.partition("\n")
        if not result.ok or not first.strip().isdigit():
            raise HostError(transport.target.host, command, result.exited, result.output)
        try:
            data = base64.b64decode(encoded)
        except (binascii.Error, ValueError) as exc:
            raise HostError(transport.target.host, command, 0, result.stdout[-200:],
                            why=f"not base64: {exc}") from None
        return state.feed_from(int(first), data)
    return read


def proc_reader(transport: Transport, keep: Sequence[str] = (),
                clock: Callable[[], float] = time.monotonic) -> Reader:
    """One sample of /proc per call, read with one round trip (nothing written); of
    /proc/interrupts only the rows `keep` names (the NIC's)."""
    seq = 0
    script = watch_script(keep)

    def read() -> list[Sample]:
        nonlocal seq
        before = clock()
        output = transport.run_script(script, timeout=READ_TIMEOUT).stdout
        seq += 1
        return [watch_sample(seq, time.time(), (before + clock()) / 2, output)]
    return read


@dataclass
class Followed:
    live: LiveHost
    read: Reader


def refresh(hosts: Sequence[Followed]) -> list[HostView]:
    """Read each host's new samples and return every host's view of its last interval."""
    for host in hosts:
        host.live.update(host.read())
    return [host.live.view() for host in hosts]


def watch(hosts: Sequence[Followed], interval: float, show: Callable[[list[HostView]], None],
          count: int | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """`labctl watch`: a view per interval (the first after one interval), `count` times or
    until interrupted. Returns how many views were shown."""
    refresh(hosts)
    shown = 0
    deadline = time.monotonic()
    while count is None or shown < count:
        deadline += interval
        sleep(max(0.0, deadline - time.monotonic()))
        show(refresh(hosts))
        shown += 1
    return shown


class LiveWindow:
    """The executor's window hook for a run: follows each host's sampler while the load runs.

    `connect` opens the view's own transports (in the view's thread, so a slow connection
    delays nothing); `paths` maps host -> its sampler's file, in display order (DUT first).
    """

    def __init__(self, paths: Mapping[str, str], facts: Mapping[str, HostFacts], interval: float,
                 connect: Callable[[list[str]], Mapping[str, Transport]], display: LiveDisplay,
                 warn: Callable[[str], None]):
        self.paths, self.facts, self.interval = dict(paths), facts, interval
        self.connect, self.display, self.warn = connect, display, warn
        self._stop = threading.Event()
        self._showing = threading.Lock()       # no view is drawn once closed() has begun
        self._thread: threading.Thread | None = None
        self.failed: str | None = None
        self.views = 0                      # how many were shown

    def opened(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="labctl-live-view", daemon=True)
        self._thread.start()

    def closed(self) -> None:
        """Stop showing at once; a read under way (a slow host) ends in the background."""
        self._stop.set()
        with self._showing:
            self.display.stop()
        if self._thread is not None:
            self._thread.join(timeout=CLOSE_WAIT)
            self._thread = None

    def _run(self) -> None:
        transports: Mapping[str, Transport] = {}
        try:
            transports = self.connect(list(self.paths))
            hosts = [Followed(live_host(h, self.facts[h]), sampler_reader(transports[h], p))
                     for h, p in self.paths.items()]
            while not self._stop.wait(self.interval):
                views = refresh(hosts)
                with self._showing:
                    if self._stop.is_set():
                        break
                    self.display.show(views)
                    self.views += 1
        except Exception as exc:            # whatever it was, the run must not see it
            self.failed = str(exc) or type(exc).__name__
            if not self._stop.is_set():
                self.warn(f"warning: the live view stopped ({self.failed}); the run goes on")
        finally:
            for transport in transports.values():
                try:
                    transport.close()
                except (LabctlError, OSError):
                    pass
