"""Shell commands (base layer, pure): quoting, and the small sh programs labctl runs on hosts.

Every value enters a command through `q` (or `shlex.quote`) here. The rest are the sh
snippets the plan and the execution layer share: a write to a sysfs/procfs file, "run all,
fail if any failed", a detached start that prints the PID, and the stop / wait / is-running
loops around such a process.
"""

from __future__ import annotations

import shlex


def q(*parts: object) -> str:
    """Quote each part for sh and join them: the one way values enter commands."""
    return shlex.join(str(p) for p in parts)


def all_of(commands: list[str]) -> str:
    """Run every command even if one fails; fail if any failed (a restore must try all)."""
    return "rc=0; " + " ".join(f"{{ {c}; }} || rc=1;" for c in commands) + " exit $rc"


def write_command(path: str, value: str) -> str:
    return f"echo {shlex.quote(value)} > {shlex.quote(path)}"


def detached_command(argv: list[object], log: str) -> str:
    """Start in a new session with all three streams redirected (else SSH hangs); print PID."""
    return f"setsid {q(*argv)} </dev/null >{shlex.quote(log)} 2>&1 & echo $!"


def stop_command(pid: int | str, timeout: float, signal: str = "TERM") -> str:
    """The signal (SIGTERM), wait up to timeout, then SIGKILL; exit 0 when it ended in time."""
    tries = max(1, int(timeout / 0.02))
    return (f"kill -{signal} {pid} 2>/dev/null; i=0; while {running_command(pid)}; do "
            f"i=$((i+1)); [ $i -ge {tries} ] && {{ kill -KILL {pid}; exit 1; }}; sleep 0.02; done")


def wait_file_command(path: str, timeout: float) -> str:
    tries = max(1, int(timeout / 0.02))
    return (f"i=0; until [ -e {shlex.quote(path)} ]; do i=$((i+1)); "
            f"[ $i -ge {tries} ] && exit 1; sleep 0.02; done")


def running_command(pid: int | str) -> str:
    """True while the process runs. A zombie counts as ended: a detached process is an
    orphan, and some init processes reap orphans only after a second or two."""
    return (f"{{ kill -0 {pid} 2>/dev/null && "
            f"! grep -q '^State:[[:space:]]*Z' /proc/{pid}/status 2>/dev/null; }}")
