#!/usr/bin/env python3
"""Benchmark (side effects: namespace, sshd, a throw-away user, a sudoers drop-in): what a
non-root login with `become: sudo` costs against logging in as root.

Run as root from the repository root: ``python3 bench/ssh_sudo.py [-n 200] [-c 10]``.

One network namespace with a private sshd on 127.0.0.1:22 that lets in root and a new user
whose sudoers drop-in grants NOPASSWD. For each login, through ``SshTransport``: the time to
open a connection (with the user: the sudo check and a root shell under sudo), N ``true``
commands, and 4 MiB uploads and downloads, in alternating rounds. Prints milliseconds and the ratios sudo/root;
the goal: commands cost the same (ratio < 1.2: the shell is root's either way), the connection
and the transfers stay within 2x. Everything is removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labctl.labs import sshd  # noqa: E402
from labctl.local.procs import stop_pid  # noqa: E402
from labctl.transport.ssh import SshTransport  # noqa: E402
from labctl.transport.target import SshTarget  # noqa: E402
from tests.helpers.namespaces import created_namespace  # noqa: E402
from tests.helpers.sshd_fixtures import skip_reason as sshd_skip_reason  # noqa: E402
from tests.helpers.sudo_users import skip_reason as sudo_skip_reason  # noqa: E402
from tests.helpers.sudo_users import sudo_user  # noqa: E402

GOALS = {"command": 1.2, "connect": 2.0, "upload 4 MiB": 2.0, "download 4 MiB": 2.0}
PAYLOAD = 4 << 20
ROUNDS = 10


def timed(action: Callable[[], object], count: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        action()
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        durations.append(time.perf_counter() - started)
    return durations


def measure(root: SshTarget, sudo: SshTarget, commands: int, connects: int, work: Path
            ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Both logins' timings, taken in alternating rounds (a busy machine's drift hits both)."""
    times: dict[str, dict[str, list[float]]] = {"root": {}, "sudo": {}}
    transports = {"root": SshTransport(root), "sudo": SshTransport(sudo)}
    source = work / "payload"
    source.write_bytes(secrets.token_bytes(PAYLOAD))
    try:
        for transport in transports.values():
            transport.open()
        for _ in range(ROUNDS):
            for login, transport in transports.items():
                one_round(transport, times[login], max(1, commands // ROUNDS), source,
                          work / f"remote-{login}", work / f"back-{login}")
    finally:
        for transport in transports.values():
            transport.close()
    for _ in range(connects):
        for login, target in (("root", root), ("sudo", sudo)):
            started = time.perf_counter()
            SshTransport(target).__enter__().close()
            add(times[login], "connect", [time.perf_counter() - started])
    return times["root"], times["sudo"]


def one_round(transport: SshTransport, into: dict[str, list[float]], commands: int,
              source: Path, remote: Path, back: Path) -> None:
    add(into, "command", timed(lambda: transport.run("true"), commands))
    add(into, "upload 4 MiB", timed(lambda: transport.put_file(source, str(remote), 0o600), 1, 0))
    add(into, "download 4 MiB", timed(lambda: transport.get_file(str(remote), back), 1, 0))
    assert back.read_bytes() == source.read_bytes()


def add(into: dict[str, list[float]], what: str, durations: list[float]) -> None:
    into.setdefault(what, []).extend(durations)


@contextlib.contextmanager
def lab() -> Iterator[tuple[SshTarget, SshTarget, Path]]:
    with contextlib.ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="labctl-bench-sudo-"))
        stack.callback(shutil.rmtree, work, True)
        work.chmod(0o755)             # the user's sshd child reads authorized_keys here
        user = stack.enter_context(sudo_user(work, "lcbs", "{user} ALL=(root) NOPASSWD: ALL"))
        netns = stack.enter_context(created_namespace(f"lcbs-{os.getpid()}"))
        sshd.generate_keypair(work / "host_ed25519", "labctl bench host key")
        sshd.generate_keypair(work / "id_ed25519", "labctl bench client key")
        authorized = work / "authorized_keys"
        authorized.write_text((work / "id_ed25519.pub").read_text())
        authorized.chmod(0o644)
        known = work / "known_hosts"
        known.write_text(sshd.known_hosts_line("127.0.0.1", 22, work / "host_ed25519.pub") + "\n")
        config = sshd.write_sshd_config(work, "127.0.0.1", 22, authorized, work / "host_ed25519",
                                        work / "sshd.pid", allow_users=["root", user])
        stack.callback(stop_pid, sshd.start_sshd_in_netns(netns, config, work / "sshd.log"))
        private = work / "private"    # root's only: the transfers go where only root may write
        private.mkdir(mode=0o700)
        root = SshTarget("root", "127.0.0.1", 22, "root", str(work / "id_ed25519"), str(known),
                         netns)
        yield root, replace(root, host="sudo", user=user, become="sudo"), private


def report(root: dict[str, list[float]], sudo: dict[str, list[float]]) -> bool:
    print("\nSshTransport to an sshd in a network namespace (loopback); ms, median (mean)\n")
    print(f"{'':<16} {'root login':>18} {'user + sudo -n':>18} {'sudo/root':>10}  goal")
    met = True
    for what, goal in GOALS.items():
        ratio = statistics.median(sudo[what]) / statistics.median(root[what])
        ok = ratio < goal
        met &= ok
        print(f"{what:<16} {_ms(root[what]):>18} {_ms(sudo[what]):>18} {ratio:>9.2f}x  "
              f"{'ok' if ok else 'MISSED'} (< {goal:g}x)")
    return met


def _ms(durations: list[float]) -> str:
    return f"{statistics.median(durations) * 1000:.2f} ({statistics.mean(durations) * 1000:.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--commands", type=int, default=200, help="commands per login")
    parser.add_argument("-c", "--connects", type=int, default=10, help="connections per login")
    args = parser.parse_args()
    reason = sshd_skip_reason() or sudo_skip_reason()
    if reason:
        print(f"ssh_sudo: cannot run: {reason}", file=sys.stderr)
        return 2
    with lab() as (root, sudo, private):
        root_times, sudo_times = measure(root, sudo, args.commands, args.connects, private)
    return 0 if report(root_times, sudo_times) else 1


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
