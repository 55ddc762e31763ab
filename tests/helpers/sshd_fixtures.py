"""pytest plugin (side effects): a real sshd in a real network namespace, for integration tests.

Register with ``pytest_plugins = ["tests.helpers.sshd_fixtures"]`` (or ``-p tests.helpers.sshd_fixtures``).
The session-scoped fixture ``sshd_netns`` yields an ``SshdLab``: a namespace ``lct-<pid>``
with lo up, an sshd on 127.0.0.1:22 inside it, a lab key, a known_hosts file, and SSH
targets for root and for ``labctl-bench``, a system user whose login shell (/bin/sh) reads
no rc files. ``sshd_lab()`` is the same as a context manager (bench/ssh_overhead.py uses it).
Everything is torn down even on failure: sshd stopped by PID, namespace deleted, temp dir
removed, and the user removed when this plugin created it and no other session still uses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labctl.labs import sshd
from labctl.local.procs import stop_pid
from labctl.transport.target import SshTarget
from tests.helpers.namespaces import created_namespace

BENCH_USER = "labctl-bench"
BENCH_HOME = Path("/var/lib/labctl-bench")
CREATED_MARK = BENCH_HOME / ".created-by-labctl-tests"
USER_LOCK = Path("/run/labctl-bench.lock")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class SshdLab:
    """One namespace with one sshd; ``root`` and ``user`` are ready-made targets."""

    netns: str
    dir: Path
    sshd_pid: int
    key_file: Path
    known_hosts: Path
    host_pubkey: Path
    log: Path
    plain_user: str

    @property
    def root(self) -> SshTarget:
        return self.target("root")

    @property
    def user(self) -> SshTarget:
        """The plain user's target; skips the test where no plain user can log in at all."""
        if not os.stat("/").st_mode & 0o001:
            # e.g. a chroot made with mktemp -d: "/" is 0700, so sshd's unprivileged child
            # cannot even reach authorized_keys (and the user could not exec /bin/sh)
            pytest.skip("'/' is not searchable by other users (mode 0700): plain-user logins "
                        "are impossible on this machine")
        return self.target(self.plain_user)

    def target(self, user: str, **changes: object) -> SshTarget:
        """A target for ``user`` on this sshd, with optional field overrides."""
        fields: dict[str, object] = {
            "host": user, "address": LOOPBACK, "port": 22, "user": user,
            "key_file": str(self.key_file), "known_hosts": str(self.known_hosts),
            "netns": self.netns,
        }
        fields.update(changes)
        return SshTarget(**fields)  # type: ignore[arg-type]


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL)


@contextlib.contextmanager
def _bench_user() -> Iterator[str]:
    """Ensure ``labctl-bench`` exists while we run; the last session out removes it if a
    session of ours created it (shared flock = in use, marker file = created by us)."""
    lock = _locked_file(USER_LOCK, fcntl.LOCK_EX)
    try:
        if subprocess.run(["id", BENCH_USER], capture_output=True).returncode != 0:
            _run("useradd", "--system", "--shell", "/bin/sh", "--home-dir", str(BENCH_HOME),
                 "--create-home", "--comment", "labctl SSH tests", BENCH_USER)
            _run("usermod", "-p", "*", BENCH_USER)   # '!' (locked) is refused without PAM
            CREATED_MARK.touch()
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield BENCH_USER
    finally:
        _release_bench_user(lock)


def _release_bench_user(lock: int) -> None:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)                # another session still uses the user
        return
    try:
        if CREATED_MARK.exists():
            _remove_bench_user()
    finally:
        os.close(lock)


def _remove_bench_user(wait: float = 10.0) -> None:
    """userdel once the user's SSH sessions are gone (they end shortly after the client
    disconnects). Zombies do not count: here PID 1 is slow to reap the daemon's orphans,
    so --force. If it still fails, the marker stays and the next session tries again."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and _live_processes_of(BENCH_USER):
        time.sleep(0.05)
    removed = subprocess.run(["userdel", "--force", "--remove", BENCH_USER],
                             capture_output=True)
    if removed.returncode == 0:
        shutil.rmtree(BENCH_HOME, ignore_errors=True)


def _live_processes_of(user: str) -> bool:
    states = subprocess.run(["ps", "-u", user, "-o", "stat="], capture_output=True, text=True)
    return any(not state.startswith("Z") for state in states.stdout.split())


def _locked_file(path: Path, operation: int) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, operation)
    return fd


def _write_keys_and_config(lab_dir: Path, users: list[str]) -> Path:
    sshd.generate_keypair(lab_dir / "host_ed25519", "labctl test host key")
    sshd.generate_keypair(lab_dir / "id_ed25519", "labctl test client key")
    authorized = lab_dir / "authorized_keys"
    authorized.write_text((lab_dir / "id_ed25519.pub").read_text())
    authorized.chmod(0o644)           # sshd reads it as the logging-in user
    known_hosts = lab_dir / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line(LOOPBACK, 22, lab_dir / "host_ed25519.pub")
                           + "\n")
    return sshd.write_sshd_config(
        lab_dir, LOOPBACK, 22, authorized, lab_dir / "host_ed25519", lab_dir / "sshd.pid",
        allow_users=users,
    )


@contextlib.contextmanager
def sshd_lab(prefix: str = "lct") -> Iterator[SshdLab]:
    """Namespace + sshd + keys + bench user, all removed on exit. Needs root."""
    with contextlib.ExitStack() as stack:
        lab_dir = Path(tempfile.mkdtemp(prefix=f"labctl-{prefix}-sshd-"))
        stack.callback(shutil.rmtree, lab_dir, True)
        lab_dir.chmod(0o755)          # the bench user's sshd child reads authorized_keys
        user = stack.enter_context(_bench_user())
        netns = stack.enter_context(created_namespace(f"{prefix}-{os.getpid()}"))
        config = _write_keys_and_config(lab_dir, ["root", user])
        log = lab_dir / "sshd.log"
        pid = sshd.start_sshd_in_netns(netns, config, log)
        stack.callback(stop_pid, pid)
        yield SshdLab(netns, lab_dir, pid, lab_dir / "id_ed25519", lab_dir / "known_hosts",
                      lab_dir / "host_ed25519.pub", log, plain_user=user)


def skip_reason() -> str | None:
    """Why this machine cannot host the sshd fixture, or None."""
    if os.geteuid() != 0:
        return "needs root: creates a network namespace, starts sshd, adds a system user"
    if not Path(sshd.SSHD_PATH).exists():
        return f"{sshd.SSHD_PATH} missing: apt-get install openssh-server"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) missing"
    return None


@pytest.fixture(scope="session")
def sshd_netns() -> Iterator[SshdLab]:
    """A real sshd in a real namespace for the whole session (skipped when not root)."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with sshd_lab("lct") as lab:
        yield lab
