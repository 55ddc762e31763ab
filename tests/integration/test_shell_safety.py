"""Shell safety: a value that reaches a remote command is data, never code.

Part (a). Every field of the inventory, the scenario, the hosts' facts and the preparation
record that labctl puts into a command string gets every payload of an injection corpus
(`;`, `$()`, backticks, newlines, `|`, `&&`, quotes, `*`, spaces, a leading `-`, ...). Model
validation is bypassed (``model_copy(update=...)``, ``dataclasses.replace``) so that the
quoting itself is what is tested. The pure planning code (build_plan, facts_script, the host
preparation's steps, the probe factories) then builds its commands, and every one of them is
executed for real by dash inside tests/helpers/shell_sandbox.py (stubs for every program, uid nobody,
private tmpfs over /sys, /proc/irq, /proc/sys and /tmp, new PID and network namespaces). Each
payload would create a file called CANARY if any part of it ran as code. Asserted for each
command: no CANARY, no program outside the ones labctl uses, no "not found"; every argv word
and every written path that holds any of the payload holds all of it (one literal argument:
not split, not globbed); the payload did reach a program or a file (the test is not vacuous);
and every executed command is printed verbatim by ``labctl run --dry-run``'s rendering.
A field whose planner refuses a value (a typed field given text) builds no plan: nothing is
printed and nothing runs; such refusals are allowed only where listed.

Part (b), ``labctl validate`` refusing every payload where the model has a pattern, is a unit
test: tests/unit/test_validation_payloads.py. The corpus: tests/helpers/injection.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labctl.errors import LabctlError
from labctl.execution.preparer import REBOOT_COMMAND
from labctl.host import probes
from labctl.host.facts import HostFacts, facts_script, parse_facts
from labctl.input.model import HostPrepare, Inventory, Scenario, TunedPrep
from labctl.plan import hostprep
from labctl.plan.actions import (
    Change,
    Plan,
    Snapshot,
    Start,
    Stop,
    WaitFile,
    WaitProcess,
)
from labctl.plan.dryrun import (
    render_plan,
    running_command_template,
    shown_command,
    stop_command_template,
)
from labctl.plan.hostprep import PrepFacts
from labctl.plan.planner import build_plan, tuning_actions
from labctl.plan.series import sampler_paths
from labctl.runfiles.rundir import new_run_id
from labctl.shell import running_command, stop_command, wait_file_command
from tests.helpers import fixture, shell_sandbox
from tests.helpers.injection import PAYLOADS
from tests.helpers.plans import two_host_inventory
from tests.helpers.shell_sandbox import CANARY, Case, Execution

# --------------------------------------------------------------------------- the programs

# every program labctl's remote commands call (the rest are dash builtins)
PROGRAMS = frozenset({"cat", "ethtool", "grep", "hostname", "irqbalance", "mkdir", "perf", "pidof",
                      "python3", "readlink", "rm", "setsid", "sleep", "sysctl", "systemctl",
                      "tail", "tuned-adm", "uname"})
STUBS = sorted(PROGRAMS | {"touch"})     # touch: a stub too, so that running it is recorded
FAKE_PID = 99999                         # nothing has it in the sandbox's PID namespace
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
RUN_ID = new_run_id("safety", NOW)
UNTOUCHED = "as laid out\n"                # what no command writes: any write shows
SHOWN = "       $ "                        # how --dry-run prefixes a command
PROMPTS = (SHOWN, "       undo: $ ", "       read back: $ ")


def glob_bait(payload: str) -> str:
    """A name an unquoted glob in ``payload`` would also match (so a glob shows up as a
    different word), or the payload itself when it has no glob character."""
    return payload.replace("*", "x").replace("?", "x")


# --------------------------------------------------------------------------- what a field builds

@dataclasses.dataclass(frozen=True)
class Built:
    """The commands built from one value, and where --dry-run shows them."""

    commands: list[str]                       # executed in the sandbox, in order
    shown: list[list[str]]                    # per command: lines the printed plan must hold
    printed: str | None                       # the printed plan; None: not printed (read-only)
    facts: list[HostFacts] = dataclasses.field(default_factory=list)
    workdirs: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    build: Callable[[str], Built]
    reaches: bool = True                      # the value ends up in a command
    may_refuse: tuple[type[BaseException], ...] = ()


@functools.cache
def guest(host: str, interface: str = "eth1") -> HostFacts:
    """The Debian 12 guest of the captures (virtio, 4 queues, IRQs), irqbalance running."""
    facts = parse_facts(host, fixture("facts/debian12-guest-eth1.txt"), interface, False)
    return dataclasses.replace(facts, irqbalance="active")


def inventory(interface: str = "eth1", dut: str = "dut") -> Inventory:
    """The lab with both test interfaces named ``interface`` and the DUT named ``dut``."""
    model = two_host_inventory("safety", "libvirt")
    hosts = {dut if name == "dut" else name: spec.model_copy(update={"interface": interface})
             for name, spec in model.hosts.items()}
    return model.model_copy(update={"hosts": hosts})


def scenario(probes_: list[str] | None = None, dut: str = "dut") -> Scenario:
    model = Scenario.model_validate({
        "name": "safety",
        "tuning": {"dut": {"irqbalance": "stop", "channels": {"combined": 2},
                           "irq_affinity": {"rx-0": 2, "rx-1": 3}, "rps": {"all": 1}}},
        "load": {"server": {"host": "dut", "cpus": "6-7"},
                 "client": {"host": "loadgen", "rate": 2000, "duration": 5, "cpus": 1,
                            "new_socket_per_message": True}},
        "snapshot": {"hosts": ["dut", "loadgen"],
                     "probes": probes_ or ["interrupts", "softirqs", "softnet_stat", "stat"]},
        "profile": {"host": "dut", "cpus": "auto", "frequency": 99},
    })
    if dut == "dut":
        return model
    return rename_dut(model, dut)


def rename_dut(model: Scenario, name: str) -> Scenario:
    assert model.load is not None and model.profile is not None
    load = model.load.model_copy(update={"server": model.load.server.model_copy(update={"host": name})})
    return model.model_copy(update={
        "tuning": {name: model.tuning["dut"]}, "load": load,
        "snapshot": model.snapshot.model_copy(update={"hosts": [name, "loadgen"]}),
        "profile": model.profile.model_copy(update={"host": name})})


def with_value(model: Any, path: tuple[str, ...], value: Any) -> Any:
    """``model`` with the field at ``path`` set to ``value``, validation bypassed."""
    head, *rest = path
    if isinstance(model, dict):
        inner = with_value(model[head], tuple(rest), value) if rest else value
        return {**model, head: inner}
    inner = with_value(getattr(model, head), tuple(rest), value) if rest else value
    return model.model_copy(update={head: inner})


def plan_commands(plan: Plan) -> tuple[list[str], list[list[str]]]:
    """Every command the plan's execution runs through a shell, and the lines of the printed
    plan that show each (processes' PIDs are only known at run time: shown as templates)."""
    commands: list[str] = []
    shown: list[list[str]] = []

    def add(command: str, prefix: str, display: str | None = None) -> None:
        commands.append(command)
        shown.append(shown_command(prefix, command if display is None else display))

    for action in plan.actions:
        match action:
            case Snapshot():
                commands.append(action.command)
                shown.append([line for name, c in action.probes for line in shown_command(
                    SHOWN, f"{c}   # -> {action.host}/{name}.{action.local}")])
            case Change():
                add(action.command, SHOWN)
                if action.undo:
                    add(action.undo, "       undo: $ ")
                if action.readback:
                    add(action.readback.command, "       read back: $ ")
            case Start():
                add(action.command, SHOWN)
            case WaitFile():
                add(wait_file_command(action.path, action.timeout), SHOWN)
            case Stop():
                add(stop_command(FAKE_PID, action.timeout, action.signal), SHOWN,
                    stop_command_template(action.process, action.timeout, action.signal))
            case WaitProcess():
                add(running_command(FAKE_PID), SHOWN, running_command_template(action.process))
    return commands, shown


def built_plan(inv: Inventory, scen: Scenario, facts: dict[str, HostFacts],
               run_id: str = RUN_ID) -> Built:
    plan = build_plan(inv, scen, facts, run_id)
    commands, shown = plan_commands(plan)
    return Built(commands, shown, render_plan(plan), list(facts.values()), list(plan.workdir.values()))


def plain_facts() -> dict[str, HostFacts]:
    return {"dut": guest("dut"), "loadgen": guest("loadgen")}


# --------------------------------------------------------------------------- plan fields

def interface_field(payload: str, with_stats: bool = False) -> Built:
    facts = {"dut": guest("dut", payload), "loadgen": guest("loadgen", payload)}
    probes_ = ["interrupts", "softirqs", "softnet_stat", "stat"] + (["ethtool_stats"] if with_stats else [])
    return built_plan(inventory(payload), scenario(probes_), facts)


def data_address_field(payload: str) -> Built:
    inv = inventory()
    hosts = dict(inv.hosts)
    hosts["dut"] = hosts["dut"].model_copy(update={"data_address": payload})
    return built_plan(inv.model_copy(update={"hosts": hosts}), scenario(), plain_facts())


def run_id_field(payload: str) -> Built:
    return built_plan(inventory(), scenario(), plain_facts(), new_run_id(payload, NOW))


def scenario_field(path: tuple[str, ...]) -> Callable[[str], Built]:
    def build(payload: str) -> Built:
        return built_plan(inventory(), with_value(scenario(), path, payload), plain_facts())
    return build


def scenario_cpus_field(path: tuple[str, ...]) -> Callable[[str], Built]:
    def build(payload: str) -> Built:
        value = frozenset({payload})
        return built_plan(inventory(), with_value(scenario(), path, value), plain_facts())
    return build


def tuning_key_field(kind: str) -> Callable[[str], Built]:
    def build(payload: str) -> Built:
        scen = scenario()
        tuning = scen.tuning["dut"]
        changed = tuning.model_copy(update={kind: {**getattr(tuning, kind), payload: frozenset({1})}})
        return built_plan(inventory(), scen.model_copy(update={"tuning": {"dut": changed}}), plain_facts())
    return build


def probe_name_field(payload: str) -> Built:
    scen = scenario()
    snapshot = scen.snapshot.model_copy(update={"probes": [*scen.snapshot.probes, payload]})
    return built_plan(inventory(), scen.model_copy(update={"snapshot": snapshot}), plain_facts())


def host_name_field(payload: str) -> Built:
    facts = {payload: dataclasses.replace(guest("dut"), host=payload), "loadgen": guest("loadgen")}
    return built_plan(inventory(dut=payload), scenario(dut=payload), facts)


def dut_facts_field(change: Callable[[HostFacts, str], HostFacts]) -> Callable[[str], Built]:
    """Facts the DUT reports (a host controls these): changed, then planned."""
    def build(payload: str) -> Built:
        facts = plain_facts()
        facts["dut"] = change(facts["dut"], payload)
        return built_plan(inventory(), scenario(), facts)
    return build


def tuning_only_field(change: Callable[[HostFacts, str], HostFacts]) -> Callable[[str], Built]:
    """The DUT's tuning actions alone (what build_plan refuses as a whole: it sorts IRQs as
    numbers), so that the quoting of the IRQ paths is exercised too."""
    def build(payload: str) -> Built:
        facts = change(guest("dut"), payload)
        actions = tuning_actions("dut", scenario().tuning["dut"], facts)
        plan = Plan(RUN_ID, {}, tuple(actions))
        commands, shown = plan_commands(plan)
        return Built(commands, shown, render_plan(plan), [facts])
    return build


def _nic(facts: HostFacts, **changes: Any) -> HostFacts:
    return dataclasses.replace(facts, nic=dataclasses.replace(facts.nic, **changes))


def rx_irq(facts: HostFacts, payload: str) -> HostFacts:
    affinity = dict(facts.irq_affinity) | {payload: frozenset({0, 1})}
    return dataclasses.replace(_nic(facts, rx_irqs={**facts.nic.rx_irqs, 0: payload}),
                               irq_affinity=affinity)


def tx_irq(facts: HostFacts, payload: str) -> HostFacts:
    affinity = dict(facts.irq_affinity) | {payload: frozenset({1})}
    return dataclasses.replace(_nic(facts, tx_irqs={**facts.nic.tx_irqs, 0: payload}),
                               irq_affinity=affinity)


def channel_count(facts: HostFacts, payload: str) -> HostFacts:
    return _nic(facts, channels_current={**facts.nic.channels_current, "combined": payload})


def rps_queue(facts: HostFacts, payload: str) -> HostFacts:
    return _nic(facts, rps_cpus={**facts.nic.rps_cpus, payload: frozenset({1})})


def device(facts: HostFacts, payload: str) -> HostFacts:
    return _nic(facts, device=payload, driver=payload, bus_info=payload)


def free_text(facts: HostFacts, payload: str) -> HostFacts:
    return dataclasses.replace(facts, hostname=payload, kernel=payload, cmdline=payload,
                               tuned_profile=payload, python3=payload, perf=payload,
                               irqbalance=payload, sysctls={payload: payload})


# --------------------------------------------------------------------------- facts, preparation, probes

def facts_script_field(payload: str) -> Built:
    return Built([facts_script(payload)], [[]], None, [guest("dut", payload)])


def prep_spec(profile: str = "realtime", variables: dict[str, str] | None = None) -> HostPrepare:
    tuned = TunedPrep.model_validate({"profile": "realtime", "isolated_cores": "4-7"})
    tuned = tuned.model_copy(update={"profile": profile, "variables": variables or {}})
    return HostPrepare.model_validate({"irqbalance": "disable"}).model_copy(update={"tuned": tuned})


def booted() -> PrepFacts:
    return hostprep.parse_prep_facts("dut", fixture("prep/debian12-as-booted.txt"))


def preparation(spec: HostPrepare, facts: PrepFacts, original: dict[str, Any] | None = None,
                interface: str = "eth1") -> Built:
    """Facts script, preparation steps (printed by --dry-run) and the steps that undo them."""
    steps = hostprep.prep_steps(spec, facts)
    reboot = hostprep.reboot_reason(spec, facts)
    printed = "\n".join(hostprep.render_steps("dut", steps, reboot)) + "\n"
    commands = [s.command for s in steps if s.command]
    shown = [shown_command(SHOWN, c) for c in commands]
    original = original or hostprep.original_state(spec, dataclasses.replace(facts, variables_text=None))
    prepared = dataclasses.replace(facts, tuned_profile=spec.tuned.profile if spec.tuned else "",
                                   variables_text="isolated_cores=4-7\n", irqbalance_enabled="disabled",
                                   irqbalance_active="inactive")
    undo = [s.command for s in hostprep.unprepare_steps(original, prepared) if s.command]
    extra = [hostprep.prep_facts_script(spec, interface), REBOOT_COMMAND,
             "cat /proc/sys/kernel/random/boot_id", *undo]
    return Built(commands + extra, shown + [[]] * len(extra), printed)


def profile_field(payload: str) -> Built:
    return preparation(prep_spec(payload), booted())


def prep_interface_field(payload: str) -> Built:
    return preparation(prep_spec(), booted(), interface=payload)


def host_profile_field(payload: str) -> Built:
    """The profile the host had (read from `tuned-adm active`), put back by unprepare."""
    facts = dataclasses.replace(booted(), tuned_profile=payload)
    return preparation(prep_spec(), facts)


def record_path_field(payload: str) -> Built:
    """The variables file named in the record of the original state (a local JSON file)."""
    original = hostprep.original_state(prep_spec(), dataclasses.replace(booted(), variables_text=None))
    original["variables_path"] = f"/etc/tuned/{payload}"
    return preparation(prep_spec(), booted(), original)


def variables_field(payload: str) -> Built:
    return preparation(prep_spec(variables={"labctl_test": payload}), booted())


def probe_factories_field(payload: str) -> Built:
    commands = [factory(payload).command for factory in (
        probes.ethtool_channels, probes.ethtool_stats, probes.ethtool_rss, probes.ethtool_info)]
    commands.append(probes.rps_cpus(payload, 0).command)
    return Built(commands, [[]] * len(commands), None, [guest("dut", payload)])


def probe_numbers_field(payload: str) -> Built:
    commands = [factory(payload).command for factory in (
        probes.smp_affinity, probes.smp_affinity_list, probes.effective_affinity_list,
        probes.cpus_allowed)]
    commands.append(probes.rps_cpus("eth1", payload).command)   # type: ignore[arg-type]
    return Built(commands, [[]] * len(commands), None)


REFUSED_TYPE = (ValueError, TypeError, KeyError)
FIELDS = [
    Field("hosts.*.interface", interface_field),
    Field("hosts.*.interface (+ ethtool_stats probe)", lambda p: interface_field(p, True),
          may_refuse=(probes.ProbeArgumentError,)),
    Field("hosts.dut.data_address", data_address_field),
    Field("scenario name / file stem (run id)", run_id_field),
    Field("load.server.protocol", scenario_field(("load", "server", "protocol"))),
    Field("load.server.port", scenario_field(("load", "server", "port"))),
    Field("load.server.workers", scenario_field(("load", "server", "workers"))),
    Field("load.client.rate", scenario_field(("load", "client", "rate"))),
    Field("load.client.payload", scenario_field(("load", "client", "payload"))),
    Field("load.client.flows", scenario_field(("load", "client", "flows"))),
    Field("load.client.workers", scenario_field(("load", "client", "workers"))),
    Field("load.client.duration", scenario_field(("load", "client", "duration")),
          may_refuse=REFUSED_TYPE),
    Field("profile.frequency", scenario_field(("profile", "frequency"))),
    Field("load.server.cpus", scenario_cpus_field(("load", "server", "cpus")), may_refuse=REFUSED_TYPE),
    Field("profile.cpus", scenario_cpus_field(("profile", "cpus")), may_refuse=REFUSED_TYPE),
    Field("tuning.dut.irqbalance", scenario_field(("tuning", "dut", "irqbalance")), reaches=False),
    Field("tuning.dut.channels.combined", scenario_field(("tuning", "dut", "channels", "combined")),
          may_refuse=REFUSED_TYPE),
    Field("tuning.dut.irq_affinity key", tuning_key_field("irq_affinity"), may_refuse=REFUSED_TYPE),
    Field("tuning.dut.rps key", tuning_key_field("rps"), may_refuse=REFUSED_TYPE),
    Field("snapshot.probes[]", probe_name_field, may_refuse=REFUSED_TYPE),
    Field("host name (hosts key, tuning/load/snapshot/profile host)", host_name_field, reaches=True),   # its sampler's file name, quoted
    Field("facts: NIC RX IRQ number", dut_facts_field(rx_irq), may_refuse=(ValueError,)),
    Field("facts: NIC TX IRQ number", dut_facts_field(tx_irq), may_refuse=(ValueError,)),
    Field("facts: NIC RX IRQ number (tuning actions)", tuning_only_field(rx_irq)),
    Field("facts: NIC TX IRQ number (tuning actions)", tuning_only_field(tx_irq)),
    Field("facts: current channel count", dut_facts_field(channel_count)),
    Field("facts: RPS queue name", dut_facts_field(rps_queue), may_refuse=(TypeError,)),
    # the device name is one of the words the sampler keeps rows of /proc/interrupts by
    Field("facts: NIC device, driver, bus", dut_facts_field(device)),
    Field("facts: hostname, kernel, cmdline, tuned, sysctls", dut_facts_field(free_text), reaches=False),
    Field("facts_script(interface)", facts_script_field),
    Field("prepare.tuned.profile", profile_field),
    Field("prepare: interface", prep_interface_field),
    Field("prepare: host's original tuned profile", host_profile_field),
    Field("prepare record: variables_path", record_path_field),
    Field("prepare.tuned.variables value", variables_field, reaches=False),
    Field("probes.ethtool_*(interface), rps_cpus(interface)", probe_factories_field,
          may_refuse=(probes.ProbeArgumentError,)),
    Field("probes: IRQ, PID, queue numbers", probe_numbers_field,
          may_refuse=(probes.ProbeArgumentError,)),
]
FIELD_BY_NAME = {f.name: f for f in FIELDS}


# --------------------------------------------------------------------------- the sandbox run

def layout(built: Built, payload: str) -> dict[str, str]:
    """Files the commands expect (sysfs, procfs, the run's work directory), each also under a
    glob-bait name, so that only a path taken literally lands on the payload's own file."""
    files: dict[str, str] = {}
    for facts in built.facts:
        iface = facts.nic.interface
        for queue in [*range(8), *facts.nic.rps_cpus]:
            files[f"/sys/class/net/{iface}/queues/rx-{queue}/rps_cpus"] = UNTOUCHED
        irqs = {*facts.irq_affinity, *facts.nic.rx_irqs.values(), *facts.nic.tx_irqs.values()}
        for irq in irqs:
            for leaf in ("smp_affinity_list", "effective_affinity_list"):
                files[f"/proc/irq/{irq}/{leaf}"] = UNTOUCHED
    for workdir in built.workdirs:
        for name in ("server.ready", "perf.data"):
            files[f"{workdir}/{name}"] = UNTOUCHED
        for facts in built.facts:              # the sampler's file, which its start waits for
            files[sampler_paths(workdir, facts.host)[0]] = UNTOUCHED
    bait = glob_bait(payload)
    files.update({path.replace(payload, bait): text for path, text in list(files.items())})
    return files


@dataclasses.dataclass
class Outcome:
    built: Built | None = None
    refused: BaseException | None = None
    executions: list[Execution] = dataclasses.field(default_factory=list)


def build_all() -> dict[tuple[str, str], Outcome]:
    outcomes: dict[tuple[str, str], Outcome] = {}
    for field in FIELDS:
        for payload in PAYLOADS:
            try:
                outcomes[field.name, payload] = Outcome(built=field.build(payload))
            except (LabctlError, ValueError, TypeError, KeyError) as exc:
                outcomes[field.name, payload] = Outcome(refused=exc)
    return outcomes


def execute_all(outcomes: dict[tuple[str, str], Outcome]) -> None:
    """One sandbox for everything. A command that holds no payload (the same for every
    payload of a field) runs once, and its result is shared."""
    cases: list[Case] = []
    owners: list[Outcome] = []
    seen: set[str] = set()
    for (_, payload), outcome in outcomes.items():
        if outcome.built is None:
            continue
        commands = [c for c in outcome.built.commands if CANARY in c or c not in seen]
        seen.update(commands)
        cases.append(Case(commands, layout(outcome.built, payload)))
        owners.append(outcome)
    results = shell_sandbox.run_cases(cases, STUBS)
    shared = {e.command: e for executions in results for e in executions if CANARY not in e.command}
    for outcome, executions in zip(owners, results):
        assert outcome.built is not None
        ran = {e.command for e in executions}
        outcome.executions = executions + [shared[c] for c in outcome.built.commands if c not in ran]


@pytest.fixture(scope="module")
def outcomes() -> dict[tuple[str, str], Outcome]:
    reason = shell_sandbox.skip_reason()
    if reason:
        pytest.skip(reason)
    built = build_all()
    execute_all(built)
    return built


# --------------------------------------------------------------------------- (a) nothing runs that the plan did not print

def words_with_payload_part(execution: Execution) -> list[str]:
    """argv words and written paths that hold the canary word: each must hold the payload."""
    words = [w for argv in execution.invocations for w in argv] + execution.written
    return [w for w in words if CANARY in w]


@pytest.mark.integration
@pytest.mark.parametrize("payload", PAYLOADS, ids=[repr(p) for p in PAYLOADS])
@pytest.mark.parametrize("field_name", list(FIELD_BY_NAME))
def test_payload_is_one_literal_argument(outcomes: dict[tuple[str, str], Outcome],
                                         field_name: str, payload: str) -> None:
    field, outcome = FIELD_BY_NAME[field_name], outcomes[field_name, payload]
    if outcome.refused is not None:
        assert isinstance(outcome.refused, field.may_refuse), \
            f"{field_name}: the planner raised {outcome.refused!r}"
        return
    assert outcome.built is not None and outcome.executions
    reached = 0
    for execution in outcome.executions:
        where = f"{field_name} {payload!r}: {execution.command!r}"
        assert not execution.canaries, f"payload ran: {execution.canaries} ({where})"
        assert "not found" not in execution.stderr, f"{execution.stderr} ({where})"
        programs = {argv[0] for argv in execution.invocations}
        assert programs <= PROGRAMS, f"unexpected program(s) {programs - PROGRAMS} ({where})"
        for word in words_with_payload_part(execution):
            assert payload in word, f"payload split or globbed: {word!r} ({where})"
            reached += 1
        if execution.command.startswith("i=0; until [ -e "):
            assert execution.status == 0, f"waited on another path ({where})"
    if field.reaches:
        assert reached, f"{field_name}: the payload reached no program and no file"
    else:
        assert all(CANARY not in c for c in outcome.built.commands), \
            f"{field_name} reaches a command although it should not"


@pytest.mark.integration
@pytest.mark.parametrize("field_name", list(FIELD_BY_NAME))
def test_every_executed_command_is_printed(outcomes: dict[tuple[str, str], Outcome],
                                           field_name: str) -> None:
    """--dry-run shows every command it would run, verbatim (line by line)."""
    for payload in PAYLOADS:
        built = outcomes[field_name, payload].built
        if built is None or built.printed is None:
            continue
        printed = built.printed.split("\n")
        for lines in built.shown:
            for line in lines:
                assert any(p.startswith(line) for p in printed), \
                    f"{field_name} {payload!r}: not printed: {line!r}"
        for part in payload.split("\n")[1:]:        # a line break in a value: "> ", never "$ "
            assert not any(line.split("$ ", 1)[-1].startswith(part) for line in printed
                           if line.startswith(PROMPTS)), f"{field_name} {payload!r}: shown as a command"


@pytest.mark.integration
def test_corpus_is_executed_broadly(outcomes: dict[tuple[str, str], Outcome]) -> None:
    """Most fields run every payload (a refusal is the exception), and the sandbox really
    ran code: the planned writes reached the sandbox's own sysfs and procfs."""
    executed = {k for k, o in outcomes.items() if o.built is not None}
    assert len(executed) >= 0.6 * len(outcomes)
    written = {p for o in outcomes.values() for e in o.executions for p in e.written}
    assert any(p.startswith("/sys/class/net/") and p.endswith("/rps_cpus") for p in written)
    assert any(p.startswith("/proc/irq/") and p.endswith("/smp_affinity_list") for p in written)
    per_field = {f.name: sum((f.name, p) in executed for p in PAYLOADS) for f in FIELDS}
    refusing = {name for name, n in per_field.items() if n < len(PAYLOADS)}
    assert refusing <= {f.name for f in FIELDS if f.may_refuse}


# --------------------------------------------------------------------------- the sandbox itself

@pytest.mark.integration
def test_sandbox_catches_what_it_must() -> None:
    """The checks above would fail on an unquoted command: the canary, the split argument,
    the glob and the unknown program all show."""
    reason = shell_sandbox.skip_reason()
    if reason:
        pytest.skip(reason)
    payload = "*CANARY* x;>CANARY"
    bad = [f"ethtool -l {payload}", "cat /sys/class/net/*CANARY*/q", "id"]
    files = {"/sys/class/net/*CANARY*/q": "0\n", "/sys/class/net/xCANARYx/q": "1\n"}
    (injected, globbed, unknown), = shell_sandbox.run_cases([Case(bad, files)], STUBS)
    assert injected.canaries == ["/tmp/.cwd/CANARY"]
    assert ["ethtool", "-l", "*CANARY*", "x"] in injected.invocations
    assert globbed.invocations == [["cat", "/sys/class/net/*CANARY*/q", "/sys/class/net/xCANARYx/q"]]
    assert "not found" in unknown.stderr
    assert not Path("/sys/class/net/xCANARYx").exists()


@pytest.mark.integration
def test_sandbox_cannot_touch_the_real_system() -> None:
    """sysfs and procfs writes land on tmpfs, root's files and processes are out of reach."""
    reason = shell_sandbox.skip_reason()
    if reason:
        pytest.skip(reason)
    real = [Path("/proc/sys/net/core/busy_read"), Path("/etc/hostname")]
    before = [p.read_text() for p in real]
    tries = ["echo 7 > /proc/sys/net/core/busy_read", "echo x >> /etc/hostname", "kill -0 1",
             "echo 1 > /sys/kernel/mm/ksm/run"]
    results, = shell_sandbox.run_cases([Case(tries)], STUBS)
    assert all(r.status != 0 and not r.written for r in results), results
    assert [p.read_text() for p in real] == before
