"""Series planning (pure): the steps that take a per-second series on each snapshot host.

During the load window, each host in the scenario's `snapshot:` runs labctl's sampler
(labctl/agent/sampler.py): uploaded with the load generator, started detached just before the
client, stopped by PID when the client has ended (it takes one last sample then), its file
fetched to `<host>/series/samples.raw`. The sampler reads the same probes as the snapshots,
from the same files; a deadline stops it by itself if labctl dies.

The drift watchdog: each sample also reads back every value the plan's tuning set on the
host (its steps' read-backs: RPS masks, IRQ affinities, channels), as parts named
`readback:<probe>`; labctl.analysis.drift compares them with the planned values afterwards.
"""

from __future__ import annotations

from labctl.host.facts import HostFacts
from labctl.host.samples import sampler_sources
from labctl.host.snapshots import SnapshotHost
from labctl.input.model import Scenario
from labctl.plan.actions import Action, Change, Fetch, Readback, Start, Stop, Upload, WaitFile
from labctl.shell import detached_command

SAMPLER_REMOTE_NAME = "labctl-sampler.py"
SAMPLES_LOCAL = "series/samples.raw"        # in the run directory, under the host
SAMPLER_LOG_LOCAL = "series/sampler.log"
DEADLINE_MARGIN = 120.0     # seconds past the load window before the sampler stops by itself


def series_interval(scenario: Scenario) -> float | None:
    """Seconds between samples, or None: no load window, `interval: null`, or the default
    interval (1 s) on a window that is not longer (validation refuses a given one)."""
    interval = scenario.snapshot.interval
    if scenario.load is None or interval is None or interval >= scenario.load.client.duration:
        return None
    return interval


def sampler_process(host: str) -> str:
    return f"sampler-{host}"


def sampler_paths(workdir: str, host: str) -> tuple[str, str]:
    """The sample file and the log of `host`'s sampler (netns hosts share one /tmp)."""
    return f"{workdir}/series-{host}.raw", f"{workdir}/{sampler_process(host)}.log"


def upload_sampler_actions(scenario: Scenario, workdir: dict[str, str]) -> list[Action]:
    if series_interval(scenario) is None:
        return []
    return [Upload(host, "load", "copy labctl-sampler", local="labctl/agent/sampler.py",
                   remote=f"{workdir[host]}/{SAMPLER_REMOTE_NAME}")
            for host in scenario.snapshot.hosts]


def planned_readbacks(actions: list[Action]) -> dict[str, list[Readback]]:
    """Host -> the read-backs of the changes planned so far (the tuning): what the drift
    watchdog reads each sample (a write expected to be refused has none)."""
    found: dict[str, list[Readback]] = {}
    for action in actions:
        if isinstance(action, Change) and action.readback is not None and action.readback.name:
            found.setdefault(action.host, []).append(action.readback)
    return found


def readback_sources(readbacks: list[Readback]) -> list[tuple[str, str, str]]:
    """(kind "file" | "command", part name, path or command) of each read-back, once."""
    sources = {rb.name: ("file", rb.name, rb.path) if rb.path else ("command", rb.name, rb.command)
               for rb in readbacks}
    return list(sources.values())


def sampler_argv(scenario: Scenario, facts: HostFacts, workdir: str, host: str,
                 readbacks: list[Readback] | None = None) -> list[object]:
    interval, load = series_interval(scenario), scenario.load
    assert interval is not None and load is not None
    output, _ = sampler_paths(workdir, host)
    argv: list[object] = ["python3", f"{workdir}/{SAMPLER_REMOTE_NAME}", "--output", output,
                          "--interval", f"{interval:g}",
                          "--deadline", f"{load.client.duration + DEADLINE_MARGIN:g}"]
    sources = sampler_sources(scenario.snapshot.probes, SnapshotHost.of(facts))
    for kind, name, target in sources + readback_sources(readbacks or []):
        argv += [f"--{kind}", f"{name}={target}"]
    rows = nic_interrupt_rows(facts)
    if rows and any(name == "interrupts" for _, name, _ in sources):
        argv += ["--keep", f"interrupts={','.join(rows)}"]
    return argv


def nic_interrupt_rows(facts: HostFacts) -> list[str]:
    """What the sampler keeps of /proc/interrupts (the series and the live view use only the
    NIC's rows): the NIC's IRQ numbers, and its interface and device names, which every
    driver's vector names hold one of — also vectors a channel change requested anew. None
    for a NIC without IRQs (veth: the file is kept whole)."""
    nic = facts.nic
    irqs = sorted(set(nic.rx_irqs.values()) | set(nic.tx_irqs.values()) | set(nic.vectors),
                  key=lambda irq: (len(irq), irq))
    if not irqs and not nic.device:
        return []
    return irqs + [name for name in (nic.interface, nic.device) if name]


def start_sampler_actions(scenario: Scenario, facts: dict[str, HostFacts], workdir: dict[str, str],
                          readbacks: dict[str, list[Readback]] | None = None) -> list[Action]:
    interval = series_interval(scenario)
    if interval is None:
        return []
    actions: list[Action] = []
    for host in scenario.snapshot.hosts:
        output, log = sampler_paths(workdir[host], host)
        argv = sampler_argv(scenario, facts[host], workdir[host], host, (readbacks or {}).get(host))
        actions.append(Start(host, "load", f"start the sampler (every {interval:g} s)",
                             command=detached_command(argv, log), process=sampler_process(host)))
        actions.append(WaitFile(host, "load", "wait for the sampler's first sample", path=output,
                                process=sampler_process(host), timeout=15))
    return actions


def stop_sampler_actions(scenario: Scenario) -> list[Action]:
    if series_interval(scenario) is None:
        return []
    return [Stop(host, "load", "stop the sampler (SIGTERM: one last sample)",
                 process=sampler_process(host), timeout=15, ended_ok=True)
            for host in scenario.snapshot.hosts]


def fetch_sampler_actions(scenario: Scenario, workdir: dict[str, str]) -> list[Action]:
    if series_interval(scenario) is None:
        return []
    actions: list[Action] = []
    for host in scenario.snapshot.hosts:
        output, log = sampler_paths(workdir[host], host)
        actions.append(Fetch(host, "finish", "fetch the series samples", remote=output,
                             local=SAMPLES_LOCAL))
        actions.append(Fetch(host, "finish", "fetch the sampler's log", remote=log,
                             local=SAMPLER_LOG_LOCAL))
    return actions
