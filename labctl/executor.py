"""Execution (side effects): the only code that walks a plan.

It runs each action on its host's transport, checks read-backs, records what to undo as it
goes, and restores the host's original state at the end — also when a step fails or the user
presses Ctrl-C — unless the scenario keeps its tuning. Processes it started are stopped by PID.
"""

from __future__ import annotations

import shlex
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from labctl import probes
from labctl.cpulist import format_cpulist, parse_cpulist, parse_mask
from labctl.errors import HostError, LabctlError, RunError
from labctl.plan import Action, Plan, Readback, running_command, stop_command, wait_file_command
from labctl.runs import RunDir
from labctl.sections import split_sections

Progress = Callable[[str], None]


class Transport(Protocol):
    def run(self, command: str, *, check: bool = True, timeout: float | None = 60.0) -> Any: ...
    def run_script(self, script: str, *, check: bool = True, timeout: float | None = 120.0) -> Any: ...
    def put_file(self, local: Path, remote_path: str, mode: int | None = None) -> None: ...
    def get_file(self, remote_path: str, local: Path) -> None: ...
    def reset(self) -> None: ...


@dataclass
class StepResult:
    index: int
    host: str
    kind: str
    description: str
    status: str                      # ok | failed | skipped | refused-as-expected | not-run
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


@dataclass
class Outcome:
    steps: list[StepResult]
    restore: list[StepResult]
    interrupted: str | None = None
    error: str | None = None


def observed_value(readback: Readback, output: str) -> Any:
    """Parse a read-back output into the same shape as readback.expected (pure)."""
    if readback.kind == "mask":
        return parse_mask(output)
    if readback.kind == "cpulist":
        return parse_cpulist(output)
    current = probes.parse_ethtool_channels(output).current
    return {k: current.get(k) for k in readback.expected}


def describe_value(value: Any) -> str:
    if isinstance(value, frozenset):
        return format_cpulist(value) or "none"
    return str(value)


class Executor:
    def __init__(self, plan: Plan, transports: dict[str, Transport], run_dir: RunDir,
                 progress: Progress, keep_tuning: bool = False):
        self.plan, self.transports, self.run_dir = plan, transports, run_dir
        self.progress, self.keep_tuning = progress, keep_tuning
        self.undo: list[Undo] = []
        self.pids: dict[str, tuple[str, int]] = {}
        self.steps: list[StepResult] = []

    # ------------------------------------------------------------------ walking the plan
    def execute(self) -> Outcome:
        outcome = Outcome(self.steps, [])
        try:
            self._walk()
        except KeyboardInterrupt:
            outcome.interrupted = "interrupted by the user (SIGINT)"
        except LabctlError as exc:
            outcome.error = str(exc)
        finally:
            with _sigint_deferred(self.progress):
                if outcome.interrupted or outcome.error:
                    self._reset_shells()
                self._stop_processes()
                outcome.restore = self._restore()
            self._save(outcome)
        return outcome

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
        with ThreadPoolExecutor(max_workers=len(batch)) as pool:
            for future in [pool.submit(self._one, index, action) for index, action in batch]:
                future.result()

    def _one(self, index: int, action: Action) -> None:
        started = time.monotonic()
        result = StepResult(index, action.host, action.kind, action.description, "ok",
                            warnings=list(action.warnings))
        self.steps.append(result)
        for warning in action.warnings:
            self.progress(f"warning: {action.host}: {warning}")
        try:
            handler = getattr(self, f"_do_{action.kind}")
            handler(action, result)
        except BaseException:
            if result.status == "ok":
                result.status = "failed"
            raise
        finally:
            result.seconds = round(time.monotonic() - started, 4)

    # ------------------------------------------------------------------ action kinds
    def _do_skip(self, action: Action, result: StepResult) -> None:
        result.status = "skipped"
        self.progress(f"{action.host}: {action.description}")

    def _do_sleep(self, action: Action, result: StepResult) -> None:
        if action.timeout > 0:
            self.progress(action.description)
            time.sleep(action.timeout)

    def _do_change(self, action: Action, result: StepResult) -> None:
        self.progress(f"{action.host}: {action.description}")
        undo = Undo(action.host, action.undo, action.description, action.phase == "tune") if action.undo else None
        if undo:    # before running: an interrupted change may be applied already (undo is idempotent)
            self.undo.append(undo)
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

    def _expected_failure(self, action: Action, res: Any, result: StepResult, undo: Undo | None) -> None:
        if res.exited != 0:
            result.status = "refused-as-expected"
            if undo:
                self.undo.remove(undo)    # nothing changed
            self.progress(f"{action.host}: kernel refused, as expected: {result.output}")
            return
        result.status = "ok"
        result.warnings.append("the kernel accepted a write that was expected to be refused")

    def _check_readback(self, action: Action, result: StepResult) -> None:
        assert action.readback is not None
        out = self.transports[action.host].run(action.readback.command).stdout
        observed = observed_value(action.readback, out)
        result.observed = describe_value(observed)
        if observed != action.readback.expected:
            result.status = "failed"
            raise HostError(action.host, action.readback.command, 0, out,
                            why=f"read-back mismatch after '{action.description}': expected "
                                f"{describe_value(action.readback.expected)}, host has {result.observed}")

    def _do_upload(self, action: Action, result: StepResult) -> None:
        assert action.local and action.remote
        source = resources.files("labctl").joinpath(Path(action.local).name)
        with resources.as_file(source) as local:
            self.transports[action.host].put_file(local, action.remote, 0o755)

    def _do_start(self, action: Action, result: StepResult) -> None:
        assert action.process
        self.progress(f"{action.host}: {action.description}")
        out = self.transports[action.host].run(action.command).stdout.strip()
        if not out.isdigit():
            raise HostError(action.host, action.command, 0, out, why="no PID from a detached start")
        self.pids[action.process] = (action.host, int(out))
        result.observed = out

    def _do_wait_file(self, action: Action, result: StepResult) -> None:
        assert action.remote
        res = self.transports[action.host].run(wait_file_command(action.remote, action.timeout),
                                               check=False, timeout=action.timeout + 10)
        if res.exited != 0:
            log = self._log_tail(action.host, action.remote.rsplit("/", 1)[0] + f"/{action.process}.log")
            raise HostError(action.host, f"wait for {action.remote}", res.exited, log,
                            why=f"{action.process} not ready after {action.timeout:g} s")

    def _do_wait_process(self, action: Action, result: StepResult) -> None:
        assert action.process
        host, pid = self.pids[action.process]
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
        del self.pids[action.process]

    def _do_stop(self, action: Action, result: StepResult) -> None:
        assert action.process
        self.progress(f"{action.host}: {action.description}")
        host, pid = self.pids.pop(action.process)
        res = self.transports[host].run(stop_command(pid, action.timeout, action.signal), check=False,
                                        timeout=action.timeout + 10)
        if res.exited != 0:
            result.warnings.append(f"{action.process} (PID {pid}) needed SIGKILL")

    def _do_fetch(self, action: Action, result: StepResult) -> None:
        assert action.remote and action.local
        target = self.run_dir.path / action.host / action.local
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.transports[action.host].get_file(action.remote, target)
        except LabctlError as exc:
            result.status = "failed"
            result.output = str(exc)

    def _do_snapshot(self, action: Action, result: StepResult) -> None:
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
        return str(res.stdout)

    def _reset_shells(self) -> None:
        for name, transport in self.transports.items():
            try:
                transport.reset()
            except LabctlError as exc:
                self.progress(f"warning: {name}: could not reset the remote shell: {exc}")

    def _stop_processes(self) -> None:
        for name, (host, pid) in list(self.pids.items()):
            self.progress(f"{host}: stopping {name} (PID {pid})")
            try:
                self.transports[host].run(stop_command(pid, 5.0), check=False, timeout=15)
            except LabctlError as exc:
                self.progress(f"warning: {host}: could not stop {name} (PID {pid}): {exc}")
            del self.pids[name]

    def _restore(self) -> list[StepResult]:
        pending = self.undo
        if self.keep_tuning:
            pending = [u for u in self.undo if not u.tuning]
            if len(pending) < len(self.undo):
                self.progress("keep_tuning: the tuning stays on the hosts")
        results = []
        for i, undo in enumerate(reversed(pending)):
            results.append(self._undo_one(i, undo))
        self.undo = []
        return results

    def _undo_one(self, index: int, undo: Undo) -> StepResult:
        result = StepResult(index, undo.host, "restore", f"undo: {undo.description}", "ok")
        started = time.monotonic()
        try:
            res = self.transports[undo.host].run(undo.command, check=False, timeout=60)
            result.output = (res.stdout + res.stderr).strip()
            if res.exited != 0:
                result.status = "failed"
                self.progress(f"warning: {undo.host}: restore step failed: {undo.description}: "
                              f"{result.output}")
        except LabctlError as exc:
            result.status, result.output = "failed", str(exc)
        result.seconds = round(time.monotonic() - started, 4)
        return result

    def _save(self, outcome: Outcome) -> None:
        self.run_dir.write_json("steps.json", {
            "steps": [asdict(s) for s in sorted(outcome.steps, key=lambda s: s.index)],
            "restore": [asdict(s) for s in outcome.restore],
            "interrupted": outcome.interrupted,
            "error": outcome.error,
        })


PARALLEL_KINDS = ("snapshot", "upload", "fetch")


def _parallel_with(batch: list[tuple[int, Action]], candidate: Action) -> bool:
    """Consecutive actions of one kind on different hosts may run at once: snapshots (so
    both hosts are seen in the same instant), uploads, fetches, per-host preparation."""
    first = batch[0][1]
    same_kind = candidate.kind == first.kind and (
        first.kind in PARALLEL_KINDS or (first.phase == candidate.phase == "prepare"))
    return same_kind and candidate.host not in {a.host for _, a in batch}


@contextmanager
def _sigint_deferred(progress: Progress) -> Iterator[None]:
    """While restoring, a second Ctrl-C must not leave the host half-restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: progress("restoring the original state; please wait"))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def require_ok(outcome: Outcome) -> None:
    """Raise for a run that did not complete (after restore has happened)."""
    if outcome.interrupted:
        raise RunError(f"{outcome.interrupted}; the hosts were restored")
    if outcome.error:
        raise RunError(outcome.error)
