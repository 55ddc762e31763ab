"""Step guards (pure, layer "plan"): the shell conditions a tuning step checks on the host
before it writes, and its undo before it puts anything back. Drivers re-create their queues
and vectors on `ethtool -L`: a step planned for 4 RX queues must not write into a NIC that now
has 2. Shell builtins only; no host name enters a command (the executor names it).
"""

from __future__ import annotations

import shlex

from labctl.host.facts import HostFacts
from labctl.input.model import Channels


def queues_after_channels(channels: Channels | None, facts: HostFacts) -> int:
    """The RX queue count the NIC will have after the scenario's channels step (if any)."""
    if channels is not None and channels.rx_queues is not None:
        return channels.rx_queues
    return facts.nic.rx_queues


def queue_count_check(facts: HostFacts, queues: int, consequence: str) -> tuple[str, str]:
    """(sh condition, message if false): the NIC has the `queues` RX queues the plan was made
    for (facts plus its channels step); the message ends with `consequence`."""
    iface = facts.nic.interface
    rx_glob = f"{shlex.quote(f'/sys/class/net/{iface}/queues')}/rx-*"
    return (f"n=0; for q in {rx_glob}; do [ -e \"$q\" ] && n=$((n+1)); done; [ \"$n\" -eq {queues} ]",
            f"{iface} does not have the {queues} RX queue(s) the plan was made for (facts read "
            f"before the run); its queue count changed: {consequence}")


def irq_guard(checks: list[tuple[str, str]]) -> str:
    """A step's prefix: stop (exit 1, nothing written) with the first failed check's message
    (the first check is the queue count: its message gets the count found)."""
    return " && ".join(f"{{ {condition} || {{ echo {shlex.quote(message)}\": now $n\" >&2; exit 1; }}; }}"
                       if index == 0 else
                       f"{{ {condition} || {{ echo {shlex.quote(message)} >&2; exit 1; }}; }}"
                       for index, (condition, message) in enumerate(checks))


def guarded_undo_command(checks: list[tuple[str, str]], command: str, note: str) -> str:
    """Run the undo `command` only while the checks still hold, else say `note` (the step
    refused to write then, and its undo was journalled before it ran)."""
    conditions = " && ".join(f"{{ {condition}; }}" for condition, _ in checks)
    return f"if {conditions}; then {command}; else echo {shlex.quote(note)}; fi"
