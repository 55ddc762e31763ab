"""Planning: ordered actions with literal, quoted commands and the commands that undo them."""

from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from labctl.host.facts import HostFacts
from labctl.host.probes import ProbeArgumentError
from labctl.plan.actions import Action, Change, Plan, Skip, Snapshot, Start, Stop
from labctl.plan.dryrun import render_plan
from labctl.plan.planner import (
    guarded_undo,
    irq_checks,
    irq_guard,
    reapply_affinity_command,
    remote_workdir,
    rps_path,
)
from labctl.shell import all_of, detached_command, q, wait_file_command, write_command
from tests.helpers.plans import (
    GUEST_TUNING,
    LOAD,
    RUN,
    guest_facts,
    plan_for,
    scenario,
    veth_facts,
)

NO_ETHTOOL_STATS = {"probes": ["interrupts", "softirqs", "softnet_stat", "stat"]}


def tune(plan: Plan) -> list[Action]:
    return plan.for_phase("tune")


# --------------------------------------------------------------------------- order

def test_order_irqbalance_channels_irq_affinity_rps() -> None:
    actions = tune(plan_for(guest_facts(), GUEST_TUNING))
    assert [a.command.rpartition(" && ")[2] for a in actions] == [
        "systemctl stop irqbalance",
        "ethtool -L eth1 combined 2",
        "echo 2 > /proc/irq/37/smp_affinity_list",
        "echo 3 > /proc/irq/39/smp_affinity_list",
        "echo 02 > /sys/class/net/eth1/queues/rx-0/rps_cpus",
        "echo 02 > /sys/class/net/eth1/queues/rx-1/rps_cpus",
    ]
    assert all(a.kind == "change" and a.host == "dut" for a in actions)


def test_prepare_first_then_measure() -> None:
    plan = plan_for(guest_facts(), GUEST_TUNING)
    phases = [a.phase for a in plan.actions]
    assert phases == sorted(phases, key=["prepare", "tune", "measure"].index)
    assert plan.workdir == {"dut": remote_workdir(RUN)}
    prepare = plan.for_phase("prepare")
    assert [(a.command, a.undo) for a in prepare] == [
        (f"mkdir -p /tmp/labctl-{RUN}", f"rm -rf /tmp/labctl-{RUN}")]


# --------------------------------------------------------------------------- channels

def test_combined_translated_to_rx_tx_without_combined() -> None:
    (action,) = tune(plan_for(veth_facts(), {"channels": {"combined": 2}}))
    assert action.command == "ethtool -L eth1 rx 2 tx 2"
    assert action.warnings == ("device has no combined channels: rx 2 tx 2",)
    assert action.readback is not None
    assert (action.readback.command, action.readback.kind, action.readback.expected) == (
        "ethtool -l eth1", "channels", {"rx": 2, "tx": 2})
    assert action.undo == all_of(["ethtool -L eth1 rx 4 tx 4"] + [
        f"echo 0 > /sys/class/net/eth1/queues/rx-{q}/rps_cpus" for q in range(4)])
    assert "/proc/irq" not in action.undo                 # shared kernel: never /proc/irq


def test_rx_tx_kept_as_given() -> None:
    (action,) = tune(plan_for(veth_facts(), {"channels": {"rx": 3, "tx": 1}}))
    assert action.command == "ethtool -L eth1 rx 3 tx 1" and action.warnings == ()
    assert action.readback is not None and action.readback.expected == {"rx": 3, "tx": 1}


def test_combined_on_virtio_and_its_undo_reapplies_everything() -> None:
    actions = tune(plan_for(guest_facts(), {"channels": {"combined": 2}}))
    (action,) = actions
    assert action.command == "ethtool -L eth1 combined 2" and action.warnings == ()
    assert action.readback is not None and action.readback.expected == {"combined": 2}
    assert action.description == "set eth1 channels combined 2 (was combined 4)"
    assert action.undo is not None
    assert re.findall(r"\{ (.*?); \} \|\| rc=1;", action.undo) == [
        "ethtool -L eth1 combined 4",            # channels back first, then what -L reset
        "echo 02 > /sys/class/net/eth1/queues/rx-0/rps_cpus",
        "echo 00 > /sys/class/net/eth1/queues/rx-1/rps_cpus",
        "echo 00 > /sys/class/net/eth1/queues/rx-2/rps_cpus",
        "echo 00 > /sys/class/net/eth1/queues/rx-3/rps_cpus",
        "echo 0-1 > /proc/irq/37/smp_affinity_list",
        "echo 2-3 > /proc/irq/39/smp_affinity_list",
        "echo 0-3 > /proc/irq/41/smp_affinity_list",
        "echo 0-3 > /proc/irq/43/smp_affinity_list",
        "echo 1 > /proc/irq/38/smp_affinity_list",
        "echo 2 > /proc/irq/40/smp_affinity_list",
        "echo 3 > /proc/irq/42/smp_affinity_list",
        "echo 0 > /proc/irq/44/smp_affinity_list",
    ]


def test_channels_undo_fails_when_ethtool_fails(tmp_path: Path) -> None:
    # The interface name walks out of /sys/class/net into tmp_path, so that the RPS writes of
    # the undo land in files of this test; `ethtool` is a stub that fails.
    iface = "../../.." + str(tmp_path / "nic")
    for queue in range(4):
        (tmp_path / "nic" / "queues" / f"rx-{queue}").mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    stub = tmp_path / "bin" / "ethtool"
    stub.write_text("#!/bin/sh\necho 'netlink error: Invalid argument' >&2\nexit 1\n")
    stub.chmod(0o755)
    (action,) = tune(plan_for(veth_facts(interface=iface), {"channels": {"combined": 2}},
                              snapshot=NO_ETHTOOL_STATS))
    assert action.undo is not None
    done = subprocess.run(["sh", "-c", action.undo], capture_output=True, text=True, timeout=10,
                          env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"})
    assert (tmp_path / "nic" / "queues" / "rx-3" / "rps_cpus").read_text() == "0\n"
    assert done.returncode != 0


# --------------------------------------------------------------------------- IRQ affinity

def test_irq_affinity_pins_by_device_irq_with_undo_and_readback() -> None:
    actions = tune(plan_for(guest_facts(), {"irq_affinity": {"rx-0": 2, "rx-1": "3"}}))
    pin0, pin1 = actions
    assert pin0.description == "pin IRQ 37 (virtio1-input.0, rx-0) to CPUs 2 (was 0-1)"
    guard, _, write = pin0.command.rpartition(" && ")
    checks = irq_checks(guest_facts(), "37", "", 4)
    assert write == "echo 2 > /proc/irq/37/smp_affinity_list" and guard == irq_guard(checks)
    assert pin0.undo == guarded_undo(checks, "37", "echo 0-1 > /proc/irq/37/smp_affinity_list")
    assert pin0.readback is not None
    assert (pin0.readback.command, pin0.readback.kind, pin0.readback.expected) == (
        "cat /proc/irq/37/smp_affinity_list", "cpulist", frozenset({2}))
    assert pin1.undo is not None and "; then echo 2-3 > /proc/irq/39/smp_affinity_list; else " in pin1.undo


def test_irq_affinity_not_applicable_on_shared_kernel() -> None:
    facts = veth_facts()
    # even if /proc/interrupts had a matching row, a netns host must not write /proc/irq
    facts = dataclasses.replace(facts, nic=dataclasses.replace(facts.nic, rx_irqs={0: "38"}))
    (action,) = tune(plan_for(facts, {"irq_affinity": {"rx-0": 1}}))
    assert isinstance(action, Skip) and action.kind == "skip"
    assert "not applicable" in action.description and "netns" in action.description


def test_irq_affinity_without_irq_for_the_queue() -> None:
    facts = guest_facts()
    facts = dataclasses.replace(facts, nic=dataclasses.replace(facts.nic, rx_irqs={0: "37"}))
    (action,) = tune(plan_for(facts, {"irq_affinity": {"rx-1": 1}}))
    assert isinstance(action, Skip) and "eth1 has no IRQ for rx-1" in action.description


def test_irq_affinity_unknown_original_has_no_undo() -> None:
    facts = dataclasses.replace(guest_facts(), irq_affinity={})
    (action,) = tune(plan_for(facts, {"irq_affinity": {"rx-0": 2}}))
    assert action.undo is None and "(was unknown)" in action.description


# --------------------------------------------------------------------------- RPS

def test_rps_undo_restores_the_original_mask() -> None:
    actions = tune(plan_for(guest_facts(), {"rps": {"rx-0": 2, "rx-1": 3}}))
    assert [(a.command, a.undo) for a in actions] == [
        ("echo 04 > /sys/class/net/eth1/queues/rx-0/rps_cpus",
         "echo 02 > /sys/class/net/eth1/queues/rx-0/rps_cpus"),
        ("echo 08 > /sys/class/net/eth1/queues/rx-1/rps_cpus",
         "echo 00 > /sys/class/net/eth1/queues/rx-1/rps_cpus"),
    ]
    assert actions[0].description == "RPS of rx-0 -> CPUs 2 (mask 04, was 1)"
    assert actions[1].description == "RPS of rx-1 -> CPUs 3 (mask 08, was off)"
    assert [a.readback.expected for a in actions if a.readback] == [frozenset({2}), frozenset({3})]


def test_rps_isolated_only_is_expected_to_fail() -> None:
    (action,) = tune(plan_for(guest_facts(), {"rps": {"rx-0": "4-5"}, "allow_isolated_rps": True}))
    assert action.expect_failure
    assert action.readback is None and action.warnings == ()
    assert action.command == "echo 30 > /sys/class/net/eth1/queues/rx-0/rps_cpus"
    assert action.undo == "echo 02 > /sys/class/net/eth1/queues/rx-0/rps_cpus"
    assert "expected to be refused" in action.description


def test_rps_mixed_mask_warns_and_reads_back_the_kept_cpus() -> None:
    (action,) = tune(plan_for(guest_facts(), {"rps": {"rx-0": "1,6"}}))
    assert not action.expect_failure
    assert action.command == "echo 42 > /sys/class/net/eth1/queues/rx-0/rps_cpus"
    assert action.warnings == ("rx-0: CPUs 6 are isolated; the kernel keeps only 1 of RPS mask 42",)
    assert action.readback is not None and action.readback.expected == frozenset({1})


def test_rps_none_turns_off() -> None:
    (action,) = tune(plan_for(guest_facts(), {"rps": {"rx-0": "none"}}))
    assert action.command == "echo 00 > /sys/class/net/eth1/queues/rx-0/rps_cpus"
    assert not action.expect_failure and action.warnings == ()
    assert action.readback is not None and action.readback.expected == frozenset()


@pytest.mark.parametrize("facts,tuning,queues", [
    (guest_facts(), {"channels": {"combined": 2}, "rps": {"all": 1}}, [0, 1]),
    (guest_facts(), {"rps": {"all": 1}}, [0, 1, 2, 3]),
    (veth_facts(), {"channels": {"combined": 3}, "rps": {"all": 1}}, [0, 1, 2]),
    (veth_facts(), {"channels": {"rx": 2, "tx": 4}, "rps": {"all": 1}}, [0, 1]),
    (veth_facts(), {"channels": {"tx": 2}, "rps": {"all": 1}}, [0, 1, 2, 3]),
    (veth_facts(), {"rps": {"all": 1}}, [0, 1, 2, 3]),
])
def test_rps_all_expands_to_the_queues_after_channels(facts: HostFacts, tuning: dict[str, Any],
                                                      queues: list[int]) -> None:
    rps = [a for a in tune(plan_for(facts, tuning)) if "rps_cpus" in a.command]
    assert [a.command.rsplit("/", 2)[1] for a in rps] == [f"rx-{q}" for q in queues]


def test_rps_explicit_queue_overrides_all() -> None:
    actions = tune(plan_for(veth_facts(), {"rps": {"all": 1, "rx-2": "none"}}))
    assert [a.command.split()[1] for a in actions] == ["2", "2", "0", "2"]


# --------------------------------------------------------------------------- irqbalance

@pytest.mark.parametrize("state,want,command,undo", [
    ("active", "stop", "systemctl stop irqbalance", "systemctl start irqbalance"),
    ("inactive", "start", "systemctl start irqbalance", "systemctl stop irqbalance"),
    ("inactive", "stop", None, None),
    ("absent", "stop", None, None),
])
def test_irqbalance(state: str, want: str, command: str | None, undo: str | None) -> None:
    facts = dataclasses.replace(guest_facts(), irqbalance=state)
    (action,) = tune(plan_for(facts, {"irqbalance": want}))
    if command is None:
        assert isinstance(action, Skip)
    else:
        assert isinstance(action, Change) and (action.command, action.undo) == (command, undo)


def test_irqbalance_not_applicable_on_shared_kernel() -> None:
    facts = dataclasses.replace(veth_facts(), irqbalance="active")
    (action,) = tune(plan_for(facts, {"irqbalance": "stop"}))
    assert isinstance(action, Skip) and "not applicable" in action.description


def test_irqbalance_leave_plans_nothing() -> None:
    assert tune(plan_for(guest_facts(), {"irqbalance": "leave"})) == []


# --------------------------------------------------------------------------- load, snapshots

def test_load_actions() -> None:
    plan = plan_for(guest_facts(), {}, load=LOAD, snapshot={"interval": None})   # no series
    kinds = [(a.phase, a.kind, a.host) for a in plan.actions]
    assert kinds == [
        ("prepare", "change", "dut"), ("prepare", "change", "loadgen"),
        ("load", "upload", "dut"), ("load", "upload", "loadgen"),
        ("load", "start", "dut"), ("load", "wait_file", "dut"),
        ("measure", "sleep", "-"), ("measure", "snapshot", "dut"),
        ("load", "start", "loadgen"), ("load", "wait_process", "loadgen"),
        ("measure", "snapshot", "dut"),
        ("finish", "stop", "dut"),
        ("finish", "fetch", "dut"), ("finish", "fetch", "loadgen"),    # interleaved: fetched
        ("finish", "fetch", "dut"), ("finish", "fetch", "loadgen"),    # two hosts at a time
    ]
    work = remote_workdir(RUN)
    server = shlex.split(plan.actions[4].command)
    assert server[:3] == ["setsid", "python3", f"{work}/labctl-loadgen.py"]
    assert server[server.index("--bind") + 1] == "198.18.0.1"
    assert server[server.index("--cpus") + 1] == "6-7"
    assert server[-6:] == ["</dev/null", f">{work}/server.log", "2>&1", "&", "echo", "$!"]
    client = shlex.split(plan.actions[8].command)
    assert client[client.index("--host") + 1] == "198.18.0.1"
    assert client[client.index("--duration") + 1] == "2.5"
    assert "--new-socket-per-message" in client
    wait = plan.actions[9]
    assert (wait.process, wait.timeout) == ("client", 32.5)
    assert [a.local for a in plan.actions if a.kind == "fetch"] == [
        "loadgen/server.json", "loadgen/client.json", "loadgen/server.log", "loadgen/client.log"]


def test_snapshot_probes_in_one_script() -> None:
    plan = plan_for(guest_facts(), {}, load=LOAD)
    before = [a for a in plan.actions if a.kind == "snapshot"][0]
    assert before.local == "before"
    names = [name for name, _ in before.probes]
    assert names == ["interrupts", "softirqs", "softnet_stat", "stat", "ethtool_stats", "rps_cpus",
                     "processes", "irq_affinity"]
    assert dict(before.probes)["processes"] == "cat /proc/[0-9]*/stat 2>/dev/null || true"
    probes = dict(before.probes)
    assert probes["ethtool_stats"] == "ethtool -S eth1"
    assert probes["irq_affinity"] == "grep -Hs . " + " ".join(
        f"/proc/irq/{i}/{kind}_affinity_list" for i in range(37, 45) for kind in ("smp", "effective")
    ) + " || [ $? -eq 2 ]"
    for _, command in before.probes:
        assert command in before.command


def test_no_load_measures_an_idle_window() -> None:
    plan = plan_for(veth_facts(), {"rps": {"all": 1}})
    measure = plan.for_phase("measure")
    assert [(a.kind, a.local if isinstance(a, Snapshot) else None) for a in measure] == [
        ("sleep", None), ("snapshot", "before"), ("sleep", None), ("snapshot", "after")]
    assert "irq_affinity" not in dict(measure[1].probes)          # veth: no IRQs


# --------------------------------------------------------------------------- quoting

HOSTILE = "eth1;rm -rf /"


def shell_words(command: str) -> list[str]:
    """Words and operators as sh would see them (quotes removed, ; & | < > split out)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def all_commands(plan: Plan) -> list[str]:
    commands = []
    for action in plan.actions:
        if isinstance(action, (Change, Start, Snapshot)):
            commands.append(action.command)
        if isinstance(action, Change):
            commands += [action.undo] if action.undo else []
            commands += [action.readback.command] if action.readback else []
        if isinstance(action, Snapshot):
            commands += [c for _, c in action.probes]
    return commands


@pytest.mark.parametrize("interface", [HOSTILE, "my eth", "eth$(reboot)", "a'b\"c`d`", "-rf"])
def test_every_value_is_quoted(interface: str) -> None:
    """A hostile name changes no command's shape: sh sees the same words and operators as
    with a plain name, the hostile text only ever inside one word (as is a path with spaces)."""
    tuning = {"channels": {"combined": 2}, "irq_affinity": {"rx-0": 2}, "rps": {"all": "1,6"},
              "irqbalance": "stop"}
    def commands(iface: str, run_id: str) -> list[str]:
        return all_commands(plan_for(guest_facts(iface), tuning, run_id=run_id, load=LOAD,
                                     snapshot=NO_ETHTOOL_STATS))
    plain = commands("IFACE0", "RUNID0")
    hostile = commands(interface, "run with space")
    assert len(plain) == len(hostile) and len(plain) > 20
    mentions = 0
    for plain_command, hostile_command in zip(plain, hostile):
        expected = [w.replace("IFACE0", interface).replace("RUNID0", "run with space")
                    for w in shell_words(plain_command)]
        got = shell_words(hostile_command)
        assert len(got) == len(expected), hostile_command
        for word, want in zip(got, expected):     # the sampler splits a command part itself
            if word.startswith("readback:channels="):
                assert shell_words(word.partition("=")[2]) == ["ethtool", "-l", interface]
            else:
                assert word == want, hostile_command
        mentions += "IFACE0" in plain_command
    assert mentions >= 10


def test_probe_of_a_hostile_interface_is_refused() -> None:
    with pytest.raises(ProbeArgumentError):
        plan_for(guest_facts(HOSTILE), {}, load=LOAD)       # ethtool_stats probe validates names


def test_helpers_quote() -> None:
    assert q("echo", "a b", "$x", 3) == "echo 'a b' '$x' 3"
    assert write_command("/a b/c", "0-1;x") == "echo '0-1;x' > '/a b/c'"
    assert rps_path("eth1", 3) == "/sys/class/net/eth1/queues/rx-3/rps_cpus"
    assert detached_command(["x y", "z"], "/l o/g") == "setsid 'x y' z </dev/null >'/l o/g' 2>&1 & echo $!"


def test_wait_file_command_in_real_sh(tmp_path: Path) -> None:
    target = tmp_path / "with space" / "ready"
    target.parent.mkdir()
    waiting = subprocess.run(["sh", "-c", wait_file_command(str(target), 0.1)], timeout=10)
    assert waiting.returncode == 1
    target.touch()
    assert subprocess.run(["sh", "-c", wait_file_command(str(target), 0.1)], timeout=10).returncode == 0


# --------------------------------------------------------------------------- rendering

def test_render_plan_shows_every_command_and_undo() -> None:
    plan = plan_for(guest_facts(), GUEST_TUNING | {"rps": {"rx-0": "1,6", "rx-1": "4"}},
                    load=LOAD)
    text = render_plan(plan)
    assert text.startswith(f"plan for run {RUN} ({len(plan.actions)} actions)\n")
    for phase in ("prepare", "tune", "load", "measure", "finish"):
        assert f"\n== {phase}\n" in text
    for number, action in enumerate(plan.actions, 1):
        assert f"{number:3d}. [{action.host}] {action.kind}: {action.description}" in text
        if isinstance(action, (Change, Start)):
            for line in action.command.splitlines():
                assert f"       $ {line}" in text
        if isinstance(action, Change) and action.undo:
            assert f"       undo: $ {action.undo}\n" in text
        for warning in action.warnings:
            assert f"       warning: {warning}\n" in text
        if isinstance(action, Snapshot):
            for name, command in action.probes:
                assert f"{command}   # -> {action.host}/{name}.{action.local}" in text
    assert "read back: $ cat /sys/class/net/eth1/queues/rx-0/rps_cpus  (expect 1)" in text
    assert "read back: $ ethtool -l eth1  (expect combined 2)" in text
    assert "(sftp) labctl/agent/loadgen.py -> /tmp/labctl-" in text
    assert "<pid of server>" in text and "<pid of client>" in text      # display only


def test_no_pid_placeholder_in_real_commands() -> None:
    plan = plan_for(guest_facts(), GUEST_TUNING, load=LOAD)
    for command in all_commands(plan):
        assert "<pid of" not in command and "<run-id>" not in command
    stop = [a for a in plan.actions if isinstance(a, Stop)]
    assert stop and all(a.process in ("server", "sampler-dut") and not hasattr(a, "command")
                        for a in stop)


@pytest.mark.parametrize("loadgen_tuning,warned", [
    ({}, True),                                   # loadgen sends on 4 TX queues, the DUT keeps 2
    ({"channels": {"rx": 2, "tx": 2}}, False),
    ({"channels": {"tx": 1}}, False),
])
def test_netns_rps_with_fewer_rx_than_peer_tx_queues_warns(loadgen_tuning: dict[str, Any], warned: bool) -> None:
    from labctl.plan.feasibility import _veth_queue_warnings
    tuning = {"dut": {"channels": {"rx": 2, "tx": 2}, "rps": {"all": 1}}}
    if loadgen_tuning:
        tuning["loadgen"] = loadgen_tuning
    warnings = _veth_queue_warnings(scenario(tuning=tuning),
                                    {"dut": veth_facts("dut"), "loadgen": veth_facts("loadgen")})
    assert bool(warnings) == warned
    if warned:
        assert "dut keeps 2 RX queue(s) while loadgen sends on 4 TX queues" in warnings[0]
        assert "`channels: {tx: 2}`" in warnings[0]


def test_channels_undo_finds_vectors_by_name() -> None:
    """igb frees and re-requests its vectors on `ethtool -L`: after the channels are back, a
    vector's original affinity is written where its name is now, whatever its number."""
    facts = guest_facts()
    nic = dataclasses.replace(facts.nic, vectors={irq: f"eth1-rx-{q}" for q, irq in facts.nic.rx_irqs.items()})
    plan = plan_for(dataclasses.replace(facts, nic=nic), {"channels": {"combined": 2}})
    undo = next(a for a in tune(plan) if isinstance(a, Change)).undo
    assert undo is not None
    rx0 = facts.nic.rx_irqs[0]
    assert reapply_affinity_command(rx0, "eth1-rx-0", _cpus(facts, rx0)) in undo
    assert f"echo {_cpus(facts, rx0)} > /proc/irq/{rx0}/smp_affinity_list" not in undo


def _cpus(facts: HostFacts, irq: str) -> str:
    from labctl.cpulist import format_cpulist
    return format_cpulist(facts.irq_affinity[irq])


def test_reapply_by_name_in_real_sh(tmp_path: Path) -> None:
    """The command, run by sh against a stand-in for /proc/irq: written where the name is."""
    command = reapply_affinity_command("41", "eth1-rx-0", "0-3")
    root = tmp_path / "irq"
    for irq, name in (("41", "eth1-tx-0"), ("43", "eth1-rx-0"), ("44", "eth1-rx-1")):
        (root / irq / name).mkdir(parents=True)
        (root / irq / "smp_affinity_list").write_text("7\n")
    done = subprocess.run(["sh", "-c", command.replace("/proc/irq/", f"{root}/")])
    assert done.returncode == 0
    assert [(root / i / "smp_affinity_list").read_text() for i in ("41", "43", "44")] == ["7\n", "0-3\n", "7\n"]
    gone = subprocess.run(["sh", "-c", reapply_affinity_command("41", "eth1-rx-9", "0-3")
                           .replace("/proc/irq/", f"{root}/")])
    assert gone.returncode == 0                          # a vector that is not there: nothing to put back
    assert reapply_affinity_command("41", "", "0-3") == "echo 0-3 > /proc/irq/41/smp_affinity_list"
