"""The lab lock (side effects: one lock file): one changing command per lab at a time.

`up`, `down`, `run`, `prepare`, `unprepare` and `restore` hold ``.labctl/<lab>.lock`` (an
exclusive ``flock``) while they work; a second one on the same lab is refused with the holder's
PID, command and start time. The kernel drops a flock when its holder dies, so a lock file
left behind by a killed process is free again; its stale content is reported and replaced.
The file is removed on release (while still locked, and a new holder checks it still locks
the file that is on the path), so `down` leaves no ``.labctl`` behind.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labctl.errors import LockError
from labctl.local.procs import pid_alive


def lock_path(lab_directory: Path) -> Path:
    """``.labctl/<lab>.lock``, beside the lab's directory (which `down` removes)."""
    return lab_directory.with_name(lab_directory.name + ".lock")


@contextmanager
def lab_lock(lab_directory: Path, command: str, progress: Callable[[str], None]) -> Iterator[None]:
    """Hold the lab's lock for the block; LockError naming the holder when it is taken."""
    path = lock_path(lab_directory)
    fd = _acquire(path, command, progress)
    try:
        yield
    finally:
        _release(path, fd)


def _acquire(path: Path, command: str, progress: Callable[[str], None]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockError(f"the lab is busy: {describe_holder(holder)} holds {path}; wait for it "
                            "to end (or stop that process), then try again") from None
        if _same_file(fd, path):
            break
        os.close(fd)              # the previous holder removed the file meanwhile: lock the new one
    stale = _read_holder(fd)
    if stale:
        progress(f"a stale lock of a process that is gone was taken over: {describe_holder(stale)}")
    _write_holder(fd, command)
    return fd


def _release(path: Path, fd: int) -> None:
    try:
        if _same_file(fd, path):
            path.unlink()
        try:
            path.parent.rmdir()       # .labctl, when nothing else is in it
        except OSError:
            pass
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False


def _read_holder(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors="replace")
    try:
        holder = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {"unreadable": text[:80]}
    return holder if isinstance(holder, dict) else {"unreadable": text[:80]}


def _write_holder(fd: int, command: str) -> None:
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
              "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)


def describe_holder(holder: dict[str, Any]) -> str:
    if "pid" not in holder:
        return f"an unknown process (lock file content: {holder.get('unreadable', '')!r})"
    alive = "" if pid_alive(int(holder["pid"])) else ", no longer running"
    return (f"`labctl {holder.get('command', '?')}` (PID {holder['pid']} on {holder.get('host', '?')}, "
            f"since {holder.get('since', '?')}{alive})")
