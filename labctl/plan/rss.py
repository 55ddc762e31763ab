"""RSS as a tuning step (pure, layer "plan"): the `ethtool -X` of a scenario's `rss:` against
the host's facts (`ethtool -x`), the exact restore of the original table, and the refusals
that come before anything changes.

`ethtool -X` has no form that writes an arbitrary table: it takes `equal N` or `weight W0 W1
...` (each from queue `start`) and fills the table itself (ethtool.c fill_indir_table, mirrored
by `fill_table`). So the original table is restored exactly only when one of those forms
writes it back entry for entry (`exact_spread`, proven by filling it again); otherwise the
step is refused up front. The one exception is a table that is the driver's own (the kernel's
`i mod N`, or igb's blocks): it is handed back with `ethtool -X IF default`, because written
back as weights the kernel would count it as user-set and refuse a later `ethtool -L` below
its queues (`driver_default`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from labctl.errors import Problem
from labctl.host import probes, queuestats
from labctl.host.facts import HostFacts
from labctl.input.config import Loaded
from labctl.input.model import HostTuning, Rss, RxQueueShare, Scenario
from labctl.plan.actions import Action, Change, Readback, Skip
from labctl.plan.guards import guarded_undo_command, irq_guard, queue_count_check, queues_after_channels
from labctl.shell import q

VIRTIO_RSS = ("virtio_net shows an indirection table only where the device offers "
              "VIRTIO_NET_F_RSS (QEMU's virtio-net-pci with rss=on); this device does not")


@dataclass(frozen=True)
class Spread:
    """An `ethtool -X` spread: `equal` N or `weights`, from queue `start`."""

    start: int = 0
    equal: int | None = None
    weights: tuple[int, ...] | None = None

    def args(self) -> list[str]:
        """`ethtool -X` words (`start` only where it is not 0: older ethtool lacks it)."""
        words = ["start", str(self.start)] if self.start else []
        if self.equal is not None:
            return words + ["equal", str(self.equal)]
        return words + ["weight", *(str(w) for w in self.weights or ())]

    def text(self) -> str:
        return " ".join(self.args())


def spread_of(rss: Rss) -> Spread | None:
    if not rss.spreads:
        return None
    return Spread(rss.start, rss.equal, tuple(rss.weight) if rss.weight is not None else None)


def fill_table(size: int, spread: Spread) -> list[int]:
    """The table `ethtool -X IF <spread>` writes into a table of `size` entries (ethtool.c
    fill_indir_table: equal is start + i mod N; weights give queue j the entries up to
    size * (W0 + ... + Wj) / sum, in integer arithmetic)."""
    if spread.equal is not None:
        return [spread.start + i % spread.equal for i in range(size)]
    weights = list(spread.weights or ())
    total = sum(weights)
    if total == 0 or total > size:
        raise ValueError(f"weights sum to {total}; ethtool needs 1..{size} (the table's size)")
    table, j, partial = [], -1, 0
    for i in range(size):
        while i >= size * partial // total:
            j += 1
            partial += weights[j]
        table.append(spread.start + j)
    return table


def exact_spread(table: Sequence[int]) -> Spread | None:
    """The `ethtool -X` spread that writes exactly `table` back, None where none does: an even
    spread (start + i mod N), or blocks of consecutive queues in order (weights = the number of
    entries of each queue from the first one, divided by their common divisor where that
    fills the same table)."""
    if not table:
        return None
    start, top = table[0], max(table)
    candidates = [Spread(start, equal=top - start + 1)]
    if min(table) == start:
        counts = tuple(table.count(q) for q in range(start, top + 1))
        divisor = math.gcd(*counts)
        candidates += [Spread(start, weights=tuple(c // divisor for c in counts)), Spread(start, weights=counts)]
    return next((c for c in candidates if fill_table(len(table), c) == list(table)), None)


def table_text(table: Sequence[int] | None) -> str:
    """A table as its spread where it is one ("equal 4 (128 entries)"), else its first entries."""
    if not table:
        return "no table"
    spread = exact_spread(table)
    if spread is not None:
        return f"{spread.text()} ({len(table)} entries)"
    head = " ".join(str(v) for v in table[:16])
    return f"{head}{' ...' if len(table) > 16 else ''} ({len(table)} entries, not an even spread or weights)"


def active_hfunc(facts: HostFacts) -> str | None:
    return next((name for name, on in facts.nic.rss_hfuncs.items() if on), None)


# --------------------------------------------------------------------------- refusals

def _where(facts: HostFacts) -> str:
    nic = facts.nic
    return f"{nic.interface} on {facts.host} (driver {nic.driver or 'unknown'})"


def rss_problems(loaded: Loaded[Scenario], host: str, tuning: HostTuning, facts: HostFacts) -> list[Problem]:
    """Every reason the `rss:` of one host cannot be applied, or not undone exactly."""
    rss = tuning.rss
    if rss is None:
        return []
    path = ("tuning", host, "rss")
    nic = facts.nic
    messages = [(f"flow_hash.{flow}", m) for flow, m in _flow_hash_problems(rss, facts)]
    if rss.sets_rxfh and not nic.rss_table:
        hint = f"; {VIRTIO_RSS}" if nic.driver == "virtio_net" else ""
        messages.append(("", f"{_where(facts)} has no RSS indirection table to tune; `ethtool -x "
                         f"{nic.interface}` answered: {nic.rss_note or 'nothing'}{hint}"))
    elif rss.sets_rxfh:
        messages += _spread_problems(rss, tuning, facts) + _hash_problems(rss, facts)
    return [loaded.problem(path + tuple(key.split(".") if key else ()), f"refused: {message}")
            for key, message in messages]


def _flow_hash_problems(rss: Rss, facts: HostFacts) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for flow in rss.flow_hash:
        original = facts.nic.flow_hash.get(flow)
        command = f"`ethtool -n {facts.nic.interface} rx-flow-hash {flow}`"
        if original is None or original.startswith("!"):
            answer = original[1:] if original else "nothing (older facts)"
            problems.append((flow, f"{_where(facts)} does not tell its {flow} hash fields: {command} "
                             f"answered: {answer}"))
        elif not original:
            problems.append((flow, f"{_where(facts)} hashes {flow} on no fields ({command}: None): it "
                             "does not hash flows (no RSS), and labctl could not restore that"))
    return problems


def _spread_problems(rss: Rss, tuning: HostTuning, facts: HostFacts) -> list[tuple[str, str]]:
    spread, table = spread_of(rss), facts.nic.rss_table or []
    if spread is None:
        return []
    key = "equal" if rss.equal is not None else "weight"
    queues = queues_after_channels(tuning.channels, facts)
    after = " after its channels step" if tuning.channels is not None else ""
    problems = []
    if rss.queues_used > queues:
        problems.append((key, f"{spread.text()} names RX queues up to rx-{rss.queues_used - 1}, but "
                         f"{_where(facts)} has {queues} RX queue(s){after}"))
    if rss.weight is not None and sum(rss.weight) > len(table):
        problems.append(("weight", f"the weights sum to {sum(rss.weight)}, more than the "
                         f"{len(table)} entries of the indirection table of {_where(facts)}"))
    if exact_spread(table) is None:
        problems.append(("", f"the original indirection table of {_where(facts)} ({table_text(table)}) "
                         "cannot be written back with `ethtool -X` (only equal N or weights, from a "
                         "start queue): labctl could not restore it exactly. Set it to an even spread "
                         "or weights first"))
    elif tuning.channels is not None and max(table) >= queues:
        problems.append(("", f"the original indirection table of {_where(facts)} names rx-{max(table)}, "
                         f"but the channels step leaves {queues} RX queue(s): the restore (RSS before "
                         "channels) could not put it back. Tune channels and RSS in separate runs"))
    return problems


def _hash_problems(rss: Rss, facts: HostFacts) -> list[tuple[str, str]]:
    nic, problems = facts.nic, []
    if rss.hkey is not None:
        if nic.rss_key is None:
            problems.append(("hkey", f"{_where(facts)} does not show its RSS hash key (`ethtool -x`): "
                             "labctl could not restore it"))
        elif len(rss.hkey.split(":")) != len(nic.rss_key.split(":")):
            problems.append(("hkey", f"the key has {len(rss.hkey.split(':'))} bytes; the hash key of "
                             f"{_where(facts)} has {len(nic.rss_key.split(':'))}"))
    if rss.hfunc is not None:
        listed = sorted(nic.rss_hfuncs)
        if rss.hfunc not in listed:
            problems.append(("hfunc", f"{_where(facts)} lists "
                             + (f"hash functions {', '.join(listed)}, not {rss.hfunc}" if listed
                                else "no hash functions (`ethtool -x`)")))
        elif active_hfunc(facts) is None:
            problems.append(("hfunc", f"{_where(facts)} shows no active hash function: labctl could "
                             "not restore it"))
    return problems


# --------------------------------------------------------------------------- the step

def rss_args(rss: Rss) -> list[str]:
    """`ethtool -X IF` words for the scenario's rss (hkey, spread, hfunc)."""
    spread = spread_of(rss)
    return ((["hkey", rss.hkey.lower()] if rss.hkey else []) + (spread.args() if spread else [])
            + (["hfunc", rss.hfunc] if rss.hfunc else []))


def driver_default(facts: HostFacts) -> bool:
    """The original table is the one the kernel or the driver writes by itself for the NIC's
    queues (not set by a user): the kernel's `i mod N` (ethtool_rxfh_indir_default, used by
    most drivers) or igb's blocks (igb_setup_mrqc: entry j = j * N / size)."""
    table, queues = facts.nic.rss_table or [], facts.nic.rx_queues
    if not table or not queues:
        return False
    return (table == [i % queues for i in range(len(table))]
            or (facts.nic.driver == "igb" and table == [j * queues // len(table) for j in range(len(table))]))


def restore_args(rss: Rss, facts: HostFacts) -> list[str]:
    """`ethtool -X IF` words that put back what `rss` changes: the original key and hash
    function, and the original table: `default` where it was the driver's own (that also
    gives it back to the driver: the kernel counts a table written as weights as set by the
    user and then refuses an `ethtool -L` below its queues), else its exact spread."""
    nic = facts.nic
    original = exact_spread(nic.rss_table or []) if rss.spreads else None
    table = (["default"] if rss.spreads and driver_default(facts) else
             original.args() if original else [])
    return ((["hkey", nic.rss_key or ""] if rss.hkey else []) + table
            + (["hfunc", active_hfunc(facts) or ""] if rss.hfunc else []))


def _expected(rss: Rss, facts: HostFacts) -> dict[str, object]:
    spread, size = spread_of(rss), len(facts.nic.rss_table or [])
    expected: dict[str, object] = {}
    if spread is not None:
        expected["table"] = fill_table(size, spread)
    if rss.hkey is not None:
        expected["key"] = rss.hkey.lower()
    if rss.hfunc is not None:
        expected["hfunc"] = rss.hfunc
    return expected


def _description(rss: Rss, facts: HostFacts) -> str:
    nic, parts, was = facts.nic, [], []
    spread = spread_of(rss)
    if spread is not None:
        parts.append(spread.text())
        was.append(table_text(nic.rss_table) + (", the driver's own: restored with `default`"
                                                  if driver_default(facts) else ""))
    if rss.hkey is not None:
        parts.append(f"hkey {rss.hkey.lower()}")
        was.append(f"hkey {nic.rss_key}")
    if rss.hfunc is not None:
        parts.append(f"hfunc {rss.hfunc}")
        was.append(f"hfunc {active_hfunc(facts)}")
    return f"RSS of {nic.interface}: {' '.join(parts)} (was {', '.join(was)})"


def rss_actions(host: str, tuning: HostTuning, facts: HostFacts) -> list[Action]:
    """The `ethtool -X` step (table, key, function) and one `ethtool -N` step per flow type."""
    rss = tuning.rss
    assert rss is not None
    actions = [rss_action(host, tuning, facts)] if rss.sets_rxfh else []
    return actions + [flow_hash_action(host, flow, letters, facts) for flow, letters in sorted(rss.flow_hash.items())]


def rss_action(host: str, tuning: HostTuning, facts: HostFacts) -> Action:
    """`ethtool -X` behind a check that the NIC still has the queue count the plan was made
    for; read back with `ethtool -x`; undone (same check) to the original table, key, function."""
    rss, iface = tuning.rss, facts.nic.interface
    assert rss is not None
    if not facts.nic.rss_table:       # refused by rss_problems before any plan is run
        return Skip(host, "tune", f"RSS of {iface}: not applicable, no indirection table "
                    f"({facts.nic.rss_note or 'ethtool -x shows none'})")
    queues = queues_after_channels(tuning.channels, facts)
    check = queue_count_check(facts, queues, "RSS not changed")
    restore = q("ethtool", "-X", iface, *restore_args(rss, facts))
    note = f"RSS of {iface} left as it is: its queue count is not the {queues} the plan was made for"
    return Change(host, "tune", _description(rss, facts),
                  command=f"{irq_guard([check])} && {q('ethtool', '-X', iface, *rss_args(rss))}",
                  undo=guarded_undo_command([check], restore, note),
                  readback=Readback(probes.ethtool_rss(iface, check=False).command, "rss",
                                    _expected(rss, facts), name="readback:rss", label=f"RSS of {iface}"))


def flow_hash_action(host: str, flow: str, letters: str, facts: HostFacts) -> Action:
    """`ethtool -N IF rx-flow-hash FLOW LETTERS`, read back, undone to the original fields."""
    iface, original = facts.nic.interface, facts.nic.flow_hash.get(flow, "")
    if not original or original.startswith("!"):     # refused by rss_problems
        return Skip(host, "tune", f"{flow} hash fields of {iface}: not applicable ({original[1:] or 'None'})")
    wanted = probes.canonical_flow_hash(letters)
    return Change(host, "tune", f"{flow} hash fields of {iface}: {wanted} (was {original})",
                  command=q("ethtool", "-N", iface, "rx-flow-hash", flow, wanted),
                  undo=q("ethtool", "-N", iface, "rx-flow-hash", flow, original),
                  readback=Readback(probes.flow_hash(iface, flow, check=False).command, "flow_hash", wanted,
                                    name=f"readback:flow_hash@{flow}", label=f"{flow} hash fields of {iface}"))


# --------------------------------------------------------------------------- the expectation

def rx_queue_share_problems(loaded: Loaded[Scenario], facts: Mapping[str, HostFacts]) -> list[Problem]:
    """An rx_queue_share check needs the host's `ethtool -S` in both snapshots and a driver
    whose per-queue packet counters labctl can read (labctl.host.queuestats)."""
    scenario, problems = loaded.model, []
    for index, item in enumerate(scenario.expect):
        if not isinstance(item, RxQueueShare):
            continue
        where = ("expect", index, "check")
        if item.host not in scenario.snapshot.hosts or "ethtool_stats" not in scenario.snapshot.probes:
            problems.append(loaded.problem(where, f"rx_queue_share on {item.host} needs the ethtool_stats "
                                           f"probe in the snapshots of {item.host} (snapshot.hosts, "
                                           "snapshot.probes)"))
        hf = facts.get(item.host)
        if hf is not None and hf.nic.exists and hf.nic.driver not in queuestats.KNOWN_DRIVERS:
            problems.append(loaded.problem(where, f"rx_queue_share refused: {_where(hf)}: labctl does "
                                           "not know this driver's per-queue packet counters in "
                                           f"`ethtool -S` (known: {', '.join(sorted(queuestats.KNOWN_DRIVERS))})"))
    return problems
