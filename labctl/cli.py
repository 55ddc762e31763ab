"""Command line (the edge): parse arguments, call the runner, print results.

The only place that turns LabctlError into a message and an exit code: 2 for invalid input,
3 for a run whose DUT checks failed, 5 for an inconclusive run (the DUT checks passed, the
load generator fell short of what was asked), 6 for an invalid run (the drift watchdog saw the
tuning change during the load window: irqbalance, a link flap, another tool; whatever its
checks said), 4 when another labctl holds the lab's lock, 1
for anything else that went wrong on purpose, 130 for Ctrl-C and 143 for SIGTERM (after the
hosts were restored).

The global options (-i, --runs-dir, -q) are accepted before the verb and after it. ``--json``
(status, run, sweep, collect, compare, image show) prints one JSON document on stdout, built by one
small function per verb from the same data as the human output; messages go to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl import __version__
from labctl.errors import (
    ExpectationsFailed,
    LabctlError,
    Problem,
    RunInconclusive,
    RunInvalid,
    Terminated,
    ValidationError,
)

if TYPE_CHECKING:
    from labctl.input.model import Inventory
    from labctl.labs.image import ImageInfo
    from labctl.plan.generator import Ceiling
    from labctl.runfiles.models import Summary
    from labctl.runfiles.sweep import SweepRecord
    from labctl.runner import Comparison, RunOutcome
    from labctl.terminal import TerminalLive

DEFAULT_INVENTORY = Path("inventory.yaml")
MAX_CELLS = 1000            # labctl.input.matrix.MAX_CELLS (not imported: `labctl --help` stays fast)
JSON_HELP = "print the result as one JSON document on stdout (messages go to stderr)"
COMPLETION_SHELLS = ("bash", "zsh", "tcsh")


def make_progress(quiet: bool = False) -> Callable[[str], None]:
    started = time.monotonic()

    def progress(message: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)
    return progress


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labctl", description=(
        "Declarative, repeatable Linux receive-path tuning experiments (RSS, IRQ affinity, RPS, "
        "softirqs) on a lab of hosts driven over SSH."), epilog=(
        "The options -i, --runs-dir and -q go before the command or after it."))
    parser.add_argument("--version", action="version", version=f"labctl {__version__}")
    add_global_options(parser, with_defaults=True)
    parser.set_defaults(json=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("up", help="create/start the lab described by the inventory")
    sub.add_parser("down", help="remove exactly what `up` created")
    status = sub.add_parser("status", help="show the lab and each host")
    status.add_argument("--json", action="store_true", help=JSON_HELP)
    prepare = sub.add_parser("prepare", help=(
        "bring hosts to the inventory's `prepare:` state (irqbalance, tuned, isolated CPUs; "
        "reboots only when needed); `run` does this by itself"))
    prepare.add_argument("--dry-run", action="store_true", help="print what would change")
    sub.add_parser("unprepare", help="put back each prepared host's original tuned profile, "
                   "variables file and irqbalance state (reboots if isolated CPUs change)")
    run = sub.add_parser("run", help="tune, drive load, snapshot, check expectations; several "
                         "scenarios run one after the other, each to its end, then a table")
    run.add_argument("scenarios", type=Path, nargs="+", metavar="scenario")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan (literal commands included) and change nothing")
    run.add_argument("--json", action="store_true", help=JSON_HELP + (
        ": the run directory and summary of one scenario; of several, the outcome and a list "
        "of those; with --dry-run, a list of the plans"))
    sweep = sub.add_parser("sweep", help=(
        "run a scenario's matrix: every cell x repetition an ordinary run (validated and planned "
        "first, restored after each), then a table; resumable"))
    sweep.add_argument("scenario", type=Path, nargs="?", help=(
        "the sweep scenario (with --resume: optional, must be the one the sweep started with)"))
    sweep.add_argument("--resume", type=Path, metavar="DIR",
                       help="run the repetitions of sweep directory DIR that did not end")
    sweep.add_argument("--dry-run", action="store_true", help=(
        "show the cells, each one's plan in brief and the run order; change nothing"))
    sweep.add_argument("--allow-large", action="store_true",
                       help=f"allow a matrix of more than {MAX_CELLS} cells")
    sweep.add_argument("--json", action="store_true", help=JSON_HELP + (
        ": the sweep directory, its outcome and its record (sweep.json)"))
    calibrate = sub.add_parser("calibrate", help=(
        "measure what the load generator can send in each scenario's mode (or the blog's: UDP, "
        "a new socket per message, 64 B, 4 workers) and record it in the lab state"))
    calibrate.add_argument("scenarios", nargs="*", type=Path)
    calibrate.add_argument("--seconds", type=float, default=5.0,
                           help="seconds of sending per mode (default 5)")
    restore = sub.add_parser("restore", help="put back what a run left changed on a host that "
                             "was unreachable when it ended (from the run's journal)")
    restore.add_argument("run", help="run directory or id")
    collect = sub.add_parser("collect", help="rebuild a run's summary and report from raw files, "
                             "or a sweep's sweep.md and sweep.html")
    collect.add_argument("run", nargs="?", help="run directory or id (default: the newest), or "
                         "a sweep directory")
    collect.add_argument("--json", action="store_true",
                         help=JSON_HELP + ": the run directory and its rebuilt summary")
    export = sub.add_parser("export", help=(
        "the per-second series of runs as one long table (run, scenario, host, metric, cpu, "
        "queue, time, value) that pandas reads as is"))
    export.add_argument("runs", nargs="+", metavar="RUN", help="run directory or id")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv",
                        help="csv (default) or parquet (needs pyarrow: labctl[parquet])")
    export.add_argument("-o", "--output", type=Path, help="the file to write (CSV: default stdout)")
    comp = sub.add_parser("compare", help="runs side by side, like with like (rates, costs per "
                          "1,000 packets, shares): two with per-CPU deltas and differential "
                          "flamegraphs, or more, or a sweep's cells (terminal + compare.html)")
    comp.add_argument("runs", nargs="+", metavar="RUN",
                      help="run directories or ids (the first is the baseline), or one sweep "
                      "directory")
    comp.add_argument("--json", action="store_true",
                      help=JSON_HELP + ": the comparison's data and the path of compare.html")
    schema = sub.add_parser("schema", help="print the JSON Schema of the input files, or of a "
                            "run's files (run: manifest, steps and journal; summary)")
    schema.add_argument("which", nargs="?", choices=["inventory", "scenario", "sweep", "run", "summary"])
    image = sub.add_parser("image", help="the libvirt lab's guest image")
    image_sub = image.add_subparsers(dest="image_command", required=True, metavar="ACTION")
    build = image_sub.add_parser("build", help="build the Debian 12 guest image (cached)")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    show = image_sub.add_parser("show", help="show the cached image and its manifest")
    show.add_argument("--json", action="store_true", help=JSON_HELP)
    watch = sub.add_parser("watch", help=(
        "the live per-CPU view of a lab host (default: the DUT) from /proc, without running a "
        "scenario and without changing anything; Ctrl-C ends it"))
    watch.add_argument("host", nargs="?", help="the lab host to watch (default: the DUT)")
    watch.add_argument("--interval", type=float, default=1.0,
                       help="seconds between views (default 1, at least 0.1)")
    watch.add_argument("--count", type=int, help="stop after COUNT views")
    validate = sub.add_parser("validate", help="validate the inventory and scenarios, touch nothing")
    validate.add_argument("scenarios", nargs="*", type=Path)
    completion = sub.add_parser("completion", help=(
        "print the shell completion script: eval \"$(labctl completion bash)\" in ~/.bashrc"))
    completion.add_argument("shell", choices=COMPLETION_SHELLS)
    for verb_parser in [*sub.choices.values(), *image_sub.choices.values()]:
        add_global_options(verb_parser, with_defaults=False)
    return parser


def add_global_options(parser: argparse.ArgumentParser, with_defaults: bool) -> None:
    """The options every verb takes. The top level holds the defaults; a verb's parser leaves
    an option it was not given unset (SUPPRESS), so it never hides one given before the verb."""
    def default(value: object) -> object:
        return value if with_defaults else argparse.SUPPRESS
    parser.add_argument("-i", "--inventory", type=Path, default=default(DEFAULT_INVENTORY),
                        help="lab inventory (default: ./inventory.yaml)")
    parser.add_argument("--runs-dir", type=Path, default=default(Path("runs")),
                        help="where run directories go (default: ./runs)")
    parser.add_argument("-q", "--quiet", action="store_true", default=default(False),
                        help="no progress messages")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress = make_progress(args.quiet)
    with _sigterm_raises():
        return _dispatch(args, progress)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Terminated (a KeyboardInterrupt) in the main thread, so a run restores
    its hosts before it exits, as it does on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    try:
        return COMMANDS[args.command](args, progress)
    except (ExpectationsFailed, RunInconclusive, RunInvalid) as exc:
        _print_failed_outcome(args, exc.outcome)
        print(f"labctl: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValidationError as exc:
        count = len(exc.problems)
        print(f"labctl: invalid input ({count} problem{'s' if count != 1 else ''}); nothing was "
              "changed on any host:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return exc.exit_code
    except LabctlError as exc:
        print(f"labctl: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("labctl: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("labctl: interrupted", file=sys.stderr)
        return 130


def _print_failed_outcome(args: argparse.Namespace, outcome: object) -> None:
    """A run that ended failed or inconclusive still has its report (or its JSON)."""
    from labctl.runner import RunOutcome
    if args.json:
        if isinstance(outcome, RunOutcome):
            print_json(run_json(outcome))
        return
    report = getattr(outcome, "report", None)
    if report:
        print(report)


def print_json(document: object) -> None:
    print(json.dumps(document, indent=2, default=str))


def status_json(inventory: Inventory, status: dict[str, str], ceilings: list[Ceiling]
                ) -> dict[str, Any]:
    """`status --json`: the lab, whether it is up, each host's state, the recorded ceilings."""
    return {"lab": inventory.lab, "provider": inventory.provider, "up": bool(status),
            "hosts": {host: {"role": inventory.hosts[host].role, "status": text}
                      for host, text in status.items()},
            "generator_ceilings": [ceiling.to_json() for ceiling in ceilings]}


def run_json(outcome: RunOutcome) -> dict[str, Any]:
    """`run --json` of one scenario and `collect --json`: the run directory and its summary."""
    return {"run_dir": str(outcome.run_dir), "summary": outcome.summary.model_dump(mode="json")}


def series_json(records: list[dict[str, Any]], worst: str) -> dict[str, Any]:
    """`run --json` of several scenarios: the worst outcome, then one record per scenario."""
    return {"outcome": worst, "runs": records}


def compare_json(result: Comparison) -> dict[str, Any]:
    """`compare --json`: the comparison's data (as compare.html shows it) and where that is."""
    return {"html": str(result.html_path), "comparison": dataclasses.asdict(result.data)}


def image_json(info: ImageInfo) -> dict[str, Any]:
    """`image show --json`: the cached image, its key and its manifest."""
    return {"path": str(info.path), "key": info.key, "manifest_path": str(info.manifest_path),
            "manifest": info.manifest}


def cmd_up(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.runner import lab_up
    state = lab_up(args.inventory, progress)
    print(f"lab {state.lab} is up ({state.provider}): " + ", ".join(
        f"{h} ssh {t.user}@{t.address}:{t.port}" + (f" in netns {t.netns}" if t.netns else "")
        + (f" (root with {t.become})" if t.become else "")
        + (f" via jump host {t.jump.user}@{t.jump.address}:{t.jump.port}" if t.jump else "")
        for h, t in state.targets.items()))
    return 0


def cmd_down(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.runner import lab_down
    removed = lab_down(args.inventory, progress)
    print("lab removed" if removed else "nothing to remove: the lab is not up")
    return 0


def cmd_status(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.runner import lab_ceilings, lab_status
    inventory, status = lab_status(args.inventory)
    if args.json:
        print_json(status_json(inventory, status, lab_ceilings(args.inventory) if status else []))
        return 0
    if not status:
        print(f"lab {inventory.lab} ({inventory.provider}): down")
        return 0
    print(f"lab {inventory.lab} ({inventory.provider}): up")
    for host, text in status.items():
        print(f"  {host:10s} {inventory.hosts[host].role:8s} {text}")
    for ceiling in lab_ceilings(args.inventory):
        print(f"  generator ceiling {ceiling.rate:.0f} msg/s ({ceiling.description}; {ceiling.measured_at})")
    return 0


def cmd_prepare(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.runner import lab_prepare
    result = lab_prepare(args.inventory, progress, describe_only=args.dry_run)
    if isinstance(result, list):
        print("\n".join(result) if result else "no host has a `prepare:` section")
        return 0
    if not result:
        print("no host has a `prepare:` section in the inventory")
    for host, record in result.items():
        verified = record.get("verified", {})
        print(f"{host}: prepared — tuned {verified.get('tuned_profile') or 'off'}, irqbalance "
              f"{verified.get('irqbalance')}, isolated CPUs {verified.get('isolated') or 'none'}, PID 1 "
              f"on {verified.get('pid1_cpus_allowed')}, default IRQ affinity "
              f"{verified.get('default_smp_affinity')}")
        for key, change in record.get("sysctl_changes", {}).items():
            print(f"  sysctl {key}: {change['before']} -> {change['after']}")
    return 0


def cmd_unprepare(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.runner import lab_unprepare
    hosts = lab_unprepare(args.inventory, progress)
    print(f"original state back on {', '.join(hosts)}" if hosts else "no host was prepared by labctl")
    return 0


def cmd_run(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl import runner
    if args.dry_run:
        plans = [runner.dry_run(args.inventory, scenario, progress) for scenario in args.scenarios]
        if args.json:
            print_json([plan.document() for plan in plans])
        else:
            print("".join(plan.text() for plan in plans), end="")
        return 0
    if len(args.scenarios) > 1:
        return _run_series(args, progress)
    live, progress = _live_display(args, progress)
    outcome = runner.run(args.inventory, args.scenarios[0], args.runs_dir, progress, None, **live)
    if args.json:
        print_json(run_json(outcome))
        return 0
    print(outcome.report)
    print(f"run directory: {outcome.run_dir}")
    return 0


def _live_display(args: argparse.Namespace, progress: Callable[[str], None]
                  ) -> tuple[dict[str, TerminalLive], Callable[[str], None]]:
    """runner.run's `live` argument when stdout is a terminal (not with --json), and the
    progress function that then prints above the live table."""
    from labctl.terminal import TerminalLive, is_terminal
    if args.json or not is_terminal(sys.stdout):
        return {}, progress
    live = TerminalLive()
    return {"live": live}, live.wrap(progress)


def cmd_watch(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    """`labctl watch`: exit 0 after --count views or on Ctrl-C."""
    from labctl import runner
    from labctl.terminal import PipeLive, TerminalLive, is_terminal
    display = TerminalLive() if is_terminal(sys.stdout) else PipeLive()
    try:
        runner.lab_watch(args.inventory, args.host, args.interval, display.show, args.count, progress)
    except KeyboardInterrupt as exc:
        if isinstance(exc, Terminated):
            raise
    return 0


SERIES_ORDER = ("error", "invalid", "failed", "inconclusive", "passed")   # the worst decides the exit code
SERIES_EXIT = {"error": 1, "invalid": 6, "failed": 3, "inconclusive": 5, "passed": 0}
JUDGED_ERRORS = {ExpectationsFailed: "failed", RunInconclusive: "inconclusive", RunInvalid: "invalid"}


def _run_series(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    """Each scenario runs to its end whatever the others did (Ctrl-C stops the series); one
    table at the end; the exit code is the worst outcome's."""
    from labctl import runner
    runner.validate_series(args.inventory, args.scenarios)
    live, progress = _live_display(args, progress)
    rows, records = [], []
    for number, scenario in enumerate(args.scenarios, 1):
        progress(f"scenario {number}/{len(args.scenarios)}: {scenario}")
        created: list[Path] = []
        summary: Summary | None = None
        try:
            summary = runner.run(args.inventory, scenario, args.runs_dir, progress, created,
                                 **live).summary
            status, reason = "passed", ""
        except (ExpectationsFailed, RunInconclusive, RunInvalid) as exc:
            summary = getattr(exc.outcome, "summary", None)
            status, reason = JUDGED_ERRORS[type(exc)], str(exc)
        except LabctlError as exc:
            status, reason = "error", str(exc).splitlines()[0]
        print(f"labctl: {scenario}: {status}" + (f": {reason}" if reason else ""), file=sys.stderr)
        rows.append(_series_row(scenario, status, summary, created))
        records.append({"scenario": str(scenario), "outcome": status, "reason": reason or None,
                        "run_dir": str(created[0]) if created else None,
                        "summary": summary.model_dump(mode="json") if summary else None})
    worst = min((row[1] for row in rows), key=SERIES_ORDER.index)
    if args.json:
        print_json(series_json(records, worst))
    else:
        print(_series_table(rows))
    return SERIES_EXIT[worst]


def _series_row(scenario: Path, status: str, summary: Summary | None,
                created: list[Path]) -> list[str]:
    checks = summary.expectations if summary else []
    passed = f"{sum(c.passed for c in checks)}/{len(checks)}" if summary else "-"
    return [scenario.stem, status, passed, str(created[0]) if created else "-"]


def _series_table(rows: list[list[str]]) -> str:
    header = ["scenario", "outcome", "checks", "run directory"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    counts = {s: sum(r[1] == s for r in rows) for s in SERIES_ORDER}
    total = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return "\n".join(lines + [f"{len(rows)} scenario(s): {total}"])


def cmd_sweep(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    """`labctl sweep`: the exit code is the worst repetition's, as for a series of runs."""
    from labctl import sweeper
    _check_sweep_args(args)
    if args.dry_run:
        print(sweeper.sweep_dry_run(args.inventory, args.scenario, progress, args.allow_large), end="")
        return 0
    live, progress = _live_display(args, progress)
    if args.resume is not None:
        outcome = sweeper.resume_sweep(args.inventory, args.resume, args.scenario, progress, **live)
    else:
        outcome = sweeper.run_sweep(args.inventory, args.scenario, args.runs_dir, progress, args.allow_large,
                                    **live)
    worst = sweeper.worst_status(outcome.record)
    if args.json:
        print_json(sweep_json(outcome.sweep_dir, worst, outcome.record.model_dump(mode="json")))
    else:
        print(_sweep_table(outcome.record))
        print(f"sweep directory: {outcome.sweep_dir}")
        print(f"report: {outcome.sweep_dir / 'sweep.md'} (and sweep.html)")
    return SERIES_EXIT[worst]


def _check_sweep_args(args: argparse.Namespace) -> None:
    problems = []
    if args.scenario is None and args.resume is None:
        problems.append("give a sweep scenario, or --resume DIR")
    if args.dry_run and (args.json or args.resume is not None):
        problems.append("--dry-run prints the cells as text, of a new sweep (not with --json or --resume)")
    if args.resume is not None and args.allow_large:
        problems.append("--allow-large is for a new sweep; a resumed one keeps its cells")
    if problems:
        raise ValidationError([Problem("<command line>", 0, 0, "sweep", p) for p in problems])


def sweep_json(sweep_dir: Path, worst: str, record: dict[str, Any]) -> dict[str, Any]:
    """`sweep --json`: the sweep directory, the worst repetition's outcome, sweep.json."""
    return {"sweep_dir": str(sweep_dir), "outcome": worst, "sweep": record}


def _sweep_table(record: SweepRecord) -> str:
    statuses = ("passed", "failed", "inconclusive", "invalid", "error")
    header = ["cell", "values", *statuses]
    rows = [[str(c.index), c.label, *(str(sum(r.status == s for r in c.repetitions)) for s in statuses)]
            for c in record.cells]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    total = {s: sum(int(r[2 + i]) for r in rows) for i, s in enumerate(statuses)}
    return "\n".join(lines + [f"{len(rows)} cell(s) x {record.repeat} repetition(s): "
                              + ", ".join(f"{n} {s}" for s, n in total.items() if n)])


def cmd_calibrate(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.plan.generator import SAFE_SHARE
    from labctl.runner import lab_calibrate
    if not 0.5 <= args.seconds <= 600:
        raise ValidationError([Problem("<command line>", 0, 0, "--seconds",
                                       f"between 0.5 and 600 seconds, not {args.seconds:g}")])
    ceilings = lab_calibrate(args.inventory, args.scenarios, args.seconds, progress)
    print(f"{'msg/s sent':>10s} {'received':>9s}  per worker  mode")
    for c in ceilings:
        workers = "/".join(f"{w:.0f}" for w in c.worker_rates)
        print(f"{c.rate:10.0f} {c.received_rate:9.0f}  {workers:10s}  {c.description}")
    print("recorded in the lab state; `labctl run` warns when a scenario asks for more than "
          f"{SAFE_SHARE:.0%} of its mode's ceiling")
    return 0


def cmd_restore(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.runner import restore_run
    results, pending = restore_run(args.inventory, args.run, args.runs_dir, progress)
    if not results and not pending:
        print(f"nothing to restore: run {args.run} left nothing changed")
        return 0
    for result in results:
        print(f"  {result.host:10s} {result.status:8s} {result.description}")
    if pending:
        print(f"still pending on {', '.join(pending)}: run `labctl restore {args.run}` again "
              "when the host answers", file=sys.stderr)
        return 1
    failed = [r for r in results if r.status != "ok"]
    print(f"restored: {len(results) - len(failed)} of {len(results)} step(s)")
    return 1 if failed else 0


def cmd_collect(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.runner import collect, collect_sweep, find_sweep
    sweep = find_sweep(args.runs_dir, args.run)
    if sweep is not None:
        reports = collect_sweep(sweep)
        if args.json:
            print_json({"sweep_dir": str(sweep), "markdown": str(reports.markdown),
                        "html": str(reports.html)})
            return 0
        print(reports.text)
        print(f"rebuilt {reports.markdown} and {reports.html}")
        return 0
    outcome = collect(args.run, args.runs_dir)
    if args.json:
        print_json(run_json(outcome))
        return 0
    print(outcome.report)
    print(f"rebuilt {outcome.run_dir}/summary.json, report.md and report.html")
    return 0


def cmd_export(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.runner import export_series
    rows = export_series(args.runs, args.runs_dir, args.format, args.output)
    if args.output is not None:
        progress(f"wrote {rows} rows to {args.output}")
    return 0


def cmd_compare(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.runner import compare_any
    result = compare_any(args.runs, args.runs_dir)
    if args.json:
        print_json(compare_json(result))
        return 0
    print(result.text)
    print(f"compare.html: {result.html_path}")
    return 0


def cmd_schema(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.input.model import Inventory, Scenario
    if args.which in ("run", "summary"):
        return print_run_file_schema(args.which)
    from labctl.input.matrix import sweep_json_schema
    schemas = {"inventory": Inventory.model_json_schema(), "scenario": Scenario.model_json_schema(),
               "sweep": sweep_json_schema()}
    print(json.dumps(schemas[args.which] if args.which else schemas, indent=2))
    return 0


def print_run_file_schema(which: str) -> int:
    """`labctl schema run`: manifest.json, steps.json and restore.json in one JSON Schema
    document (an object keyed by file name); `labctl schema summary`: summary.json's."""
    from labctl.runfiles.models import run_schema, summary_schema
    print(json.dumps(run_schema() if which == "run" else summary_schema(), indent=2))
    return 0


def cmd_validate(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.runner import validate_series
    validate_series(args.inventory, args.scenarios, sweeps=True)
    print(f"ok: {args.inventory}" + "".join(f", {p}" for p in args.scenarios))
    return 0


def cmd_image(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from labctl.labs import image
    if args.image_command == "build":
        info = image.build_image(progress=progress, force=args.force)
    else:
        found = image.find_image()
        if found is None:
            print("no guest image yet: `labctl image build` makes one",
                  file=sys.stderr if args.json else sys.stdout)
            return 1
        info = found
    if args.json:
        print_json(image_json(info))
        return 0
    manifest = info.manifest
    size = int(str(manifest.get("image_bytes", 0))) / 2**20
    print(f"{info.path}\n  key {info.key}, kernel {manifest.get('kernel')}, {size:.0f} MiB, "
          f"built {manifest.get('built_at')} in {manifest.get('build_seconds')} s")
    return 0


def cmd_completion(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    """The completion script (shtab: static, so a TAB costs no Python start); a path
    argument completes file names."""
    import shtab
    parser = build_parser()
    for action in _all_actions(parser):
        if action.type is Path:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
    print(shtab.complete(parser, shell=args.shell), end="")
    return 0


def _all_actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for verb_parser in action.choices.values():
                yield from _all_actions(verb_parser)


COMMANDS = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "run": cmd_run,
            "prepare": cmd_prepare, "unprepare": cmd_unprepare, "compare": cmd_compare,
            "collect": cmd_collect, "restore": cmd_restore, "calibrate": cmd_calibrate,
            "schema": cmd_schema, "validate": cmd_validate, "image": cmd_image,
            "completion": cmd_completion, "sweep": cmd_sweep, "export": cmd_export,
            "watch": cmd_watch}


if __name__ == "__main__":
    sys.exit(main())
