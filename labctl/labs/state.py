"""Lab state (pure data + JSON file I/O): what `up` created, and how to reach each host.

`up` appends each resource to the state file as soon as it exists; `down` removes exactly
those, in reverse order. The file lives in the lab's own directory.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labctl.transport.target import SshTarget


@dataclass
class Resource:
    """One thing `up` created: kind ("netns", "veth", "process", "file", "dir", ...) and id."""

    kind: str
    id: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class LabState:
    lab: str
    provider: str
    status: str = "creating"          # creating | up | removing
    resources: list[Resource] = field(default_factory=list)
    targets: dict[str, SshTarget] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "lab": self.lab,
            "provider": self.provider,
            "status": self.status,
            "resources": [asdict(r) for r in self.resources],
            "targets": {name: asdict(t) for name, t in self.targets.items()},
            "facts": self.facts,
        }
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabState:
        data = json.loads(text)
        return cls(
            lab=data["lab"],
            provider=data["provider"],
            status=data.get("status", "up"),
            resources=[Resource(**r) for r in data.get("resources", [])],
            targets={k: SshTarget.from_dict(v) for k, v in data.get("targets", {}).items()},
            facts=data.get("facts", {}),
        )


class StateFile:
    """The state file of one lab; every change is written atomically at once (also when
    several threads of one `up` record what they made)."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.RLock()     # hold it to change a state other threads save

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> LabState:
        return LabState.from_json(self.path.read_text())

    def save(self, state: LabState) -> None:
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(state.to_json())
            os.replace(tmp, self.path)

    def record(self, state: LabState, resource: Resource) -> None:
        with self.lock:
            state.resources.append(resource)
        self.save(state)

    def mark_removing(self) -> LabState | None:
        """The recorded state, now marked as being removed; None when there is none."""
        if not self.exists():
            return None
        state = self.load()
        state.status = "removing"
        self.save(state)
        return state

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
