"""The neighbour check: the process listing's parser on a real capture (a name with spaces and
parentheses, kernel threads), who counts as the run's own (started PIDs and their children;
labctl itself on a shared kernel, not its children), the share of a CPU against /proc/stat's
ticks, a reused PID, and the verdict rule (a failed run with a neighbour is inconclusive, the
rest stands) as the reports say it."""

from __future__ import annotations

import dataclasses

from labctl.analysis.expectations import Verdict
from labctl.analysis.neighbours import (
    NEIGHBOUR_SHARE,
    HostProcesses,
    elapsed_ticks,
    find_neighbours,
    host_processes,
    neighbours_record,
    spoiled,
    started_pids,
)
from labctl.host.probes import parse_proc_stat, parse_process_stats
from labctl.reports.html import render_html
from labctl.reports.markdown import render_markdown
from labctl.runfiles.models import StepRecord, Summary, VerdictRecord
from tests.helpers import fixture

HOG, HOG_PARENT, SLEEPER, SLEEPERS_CHILD = 10907, 10866, 10908, 10909


def captured(own: frozenset[int] = frozenset(), controller: int | None = None) -> HostProcesses:
    def read(name: str, phase: str) -> str:
        return fixture(f"processes/host-6.18-{name}.{phase}.txt")
    side = host_processes(read, {"cpus_online": "0-1"}, own, controller)
    assert isinstance(side, HostProcesses), side
    return side


def test_the_listing_parses_names_with_spaces_and_parentheses_and_kernel_threads() -> None:
    listing = parse_process_stats(fixture("processes/host-6.18-processes.after.txt"))
    assert len(listing) == 84
    hog = listing[HOG]
    assert (hog.comm, hog.ppid, hog.kernel_thread, hog.last_cpu) == ("hog) (x y", HOG_PARENT, False, 1)
    assert listing[2].comm == "kthreadd" and listing[2].kernel_thread
    assert sum(p.kernel_thread for p in listing.values()) == 61
    assert listing[SLEEPERS_CHILD].ppid == SLEEPER
    cut = "123 (half a line) R 1 2"                     # a process that ended while it was read
    assert parse_process_stats(cut + "\n" + fixture("processes/host-6.18-processes.after.txt")).keys() == listing.keys()


def test_the_interval_is_the_growth_of_a_cpus_ticks() -> None:
    before = parse_proc_stat(fixture("processes/host-6.18-stat.before.txt"))
    after = parse_proc_stat(fixture("processes/host-6.18-stat.after.txt"))
    assert elapsed_ticks(before, after) == 202                         # two seconds at USER_HZ 100
    assert elapsed_ticks(before, {}) == 0


def test_busy_processes_outside_the_run_are_neighbours_busiest_first() -> None:
    side = captured()
    found = find_neighbours(side)
    by_pid = {n.pid: n for n in found}
    hog = by_pid[HOG]
    used = side.after[HOG].ticks - side.before[HOG].ticks
    assert (hog.name, hog.share, hog.cpu_seconds, hog.last_cpu) == ("hog) (x y", round(used / 202, 3), used / 100, 1)
    assert all(n.share >= NEIGHBOUR_SHARE for n in found)
    assert [n.share for n in found] == sorted((n.share for n in found), reverse=True)
    assert not any(side.after[n.pid].kernel_thread for n in found)
    everyone = find_neighbours(side, threshold=0.0)
    assert SLEEPERS_CHILD in {n.pid for n in everyone} and len(everyone) > len(found)


def test_the_runs_processes_and_their_children_are_not_neighbours() -> None:
    assert HOG not in {n.pid for n in find_neighbours(captured(own=frozenset({HOG_PARENT})), threshold=0.0)}
    pids = {n.pid for n in find_neighbours(captured(own=frozenset({SLEEPER})), threshold=0.0)}
    assert SLEEPER not in pids and SLEEPERS_CHILD not in pids and HOG in pids
    # labctl itself on a shared kernel: left out, but not what it started (a CPU hog of a test)
    pids = {n.pid for n in find_neighbours(captured(controller=HOG_PARENT), threshold=0.0)}
    assert HOG_PARENT not in pids and HOG in pids


def test_a_reused_pid_counts_all_of_the_new_process() -> None:
    side = captured()
    reused = dataclasses.replace(side.before[HOG], started=1, ticks=10**6)
    (hog,) = [n for n in find_neighbours(dataclasses.replace(side, before={**side.before, HOG: reused}),
                                         threshold=0.0) if n.pid == HOG]
    assert hog.cpu_seconds == side.after[HOG].ticks / 100


def test_started_pids_of_a_host_or_of_every_host() -> None:
    steps = [StepRecord(index=1, host="dut", kind="start", description="server", status="ok", observed="700"),
             StepRecord(index=2, host="loadgen", kind="start", description="client", status="ok", observed="900"),
             StepRecord(index=3, host="dut", kind="start", description="failed start", status="failed"),
             StepRecord(index=4, host="dut", kind="change", description="x", status="ok", observed="5")]
    assert started_pids(steps, ["dut"]) == {700}
    assert started_pids(steps, ["dut", "loadgen"]) == {700, 900}


def test_hosts_without_the_snapshots_are_named() -> None:
    assert host_processes(lambda name, phase: None, {}, frozenset()).startswith(  # type: ignore[union-attr]
        "no processes.before, processes.after, stat.before, stat.after snapshot")
    record = neighbours_record({"dut": "no processes.before snapshot", "lg": captured()})
    assert record is not None and record.unchecked == {"dut": "no processes.before snapshot"}
    assert record.checked == {"lg": 84} and HOG in {n.pid for n in record.found["lg"]}
    assert neighbours_record({}) is None


def test_a_failed_run_with_a_neighbour_is_inconclusive_and_nothing_else_changes() -> None:
    record = neighbours_record({"dut": captured()})
    failed = Verdict("failed", "1 of 5 DUT check(s) failed")
    judged = spoiled(failed, record)
    assert judged.status == "inconclusive"
    assert "not counted as the DUT's result: dut: PID " in judged.reason
    assert judged.reason.endswith("(the checks alone said: 1 of 5 DUT check(s) failed)")
    for other in ("passed", "inconclusive"):
        assert spoiled(Verdict(other, "why"), record) == Verdict(other, "why")
    quiet = neighbours_record({"dut": captured(own=frozenset(captured().after))})   # all the run's own
    assert quiet is not None and not quiet.found and spoiled(failed, quiet) == failed
    assert spoiled(failed, None) == failed


def test_the_reports_name_the_neighbours() -> None:
    record = neighbours_record({"dut": captured()})
    assert record is not None
    summary = Summary(run_id="r", neighbours=record,
                      verdict=VerdictRecord(status="inconclusive", reason="a neighbour shared the host"))
    text = render_markdown(summary)
    assert "## Neighbours" in text and "outside the run used 25% of a CPU or more" in text
    assert "3 process(es) outside the run used 25% of a CPU or more between the snapshots (dut: 84 " in text
    assert "| dut  | 10907 | hog) (x y       |  0.65 |      32% |        1 |" in text
    odd = record.model_copy(deep=True)
    odd.found["dut"][0].name = "a|b\x1b[2J"
    assert "| a\\|b\\x1b[2J " in render_markdown(Summary(run_id="r", neighbours=odd))
    html = render_html(summary)
    assert 'id="neighbours"' in html and "hog) (x y" in html
    quiet = Summary(run_id="r", neighbours=neighbours_record({"dut": captured(own=frozenset(captured().after))}))
    assert "No process outside the run used 25% of a CPU or more between the snapshots (dut: 84 processes" \
        in render_markdown(quiet)
