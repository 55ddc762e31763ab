"""TCP sockets opened inside a network namespace (side effects: sockets, setns).

Network namespaces are per thread in Linux. ``connect_in_netns`` therefore enters the
namespace in a short-lived dedicated thread (``setns(fd, CLONE_NEWNET)`` through ctypes,
since Python 3.11 has no ``os.setns``), creates and connects the socket there and hands it
back. A socket keeps the namespace it was created in for its whole life; the thread then
ends, and the caller's own namespace is never touched.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
from pathlib import Path

from labctl.errors import TransportError

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")


def connect_in_netns(
    netns: str | None, address: str, port: int, timeout: float, *, nodelay: bool = True
) -> socket.socket:
    """A connected, blocking TCP socket to address:port, opened inside ``netns`` if given.

    ``nodelay`` sets TCP_NODELAY (the default: request/response traffic over SSH suffers
    badly from Nagle + delayed ACK). Every failure raises TransportError.
    """
    where = f"{address}:{port}" + (f" in network namespace {netns!r}" if netns else "")
    if netns is None:
        return _connect(address, port, timeout, nodelay, where)
    netns_fd = _open_netns(netns)
    try:
        return _connect_in_thread(netns_fd, netns, address, port, timeout, nodelay, where)
    finally:
        os.close(netns_fd)


def _open_netns(netns: str) -> int:
    if not netns or "/" in netns or netns in (".", ".."):
        raise TransportError(f"invalid network namespace name {netns!r}")
    path = NETNS_DIR / netns
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TransportError(
            f"network namespace {netns!r} does not exist ({path} is missing)"
        ) from None
    except PermissionError:
        raise TransportError(
            f"permission denied opening network namespace {netns!r} ({path}); run as root"
        ) from None


def _connect_in_thread(
    netns_fd: int, netns: str, address: str, port: int, timeout: float, nodelay: bool,
    where: str,
) -> socket.socket:
    outcome: dict[str, socket.socket | BaseException] = {}

    def work() -> None:
        try:
            _enter_netns(netns_fd, netns)
            outcome["sock"] = _connect(address, port, timeout, nodelay, where)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"netns-connect-{netns}", daemon=True)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    sock = outcome["sock"]
    assert isinstance(sock, socket.socket)
    return sock


def _enter_netns(netns_fd: int, netns: str) -> None:
    """Move the calling thread (only) into the namespace behind ``netns_fd``."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(netns_fd, CLONE_NEWNET) == 0:
        return
    err = ctypes.get_errno()
    if err == errno.EPERM:
        raise TransportError(
            f"permission denied entering network namespace {netns!r} "
            "(setns needs CAP_SYS_ADMIN; run as root)"
        )
    raise TransportError(f"cannot enter network namespace {netns!r}: {os.strerror(err)}")


def _connect(
    address: str, port: int, timeout: float, nodelay: bool, where: str
) -> socket.socket:
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except ConnectionRefusedError:
        raise TransportError(f"connection refused by {where} (is sshd running?)") from None
    except TimeoutError:
        raise TransportError(f"timed out after {timeout:g}s connecting to {where}") from None
    except OSError as exc:
        raise TransportError(f"cannot connect to {where}: {exc.strerror or exc}") from None
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(None)
    return sock


def ssh_banner(netns: str | None, address: str, port: int, timeout: float = 3.0) -> str:
    """The SSH server's identification line ("SSH-2.0-OpenSSH_9.2p1 ..."): a cheap liveness
    check that needs no login. TransportError when nothing SSH-like answers."""
    with connect_in_netns(netns, address, port, timeout) as sock:
        sock.settimeout(timeout)
        data = b""
        try:
            while b"\n" not in data and len(data) < 512:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise TransportError(f"{address}:{port}: no SSH banner: {exc}") from None
    line = data.split(b"\n", 1)[0].decode(errors="replace").strip()
    if not line.startswith("SSH-"):
        raise TransportError(f"{address}:{port}: not an SSH server (got {line[:60]!r})")
    return line
