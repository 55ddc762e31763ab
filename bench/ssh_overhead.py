#!/usr/bin/env python3
"""Benchmark (side effects: namespace, sshd, system user): cost of one trivial SSH command.

Run as root from the repository root: ``python3 bench/ssh_overhead.py [-n 200]``.

Sets up its own network namespace with lo up and a private sshd on 127.0.0.1:22 inside it
(labctl.sshd, through the same helper as the tests), then times N ``true`` commands, as root
and as a plain user whose login shell reads no rc files, through:

- labctl: ``SshTransport.run`` (TCP_NODELAY socket, one persistent remote shell);
- fabric: ``Connection.run`` with fabric's default settings, over a socket opened in the
  same namespace with default socket options (no TCP_NODELAY), as a plain connect would be.

Prints per-command milliseconds and the ratio; the goal is labctl >= 20x faster in both.
Everything is torn down at the end, also on failure. Traffic stays in the namespace.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fabric import Connection  # noqa: E402  (bench code: fabric is the baseline)

from labctl.labstate import SshTarget  # noqa: E402
from labctl.netns_socket import connect_in_netns  # noqa: E402
from labctl.transport import SshTransport  # noqa: E402
from tests.conftest_sshd import skip_reason, sshd_lab  # noqa: E402

GOAL = 20.0
WARMUP = 5


def time_per_command(run_once: Callable[[], object], count: int) -> float:
    """Mean seconds per call of ``run_once`` over ``count`` calls, after a warm-up."""
    for _ in range(WARMUP):
        run_once()
    started = time.perf_counter()
    for _ in range(count):
        run_once()
    return (time.perf_counter() - started) / count


def labctl_cost(target: SshTarget, count: int) -> float:
    with SshTransport(target) as transport:
        return time_per_command(lambda: transport.run("true"), count)


def fabric_cost(target: SshTarget, count: int) -> float:
    sock = connect_in_netns(target.netns, target.address, target.port, 10.0, nodelay=False)
    connection = Connection(
        target.address, user=target.user, port=target.port,
        connect_kwargs={"sock": sock, "key_filename": [target.key_file]},
    )
    try:
        return time_per_command(lambda: connection.run("true", hide=True), count)
    finally:
        connection.close()


def measure(target: SshTarget, count: int, rounds: int) -> tuple[float, float]:
    """Median over ``rounds`` of (labctl, fabric) seconds per command."""
    ours = [labctl_cost(target, count) for _ in range(rounds)]
    theirs = [fabric_cost(target, count) for _ in range(rounds)]
    return statistics.median(ours), statistics.median(theirs)


def report(rows: list[tuple[str, float, float]], count: int) -> bool:
    print(f"\n{count} x `true` over SSH to an sshd in a network namespace (loopback)\n")
    print(f"{'user':<14} {'labctl ms/cmd':>14} {'fabric ms/cmd':>14} {'ratio':>8}  goal")
    met = True
    for user, ours, theirs in rows:
        ratio = theirs / ours
        met = met and ratio >= GOAL
        verdict = "ok" if ratio >= GOAL else f"MISSED (< {GOAL:g}x)"
        print(f"{user:<14} {ours * 1000:>14.3f} {theirs * 1000:>14.2f} {ratio:>7.0f}x  {verdict}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=200, help="commands per timing")
    parser.add_argument("--rounds", type=int, default=1, help="timings per cell (median)")
    args = parser.parse_args()
    reason = skip_reason()
    if reason:
        print(f"ssh_overhead: cannot run: {reason}", file=sys.stderr)
        return 2
    with sshd_lab("lcb") as lab:
        rows = []
        for target in (lab.root, lab.user):
            ours, theirs = measure(target, args.count, args.rounds)
            rows.append((target.user, ours, theirs))
    return 0 if report(rows, args.count) else 1


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
