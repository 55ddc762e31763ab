"""labctl.transport and labctl.labs.sshd without a server: results, refused namespaces, the sshd
helpers, stopping a process by PID (against a real sshd: tests/integration/test_transport.py)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from labctl.errors import TransportError
from labctl.labs import sshd
from labctl.local.procs import stop_pid
from labctl.transport.base import CommandResult
from labctl.transport.netns_socket import connect_in_netns
from tests.helpers.processes import kill_if_running


def test_result_ok_and_output() -> None:
    assert CommandResult("h", "true", "", "", 0).ok
    failed = CommandResult("h", "false", "out", "err\n", 1)
    assert not failed.ok
    assert failed.output == "out\nerr\n"


def test_connect_in_missing_netns_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="'lct-no-such-ns' does not exist"):
        connect_in_netns("lct-no-such-ns", "127.0.0.1", 22, 1.0)


def test_connect_in_netns_rejects_path_like_names() -> None:
    with pytest.raises(TransportError, match="invalid network namespace name"):
        connect_in_netns("../x", "127.0.0.1", 22, 1.0)


def test_known_hosts_line(tmp_path: Path) -> None:
    pub = tmp_path / "host.pub"
    pub.write_text("ssh-ed25519 AAAAC3Nz comment words\n")
    assert sshd.known_hosts_line("127.0.0.1", 22, pub) == "127.0.0.1 ssh-ed25519 AAAAC3Nz"
    assert sshd.known_hosts_line("127.0.0.1", 2222, pub) == "[127.0.0.1]:2222 ssh-ed25519 AAAAC3Nz"
    assert sshd.known_hosts_line("::1", 2222, pub) == "[::1]:2222 ssh-ed25519 AAAAC3Nz"


def test_sshd_config_lines(tmp_path: Path) -> None:
    config = sshd.write_sshd_config(tmp_path, "::1", 22, tmp_path / "ak", tmp_path / "hk",
                                    tmp_path / "pid", allow_users=["root", "bob"])
    lines = config.read_text().splitlines()
    for expected in ("ListenAddress [::1]:22", f"AuthorizedKeysFile {tmp_path}/ak",
                     "PasswordAuthentication no", "Subsystem sftp internal-sftp",
                     "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
                     "AllowUsers root bob", f"PidFile {tmp_path}/pid"):
        assert expected in lines


def test_stop_pid_escalates_and_tolerates_gone() -> None:
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"])
    try:
        time.sleep(0.2)                               # let the trap be set
        started = time.monotonic()
        stop_pid(stubborn.pid, timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 3
        assert stubborn.wait(timeout=3) == -signal.SIGKILL
    finally:
        kill_if_running(stubborn)
    stop_pid(stubborn.pid)                       # already gone: no error
