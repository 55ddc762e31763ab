"""Fault-injection points (side effects: one file, when a test asks): where a run can be stopped.

A run passes named checkpoints: ``facts``, ``tuning`` (before the first tuning change),
``load-start`` (server up, before the client starts), ``load-window`` (client running),
``snapshot`` (before the "after" snapshot) and ``restore``. With no environment set they
cost one dictionary lookup. The fault tests set

    LABCTL_FAILPOINT=<checkpoint>:pause   LABCTL_FAILPOINT_FILE=<path>

and labctl writes ``<pid> <checkpoint>`` to the file when it gets there and waits until the
file is removed (at most PAUSE_LIMIT seconds): the test injects its fault (a signal, a dropped
SSH session, a killed process) at a known point and lets the run go on. With
``<checkpoint>:fail`` the command of the step at that checkpoint runs on the host and then
exits 97, as a command that failed there would.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

CHECKPOINTS = ("facts", "tuning", "load-start", "load-window", "snapshot", "restore")
PAUSE_LIMIT = 120.0
FAILED_STATUS = 97
_fired: set[str] = set()


def _armed(checkpoint: str, mode: str) -> bool:
    spec = os.environ.get("LABCTL_FAILPOINT")
    return spec == f"{checkpoint}:{mode}" and checkpoint not in _fired


def reached(checkpoint: str) -> None:
    """Pause here when a test asked for it (once per process)."""
    if not _armed(checkpoint, "pause"):
        return
    _fired.add(checkpoint)
    marker = Path(os.environ["LABCTL_FAILPOINT_FILE"])
    marker.write_text(f"{os.getpid()} {checkpoint}\n")
    deadline = time.monotonic() + PAUSE_LIMIT
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def failing(checkpoint: str, command: str) -> str:
    """The command, made to fail on the host after it ran, when a test asked for it."""
    if not _armed(checkpoint, "fail"):
        return command
    _fired.add(checkpoint)
    return f"{command}\nexit {FAILED_STATUS}"
