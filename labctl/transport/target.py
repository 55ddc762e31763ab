"""Where a lab host is (pure data): what the transport needs to reach it over SSH."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SshTarget:
    """How to reach one lab host over SSH.

    ``netns``: name of a network namespace (under /run/netns) from inside which the TCP
    connection is opened; None means the caller's own namespace (with ``jump``, the jump
    host's connection is opened there instead).
    ``become``: "sudo" when ``user`` is not root and becomes root with ``sudo -n``.
    ``jump``: a host to connect through (SSH ``direct-tcpip``, as ProxyJump does); its own
    ``host`` field names it in messages.
    """

    host: str
    address: str
    port: int
    user: str
    key_file: str
    known_hosts: str
    netns: str | None = None
    become: str | None = None
    jump: SshTarget | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SshTarget:
        fields = dict(data)
        if isinstance(fields.get("jump"), dict):
            fields["jump"] = cls.from_dict(fields["jump"])
        return cls(**fields)
