"""Executor against fake in-memory transports: the error paths a real host can't produce on
demand (a refused write, a read-back mismatch, Ctrl-C in the load window) and the restore that
must follow each of them."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labctl.cpulist import format_mask, parse_mask
from labctl.errors import HostError, RunError
from labctl.execution.executor import (
    Executor,
    Outcome,
    describe_value,
    require_ok,
)
from labctl.plan.actions import (
    Change,
    Fetch,
    Plan,
    Readback,
    Skip,
    Snapshot,
    Start,
    Stop,
    WaitFile,
)
from labctl.plan.planner import build_plan
from labctl.runfiles.rundir import RunDir
from labctl.shell import running_command, stop_command
from tests.helpers import FIXTURES, FakeTransport, Res
from tests.helpers.plans import (
    GUEST_TUNING,
    INVENTORY,
    LOAD,
    RUN,
    guest_facts,
    scenario,
    veth_facts,
)


class FakeGuest(FakeTransport):
    """The virtio guest of the captures, as far as the plan touches it: 8 CPUs, isolated 4-7,
    `ethtool -L` resets the rx IRQs' affinity and re-creates rx-N with RPS off (kernel facts 1
    and 2 of DESIGN.md), isolated-only RPS masks are EINVAL, mixed ones trimmed."""

    IRQS = ("37", "39", "41", "43", "38", "40", "42", "44")

    def __init__(self, name: str = "dut", script: dict[str, Any] | None = None,
                 running_polls: int = 0, first_pid: int = 4242):
        super().__init__(name, script)
        facts = guest_facts()
        self.combined = 4
        self.irqbalance = "active"
        self.files = {f"/proc/irq/{irq}/smp_affinity_list": _cpulist(facts.irq_affinity[irq])
                      for irq in self.IRQS}
        self.files.update({_rps(q): format_mask(facts.nic.rps_cpus[q], 8) for q in range(4)})
        self.pids: dict[int, int] = {}           # pid -> polls left before it exits
        self.running_polls = running_polls
        self.first_pid = first_pid

    def state(self) -> dict[str, Any]:
        return {"combined": self.combined, "irqbalance": self.irqbalance, **self.files}

    def respond(self, command: str) -> Res:
        for pid in list(self.pids):
            if command == running_command(pid):
                return self.poll(pid)
            if command.startswith(f"kill -TERM {pid} "):
                return self.stop(pid)
        if command.startswith("rc=0; "):                 # plan.all_of: run all, fail if any failed
            parts = re.findall(r"\{ (.*?); \} \|\| rc=1;", command)
            results = [self.respond(part) for part in parts]
            return Res("".join(r.stdout for r in results), "".join(r.stderr for r in results),
                       int(any(r.exited for r in results)))
        for pattern, handler in self.handlers():
            match = re.fullmatch(pattern, command)
            if match:
                return handler(*match.groups())
        return Res()

    def handlers(self) -> list[tuple[str, Callable[..., Res]]]:
        return [
            (r"systemctl (stop|start) irqbalance", self.systemctl),
            (r"ethtool -L eth1 combined (\d+)", self.set_channels),
            (r"ethtool -l eth1", self.channels),
            (r"echo (\S+) > (\S+)", self.write),
            (r"\{ n=0; for q in .* -eq (\d+) \] \|\| \{ echo '([^']*)'.* && echo (\S+) > (\S+)",
             self.guarded_write),
            (r"if \{ n=0; for q in .* -eq (\d+) \]; \}; then echo (\S+) > (\S+); else echo '([^']*)'; fi",
             self.guarded_undo),
            (r"cat (\S+)", self.read),
            (r"setsid (.*) & echo \$!", self.start),
        ]

    def systemctl(self, verb: str) -> Res:
        self.irqbalance = "active" if verb == "start" else "inactive"
        return Res()

    def set_channels(self, count: str) -> Res:
        self.combined = int(count)
        for irq in self.IRQS:
            self.files[f"/proc/irq/{irq}/smp_affinity_list"] = "0-7"
        for q in range(4):
            if q < self.combined:
                self.files.setdefault(_rps(q), "00")
            else:
                self.files.pop(_rps(q), None)
        return Res()

    def guarded_write(self, queues: str, message: str, value: str, path: str) -> Res:
        """planner.irq_guard: the RX queue count must be the plan's, else its message is
        printed and nothing is written."""
        if int(queues) != self.combined:
            return Res("", f"{message}: now {self.combined}\n", 1)
        return self.write(value, path)

    def guarded_undo(self, queues: str, value: str, path: str, note: str) -> Res:
        """planner.guarded_undo: put back only while the queue count is the plan's."""
        return self.write(value, path) if int(queues) == self.combined else Res(note + "\n")

    def channels(self) -> Res:
        text = (FIXTURES / "ethtool_channels/debian12-guest-virtio.start.txt").read_text()
        maximum, current = text.split("Current hardware settings:")
        current = current.replace("Combined:\t4", f"Combined:\t{self.combined}")
        return Res(maximum + "Current hardware settings:" + current)

    def write(self, value: str, path: str) -> Res:
        if path not in self.files:
            return Res(stderr=f"sh: {path}: No such file or directory", exited=2)
        if path.endswith("rps_cpus"):
            wanted = parse_mask(value)
            kept = wanted - frozenset(range(4, 8))
            if wanted and not kept:
                return Res(stderr="sh: echo: I/O error: Invalid argument", exited=1)
            value = format_mask(kept, 8)
        self.files[path] = value
        return Res()

    def read(self, path: str) -> Res:
        if path not in self.files:
            return Res(stderr=f"cat: {path}: No such file or directory", exited=1)
        return Res(self.files[path] + "\n")

    def start(self, argv: str) -> Res:
        """The client ends after `running_polls` polls; a server or perf runs until stopped."""
        pid = self.first_pid + len(self.pids)
        self.pids[pid] = self.running_polls if " client " in argv else 10**9
        return Res(f"{pid}\n")

    def poll(self, pid: int) -> Res:
        self.pids[pid] -= 1
        return Res(exited=0 if self.pids[pid] >= 0 else 1)

    def stop(self, pid: int) -> Res:
        del self.pids[pid]
        return Res()


def _rps(queue: int) -> str:
    return f"/sys/class/net/eth1/queues/rx-{queue}/rps_cpus"


def _cpulist(cpus: frozenset[int]) -> str:
    from labctl.cpulist import format_cpulist
    return format_cpulist(cpus)


def run_dir(tmp_path: Path) -> RunDir:
    return RunDir.create(tmp_path / "runs", RUN)


def execute(plan: Plan, transports: dict[str, Any], tmp_path: Path,
            keep_tuning: bool = False) -> tuple[Outcome, RunDir, list[str]]:
    messages: list[str] = []
    directory = run_dir(tmp_path)
    outcome = Executor(plan, transports, directory, messages.append, keep_tuning).execute()
    return outcome, directory, messages


def change(description: str, command: str, undo: str | None = None, **more: Any) -> Change:
    return Change("h", more.pop("phase", "tune"), description, command=command, undo=undo, **more)


def steps_json(directory: RunDir) -> dict[str, Any]:
    return json.loads((directory.path / "steps.json").read_text())


def guest_plan(tuning: dict[str, Any] = GUEST_TUNING, **more: Any) -> Plan:
    """build_plan for the guest; without load, minus the 5 s idle measurement window."""
    plan = build_plan(INVENTORY, scenario(tuning={"dut": tuning}, **more),
                      {"dut": guest_facts(), "loadgen": veth_facts("loadgen")}, RUN)
    if "load" in more:
        return plan
    return Plan(plan.run_id, plan.workdir, tuple(a for a in plan.actions if a.kind != "sleep"))


# --------------------------------------------------------------------------- pure helpers

def test_observed_value() -> None:
    assert Readback("c", "mask", frozenset({1})).observed("02\n") == frozenset({1})
    assert Readback("c", "mask", frozenset()).observed("00000000,00000000\n") == frozenset()
    assert Readback("c", "mask", frozenset()).observed("1,00000000") == frozenset({32})
    assert Readback("c", "cpulist", frozenset()).observed("0-3,6\n") == frozenset({0, 1, 2, 3, 6})
    virtio = (FIXTURES / "ethtool_channels/debian12-guest-virtio.start.txt").read_text()
    assert Readback("c", "channels", {"combined": 2}).observed(virtio) == {"combined": 4}
    veth = (FIXTURES / "ethtool_channels/veth-4q.txt").read_text()
    assert Readback("c", "channels", {"rx": 2, "tx": 2}).observed(veth) == {"rx": 4, "tx": 4}
    assert Readback("c", "channels", {"combined": 2}).observed(veth) == {"combined": None}


def test_describe_value() -> None:
    assert describe_value(frozenset({0, 1, 2, 5})) == "0-2,5"
    assert describe_value(frozenset()) == "none"
    assert describe_value({"combined": 2}) == "{'combined': 2}"


def test_require_ok() -> None:
    require_ok(Outcome([], []))
    with pytest.raises(RunError, match="interrupted; the hosts were restored"):
        require_ok(Outcome([], [], interrupted="interrupted"))
    with pytest.raises(RunError, match="boom"):
        require_ok(Outcome([], [], error="boom"))


# --------------------------------------------------------------------------- a whole run

def test_a_queue_count_changed_since_the_facts_stops_the_pin_and_restores(tmp_path: Path) -> None:
    """Facts read 4 combined channels; someone set 2 before the run's pin step: the step's
    guard fails with the reason and nothing is pinned; what ran before is undone."""
    guest = FakeGuest()
    original = guest.state()
    guest.set_channels("2")
    changed = guest.state()
    plan = guest_plan({"irqbalance": "stop", "irq_affinity": {"rx-0": 2}})
    outcome, _, _ = execute(plan, {"dut": guest, "loadgen": FakeGuest("loadgen")}, tmp_path)
    failed = next(step for step in outcome.steps if step.status == "failed")
    assert failed.description == "pin IRQ 37 (virtio1-input.0, rx-0) to CPUs 2 (was 0-1)"
    assert outcome.error is not None and "eth1 does not have the 4 RX queue(s) the plan was made for" \
        in outcome.error and "its queue count changed: IRQ 37 not pinned: now 2" in outcome.error
    assert guest.state() == changed != original          # irqbalance back on, IRQ 37 untouched
    assert all(r.status == "ok" for r in outcome.restore)



def test_whole_plan_then_everything_restored(tmp_path: Path) -> None:
    guest, loadgen = FakeGuest(), FakeGuest("loadgen")
    original = guest.state()
    plan = guest_plan(load=LOAD)
    outcome, directory, _ = execute(plan, {"dut": guest, "loadgen": loadgen}, tmp_path)
    assert outcome.error is None and outcome.interrupted is None
    by_kind = {s.description: (s.status, s.observed) for s in outcome.steps if s.kind == "change"}
    assert by_kind["set eth1 channels combined 2 (was combined 4)"] == ("ok", "{'combined': 2}")
    assert by_kind["RPS of rx-0 -> CPUs 1 (mask 02, was 1)"] == ("ok", "1")
    assert by_kind["pin IRQ 37 (virtio1-input.0, rx-0) to CPUs 2 (was 0-1)"] == ("ok", "2")
    assert [s.status for s in outcome.steps].count("ok") == len(plan.actions)
    assert [s.index for s in outcome.steps] == list(range(len(plan.actions)))
    # the channel change reset the IRQ affinities and RPS masks; its undo put them back
    assert guest.state() == original
    assert all(r.status == "ok" for r in outcome.restore)
    assert [r.description for r in outcome.restore] == [
        "undo: RPS of rx-1 -> CPUs 1 (mask 02, was off)", "undo: RPS of rx-0 -> CPUs 1 (mask 02, was 1)",
        "undo: pin IRQ 39 (virtio1-input.1, rx-1) to CPUs 3 (was 2-3)",
        "undo: pin IRQ 37 (virtio1-input.0, rx-0) to CPUs 2 (was 0-1)",
        "undo: set eth1 channels combined 2 (was combined 4)", "undo: stop irqbalance (was active)",
        "undo: create the run's working directory", "undo: create the run's working directory"]
    assert guest.resets == loadgen.resets == 0
    # raw snapshots, loadgen results, steps.json
    assert directory.read_raw("dut", "interrupts", "before") == "dut interrupts\n"
    assert directory.read_raw("dut", "rps_cpus", "after") == "dut rps_cpus\n"
    snapshot = next(s for s in outcome.steps if s.kind == "snapshot")
    assert snapshot.observed == "8 probes" and snapshot.warnings == ["probe ethtool_stats exited 1"]
    assert json.loads((directory.path / "loadgen" / "loadgen" / "client.json").read_text()) == {
        "from": f"/tmp/labctl-{RUN}/client.json"}
    assert ("put_file", f"/tmp/labctl-{RUN}/labctl-loadgen.py") in guest.calls
    data = steps_json(directory)
    assert data["interrupted"] is None and data["error"] is None
    assert len(data["steps"]) == len(plan.actions) and len(data["restore"]) == 8


def test_keep_tuning_keeps_tuning_but_removes_the_workdir(tmp_path: Path) -> None:
    guest = FakeGuest()
    outcome, _, messages = execute(guest_plan({"rps": {"rx-0": 2}}), {"dut": guest}, tmp_path,
                                   keep_tuning=True)
    assert [r.description for r in outcome.restore] == ["undo: create the run's working directory"]
    assert guest.commands()[-1] == f"rm -rf /tmp/labctl-{RUN}"
    assert guest.files[_rps(0)] == "04"                      # the tuning stayed
    assert f"keep_tuning: the tuning stays on the hosts (`labctl restore {RUN}` puts it back)" in messages


# --------------------------------------------------------------------------- failures

def test_failing_change_aborts_and_restores_in_reverse(tmp_path: Path) -> None:
    plan = Plan(RUN, {"h": "/w"}, (
        change("workdir", "mkdir -p /w", "rm -rf /w", phase="prepare"),
        change("A", "do A", "undo A"),
        Skip("h", "tune", "nothing to do"),
        change("B", "do B", "undo B"),
        change("C", "do C", "undo C"),
        change("D", "do D", "undo D"),
    ))
    host = FakeTransport("h", {"do C": Res("partial\n", "boom: Invalid argument\n", 1)})
    other = FakeTransport("other")
    outcome, directory, _ = execute(plan, {"h": host, "other": other}, tmp_path)
    assert outcome.error is not None and "boom: Invalid argument" in outcome.error
    assert "command: do C" in outcome.error and "exited 1" in outcome.error
    assert [(s.description, s.status) for s in outcome.steps] == [
        ("workdir", "ok"), ("A", "ok"), ("nothing to do", "skipped"), ("B", "ok"), ("C", "failed")]
    assert outcome.steps[-1].output == "partial\nboom: Invalid argument"
    # a failed change may have been applied in part: its (idempotent) undo runs too
    assert host.commands() == ["mkdir -p /w", "do A", "do B", "do C", "undo C", "undo B", "undo A",
                               "rm -rf /w"]
    assert [r.status for r in outcome.restore] == ["ok", "ok", "ok", "ok"]
    assert host.resets == other.resets == 1                  # dirty shells replaced after an error
    data = steps_json(directory)
    assert data["error"] == outcome.error and data["steps"][-1]["status"] == "failed"
    assert [r["description"] for r in data["restore"]] == ["undo: C", "undo: B", "undo: A", "undo: workdir"]


def test_readback_mismatch_aborts_and_restores_that_change_too(tmp_path: Path) -> None:
    path = "/proc/irq/37/smp_affinity_list"
    plan = Plan(RUN, {}, (
        change("A", "do A", "undo A"),
        change("pin", f"echo 2 > {path}", f"echo 0-1 > {path}",
               readback=Readback(f"cat {path}", "cpulist", frozenset({2}))),
        change("B", "do B", "undo B"),
    ))
    host = FakeTransport("h", {f"cat {path}": Res("0-1\n")})
    outcome, _, _ = execute(plan, {"h": host}, tmp_path)
    assert outcome.error is not None
    assert "read-back mismatch after 'pin': expected 2, host has 0-1" in outcome.error
    assert [(s.description, s.status, s.observed) for s in outcome.steps] == [
        ("A", "ok", None), ("pin", "failed", "0-1")]
    assert host.commands()[-2:] == [f"echo 0-1 > {path}", "undo A"]
    assert "do B" not in host.commands()


def test_rps_trimmed_by_the_kernel_is_a_mismatch_on_the_fake_guest(tmp_path: Path) -> None:
    """A plan that expected the whole mask back (no isolation known) meets the trimming kernel."""
    plan = Plan(RUN, {}, (Change("dut", "tune", "rps", command=f"echo 42 > {_rps(0)}",
                                 undo=f"echo 02 > {_rps(0)}",
                                 readback=Readback(f"cat {_rps(0)}", "mask", frozenset({1, 6}))),))
    guest = FakeGuest()
    outcome, _, _ = execute(plan, {"dut": guest}, tmp_path)
    assert outcome.error is not None and "expected 1,6, host has 1" in outcome.error
    assert guest.files[_rps(0)] == "02"


def test_expect_failure_refused_as_expected(tmp_path: Path) -> None:
    plan = guest_plan({"rps": {"rx-0": "4-5", "rx-1": 2}, "allow_isolated_rps": True})
    guest = FakeGuest()
    outcome, _, messages = execute(plan, {"dut": guest}, tmp_path)
    assert outcome.error is None
    refused, accepted = [s for s in outcome.steps if s.kind == "change" and "RPS" in s.description]
    assert refused.status == "refused-as-expected" and refused.observed is None
    assert refused.output == "sh: echo: I/O error: Invalid argument"
    assert accepted.status == "ok" and accepted.observed == "2"
    assert [r.description for r in outcome.restore] == [
        "undo: RPS of rx-1 -> CPUs 2 (mask 04, was off)", "undo: create the run's working directory"]
    assert any("kernel refused, as expected" in m for m in messages)
    assert guest.files[_rps(0)] == "02" and guest.files[_rps(1)] == "00"


def test_expect_failure_that_succeeds_is_recorded_and_undone(tmp_path: Path) -> None:
    plan = Plan(RUN, {}, (change("isolated", "do it", "undo it", expect_failure=True),))
    outcome, _, _ = execute(plan, {"h": FakeTransport("h")}, tmp_path)
    (step,) = outcome.steps
    assert step.status == "ok"
    assert step.warnings == ["the kernel accepted a write that was expected to be refused"]
    assert [r.description for r in outcome.restore] == ["undo: isolated"]


def test_failed_restore_step_does_not_stop_the_others(tmp_path: Path) -> None:
    plan = Plan(RUN, {}, (change("A", "do A", "undo A"), change("B", "do B", "undo B")))
    host = FakeTransport("h", {"undo B": Res("", "nope\n", 1), "undo A": HostError("h", "undo A", None, "",
                                                                                   why="link lost")})
    outcome, _, messages = execute(plan, {"h": host}, tmp_path)
    assert outcome.error is None
    assert [(r.status, r.output) for r in outcome.restore] == [
        ("failed", "nope"), ("failed", "h: link lost\n  command: undo A")]
    assert any("restore step failed: B: nope" in m for m in messages)


def test_start_without_pid(tmp_path: Path) -> None:
    plan = Plan(RUN, {}, (Start("h", "load", "server", command="start", process="server"),))
    outcome, _, _ = execute(plan, {"h": FakeTransport("h", {"start": Res("oops\n")})}, tmp_path)
    assert outcome.error is not None and "no PID from a detached start" in outcome.error
    assert outcome.steps[0].status == "failed"


def test_wait_file_timeout_shows_the_log(tmp_path: Path) -> None:
    plan = Plan(RUN, {}, (
        Start("h", "load", "server", command="start", process="server"),
        WaitFile("h", "load", "ready?", path="/w/server.ready", process="server", timeout=0.1)))
    class NeverReady(FakeTransport):
        def respond(self, command: str) -> Res:
            return Res(exited=1) if command.startswith("i=0") else Res()
    host = NeverReady("h", {"start": Res("77\n"),
                            "tail -n 20 /w/server.log 2>/dev/null": Res("Traceback: bind failed\n")})
    outcome, _, _ = execute(plan, {"h": host}, tmp_path)
    assert outcome.error is not None
    assert "server not ready after 0.1 s" in outcome.error and "bind failed" in outcome.error
    assert stop_command(77, 5.0) in host.commands()          # the started server is stopped


def test_fetch_failure_is_recorded_not_fatal(tmp_path: Path) -> None:
    class NoFile(FakeTransport):
        def get_file(self, remote_path: str, local: Path) -> None:
            raise HostError("h", f"sftp get {remote_path}", None, "", why="no such file")
    plan = Plan(RUN, {}, (Fetch("h", "finish", "fetch server.json", remote="/w/server.json",
                                local="loadgen/server.json"), change("A", "do A")))
    outcome, _, _ = execute(plan, {"h": NoFile("h")}, tmp_path)
    assert outcome.error is None
    assert outcome.steps[0].status == "failed" and "no such file" in outcome.steps[0].output
    assert outcome.steps[1].status == "ok"


# --------------------------------------------------------------------------- Ctrl-C

def test_ctrl_c_in_the_load_window(tmp_path: Path) -> None:
    guest, loadgen = FakeGuest(), FakeGuest("loadgen", running_polls=100, first_pid=5151)
    original = guest.state()
    loadgen.script[running_command(5151)] = KeyboardInterrupt()
    handler = signal.getsignal(signal.SIGINT)
    plan = guest_plan(load=LOAD)
    outcome, directory, _ = execute(plan, {"dut": guest, "loadgen": loadgen}, tmp_path)
    assert outcome.interrupted == "interrupted by the user (SIGINT)" and outcome.error is None
    assert signal.getsignal(signal.SIGINT) is handler
    assert guest.resets == loadgen.resets == 1
    wait = outcome.steps[-1]
    assert (wait.kind, wait.status) == ("wait_process", "failed")
    assert not any(s.kind in ("stop", "fetch") for s in outcome.steps)
    assert directory.read_raw("dut", "interrupts", "after") is None
    # both processes stopped by their recorded PIDs, then the restore
    assert stop_command(4242, 5.0) in guest.commands()          # the server on dut
    assert stop_command(5151, 5.0) in loadgen.commands()        # the client on loadgen
    assert not any(c.startswith("kill -TERM 4242") for c in loadgen.commands())
    assert guest.commands().index(stop_command(4242, 5.0)) < guest.commands().index(
        f"rm -rf /tmp/labctl-{RUN}")
    assert guest.state() == original
    assert all(r.status == "ok" for r in outcome.restore) and len(outcome.restore) == 8
    assert steps_json(directory)["interrupted"] == outcome.interrupted


def test_ctrl_c_during_a_change_still_restores_what_was_applied(tmp_path: Path) -> None:
    plan = Plan(RUN, {}, (change("A", "do A", "undo A"), change("B", "do B", "undo B")))
    host = FakeTransport("h", {"do B": KeyboardInterrupt()})
    outcome, _, _ = execute(plan, {"h": host}, tmp_path)
    assert outcome.interrupted and host.resets == 1
    assert host.commands()[:2] == ["do A", "do B"] and host.commands()[-1] == "undo A"
    assert outcome.steps[-1].status == "failed"


def test_ctrl_c_during_a_change_undoes_that_change_too(tmp_path: Path) -> None:
    plan = Plan(RUN, {}, (change("A", "do A", "undo A"), change("B", "do B", "undo B")))
    host = FakeTransport("h", {"do B": KeyboardInterrupt()})
    execute(plan, {"h": host}, tmp_path)
    assert host.commands() == ["do A", "do B", "undo B", "undo A"]


def test_second_ctrl_c_during_restore_is_deferred(tmp_path: Path) -> None:
    def press_ctrl_c() -> Res:
        signal.raise_signal(signal.SIGINT)
        return Res()
    plan = Plan(RUN, {}, (change("A", "do A", "undo A"), change("B", "do B", "undo B"),
                          change("C", "do C", "undo C")))
    host = FakeTransport("h", {"do C": KeyboardInterrupt(), "undo B": press_ctrl_c})
    outcome, _, messages = execute(plan, {"h": host}, tmp_path)
    assert outcome.interrupted
    assert host.commands()[-2:] == ["undo B", "undo A"]          # the restore went on
    assert "restoring the original state; please wait" in messages


def test_parallel_snapshots_of_two_hosts(tmp_path: Path) -> None:
    probes = (("interrupts", "cat /proc/interrupts"),)
    from labctl.host.sections import build_script
    snap = [Snapshot(h, "measure", f"snapshot {h}", command=build_script(dict(probes)),
                     local="before", probes=probes) for h in ("a", "b")]
    a, b = FakeTransport("a"), FakeTransport("b")
    outcome, directory, _ = execute(Plan(RUN, {}, tuple(snap)), {"a": a, "b": b}, tmp_path)
    assert outcome.error is None and [s.status for s in outcome.steps] == ["ok", "ok"]
    assert directory.read_raw("a", "interrupts", "before") == "a interrupts\n"
    assert directory.read_raw("b", "interrupts", "before") == "b interrupts\n"


@pytest.mark.parametrize("ended_ok", [True, False])
def test_a_process_that_ended_before_its_stop(tmp_path: Path, ended_ok: bool) -> None:
    """The sampler (ended_ok) that crashed is a warning, its output kept; any other process
    that ended before labctl stopped it fails the run."""
    start = "setsid sampler </dev/null >log 2>&1 & echo $!"
    host = FakeTransport("h", {start: Res("4242\n"), running_command(4242): Res(exited=1)})
    plan = Plan(RUN, {"h": "/tmp/w"}, (
        Start("h", "load", "start the sampler", command=start, process="sampler-h"),
        Stop("h", "load", "stop the sampler", process="sampler-h", ended_ok=ended_ok)))
    outcome, directory, _ = execute(plan, {"h": host}, tmp_path)
    stop = steps_json(directory)["steps"][1]
    if ended_ok:
        assert outcome.error is None and stop["status"] == "ok"
        assert "had ended before it was stopped" in stop["warnings"][0]
    else:
        assert "ended before labctl stopped it" in (outcome.error or "") and stop["status"] == "failed"


class Window:
    """The live view's hook: records how many commands the generator host had run when it was
    told the load window opened and closed."""

    def __init__(self, generator: FakeGuest, fail: bool = False):
        self.generator, self.fail, self.events = generator, fail, []

    def opened(self) -> None:
        self.events.append(("opened", len(self.generator.commands())))
        if self.fail:
            raise RuntimeError("no terminal after all")

    def closed(self) -> None:
        self.events.append(("closed", len(self.generator.commands())))
        if self.fail:
            raise OSError("closed twice")


@pytest.mark.parametrize("fail", [False, True])
def test_the_window_hook_spans_the_load_window_and_its_failures_are_not_the_runs(
        tmp_path: Path, fail: bool) -> None:
    guest, loadgen = FakeGuest(running_polls=2), FakeGuest("loadgen", running_polls=2)
    window = Window(loadgen, fail)
    messages: list[str] = []
    plan = guest_plan(load=LOAD)
    outcome = Executor(plan, {"dut": guest, "loadgen": loadgen}, run_dir(tmp_path), messages.append,
                       window=window).execute()
    assert outcome.error is None and outcome.interrupted is None
    assert [e for e, _ in window.events] == ["opened", "closed"]
    commands = loadgen.commands()
    opened, closed = window.events[0][1], window.events[1][1]
    assert "labctl-loadgen.py" in commands[opened - 1] and " client " in commands[opened - 1]
    assert commands[opened:closed - 1] == [running_command(4242)] * 3     # the client's wait
    assert commands[closed - 1] == f"test -s /tmp/labctl-{RUN}/client.json"
    failures = [m for m in messages if "the live view failed" in m]
    assert failures == (["warning: the live view failed: no terminal after all",
                         "warning: the live view failed: closed twice"] if fail else [])
