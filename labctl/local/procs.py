"""Local processes by PID (side effects: signals, /proc): is it running, stop it.

A zombie counts as ended: on machines whose PID 1 reaps orphans late, an exited daemon
stays a zombie for a while, and it no longer does anything.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM ``pid``, wait up to ``timeout`` s, then SIGKILL and wait again. Gone is fine."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.01)
