"""Where a lab host is (pure data): what the transport needs to reach it over SSH."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SshTarget:
    """How to reach one lab host over SSH.

    ``netns``: name of a network namespace (under /run/netns) from inside which the TCP
    connection is opened; None means the caller's own namespace.
    """

    host: str
    address: str
    port: int
    user: str
    key_file: str
    known_hosts: str
    netns: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SshTarget:
        return cls(**data)
