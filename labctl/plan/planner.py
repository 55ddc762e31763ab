"""Planning (pure): (inventory, scenario, host facts, run id) -> ordered actions.

The plan is data (the types are in labctl.plan.actions). `labctl run --dry-run` prints it
(labctl.plan.dryrun); the executor walks it. Every change carries the literal command that
undoes it, computed from the facts read just before; every value that enters a command is
quoted here (with labctl.shell's helpers).
"""

from __future__ import annotations

import shlex
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
from labctl.plan.actions import (
    Action,
    Change,
    Fetch,
    Plan,
    Readback,
    Skip,
    Sleep,
    Snapshot,
    Start,
    Stop,
    Upload,
    WaitFile,
    WaitProcess,
)
from labctl.plan.guards import guarded_undo_command, irq_guard, queue_count_check, queues_after_channels
from labctl.plan.rss import rss_actions
from labctl.plan.series import (
    fetch_sampler_actions,
    planned_readbacks,
    series_interval,
    start_sampler_actions,
    stop_sampler_actions,
    upload_sampler_actions,
)
from labctl.shell import all_of, detached_command, q, write_command

LOADGEN_REMOTE_NAME = "labctl-loadgen.py"


def remote_workdir(run_id: str) -> str:
    return f"/tmp/labctl-{run_id}"


def build_plan(inventory: Inventory, scenario: Scenario, facts: dict[str, HostFacts],
               run_id: str) -> Plan:
    hosts = _involved_hosts(scenario)
    workdir = {h: remote_workdir(run_id) for h in hosts}
    actions: list[Action] = []
    for host in hosts:
        actions.append(Change(host, "prepare", "create the run's working directory",
                              command=q("mkdir", "-p", workdir[host]),
                              undo=q("rm", "-rf", workdir[host])))
    for host, tuning in scenario.tuning.items():
        actions += tuning_actions(host, tuning, facts[host])
    if scenario.load:
        actions += load_actions(inventory, scenario, facts, workdir, planned_readbacks(actions))
    else:
        actions.append(settle_action(scenario))
        actions += snapshot_actions(scenario, facts, "before")
        actions.append(Sleep("-", "measure", "measurement window without load", seconds=5.0))
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
    if tuning.rss is not None:
        actions += rss_actions(host, tuning, facts)
    actions += irq_affinity_actions(host, tuning, facts)
    actions += rps_actions(host, tuning, facts)
    return actions


def irqbalance_actions(host: str, tuning: HostTuning, facts: HostFacts) -> list[Action]:
    if tuning.irqbalance == "leave":
        return []
    if facts.shared_kernel:
        return [Skip(host, "tune", f"irqbalance {tuning.irqbalance}: not applicable, "
                     "this lab host shares the machine's kernel (netns) and irqbalance is "
                     "host-wide")]
    if facts.irqbalance == "absent":
        return [Skip(host, "tune", "irqbalance is not installed on this host")]
    want_active = tuning.irqbalance == "start"
    if (facts.irqbalance == "active") == want_active:
        return [Skip(host, "tune", f"irqbalance already {facts.irqbalance}")]
    start, stop = ((q("systemctl", "start", "irqbalance"), q("systemctl", "stop", "irqbalance"))
                   if facts.systemd else ("irqbalance", "kill $(pidof irqbalance)"))
    command, undo = (start, stop) if want_active else (stop, start)
    verb = "start" if want_active else "stop"
    return [Change(host, "tune", f"{verb} irqbalance (was {facts.irqbalance})",
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
    return Change(host, "tune",
                  f"set {iface} channels {' '.join(args)} (was "
                  f"{' '.join(original_channel_args(facts)) or 'unknown'})",
                  command=q("ethtool", "-L", iface, *args), undo=undo,
                  readback=_readback(probes.ethtool_channels(iface, check=False), "channels", expected,
                                     f"{iface} channels"),
                  warnings=(note,) if note else ())


def reapply_commands(facts: HostFacts) -> list[str]:
    """After channels change back, put every original RPS mask and IRQ affinity back
    (virtio resets IRQ affinity on `ethtool -L`; re-created rx-N queues start with RPS off)."""
    cmds = [write_command(rps_path(facts.nic.interface, q), format_mask(cpus, facts.cpus_possible))
            for q, cpus in sorted(facts.nic.rps_cpus.items())]
    irqs = list(facts.nic.rx_irqs.values()) + list(facts.nic.tx_irqs.values())
    cmds += [reapply_affinity_command(irq, facts.nic.vectors.get(irq, ""),
                                      format_cpulist(facts.irq_affinity[irq]))
             for irq in irqs if irq in facts.irq_affinity and not facts.shared_kernel]
    return cmds


def reapply_affinity_command(irq: str, vector: str, cpus: str) -> str:
    """Put a vector's original affinity back after `ethtool -L` restored the channels. Drivers
    such as igb free and re-request their vectors on `ethtool -L`: the vector may have another
    IRQ number now, so it is found by its name (procfs lists an IRQ's action names as
    /proc/irq/N/<name>/); without a name, by the number the facts read."""
    if not vector or "/" in vector:
        return write_command(f"/proc/irq/{irq}/smp_affinity_list", cpus)
    return (f"ok=0; for d in /proc/irq/*/{shlex.quote(vector)}; do [ -d \"$d\" ] || continue; "
            f"echo {shlex.quote(cpus)} > \"${{d%/*}}/smp_affinity_list\" || ok=1; done; [ $ok -eq 0 ]")


def rps_path(interface: str, queue: int) -> str:
    return f"/sys/class/net/{interface}/queues/rx-{queue}/rps_cpus"


def irq_affinity_actions(host: str, tuning: HostTuning, facts: HostFacts) -> list[Action]:
    actions: list[Action] = []
    for name, cpus in sorted(tuning.irq_affinity.items()):
        queue = queue_index(name)
        irq = facts.nic.rx_irqs.get(queue)
        if facts.shared_kernel or irq is None:
            why = ("this lab host shares the machine's kernel (netns): /proc/irq is host-wide "
                   "and veth has no IRQs") if facts.shared_kernel else \
                  f"{facts.nic.interface} has no IRQ for {name}"
            actions.append(Skip(host, "tune", f"IRQ affinity of {name} -> CPUs "
                                f"{format_cpulist(cpus)}: not applicable, {why}"))
            continue
        path = f"/proc/irq/{irq}/smp_affinity_list"
        original = facts.irq_affinity.get(irq)
        vector = facts.nic.vectors.get(irq, "")
        checks = irq_checks(facts, irq, vector, queues_after_channels(tuning.channels, facts))
        actions.append(Change(
            host, "tune",
            f"pin IRQ {irq} ({vector or f'{facts.nic.device}-input.{queue}'}, {name}) to CPUs "
            f"{format_cpulist(cpus)}"
            f" (was {format_cpulist(original) if original is not None else 'unknown'})",
            command=f"{irq_guard(checks)} && {write_command(path, format_cpulist(cpus))}",
            undo=guarded_undo(checks, irq, write_command(path, format_cpulist(original))) if original else None,
            readback=_readback(probes.smp_affinity_list(irq, check=False), "cpulist", cpus,
                               f"IRQ {irq} ({vector or name}) affinity", path, irq)))
    return actions


def _readback(probe: probes.Probe[Any], kind: Literal["mask", "cpulist", "channels"], expected: Any,
              label: str, path: str = "", key: str = "") -> Readback:
    """A step's read-back: the probe's command now, and the sampler's part during the load
    window (the file at `path`, or the command), named `readback:<kind>[@<key>]` (a host has
    one NIC: no interface name in it)."""
    return Readback(probe.command, kind, expected, name=f"readback:{kind}" + (f"@{key}" if key else ""),
                    label=label, path=path)


def irq_checks(facts: HostFacts, irq: str, vector: str, queues: int) -> list[tuple[str, str]]:
    """(sh condition, message if false): the NIC has the RX queue count the plan was made for
    (facts plus its channels step), and IRQ `irq` still is `vector` (procfs lists an IRQ's
    action names as /proc/irq/N/<name>/; skipped where the name is unknown). Drivers
    re-request their vectors on `ethtool -L`: a stale IRQ number may serve another queue or
    device. Shell builtins only; no host name enters a command (the executor names it)."""
    iface = facts.nic.interface
    checks = [queue_count_check(facts, queues, f"IRQ {irq} not pinned")]
    if vector and "/" not in vector:
        checks.append((f"test -d {shlex.quote(f'/proc/irq/{irq}/{vector}')}",
                       f"IRQ {irq} is no longer {vector} of {iface} (its vectors changed since "
                       "the facts were read): not pinned"))
    return checks


def guarded_undo(checks: list[tuple[str, str]], irq: str, write: str) -> str:
    """Put the IRQ's affinity back only while the checks still hold: when the NIC's queues or
    vectors changed, the number may be another queue's or device's now, and this run's pin
    step refused to write (its undo is recorded before it runs), so it is left as it is."""
    note = (f"IRQ {irq} left as it is: the NIC's queues or vectors are not those the plan was "
            "made for")
    return guarded_undo_command(checks, write, note)


def rps_queues(tuning: HostTuning, facts: HostFacts) -> list[tuple[int, frozenset[int]]]:
    """Expand 'all' to every RX queue there will be after the channels step."""
    count = queues_after_channels(tuning.channels, facts)
    result: dict[int, frozenset[int]] = {}
    if "all" in tuning.rps:
        result.update({q: tuning.rps["all"] for q in range(count)})
    result.update({queue_index(k): v for k, v in tuning.rps.items() if k != "all"})
    return sorted(result.items())


def rps_actions(host: str, tuning: HostTuning, facts: HostFacts) -> list[Action]:
    actions: list[Action] = []
    for queue, cpus in rps_queues(tuning, facts):
        path = rps_path(facts.nic.interface, queue)
        kept = cpus - facts.isolated
        mask = format_mask(cpus, facts.cpus_possible)
        original = facts.nic.rps_cpus.get(queue, frozenset())
        refused = bool(cpus) and not kept
        warnings = () if refused or kept == cpus else (
            f"rx-{queue}: CPUs {format_cpulist(cpus & facts.isolated)} are isolated; the kernel "
            f"keeps only {format_cpulist(kept)} of RPS mask {mask}",)
        actions.append(Change(
            host, "tune",
            f"RPS of rx-{queue} -> CPUs {format_cpulist(cpus)} (mask {mask}, was "
            f"{format_cpulist(original) or 'off'})"
            + (" — expected to be refused by the kernel (isolated CPUs only)" if refused else ""),
            command=write_command(path, mask),
            undo=write_command(path, format_mask(original, facts.cpus_possible)),
            readback=None if refused else _readback(
                probes.rps_cpus(facts.nic.interface, queue, check=False), "mask", kept,
                f"{facts.nic.interface} rx-{queue} RPS mask", path, f"rx-{queue}"),
            expect_failure=refused, warnings=warnings))
    return actions


# --------------------------------------------------------------------------- load

def load_actions(inventory: Inventory, scenario: Scenario, facts: dict[str, HostFacts],
                 workdir: dict[str, str], readbacks: dict[str, list[Readback]] | None = None
                 ) -> list[Action]:
    assert scenario.load is not None
    load = scenario.load
    server, client = load.server.host, load.client.host
    actions: list[Action] = [Upload(h, "load", "copy labctl-loadgen", local="labctl/agent/loadgen.py",
                                    remote=f"{workdir[h]}/{LOADGEN_REMOTE_NAME}")
                             for h in (server, client)]
    actions += upload_sampler_actions(scenario, workdir)
    interval = series_interval(scenario)       # the workers count per interval of the series
    actions.append(start_server_action(inventory, load, workdir[server], interval))
    actions.append(WaitFile(server, "load", "wait until the server's sockets are bound",
                            path=f"{workdir[server]}/server.ready", process="server", timeout=15))
    actions.append(settle_action(scenario))
    actions += snapshot_actions(scenario, facts, "before")
    if scenario.profile is not None:
        actions += start_profile_actions(scenario, facts, workdir[scenario.profile.host])
    actions += start_sampler_actions(scenario, facts, workdir, readbacks)
    actions.append(start_client_action(inventory, load, workdir[client], interval))
    actions.append(WaitProcess(client, "load", f"wait for the client ({load.client.duration:g} s)",
                               process="client", result_file=f"{workdir[client]}/client.json",
                               timeout=load.client.duration + 30))
    actions += stop_sampler_actions(scenario)
    actions += snapshot_actions(scenario, facts, "after")
    if scenario.profile is not None:
        actions += finish_profile_actions(scenario.profile, workdir[scenario.profile.host])
    actions.append(Stop(server, "finish", "stop the server (SIGTERM), wait for its result",
                        process="server", timeout=15))
    for suffix in ("json", "log"):        # interleaved by host: fetched in parallel
        for host, role in ((server, "server"), (client, "client")):
            name = f"{role}.{suffix}"
            actions.append(Fetch(host, "finish", f"fetch {name}",
                                 remote=f"{workdir[host]}/{name}", local=f"loadgen/{name}"))
    actions += fetch_sampler_actions(scenario, workdir)
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
        Start(profile.host, "load", f"start perf record -g on CPUs {cpus} at {profile.frequency} Hz",
              command=detached_command(argv, f"{workdir}/perf.log"), process="perf"),
        WaitFile(profile.host, "load", "wait until perf records",
                 path=f"{workdir}/perf.data", process="perf", timeout=30),
    ]


def finish_profile_actions(profile: Profile, workdir: str) -> list[Action]:
    """Stop perf with SIGINT (it writes its file then), decode it on the host, fetch the text."""
    data = f"{workdir}/perf.data"
    decode = (f"perf script -i {shlex.quote(data)} > {shlex.quote(workdir + '/perf.script')} "
              f"2>> {shlex.quote(workdir + '/perf.log')} && perf evlist -v -i {shlex.quote(data)} "
              f"> {shlex.quote(workdir + '/perf.evlist')} 2>> {shlex.quote(workdir + '/perf.log')}")
    actions: list[Action] = [
        Stop(profile.host, "finish", "stop perf (SIGINT: it finishes its file)",
             process="perf", timeout=120, signal="INT"),
        Change(profile.host, "finish", "perf script on the host (decode the samples)",
               command=decode, timeout=600),
    ]
    actions += [Fetch(profile.host, "finish", f"fetch {name}", remote=f"{workdir}/{name}",
                      local=f"perf/{name}") for name in PERF_FILES]
    return actions


def settle_action(scenario: Scenario) -> Action:
    return Sleep("-", "measure", f"let the tuning settle ({scenario.settle:g} s)",
                 seconds=scenario.settle)


def server_address(inventory: Inventory, host: str) -> str:
    return inventory.hosts[host].data_address.split("/")[0]


def start_server_action(inventory: Inventory, load: Load, workdir: str,
                        interval: float | None = None) -> Action:
    s = load.server
    argv = server_argv(inventory, s, workdir, interval)
    return Start(s.host, "load", f"start the {s.protocol} server ({s.workers} worker(s)"
                 + (f", CPUs {format_cpulist(s.cpus)})" if s.cpus else ")"),
                 command=detached_command(argv, f"{workdir}/server.log"), process="server")


def server_argv(inventory: Inventory, s: ServerLoad, workdir: str,
                interval: float | None = None) -> list[object]:
    """The loadgen server's command line: results and its ready file in `workdir`; its workers
    count per `interval` seconds (None: the loadgen's default, 1 s)."""
    argv: list[object] = [
        "python3", f"{workdir}/{LOADGEN_REMOTE_NAME}", "server", "--protocol", s.protocol,
        "--bind", server_address(inventory, s.host), "--port", s.port, "--workers", s.workers,
        "--result", f"{workdir}/server.json", "--ready-file", f"{workdir}/server.ready"]
    if s.cpus:
        argv += ["--cpus", format_cpulist(s.cpus)]
    if interval is not None:
        argv += ["--interval", f"{interval:g}"]
    return argv


def start_client_action(inventory: Inventory, load: Load, workdir: str,
                        interval: float | None = None) -> Action:
    c, s = load.client, load.server
    argv = client_argv(f"{workdir}/{LOADGEN_REMOTE_NAME}", s.protocol, server_address(inventory, s.host),
                       s.port, c, f"{workdir}/client.json", interval=interval)
    flows = "a new socket (flow) per message" if c.new_socket_per_message else f"{c.flows} flow(s)"
    return Start(c.host, "load",
                 f"start the client: {rate_text(c.rate)} for {c.duration:g} s, {flows}, "
                 f"{c.workers} worker(s), {c.payload} B", command=detached_command(argv, f"{workdir}/client.log"),
                 process="client")


def client_argv(loadgen: str, protocol: str, address: str, port: int, c: ClientLoad, result: str,
                rate: int | str | None = None, duration: float | None = None,
                interval: float | None = None) -> list[object]:
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
    if interval is not None:
        argv += ["--interval", f"{interval:g}"]
    return argv


def rate_text(rate: int | str) -> str:
    """How a client's asked rate reads: "2000 msg/s", or "as fast as it can"."""
    return "as fast as it can" if rate == "max" else f"{rate} msg/s"


# --------------------------------------------------------------------------- snapshots

def snapshot_probe_commands(scenario: Scenario, facts: HostFacts) -> dict[str, str]:
    """Raw file name -> probe command for one host's snapshot (one batched round trip)."""
    chosen = snapshot_probes(scenario.snapshot.probes, SnapshotHost.of(facts))
    return {name: probe.command for name, probe in chosen.items()}


def snapshot_actions(scenario: Scenario, facts: dict[str, HostFacts], phase: str) -> list[Action]:
    actions: list[Action] = []
    for host in scenario.snapshot.hosts:
        commands = snapshot_probe_commands(scenario, facts[host])
        actions.append(Snapshot(host, "measure",
                                f"snapshot {phase} ({len(commands)} probes in one round trip)",
                                command=build_script(commands), local=phase,
                                probes=tuple(commands.items())))
    return actions
