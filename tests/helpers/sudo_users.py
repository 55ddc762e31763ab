"""Test helpers (side effects: users, /etc/sudoers.d): throw-away login users with a sudoers
drop-in each, for the ssh provider's `become: sudo`.

Each user's name is unique to the test run (tests run in parallel on one machine); users that
existed before are never touched. The home directory lives in the caller's directory. Every
drop-in is checked with ``visudo -c`` before it is installed. Everything is removed at the end,
also on failure: the drop-in first (a leftover NOPASSWD rule is the dangerous part), then the
user once its SSH sessions are gone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

SUDOERS_DIR = Path("/etc/sudoers.d")


def skip_reason() -> str | None:
    """Why this machine cannot run the sudo tests, or None."""
    if shutil.which("sudo") is None or shutil.which("visudo") is None:
        return "sudo missing: apt-get install sudo (scripts/setup.sh installs it)"
    if shutil.which("useradd") is None:
        return "useradd missing"
    if not os.stat("/").st_mode & 0o001:
        return ("'/' is not searchable by other users (mode 0700): plain-user logins are "
                "impossible on this machine")
    return None


def unique_user(prefix: str) -> str:
    """A user name of this test run that no one has yet (useradd: at most 32 characters)."""
    while True:
        name = f"{prefix}{os.getpid() % 100000}{secrets.token_hex(3)}"
        if subprocess.run(["id", name], capture_output=True).returncode != 0:
            return name


@contextlib.contextmanager
def sudo_user(directory: Path, prefix: str, rule: str) -> Iterator[str]:
    """A new user (shell /bin/sh, home under ``directory``, no password) whose sudoers
    drop-in holds ``rule`` with ``{user}`` replaced by its name."""
    user = unique_user(prefix)
    home = directory / user
    dropin = SUDOERS_DIR / f"labctl-test-{user}"     # includedir skips names with a dot
    _run("useradd", "--shell", "/bin/sh", "--home-dir", str(home), "--create-home",
         "--user-group", "--comment", "labctl sudo test", user)
    try:
        _run("usermod", "-p", "*", user)            # '!' (locked) is refused without PAM
        _install_dropin(dropin, rule.format(user=user) + "\n")
        yield user
    finally:
        dropin.unlink(missing_ok=True)
        _remove_user(user)
        shutil.rmtree(home, ignore_errors=True)


def _install_dropin(dropin: Path, text: str) -> None:
    partial = dropin.with_name(f".{dropin.name}.partial")     # dot: sudo ignores it meanwhile
    partial.write_text(text)
    partial.chmod(0o440)
    checked = subprocess.run(["visudo", "-c", "-q", "-f", str(partial)], capture_output=True,
                             text=True)
    if checked.returncode != 0:
        partial.unlink()
        raise AssertionError(f"visudo refused {text!r}: {checked.stdout}{checked.stderr}")
    partial.replace(dropin)


def _remove_user(user: str, wait: float = 10.0) -> None:
    """userdel once the user's sessions are gone (sshd ends them shortly after the client
    disconnects); zombies do not count, hence --force."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and _live_processes_of(user):
        time.sleep(0.05)
    subprocess.run(["userdel", "--force", user], capture_output=True)
    subprocess.run(["groupdel", user], capture_output=True)   # if userdel left the group


def _live_processes_of(user: str) -> bool:
    states = subprocess.run(["ps", "-u", user, "-o", "stat="], capture_output=True, text=True)
    return any(not state.startswith("Z") for state in states.stdout.split())


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL)
