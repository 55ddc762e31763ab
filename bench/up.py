#!/usr/bin/env python3
"""Benchmark: labctl's own cost in `labctl up` of the libvirt lab (needs root, QEMU, libvirt).

Starts a private libvirtd in a network namespace of its own, takes the cached guest image
(`labctl image build` first), and measures, in one run:
  1. `up` of both guests: wall time minus the slowest guest's own boot time, read from the
     guest's clock (cloud-init's boot-finished records the uptime when it finished);
  2. `up` of one guest vs two guests (the same provider with one guest in its layout);
  3. re-`up` of a running lab.
Everything it made is removed at the end, also on failure.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labctl import runner  # noqa: E402
from labctl.input.config import load_inventory  # noqa: E402
from labctl.labs import libvirtd  # noqa: E402
from labctl.labs.providers.libvirt import LibvirtProvider  # noqa: E402
from labctl.labs.state import LabState  # noqa: E402
from labctl.transport.ssh import SshTransport  # noqa: E402


def quiet(_: str) -> None:
    pass


def guest_boot_seconds(state: LabState) -> dict[str, float]:
    """Per guest: its uptime when cloud-init finished (the first field of boot-finished)."""
    return {host: times[0] for host, times in guest_times(state).items()}


def guest_times(state: LabState) -> dict[str, tuple[float, float]]:
    """Per guest: (uptime at cloud-init finish, seconds from domain start to kernel start).
    The second is firmware + GRUB + kernel load, from the guest's wall clock minus its uptime
    (the guest's RTC starts from the host's clock)."""
    result = {}
    for host, target in state.targets.items():
        with SshTransport(target) as t:
            out = t.run("cut -d' ' -f1 /var/lib/cloud/instance/boot-finished; "
                        "date +%s.%N; cut -d' ' -f1 /proc/uptime").stdout.split()
        kernel_start = float(out[1]) - float(out[2])
        domain_start = state.facts.get("started_at", {}).get(host, kernel_start)
        result[host] = (float(out[0]), kernel_start - domain_start)
    return result


def timed_up(provider: LibvirtProvider) -> tuple[float, LabState]:
    started = time.monotonic()
    state = provider.up(quiet)
    return time.monotonic() - started, state


def main() -> int:
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="labctl-bench-up-"))
    host = libvirtd.start_libvirtd_in_netns(f"lbu-{os.getpid()}", work / "libvirt")
    try:
        return measure(work, host)
    finally:
        libvirtd.stop_libvirtd(host)
        shutil.rmtree(work, ignore_errors=True)


def measure(work: Path, host: libvirtd.LibvirtHost) -> int:
    data = yaml.safe_load((ROOT / "inventory.yaml").read_text())
    data["lab"] = "lbu"
    data["libvirt"].update({"netns": host.netns, "uri": host.uri})
    (work / "inventory.yaml").write_text(yaml.safe_dump(data))
    inventory = load_inventory(work / "inventory.yaml").model

    one = LibvirtProvider(inventory, work / ".labctl" / "one")
    one.layout = dataclasses.replace(one.layout, guests=one.layout.guests[:1])
    one_wall, one_state = timed_up(one)
    one_boot = max(guest_boot_seconds(one_state).values())
    one.down(quiet)

    started = time.monotonic()
    state = runner.lab_up(work / "inventory.yaml", quiet)          # what `labctl up` runs
    two_wall = time.monotonic() - started
    times = guest_times(state)
    boots = {h: t[0] for h, t in times.items()}
    prekernel = max(t[1] for t in times.values())
    started = time.monotonic()
    runner.lab_up(work / "inventory.yaml", quiet)
    re_up = time.monotonic() - started
    runner.lab_down(work / "inventory.yaml", quiet)
    report(state, one_wall, one_boot, two_wall, boots, re_up, prekernel)
    return 0


def report(state: LabState, one_wall: float, one_boot: float, two_wall: float,
           boots: dict[str, float], re_up: float, prekernel: float) -> None:
    slowest = max(boots.values())
    facts = state.facts
    print(f"accelerator {facts.get('accelerator')}, virtio-net backend "
          f"{facts.get('virtio_net_backend')}, {os.cpu_count()} host CPUs\n")
    print("| measure | value | goal |\n|---|---:|---|")
    print(f"| up, 2 guests (wall) | {two_wall:.1f} s | |")
    print(f"| slowest guest boot to cloud-init final (guest clock) | {slowest:.1f} s "
          f"({', '.join(f'{h} {s:.1f} s' for h, s in boots.items())}) | |")
    print(f"| labctl's own cost in up (wall - slowest boot) | {two_wall - slowest:.1f} s | <= 5 s |")
    print(f"| of which before the guest kernel starts (QEMU, SeaBIOS, GRUB loading the kernel;"
          f" guest clock - uptime) | {prekernel:.1f} s | |")
    print(f"| labctl's own work (wall - slowest boot - pre-kernel) | {two_wall - slowest - prekernel:.1f} s | |")
    print(f"| up, 1 guest (wall; its boot {one_boot:.1f} s) | {one_wall:.1f} s | |")
    print(f"| 2 guests / 1 guest | {two_wall / one_wall:.2f}x | <= 1.3x with a core per guest |")
    print(f"| re-up of a running lab | {re_up:.2f} s | <= 2 s |")
    print("\nThe guest clock starts at its kernel's start: BIOS, GRUB and QEMU's start are in "
          "labctl's share. With TCG on a 2-core host both guests' vCPUs share two cores, so "
          "two boots take longer than one.")


if __name__ == "__main__":
    sys.exit(main())
