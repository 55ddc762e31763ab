"""Run planned shell commands for real, where they cannot change this machine (tests only).

`run_cases` executes each command with dash, wrapped exactly as labctl.transport.ssh's remote
shell wraps it (``(eval 'CMD') </dev/null``), and reports what ran:

- PATH is a directory of stubs and nothing else: every program labctl's commands call is a
  stub that appends its argv (NUL-separated) to a log and exits 0. No real program runs
  except /bin/sh itself; anything else is "not found".
- The shell runs as nobody (uid/gid 65534, no supplementary groups): it cannot write anything
  root owns, nor signal root's processes.
- It lives in a private mount namespace (propagation private, so nothing leaks back) with
  fresh tmpfs mounts over /sys, /proc/irq, /proc/sys and /tmp, in a new PID namespace with
  its own /proc (``kill`` reaches nothing outside) and a new network namespace (no network).

The layout a command expects (``/sys/class/net/IF/queues/rx-0/rps_cpus``, the run's work
directory, ...) is created afresh in those tmpfs mounts before each command, owned by nobody
as the real files are owned by root; afterwards every file the command created or changed is
reported, as is any file or directory called CANARY. The parent (pytest) side is
`run_cases`; `_child` runs under ``unshare`` as PID 1 of the new PID namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOTS = ("/sys", "/proc/irq", "/proc/sys", "/tmp")
STUBS = "/tmp/.stubs"
WORK = "/tmp/.cwd"
LOGS = "/tmp/.log"
ARGV_LOG = f"{LOGS}/argv"
PRIVATE = (STUBS, LOGS)               # the sandbox's own files: not reported, not writable
NOBODY = 65534
CANARY = "CANARY"
RECORD_END = "\x1e"
COMMAND_TIMEOUT = 20.0
UNSHARE = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
           "--net", "--"]
STUB_SCRIPT = ("#!/bin/sh\n"
               "{ printf '%s\\0' \"${0##*/}\" \"$@\"; printf '\\036\\0'; } >>\"$STUB_LOG\"\n"
               "exit 0\n")


@dataclass(frozen=True)
class Case:
    """Commands run one by one, each on a fresh copy of ``layout`` (absolute path -> text,
    every path under one of ROOTS)."""

    commands: list[str]
    layout: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Execution:
    """What one command did in the sandbox."""

    command: str
    status: int
    stdout: str
    stderr: str
    invocations: list[list[str]]      # argv of every stub run, argv[0] = the program's name
    written: list[str]                # files created or changed (absolute paths)
    canaries: list[str]               # files or directories named CANARY, anywhere


def transport_wrap(command: str) -> str:
    """The command as labctl.transport.ssh.RemoteShell.execute hands it to the remote sh."""
    import shlex
    return f"(eval {shlex.quote(command)}) </dev/null"


def skip_reason() -> str | None:
    """Why the sandbox cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root: mount, PID and network namespaces, and a switch to uid nobody"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) missing"
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare cannot make namespaces here: {probe.stderr.strip()}"
    return None


def run_cases(cases: list[Case], stubs: list[str]) -> list[list[Execution]]:
    """Execute every case's commands in one sandbox; results in the same order."""
    job = {"stubs": stubs, "cases": [{"commands": c.commands, "layout": c.layout} for c in cases]}
    done = subprocess.run([*UNSHARE, sys.executable, "-I", str(Path(__file__).resolve()), "--child"],
                          input=json.dumps(job), capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"sandbox failed (exit {done.returncode}): {done.stderr[-4000:]}")
    results = json.loads(done.stdout)
    return [[Execution(**e) for e in case] for case in results]


# --------------------------------------------------------------------------- the child side

def _child() -> None:
    job = json.loads(sys.stdin.read())
    out = sys.stdout
    sys.stdout = sys.stderr          # nothing but the result goes to the real stdout
    _mount_tmpfs()
    _write_stubs(job["stubs"])
    results = []
    for case in job["cases"]:
        _reset(case["layout"])
        results.append([_execute(command, case["layout"]) for command in case["commands"]])
    out.write(json.dumps(results))
    out.flush()


def _mount_tmpfs() -> None:
    if os.getpid() != 1:
        raise SystemExit("the sandbox child must be PID 1 of a new PID namespace")
    for root in ROOTS:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "labctl-sandbox",
                        root], check=True)


def _write_stubs(names: list[str]) -> None:
    os.makedirs(STUBS, mode=0o755)
    for name in names:
        path = Path(STUBS, name)
        path.write_text(STUB_SCRIPT)
        path.chmod(0o755)


def _reset(layout: dict[str, str]) -> None:
    """Empty every root but the stubs, then create the layout, all owned by nobody."""
    for root in ROOTS:
        for entry in os.scandir(root):
            if entry.path == STUBS:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    for directory in (WORK, LOGS):
        os.makedirs(directory)
    Path(ARGV_LOG).touch()
    for path, text in layout.items():
        if not any(path.startswith(root + "/") for root in ROOTS):
            raise SystemExit(f"layout path outside the sandbox mounts: {path!r}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Path(path).write_text(text)
    for root in ROOTS:
        _chown_tree(root)


def _chown_tree(root: str) -> None:
    os.chown(root, NOBODY, NOBODY)
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            if path == STUBS or path.startswith(STUBS + "/"):
                continue
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    os.chown(ARGV_LOG, NOBODY, NOBODY)


def _files() -> tuple[dict[str, bytes], list[str]]:
    """Every file under the roots (but the sandbox's own) with its content, and every file or
    directory called CANARY. (Content, not mtime: tmpfs times move in jiffies.)"""
    found: dict[str, bytes] = {}
    canaries: list[str] = []
    pending = list(ROOTS)
    while pending:
        for entry in os.scandir(pending.pop()):
            if entry.name == CANARY:
                canaries.append(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if entry.path not in PRIVATE:
                    pending.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                with open(entry.path, "rb") as stream:
                    found[entry.path] = stream.read()
            else:
                found[entry.path] = b"<not a regular file>"
    return found, sorted(canaries)


def _restore(written: list[str], layout: dict[str, str]) -> None:
    """Undo a command's writes (a shell without programs can create and change files, not
    directories): back to the layout before the next command."""
    for path in written:
        if path in layout:
            Path(path).write_text(layout[path])
        else:
            os.unlink(path)
    Path(ARGV_LOG).write_bytes(b"")


def _execute(command: str, layout: dict[str, str]) -> dict[str, Any]:
    before, _ = _files()
    env = {"PATH": STUBS, "HOME": WORK, "STUB_LOG": ARGV_LOG, "LC_ALL": "C"}
    try:
        done = subprocess.run(["/bin/sh", "-c", transport_wrap(command)], cwd=WORK, env=env,
                              user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT)
        status, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        status, stdout, stderr = -1, exc.stdout or b"", (exc.stderr or b"") + b"\n(timed out)"
    _reap_orphans()
    after, canaries = _files()
    written = sorted(p for p, data in after.items() if before.get(p) != data)
    result = {"command": command, "status": status, "stdout": stdout.decode(errors="replace"),
              "stderr": stderr.decode(errors="replace"), "invocations": _invocations(),
              "written": written, "canaries": canaries}
    if result["canaries"] or set(before) - set(after):
        _reset(layout)
    else:
        _restore(written, layout)
    return result


def _reap_orphans(wait: float = 5.0) -> None:
    """Background jobs (`setsid ... &`) were reparented to us, PID 1: wait for all of them,
    then kill, by PID, whatever is left of them (this PID namespace holds nothing else)."""
    import signal
    import time
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.005)
    for entry in os.listdir("/proc"):      # this PID namespace's own /proc: ours only
        if entry.isdigit() and int(entry) != 1:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except ProcessLookupError:
                pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _invocations() -> list[list[str]]:
    raw = Path(ARGV_LOG).read_bytes().decode(errors="replace")
    records: list[list[str]] = []
    current: list[str] = []
    for word in raw.split("\0")[:-1]:
        if word == RECORD_END:
            records.append(current)
            current = []
        else:
            current.append(word)
    return records


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    _child()
