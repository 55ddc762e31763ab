"""Orchestration (side effects): the commands `up`, `run`, `restore`, `collect`, `down`, `status`.

Loads and validates input, takes the lab's lock for commands that change a lab, talks to
providers and transports, hands the plan to the executor, and builds reports from a run's
raw files. A run's directory exists from its first step on: its manifest says where and why
a run stopped. Returns data; the CLI prints it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labctl import __version__
from labctl.analysis.drift import drift_record, judged, watch_record
from labctl.analysis.expectations import evaluate, verdict
from labctl.analysis.fold import parse_folded
from labctl.analysis.live import HostView
from labctl.analysis.loadseries import with_load
from labctl.analysis.neighbours import HostProcesses, host_processes, neighbours_record, spoiled, started_pids
from labctl.analysis.perhost import analyse_host, loadgen_summary
from labctl.analysis.series import derive_series
from labctl.errors import (
    ExpectationsFailed,
    LabctlError,
    Problem,
    RunError,
    RunInconclusive,
    RunInvalid,
    Terminated,
    ValidationError,
)
from labctl.execution import failpoints
from labctl.execution.calibrate import measure_ceiling, record_ceiling
from labctl.execution.executor import Executor, Outcome, require_ok, step_record
from labctl.execution.liveview import Followed, LiveDisplay, LiveWindow, live_host, proc_reader, watch
from labctl.execution.preparer import Preparer
from labctl.execution.restorer import Restorer, StepResult
from labctl.host.facts import HostFacts, facts_script, parse_facts
from labctl.host.probes import ProbeOutputError
from labctl.host.samples import MIN_INTERVAL, SampleStream, parse_sample_stream
from labctl.input.config import (
    Loaded,
    load_inventory,
    load_scenario,
)
from labctl.input.matrix import is_sweep, load_sweep
from labctl.input.model import Inventory, Load, Scenario
from labctl.labs.providers import (
    lab_dir,
    load_state,
    prepared_dir,
    provider_for,
    state_file,
)
from labctl.labs.state import LabState
from labctl.local.lock import lab_lock
from labctl.plan.actions import Plan, Start
from labctl.plan.dryrun import plan_document, render_plan
from labctl.plan.feasibility import check_against_facts
from labctl.plan.generator import (
    CALIBRATION_SECONDS,
    CEILINGS_KEY,
    Ceiling,
    ceiling_warning,
    generator_record,
    mode_of,
    recorded_ceiling,
)
from labctl.plan.planner import build_plan, profile_cpus, rate_text
from labctl.plan.series import (
    SAMPLES_LOCAL,
    nic_interrupt_rows,
    planned_readbacks,
    sampler_paths,
    series_interval,
)
from labctl.reports.compare import Comparison as RunsCompared
from labctl.reports.compare import compare, render_compare_html, render_compare_text
from labctl.reports.comparemany import (
    ManyComparison,
    compare_many,
    render_many_html,
    render_many_text,
)
from labctl.reports.export import export_rows, parquet_table, write_csv
from labctl.reports.flamegraph import render_differential
from labctl.reports.html import render_html
from labctl.reports.markdown import render_markdown
from labctl.reports.profiles import analyse_profile
from labctl.reports.series import render_series_markdown
from labctl.reports.sweep import SweepReports, cell_summaries, is_sweep_dir, write_sweep_reports
from labctl.runfiles.models import (
    DriftRecord,
    ExpectationRecord,
    GeneratorRecord,
    HostAnalysis,
    HostFactsRecord,
    InputFileRecord,
    JsonObject,
    LabRecord,
    LoadSummary,
    Manifest,
    NeighboursRecord,
    OutcomeRecord,
    PreparationRecord,
    ProfilePlan,
    ProfileSummary,
    ScenarioFileRecord,
    ServerPlacement,
    StepsRecord,
    Summary,
    VerdictRecord,
    WatchRecord,
)
from labctl.runfiles.rundir import RunDir, find_run, new_run_id, utc_now
from labctl.runfiles.series import SeriesFile
from labctl.transport.base import Transport
from labctl.transport.netns_socket import ssh_banner

Progress = Callable[[str], None]
LIVE_REFRESH = 1.0          # seconds between live views of a run


@dataclass
class RunOutcome:
    run_dir: Path
    summary: Summary
    report: str


@dataclass
class RunRecord:
    """A run's manifest as it grows, and the phase the run is in (where a stop is reported)."""

    run_dir: RunDir
    manifest: Manifest
    phase: str = "connect"

    def save(self) -> None:
        self.run_dir.write_model(self.manifest)


def lab_up(inventory_path: Path, progress: Progress) -> LabState:
    """Create the lab (or find it up), then prove each host answers over SSH with its pinned
    key. A lab that was already up gets the cheap check: each sshd sends its banner."""
    inventory = load_inventory(inventory_path).model
    with locked(inventory_path, inventory, "up", progress):
        return _up(inventory_path, inventory, progress)


def locked(inventory_path: Path, inventory: Inventory, command: str,
           progress: Progress) -> contextlib.AbstractContextManager[None]:
    """The lab's lock, held by a command that changes the lab or its hosts."""
    return lab_lock(lab_dir(inventory_path, inventory), command, progress)


def _up(inventory_path: Path, inventory: Inventory, progress: Progress) -> LabState:
    sf = state_file(inventory_path, inventory)
    was_up = sf.exists() and sf.load().status == "up"
    provider = provider_for(inventory_path, inventory)
    state = provider.up(progress)
    started = time.monotonic()
    if provider.verifies_ssh and not was_up:
        return state
    if was_up and state.status == "up":
        for target in state.targets.values():
            ssh_banner(target.netns, target.address, target.port)
        progress(f"every sshd answers ({time.monotonic() - started:.2f} s)")
        return state
    with connected(state, list(state.targets)) as transports:
        for transport in transports.values():
            transport.run("true")
    progress(f"all hosts answer over SSH, host keys pinned ({time.monotonic() - started:.2f} s)")
    return state


def lab_down(inventory_path: Path, progress: Progress) -> bool:
    inventory = load_inventory(inventory_path).model
    with locked(inventory_path, inventory, "down", progress):
        return provider_for(inventory_path, inventory).down(progress)


def lab_status(inventory_path: Path) -> tuple[Inventory, dict[str, str]]:
    inventory = load_inventory(inventory_path).model
    return inventory, provider_for(inventory_path, inventory).status()


def lab_ceilings(inventory_path: Path) -> list[Ceiling]:
    """The generator ceilings the lab has recorded (none when it is down)."""
    inventory = load_inventory(inventory_path).model
    sf = state_file(inventory_path, inventory)
    if not sf.exists():
        return []
    return [Ceiling.from_json(c) for c in (sf.load().facts.get(CEILINGS_KEY) or {}).values()]


def open_transports(state: LabState, hosts: list[str]) -> Mapping[str, Transport]:
    from labctl.transport.ssh import (
        open_all,  # fabric is heavy: imported only when needed
    )
    return open_all({h: state.targets[h] for h in hosts})


@contextlib.contextmanager
def connected(state: LabState, hosts: list[str]) -> Iterator[Mapping[str, Transport]]:
    """Transports to the hosts, all closed when the block ends (also on errors)."""
    transports = open_transports(state, hosts)
    try:
        yield transports
    finally:
        for transport in transports.values():
            transport.close()


def gather_facts(transports: Mapping[str, Transport], inventory: Inventory,
                 run_dir: RunDir | None = None) -> dict[str, HostFacts]:
    """Each host's facts, read in parallel; their raw text kept in the run directory."""
    shared = inventory.hosts_share_kernel

    def one(host: str) -> HostFacts:
        iface = inventory.hosts[host].interface
        out = transports[host].run_script(facts_script(iface), check=False).stdout
        if run_dir is not None:
            run_dir.write_raw(host, "facts", "raw", out)
        return parse_facts(host, out, iface, shared)

    with ThreadPoolExecutor(max_workers=max(1, len(transports))) as pool:
        return dict(zip(transports, pool.map(one, transports)))


def lab_watch(inventory_path: Path, host: str | None, interval: float,
              show: Callable[[list[HostView]], None], count: int | None = None,
              progress: Progress | None = None) -> int:
    """`labctl watch`: the live view of one lab host (default: the DUT) from /proc, read once
    per interval; nothing is written on the host and no lock is taken (a run may go on)."""
    if not interval >= MIN_INTERVAL:
        raise ValidationError([Problem("<command line>", 0, 0, "watch --interval",
                                       f"at least {MIN_INTERVAL:g} s, got {interval:g}")])
    if count is not None and count < 1:
        raise ValidationError([Problem("<command line>", 0, 0, "watch --count",
                                       f"at least 1, got {count}")])
    inventory = load_inventory(inventory_path).model
    name = host or inventory.host_with_role("dut")
    if name not in inventory.hosts:
        raise ValidationError([Problem("<command line>", 0, 0, "watch HOST",
                                       f"no host {name!r} in lab {inventory.lab}; its hosts: "
                                       f"{', '.join(inventory.hosts)}")])
    state = load_state(inventory_path, inventory)
    with connected(state, [name]) as transports:
        facts = gather_facts(transports, inventory)
        followed = [Followed(live_host(name, facts[name]),
                             proc_reader(transports[name], nic_interrupt_rows(facts[name])))]
        if progress is not None:
            progress(f"watching {name} every {interval:g} s" + ("" if count else "; Ctrl-C ends"))
        return watch(followed, interval, show, count)


def prepare_run(inventory_path: Path, scenario_path: Path, progress: Progress
                ) -> tuple[Loaded[Inventory], Loaded[Scenario], LabState]:
    inventory = load_inventory(inventory_path)
    scenario = load_scenario(scenario_path, inventory.model)
    state = load_state(inventory_path, inventory.model)
    return inventory, scenario, state


def plan_run(inventory: Loaded[Inventory], scenario: Loaded[Scenario], transports: Mapping[str, Transport],
             progress: Progress, run_dir: RunDir | None = None, ceiling: Ceiling | None = None
             ) -> tuple[Plan, dict[str, HostFacts], list[str]]:
    facts = gather_facts(transports, inventory.model, run_dir)
    problems, warnings = check_against_facts(scenario, inventory.model, facts)
    if problems:
        raise ValidationError(problems)
    warnings += [w for w in (ceiling_warning(scenario, ceiling),) if w]
    for warning in warnings:
        progress(f"warning: {warning}")
    assert scenario.model.name
    plan = build_plan(inventory.model, scenario.model, facts,
                      run_dir.run_id if run_dir else new_run_id(scenario.model.name))
    return plan, facts, warnings


def preparer(inventory_path: Path, inventory: Loaded[Inventory], transports: Mapping[str, Transport],
             progress: Progress) -> Preparer:
    return Preparer(inventory, transports, prepared_dir(inventory_path, inventory.model),
                    provider_for(inventory_path, inventory.model), progress)


def lab_prepare(inventory_path: Path, progress: Progress, describe_only: bool = False
                ) -> dict[str, Any] | list[str]:
    """`labctl prepare`: the inventory's host preparation alone (or, describe_only, its plan)."""
    inventory = load_inventory(inventory_path)
    state = load_state(inventory_path, inventory.model)
    with contextlib.ExitStack() as stack:
        if not describe_only:
            stack.enter_context(locked(inventory_path, inventory.model, "prepare", progress))
        transports = stack.enter_context(connected(state, list(inventory.model.hosts)))
        prep = preparer(inventory_path, inventory, transports, progress)
        return prep.describe() if describe_only else prep.prepare()


def lab_unprepare(inventory_path: Path, progress: Progress) -> list[str]:
    """`labctl unprepare`: put back each prepared host's recorded original state."""
    inventory = load_inventory(inventory_path)
    state = load_state(inventory_path, inventory.model)
    with locked(inventory_path, inventory.model, "unprepare", progress), \
            connected(state, list(inventory.model.hosts)) as transports:
        return preparer(inventory_path, inventory, transports, progress).unprepare()


@dataclass(frozen=True)
class DryRun:
    """What `labctl run --dry-run` shows of one scenario: the hosts' pending preparation, the
    load generator's mode and ceiling, the planner's warnings and the plan itself."""

    scenario: Path
    preparation: list[str]
    generator: str | None
    warnings: list[str]
    plan: Plan

    @property
    def preparation_pending(self) -> bool:
        return not all(line.endswith("prepared already") for line in self.preparation)

    def text(self) -> str:
        text = render_plan(self.plan)
        if self.generator is not None:
            text = self.generator + "\n" + "".join(f"warning: {w}\n" for w in self.warnings) + "\n" + text
        if self.preparation:
            text = ("host preparation (from the inventory; kept across runs):\n" + "\n".join(self.preparation)
                    + "\n" + ("(the plan below uses the hosts' facts as they are now, before preparation)\n"
                             if self.preparation_pending else "")
                    + "\n" + text)
        return text

    def document(self) -> dict[str, Any]:
        """`run --dry-run --json`: the same as data (each action with its literal commands)."""
        return {"scenario": str(self.scenario), "preparation": self.preparation,
                "preparation_pending": bool(self.preparation) and self.preparation_pending,
                "generator": self.generator, "warnings": self.warnings, "plan": plan_document(self.plan)}


def dry_run(inventory_path: Path, scenario_path: Path, progress: Progress) -> DryRun:
    inventory, scenario, state = prepare_run(inventory_path, scenario_path, progress)
    load = scenario.model.load
    ceiling = recorded_ceiling(state.facts, load) if load else None
    with connected(state, list(inventory.model.hosts)) as transports:
        preparation = preparer(inventory_path, inventory, transports, progress).describe()
        plan, _, warnings = plan_run(inventory, scenario, transports, progress, ceiling=ceiling)
    return DryRun(scenario_path, list(preparation), _generator_line(load, ceiling) if load else None,
                  list(warnings) if load else [], plan)


def run(inventory_path: Path, scenario_path: Path, runs_root: Path, progress: Progress,
        created: list[Path] | None = None, live: LiveDisplay | None = None) -> RunOutcome:
    """One run; `created` gets its run directory as soon as it exists (a series reports it
    also for a run that then fails); `live` shows the live view during the load window."""
    inventory, scenario, state = prepare_run(inventory_path, scenario_path, progress)
    with locked(inventory_path, inventory.model, f"run {scenario_path}", progress):
        run_dir, outcome = run_locked(inventory_path, inventory, scenario, state, runs_root, progress,
                                      None if created is None else created.append, live=live)
    return judge_run(run_dir, runs_root, outcome)


def run_locked(inventory_path: Path, inventory: Loaded[Inventory], scenario: Loaded[Scenario],
               state: LabState, runs_root: Path, progress: Progress,
               on_created: Callable[[Path], None] | None = None, run_name: str | None = None,
               live: LiveDisplay | None = None) -> tuple[RunDir, Outcome]:
    """One run of a loaded scenario (a file's, or a sweep cell's), the lab's lock held by the
    caller; its run directory is named after `run_name` (default: the scenario's name)."""
    assert scenario.model.name
    run_dir = RunDir.create(runs_root, new_run_id(run_name or scenario.model.name))
    if on_created is not None:
        on_created(run_dir.path)
    record = _start_manifest(run_dir, inventory, scenario, state)
    progress(f"run {run_dir.path}")
    try:
        outcome = _run_steps(inventory_path, inventory, scenario, state, record, progress, live)
    except ValidationError:
        shutil.rmtree(run_dir.path, ignore_errors=True)      # refused before any change
        raise
    except BaseException as exc:
        _stopped(record, exc)
        raise
    _finished(record, outcome)
    return run_dir, outcome


def judge_run(run_dir: RunDir, runs_root: Path, outcome: Outcome) -> RunOutcome:
    """A run's reports built, then its end as an error: stopped, invalid (its tuning drifted),
    failed or inconclusive."""
    result = collect(run_dir.path, runs_root)
    require_ok(outcome)
    ended = result.summary.verdict
    report = run_dir.path / "report.md"
    if ended is not None and ended.status == "invalid":
        raise RunInvalid(f"invalid: {ended.reason}; report: {report}", result)
    if ended is not None and ended.status == "failed":
        raise ExpectationsFailed(f"failed: {ended.reason}; report: {report}", result)
    if ended is not None and ended.status == "inconclusive":
        raise RunInconclusive(f"inconclusive: {ended.reason}; report: {report}", result)
    return result


def validate_series(inventory_path: Path, scenario_paths: list[Path], sweeps: bool = False) -> None:
    """The inventory and every scenario of a series, checked before the first one runs (all
    problems at once); `labctl validate` too (`sweeps`: a sweep file is checked as a sweep)."""
    inventory = load_inventory(inventory_path)
    problems = []
    for path in scenario_paths:
        try:
            if sweeps and is_sweep(path):
                load_sweep(path, inventory.model)
            else:
                load_scenario(path, inventory.model)
        except ValidationError as exc:
            problems += exc.problems
    if problems:
        raise ValidationError(problems)


def _run_steps(inventory_path: Path, inventory: Loaded[Inventory], scenario: Loaded[Scenario],
               state: LabState, record: RunRecord, progress: Progress,
               live: LiveDisplay | None = None) -> Outcome:
    started = time.monotonic()
    run_dir = record.run_dir
    with connected(state, list(inventory.model.hosts)) as transports:
        progress(f"connected to {', '.join(transports)} ({time.monotonic() - started:.2f} s)")
        record.phase = "prepare-hosts"
        preparation = preparer(inventory_path, inventory, transports, progress).prepare()
        record.phase = "calibrate"
        load = scenario.model.load
        ceiling = (generator_ceiling(inventory_path, inventory.model, load, state, transports, progress)
                   if load is not None else None)
        generator = generator_record(load, ceiling)                    # None: no load in this run
        record.manifest.generator = None if generator is None else GeneratorRecord.model_validate(generator)
        record.phase = "facts"
        failpoints.reached("facts")
        plan, facts, warnings = plan_run(inventory, scenario, transports, progress, run_dir, ceiling)
        _plan_manifest(record, scenario, facts, plan, warnings, preparation)
        record.phase = "execute"
        window = _live_window(inventory.model, scenario.model, plan, facts, state, live, progress)
        return Executor(plan, transports, run_dir, progress, scenario.model.keep_tuning,
                        window).execute()


def _live_window(inventory: Inventory, scenario: Scenario, plan: Plan, facts: dict[str, HostFacts],
                 state: LabState, live: LiveDisplay | None, progress: Progress) -> LiveWindow | None:
    """The live view of a run: each snapshot host's sampler followed (the DUT first), refreshed
    every second (or every sample, when they are further apart)."""
    interval = series_interval(scenario)
    if live is None or interval is None:
        return None
    dut = inventory.host_with_role("dut")
    hosts = sorted(scenario.snapshot.hosts, key=lambda h: h != dut)
    paths = {h: sampler_paths(plan.workdir[h], h)[0] for h in hosts if h in plan.workdir}
    return LiveWindow(paths, facts, max(LIVE_REFRESH, interval),
                      lambda names: open_transports(state, names), live, progress)


def generator_ceiling(inventory_path: Path, inventory: Inventory, load: Load, state: LabState,
                      transports: Mapping[str, Transport], progress: Progress, force: bool = False,
                      seconds: float = CALIBRATION_SECONDS) -> Ceiling:
    """The generator's ceiling in this load's mode: the one the lab recorded, else measured
    now (once per lab and mode) and recorded."""
    ceiling = None if force else recorded_ceiling(state.facts, load)
    if ceiling is None:
        ceiling = measure_ceiling(inventory, load, transports, progress, seconds)
        record_ceiling(state_file(inventory_path, inventory), ceiling, state)
    return ceiling


def _generator_line(load: Load, ceiling: Ceiling | None) -> str:
    mode = mode_of(load)
    if ceiling is None:
        return (f"load generator: {mode.describe()}; its ceiling in this mode is not measured yet "
                "(`labctl run` measures it first, ~10 s; or `labctl calibrate`)")
    return (f"load generator: {mode.describe()}; measured ceiling {ceiling.rate:.0f} msg/s "
            f"({ceiling.measured_at}); asked: {rate_text(load.client.rate)}")


def lab_calibrate(inventory_path: Path, scenario_paths: list[Path], seconds: float,
                  progress: Progress) -> list[Ceiling]:
    """`labctl calibrate`: measure (again) the generator's ceiling in each scenario's mode, or in
    the blog's (UDP, a new socket per message, 64 B, 4 workers) without scenarios."""
    validate_series(inventory_path, scenario_paths)
    inventory = load_inventory(inventory_path)
    loads = [s.model.load for s in (load_scenario(p, inventory.model) for p in scenario_paths)
             if s.model.load is not None] or [default_load(inventory.model)]
    state = load_state(inventory_path, inventory.model)
    modes = {mode_of(load).key: load for load in loads}
    hosts = sorted({h for load in modes.values() for h in (load.server.host, load.client.host)})
    with locked(inventory_path, inventory.model, "calibrate", progress), connected(state, hosts) as transports:
        return [generator_ceiling(inventory_path, inventory.model, load, state, transports, progress,
                                  force=True, seconds=seconds) for load in modes.values()]


def default_load(inventory: Inventory) -> Load:
    """The blog's client: UDP, a new socket per message, 64 B, 4 workers, loadgen -> dut."""
    roles = {spec.role: name for name, spec in inventory.hosts.items()}
    if "dut" not in roles or "loadgen" not in roles:
        raise RunError("calibrate without a scenario needs a host with role dut and one with role "
                       "loadgen in the inventory; name scenarios to calibrate their modes")
    return Load.model_validate({
        "server": {"host": roles["dut"], "protocol": "udp"},
        "client": {"host": roles["loadgen"], "rate": "max", "duration": CALIBRATION_SECONDS,
                   "payload": 64, "workers": 4, "new_socket_per_message": True}})


def _start_manifest(run_dir: RunDir, inventory: Loaded[Inventory], scenario: Loaded[Scenario],
                    state: LabState) -> RunRecord:
    manifest = Manifest(
        run_id=run_dir.run_id, labctl_version=__version__, started=utc_now(),
        inventory=InputFileRecord(path=str(inventory.path), model=inventory.model.model_dump(mode="json")),
        scenario=ScenarioFileRecord(path=str(scenario.path), model=scenario.model.model_dump(mode="json"),
                                    text=scenario.path.read_text()),
        lab=LabRecord(name=state.lab, provider=state.provider, facts=_as_json(state.facts)),
        outcome=OutcomeRecord(status="running"), controller_pid=os.getpid())
    record = RunRecord(run_dir, manifest)
    record.save()
    return record


def _as_json(value: object) -> JsonObject:
    """A plain dict as the manifest wrote it before run files were typed (json's default=str)."""
    data: JsonObject = json.loads(json.dumps(value, default=str))
    return data


def _plan_manifest(record: RunRecord, scenario: Loaded[Scenario], facts: dict[str, HostFacts],
                   plan: Plan, warnings: list[str], preparation: dict[str, Any]) -> None:
    manifest = record.manifest
    manifest.facts = {h: HostFactsRecord.model_validate(_as_json(f.to_json())) for h, f in facts.items()}
    manifest.preparation = {h: PreparationRecord.model_validate(p) for h, p in _as_json(preparation).items()}
    manifest.profile = _profile_plan(scenario.model, facts)
    manifest.warnings = warnings
    manifest.plan = [_as_json(asdict(a)) for a in plan.actions]
    manifest.watches = _watches(plan)
    record.save()


def _watches(plan: Plan) -> dict[str, list[WatchRecord]]:
    """Per host, the values the plan set, that its sampler reads back during the load window
    (drift watchdog; a tuned host without a sampler is reported as not watched); none
    without a series (no load window, or `snapshot.interval: null`)."""
    if not any(isinstance(a, Start) and a.process.startswith("sampler-") for a in plan.actions):
        return {}
    return {host: [watch_record(rb.name, rb.kind, rb.label, rb.expected) for rb in readbacks]
            for host, readbacks in planned_readbacks(list(plan.actions)).items()}


def _stopped(record: RunRecord, exc: BaseException) -> None:
    """A run that stopped before its plan ran (connect, host preparation, facts): nothing of
    the plan was changed on a host yet."""
    if isinstance(exc, KeyboardInterrupt):
        signal_name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        status, reason = "interrupted", f"{signal_name} during {record.phase}"
    else:
        status = "failed"
        reason = str(exc) if isinstance(exc, LabctlError) else f"{type(exc).__name__}: {exc}"
    record.manifest.outcome = OutcomeRecord(
        status=status, phase=record.phase, reason=reason,
        restore="nothing to restore: no step of the plan had run", ended=utc_now())
    record.save()


def _finished(record: RunRecord, outcome: Outcome) -> None:
    where = outcome.stopped_at or {}
    restore = "complete"
    if outcome.pending:     # unreachable, or an undo command failed: both stay in the journal
        restore = (f"pending on {', '.join(outcome.pending)}: `labctl restore {record.run_dir.run_id}` "
                   "finishes it")
    record.manifest.outcome = OutcomeRecord(
        status="interrupted" if outcome.interrupted else "failed" if outcome.error else "completed",
        phase=where.get("phase"), step=where.get("step"), host=where.get("host"),
        checkpoint=where.get("checkpoint"),
        reason=outcome.interrupted or outcome.error, restore=restore, ended=utc_now())
    record.save()


def restore_run(inventory_path: Path, run: str, runs_root: Path, progress: Progress
                ) -> tuple[list[StepResult], list[str]]:
    """`labctl restore RUN`: put back what a run could not (its hosts were unreachable), from
    the journal it left. Returns the steps taken and the hosts still pending."""
    inventory = load_inventory(inventory_path).model
    state = load_state(inventory_path, inventory)
    run_dir = find_run(runs_root, run)
    with locked(inventory_path, inventory, f"restore {run}", progress):
        hosts = Restorer.from_journal(run_dir, {}, progress).hosts()
        if not hosts:
            return [], []
        missing = [h for h in hosts if h not in state.targets]
        if missing:
            raise RunError(f"run {run_dir.run_id} changed {', '.join(missing)}, which this lab "
                           f"({state.lab}) does not have: is it the inventory the run used?")
        with connected(state, hosts) as transports:
            restorer = Restorer.from_journal(run_dir, transports, progress)
            restorer.stop_processes()
            results = restorer.restore()
        _restored_later(run_dir, results, restorer.hosts())
    return results, restorer.hosts()


def _restored_later(run_dir: RunDir, results: list[StepResult], pending: list[str]) -> None:
    manifest = run_dir.read_model(Manifest)
    outcome = manifest.outcome or OutcomeRecord()
    outcome.restore = ("complete (by `labctl restore` at " + utc_now() + ")" if not pending else
                       f"pending on {', '.join(pending)} after `labctl restore` at {utc_now()}")
    outcome.restored_later = (outcome.restored_later or []) + [step_record(r) for r in results]
    manifest.outcome = outcome
    run_dir.write_model(manifest)


def _profile_plan(scenario: Scenario, facts: dict[str, HostFacts]) -> ProfilePlan | None:
    if scenario.profile is None or scenario.load is None:
        return None
    return ProfilePlan(host=scenario.profile.host, frequency=scenario.profile.frequency,
                       cpus=sorted(profile_cpus(scenario, facts)))


def collect(run: str | Path | None, runs_root: Path) -> RunOutcome:
    """Rebuild summary.json and report.md of a run from its raw files."""
    run_dir = find_run(runs_root, str(run) if run else None)
    manifest = run_dir.read_model(Manifest)
    if manifest.facts is None:
        outcome = manifest.outcome or OutcomeRecord()
        raise RunError(f"run {run_dir.run_id} stopped before it read the hosts' facts "
                       f"({outcome.status} in {outcome.phase or '?'}: "
                       f"{outcome.reason or 'no reason recorded'}); there is nothing to report")
    steps = run_dir.read_model(StepsRecord) if run_dir.has(StepsRecord.FILE) else StepsRecord()
    profile, flamegraphs = _profile(run_dir, manifest.profile)
    summary = build_summary(run_dir, manifest, steps, profile)
    run_dir.write_model(summary)
    series = build_series(run_dir, manifest)
    if series is not None:
        run_dir.write_model(series)
    report = render_markdown(summary) + render_series_markdown(
        series, any(f.shared_kernel for f in (manifest.facts or {}).values()))
    run_dir.write_text("report.md", report)
    run_dir.write_text("report.html", render_html(summary, flamegraphs, series))
    return RunOutcome(run_dir.path, summary, report)


def find_sweep(runs_root: Path, name: str | None) -> Path | None:
    """A sweep directory by path or by name under runs_root; None when `name` names none."""
    if not name:
        return None
    for candidate in (Path(name), runs_root / name):
        if is_sweep_dir(candidate):
            return candidate
    return None


def collect_sweep(sweep_dir: Path) -> SweepReports:
    """`labctl collect SWEEP_DIR`: rebuild sweep.md and sweep.html from sweep.json and the
    runs' summary.json (a sweep in progress too)."""
    return write_sweep_reports(sweep_dir)


def build_series(run_dir: RunDir, manifest: Manifest) -> SeriesFile | None:
    """series.json of a run: each snapshot host's sample file -> rates (None: no series)."""
    scenario = Scenario.model_validate(manifest.scenario.model)
    if series_interval(scenario) is None or manifest.facts is None:
        return None
    series = SeriesFile(run_id=manifest.run_id, scenario=scenario.name or "?")
    streams, series.missing = sample_streams(run_dir, manifest)
    for host, stream in streams.items():
        facts = manifest.facts[host]
        series.hosts[host] = derive_series(stream, facts.model_dump(mode="json"))
    if scenario.load is not None:
        for role, host in (("server", scenario.load.server.host), ("client", scenario.load.client.host)):
            loaded = with_load(series.hosts.get(host), role, _loadgen_result(run_dir, host, f"{role}.json"))
            if loaded is not None:
                series.hosts[host] = loaded
    return series


def sample_streams(run_dir: RunDir, manifest: Manifest) -> tuple[dict[str, SampleStream], dict[str, str]]:
    """Each snapshot host's parsed sample file, and why a host has none."""
    scenario = Scenario.model_validate(manifest.scenario.model)
    streams: dict[str, SampleStream] = {}
    missing: dict[str, str] = {}
    for host in scenario.snapshot.hosts:
        path = run_dir.path / host / SAMPLES_LOCAL
        facts = (manifest.facts or {}).get(host)
        if facts is None or not path.exists():
            missing[host] = "no sample file was fetched" if facts else "no facts"
            continue
        try:
            streams[host] = parse_sample_stream(path.read_bytes())
        except ProbeOutputError as exc:
            missing[host] = str(exc)
    return streams, missing


def _drift(run_dir: RunDir, manifest: Manifest) -> DriftRecord | None:
    if not any(manifest.watches.values()):
        return None
    streams, missing = sample_streams(run_dir, manifest)
    return drift_record(manifest.watches, streams, missing)


def export_series(runs: list[str], runs_root: Path, fmt: str, output: Path | None) -> int:
    """`labctl export`: the series of the runs as one long table (CSV to `output` or stdout,
    parquet to `output`); returns the number of rows."""
    tables = []
    for name in runs:
        run_dir = find_run(runs_root, name)
        if run_dir.has(SeriesFile.FILE):
            tables.append(run_dir.read_model(SeriesFile))
            continue
        series = build_series(run_dir, run_dir.read_model(Manifest))
        if series is None or not series.hosts:
            raise RunError(f"run {run_dir.run_id} has no series (no sample file: a run of a labctl "
                           "before the series, a scenario without load, or `snapshot.interval: null`)")
        tables.append(series)
    rows = export_rows(tables)
    if fmt == "parquet":
        if output is None:
            raise RunError("--format parquet writes a file: give -o FILE")
        table = parquet_table(rows)
        import pyarrow.parquet
        pyarrow.parquet.write_table(table, str(output))
        return int(table.num_rows)
    if output is None:
        return write_csv(rows, sys.stdout)
    with output.open("w", newline="") as stream:
        return write_csv(rows, stream)


@dataclass
class Comparison:
    text: str
    html_path: Path
    data: RunsCompared | ManyComparison   # what both renderings show (reports.compare*)


def compare_any(names: list[str], runs_root: Path) -> Comparison:
    """`labctl compare`: one sweep directory (a column per cell, the median of its
    repetitions), two runs (compare_runs) or more (the first is the baseline)."""
    sweep = find_sweep(runs_root, names[0]) if len(names) == 1 else None
    if sweep is not None:
        cells = cell_summaries(sweep)
        if not any(summaries for _, summaries in cells):
            raise RunError(f"sweep {sweep} has no ended repetition with a summary yet")
        return _many([(f"cell {c.index}", c.label, summaries) for c, summaries in cells],
                      sweep / "compare.html")
    if len(names) < 2:
        raise RunError(f"compare needs two or more runs, or one sweep directory: "
                       f"{names[0]!r} is not a sweep directory (no sweep.json)")
    if len(names) == 2:
        return compare_runs(names[0], names[1], runs_root)
    runs = [find_run(runs_root, name) for name in names]
    summaries = [r.read_model(Summary) for r in runs]
    columns = [(chr(ord("A") + i) if i < 26 else str(i + 1), f"{r.run_id} ({s.scenario})", [s])
               for i, (r, s) in enumerate(zip(runs, summaries))]
    target = runs[-1].path.parent / f"compare-{runs[0].run_id}--and-{len(runs) - 1}-more.html"
    return _many(columns, target)


def _many(columns: list[tuple[str, str, list[Summary]]], target: Path) -> Comparison:
    data = compare_many(columns)
    target.write_text(render_many_html(data))
    return Comparison(render_many_text(data), target, data)


def compare_runs(run_a: str, run_b: str, runs_root: Path) -> Comparison:
    """`labctl compare`: two runs side by side (terminal text and compare.html), with a
    differential flamegraph of every CPU both runs profiled on the same host."""
    a, b = find_run(runs_root, run_a), find_run(runs_root, run_b)
    summary_a, summary_b = a.read_model(Summary), b.read_model(Summary)
    comparison = compare(summary_a, summary_b)
    html = render_compare_html(comparison, _differential_flamegraphs(a, b, summary_a, summary_b),
                               (_series_of(a), _series_of(b)))
    target = b.path.parent / f"compare-{a.run_id}--{b.run_id}.html"
    target.write_text(html)
    return Comparison(render_compare_text(comparison), target, comparison)


def _series_of(run_dir: RunDir) -> SeriesFile | None:
    """A run's series.json (None: the run has none, or it does not read)."""
    if not run_dir.has(SeriesFile.FILE):
        return None
    try:
        return run_dir.read_model(SeriesFile)
    except RunError:
        return None


def _differential_flamegraphs(a: RunDir, b: RunDir, summary_a: Summary,
                              summary_b: Summary) -> dict[str, dict[int, str]]:
    pa, pb = summary_a.profile, summary_b.profile
    if pa is None or pb is None or pa.host != pb.host:
        return {}
    host, result = pa.host, {}
    for cpu in sorted(set(pa.per_cpu) & set(pb.per_cpu)):
        folded_a, folded_b = pa.per_cpu[cpu].folded, pb.per_cpu[cpu].folded
        if folded_a and folded_b and (a.path / folded_a).exists() and (b.path / folded_b).exists():
            result[cpu] = render_differential(
                parse_folded((a.path / folded_a).read_text()), parse_folded((b.path / folded_b).read_text()),
                title=f"{host} CPU {cpu}: {a.run_id} vs {b.run_id}",
                subtitle="width: run B; red: more of B's samples than A's, blue: fewer")
    return {host: result} if result else {}


def build_summary(run_dir: RunDir, manifest: Manifest, steps: StepsRecord,
                  profile: ProfileSummary | None = None) -> Summary:
    """summary.json of a run: its hosts' deltas, load, checks and verdict, with the manifest's
    facts and the executor's steps."""
    scenario = Scenario.model_validate(manifest.scenario.model)
    hosts = {host: analyse_host(functools.partial(run_dir.read_raw, host), facts.model_dump(mode="json"))
             for host, facts in (manifest.facts or {}).items() if host in scenario.snapshot.hosts}
    loadgen = _loadgen(run_dir, scenario)
    results = evaluate(scenario, {"hosts": hosts, "loadgen": loadgen})
    generator = manifest.generator
    ceiling = generator.ceiling.rate if generator and generator.ceiling else None
    drift = _drift(run_dir, manifest)
    neighbours = _neighbours(run_dir, manifest, steps, scenario)
    return Summary(
        run_id=manifest.run_id, scenario=scenario.name or "?", description=scenario.description,
        lab=manifest.lab.name, provider=manifest.lab.provider, lab_facts=manifest.lab.facts,
        labctl_version=manifest.labctl_version, started=manifest.started,
        keep_tuning=scenario.keep_tuning, facts=manifest.facts or {},
        preparation=manifest.preparation, server=_server_placement(scenario),
        window_seconds=_window(steps),
        expectations=[ExpectationRecord.model_validate(r.to_json()) for r in results],
        verdict=VerdictRecord.model_validate(
            judged(spoiled(verdict(results, loadgen, ceiling), neighbours), drift).to_json()),
        drift=drift, neighbours=neighbours, generator=generator,
        loadgen=None if loadgen is None else LoadSummary.model_validate(loadgen),
        hosts={h: HostAnalysis.model_validate(d) for h, d in hosts.items()}, profile=profile,
        steps=steps.steps, restore=steps.restore, interrupted=steps.interrupted, error=steps.error,
        outcome=manifest.outcome,
        warnings=manifest.warnings + [w for s in steps.steps for w in s.warnings])


def _neighbours(run_dir: RunDir, manifest: Manifest, steps: StepsRecord,
                scenario: Scenario) -> NeighboursRecord | None:
    """The neighbour check of each snapshot host: the run's own processes are those it started
    there (on a shared kernel: on every lab host, as one /proc shows them all, and labctl itself)."""
    facts = manifest.facts or {}
    sides: dict[str, HostProcesses | str] = {}
    for host in scenario.snapshot.hosts:
        if host not in facts:
            continue
        shared = facts[host].shared_kernel
        own = started_pids(steps.steps, list(facts) if shared else [host])
        sides[host] = host_processes(functools.partial(run_dir.read_raw, host), facts[host].model_dump(mode="json"),
                                     own, manifest.controller_pid if shared else None)
    return neighbours_record(sides)


def _server_placement(scenario: Scenario) -> ServerPlacement | None:
    if scenario.load is None:
        return None
    server = scenario.load.server
    return ServerPlacement(host=server.host, cpus=sorted(server.cpus) if server.cpus else None,
                           workers=server.workers)


def _profile(run_dir: RunDir, planned: ProfilePlan | None
             ) -> tuple[ProfileSummary | None, dict[str, dict[int, str]]]:
    """Fold the fetched `perf script` text; write per-CPU .folded files and flamegraph SVGs.
    Returns the profile's summary and the SVGs (host -> CPU -> SVG) for report.html."""
    if planned is None:
        return None, {}
    host = planned.host
    script_path = run_dir.path / host / "perf" / "perf.script"
    script = script_path.read_text(errors="replace") if script_path.exists() else None
    result = analyse_profile(host, planned.cpus, planned.frequency, script)
    files: dict[int, dict[str, str]] = {}
    for cpu, data in result.per_cpu.items():
        for kind, name, text in (("folded", f"{host}/perf/cpu{cpu}.folded", data.folded),
                                 ("flamegraph", f"{host}/flamegraphs/cpu{cpu}.svg", data.svg)):
            if text:            # derived from raw data: rewritten by every collect
                run_dir.write_text(name, text)
                files.setdefault(cpu, {})[kind] = name
    svgs = {cpu: data.svg for cpu, data in result.per_cpu.items() if data.svg}
    return ProfileSummary.model_validate(result.to_json(files)), ({host: svgs} if svgs else {})


def _window(steps: StepsRecord) -> float:
    return float(sum(s.seconds for s in steps.steps if s.kind == "wait_process"))
def _loadgen_result(run_dir: RunDir, host: str, name: str) -> dict[str, Any] | None:
    """A fetched loadgen result file (None: missing or unreadable)."""
    path = run_dir.path / host / "loadgen" / name
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = RunDir(path.parent).read_json(name)
        return data
    except RunError:
        return None


def _loadgen(run_dir: RunDir, scenario: Scenario) -> dict[str, Any] | None:
    if scenario.load is None:
        return None
    return loadgen_summary(_loadgen_result(run_dir, scenario.load.server.host, "server.json"),
                           _loadgen_result(run_dir, scenario.load.client.host, "client.json"))
