"""Integration: `labctl sweep` on the real netns lab (real sshd, real namespaces).

A 2-cell x 2-repetition sweep of 1-second windows runs end to end, each run restored; then a
sweep interrupted by SIGINT (sent to the `labctl sweep` process this test started) during its
second repetition leaves the hosts as they were and sweep.json consistent, and `--resume` runs
exactly the repetitions that did not end; a sweep killed with SIGKILL is resumed only once
`labctl restore` put back what its run left. Traffic stays inside the lab's namespaces; the
lab is removed at the end, also on failure.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.labs import Lab, netns_lab
from tests.helpers.namespaces import in_ns
from tests.helpers.processes import kill_if_running, processes_mentioning

pytestmark = pytest.mark.integration

SWEEP = """\
tuning:
  dut:
    channels: {rx: 4, tx: 4}
load:
  server: {cpus: 1}
  client: {rate: 5000, duration: DURATION, cpus: 0}
expect:
  - {check: loss, max: 0.05}
matrix:
  tuning.dut.rps.all: [none, 1]
repeat: 2
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from netns_lab(tmp_path, "sw")


def host_state(lab: Lab) -> dict[str, dict[str, str]]:
    """Each host's RX queues and their RPS masks (what a sweep's cells change)."""
    state = {}
    for host in ("dut", "loadgen"):
        queues = sorted(q for q in in_ns(lab.ns(host), "ls", "/sys/class/net/eth1/queues").split()
                        if q.startswith("rx-"))
        state[host] = {q: in_ns(lab.ns(host), "cat", f"/sys/class/net/eth1/queues/{q}/rps_cpus").strip()
                       for q in queues}
    return state


def sweep_record(directory: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((directory / "sweep.json").read_text())
    return record


def repetitions(record: dict[str, Any]) -> dict[tuple[int, int], dict[str, Any]]:
    return {(c["index"], r["repetition"]): r for c in record["cells"] for r in c["repetitions"]}


def test_sweep_runs_every_cell_and_restores(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert lab.labctl("up") == 0
    scenario = lab.dir / "sweep.yaml"
    scenario.write_text(SWEEP.replace("DURATION", "1"))
    before = host_state(lab)

    capsys.readouterr()
    assert lab.labctl("sweep", "--dry-run", str(scenario)) == 0
    dry = capsys.readouterr().out
    assert "2 cell(s) x 2 repetition(s) = 4 run(s), order sequential" in dry
    assert "1. rps.all=none:" in dry and "2. rps.all=1:" in dry
    assert "run order (cell/repetition): 1/1 2/1 1/2 2/2" in dry
    assert not lab.runs.exists() or not list(lab.runs.iterdir()), "a dry run makes no directory"

    assert lab.labctl("sweep", str(scenario)) == 0
    out = capsys.readouterr().out
    (sweep_dir,) = lab.runs.iterdir()
    assert f"sweep directory: {sweep_dir}" in out and re.search(r"\n2 +rps\.all=1 +2 +0 +0 +0 +0\n", out), out
    record = sweep_record(sweep_dir)
    assert record["status"] == "completed" and record["run_order"] == [[1, 1], [2, 1], [1, 2], [2, 2]]
    assert (sweep_dir / "scenario.yaml").read_text() == scenario.read_text()
    runs = set()
    for rep in repetitions(record).values():
        assert rep["status"] == "passed" and rep["seconds"] > 1.0
        run = sweep_dir / rep["run_dir"]
        runs.add(run)
        summary = json.loads((run / "summary.json").read_text())
        assert all(r["status"] == "ok" for r in summary["restore"]), summary["restore"]
    assert runs == set((sweep_dir / "runs").iterdir())
    masks = {json.loads((run / "manifest.json").read_text())["scenario"]["model"]["tuning"]["dut"]["rps"]["all"]
             for run in runs}
    assert masks == {"none", "1"}, "each cell ran with its own value"
    assert host_state(lab) == before
    report = (sweep_dir / "sweep.md").read_text()     # written after each repetition, by the engine
    assert "| tuning.dut.rps.all |" in report and "4 of 4 repetitions ended (passed 4)" in report
    assert "NET_RX share CPU1" in report and "<svg" in (sweep_dir / "sweep.html").read_text()
    assert f"report: {sweep_dir / 'sweep.md'}" in out


@pytest.mark.parametrize(("signal_number", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_sweep_resumes_what_is_missing(lab: Lab, capsys: pytest.CaptureFixture[str],
                                                   signal_number: signal.Signals, exit_code: int) -> None:
    """Ctrl-C or a SIGTERM (a CI job cancelled, `kill`) inside a repetition's load window: the
    hosts are restored, the repetition is recorded interrupted, and --resume runs the rest."""
    assert lab.labctl("up") == 0
    scenario = lab.dir / "sweep.yaml"
    scenario.write_text(SWEEP.replace("DURATION", "3"))
    before = host_state(lab)
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "-i", str(lab.inventory), "--runs-dir", str(lab.runs),
         "sweep", str(scenario)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=lab.dir)
    try:
        seen = _until(proc, "cell 2/2 (rps.all=1), repetition 1/2", "start the client", timeout=90)
        time.sleep(1.0)                       # inside the second repetition's load window
        assert int(in_ns(lab.ns("dut"), "cat", "/sys/class/net/eth1/queues/rx-0/rps_cpus"), 16) == 2, seen
        proc.send_signal(signal_number)
        _, err = proc.communicate(timeout=60)
    finally:
        kill_if_running(proc)
    assert proc.returncode == exit_code, err
    assert f"sweep interrupted ({signal_number.name})" in err and "Traceback" not in err
    assert host_state(lab) == before
    (sweep_dir,) = lab.runs.iterdir()
    assert f"labctl sweep --resume {sweep_dir}" in err
    record = sweep_record(sweep_dir)
    reps = repetitions(record)
    assert record["status"] == "interrupted"
    assert "interrupted" in (sweep_dir / "sweep.md").read_text(), "the reports show a sweep in progress"
    assert reps[1, 1]["status"] == "passed"
    assert reps[2, 1]["status"] == "interrupted" and reps[2, 1]["run_dir"]
    assert reps[1, 2]["status"] == reps[2, 2]["status"] == "pending"
    interrupted_run = reps[2, 1]["run_dir"]
    steps = json.loads((sweep_dir / interrupted_run / "steps.json").read_text())
    assert steps["interrupted"] and all(r["status"] == "ok" for r in steps["restore"])
    assert not processes_mentioning(f"/tmp/labctl-{Path(interrupted_run).name}")

    capsys.readouterr()
    assert lab.labctl("sweep", "--resume", str(sweep_dir)) == 0
    err = capsys.readouterr().err
    resumed = sweep_record(sweep_dir)
    after = repetitions(resumed)
    assert resumed["status"] == "completed"
    assert all(rep["status"] == "passed" for rep in after.values())
    assert after[1, 1] == reps[1, 1], "an ended repetition is not run again"
    assert after[2, 1]["earlier_runs"] == [interrupted_run] and after[2, 1]["run_dir"] != interrupted_run
    assert len(list((sweep_dir / "runs").iterdir())) == 5, "4 repetitions + the interrupted attempt"
    assert host_state(lab) == before
    assert lab.labctl("sweep", "--resume", str(sweep_dir)) == 1
    assert "is completed" in capsys.readouterr().err


def test_killed_sweep_resumes_after_restore(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL (no restore can run): the resume is refused until `labctl restore` put the
    hosts back from the killed run's journal, then runs that repetition again."""
    assert lab.labctl("up") == 0
    scenario = lab.dir / "killed.yaml"
    scenario.write_text(SWEEP.replace("DURATION", "3").replace("[none, 1]", "[1]"))
    before = host_state(lab)
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "-i", str(lab.inventory), "--runs-dir", str(lab.runs),
         "sweep", str(scenario)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=lab.dir)
    try:
        _until(proc, "cell 1/1 (rps.all=1), repetition 1/2", "start the client", timeout=90)
        time.sleep(0.5)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        kill_if_running(proc)
    assert host_state(lab) != before, "killed in the load window: RPS still on"
    (sweep_dir,) = lab.runs.iterdir()
    killed = repetitions(sweep_record(sweep_dir))[1, 1]
    assert killed["status"] == "pending" and killed["run_dir"] and killed["started_at"]

    capsys.readouterr()
    assert lab.labctl("sweep", "--resume", str(sweep_dir)) == 1
    err = capsys.readouterr().err
    assert f"run {killed['run_dir']} of this sweep did not restore dut" in err
    assert f"`labctl restore {sweep_dir / killed['run_dir']}` first" in err
    assert lab.labctl("restore", str(sweep_dir / killed["run_dir"])) == 0
    assert host_state(lab) == before
    assert lab.labctl("sweep", "--resume", str(sweep_dir)) == 0
    after = repetitions(sweep_record(sweep_dir))
    assert [r["status"] for r in after.values()] == ["passed", "passed"]
    assert after[1, 1]["earlier_runs"] == [killed["run_dir"]]
    assert host_state(lab) == before


def _until(proc: subprocess.Popen[str], *needles: str, timeout: float) -> str:
    """The process's stderr until each needle was seen, one after the other."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen, since = "", 0
    for needle in needles:
        while needle not in seen[since:]:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"never saw {needle!r}:\n{seen}")
            seen += proc.stderr.readline()
        since = seen.index(needle, since)
    return seen
