"""The one fake of labctl.transport.base.Transport for unit tests (no host, no network).

For the error paths a real host cannot produce on demand; everything else runs on real hosts
(tests/integration). `FakeTransport` records every call and answers from a script; subclasses
model a host by overriding `respond` (commands) or `respond_script` (scripts).
tests/unit/test_transport_interface.py proves it has the interface's shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from labctl.errors import HostError
from labctl.host.sections import MARKER
from labctl.transport.base import CommandResult
from labctl.transport.target import SshTarget


class Res(CommandResult):
    """A scripted answer: a CommandResult whose host and command the fake fills in."""

    def __init__(self, stdout: str = "", stderr: str = "", exited: int = 0):
        super().__init__("", "", stdout, stderr, exited)


Answer = CommandResult | BaseException | Callable[[], CommandResult]
"""What a script gives for a command: a result, an exception to raise, or a callable."""


class FakeTransport:
    """Records every call; answers from `script` (exact command -> Answer), else from `respond`
    (a small model of a host), else with an empty success. `check` raises HostError as the
    real transport does."""

    def __init__(self, name: str, script: dict[str, Answer] | None = None):
        self.name = name
        self.target = SshTarget(name, "192.0.2.1", 22, "root", f"/nonexistent/{name}/key",
                                f"/nonexistent/{name}/known_hosts")
        self.script = dict(script or {})
        self.calls: list[tuple[str, str]] = []
        self.written: dict[str, str] = {}       # put_text: remote path -> text
        self.resets = self.opens = self.closes = 0

    # ------------------------------------------------------------------ the model of a host
    def respond(self, command: str) -> CommandResult:
        return Res()

    def respond_script(self, script: str) -> CommandResult:
        """Each section of a labctl.host.sections script prints "<host> <section>"; the
        section `ethtool_stats` exits 1, every other one 0."""
        names = re.findall(rf"^echo '{MARKER} begin (\S+)'$", script, re.MULTILINE)
        return Res("".join(f"{MARKER} begin {n}\n{self.name} {n}\n\n{MARKER} end {n} "
                           f"{1 if n == 'ethtool_stats' else 0}\n" for n in names))

    # ------------------------------------------------------------------ the interface
    def open(self) -> None:
        self.opens += 1

    def close(self) -> None:
        self.closes += 1

    def reset(self) -> None:
        self.resets += 1

    def run(self, command: str, *, check: bool = True,
            timeout: float | None = 60.0) -> CommandResult:
        self.calls.append(("run", command))
        answer = self.script.get(command)
        if answer is None:
            answer = self.respond(command)
        return self._finish(command, answer, check)

    def run_script(self, script: str, *, check: bool = True,
                   timeout: float | None = 120.0) -> CommandResult:
        self.calls.append(("run_script", script))
        return self._finish(script, self.respond_script(script), check)

    def put_file(self, local: Path, remote_path: str, mode: int | None = None) -> None:
        assert local.exists()
        self.calls.append(("put_file", remote_path))

    def put_text(self, remote_path: str, text: str, mode: int = 0o644) -> None:
        self.calls.append(("put_text", remote_path))
        self.written[remote_path] = text

    def get_file(self, remote_path: str, local: Path) -> None:
        self.calls.append(("get_file", remote_path))
        local.write_text(json.dumps({"from": remote_path}))

    # ------------------------------------------------------------------ for assertions
    def commands(self) -> list[str]:
        return [c for kind, c in self.calls if kind == "run"]

    def _finish(self, command: str, answer: Answer, check: bool) -> CommandResult:
        if isinstance(answer, BaseException):
            raise answer
        if not isinstance(answer, CommandResult):
            answer = answer()
        result = CommandResult(self.name, command, answer.stdout, answer.stderr, answer.exited)
        if check and not result.ok:
            raise HostError(self.name, command, result.exited, result.output)
        return result
