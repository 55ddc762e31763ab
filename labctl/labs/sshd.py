"""A private OpenSSH sshd per network namespace (side effects: files, subprocesses, signals).

Used by the netns lab provider (and by the tests and benchmarks): each lab host is a network
namespace with its own sshd, own host key, own PidFile and log, listening on an address of
that namespace (usually 127.0.0.1:22 on the namespace's own loopback), reached with
``labctl.transport.netns_socket.connect_in_netns``. Nothing here touches the host's own sshd setup,
except that sshd's privilege-separation directory ``/run/sshd`` (a path compiled into sshd)
is created if it is missing.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from labctl.errors import LabError
from labctl.local.nsexec import netns_argv
from labctl.local.procs import pid_alive

SSHD_PATH = "/usr/sbin/sshd"          # sshd re-execs itself: it must be an absolute path
PRIVSEP_DIR = Path("/run/sshd")
CONFIG_NAME = "sshd_config"
FATAL_LOG_WORDS = ("Cannot bind any address", "fatal", "FATAL")
FIXED_SETTINGS = (
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    "StrictModes no",
    "Subsystem sftp internal-sftp",
    "UseDNS no",
    "X11Forwarding no",
    "PrintMotd no",
    "PrintLastLog no",
    "MaxSessions 32",
)


def generate_keypair(path: Path, comment: str) -> None:
    """Write an ed25519 key pair without passphrase: ``path`` (0600) and ``path``.pub.
    Directories it has to create are made 0700; existing ones are left as they are."""
    make_private_dir(path.parent)
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    _run(["ssh-keygen", "-t", "ed25519", "-N", "", "-q", "-C", comment, "-f", str(path)])
    path.chmod(0o600)                 # ssh-keygen's own choice, made explicit


def make_private_dir(directory: Path) -> None:
    """Create ``directory`` 0700 if it is missing (its missing parents get the usual mode:
    a lab's directory also holds disks that QEMU must reach)."""
    if directory.is_dir():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.mkdir(mode=0o700)
    directory.chmod(0o700)            # mkdir's mode passes through the umask


def write_sshd_config(
    dir: Path,
    listen_address: str,
    port: int,
    authorized_keys: Path,
    host_key: Path,
    pid_file: Path,
    allow_users: Sequence[str] = ("root",),
    permit_root_login: bool = True,
    log_level: str = "VERBOSE",
    allow_tcp_forwarding: bool = False,
) -> Path:
    """Write ``dir``/sshd_config for a private sshd and return its path.

    Key-only logins; every user's keys come from ``authorized_keys`` (the lab's file);
    ``StrictModes no`` because the lab directory's permissions are not sshd's business.
    ``allow_tcp_forwarding``: the server may serve as a jump host (tests of ProxyJump).
    The log file is given to sshd with ``-E`` by ``start_sshd_in_netns``.
    """
    listen = f"[{listen_address}]:{port}" if ":" in listen_address else f"{listen_address}:{port}"
    lines = [
        f"# private sshd of a labctl lab; run as: {SSHD_PATH} -f CONFIG -E LOG",
        f"ListenAddress {listen}",
        f"HostKey {host_key.absolute()}",
        f"PidFile {pid_file.absolute()}",
        f"AuthorizedKeysFile {authorized_keys.absolute()}",
        "PermitRootLogin " + ("prohibit-password" if permit_root_login else "no"),
        "AllowUsers " + " ".join(allow_users),
        f"LogLevel {log_level}",
        "AllowTcpForwarding " + ("yes" if allow_tcp_forwarding else "no"),
        *FIXED_SETTINGS,
    ]
    dir.mkdir(parents=True, exist_ok=True)
    config = dir / CONFIG_NAME
    config.write_text("\n".join(lines) + "\n")
    return config


def start_sshd_in_netns(netns: str, config: Path, log: Path, wait: float = 5.0) -> int:
    """Start sshd inside ``netns`` (it daemonizes) and return its PID, read from its PidFile."""
    pid_file = _pid_file_of(config)
    pid_file.unlink(missing_ok=True)
    _ensure_privsep_dir()
    log_start = log.stat().st_size if log.exists() else 0     # -E appends
    argv = netns_argv(netns, [SSHD_PATH, "-f", str(config.absolute()), "-E", str(log.absolute())],
                      own_sysfs=True)
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise LabError(
            f"sshd failed to start in network namespace {netns!r} "
            f"(exit {done.returncode}): {shlex.join(argv)}\n"
            f"{(done.stderr.strip() + chr(10) + _tail(log)).strip()}"
        )
    return _wait_for_pid(pid_file, log, log_start, wait, netns)


def known_hosts_line(address: str, port: int, host_pubkey: Path) -> str:
    """A known_hosts line for a host key: ``[addr]:port type key``, plain addr for port 22."""
    fields = host_pubkey.read_text().split()
    if len(fields) < 2:
        raise LabError(f"{host_pubkey}: not an OpenSSH public key")
    name = address if port == 22 else f"[{address}]:{port}"
    return f"{name} {fields[0]} {fields[1]}"


def _ensure_privsep_dir() -> None:
    """sshd refuses to start without its privilege-separation dir (root-owned, not writable)."""
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)


def _pid_file_of(config: Path) -> Path:
    for line in config.read_text().splitlines():
        words = line.split()
        if len(words) == 2 and words[0].lower() == "pidfile":
            return Path(words[1])
    raise LabError(f"{config}: no PidFile line (write it with write_sshd_config)")


def _wait_for_pid(pid_file: Path, log: Path, log_start: int, wait: float, netns: str) -> int:
    """The daemon's PID once it is written; sshd binds after daemonizing, so a bind failure
    only shows in its log."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        text = pid_file.read_text().strip() if pid_file.exists() else ""
        if text.isdigit() and pid_alive(int(text)):
            return int(text)
        if any(word in _new_log(log, log_start) for word in FATAL_LOG_WORDS):
            raise LabError(f"sshd failed to start in network namespace {netns!r}:\n"
                           f"{_new_log(log, log_start).strip()}")
        time.sleep(0.01)
    raise LabError(f"sshd wrote no PID to {pid_file} within {wait:g}s\n{_tail(log)}".strip())


def _new_log(log: Path, start: int) -> str:
    try:
        with log.open("rb") as stream:
            stream.seek(start)
            return stream.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _tail(log: Path, lines: int = 8) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise LabError(f"{shlex.join(argv)} failed (exit {done.returncode}): "
                       f"{done.stderr.strip()}")
