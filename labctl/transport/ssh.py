"""SSH transport to lab hosts (side effects: network). The only module importing fabric/paramiko.

One SSH connection per host, opened from inside the host's network namespace when the target
has one (``labctl.transport.netns_socket``), with TCP_NODELAY. Host keys are pinned: paramiko's
RejectPolicy with only the lab's own known_hosts file loaded; neither ~/.ssh/known_hosts nor
~/.ssh/config (nor fabric's config files) are ever read. Authentication uses the lab key only.

Commands do not each pay for a new session and a login shell. One remote ``/bin/sh`` is
started per connection and fed commands on its stdin; after each command it prints an end
marker (a random nonce per shell, a sequence number and ``$?``) on stdout and on stderr, so
both streams are cut exactly per command. Each command runs as ``(eval 'CMD') </dev/null``:
in a subshell (``exit``, ``cd`` or a syntax error cannot hurt the shell) with stdin at EOF.
Output is kept byte-exact, only the newline written before each marker is removed; it is
decoded as UTF-8 (undecodable bytes become U+FFFD, as invoke does). Measured on loopback
(2 vCPUs): ~0.4-0.5 ms per command, half of it the subshell's fork, against ~46 ms (plain
user) and ~150 ms (root, whose .bashrc runs `pyenv init`) for fabric's ``Connection.run``.
A command that times out or is interrupted leaves the shell "dirty": it is replaced (and the
old shell's process group sent SIGTERM) before the next command, or by ``reset()``.

A target with ``become: sudo`` logs in as a plain user and gets root once per connection
(``labctl.transport.become``): after ``sudo -n`` has proven to give a root shell, the
persistent shell is ``sudo -n /bin/sh`` and SFTP is OpenSSH's sftp-server under ``sudo -n``.
A target with a ``jump`` host is reached through a ``direct-tcpip`` channel of a connection
to the jump host (as ProxyJump), whose key is pinned the same way, from its own known_hosts.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import posixpath
import secrets
import select
import shlex
import shutil
import socket
import stat
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO

import paramiko
from fabric import Config, Connection

from labctl.errors import HostError, LabctlError, TransportError
from labctl.local.nsexec import netns_argv
from labctl.transport.base import CommandResult
from labctl.transport.become import (
    FIND_SFTP_SERVER,
    SFTP_SERVERS,
    SUDO_CHECK,
    as_root,
    sftp_server_command,
    sudo_problem,
)
from labctl.transport.netns_socket import connect_in_netns
from labctl.transport.target import SshTarget

# paramiko logs failed connection attempts (e.g. to a guest that is still booting) at ERROR;
# with no handler configured Python prints them raw to stderr. labctl reports errors itself.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

READ_CHUNK = 1 << 16
SFTP_CHUNK = 1 << 15
SHELL_START_TIMEOUT = 30.0          # the login shell may source slow rc files once
SHELL = "/bin/sh"
UP_HINT = ("`labctl up` writes the known_hosts of a lab it makes (provider netns, libvirt; "
           "`labctl down && labctl up` makes the lab again with new keys); for provider ssh it "
           "is the inventory's hosts.{host}.ssh.known_hosts, which you write")
KEYSCAN_TYPES = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa", "ssh-dss": "dsa"}


class ShellTimeout(Exception):
    """Internal: a command did not finish in time (partial output attached)."""

    def __init__(self, stdout: bytes, stderr: bytes):
        super().__init__("timed out")
        self.stdout, self.stderr = stdout, stderr


class ShellGone(Exception):
    """Internal: the remote shell's channel ended before the end markers arrived."""


class RemoteShell:
    """One remote ``/bin/sh`` on a session channel, running one command at a time."""

    def __init__(self, channel: paramiko.Channel, nonce: str):
        self.channel = channel
        self.nonce = nonce.encode()
        self.pid: int | None = None
        self.pgid: int | None = None          # its process group (sudo's when it runs under sudo)
        self.seq = 0
        self.out = bytearray()
        self.err = bytearray()
        self.wake_fd = channel.fileno()       # readable when stdout or stderr has data

    @classmethod
    def start(cls, transport: paramiko.Transport, timeout: float,
              become: str | None = None) -> RemoteShell:
        """Open a session running ``sh`` (root's through ``sudo -n`` with ``become``); wait
        until it is ready (login rc files done). It reports its PID and process group."""
        channel = transport.open_session(timeout=timeout)
        shell = cls(channel, secrets.token_hex(16))
        nonce = shell.nonce.decode()
        # /proc/PID/stat after the ")" closing the command name: state, ppid, pgrp, ...
        ready = (f'read -r stat </proc/$$/stat; set -- ${{stat##*)}}; '
                 f'echo "{nonce} ready $$ $3"; echo "{nonce} ready" >&2; exec {SHELL}')
        start = as_root(ready) if become else f"exec {SHELL} -c {shlex.quote(ready)}"
        try:
            channel.exec_command(start)
            out, _ = shell.collect(f"{nonce} ready ".encode(), f"{nonce} ready\n".encode(),
                                   time.monotonic() + timeout)
        except BaseException:
            channel.close()
            raise
        words = out.split()
        shell.pid = int(words[words.index(b"ready") + 1])
        shell.pgid = int(words[-1])       # the PID itself where /proc could not be read
        return shell

    def execute(self, command: str, timeout: float | None) -> tuple[bytes, bytes, int]:
        """Run one command; stdout and stderr bytes and its exit status."""
        self.seq += 1
        mark = f"{self.nonce.decode()} {self.seq}"
        line = (f"({'eval ' + shlex.quote(command)}) </dev/null; "
                f"printf '\\n%s %d\\n' '{mark}' $?; printf '\\n%s\\n' '{mark}' >&2\n")
        self.channel.sendall(line.encode())
        deadline = None if timeout is None else time.monotonic() + timeout
        out, err = self.collect(f"\n{mark} ".encode(), f"\n{mark}\n".encode(), deadline)
        stdout, _, status = out.rpartition(f"\n{mark} ".encode())
        return stdout, err[: -len(f"\n{mark}\n")], int(status)

    def collect(
        self, out_mark: bytes, err_mark: bytes, deadline: float | None
    ) -> tuple[bytes, bytes]:
        """Read until ``out_mark``+status line and ``err_mark`` arrived; return both parts.

        The stdout part ends with ``out_mark`` followed by the status digits (newline
        dropped), the stderr part with ``err_mark``; bytes after them stay buffered.
        """
        out_end = err_end = -1
        out_from = err_from = 0
        while out_end < 0 or err_end < 0:
            self._wait(deadline)
            self._drain()
            if out_end < 0:
                out_end = _find_line_end(self.out, out_mark, out_from)
                out_from = max(0, len(self.out) - len(out_mark) - 12)
            if err_end < 0:
                err_end = _find_end(self.err, err_mark, err_from)
                err_from = max(0, len(self.err) - len(err_mark))
        out, err = bytes(self.out[: out_end - 1]), bytes(self.err[:err_end])
        del self.out[:out_end], self.err[:err_end]
        return out, err

    def _wait(self, deadline: float | None) -> None:
        if self.channel.recv_ready() or self.channel.recv_stderr_ready():
            return
        if self.channel.eof_received or self.channel.closed:
            raise ShellGone()
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise ShellTimeout(bytes(self.out), bytes(self.err))
        select.select([self.wake_fd], [], [], remaining)

    def _drain(self) -> None:
        while self.channel.recv_ready():
            self.out += self.channel.recv(READ_CHUNK)
        while self.channel.recv_stderr_ready():
            self.err += self.channel.recv_stderr(READ_CHUNK)

    def close(self) -> None:
        self.channel.close()


def _find_end(buffer: bytearray, mark: bytes, start: int) -> int:
    """Index just past ``mark`` in ``buffer`` (searching from ``start``), or -1."""
    at = buffer.find(mark, start)
    return -1 if at < 0 else at + len(mark)


def _find_line_end(buffer: bytearray, mark: bytes, start: int) -> int:
    """Index just past the newline ending the line that starts with ``mark``, or -1."""
    at = buffer.find(mark, start)
    if at < 0:
        return -1
    newline = buffer.find(b"\n", at + len(mark))
    return -1 if newline < 0 else newline + 1


class PinnedHostKeyPolicy(paramiko.RejectPolicy):  # type: ignore[misc]
    """RejectPolicy that says which host and key were refused, and what to do."""

    def __init__(self, target: SshTarget, jump_of: SshTarget | None = None):
        self.target = target
        self.jump_of = jump_of            # set when ``target`` is this host's jump host

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        which = "jump host " if self.jump_of is not None else ""
        raise TransportError(
            f"{self.target.host}: unknown host key for {which}{hostname}: the server offers "
            f"{_describe_key(key)}, which {self.target.known_hosts} does not pin; refusing to "
            f"connect.\n{repin_hint(self.target, key, changed=False, jump=self.jump_of is not None)}"
        )


def _describe_key(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {fingerprint(key)}"


def fingerprint(key: paramiko.PKey) -> str:
    """The key's SHA256 fingerprint as OpenSSH prints it (`ssh-keygen -lf`)."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def known_hosts_name(address: str, port: int) -> str:
    """How known_hosts (and ssh-keygen -R, ssh-keyscan) name a host: [addr]:port unless 22."""
    return address if port == 22 else f"[{address}]:{port}"


def repin_hint(target: SshTarget, offered: paramiko.PKey, changed: bool, jump: bool = False) -> str:
    """Exactly how to pin the key a host offers now: a lab labctl made gets new keys from
    `labctl down && labctl up`; an existing host's key is verified, then replaced by hand."""
    why = ("To pin the new key, once you know why it changed (a re-installed host, or someone "
           "between you and it):" if changed else
           "To pin it, once you know it is the host's own key (and not someone's in between):")
    lab_made = ("  - a lab labctl made (provider netns or libvirt: it generates every key in the "
                "lab's directory and pins it before the first connection): `labctl down && "
                "labctl up` makes the lab again, with new keys pinned the same way")
    if _made_by_labctl(Path(target.known_hosts)):
        return f"{why}\n{lab_made}."
    return f"{why}\n{lab_made};\n{_existing_host_hint(target, offered, changed, jump)}"


def _made_by_labctl(known_hosts: Path) -> bool:
    """A providers' known_hosts: <inventory dir>/.labctl/<lab>/ssh/known_hosts."""
    parts = known_hosts.parts
    return len(parts) >= 4 and parts[-4] == ".labctl" and parts[-2] == "ssh"


def _existing_host_hint(target: SshTarget, offered: paramiko.PKey, changed: bool,
                        jump: bool = False) -> str:
    known = shlex.quote(target.known_hosts)
    new = shlex.quote(f"{target.known_hosts}.new")
    name = known_hosts_name(target.address, target.port)
    key_type = KEYSCAN_TYPES.get(offered.get_name(), offered.get_name().split("-")[0])
    # nsenter, not `ip netns exec`: that one fails where "/" is not a mount point (chroots)
    netns = shlex.join(netns_argv(target.netns, [])) + " " if target.netns else ""
    remove = f"\n      ssh-keygen -R {shlex.quote(name)} -f {known}" if changed else ""
    key_path = f"hosts.{target.host}.ssh.jump.known_hosts" if jump else \
        f"hosts.{target.host}.ssh.known_hosts"
    scan = f"ssh-keyscan -p {target.port} -t {key_type} {shlex.quote(target.address)}"
    if target.jump is not None:       # only the jump host reaches the host: scan from there
        hop = target.jump
        via = shlex.join(netns_argv(hop.netns, [])) + " " if hop.netns else ""
        scan = (f"{via}ssh -p {hop.port} -i {shlex.quote(hop.key_file)} -o UserKnownHostsFile="
                f"{shlex.quote(hop.known_hosts)} -o StrictHostKeyChecking=yes "
                f"{shlex.quote(f'{hop.user}@{hop.address}')} {scan}")
    else:
        scan = netns + scan
    return (
        f"  - an existing host (provider ssh; the inventory's {key_path}): "
        f"verify {fingerprint(offered)} out of band (on the host's console: ssh-keygen -lf "
        f"/etc/ssh/ssh_host_{key_type}_key.pub), then{remove}\n"
        f"      {scan} > {new}\n"
        f"      ssh-keygen -lf {new}      # must print {fingerprint(offered)}\n"
        f"      cat {new} >> {known} && rm {new}"
    )


def _hermetic_config(user: str) -> Config:
    """A fabric Config that reads no file at all: no fabric.yml, no ssh_config."""
    return Config(lazy=True, ssh_config=paramiko.SSHConfig(),
                  overrides={"load_ssh_configs": False, "user": user})


class SshTransport:
    """A pinned, key-authenticated SSH connection to one lab host, with a persistent shell
    (implements ``labctl.transport.base.Transport``)."""

    def __init__(self, target: SshTarget, connect_timeout: float = 10.0):
        self.target = target
        self.connect_timeout = connect_timeout
        self._connection: Connection | None = None
        self._jump: Connection | None = None          # the jump host's, while connected through it
        self._root_sftp: paramiko.SFTPClient | None = None   # ``sudo -n sftp-server``'s
        self._shell: RemoteShell | None = None
        self._shell_dirty = False
        self._lock = threading.RLock()

    @property
    def host(self) -> str:
        return self.target.host

    def __enter__(self) -> SshTransport:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        """Connect (pinned host key, lab key only) and start the remote shell. Idempotent."""
        with self._lock:
            if self._connection is not None and self._connection.is_connected:
                if self._shell is None or self._shell_dirty:
                    self._restart_shell()
                return
            self._drop_connection()
            self._connection = self._connect()
            try:
                self._restart_shell()
            except BaseException:
                self._drop_connection()
                raise

    def _connect(self) -> Connection:
        target = self.target
        for pinned in (target, target.jump) if target.jump else (target,):
            if not Path(pinned.known_hosts).is_file():
                raise TransportError(f"{target.host}: known_hosts file {pinned.known_hosts} is "
                                     f"missing; {UP_HINT.format(host=target.host)}.")
        jump = self._connect_jump(target.jump) if target.jump else None
        try:
            sock = (self._channel_through(jump) if jump is not None else
                    connect_in_netns(target.netns, target.address, target.port,
                                     self.connect_timeout))
            connection = self._open_connection(target, sock, None)
            try:
                if target.become:
                    self._check_become(connection)
            except BaseException:
                connection.close()
                raise
        except BaseException:
            if jump is not None:
                jump.close()
            raise
        self._jump = jump
        return connection

    def _connect_jump(self, jump: SshTarget) -> Connection:
        try:
            sock = connect_in_netns(jump.netns, jump.address, jump.port, self.connect_timeout)
        except TransportError as exc:
            raise TransportError(f"{self.host}: jump host {_where(jump)}: {exc}") from None
        return self._open_connection(jump, sock, self.target)

    def _open_connection(self, target: SshTarget, sock: socket.socket | paramiko.Channel,
                         jump_of: SshTarget | None) -> Connection:
        """An open, pinned, key-authenticated connection to ``target`` over ``sock``."""
        connection = Connection(
            host=target.address, user=target.user, port=target.port,
            config=_hermetic_config(target.user), forward_agent=False, gateway=False,
            connect_kwargs=self._connect_kwargs(sock, target.key_file),
        )
        connection.client.set_missing_host_key_policy(PinnedHostKeyPolicy(target, jump_of))
        connection.client.get_host_keys().load(target.known_hosts)
        try:
            connection.open()
        except BaseException as exc:
            connection.close()
            sock.close()
            raise self._connect_error(exc, target, jump_of is not None) from None
        return connection

    def _channel_through(self, jump: Connection) -> paramiko.Channel:
        """A ``direct-tcpip`` channel from the jump host to the target's SSH port."""
        target = self.target
        assert target.jump is not None
        transport = jump.client.get_transport()
        try:
            if transport is None:
                raise paramiko.SSHException("jump connection closed")
            return transport.open_channel("direct-tcpip", (target.address, target.port),
                                          ("127.0.0.1", 0), timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            said = exc.text if isinstance(exc, paramiko.ChannelException) else exc
            raise TransportError(
                f"{target.host}: the jump host {_where(target.jump)} could not connect to "
                f"{target.address}:{target.port} ({said or type(exc).__name__}): the host is down "
                f"or unreachable from the jump host, or the jump host's sshd forbids forwarding "
                f"(AllowTcpForwarding)") from None

    def _connect_kwargs(self, sock: socket.socket | paramiko.Channel,
                        key_file: str | None = None) -> dict[str, object]:
        return {
            "sock": sock,
            "key_filename": [key_file or self.target.key_file],
            "look_for_keys": False,
            "allow_agent": False,
            "timeout": self.connect_timeout,
            "banner_timeout": self.connect_timeout,
            "auth_timeout": self.connect_timeout,
        }

    def _connect_error(self, exc: BaseException, target: SshTarget | None = None,
                       is_jump: bool = False) -> BaseException:
        target = target or self.target
        if is_jump:
            where = f"{self.target.host}: jump host {_where(target)}"
        elif target.jump is not None:
            where = f"{target.host} ({_where(target)} via jump host {_where(target.jump)})"
        else:
            where = f"{target.host} ({_where(target)})"
        if isinstance(exc, (LabctlError, KeyboardInterrupt)):
            return exc
        if isinstance(exc, paramiko.BadHostKeyException):
            return TransportError(
                f"{where}: host key changed: the server offers {_describe_key(exc.key)}, but "
                f"{target.known_hosts} pins {_describe_key(exc.expected_key)}; refusing "
                f"to connect.\n{repin_hint(target, exc.key, changed=True, jump=is_jump)}"
            )
        if isinstance(exc, paramiko.AuthenticationException):
            return TransportError(f"{where}: authentication with key {target.key_file} "
                                  f"failed: {exc}")
        if isinstance(exc, (paramiko.SSHException, OSError, EOFError)):
            return TransportError(f"{where}: SSH connection failed: {exc or type(exc).__name__}")
        return exc

    def _check_become(self, connection: Connection) -> None:
        """Prove that ``sudo -n`` gives a root shell, before any command runs."""
        transport = connection.client.get_transport()
        assert transport is not None
        try:
            channel = transport.open_session(timeout=self.connect_timeout)
            channel.settimeout(SHELL_START_TIMEOUT)
            with channel:
                channel.exec_command(SUDO_CHECK)
                stdout = channel.makefile("rb").read()
                stderr = channel.makefile_stderr("rb").read()
                status = channel.recv_exit_status()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"{self.host}: cannot check sudo: "
                                 f"{exc or type(exc).__name__}") from None
        problem = sudo_problem(self.host, self.target.user, status, _decode(stdout),
                               _decode(stderr))
        if problem:
            raise TransportError(f"{problem}\n  (nothing was run on {self.host})")

    def _restart_shell(self) -> None:
        """Replace the remote shell by a new one; stop what the old one was still running."""
        old, self._shell = self._shell, None
        if old is not None:
            old.close()
        transport = self._paramiko_transport()
        try:
            self._shell = RemoteShell.start(transport, SHELL_START_TIMEOUT, self.target.become)
        except (ShellGone, ShellTimeout, paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"{self.host}: cannot start a remote shell: "
                                 f"{exc or type(exc).__name__}") from None
        self._shell_dirty = False
        if old is not None and old.pgid is not None:
            self._stop_process_group(self._shell, old.pgid)

    def _stop_process_group(self, shell: RemoteShell, pgid: int) -> None:
        """The old shell (or the sudo running it) led its own session (sshd's setsid): TERM
        its whole group."""
        try:
            shell.execute(f"kill -TERM -{int(pgid)} 2>/dev/null; true", 10.0)
        except (ShellGone, ShellTimeout, paramiko.SSHException, OSError, EOFError):
            self._shell_dirty = True      # the next command starts yet another shell

    def _paramiko_transport(self) -> paramiko.Transport:
        connection = self._connection
        transport = connection.client.get_transport() if connection else None
        if transport is None or not transport.is_active():
            raise TransportError(f"{self.host}: not connected (call open() first)")
        return transport

    def reset(self) -> None:
        """Drop the persistent shell and start a new one (reconnect if the link died)."""
        with self._lock:
            if self._connection is None or not self._connection.is_connected:
                self._drop_connection()
                self._connection = self._connect()
            self._restart_shell()

    def close(self) -> None:
        """Close the shell and the connection. Safe to call twice."""
        with self._lock:
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        if self._root_sftp is not None:
            self._root_sftp.close()
            self._root_sftp = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._jump is not None:
            self._jump.close()
            self._jump = None

    def run(self, command: str, *, check: bool = True,
            timeout: float | None = 60.0) -> CommandResult:
        """Run one shell command (stdin at EOF). HostError on non-zero exit when ``check``."""
        with self._lock:
            stdout, stderr, status = self._execute(command, timeout)
        result = CommandResult(self.host, command, _decode(stdout), _decode(stderr), status)
        if check and not result.ok:
            raise HostError(self.host, command, status, result.output)
        return result

    def run_script(self, script: str, *, check: bool = True,
                   timeout: float | None = 120.0) -> CommandResult:
        """Run a multi-line sh script in one round trip; its status is the last command's."""
        return self.run(script, check=check, timeout=timeout)

    def _execute(self, command: str, timeout: float | None) -> tuple[bytes, bytes, int]:
        if self._connection is None:
            self.open()
        elif self._shell is None or self._shell_dirty:
            self.reset()
        shell = self._shell
        assert shell is not None
        self._shell_dirty = True          # until the command's markers have arrived
        try:
            outcome = shell.execute(command, timeout)
        except ShellTimeout as exc:
            self._reset_after_timeout()
            partial = CommandResult(self.host, command, _decode(exc.stdout), _decode(exc.stderr), -1)
            raise HostError(self.host, command, None, partial.output,
                            why=f"timed out after {timeout:g}s") from None
        except (ShellGone, OSError, EOFError, paramiko.SSHException) as exc:
            raise self._lost(command, exc) from None
        self._shell_dirty = False
        return outcome

    def _reset_after_timeout(self) -> None:
        try:
            self.reset()
        except TransportError:
            pass                          # the next command retries (the shell stays dirty)

    def _lost(self, command: str, exc: BaseException) -> LabctlError:
        if self._connection_alive():
            return HostError(self.host, command, None, "",
                             why="the remote shell ended unexpectedly (killed or exited)")
        return TransportError(f"{self.host}: connection lost while running: {command}"
                              f" ({exc or type(exc).__name__})")

    def _connection_alive(self) -> bool:
        """Does the SSH connection still carry sessions? When sshd's session process dies,
        paramiko closes the channels before it marks the connection inactive: ask it."""
        if self._connection is None or not self._connection.is_connected:
            return False
        try:
            self._paramiko_transport().open_session(timeout=5.0).close()
        except (LabctlError, paramiko.SSHException, OSError, EOFError):
            return False
        return True

    def put_text(self, remote_path: str, text: str, mode: int = 0o644) -> None:
        """Write ``text`` (UTF-8) to ``remote_path`` atomically, with ``mode``."""
        self._upload(remote_path, io.BytesIO(text.encode()), mode)

    def put_file(self, local: Path, remote_path: str, mode: int | None = None) -> None:
        """Copy a local file to ``remote_path`` atomically; mode defaults to the local one."""
        if mode is None:
            mode = stat.S_IMODE(local.stat().st_mode)
        with local.open("rb") as source:
            self._upload(remote_path, source, mode)

    def get_file(self, remote_path: str, local: Path) -> None:
        """Copy ``remote_path`` to ``local`` (parents created; replaced atomically)."""
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(f".{local.name}.partial")
        try:
            with self._lock:
                self._sftp(f"sftp get {remote_path}").get(remote_path, str(partial))
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise self._sftp_error(f"sftp get {remote_path}", exc) from None
        partial.replace(local)

    def _upload(self, remote_path: str, source: IO[bytes], mode: int) -> None:
        command = f"sftp put {remote_path}"
        directory, name = posixpath.split(remote_path)
        partial = posixpath.join(directory, f".{name}.labctl-{secrets.token_hex(4)}")
        with self._lock:
            sftp = self._sftp(command)
            try:
                with sftp.open(partial, "wb") as remote:
                    remote.chmod(mode)        # before any byte is written
                    remote.set_pipelined(True)
                    shutil.copyfileobj(source, remote, SFTP_CHUNK)
                sftp.posix_rename(partial, remote_path)
            except OSError as exc:
                _remove_quietly(sftp, partial)
                raise self._sftp_error(command, exc) from None

    def _sftp(self, command: str) -> paramiko.SFTPClient:
        if self._connection is None or not self._connection.is_connected:
            raise TransportError(f"{self.host}: not connected (call open() first)")
        if self.target.become:
            return self._sudo_sftp(command)
        try:
            return self._connection.sftp()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostError(self.host, command, None, str(exc),
                            why="cannot open an SFTP session (is the sftp subsystem set?)"
                            ) from None

    def _sudo_sftp(self, command: str) -> paramiko.SFTPClient:
        """Root's SFTP: OpenSSH's sftp-server started with ``sudo -n`` on a session channel,
        so uploads land root-owned and atomically, and root-only files can be fetched."""
        if self._root_sftp is not None and not self._root_sftp.sock.closed:
            return self._root_sftp
        found = self.run(FIND_SFTP_SERVER, check=False, timeout=30.0)
        if not found.ok:
            raise HostError(self.host, command, None, "", why=(
                "no OpenSSH sftp-server program on the host (looked for "
                f"{', '.join(SFTP_SERVERS)}): labctl runs it with sudo to copy files as root"))
        try:
            channel = self._paramiko_transport().open_session(timeout=self.connect_timeout)
            channel.exec_command(sftp_server_command(found.stdout.strip()))
            self._root_sftp = paramiko.SFTPClient(channel)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostError(self.host, command, None, str(exc),
                            why=f"cannot start {found.stdout.strip()} with sudo -n") from None
        return self._root_sftp

    def _sftp_error(self, command: str, exc: OSError) -> HostError:
        return HostError(self.host, command, None, "", why=f"{command}: {exc.strerror or exc}")


def _remove_quietly(sftp: paramiko.SFTPClient, path: str) -> None:
    try:
        sftp.remove(path)
    except OSError:
        pass


def _where(target: SshTarget) -> str:
    return f"{target.user}@{target.address}:{target.port}"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def open_all(targets: dict[str, SshTarget], connect_timeout: float = 10.0
             ) -> dict[str, SshTransport]:
    """Open one transport per target, in parallel. On any failure close all and raise once."""
    transports = {name: SshTransport(t, connect_timeout) for name, t in targets.items()}
    if not transports:
        return {}
    with ThreadPoolExecutor(max_workers=len(transports)) as pool:
        futures = {name: pool.submit(t.open) for name, t in transports.items()}
    failures = {name: f.exception() for name, f in futures.items() if f.exception() is not None}
    if failures:
        for transport in transports.values():
            transport.close()
        raise TransportError("\n".join(_naming_host(name, str(exc)) for name, exc in failures.items()))
    return transports


def _naming_host(host: str, message: str) -> str:
    return message if message.startswith(f"{host}:") else f"{host}: {message}"


def run_parallel(jobs: list[tuple[SshTransport, str]], *, check: bool = True,
                 timeout: float | None = 60.0) -> list[CommandResult]:
    """Run each (transport, command) at once; results in job order.

    With ``check``, every job still runs to completion, then the first failure (in job
    order) is raised. Jobs on the same transport run one after the other.
    """
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(t.run, cmd, check=False, timeout=timeout) for t, cmd in jobs]
    results = [f.result() for f in futures]       # re-raises the first error, in job order
    if check:
        for result in results:
            if not result.ok:
                raise HostError(result.host, result.command, result.exited, result.output)
    return results


def close_all(transports: Iterable[SshTransport]) -> None:
    """Close every transport, ignoring ones already closed."""
    for transport in transports:
        transport.close()
