"""Lab providers (side effects): create, inspect and remove labs; pick one by inventory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from labctl.errors import LabError
from labctl.input.model import Inventory
from labctl.labs.state import LabState, StateFile
from labctl.transport.target import SshTarget

Progress = Callable[[str], None]
PREPARED_DIR = "prepared"        # per host: the original state `labctl unprepare` puts back


class Provider(Protocol):
    verifies_ssh: bool       # True when `up` itself ends with an SSH login on every host

    def up(self, progress: Progress) -> LabState: ...
    def down(self, progress: Progress) -> bool: ...
    def status(self) -> dict[str, str]: ...


@runtime_checkable
class Restarter(Protocol):
    """A provider that can restart a host from outside (faster than a reboot inside it)."""

    def restart(self, host: str, progress: Progress) -> SshTarget: ...


def lab_dir(inventory_path: Path, inventory: Inventory) -> Path:
    """Where a lab keeps its state, keys and daemon files: beside its inventory."""
    return inventory_path.resolve().parent / ".labctl" / inventory.lab


def remove_empty_lab_dir(directory: Path) -> None:
    """After `down`: the lab's directory and `.labctl/`, if nothing else is left in them."""
    for path in (directory, directory.parent):
        try:
            path.rmdir()
        except OSError:
            return


def prepared_dir(inventory_path: Path, inventory: Inventory) -> Path:
    return lab_dir(inventory_path, inventory) / PREPARED_DIR


def state_file(inventory_path: Path, inventory: Inventory) -> StateFile:
    return StateFile(lab_dir(inventory_path, inventory) / "state.json")


def provider_for(inventory_path: Path, inventory: Inventory) -> Provider:
    directory = lab_dir(inventory_path, inventory)
    if inventory.provider == "netns":
        from labctl.labs.providers.netns import NetnsProvider
        return NetnsProvider(inventory, directory)
    if inventory.provider == "libvirt":
        try:
            from labctl.labs.providers.libvirt import LibvirtProvider
        except ImportError as exc:
            raise LabError(f"provider libvirt needs libvirt-python ({exc}): run ./scripts/setup.sh "
                           "(Debian: python3-libvirt)") from None
        return LibvirtProvider(inventory, directory)
    if inventory.provider == "ssh":
        from labctl.labs.providers.ssh import SshProvider
        return SshProvider(inventory, directory, inventory_path.resolve().parent)
    raise LabError(f"provider {inventory.provider!r} is not available in this version")


def load_state(inventory_path: Path, inventory: Inventory) -> LabState:
    """The state of a lab that is up, or a LabError that says to run `labctl up`."""
    sf = state_file(inventory_path, inventory)
    if not sf.exists():
        raise LabError(f"lab {inventory.lab!r} is not up (no {sf.path}): run `labctl up` first")
    state = sf.load()
    if state.status != "up":
        raise LabError(f"lab {inventory.lab!r} is {state.status} (half made or half removed): "
                       "run `labctl up` to finish it, or `labctl down` to remove it")
    return state
