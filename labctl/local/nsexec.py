"""Running programs inside a network namespace (side effects: subprocess).

`ip netns exec` makes the root mount a slave first, which fails where "/" is not a mount
point (a chroot, some containers). This does the same job with util-linux instead:
`nsenter --net` for programs that only need the namespace's network, and, for programs that
read or write /sys/class/net (sshd and every session it starts), a private mount namespace
with a fresh sysfs that shows the namespace's own devices. The host's /sys is untouched:
the new /sys mount is made private before anything is mounted on it.
"""

from __future__ import annotations

import subprocess

from labctl.errors import LabError

NETNS_DIR = "/run/netns"
_OWN_SYSFS = ('mount --make-rprivate /sys && '
              'mount -t sysfs -o nosuid,nodev,noexec sysfs /sys && exec "$@"')


def netns_argv(netns: str, argv: list[str], *, own_sysfs: bool = False) -> list[str]:
    """argv that runs ``argv`` in the network namespace ``netns`` (optionally with its /sys)."""
    enter = ["nsenter", f"--net={NETNS_DIR}/{netns}"]
    if not own_sysfs:
        return enter + argv
    return enter + ["unshare", "--mount", "--propagation", "unchanged",
                    "sh", "-c", _OWN_SYSFS, "sh"] + argv


def run_in_netns(netns: str, argv: list[str], *, own_sysfs: bool = False,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(netns_argv(netns, argv, own_sysfs=own_sysfs), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise LabError(f"in network namespace {netns}: {' '.join(argv)} failed "
                       f"(exit {done.returncode}): {done.stderr.strip()}")
    return done
