"""Planning (pure): (inventory, scenario, host facts, run id) -> ordered actions.

The plan is data. `labctl run --dry-run` prints it; the executor walks it. Every change
carries the literal command that undoes it, computed from the facts read just before; every
value that enters a command is quoted here.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Literal

from labctl.cpulist import format_cpulist, format_mask
from labctl.host import probes
from labctl.host.facts import HostFacts
from labctl.host.sections import build_script
from labctl.host.snapshots import SnapshotHost, snapshot_probes
from labctl.input.model import (
    Channels,
    ClientLoad,
    HostTuning,
    Inventory,
    Load,
    Profile,
    Scenario,
    ServerLoad,
    queue_index,
)

Kind = Literal["change", "skip", "sleep", "upload", "start", "wait_file", "snapshot",
               "wait_process", "stop", "fetch"]
Phase = Literal["prepare", "tune", "load", "measure", "finish"]

LOADGEN_REMOTE_NAME = "labctl-loadgen.py"


@dataclass(frozen=True)
class Readback:
    """How to verify a change: a command whose output must parse to the expected value."""

    command: str
    kind: Literal["mask", "cpulist", "channels"]
    expected: Any


@dataclass(frozen=True)
class Action:
    host: str
    phase: Phase
    kind: Kind
    description: str
    command: str = ""
    undo: str | None = None
    readback: Readback | None = None
    process: str | None = None         # name of the process a start/stop/wait refers to
    local: str | None = None           # upload source / fetch destination (relative to run dir)
    remote: str | None = None
    timeout: float = 60.0
    expect_failure: bool = False       # attempted on purpose to record the kernel's answer
    signal: str = "TERM"               # stop: the signal that ends the process cleanly
    warnings: tuple[str, ...] = ()
    probes: tuple[tuple[str, str], ...] = ()   # snapshot: (probe, command), one batched script


@dataclass(frozen=True)
class Plan:
    run_id: str
    workdir: dict[str, str]            # host -> remote working directory
    actions: tuple[Action, ...] = field(default_factory=tuple)

    def for_phase(self, phase: str) -> list[Action]:
        return [a for a in self.actions if a.phase == phase]


def q(*parts: object) -> str:
    """Quote each part for sh and join them: the one way values enter commands."""
    return shlex.join(str(p) for p in parts)


def remote_workdir(run_id: str) -> str:
    return f"/tmp/labctl-{run_id}"


def build_plan(inventory: Inventory, scenario: Scenario, facts: dict[str, HostFacts],
               run_id: str) -> Plan:
    hosts = _involved_hosts(scenario)
    workdir = {h: remote_workdir(run_id) for h in hosts}
    actions: list[Action] = []
    for host in hosts:
        actions.append(Action(host, "prepare", "change", "create the run's working directory",
                              command=q("mkdir", "-p", workdir[host]),
                              undo=q("rm", "-rf", workdir[host])))
    for host, tuning in scenario.tuning.items():
        actions += tuning_actions(host, tuning, facts[host])
    if scenario.load:
        actions += load_actions(inventory, scenario, facts, workdir)
    else:
        actions.append(settle_action(scenario))
        actions += snapshot_actions(scenario, facts, "before")
        actions.append(Action("-", "measure", "sleep", "measurement window without load", timeout=5.0))
        actions += snapshot_actions(scenario, facts, "after")
    return Plan(run_id, workdir, tuple(actions))


def _involved_hosts(scenario: Scenario) -> list[str]:
    names: list[str] = list(scenario.tuning)
    if scenario.load:
        names += [scenario.load.server.host, scenario.load.client.host]
    names += scenario.snapshot.hosts
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- tuning

def tuning_actions(host: str, tuning: HostTuning, facts: HostFacts) -> list[Action]:
    actions = irqbalance_actions(host, tuning, facts)
    if tuning.channels is not None:
        actions.append(channels_action(host, tuning.channels, facts))
    actions += irq_affinity_actions(host, tuning, facts)
    actions += rps_actions(host, tuning, facts)
    return actions


def irqbalance_actions(host: str, tuning: HostTuning, facts: HostFacts) -> list[Action]:
    if tuning.irqbalance == "leave":
        return []
    if facts.shared_kernel:
        return [Action(host, "tune", "skip", f"irqbalance {tuning.irqbalance}: not applicable, "
                       "this lab host shares the machine's kernel (netns) and irqbalance is "
                       "host-wide")]
    if facts.irqbalance == "absent":
        return [Action(host, "tune", "skip", "irqbalance is not installed on this host")]
    want_active = tuning.irqbalance == "start"
    if (facts.irqbalance == "active") == want_active:
        return [Action(host, "tune", "skip", f"irqbalance already {facts.irqbalance}")]
    start, stop = ((q("systemctl", "start", "irqbalance"), q("systemctl", "stop", "irqbalance"))
                   if facts.systemd else ("irqbalance", "kill $(pidof irqbalance)"))
    command, undo = (start, stop) if want_active else (stop, start)
    verb = "start" if want_active else "stop"
    return [Action(host, "tune", "change", f"{verb} irqbalance (was {facts.irqbalance})",
                   command=command, undo=undo)]


def channel_args(channels: Channels, facts: HostFacts) -> tuple[list[str], str]:
    """`ethtool -L` arguments in the form the device supports, and a note if translated."""
    if channels.combined is not None and not facts.nic.supports_combined:
        n = channels.combined
        return ["rx", str(n), "tx", str(n)], f"device has no combined channels: rx {n} tx {n}"
    pairs = [(k, getattr(channels, k)) for k in ("combined", "rx", "tx")]
    return [str(x) for k, v in pairs if v is not None for x in (k, v)], ""


def original_channel_args(facts: HostFacts) -> list[str]:
    current = facts.nic.channels_current
    keys = ("combined",) if facts.nic.supports_combined else ("rx", "tx")
    return [str(x) for k in keys if current.get(k) for x in (k, current[k])]


def channels_action(host: str, channels: Channels, facts: HostFacts) -> Action:
    iface = facts.nic.interface
    args, note = channel_args(channels, facts)
    expected = dict(zip(args[::2], (int(v) for v in args[1::2])))
    undo = all_of([q("ethtool", "-L", iface, *original_channel_args(facts))] + reapply_commands(facts))
    return Action(host, "tune", "change",
                  f"set {iface} channels {' '.join(args)} (was "
                  f"{' '.join(original_channel_args(facts)) or 'unknown'})",
                  command=q("ethtool", "-L", iface, *args), undo=undo,
                  readback=Readback(probes.ethtool_channels(iface, check=False).command, "channels", expected),
                  warnings=(note,) if note else ())


def reapply_commands(facts: HostFacts) -> list[str]:
    """After channels change back, put every original RPS mask and IRQ affinity back
    (virtio resets IRQ affinity on `ethtool -L`; re-created rx-N queues start with RPS off)."""
    cmds = [write_command(rps_path(facts.nic.interface, q), format_mask(cpus, facts.cpus_possible))
            for q, cpus in sorted(facts.nic.rps_cpus.items())]
    irqs = list(facts.nic.rx_irqs.values()) + list(facts.nic.tx_irqs.values())
    cmds += [write_command(f"/proc/irq/{irq}/smp_affinity_list", format_cpulist(facts.irq_affinity[irq]))
             for irq in irqs if irq in facts.irq_affinity and not facts.shared_kernel]
    return cmds


def all_of(commands: list[str]) -> str:
    """Run every command even if one fails; fail if any failed (a restore must try all)."""
    return "rc=0; " + " ".join(f"{{ {c}; }} || rc=1;" for c in commands) + " exit $rc"


def write_command(path: str, value: str) -> str:
    return f"echo {shlex.quote(value)} > {shlex.quote(path)}"


def rps_path(interface: str, queue: int) -> str:
    return f"/sys/class/net/{interface}/queues/rx-{queue}/rps_cpus"


def irq_affinity_actions(host: str, tuning: HostTuning, facts: HostFacts) -> list[Action]:
    actions = []
    for name, cpus in sorted(tuning.irq_affinity.items()):
        queue = queue_index(name)
        irq = facts.nic.rx_irqs.get(queue)
        if facts.shared_kernel or irq is None:
            why = ("this lab host shares the machine's kernel (netns): /proc/irq is host-wide "
                   "and veth has no IRQs") if facts.shared_kernel else \
                  f"{facts.nic.interface} has no IRQ for {name}"
            actions.append(Action(host, "tune", "skip", f"IRQ affinity of {name} -> CPUs "
                                  f"{format_cpulist(cpus)}: not applicable, {why}"))
            continue
        path = f"/proc/irq/{irq}/smp_affinity_list"
        original = facts.irq_affinity.get(irq)
        actions.append(Action(
            host, "tune", "change",
            f"pin IRQ {irq} ({facts.nic.device}-input.{queue}, {name}) to CPUs {format_cpulist(cpus)}"
            f" (was {format_cpulist(original) if original is not None else 'unknown'})",
            command=write_command(path, format_cpulist(cpus)),
            undo=write_command(path, format_cpulist(original)) if original else None,
            readback=Readback(probes.smp_affinity_list(irq, check=False).command, "cpulist", cpus)))
    return actions


def rps_queues(tuning: HostTuning, facts: HostFacts) -> list[tuple[int, frozenset[int]]]:
    """Expand 'all' to every RX queue there will be after the channels step."""
    count = queues_after_channels(tuning.channels, facts)
    result: dict[int, frozenset[int]] = {}
    if "all" in tuning.rps:
        result.update({q: tuning.rps["all"] for q in range(count)})
    result.update({queue_index(k): v for k, v in tuning.rps.items() if k != "all"})
    return sorted(result.items())


def queues_after_channels(channels: Channels | None, facts: HostFacts) -> int:
    if channels is not None and channels.rx_queues is not None:
        return channels.rx_queues
    return facts.nic.rx_queues


def rps_actions(host: str, tuning: HostTuning, facts: HostFacts) -> list[Action]:
    actions = []
    for queue, cpus in rps_queues(tuning, facts):
        path = rps_path(facts.nic.interface, queue)
        kept = cpus - facts.isolated
        mask = format_mask(cpus, facts.cpus_possible)
        original = facts.nic.rps_cpus.get(queue, frozenset())
        refused = bool(cpus) and not kept
        warnings = () if refused or kept == cpus else (
            f"rx-{queue}: CPUs {format_cpulist(cpus & facts.isolated)} are isolated; the kernel "
            f"keeps only {format_cpulist(kept)} of RPS mask {mask}",)
        actions.append(Action(
            host, "tune", "change",
            f"RPS of rx-{queue} -> CPUs {format_cpulist(cpus)} (mask {mask}, was "
            f"{format_cpulist(original) or 'off'})"
            + (" — expected to be refused by the kernel (isolated CPUs only)" if refused else ""),
            command=write_command(path, mask),
            undo=write_command(path, format_mask(original, facts.cpus_possible)),
            readback=None if refused else Readback(
                probes.rps_cpus(facts.nic.interface, queue, check=False).command, "mask", kept),
            expect_failure=refused, warnings=warnings))
    return actions


# --------------------------------------------------------------------------- load

def load_actions(inventory: Inventory, scenario: Scenario, facts: dict[str, HostFacts],
                 workdir: dict[str, str]) -> list[Action]:
    assert scenario.load is not None
    load = scenario.load
    server, client = load.server.host, load.client.host
    actions = [Action(h, "load", "upload", "copy labctl-loadgen",
                      local="labctl/agent/loadgen.py", remote=f"{workdir[h]}/{LOADGEN_REMOTE_NAME}")
               for h in (server, client)]
    actions.append(start_server_action(inventory, load, workdir[server]))
    actions.append(Action(server, "load", "wait_file", "wait until the server's sockets are bound",
                          remote=f"{workdir[server]}/server.ready", process="server", timeout=15))
    actions.append(settle_action(scenario))
    actions += snapshot_actions(scenario, facts, "before")
    if scenario.profile is not None:
        actions += start_profile_actions(scenario, facts, workdir[scenario.profile.host])
    actions.append(start_client_action(inventory, load, workdir[client]))
    actions.append(Action(client, "load", "wait_process", f"wait for the client ({load.client.duration:g} s)",
                          process="client", remote=f"{workdir[client]}/client.json",
                          timeout=load.client.duration + 30))
    actions += snapshot_actions(scenario, facts, "after")
    if scenario.profile is not None:
        actions += finish_profile_actions(scenario.profile, workdir[scenario.profile.host])
    actions.append(Action(server, "finish", "stop", "stop the server (SIGTERM), wait for its result",
                          process="server", remote=f"{workdir[server]}/server.json", timeout=15))
    for suffix in ("json", "log"):        # interleaved by host: fetched in parallel
        for host, role in ((server, "server"), (client, "client")):
            name = f"{role}.{suffix}"
            actions.append(Action(host, "finish", "fetch", f"fetch {name}",
                                  remote=f"{workdir[host]}/{name}", local=f"loadgen/{name}"))
    return actions


# --------------------------------------------------------------------------- profile

PERF_FILES = ("perf.script", "perf.evlist", "perf.log")


def profile_cpus(scenario: Scenario, facts: dict[str, HostFacts]) -> frozenset[int]:
    """The CPUs to profile. auto: where the NIC's RX IRQs will land, the RPS CPUs and the
    server's CPUs (on a shared kernel also the client's: veth is polled by the sender). Where
    the IRQs will land is unknown after a channel change without pinning (`ethtool -L` resets
    virtio's affinity): then every online CPU."""
    profile = scenario.profile
    assert profile is not None
    hf = facts[profile.host]
    if profile.cpus != "auto":
        return profile.cpus
    tuning = scenario.tuning.get(profile.host, HostTuning())
    cpus: set[int] = set()
    for queue in range(queues_after_channels(tuning.channels, hf)):
        pinned = tuning.irq_affinity.get(f"rx-{queue}")
        irq = hf.nic.rx_irqs.get(queue)
        if pinned is not None:
            cpus |= pinned
        elif tuning.channels is not None and hf.nic.has_irqs:
            return hf.cpus_online
        elif irq is not None:
            cpus |= hf.irq_affinity.get(irq, frozenset())
    rps = dict(hf.nic.rps_cpus) | dict(rps_queues(tuning, hf))
    cpus |= {c for mask in rps.values() for c in mask} - hf.isolated
    load = scenario.load
    if load and load.server.host == profile.host:
        cpus |= load.server.cpus or hf.cpus_online
    if load and hf.shared_kernel:
        cpus |= load.client.cpus or hf.cpus_online
    return frozenset(cpus & hf.cpus_online) or hf.cpus_online


def start_profile_actions(scenario: Scenario, facts: dict[str, HostFacts], workdir: str) -> list[Action]:
    profile = scenario.profile
    assert profile is not None
    cpus = format_cpulist(profile_cpus(scenario, facts))
    argv = ["perf", "record", "-g", "-F", profile.frequency, "-C", cpus, "--no-buildid",
            "--no-buildid-cache", "-o", f"{workdir}/perf.data"]
    return [
        Action(profile.host, "load", "start", f"start perf record -g on CPUs {cpus} at {profile.frequency} Hz",
               command=detached_command(argv, f"{workdir}/perf.log"), process="perf"),
        Action(profile.host, "load", "wait_file", "wait until perf records",
               remote=f"{workdir}/perf.data", process="perf", timeout=30),
    ]


def finish_profile_actions(profile: Profile, workdir: str) -> list[Action]:
    """Stop perf with SIGINT (it writes its file then), decode it on the host, fetch the text."""
    data = f"{workdir}/perf.data"
    decode = (f"perf script -i {shlex.quote(data)} > {shlex.quote(workdir + '/perf.script')} "
              f"2>> {shlex.quote(workdir + '/perf.log')} && perf evlist -v -i {shlex.quote(data)} "
              f"> {shlex.quote(workdir + '/perf.evlist')} 2>> {shlex.quote(workdir + '/perf.log')}")
    actions = [
        Action(profile.host, "finish", "stop", "stop perf (SIGINT: it finishes its file)",
               process="perf", remote=data, timeout=120, signal="INT"),
        Action(profile.host, "finish", "change", "perf script on the host (decode the samples)",
               command=decode, timeout=600),
    ]
    actions += [Action(profile.host, "finish", "fetch", f"fetch {name}", remote=f"{workdir}/{name}",
                       local=f"perf/{name}") for name in PERF_FILES]
    return actions


def settle_action(scenario: Scenario) -> Action:
    return Action("-", "measure", "sleep", f"let the tuning settle ({scenario.settle:g} s)",
                  timeout=scenario.settle)


def server_address(inventory: Inventory, host: str) -> str:
    return inventory.hosts[host].data_address.split("/")[0]


def start_server_action(inventory: Inventory, load: Load, workdir: str) -> Action:
    s = load.server
    argv = server_argv(inventory, s, workdir)
    return Action(s.host, "load", "start", f"start the {s.protocol} server ({s.workers} worker(s)"
                  + (f", CPUs {format_cpulist(s.cpus)})" if s.cpus else ")"),
                  command=detached_command(argv, f"{workdir}/server.log"), process="server")


def server_argv(inventory: Inventory, s: ServerLoad, workdir: str) -> list[object]:
    """The loadgen server's command line: results and its ready file in `workdir`."""
    argv: list[object] = [
        "python3", f"{workdir}/{LOADGEN_REMOTE_NAME}", "server", "--protocol", s.protocol,
        "--bind", server_address(inventory, s.host), "--port", s.port, "--workers", s.workers,
        "--result", f"{workdir}/server.json", "--ready-file", f"{workdir}/server.ready"]
    if s.cpus:
        argv += ["--cpus", format_cpulist(s.cpus)]
    return argv


def start_client_action(inventory: Inventory, load: Load, workdir: str) -> Action:
    c, s = load.client, load.server
    argv = client_argv(f"{workdir}/{LOADGEN_REMOTE_NAME}", s.protocol, server_address(inventory, s.host),
                       s.port, c, f"{workdir}/client.json")
    return Action(c.host, "load", "start",
                  f"start the client: {rate_text(c.rate)} for {c.duration:g} s, {c.flows} flow(s), "
                  f"{c.workers} worker(s), {c.payload} B", command=detached_command(argv, f"{workdir}/client.log"),
                  process="client")


def client_argv(loadgen: str, protocol: str, address: str, port: int, c: ClientLoad, result: str,
                rate: int | str | None = None, duration: float | None = None) -> list[object]:
    """The loadgen client's command line for a scenario's client (rate and duration may be
    overridden: the generator's calibration sends as fast as it can, in the same mode)."""
    rate = c.rate if rate is None else rate
    argv: list[object] = [
        "python3", loadgen, "client", "--protocol", protocol, "--host", address, "--port", port,
        *(["--max"] if rate == "max" else ["--rate", rate]),
        "--duration", f"{c.duration if duration is None else duration:g}", "--payload", c.payload,
        "--flows", c.flows, "--workers", c.workers, "--result", result]
    if c.cpus:
        argv += ["--cpus", format_cpulist(c.cpus)]
    if c.new_socket_per_message:
        argv.append("--new-socket-per-message")
    return argv


def rate_text(rate: int | str) -> str:
    """How a client's asked rate reads: "2000 msg/s", or "as fast as it can"."""
    return "as fast as it can" if rate == "max" else f"{rate} msg/s"


def detached_command(argv: list[object], log: str) -> str:
    """Start in a new session with all three streams redirected (else SSH hangs); print PID."""
    return f"setsid {q(*argv)} </dev/null >{shlex.quote(log)} 2>&1 & echo $!"


def stop_command(pid: int | str, timeout: float, signal: str = "TERM") -> str:
    """The signal (SIGTERM), wait up to timeout, then SIGKILL; exit 0 when it ended in time."""
    tries = max(1, int(timeout / 0.02))
    return (f"kill -{signal} {pid} 2>/dev/null; i=0; while {running_command(pid)}; do "
            f"i=$((i+1)); [ $i -ge {tries} ] && {{ kill -KILL {pid}; exit 1; }}; sleep 0.02; done")


def wait_file_command(path: str, timeout: float) -> str:
    tries = max(1, int(timeout / 0.02))
    return (f"i=0; until [ -e {shlex.quote(path)} ]; do i=$((i+1)); "
            f"[ $i -ge {tries} ] && exit 1; sleep 0.02; done")


def running_command(pid: int | str) -> str:
    """True while the process runs. A zombie counts as ended: a detached process is an
    orphan, and some init processes reap orphans only after a second or two."""
    return (f"{{ kill -0 {pid} 2>/dev/null && "
            f"! grep -q '^State:[[:space:]]*Z' /proc/{pid}/status 2>/dev/null; }}")


# --------------------------------------------------------------------------- snapshots

def snapshot_probe_commands(scenario: Scenario, facts: HostFacts) -> dict[str, str]:
    """Raw file name -> probe command for one host's snapshot (one batched round trip)."""
    chosen = snapshot_probes(scenario.snapshot.probes, SnapshotHost.of(facts))
    return {name: probe.command for name, probe in chosen.items()}


def snapshot_actions(scenario: Scenario, facts: dict[str, HostFacts], phase: str) -> list[Action]:
    actions = []
    for host in scenario.snapshot.hosts:
        commands = snapshot_probe_commands(scenario, facts[host])
        actions.append(Action(host, "measure", "snapshot",
                              f"snapshot {phase} ({len(commands)} probes in one round trip)",
                              command=build_script(commands), local=phase,
                              probes=tuple(commands.items())))
    return actions


# --------------------------------------------------------------------------- rendering

CONTINUATION = "       > "


def render_plan(plan: Plan) -> str:
    """The plan as `labctl run --dry-run` prints it: every action with its literal command.
    A line break inside a command (a quoted value) is shown after sh's continuation prompt
    `>`, descriptions stay on one line: no part of a value can pass for a command of its own."""
    lines = [f"plan for run {one_line(plan.run_id)} ({len(plan.actions)} actions)"]
    phase = None
    for number, action in enumerate(plan.actions, 1):
        if action.phase != phase:
            phase = action.phase
            lines.append(f"\n== {phase}")
        lines.append(f"{number:3d}. [{action.host}] {action.kind}: {one_line(action.description)}")
        lines += [f"       warning: {one_line(w)}" for w in action.warnings]
        for command in _display_commands(action):
            lines += shown_command("       $ ", command)
        if action.readback:
            lines += shown_command("       read back: $ ", f"{action.readback.command}  "
                                   f"(expect {_shown(action.readback.expected)})")
        if action.undo:
            lines += shown_command("       undo: $ ", action.undo)
    return "\n".join(lines) + "\n"


def shown_command(prefix: str, command: str) -> list[str]:
    """A command's printed lines: the first after ``prefix``, the rest after CONTINUATION;
    other unprintable characters (a carriage return would let a value overwrite the `$`, an
    escape sequence clear the screen) are shown escaped, as by one_line."""
    first, *rest = (_visible(line) for line in command.split("\n"))
    return [prefix + first] + [CONTINUATION + line for line in rest]


def one_line(text: str) -> str:
    """Text (a description, a warning) on one printed line: control characters escaped."""
    return _visible(text.replace("\n", "\\n"))


def _visible(text: str) -> str:
    return "".join(c if c == "\t" or c.isprintable() else repr(c)[1:-1] for c in text)


def _display_commands(action: Action) -> list[str]:
    if action.kind == "snapshot":
        return [f"{command}   # -> {action.host}/{name}.{action.local}"
                for name, command in action.probes]
    command = _display_command(action)
    return [command] if command else []


def _display_command(action: Action) -> str:
    if action.kind == "upload":
        return f"(sftp) {action.local} -> {action.remote}"
    if action.kind == "fetch":
        return f"(sftp) {action.remote} -> runs/{plan_placeholder()}/{action.host}/{action.local}"
    if action.kind == "wait_file":
        return wait_file_command(action.remote or "", action.timeout)
    if action.kind == "stop":
        return stop_command_template(action.process or "?", action.timeout, action.signal)
    if action.kind == "wait_process":
        return f"{running_command_template(action.process or '?')}  (polled until it fails)"
    return action.command


def plan_placeholder() -> str:
    return "<run-id>"


def stop_command_template(process: str, timeout: float, signal: str = "TERM") -> str:
    return stop_command(f"<pid of {process}>", timeout, signal)


def running_command_template(process: str) -> str:
    return running_command(f"<pid of {process}>")


def _shown(value: Any) -> str:
    if isinstance(value, frozenset):
        return format_cpulist(value) or "none"
    return str(value)
