"""Test helpers: a netns lab of the test's own (``inventories/netns.yaml`` under another lab
name, in a temporary directory), driven through ``labctl.cli.main``; its namespaces, sshd
listeners, state file and runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

from labctl import cli
from tests.helpers import ROOT
from tests.helpers.namespaces import namespaces
from tests.helpers.processes import kill_if_running

T = TypeVar("T")

HOSTS = ("dut", "loadgen")


def lab_name(prefix: str) -> str:
    """A lab name of this test process (namespaces are named after it: ``<name>-dut``)."""
    return f"{prefix}{os.getpid() % 100000}"


def write_netns_inventory(directory: Path, name: str) -> Path:
    """The repository's netns inventory with lab name ``name``, written into ``directory``."""
    data = yaml.safe_load((ROOT / "inventories" / "netns.yaml").read_text())
    data["lab"] = name
    path = directory / "inventory.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def netns_lab(directory: Path, prefix: str) -> Iterator[Lab]:
    """A fixture's body: a netns lab of this test (the repository's scenarios copied beside its
    inventory), taken down after the test, its namespaces checked gone."""
    name = lab_name(prefix)
    write_netns_inventory(directory, name)
    shutil.copytree(ROOT / "scenarios", directory / "scenarios")
    the_lab = Lab(directory, name)
    yield the_lab
    the_lab.labctl("down")
    assert the_lab.namespaces_gone()


class Lab:
    """A netns lab in ``directory`` (its inventory there, its runs in ``runs/``)."""

    def __init__(self, directory: Path, name: str):
        self.dir, self.name = directory, name
        self.inventory = directory / "inventory.yaml"
        self.runs = directory / "runs"

    def labctl(self, *args: str) -> int:
        return cli.main(["-q", "-i", str(self.inventory), "--runs-dir", str(self.runs), *args])

    def ns(self, host: str) -> str:
        return f"{self.name}-{host}"

    @property
    def namespaces(self) -> list[str]:
        return [self.ns(host) for host in HOSTS]

    def namespaces_gone(self) -> bool:
        return not set(self.namespaces) & namespaces()

    def state_file(self) -> Path:
        return self.dir / ".labctl" / self.name / "state.json"

    def state(self) -> dict[str, Any]:
        """The lab's state file (what `up` created, facts it learnt)."""
        state: dict[str, Any] = json.loads(self.state_file().read_text())
        return state

    def sshd_pids(self) -> dict[str, int]:
        """Host -> PID of the sshd listener `up` started for it."""
        return {r["info"]["host"]: int(r["id"]) for r in self.state()["resources"]
                if r["kind"] == "process"}

    def summary(self, run: Path) -> dict[str, Any]:
        summary: dict[str, Any] = json.loads((run / "summary.json").read_text())
        return summary

    def newest_run(self) -> Path:
        return max(self.runs.iterdir(), key=lambda p: p.stat().st_mtime)


def labctl_in(directory: Path, *args: str) -> int:
    """`labctl -i DIR/inventory.yaml --runs-dir DIR/runs ARGS...`, in process."""
    return cli.main(["-i", str(directory / "inventory.yaml"), "--runs-dir", str(directory / "runs"), *args])


def vm_lab_state(directory: Path, lab: str) -> dict[str, Any]:
    """The state file of the VM lab `lab` in `directory` (what `up` created, facts it learnt)."""
    state: dict[str, Any] = json.loads((directory / ".labctl" / lab / "state.json").read_text())
    return state


def vm_lab_up(directory: Path, lab: str, errors: Callable[[], str]) -> tuple[float, dict[str, Any]]:
    """`labctl up` of the VM lab `lab` in `directory`, which must succeed (`errors`: what to
    say if not, e.g. the captured stderr): the seconds it took and the lab's state."""
    started = time.monotonic()
    assert labctl_in(directory, "up") == 0, errors()
    return time.monotonic() - started, vm_lab_state(directory, lab)


# what a run on a guest's test NIC `data0` changes and must put back: channels, RPS masks and the
# NIC's vectors' affinities (found by their names: drivers such as igb re-request them on `ethtool -L`)
DATA0_TUNING = {
    "channels": "ethtool -l data0 | tail -n 5",
    "rps": "grep -H . /sys/class/net/data0/queues/rx-*/rps_cpus",
    "affinity": "for d in /proc/irq/*/data0*; do echo \"${d##*/} $(cat ${d%/*}/smp_affinity_list)\"; done | sort",
}


def vm_lab_dir(directory: Path, inventory: Path, lab: str, libvirt_host: Any) -> Path:
    """A VM lab's working directory: `inventory` renamed `lab`, its networks in the session's
    private libvirtd (libvirt_host), and a copy of the scenarios; the guest image built first
    (cached after the first)."""
    from labctl.labs.image import build_image
    build_image(progress=lambda m: print(f"image: {m}", flush=True))
    data = yaml.safe_load(inventory.read_text())
    data["lab"] = lab
    data["libvirt"]["netns"] = libvirt_host.netns
    data["libvirt"]["uri"] = libvirt_host.uri
    (directory / "inventory.yaml").write_text(yaml.safe_dump(data))
    shutil.copytree(ROOT / "scenarios", directory / "scenarios")
    return directory


def paused_run(directory: Path, scenario: Path, checkpoint: str,
               during: Callable[[subprocess.Popen[str]], T], timeout: float = 300) -> tuple[int, str, T]:
    """`labctl run SCENARIO` of the lab in `directory` (its inventory.yaml and runs/) as a
    process of its own, held at `checkpoint` (labctl/execution/failpoints.py): `during(process)`
    runs while it waits (a fault, a change from outside), then the run goes on to its end.
    Returns (exit code, stderr, what `during` returned); the process never outlives the call."""
    marker = directory / f"paused-{scenario.stem}-{checkpoint}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "-i", str(directory / "inventory.yaml"), "--runs-dir",
         str(directory / "runs"), "run", str(scenario)], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "LABCTL_FAILPOINT": f"{checkpoint}:pause", "LABCTL_FAILPOINT_FILE": str(marker)})
    try:
        deadline = time.monotonic() + timeout
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, f"{scenario.name}: never paused at {checkpoint}"
            time.sleep(0.1)
        result = during(proc)
        marker.unlink(missing_ok=True)
        _, err = proc.communicate(timeout=timeout)
    finally:
        kill_if_running(proc)
    return proc.returncode, err, result


def guest_outputs(state: dict[str, Any], host: str, commands: dict[str, str], *,
                  check: bool = True) -> dict[str, str]:
    """Name -> stdout of each command run on a VM lab's guest (over SSH, as labctl reaches it:
    the target in the lab's state); without `check` a failing command's output is kept."""
    from labctl.transport.ssh import SshTransport
    from labctl.transport.target import SshTarget
    with SshTransport(SshTarget.from_dict(state["targets"][host])) as guest:
        return {name: guest.run(command, check=check).stdout for name, command in commands.items()}
