"""Sweeps (side effects, layer "runner"): `labctl sweep` and `labctl sweep --resume`.

A sweep file is validated cell by cell (labctl.input.matrix), then, under the lab's lock held
for the whole sweep, every cell is planned against the hosts' facts before the first one runs.
Each cell x repetition is then an ordinary run (labctl.runner.run_locked: its own run
directory under ``<sweep>/runs/``, its hosts restored at its end), in the recorded run order;
``sweep.json`` is rewritten after each (labctl.runfiles.sweepdir). A repetition that fails or
errs does not stop the sweep; Ctrl-C (or a crash) does, after that run's own restore, and
leaves the sweep ``interrupted``: ``--resume`` runs what did not end, nothing twice.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from labctl import __version__
from labctl.errors import (
    ExpectationsFailed,
    LabctlError,
    RunError,
    RunInconclusive,
    RunInterrupted,
    RunInvalid,
    Terminated,
)
from labctl.execution.liveview import LiveDisplay
from labctl.execution.restorer import Restorer
from labctl.host.facts import HostFacts
from labctl.input.config import Loaded, invalid, load_inventory
from labctl.input.matrix import (
    Cell,
    CellProblems,
    Sweep,
    cell_problems,
    load_sweep,
    run_order,
    value_text,
)
from labctl.input.model import Inventory
from labctl.input.yamlpos import format_path
from labctl.labs.providers import load_state, prepared_dir, provider_for
from labctl.labs.state import LabState
from labctl.plan.actions import Plan
from labctl.plan.feasibility import check_against_facts
from labctl.plan.generator import ceiling_warning, recorded_ceiling
from labctl.plan.planner import build_plan
from labctl.reports.sweep import write_sweep_reports
from labctl.runfiles.rundir import RunDir, new_run_id, utc_now
from labctl.runfiles.sweep import (
    ENDED,
    CellRecord,
    MatrixAxis,
    RepetitionRecord,
    RepetitionStatus,
    SweepRecord,
)
from labctl.runfiles.sweepdir import (
    SweepDir,
    cell_of,
    ended_count,
    new_sweep_id,
    remaining,
    repetition,
    sha256_text,
)
from labctl.runner import Progress, connected, gather_facts, judge_run, locked, run_locked
from labctl.transport.base import Transport

SEED_BOUND = 2**31


@dataclass
class SweepOutcome:
    """A sweep that ran to its end: where it is and its record."""

    sweep_dir: Path
    record: SweepRecord


@dataclass(frozen=True)
class CellPlan:
    """A cell planned against the hosts' facts (for the dry run's summary)."""

    cell: Cell
    plan: Plan
    warnings: list[str]


# --------------------------------------------------------------------------- validate and plan

def plan_cells(inventory: Loaded[Inventory], sweep: Sweep, state: LabState,
               transports: Mapping[str, Transport]) -> list[CellPlan]:
    """Every cell checked and planned against the hosts' facts (read once); all problems at
    once, each naming its cells, else a ValidationError."""
    facts = gather_facts(transports, inventory.model)
    plans, failed = [], []
    for cell in sweep.cells:
        problems, warnings = check_against_facts(cell.scenario, inventory.model, facts)
        if problems:
            failed.append(CellProblems(cell.index, cell.choice, problems))
            continue
        plans.append(CellPlan(cell, _plan(inventory.model, cell, facts), warnings + _ceiling(cell, state)))
    problems = cell_problems(failed, len(sweep.cells), sweep.axes, sweep.located)
    if problems:
        raise invalid(problems)
    return plans


def _plan(inventory: Inventory, cell: Cell, facts: dict[str, HostFacts]) -> Plan:
    assert cell.scenario.model.name
    return build_plan(inventory, cell.scenario.model, facts, new_run_id(cell.scenario.model.name))


def _ceiling(cell: Cell, state: LabState) -> list[str]:
    load = cell.scenario.model.load
    warning = ceiling_warning(cell.scenario, recorded_ceiling(state.facts, load)) if load else None
    return [warning] if warning else []


def sweep_dry_run(inventory_path: Path, scenario_path: Path, progress: Progress,
                  allow_large: bool = False) -> str:
    """`labctl sweep --dry-run`: the cells, each one's plan in brief, and the run order; the
    hosts' facts are read, nothing is changed."""
    inventory = load_inventory(inventory_path)
    sweep = load_sweep(scenario_path, inventory.model, allow_large)
    state = load_state(inventory_path, inventory.model)
    with connected(state, list(inventory.model.hosts)) as transports:
        preparation = _preparation(inventory_path, inventory, transports, progress)
        plans = plan_cells(inventory, sweep, state, transports)
    seed = sweep.seed if sweep.seed is not None or sweep.order == "sequential" else secrets.randbelow(SEED_BOUND)
    order = run_order(len(sweep.cells), sweep.repeat, sweep.order, seed)
    return render_dry_run(sweep, plans, order, seed, preparation)


def _preparation(inventory_path: Path, inventory: Loaded[Inventory], transports: Mapping[str, Transport],
                 progress: Progress) -> list[str]:
    from labctl.execution.preparer import Preparer
    prep = Preparer(inventory, transports, prepared_dir(inventory_path, inventory.model),
                    provider_for(inventory_path, inventory.model), progress)
    return prep.describe()


def render_dry_run(sweep: Sweep, plans: list[CellPlan], order: list[tuple[int, int]],
                   seed: int | None, preparation: list[str]) -> str:
    runs = len(sweep.cells) * sweep.repeat
    ordering = sweep.order + (f", seed {seed}" + ("" if sweep.seed is not None else
                               f" (chosen now: write `seed: {seed}` to keep this order)")
                               if sweep.order == "shuffled" else "")
    lines = [f"sweep {sweep.name}: {len(sweep.cells)} cell(s) x {sweep.repeat} repetition(s) = "
             f"{runs} run(s), order {ordering}"]
    lines += [f"  matrix {format_path(a.parts)} ({sweep.path}:{a.line}): "
              + ", ".join(value_text(v) for v in a.values) for a in sweep.axes]
    lines.append("\ncells (each an ordinary run: tune, load, snapshot, restore):")
    for item in plans:
        per_host: dict[str, int] = {}
        for action in item.plan.actions:
            per_host[action.host] = per_host.get(action.host, 0) + 1
        hosts = ", ".join(f"{h} {n}" for h, n in per_host.items() if h != "-")
        changes = [f"{a.host}: {a.description}" for a in item.plan.actions
                   if a.kind == "change" and a.phase == "tune"]
        lines.append(f"  {item.cell.index:3d}. {item.cell.label}: {len(item.plan.actions)} actions "
                     f"({hosts}); changes: {'; '.join(changes) or 'none'}")
        lines += [f"       warning: {w}" for w in item.warnings]
    lines.append("\nrun order (cell/repetition): " + " ".join(f"{c}/{r}" for c, r in order))
    if preparation:
        lines = ["host preparation (from the inventory; kept across runs):", *preparation, ""] + lines
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- start a sweep

def run_sweep(inventory_path: Path, scenario_path: Path, runs_root: Path, progress: Progress,
              allow_large: bool = False, live: LiveDisplay | None = None) -> SweepOutcome:
    """`labctl sweep SCENARIO`: validate and plan every cell, make the sweep directory, run
    (`live`: the live view of each repetition's load window, as `labctl run` shows it)."""
    inventory = load_inventory(inventory_path)
    sweep = load_sweep(scenario_path, inventory.model, allow_large)
    state = load_state(inventory_path, inventory.model)
    with locked(inventory_path, inventory.model, f"sweep {scenario_path}", progress):
        with connected(state, list(inventory.model.hosts)) as transports:
            plans = plan_cells(inventory, sweep, state, transports)
        for warning in dict.fromkeys(w for p in plans for w in p.warnings):
            progress(f"warning: {warning}")
        progress(f"{len(sweep.cells)} cell(s) valid and planned against the hosts' facts")
        sweep_dir = SweepDir.create(runs_root, new_sweep_id(sweep.name), sweep.text)
        record = new_record(sweep, sweep_dir, inventory_path)
        sweep_dir.write(record)
        progress(f"sweep {sweep_dir.path}: {len(sweep.cells)} cell(s) x {sweep.repeat} repetition(s)"
                 + (f", shuffled with seed {record.seed}" if record.seed is not None else ""))
        return _run_remaining(_Context(inventory_path, inventory, sweep.relocated(sweep_dir.scenario_copy),
                                       sweep_dir, record, progress, live))


def new_record(sweep: Sweep, sweep_dir: SweepDir, inventory_path: Path,
               seed: int | None = None) -> SweepRecord:
    """sweep.json of a new sweep: every repetition pending, in its run order (a shuffled
    sweep without a seed gets one here, recorded)."""
    if sweep.order == "shuffled":
        seed = sweep.seed if sweep.seed is not None else seed if seed is not None else secrets.randbelow(SEED_BOUND)
    order = run_order(len(sweep.cells), sweep.repeat, sweep.order, seed)
    return SweepRecord(
        sweep_id=sweep_dir.sweep_id, scenario=sweep.name, scenario_path=str(sweep.path.resolve()),
        scenario_sha256=sha256_text(sweep.text), inventory_path=str(inventory_path.resolve()),
        labctl_version=__version__, created_at=utc_now(),
        matrix=[MatrixAxis(path=a.path, values=a.values, line=a.line) for a in sweep.axes],
        repeat=sweep.repeat, order=sweep.order, seed=seed, run_order=order,
        cells=[CellRecord(index=c.index, values=c.values, label=c.label,
                          repetitions=[RepetitionRecord(repetition=r) for r in range(1, sweep.repeat + 1)])
               for c in sweep.cells])


# --------------------------------------------------------------------------- resume

def resume_sweep(inventory_path: Path, directory: Path, scenario_path: Path | None,
                 progress: Progress, live: LiveDisplay | None = None) -> SweepOutcome:
    """`labctl sweep --resume DIR [SCENARIO]`: the repetitions that did not end, in the
    recorded order. The sweep runs as it started: from the copy of its scenario in DIR."""
    sweep_dir = SweepDir(directory)
    record = sweep_dir.read()
    _check_resumable(sweep_dir, record, scenario_path)
    inventory = load_inventory(inventory_path)
    sweep = load_sweep(sweep_dir.scenario_copy, inventory.model, allow_large=True, name=record.scenario)
    if [c.values for c in sweep.cells] != [c.values for c in record.cells] or sweep.repeat != record.repeat:
        raise RunError(f"{sweep_dir.scenario_copy} does not expand into the cells {sweep_dir.path}/sweep.json "
                       "records: the sweep directory was changed by hand; start a new sweep")
    state = load_state(inventory_path, inventory.model)
    with locked(inventory_path, inventory.model, f"sweep --resume {directory}", progress):
        record = sweep_dir.read()              # as it is now that no other labctl runs on this lab
        _check_not_completed(sweep_dir, record)
        _check_restored(sweep_dir, record, progress)
        with connected(state, list(inventory.model.hosts)) as transports:
            plan_cells(inventory, sweep, state, transports)
        left = remaining(record)
        progress(f"resuming {sweep_dir.path}: {len(left)} of {len(record.run_order)} repetition(s) to run")
        return _run_remaining(_Context(inventory_path, inventory, sweep, sweep_dir, record, progress, live))


def _check_resumable(sweep_dir: SweepDir, record: SweepRecord, scenario_path: Path | None) -> None:
    where = sweep_dir.path
    if record.labctl_version != __version__:
        raise RunError(f"{where} was started by labctl {record.labctl_version}, this is labctl "
                       f"{__version__}: runs of one sweep are compared with each other, so they are "
                       "made by one version; start a new sweep")
    _check_not_completed(sweep_dir, record)
    copy = _text(sweep_dir.scenario_copy)
    if copy is None or sha256_text(copy) != record.scenario_sha256:
        raise RunError(f"{sweep_dir.scenario_copy} is missing or not the scenario the sweep started "
                       "with (its sha256 differs from sweep.json's): the sweep directory was changed")
    if scenario_path is not None:
        given = _text(scenario_path)
        if given is None or sha256_text(given) != record.scenario_sha256:
            raise RunError(f"{where} is a sweep of another scenario than {scenario_path} (or of it "
                           f"before an edit): sha256 {record.scenario_sha256[:12]}... recorded; resume "
                           f"without naming a scenario, or start a new sweep of {scenario_path}")
        return
    original = _text(Path(record.scenario_path))
    if original is not None and sha256_text(original) != record.scenario_sha256:
        raise RunError(f"{record.scenario_path} changed since the sweep started; a resumed sweep runs "
                       f"as it started, from its copy: `labctl sweep --resume {where} "
                       f"{sweep_dir.scenario_copy}` does that, or start a new sweep")


def _check_not_completed(sweep_dir: SweepDir, record: SweepRecord) -> None:
    if not remaining(record):
        raise RunError(f"{sweep_dir.path} is completed: every repetition ended; nothing to resume")


def _check_restored(sweep_dir: SweepDir, record: SweepRecord, progress: Progress) -> None:
    """A repetition killed without its restore (SIGKILL, a power cut) left its journal: its
    hosts must be put back before another run starts from their state."""
    for cell_index, number in remaining(record):
        rep = repetition(record, cell_index, number)
        if rep.run_dir and (sweep_dir.path / rep.run_dir).exists():
            pending = Restorer.from_journal(RunDir(sweep_dir.path / rep.run_dir), {}, progress).hosts()
            if pending:
                raise RunError(f"run {rep.run_dir} of this sweep did not restore {', '.join(pending)} "
                               f"(labctl was killed): `labctl restore {sweep_dir.path / rep.run_dir}` "
                               "first, then resume")


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None


# --------------------------------------------------------------------------- running

@dataclass
class _Context:
    inventory_path: Path
    inventory: Loaded[Inventory]
    sweep: Sweep
    sweep_dir: SweepDir
    record: SweepRecord
    progress: Progress
    live: LiveDisplay | None = None


def _run_remaining(ctx: _Context) -> SweepOutcome:
    record, sweep_dir = ctx.record, ctx.sweep_dir
    durations = [r.seconds for c in record.cells for r in c.repetitions
                 if r.status in ENDED and r.seconds is not None]
    todo = remaining(record)
    record.status = "running"
    sweep_dir.write(record)
    try:
        for done, (cell_index, number) in enumerate(todo):
            eta = _eta(durations, len(todo) - done)
            cell = cell_of(record, cell_index)
            ctx.progress(f"cell {cell_index}/{len(record.cells)} ({cell.label}), repetition "
                     f"{number}/{record.repeat}, ETA {eta} [run {ended_count(record) + 1} of "
                     f"{len(record.run_order)}]")
            durations.append(_one(ctx, ctx.sweep.cells[cell_index - 1], number))
    except BaseException as exc:
        record.status = "interrupted"
        _record_and_report(sweep_dir, record)
        if isinstance(exc, (KeyboardInterrupt, RunInterrupted)):
            raise _interrupted(ctx, exc) from None
        raise
    record.status = "completed"
    _record_and_report(sweep_dir, record)
    return SweepOutcome(sweep_dir.path, record)


def _eta(durations: list[float], left: int) -> str:
    if not durations:
        return "--:--:--"
    seconds = int(statistics.fmean(durations) * left)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _one(ctx: _Context, cell: Cell, number: int) -> float:
    """One cell x repetition as an ordinary run; its status and reason recorded. Returns its
    wall time; an interruption (after the run's own restore) is raised on."""
    rep = repetition(ctx.record, cell.index, number)
    if rep.run_dir:                               # an earlier attempt was interrupted or killed
        rep.earlier_runs.append(rep.run_dir)
    rep.run_dir, rep.reason, rep.ended_at, rep.seconds = None, None, None, None
    rep.started_at = utc_now()
    started = time.monotonic()
    status: RepetitionStatus

    def created(path: Path) -> None:
        rep.run_dir = str(path.relative_to(ctx.sweep_dir.path))
        ctx.sweep_dir.write(ctx.record)

    unrestored: list[str] = []
    try:
        state = load_state(ctx.inventory_path, ctx.inventory.model)   # a run may record facts in it
        run_dir, outcome = run_locked(ctx.inventory_path, ctx.inventory, cell.scenario, state,
                                      ctx.sweep_dir.runs, ctx.progress, created,
                                      f"{ctx.record.scenario}-c{cell.index}r{number}", live=ctx.live)
        unrestored = outcome.pending
        judge_run(run_dir, ctx.sweep_dir.runs, outcome)
        status, reason = "passed", None
    except (ExpectationsFailed, RunInconclusive, RunInvalid) as exc:
        status = ("failed" if isinstance(exc, ExpectationsFailed) else
                  "invalid" if isinstance(exc, RunInvalid) else "inconclusive")
        reason = _first_line(exc)
    except RunInterrupted as exc:
        _ended(ctx, rep, "interrupted", _first_line(exc), started)
        raise
    except LabctlError as exc:
        status, reason = "error", _first_line(exc)
    except BaseException as exc:
        why = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT" if isinstance(exc, KeyboardInterrupt) \
            else f"{type(exc).__name__}: {exc}"
        _ended(ctx, rep, "interrupted", why, started)
        raise
    if unrestored:          # the next run would start from (and restore to) a changed host
        _ended(ctx, rep, "interrupted", f"not restored on {', '.join(unrestored)}", started)
        run = ctx.sweep_dir.path / str(rep.run_dir)
        raise RunError(f"sweep stopped: run {run} could not restore {', '.join(unrestored)} ({reason}); "
                       f"`labctl restore {run}` once the host answers, then `labctl sweep --resume "
                       f"{ctx.sweep_dir.path}`")
    _ended(ctx, rep, status, reason, started)
    ctx.progress(f"cell {cell.index} repetition {number}: {status}" + (f": {reason}" if reason else ""))
    return time.monotonic() - started


def _ended(ctx: _Context, rep: RepetitionRecord, status: RepetitionStatus, reason: str | None,
           started: float) -> None:
    rep.status = status
    rep.reason, rep.ended_at = reason, utc_now()
    rep.seconds = round(time.monotonic() - started, 3)
    _record_and_report(ctx.sweep_dir, ctx.record)


def _record_and_report(sweep_dir: SweepDir, record: SweepRecord) -> None:
    """sweep.json, then sweep.md and sweep.html rebuilt from it (a sweep in progress included)."""
    sweep_dir.write(record)
    write_sweep_reports(sweep_dir.path)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _interrupted(ctx: _Context, exc: BaseException) -> RunInterrupted:
    signal_name = ("SIGTERM" if isinstance(exc, Terminated) or getattr(exc, "exit_code", 0) == 143
                   else "SIGINT")
    left = len(remaining(ctx.record))
    detail = f": {exc}" if isinstance(exc, RunInterrupted) else ""
    return RunInterrupted(f"sweep interrupted ({signal_name}){detail}\n{ended_count(ctx.record)} of "
                          f"{len(ctx.record.run_order)} repetition(s) ended; `labctl sweep --resume "
                          f"{ctx.sweep_dir.path}` runs the other {left}", signal_name)


def worst_status(record: SweepRecord) -> str:
    """The worst repetition status, as a series of runs judges it: error, invalid, failed,
    inconclusive, passed (interrupted or pending counts as error)."""
    order = ("error", "invalid", "failed", "inconclusive", "passed")
    statuses = {r.status for c in record.cells for r in c.repetitions}
    return next((s for s in order if s in statuses or (s == "error" and statuses - set(order))), "passed")
