"""Integration: labctl.transport.ssh and labctl.transport.netns_socket against a real sshd in a real
namespace (the parts that need no server: tests/unit/test_transport.py).

The ``sshd_netns`` fixture comes from the tests.helpers.sshd_fixtures plugin (registered in
tests/conftest.py; alone: ``python3 -m pytest -p tests.helpers.sshd_fixtures tests/integration/test_transport.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from labctl.errors import HostError, LabError, TransportError
from labctl.labs import sshd
from labctl.transport.netns_socket import connect_in_netns
from labctl.transport.ssh import SshTransport, open_all, run_parallel

integration = pytest.mark.integration


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def root_t(sshd_netns: Any) -> Iterator[SshTransport]:
    with SshTransport(sshd_netns.root) as transport:
        yield transport


@pytest.fixture(scope="module")
def user_t(sshd_netns: Any) -> Iterator[SshTransport]:
    with SshTransport(sshd_netns.user) as transport:
        yield transport


@pytest.fixture(params=["root", "user"])
def any_t(request: pytest.FixtureRequest) -> SshTransport:
    transport: SshTransport = request.getfixturevalue(f"{request.param}_t")
    return transport


def gone(transport: SshTransport, pattern: str) -> bool:
    """True once no process runs with exactly this command line (waits up to 5 s)."""
    script = f"for i in $(seq 50); do pgrep -fx '{pattern}' >/dev/null || exit 0; " \
             "sleep 0.1; done; exit 1"
    return transport.run(script, check=False).ok


# --- output framing -----------------------------------------------------------------------

@integration
def test_stdout_stderr_and_status_exact(any_t: SshTransport) -> None:
    result = any_t.run("printf 'a\\nb'; printf 'e1\\ne2' >&2; exit 3", check=False)
    assert (result.stdout, result.stderr, result.exited) == ("a\nb", "e1\ne2", 3)
    assert result.host == any_t.host and not result.ok


@integration
def test_trailing_newlines_and_empty_output_kept(any_t: SshTransport) -> None:
    assert any_t.run("printf 'x\\n\\n\\n'").stdout == "x\n\n\n"
    assert any_t.run("printf '\\n'").stdout == "\n"
    empty = any_t.run("true")
    assert (empty.stdout, empty.stderr, empty.exited) == ("", "", 0)


@integration
def test_binary_ish_text_is_byte_exact(root_t: SshTransport) -> None:
    text = "\x00\x01\x02\t\r\n\x1b[31m é 日本 \x7f"
    octal = "".join(f"\\{b:03o}" for b in text.encode())
    assert root_t.run(f"printf '{octal}'").stdout == text
    assert root_t.run(f"printf '{octal}' >&2").stderr == text
    assert root_t.run("printf 'a\\377b'").stdout == "a\ufffdb"   # invalid UTF-8, as invoke


@integration
def test_large_output_on_both_streams(root_t: SshTransport) -> None:
    result = root_t.run("seq 1 300000; seq 300000 -1 1 >&2; head -c 1500000 /dev/zero")
    numbers = "".join(f"{n}\n" for n in range(1, 300001))
    assert len(result.stdout) > 3 * 2**20
    assert result.stdout == numbers + "\0" * 1500000
    assert result.stderr == "".join(f"{n}\n" for n in range(300000, 0, -1))


@integration
def test_stderr_only(any_t: SshTransport) -> None:
    result = any_t.run("echo only-err >&2")
    assert (result.stdout, result.stderr) == ("", "only-err\n")


@integration
def test_stdin_is_at_eof(any_t: SshTransport) -> None:
    started = time.monotonic()
    assert any_t.run("cat; echo cat=$?").stdout == "cat=0\n"
    assert any_t.run("read line; echo read=$?").stdout == "read=1\n"
    assert time.monotonic() - started < 5


@integration
def test_commands_cannot_change_the_shell(any_t: SshTransport) -> None:
    home = any_t.run("pwd").stdout
    assert any_t.run("cd /tmp; LABCTL_X=1; set -e; umask 077; exit 5", check=False).exited == 5
    assert any_t.run("pwd; echo ${LABCTL_X-unset}; umask; false; echo after", check=False
                     ).stdout == home + "unset\n0022\nafter\n"
    syntax = any_t.run("echo (", check=False)
    assert syntax.exited == 2 and "Syntax error" in syntax.stderr
    assert any_t.run("echo still-here").stdout == "still-here\n"


@integration
def test_marker_lookalikes_in_output_do_not_confuse(root_t: SshTransport) -> None:
    tricky = "printf '\\n1 0\\n\\nmarker 1\\n'; printf '\\nx 2\\n' >&2"
    result = root_t.run(tricky)
    assert (result.stdout, result.stderr) == ("\n1 0\n\nmarker 1\n", "\nx 2\n")


# --- errors, timeouts, interrupts ---------------------------------------------------------

@integration
def test_nonzero_exit_raises_host_error_with_tail(user_t: SshTransport) -> None:
    with pytest.raises(HostError) as caught:
        user_t.run("seq 1 20; echo 'no such thing' >&2; exit 7")
    error = caught.value
    assert (error.host, error.rc) == (user_t.host, 7)
    assert "exited 7" in str(error) and "no such thing" in str(error)
    assert "20" in str(error) and "\n    1\n" not in str(error)   # only the tail


@integration
def test_check_false_returns_failure(user_t: SshTransport) -> None:
    result = user_t.run("echo out; false", check=False)
    assert (result.stdout, result.exited, result.ok) == ("out\n", 1, False)


@integration
def test_timeout_resets_shell_and_kills_command(root_t: SshTransport) -> None:
    started = time.monotonic()
    with pytest.raises(HostError, match="timed out after 0.5s") as caught:
        root_t.run("echo partial; sleep 31.125", timeout=0.5)
    assert time.monotonic() - started < 5
    assert caught.value.rc is None and "partial" in str(caught.value)
    assert root_t.run("echo next").stdout == "next\n"
    assert gone(root_t, "sleep 31.125")


@contextmanager
def interrupted_after(seconds: float) -> Iterator[None]:
    """A KeyboardInterrupt (as from Ctrl-C) ``seconds`` into the block; SIGALRM put back after."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGALRM)
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@integration
def test_reset_after_interrupt(user_t: SshTransport) -> None:
    with interrupted_after(0.3), pytest.raises(KeyboardInterrupt):
        user_t.run("sleep 32.125; echo late")
    user_t.reset()
    assert user_t.run("echo fresh").stdout == "fresh\n"
    assert gone(user_t, "sleep 32.125")


@integration
def test_interrupted_shell_is_replaced_on_next_run(user_t: SshTransport) -> None:
    with interrupted_after(0.3), pytest.raises(KeyboardInterrupt):
        user_t.run("sleep 33.125; echo late")
    assert user_t.run("echo fresh").stdout == "fresh\n"      # no "late" leaking in
    assert gone(user_t, "sleep 33.125")


@integration
def test_killed_remote_shell_is_an_error_then_recovers(user_t: SshTransport) -> None:
    with pytest.raises(HostError, match="remote shell ended unexpectedly"):
        user_t.run("kill -KILL $$")
    assert user_t.run("echo back").stdout == "back\n"


@integration
def test_reset_reconnects_a_dead_connection(sshd_netns: Any) -> None:
    with SshTransport(sshd_netns.user) as transport:
        assert transport._connection is not None
        transport._connection.client.get_transport().close()    # the link dies
        transport.reset()
        assert transport.run("echo reconnected").stdout == "reconnected\n"


# --- scripts and files --------------------------------------------------------------------

@integration
def test_run_script(any_t: SshTransport) -> None:
    script = """
        greet() { echo "hello $1"; }
        name=lab
        greet "$name"
        cat <<EOF
        here $name
        EOF
        echo warn >&2
        [ -n "$name" ]
    """
    script = "\n".join(line.strip() for line in script.splitlines())
    result = any_t.run_script(script)
    assert (result.stdout, result.stderr, result.exited) == ("hello lab\nhere lab\n",
                                                              "warn\n", 0)
    assert any_t.run_script("true\nexit 4\necho unreachable", check=False).exited == 4


@integration
def test_put_and_get_files(any_t: SshTransport, tmp_path: Path) -> None:
    remote_dir = any_t.run("mktemp -d").stdout.strip()
    try:
        any_t.put_text(f"{remote_dir}/note.txt", "é\nno newline", mode=0o600)
        assert any_t.run(f"stat -c %a {remote_dir}/note.txt; cat {remote_dir}/note.txt"
                         ).stdout == "600\né\nno newline"
        local = tmp_path / "blob.bin"
        local.write_bytes(bytes(range(256)) + os.urandom(2 * 2**20))
        local.chmod(0o751)
        any_t.put_file(local, f"{remote_dir}/blob.bin")
        assert any_t.run(f"stat -c %a {remote_dir}/blob.bin").stdout == "751\n"
        any_t.get_file(f"{remote_dir}/blob.bin", tmp_path / "back" / "blob.bin")
        assert (tmp_path / "back" / "blob.bin").read_bytes() == local.read_bytes()
        assert any_t.run(f"ls -A {remote_dir}").stdout == "blob.bin\nnote.txt\n"
    finally:
        any_t.run(f"rm -rf {remote_dir}")


@integration
def test_file_errors_are_host_errors(user_t: SshTransport, tmp_path: Path) -> None:
    with pytest.raises(HostError, match="sftp get /nonexistent/file"):
        user_t.get_file("/nonexistent/file", tmp_path / "x")
    assert not (tmp_path / "x").exists() and not list(tmp_path.iterdir())
    with pytest.raises(HostError, match="sftp put /root/forbidden"):
        user_t.put_text("/root/forbidden", "no")


# --- host keys, auth, config files --------------------------------------------------------

@integration
def test_unknown_host_key_is_refused(sshd_netns: Any, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(sshd.known_hosts_line("127.0.0.9", 22, sshd_netns.host_pubkey) + "\n")
    with pytest.raises(TransportError) as caught:
        SshTransport(sshd_netns.target("root", known_hosts=str(other))).open()
    message = str(caught.value)
    assert "unknown host key for 127.0.0.1" in message and "ssh-ed25519 SHA256:" in message
    assert str(other) in message and "labctl up" in message


@integration
def test_changed_host_key_is_refused(sshd_netns: Any, tmp_path: Path) -> None:
    sshd.generate_keypair(tmp_path / "impostor", "impostor")
    pinned = tmp_path / "known_hosts"
    pinned.write_text(sshd.known_hosts_line("127.0.0.1", 22, tmp_path / "impostor.pub") + "\n")
    with pytest.raises(TransportError, match="host key changed") as caught:
        SshTransport(sshd_netns.target("root", known_hosts=str(pinned))).open()
    assert "labctl up" in str(caught.value)


@integration
def test_missing_known_hosts_file_is_refused(sshd_netns: Any, tmp_path: Path) -> None:
    target = sshd_netns.target("root", known_hosts=str(tmp_path / "absent"))
    with pytest.raises(TransportError, match="known_hosts file .* is missing"):
        SshTransport(target).open()


@integration
def test_wrong_key_is_an_auth_error(sshd_netns: Any, tmp_path: Path) -> None:
    sshd.generate_keypair(tmp_path / "stranger", "stranger")
    target = sshd_netns.target("root", key_file=str(tmp_path / "stranger"))
    with pytest.raises(TransportError, match="authentication with key"):
        SshTransport(target).open()


@integration
def test_users_ssh_and_fabric_config_are_not_read(
    sshd_netns: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    (ssh_dir / "config").write_text(
        "Host *\n  HostName 192.0.2.1\n  Port 1\n  User nobody\n"
        "  IdentityFile /nonexistent\n  ProxyCommand false\n  ConnectTimeout 1\n")
    sshd.generate_keypair(tmp_path / "impostor", "impostor")
    (ssh_dir / "known_hosts").write_text(
        sshd.known_hosts_line("127.0.0.1", 22, tmp_path / "impostor.pub") + "\n")
    (tmp_path / ".fabric.yml").write_text("user: nobody\nport: 1\nconnect_kwargs:\n"
                                          "  key_filename: /nonexistent\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FABRIC_USER", "nobody")
    assert Path("~/.ssh/config").expanduser() == ssh_dir / "config"
    with SshTransport(sshd_netns.root) as transport:
        assert transport.run("id -un").stdout == "root\n"


# --- namespaces and parallelism -----------------------------------------------------------

@integration
def test_connect_in_netns_leaves_caller_namespace_alone(sshd_netns: Any) -> None:
    own = os.readlink("/proc/thread-self/ns/net")
    sock = connect_in_netns(sshd_netns.netns, "127.0.0.1", 22, 2.0)
    try:
        assert sock.recv(64).startswith(b"SSH-2.0-")
    finally:
        sock.close()
    assert os.readlink("/proc/thread-self/ns/net") == own
    with pytest.raises(TransportError, match="refused by 127.0.0.1:2 in network namespace"):
        connect_in_netns(sshd_netns.netns, "127.0.0.1", 2, 2.0)


@integration
def test_run_parallel_on_two_transports(root_t: SshTransport, user_t: SshTransport) -> None:
    started = time.monotonic()
    results = run_parallel([(root_t, "sleep 0.6; id -un"), (user_t, "sleep 0.6; id -un")])
    assert time.monotonic() - started < 1.15   # serial would take >= 1.2 s
    assert [r.stdout for r in results] == ["root\n", "labctl-bench\n"]
    with pytest.raises(HostError) as caught:
        run_parallel([(root_t, "true"), (user_t, "exit 9"), (root_t, "exit 8")])
    assert caught.value.rc == 9


@integration
def test_run_parallel_same_transport_serializes(user_t: SshTransport) -> None:
    results = run_parallel([(user_t, f"echo {n}") for n in range(6)])
    assert [r.stdout for r in results] == [f"{n}\n" for n in range(6)]


@integration
def test_open_all(sshd_netns: Any) -> None:
    transports = open_all({"a": sshd_netns.root, "b": sshd_netns.user})
    try:
        assert transports["b"].run("id -un").stdout == "labctl-bench\n"
    finally:
        for transport in transports.values():
            transport.close()
    bad = sshd_netns.target("root", host="c", netns="lct-no-such-ns")
    with pytest.raises(TransportError, match="does not exist"):
        open_all({"a": sshd_netns.root, "c": bad})


@integration
def test_commands_are_fast(user_t: SshTransport) -> None:
    started = time.perf_counter()
    for _ in range(100):
        user_t.run("true")
    per_command = (time.perf_counter() - started) / 100
    assert per_command < 0.005, f"{per_command * 1000:.2f} ms per command"


@integration
def test_threads_do_not_leak_into_namespaces(sshd_netns: Any) -> None:
    # other tests' connection threads may still be winding down: look only at ours
    connect_in_netns(sshd_netns.netns, "127.0.0.1", 22, 2.0).close()
    assert not [t for t in threading.enumerate() if t.name.startswith("netns-connect-")]


# --- labctl.labs.sshd helpers ------------------------------------------------------------------

@integration
def test_sshd_accepts_the_config(sshd_netns: Any) -> None:
    config = sshd_netns.dir / "sshd_config"
    checked = subprocess.run([sshd.SSHD_PATH, "-t", "-f", str(config)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stderr


@integration
def test_sshd_start_failure_is_a_lab_error(sshd_netns: Any, tmp_path: Path) -> None:
    config = sshd.write_sshd_config(tmp_path, "10.255.255.1", 22, tmp_path / "ak",
                                    sshd_netns.dir / "host_ed25519", tmp_path / "pid")
    with pytest.raises(LabError, match="sshd failed to start") as caught:
        sshd.start_sshd_in_netns(sshd_netns.netns, config, tmp_path / "log")
    assert "10.255.255.1" in str(caught.value)       # sshd's own words about the bind
    assert not (tmp_path / "pid").exists()
