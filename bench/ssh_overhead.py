#!/usr/bin/env python3
"""Benchmark (side effects: namespace, sshd, system user): cost of one trivial SSH command.

Run as root from the repository root: ``python3 bench/ssh_overhead.py [-n 200]``.

Sets up its own network namespace with lo up and a private sshd on 127.0.0.1:22 inside it
(labctl.labs.sshd, through the same helper as the tests), then times N ``true`` commands, as root
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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fabric import Connection  # noqa: E402  (bench code: fabric is the baseline)

from labctl.transport.netns_socket import connect_in_netns  # noqa: E402
from labctl.transport.ssh import SshTransport  # noqa: E402
from labctl.transport.target import SshTarget  # noqa: E402
from tests.helpers.sshd_fixtures import skip_reason, sshd_lab  # noqa: E402

GOAL = 20.0
WARMUP = 5


def time_calls(run_once: Callable[[], object], count: int) -> list[float]:
    """Seconds taken by each of ``count`` calls of ``run_once``, after a warm-up."""
    for _ in range(WARMUP):
        run_once()
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        run_once()
        durations.append(time.perf_counter() - started)
    return durations


def labctl_calls(target: SshTarget, count: int) -> list[float]:
    with SshTransport(target) as transport:
        return time_calls(lambda: transport.run("true"), count)


def fabric_calls(target: SshTarget, count: int) -> list[float]:
    sock = connect_in_netns(target.netns, target.address, target.port, 10.0, nodelay=False)
    connection = Connection(
        target.address, user=target.user, port=target.port,
        connect_kwargs={"sock": sock, "key_filename": [target.key_file]},
    )
    try:
        return time_calls(lambda: connection.run("true", hide=True), count)
    finally:
        connection.close()


@dataclass(frozen=True)
class Row:
    user: str
    ours: list[float]
    theirs: list[float]

    @property
    def ratio(self) -> float:
        """Median against median: robust to a stray slow call on a busy 2-core machine."""
        return statistics.median(self.theirs) / statistics.median(self.ours)


def report(rows: list[Row], count: int) -> bool:
    print(f"\n{count} x `true` over SSH to an sshd in a network namespace (loopback); "
          "ms per command, median (mean)\n")
    print(f"{'user':<14} {'labctl':>16} {'fabric defaults':>18} {'ratio':>8}  goal")
    for row in rows:
        verdict = "ok" if row.ratio >= GOAL else f"MISSED (< {GOAL:g}x)"
        print(f"{row.user:<14} {_ms(row.ours):>16} {_ms(row.theirs):>18} "
              f"{row.ratio:>7.0f}x  {verdict}")
    return all(row.ratio >= GOAL for row in rows)


def _ms(durations: list[float]) -> str:
    return f"{statistics.median(durations) * 1000:.3f} ({statistics.mean(durations) * 1000:.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=200, help="commands per timing")
    args = parser.parse_args()
    reason = skip_reason()
    if reason:
        print(f"ssh_overhead: cannot run: {reason}", file=sys.stderr)
        return 2
    with sshd_lab("lcb") as lab:
        rows = [Row(t.user, labctl_calls(t, args.count), fabric_calls(t, args.count))
                for t in (lab.root, lab.user)]
    return 0 if report(rows, args.count) else 1


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
