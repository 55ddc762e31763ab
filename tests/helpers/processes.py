"""Test helpers: processes of this machine read from /proc (PIDs, parents, command lines,
names), waiting for a process to write a file, and stopping a process the test started."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from labctl.local.procs import pid_alive


def pids() -> list[int]:
    """Every PID in /proc now (some may be gone a moment later)."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def parent_of(pid: int) -> int:
    """The parent PID of ``pid``; -1 once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def children_of(pid: int) -> list[int]:
    """The PIDs whose parent is ``pid``, sorted."""
    return sorted(child for child in pids() if parent_of(child) == pid)


def cmdline(pid: int) -> str | None:
    """The command line of ``pid``, its arguments joined by spaces; None once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def processes_mentioning(*texts: str) -> list[int]:
    """PIDs whose command line holds every one of ``texts``."""
    found = []
    for pid in pids():
        line = cmdline(pid)
        if line is not None and all(text in line for text in texts):
            found.append(pid)
    return found


def pids_named(comm: str) -> list[int]:
    """Running (not zombie) processes whose name (/proc/PID/comm) is ``comm``."""
    found = []
    for pid in pids():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == comm and pid_alive(pid):
                found.append(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def wait_for_file(path: Path, process: subprocess.Popen[bytes] | subprocess.Popen[str],
                  timeout: float = 10, what: str = "") -> None:
    """Wait until ``process`` (still running) has made ``path``; fail if it ends or time runs out."""
    what = what or str(path)
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"exited (exit {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.01)


def stop_process(process: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 10) -> int:
    """SIGTERM a process we started (by PID) and wait; SIGKILL if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def kill_if_running(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGKILL a process we started if it still runs, and reap it (for `finally:` blocks)."""
    if process.poll() is None:
        process.kill()
        process.wait()
