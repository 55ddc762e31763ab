"""Execution (side effects): the only code that walks a plan.

It runs each action on its host's transport, checks read-backs, records what to undo as it
goes (``labctl.execution.restorer`` journals it in the run directory), and restores the host's original
state at the end — also when a step fails, the SSH connection drops, or the user presses Ctrl-C
or sends SIGTERM — unless the scenario keeps its tuning. Processes it started are stopped by
PID; one that ended before labctl stopped it (killed on the host) fails the run.
"""

from __future__ import annotations

import shlex
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any, Protocol, assert_never

from labctl.cpulist import format_cpulist
from labctl.errors import HostError, LabctlError, RunError, RunInterrupted, Terminated
from labctl.execution import failpoints
from labctl.execution.restorer import Restorer, StepResult, Undo
from labctl.host.sections import split_sections
from labctl.packaged import agent_file
from labctl.plan.actions import (
    Action,
    Change,
    Fetch,
    Plan,
    Skip,
    Sleep,
    Snapshot,
    Start,
    Stop,
    Upload,
    WaitFile,
    WaitProcess,
)
from labctl.plan.rss import table_text
from labctl.runfiles.models import StepRecord, StepsRecord
from labctl.runfiles.rundir import RunDir
from labctl.shell import running_command, stop_command, wait_file_command
from labctl.transport.base import CommandResult, Transport

Progress = Callable[[str], None]


@dataclass
class Outcome:
    steps: list[StepResult]
    restore: list[StepResult]
    interrupted: str | None = None
    error: str | None = None
    signal: str | None = None                 # SIGINT | SIGTERM, when one stopped the run
    stopped_at: dict[str, Any] | None = None  # the step it stopped in (phase, description)
    pending: list[str] = field(default_factory=list)   # hosts not restored (unreachable)
    run_id: str = ""


def describe_value(value: Any) -> str:
    if isinstance(value, frozenset):
        return format_cpulist(value) or "none"
    if isinstance(value, dict) and "table" in value:      # an RSS read-back: the table as its spread
        return ", ".join(table_text(v) if k == "table" else f"{k} {v}" for k, v in value.items())
    return str(value)


class WindowHook(Protocol):
    """Told when the load window (the wait for the load client) begins and ends: the live
    view. Its failures are its own; the executor ignores them."""

    def opened(self) -> None: ...

    def closed(self) -> None: ...


class Executor:
    def __init__(self, plan: Plan, transports: Mapping[str, Transport], run_dir: RunDir,
                 progress: Progress, keep_tuning: bool = False, window: WindowHook | None = None):
        self.plan, self.transports, self.run_dir = plan, transports, run_dir
        self.window = window
        self.progress, self.keep_tuning = progress, keep_tuning
        self.restorer = Restorer(transports, run_dir, progress)
        self.steps: list[StepResult] = []
        self.lost: list[str] = []           # processes that ended before labctl stopped them
        self.current: Action | None = None
        self.passed: set[str] = set()       # checkpoints (labctl.execution.failpoints) passed so far

    # ------------------------------------------------------------------ walking the plan
    def execute(self) -> Outcome:
        outcome = Outcome(self.steps, [], run_id=self.run_dir.run_id)
        try:
            self._walk()
            if self.lost:
                outcome.error = "; ".join(self.lost)
        except KeyboardInterrupt as exc:
            outcome.signal = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
            outcome.interrupted = ("terminated (SIGTERM)" if outcome.signal == "SIGTERM"
                                   else "interrupted by the user (SIGINT)")
        except LabctlError as exc:
            outcome.error = str(exc)
        finally:
            if outcome.interrupted or outcome.error:
                outcome.stopped_at = self._where()
            with _signals_deferred(self.progress) as arrived:
                failpoints.reached("restore")
                if outcome.interrupted or outcome.error:
                    self._reset_shells()
                self.restorer.stop_processes()
                outcome.restore = self.restorer.restore(self.keep_tuning)
            self._late_signal(outcome, arrived)
            if self.restorer.reconnected and not (outcome.error or outcome.interrupted):
                outcome.error = (f"the SSH connection to {', '.join(self.restorer.reconnected)} dropped "
                                 "during the run; labctl reconnected to restore")
                outcome.stopped_at = RESTORE_STEP
            outcome.pending = self.restorer.hosts()
            self._save(outcome)
        return outcome

    def _where(self) -> dict[str, Any] | None:
        action = self.current
        if action is None:
            return None
        return {"phase": action.phase, "host": action.host, "kind": action.kind,
                "step": action.description, "checkpoint": checkpoint_of(action)}

    def _late_signal(self, outcome: Outcome, arrived: list[str]) -> None:
        """A signal during the restore did not stop it; the run still counts as interrupted."""
        if arrived and not outcome.interrupted:
            outcome.signal = arrived[0]
            outcome.interrupted = f"{arrived[0]} while restoring (the restore was completed first)"
            outcome.stopped_at = RESTORE_STEP

    def _walk(self) -> None:
        actions = list(enumerate(self.plan.actions))
        i = 0
        while i < len(actions):
            batch = [actions[i]]
            while i + len(batch) < len(actions) and _parallel_with(batch, actions[i + len(batch)][1]):
                batch.append(actions[i + len(batch)])
            if len(batch) > 1:
                self._parallel(batch)
            else:
                self._one(*batch[0])
            i += len(batch)

    def _parallel(self, batch: list[tuple[int, Action]]) -> None:
        self._checkpoint(batch[0][1])
        with ThreadPoolExecutor(max_workers=len(batch)) as pool:
            for future in [pool.submit(self._one, index, action, False) for index, action in batch]:
                future.result()

    def _checkpoint(self, action: Action) -> None:
        self.current = action
        name = checkpoint_of(action)
        if name is not None and name not in self.passed:
            self.passed.add(name)
            failpoints.reached(name)

    def _one(self, index: int, action: Action, checkpoint: bool = True) -> None:
        if checkpoint:
            self._checkpoint(action)
        started = time.monotonic()
        result = StepResult(index, action.host, action.kind, action.description, "ok",
                            warnings=list(action.warnings))
        self.steps.append(result)
        for warning in action.warnings:
            self.progress(f"warning: {action.host}: {warning}")
        name = checkpoint_of(action)
        if name is not None and isinstance(action, (Change, Start)):
            action = replace(action, command=failpoints.failing(name, action.command))
        try:
            self._dispatch(action, result)
        except BaseException:
            if result.status == "ok":
                result.status = "failed"
            raise
        finally:
            result.seconds = round(time.monotonic() - started, 4)

    # ------------------------------------------------------------------ action kinds
    def _dispatch(self, action: Action, result: StepResult) -> None:
        """Run an action with the handler of its type."""
        match action:
            case Change():
                self._do_change(action, result)
            case Skip():
                self._do_skip(action, result)
            case Sleep():
                self._do_sleep(action, result)
            case Upload():
                self._do_upload(action, result)
            case Start():
                self._do_start(action, result)
            case WaitFile():
                self._do_wait_file(action, result)
            case WaitProcess():
                self._do_wait_process(action, result)
            case Stop():
                self._do_stop(action, result)
            case Fetch():
                self._do_fetch(action, result)
            case Snapshot():
                self._do_snapshot(action, result)
            case _:
                assert_never(action)

    def _do_skip(self, action: Skip, result: StepResult) -> None:
        result.status = "skipped"
        self.progress(f"{action.host}: {action.description}")

    def _do_sleep(self, action: Sleep, result: StepResult) -> None:
        if action.seconds > 0:
            self.progress(action.description)
            time.sleep(action.seconds)

    def _do_change(self, action: Change, result: StepResult) -> None:
        self.progress(f"{action.host}: {action.description}")
        undo = Undo(action.host, action.undo, action.description, action.phase == "tune") if action.undo else None
        if undo:    # before running: an interrupted change may be applied already (undo is idempotent)
            self.restorer.record_undo(undo)
        res = self.transports[action.host].run(action.command, check=False, timeout=action.timeout)
        result.output = (res.stdout + res.stderr).strip()
        if action.expect_failure:
            self._expected_failure(action, res, result, undo)
            return
        if res.exited != 0:
            result.status = "failed"
            raise HostError(action.host, action.command, res.exited, result.output)
        if action.readback:
            self._check_readback(action, result)

    def _expected_failure(self, action: Change, res: CommandResult, result: StepResult,
                          undo: Undo | None) -> None:
        if res.exited != 0:
            result.status = "refused-as-expected"
            if undo:
                self.restorer.forget_undo(undo)    # nothing changed
            self.progress(f"{action.host}: kernel refused, as expected: {result.output}")
            return
        result.status = "ok"
        result.warnings.append("the kernel accepted a write that was expected to be refused")

    def _check_readback(self, action: Change, result: StepResult) -> None:
        assert action.readback is not None
        out = self.transports[action.host].run(action.readback.command).stdout
        observed = action.readback.observed(out)
        result.observed = describe_value(observed)
        if observed != action.readback.expected:
            result.status = "failed"
            raise HostError(action.host, action.readback.command, 0, out,
                            why=f"read-back mismatch after '{action.description}': expected "
                                f"{describe_value(action.readback.expected)}, host has {result.observed}")

    def _do_upload(self, action: Upload, result: StepResult) -> None:
        with agent_file(PurePosixPath(action.local).name) as local:
            self.transports[action.host].put_file(local, action.remote, 0o755)

    def _do_start(self, action: Start, result: StepResult) -> None:
        self.progress(f"{action.host}: {action.description}")
        res = self.transports[action.host].run(action.command, check=False)
        out = res.stdout.strip()
        if out.isascii() and out.isdigit():   # started, even when the command then failed: stop it
            self.restorer.record_process(action.process, action.host, int(out),
                                         self.plan.workdir.get(action.host, ""))
            result.observed = out
        if res.exited != 0:
            raise HostError(action.host, action.command, res.exited, res.stdout + res.stderr)
        if not (out.isascii() and out.isdigit()):
            raise HostError(action.host, action.command, 0, out, why="no PID from a detached start")

    def _do_wait_file(self, action: WaitFile, result: StepResult) -> None:
        res = self.transports[action.host].run(wait_file_command(action.path, action.timeout),
                                               check=False, timeout=action.timeout + 10)
        if res.exited != 0:
            log = self._log_tail(action.host, action.path.rsplit("/", 1)[0] + f"/{action.process}.log")
            raise HostError(action.host, f"wait for {action.path}", res.exited, log,
                            why=f"{action.process} not ready after {action.timeout:g} s")

    def _do_wait_process(self, action: WaitProcess, result: StepResult) -> None:
        if self.window is None or checkpoint_of(action) != "load-window":
            self._wait_process(action)
            return
        _quietly(self.window.opened, self.progress)
        try:
            self._wait_process(action)
        finally:
            _quietly(self.window.closed, self.progress)

    def _wait_process(self, action: WaitProcess) -> None:
        host, pid = self.restorer.processes[action.process]
        transport = self.transports[host]
        started = time.monotonic()
        last_report = started
        while transport.run(running_command(pid), check=False).exited == 0:
            now = time.monotonic()
            if now - started > action.timeout:
                raise HostError(host, running_command(pid), None, "",
                                why=f"{action.process} still running after {action.timeout:g} s")
            if now - last_report >= 2.0:
                self.progress(f"{action.description}: {now - started:.0f} s")
                last_report = now
            time.sleep(0.1)
        self.restorer.forget_process(action.process)
        if action.result_file:
            seconds = time.monotonic() - started
            self._require_result(host, pid, action.process, action.result_file, seconds)

    def _require_result(self, host: str, pid: int, process: str, path: str, seconds: float) -> None:
        """A process that ended without its result file was killed (or crashed)."""
        if self.transports[host].run(f"test -s {shlex.quote(path)}", check=False).exited == 0:
            return
        log = self._log_tail(host, path.rsplit(".", 1)[0] + ".log")
        raise HostError(host, running_command(pid), None, log,
                        why=f"the {process} (PID {pid}) ended after {seconds:.1f} s without "
                            f"writing {path} (killed?)")

    def _do_stop(self, action: Stop, result: StepResult) -> None:
        self.progress(f"{action.host}: {action.description}")
        host, pid = self.restorer.processes[action.process]
        transport = self.transports[host]
        if transport.run(running_command(pid), check=False).exited != 0:
            self.restorer.forget_process(action.process)
            if action.ended_ok:
                result.warnings.append(f"{action.process} (PID {pid}) had ended before it was "
                                       "stopped; its output is kept as far as it goes")
                return
            result.status = "failed"
            result.output = f"{action.process} (PID {pid}) had ended before it was stopped"
            self.lost.append(f"{host}: the {action.process} (PID {pid}) ended before labctl stopped it "
                             "(killed?); its results are missing")
            return
        res = transport.run(stop_command(pid, action.timeout, action.signal), check=False,
                            timeout=action.timeout + 10)
        self.restorer.forget_process(action.process)
        if res.exited != 0:
            result.warnings.append(f"{action.process} (PID {pid}) needed SIGKILL")

    def _do_fetch(self, action: Fetch, result: StepResult) -> None:
        target = self.run_dir.path / action.host / action.local
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.transports[action.host].get_file(action.remote, target)
        except LabctlError as exc:
            result.status = "failed"
            result.output = str(exc)

    def _do_snapshot(self, action: Snapshot, result: StepResult) -> None:
        assert action.local
        res = self.transports[action.host].run_script(action.command)
        sections = split_sections(res.stdout)
        for name, section in sections.items():
            self.run_dir.write_raw(action.host, name, action.local, section.output)
            if section.status != 0:
                result.warnings.append(f"probe {name} exited {section.status}")
        result.observed = f"{len(sections)} probes"

    # ------------------------------------------------------------------ the end
    def _log_tail(self, host: str, path: str) -> str:
        res = self.transports[host].run(f"tail -n 20 {shlex.quote(path)} 2>/dev/null", check=False)
        return res.stdout

    def _reset_shells(self) -> None:
        for name, transport in self.transports.items():
            try:
                transport.reset()
            except LabctlError as exc:
                self.progress(f"warning: {name}: could not reset the remote shell: {exc}")

    def _save(self, outcome: Outcome) -> None:
        self.run_dir.write_model(StepsRecord(
            steps=[step_record(s) for s in sorted(outcome.steps, key=lambda s: s.index)],
            restore=[step_record(s) for s in outcome.restore],
            interrupted=outcome.interrupted, error=outcome.error, signal=outcome.signal,
            stopped_at=outcome.stopped_at, pending_restore=outcome.pending))


def _quietly(call: Callable[[], None], progress: Progress) -> None:
    """Call a window hook; its failure is said and forgotten (it must not fail the run)."""
    try:
        call()
    except Exception as exc:            # the hook's failure, whatever it is, is not the run's
        progress(f"warning: the live view failed: {exc}")


def step_record(step: StepResult) -> StepRecord:
    """A step's result as run files record it."""
    return StepRecord.model_validate(asdict(step))


PARALLEL_TYPES = (Snapshot, Upload, Fetch)
RESTORE_STEP = {"phase": "restore", "host": "-", "kind": "restore", "step": "restore the original state",
                "checkpoint": "restore"}


def _parallel_with(batch: list[tuple[int, Action]], candidate: Action) -> bool:
    """Consecutive actions of one type on different hosts may run at once: snapshots (so
    both hosts are seen in the same instant), uploads, fetches, per-host preparation."""
    first = batch[0][1]
    same_kind = type(candidate) is type(first) and (
        isinstance(first, PARALLEL_TYPES) or (first.phase == candidate.phase == "prepare"))
    return same_kind and candidate.host not in {a.host for _, a in batch}


def checkpoint_of(action: Action) -> str | None:
    """The fault-injection checkpoint (labctl.execution.failpoints) an action stands for, if any."""
    match action:
        case Change(phase="tune"):
            return "tuning"
        case Start(process="client"):
            return "load-start"
        case WaitProcess():
            return "load-window"
        case Snapshot(local="after"):
            return "snapshot"
    return None


@contextmanager
def _signals_deferred(progress: Progress) -> Iterator[list[str]]:
    """While restoring, Ctrl-C or SIGTERM must not leave a host half-restored: they are noted
    (the yielded list gets their names) and the restore goes on."""
    arrived: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return

    def note(signum: int, _frame: Any) -> None:
        arrived.append(signal.Signals(signum).name)
        progress("restoring the original state; please wait")

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield arrived
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def require_ok(outcome: Outcome) -> None:
    """Raise for a run that did not complete (after restore has happened)."""
    restored = ("the hosts were restored" if not outcome.pending else
                f"NOT fully restored on {', '.join(outcome.pending)}: `labctl restore {outcome.run_id}` "
                "finishes it (once the host answers again)")
    if outcome.interrupted:
        raise RunInterrupted(f"{outcome.interrupted}; {restored}", outcome.signal or "SIGINT")
    if outcome.error:
        raise RunError(outcome.error if not outcome.pending else f"{outcome.error}\n{restored}")
