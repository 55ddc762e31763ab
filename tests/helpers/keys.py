"""Test helpers: SSH keys as OpenSSH shows them, and the shell lines of labctl's re-pin hints."""

from __future__ import annotations

import subprocess
from pathlib import Path


def ssh_fingerprint(public_key: Path) -> str:
    """SHA256:... of a public key file, as OpenSSH computes it."""
    out = subprocess.run(["ssh-keygen", "-lf", str(public_key)], check=True, capture_output=True,
                         text=True).stdout
    return out.split()[1]


def repin_commands(message: str) -> list[str]:
    """The shell lines of a re-pin hint (indented six spaces), in order."""
    return [line.strip() for line in message.splitlines() if line.startswith("      ") and line.strip()]
