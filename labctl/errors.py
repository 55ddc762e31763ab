"""Error hierarchy (all layers). Only `labctl.cli` turns these into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class LabctlError(Exception):
    """Base of every error labctl raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One validation problem, located in a file."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ValidationError(LabctlError):
    """Every problem found in the input files, reported at once."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.path))
        super().__init__("\n".join(str(p) for p in self.problems))


class HostError(LabctlError):
    """A command failed on a lab host."""

    def __init__(self, host: str, command: str, exit_code: int | None, output: str, why: str = ""):
        self.host, self.command, self.rc, self.output = host, command, exit_code, output
        tail = "\n".join(output.strip().splitlines()[-8:])
        head = why or f"command exited {exit_code}"
        msg = f"{host}: {head}\n  command: {command}"
        if tail:
            msg += "\n  output (tail):\n    " + tail.replace("\n", "\n    ")
        super().__init__(msg)


class TransportError(LabctlError):
    """A host could not be reached, or its identity could not be verified."""


class LabError(LabctlError):
    """A lab provider could not create, inspect or remove the lab."""


class RunError(LabctlError):
    """A run could not be carried out or its artifacts are missing/corrupt."""


class ExpectationsFailed(LabctlError):
    """The run completed but at least one expectation failed."""

    exit_code = 3

    def __init__(self, message: str, outcome: object = None):
        super().__init__(message)
        self.outcome = outcome


class RunInconclusive(LabctlError):
    """The run completed, every DUT check passed, but the load generator fell short of what
    was asked: the run says nothing about the DUT either way."""

    exit_code = 5

    def __init__(self, message: str, outcome: object = None):
        super().__init__(message)
        self.outcome = outcome


class RunInvalid(LabctlError):
    """The run completed, but the tuning it measured drifted during the load window (the drift
    watchdog saw a read-back change): its measurements are not the scenario's."""

    exit_code = 6

    def __init__(self, message: str, outcome: object = None):
        super().__init__(message)
        self.outcome = outcome


class CalibrationError(LabctlError):
    """The load generator's ceiling could not be measured (host unreachable, no python3...)."""


class LockError(LabctlError):
    """Another labctl process holds the lab's lock."""

    exit_code = 4


class RunInterrupted(RunError):
    """A run stopped by a signal (after its hosts were restored as far as they could be)."""

    def __init__(self, message: str, signal_name: str):
        super().__init__(message)
        self.exit_code = 143 if signal_name == "SIGTERM" else 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so a run restores its hosts first."""
