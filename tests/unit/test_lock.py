"""The lab lock (a real flock between real processes) and the restorer's reconnection (fake
transports: a connection that drops on demand)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.errors import LockError, TransportError
from labctl.execution.restorer import Restorer, Undo
from labctl.local.lock import lab_lock, lock_path
from labctl.runfiles.rundir import RunDir
from labctl.transport.base import CommandResult
from tests.helpers import FakeTransport, Res

HOLD = """
import sys, time
from pathlib import Path
from labctl.local.lock import lab_lock
with lab_lock(Path(sys.argv[1]), "run scenarios/x.yaml", print):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(lab: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lab)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_is_refused_with_the_holders_name(tmp_path: Path) -> None:
    lab = tmp_path / ".labctl" / "lab1"
    proc = _holder(lab)
    try:
        with pytest.raises(LockError) as refused:
            with lab_lock(lab, "down", print):
                pass
        message = str(refused.value)
        assert f"`labctl run scenarios/x.yaml` (PID {proc.pid} on " in message and "is busy" in message
        assert refused.value.exit_code == 4
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_dead_process_is_taken_over_and_said(tmp_path: Path) -> None:
    lab = tmp_path / ".labctl" / "lab1"
    proc = _holder(lab)
    proc.kill()
    proc.wait()
    assert json.loads(lock_path(lab).read_text())["pid"] == proc.pid, "SIGKILL leaves the file"
    messages: list[str] = []
    with lab_lock(lab, "restore X", messages.append):
        assert json.loads(lock_path(lab).read_text())["command"] == "restore X"
    assert len(messages) == 1 and "stale lock" in messages[0]
    assert f"PID {proc.pid}" in messages[0] and "no longer running" in messages[0]


def test_release_removes_the_file_and_an_empty_labctl_dir(tmp_path: Path) -> None:
    lab = tmp_path / ".labctl" / "lab1"
    with lab_lock(lab, "up", print):
        assert lock_path(lab).stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / ".labctl").exists()
    with lab_lock(lab, "up", print):           # and again: nothing stale, no message
        pass


def test_unreadable_lock_content_is_named(tmp_path: Path) -> None:
    lab = tmp_path / ".labctl" / "lab1"
    lab.parent.mkdir(parents=True)
    lock_path(lab).write_text("garbage\n")
    messages: list[str] = []
    with lab_lock(lab, "up", messages.append):
        pass
    assert "unknown process" in messages[0] and "garbage" in messages[0]


class DroppingTransport(FakeTransport):
    """Fails with TransportError until reset() (a reconnect attempt) was called `down_for` times."""

    def __init__(self, down_for: int):
        super().__init__("dut")
        self.down_for = down_for

    def respond(self, command: str) -> CommandResult:
        if self.resets < self.down_for:
            raise TransportError("dut: connection lost")
        return Res()


def test_restore_reconnects_then_completes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("labctl.execution.restorer.time.sleep", lambda s: None)
    transport = DroppingTransport(down_for=2)
    restorer = Restorer({"dut": transport}, RunDir.create(tmp_path, "r"), print)
    restorer.record_undo(Undo("dut", "undo-1", "one", True))
    results = restorer.restore()
    assert [r.status for r in results] == ["ok"] and transport.resets == 2
    assert restorer.reconnected == ["dut"] and restorer.hosts() == []


def test_unreachable_host_stays_in_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCTL_RECONNECT_SECONDS", "0.2")      # one reconnect attempt (after 1 s)
    run_dir = RunDir.create(tmp_path, "r")
    restorer = Restorer({"dut": DroppingTransport(down_for=10**9)}, run_dir, print)
    restorer.record_undo(Undo("dut", "undo-1", "one", True))
    restorer.record_undo(Undo("dut", "undo-2", "two", True))
    restorer.record_process("server", "dut", 4242, "/tmp/labctl-r")
    restorer.stop_processes()
    results = restorer.restore()
    assert [r.status for r in results] == ["pending", "pending"]
    journal = json.loads((run_dir.path / "restore.json").read_text())
    assert [u["command"] for u in journal["undo"]] == ["undo-1", "undo-2"]
    assert journal["processes"]["server"] == {"host": "dut", "pid": 4242, "match": "/tmp/labctl-r"}
    later = Restorer.from_journal(run_dir, {"dut": DroppingTransport(down_for=0)}, print)
    later.stop_processes()
    assert [r.status for r in later.restore()] == ["ok", "ok"]
    transport = later.transports["dut"]
    assert isinstance(transport, DroppingTransport)
    assert transport.commands()[0].startswith("grep -qF -- /tmp/labctl-r /proc/4242/cmdline")
    assert transport.commands()[1:] == ["undo-2", "undo-1"], "newest first"
    assert json.loads((run_dir.path / "restore.json").read_text())["undo"] == []
