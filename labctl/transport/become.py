"""Becoming root with sudo on a lab host (layer transport; pure: commands and their meaning).

A host reached as a non-root user (``SshTarget.become == "sudo"``) gets root once per
connection, not once per command: the persistent remote shell itself is ``sudo -n /bin/sh``,
so every command, every detached process it starts (and the PID it reports) and every kill is
root's, with no ``sudo`` in the commands. File transfers use an SFTP server started the same
way. ``-n`` makes sudo fail instead of prompting: labctl never types a password. Before
anything runs, ``SUDO_CHECK`` proves that sudo gives a root shell, and ``sudo_problem``
turns a refusal into one message that says what the host's sudoers needs.
"""

from __future__ import annotations

import shlex

SUDO = "sudo -n"
SUDO_CHECK = "exec sudo -n /bin/sh -c 'id -u'"
# where distributions install OpenSSH's sftp-server (Debian/Ubuntu, RHEL/Fedora, Arch/Alpine,
# SUSE, BSD-style layouts); sshd's `internal-sftp` cannot be started on its own
SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                "/usr/lib/ssh/sftp-server", "/usr/libexec/ssh/sftp-server",
                "/usr/libexec/sftp-server", "/usr/lib/sftp-server")
FIND_SFTP_SERVER = ("for c in " + " ".join(shlex.quote(p) for p in SFTP_SERVERS)
                    + '; do if [ -x "$c" ]; then echo "$c"; exit 0; fi; done; exit 1')


def sudoers_line(user: str) -> str:
    """The sudoers rule labctl needs (a drop-in under /etc/sudoers.d, edited with visudo)."""
    return f"{user} ALL=(root) NOPASSWD: ALL"


def as_root(command: str) -> str:
    """``command`` (one sh command line) run by a root ``/bin/sh`` through ``sudo -n``."""
    return f"exec {SUDO} /bin/sh -c {shlex.quote(command)}"


def sftp_server_command(path: str) -> str:
    return f"exec {SUDO} {shlex.quote(path)}"


def sudo_problem(host: str, user: str, status: int, stdout: str, stderr: str) -> str | None:
    """Why ``SUDO_CHECK``'s outcome means no root shell on ``host`` (None: it gave one)."""
    said = " ".join(stderr.split())
    if status == 0 and stdout.split()[-1:] == ["0"]:      # after anything rc files printed
        return None
    fix = f"labctl needs NOPASSWD for {user} (a sudoers line: `{sudoers_line(user)}`)"
    lowered = said.lower()
    if "password is required" in lowered or "terminal is required" in lowered \
            or "askpass" in lowered:
        why = f"{host}: sudo wants a password: {fix}"
    elif status == 127 or "not found" in lowered:
        why = f"{host}: sudo is not installed (or not on {user}'s PATH): install it; {fix}"
    elif "must have a tty" in lowered:
        why = (f"{host}: sudo requires a terminal (requiretty) and labctl runs without one: "
               f"add `Defaults:{user} !requiretty`; {fix}")
    elif "not in the sudoers" in lowered or "not allowed" in lowered \
            or "may not run sudo" in lowered:
        why = f"{host}: {user} may not use sudo: {fix}"
    elif status == 0:
        why = f"{host}: sudo did not give root: `id -u` printed {stdout.strip()!r}; {fix}"
    else:
        why = f"{host}: sudo failed (exit {status}); {fix}"
    return f"{why}\n  sudo said: {said}" if said else why
