"""Restoring hosts (side effects: commands over the transports, one journal file per run).

Every change a run makes is journalled in the run directory (``restore.json``) before it is
made, with the command that undoes it, and so is every process it starts. At the end of the
run the undo commands run in reverse order and the processes are stopped by PID. A host whose
SSH connection dropped is reconnected (for up to LABCTL_RECONNECT_SECONDS, default 30 s);
what could not be undone stays in the journal, and ``labctl restore RUN`` finishes the job
when the host answers again.
"""

from __future__ import annotations

import functools
import os
import shlex
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from labctl.errors import LabctlError, TransportError
from labctl.runfiles.models import Journal, ProcessRecord, UndoRecord
from labctl.runfiles.rundir import RunDir
from labctl.shell import stop_command
from labctl.transport.base import Transport

Progress = Callable[[str], None]
JOURNAL = Journal.FILE
T = TypeVar("T")


@dataclass
class StepResult:
    index: int
    host: str
    kind: str
    description: str
    status: str          # ok | failed | skipped | refused-as-expected | not-run | pending
    output: str = ""
    observed: str | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


@dataclass
class Undo:
    host: str
    command: str
    description: str
    tuning: bool          # kept on the host when the scenario says keep_tuning


def reconnect_seconds() -> float:
    return float(os.environ.get("LABCTL_RECONNECT_SECONDS", "30"))


class Restorer:
    """What a run must put back, journalled as it grows; puts it back, reconnecting if needed."""

    def __init__(self, transports: Mapping[str, Transport], run_dir: RunDir, progress: Progress):
        self.transports, self.run_dir, self.progress = transports, run_dir, progress
        self.undo: list[Undo] = []
        self.processes: dict[str, tuple[str, int]] = {}
        self.matches: dict[str, str] = {}    # process -> text its command line holds (PIDs get reused)
        self.kept: list[Undo] = []
        self.unreachable: set[str] = set()
        self.later = False                   # restoring from the journal, after the run ended
        self.reconnected: list[str] = []     # hosts whose connection had to be re-opened
        self.lock = threading.Lock()         # parallel steps (per-host preparation) journal too

    @classmethod
    def from_journal(cls, run_dir: RunDir, transports: Mapping[str, Transport],
                     progress: Progress) -> Restorer:
        restorer = cls(transports, run_dir, progress)
        restorer.later = True
        journal = read_journal(run_dir)
        restorer.undo = [_undo(u) for u in journal.undo + journal.kept]
        for name, process in journal.processes.items():
            restorer.processes[name] = (process.host, process.pid)
            restorer.matches[name] = process.match
        return restorer

    # ------------------------------------------------------------------ the journal
    def record_undo(self, undo: Undo) -> None:
        with self.lock:
            self.undo.append(undo)
            self.save()

    def forget_undo(self, undo: Undo) -> None:
        with self.lock:
            self.undo.remove(undo)
            self.save()

    def record_process(self, name: str, host: str, pid: int, match: str = "") -> None:
        with self.lock:
            self.processes[name] = (host, pid)
            self.matches[name] = match
            self.save()

    def forget_process(self, name: str) -> None:
        with self.lock:
            self.processes.pop(name, None)
            self.matches.pop(name, None)
            self.save()

    def hosts(self) -> list[str]:
        """The hosts something is still to be put back on (or stopped on)."""
        names = [u.host for u in self.undo] + [host for host, _ in self.processes.values()]
        return list(dict.fromkeys(names))

    def save(self) -> None:
        """Write the journal whole or not at all (labctl may be killed at any moment)."""
        self.run_dir.write_model(self.journal(), JOURNAL + ".tmp")
        os.replace(self.run_dir.path / (JOURNAL + ".tmp"), self.run_dir.path / JOURNAL)

    def journal(self) -> Journal:
        return Journal(undo=[_undo_record(u) for u in self.undo],
                       processes={name: ProcessRecord(host=h, pid=pid, match=self.matches.get(name, ""))
                                  for name, (h, pid) in self.processes.items()},
                       kept=[_undo_record(u) for u in self.kept])

    # ------------------------------------------------------------------ putting back
    def stop_processes(self) -> None:
        for name, (host, pid) in list(self.processes.items()):
            self.progress(f"{host}: stopping {name} (PID {pid})")
            command = (stop_own_command(pid, self.matches.get(name, "")) if self.later
                       else stop_command(pid, 5.0))
            run = functools.partial(self.transports[host].run, command, check=False, timeout=15)
            try:
                self.on_host(host, run)
            except LabctlError as exc:
                self.progress(f"warning: {host}: could not stop {name} (PID {pid}): {exc}")
                continue
            self.forget_process(name)

    def restore(self, keep_tuning: bool = False) -> list[StepResult]:
        """Run the pending undo commands, newest first; keep_tuning leaves the tuning on the hosts."""
        if keep_tuning and any(u.tuning for u in self.undo):
            self.kept = [u for u in self.undo if u.tuning]
            self.undo = [u for u in self.undo if not u.tuning]
            self.progress("keep_tuning: the tuning stays on the hosts (`labctl restore "
                          f"{self.run_dir.run_id}` puts it back)")
        results = [self._undo_one(i, undo) for i, undo in enumerate(reversed(list(self.undo)))]
        self.save()
        return results

    def _undo_one(self, index: int, undo: Undo) -> StepResult:
        result = StepResult(index, undo.host, "restore", f"undo: {undo.description}", "ok")
        started = time.monotonic()
        try:
            res = self.on_host(undo.host, lambda: self.transports[undo.host].run(
                undo.command, check=False, timeout=60))
            result.output = (res.stdout + res.stderr).strip()
            if res.exited == 0:
                self.forget_undo(undo)      # journalled at once: labctl may be killed mid-restore
            else:
                result.status = "failed"
                self.progress(f"warning: {undo.host}: restore step failed: {undo.description}: "
                              f"{result.output}")
        except TransportError as exc:
            result.status, result.output = "pending", str(exc)
        except LabctlError as exc:
            result.status, result.output = "failed", str(exc)
        result.seconds = round(time.monotonic() - started, 4)
        return result

    def on_host(self, host: str, call: Callable[[], T]) -> T:
        """``call``, reconnecting to ``host`` while its connection is lost (bounded)."""
        if host in self.unreachable:
            raise TransportError(f"{host}: unreachable (gave up reconnecting earlier)")
        deadline: float | None = None
        while True:
            try:
                value = call()
                if deadline is not None and host not in self.reconnected:
                    self.reconnected.append(host)
                return value
            except TransportError as exc:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + reconnect_seconds()
                    self.progress(f"{host}: connection lost ({exc}); reconnecting to restore it")
                if now >= deadline:
                    self.unreachable.add(host)
                    raise TransportError(f"{host}: unreachable for {reconnect_seconds():g} s: "
                                         f"{exc}") from None
                time.sleep(1.0)
                try:
                    self.transports[host].reset()
                except LabctlError:
                    pass


def stop_own_command(pid: int, match: str) -> str:
    """Stop ``pid`` only while its command line still holds ``match`` (the run's directory):
    by the time `labctl restore` runs, the PID may belong to another process."""
    if not match:
        return stop_command(pid, 5.0)
    return (f"grep -qF -- {shlex.quote(match)} /proc/{pid}/cmdline 2>/dev/null || exit 0; "
            f"{stop_command(pid, 5.0)}")


def read_journal(run_dir: RunDir) -> Journal:
    """The run's journal (an empty one when the run left none)."""
    if not run_dir.has(JOURNAL):
        return Journal()
    return run_dir.read_model(Journal)


def _undo(record: UndoRecord) -> Undo:
    return Undo(record.host, record.command, record.description, record.tuning)


def _undo_record(undo: Undo) -> UndoRecord:
    return UndoRecord(host=undo.host, command=undo.command, description=undo.description,
                      tuning=undo.tuning)
