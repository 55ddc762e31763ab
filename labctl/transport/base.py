"""What a transport to a lab host is (layer transport; pure declarations, no I/O).

``Transport`` is the one interface the upper layers (execution, runner, providers) use to run
commands on a host and move files to and from it; ``CommandResult`` is what a command did.
``labctl.transport.ssh.SshTransport`` implements it over SSH; the unit tests' fake
(``tests/helpers/fakes.py``) implements it from a script of answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from labctl.transport.target import SshTarget


@dataclass(frozen=True)
class CommandResult:
    """What one command did on one host (as invoke's Result): its output, decoded as UTF-8,
    and its exit status (``exited``; -1 when it was cut short by a timeout)."""

    host: str
    command: str
    stdout: str
    stderr: str
    exited: int

    @property
    def ok(self) -> bool:
        return self.exited == 0

    @property
    def output(self) -> str:
        """stdout then stderr, for error messages."""
        joiner = "\n" if self.stdout and not self.stdout.endswith("\n") else ""
        return self.stdout + joiner + self.stderr


@runtime_checkable
class Transport(Protocol):
    """A connection to one lab host. Commands run one at a time in ``sh``, stdin at EOF.

    ``check``: a non-zero exit raises HostError (with the output's tail) instead of returning.
    A lost connection raises TransportError; ``reset`` (or ``open``) gets a usable one back.
    """

    target: SshTarget       # where it connects; replaced when a restart moved the host

    def open(self) -> None:
        """Connect, if not connected already."""
        ...

    def close(self) -> None:
        """Disconnect; safe to call twice. A later command or ``open`` connects again."""
        ...

    def reset(self) -> None:
        """Drop what an interrupted command may have left running; reconnect if needed."""
        ...

    def run(self, command: str, *, check: bool = True,
            timeout: float | None = 60.0) -> CommandResult:
        """Run one shell command."""
        ...

    def run_script(self, script: str, *, check: bool = True,
                   timeout: float | None = 120.0) -> CommandResult:
        """Run a multi-line sh script in one round trip; its status is the last command's."""
        ...

    def put_file(self, local: Path, remote_path: str, mode: int | None = None) -> None:
        """Copy a local file to ``remote_path`` atomically; mode defaults to the local one."""
        ...

    def put_text(self, remote_path: str, text: str, mode: int = 0o644) -> None:
        """Write ``text`` (UTF-8) to ``remote_path`` atomically, with ``mode``."""
        ...

    def get_file(self, remote_path: str, local: Path) -> None:
        """Copy ``remote_path`` to ``local`` (parents created; replaced atomically)."""
        ...
