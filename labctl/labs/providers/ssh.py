"""The `ssh` provider (side effects: the lab state file): existing hosts reached over SSH.

labctl creates nothing on such hosts; `up` only checks the inventory's keys and known_hosts
and records how to reach each host, `down` forgets it.
"""

from __future__ import annotations

from pathlib import Path

from labctl.errors import LabError
from labctl.input.model import Inventory, SshAccess
from labctl.labs.providers import PREPARED_DIR, Progress
from labctl.labs.state import LabState, StateFile
from labctl.transport.target import SshTarget


class SshProvider:
    verifies_ssh = False

    def __init__(self, inventory: Inventory, directory: Path, base: Path):
        self.inventory, self.dir, self.base = inventory, directory, base
        self.state_file = StateFile(directory / "state.json")

    def _targets(self) -> dict[str, SshTarget]:
        targets, missing = {}, []
        for name, host in self.inventory.hosts.items():
            assert host.ssh is not None
            key, known = self.base / host.ssh.key, self.base / host.ssh.known_hosts
            jump = _jump_target(name, host.ssh, self.base)
            files = [key, known] + ([Path(jump.key_file), Path(jump.known_hosts)] if jump else [])
            missing += [str(p) for p in dict.fromkeys(files) if not p.exists()]
            targets[name] = SshTarget(name, host.ssh.address, host.ssh.port, host.ssh.user,
                                      str(key), str(known), host.ssh.netns,
                                      become=host.ssh.become, jump=jump)
        if missing:
            raise LabError("provider ssh: missing " + ", ".join(missing)
                           + " (known_hosts pins each host's key; labctl never trusts on first use)")
        return targets

    def up(self, progress: Progress) -> LabState:
        state = LabState(self.inventory.lab, "ssh", status="up", targets=self._targets())
        self.state_file.save(state)
        progress(f"lab {self.inventory.lab}: {len(state.targets)} existing host(s) recorded")
        return state

    def down(self, progress: Progress) -> bool:
        if not self.state_file.exists():
            return False
        self.state_file.remove()
        progress(f"lab {self.inventory.lab}: forgotten (existing hosts are left as they are)")
        prepared = sorted(p.stem for p in (self.dir / PREPARED_DIR).glob("*.json"))
        if prepared:
            progress(f"warning: {', '.join(prepared)} still prepared by labctl (original state recorded "
                     f"in {self.dir / PREPARED_DIR}): `labctl up` then `labctl unprepare` puts it back")
        return True

    def status(self) -> dict[str, str]:
        if not self.state_file.exists():
            return {}
        return {name: "existing host" for name in self.state_file.load().targets}


def _jump_target(host: str, ssh: SshAccess, base: Path) -> SshTarget | None:
    """The jump host's target: its key, known_hosts and login default to the host's own."""
    jump = ssh.jump
    if jump is None:
        return None
    key = base / (jump.key or ssh.key)
    known = base / (jump.known_hosts or ssh.known_hosts)
    return SshTarget(host, jump.address, jump.port, jump.user or ssh.user, str(key), str(known),
                     jump.netns)
