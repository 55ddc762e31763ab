"""Batched remote scripts (pure): many commands in one round trip, output split per command.

Each command's stdout is framed by a marker line carrying its name and its exit status, so a
snapshot of ten probes costs one SSH round trip and still yields one raw text per probe.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

MARKER = "@@labctl-section"
_LINE = re.compile(rf"^{MARKER} (begin|end) (\S+)(?: (\d+))?$")


@dataclass(frozen=True)
class Section:
    name: str
    output: str
    status: int


def build_script(commands: dict[str, str]) -> str:
    """One sh script running each command with stdin closed and stderr folded into stdout."""
    lines = []
    for name, command in commands.items():
        if not re.fullmatch(r"[A-Za-z0-9_.:@-]+", name):
            raise ValueError(f"bad section name {name!r}")
        lines.append(f"echo {shlex.quote(f'{MARKER} begin {name}')}")
        lines.append(f"( {command}\n) </dev/null 2>&1")
        lines.append(f"labctl_rc=$?; echo; echo \"{MARKER} end {name} $labctl_rc\"")
    return "\n".join(lines) + "\n"


def split_sections(text: str) -> dict[str, Section]:
    """Inverse of build_script: name -> Section with the command's exact output."""
    sections: dict[str, Section] = {}
    current: str | None = None
    body: list[str] = []
    for line in text.split("\n"):
        match = _LINE.match(line)
        if match and match.group(1) == "begin" and current is None:
            current, body = match.group(2), []
        elif match and match.group(1) == "end" and current is not None and match.group(2) == current:
            sections[current] = Section(current, "\n".join(body), int(match.group(3) or 0))
            current = None
        elif current is not None:
            body.append(line)
    return sections
