"""Fault injection on the netns lab: a fault at every phase of a run, then proof that the hosts
are exactly as they were, no labctl process is left on them, and the run directory says where
and why the run stopped.

labctl runs as a real process (`python -m labctl.cli`) and pauses at a named checkpoint
(labctl.execution.failpoints: facts, tuning, load-start, load-window, snapshot, restore); the test
injects the fault there — SIGINT, SIGTERM, the SSH sessions dropped (their sshd processes
killed), the loadgen server or client killed on the host — and lets it go on. A failing
tuning command is the real command followed by `exit 97` on the host. Also: a host that stays
unreachable (its loopback down) and `labctl restore RUN` later; labctl killed with SIGKILL,
its stale lock and the restore from the journal; the lab lock against a second command;
`down` after a killed `up`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import cli
from labctl.local.procs import pid_alive
from tests.helpers import assert_no_secrets
from tests.helpers.labs import Lab, lab_name, write_netns_inventory
from tests.helpers.namespaces import in_ns, processes_in
from tests.helpers.processes import kill_if_running, parent_of, pids, wait_for_file

pytestmark = pytest.mark.integration
CHECKPOINTS = ("facts", "tuning", "load-start", "load-window", "snapshot", "restore")
FAULT_SCENARIO = {
    "description": "fault injection: channels, RPS on both hosts, load, perf",
    "tuning": {"dut": {"channels": {"rx": 2, "tx": 2}, "rps": {"all": 1}},
               "loadgen": {"channels": {"rx": 2, "tx": 2}, "rps": {"all": 1}}},
    "load": {"server": {"cpus": 1}, "client": {"rate": 2000, "duration": 3, "cpus": 0}},
    "profile": {"host": "dut", "cpus": "0-1", "frequency": 99},
}
# (fault, checkpoint) pairs: every fault where the phase has what it needs (a running server,
# a running client, a tuning command)
CASES = ([(fault, cp) for fault in ("sigint", "sigterm", "ssh-drop") for cp in CHECKPOINTS]
         + [("kill-server", cp) for cp in ("load-start", "load-window", "snapshot")]
         + [("kill-client", "load-window"), ("fail-command", "tuning"), ("fail-command", "load-start")])
EXIT_CODES = {"sigint": 130, "sigterm": 143}
RESULTS: list[dict[str, Any]] = []


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str
    run: Path | None


class FaultLab(Lab):
    """The netns lab, with what the fault tests look at on its hosts."""

    def hosts_state(self) -> dict[str, Any]:
        """Channels and rps_cpus of each host's interface, and every IRQ's affinity."""
        hosts = {}
        for host in ("dut", "loadgen"):
            ns = self.ns(host)
            queues = sorted(in_ns(ns, "ls", "/sys/class/net/eth1/queues").split())
            hosts[host] = {
                "channels": in_ns(ns, "ethtool", "-l", "eth1").split("Current hardware settings:")[1],
                "rps": {q: in_ns(ns, "cat", f"/sys/class/net/eth1/queues/{q}/rps_cpus").strip()
                        for q in queues if q.startswith("rx-")},
            }
        irqs = {p.parent.name: p.read_text().strip() for p in Path("/proc/irq").glob("*/smp_affinity_list")}
        return {"hosts": hosts, "irqs": irqs}

    def sessions(self) -> list[int]:
        """sshd's per-connection processes (children of the lab's listeners)."""
        listeners = set(self.sshd_pids().values())
        return [pid for pid in pids() if parent_of(pid) in listeners]

    def drop_ssh(self) -> int:
        sessions = self.sessions()
        for pid in sessions:
            os.kill(pid, signal.SIGKILL)
        return len(sessions)

    def stray_processes(self) -> list[str]:
        """Processes in the lab's namespaces other than its sshd listeners (sessions that are
        still closing get 5 s to go)."""
        listeners = set(self.sshd_pids().values())
        deadline = time.monotonic() + 5
        while True:
            stray = [f"{pid} {line}" for pid, line in processes_in(self.namespaces).items()
                     if pid not in listeners]
            if not stray or time.monotonic() > deadline:
                return stray
            time.sleep(0.1)

    def start_run(self, scenario: Path, runs: Path, failpoint: str | None, marker: Path,
                  **env: str) -> subprocess.Popen[bytes]:
        environment = {**os.environ, **env}
        if failpoint:
            environment.update(LABCTL_FAILPOINT=failpoint, LABCTL_FAILPOINT_FILE=str(marker))
        self.log = runs.with_suffix(".log")
        return subprocess.Popen(
            [sys.executable, "-m", "labctl.cli", "-i", str(self.inventory), "--runs-dir", str(runs),
             "run", str(scenario)], cwd=self.dir, env=environment, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self.log.open("w"))

    def finish(self, proc: subprocess.Popen[bytes], runs: Path) -> Finished:
        try:
            stdout, _ = proc.communicate(timeout=180)
        finally:
            kill_if_running(proc)
        found = sorted(runs.iterdir()) if runs.exists() else []
        return Finished(proc.returncode, stdout.decode(), self.log.read_text(), found[-1] if found else None)


def _loadgen_pid(lab: FaultLab, role: str) -> int:
    """The run's loadgen server or client: in the lab's namespaces, found by its argv."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for pid, line in processes_in(lab.namespaces).items():
            argv = line.split()
            if "labctl-loadgen.py" in " ".join(argv[:2]) and role in argv[:3]:
                return pid
        time.sleep(0.05)
    raise AssertionError(f"no loadgen {role} running")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultLab]:
    directory = tmp_path_factory.mktemp("faults")
    name = lab_name("lf")
    write_netns_inventory(directory, name)
    (directory / "faults.yaml").write_text(yaml.safe_dump(FAULT_SCENARIO))
    the_lab = FaultLab(directory, name)
    try:
        assert the_lab.labctl("up") == 0
        the_lab.original = the_lab.hosts_state()
        yield the_lab
    finally:
        _restore_leftovers(the_lab)
        the_lab.labctl("down")
        assert the_lab.namespaces_gone()
        _print_matrix()


def _restore_leftovers(lab: FaultLab) -> None:
    """A test that failed half-way may leave a run's processes and tuning behind: the journals
    know them (the processes would outlive the namespaces `down` removes)."""
    for journal in lab.dir.glob("runs-*/*/restore.json"):
        data = json.loads(journal.read_text())
        if data.get("undo") or data.get("processes"):
            in_ns(lab.ns("dut"), "ip", "link", "set", "lo", "up")
            lab.labctl("restore", str(journal.parent))


def _print_matrix() -> None:
    if not RESULTS:
        return
    print("\nfault x phase: exit, where the manifest says it stopped, host restored")
    for r in RESULTS:
        print(f"  {r['fault']:13s} {r['checkpoint']:12s} exit {r['exit']:3d}  {r['stopped']:40.40s} "
              f"restored={r['restored']}")
    restored = sum(r["restored"] for r in RESULTS)
    print(f"  {restored}/{len(RESULTS)} left the hosts exactly restored")
    artifacts = os.environ.get("LABCTL_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        (Path(artifacts) / "faults.json").write_text(json.dumps(RESULTS, indent=2))


def test_without_a_fault_the_run_passes(lab: FaultLab) -> None:
    runs = lab.dir / "runs-control"
    done = lab.finish(lab.start_run(lab.dir / "faults.yaml", runs, None, lab.dir / "none"), runs)
    assert done.code == 0, done.stderr
    manifest = json.loads((done.run / "manifest.json").read_text())
    assert manifest["outcome"]["status"] == "completed" and manifest["outcome"]["restore"] == "complete"
    assert lab.hosts_state() == lab.original
    assert json.loads((done.run / "restore.json").read_text())["undo"] == []


@pytest.mark.parametrize("fault,checkpoint", CASES, ids=[f"{f}@{c}" for f, c in CASES])
def test_fault_leaves_hosts_restored(lab: FaultLab, fault: str, checkpoint: str) -> None:
    runs = lab.dir / f"runs-{fault}-{checkpoint}"
    marker = lab.dir / f"paused-{fault}-{checkpoint}"
    mode = "fail" if fault == "fail-command" else "pause"
    proc = lab.start_run(lab.dir / "faults.yaml", runs, f"{checkpoint}:{mode}", marker)
    if mode == "pause":
        wait_for_file(marker, proc, 60, "the checkpoint")
        _inject(lab, fault, proc)
        marker.unlink()
    done = lab.finish(proc, runs)
    restored = lab.hosts_state() == lab.original
    stopped = _stopped(done)
    RESULTS.append({"fault": fault, "checkpoint": checkpoint, "exit": done.code,
                    "stopped": stopped, "restored": restored})

    assert done.code == EXIT_CODES.get(fault, 1), done.stderr
    assert "Traceback" not in done.stderr
    assert restored, f"host state differs after {fault} at {checkpoint}"
    assert not lab.stray_processes(), "a process of the run is left on a lab host"
    _check_run_dir(done, fault, checkpoint)


def _inject(lab: FaultLab, fault: str, proc: subprocess.Popen[bytes]) -> None:
    if fault == "sigint":
        proc.send_signal(signal.SIGINT)
    elif fault == "sigterm":
        proc.send_signal(signal.SIGTERM)
    elif fault == "ssh-drop":
        assert lab.drop_ssh() >= 2, "one session per host"
    elif fault in ("kill-server", "kill-client"):
        os.kill(_loadgen_pid(lab, fault.split("-")[1]), signal.SIGKILL)


def _stopped(done: Finished) -> str:
    if done.run is None:
        return "no run directory"
    outcome = json.loads((done.run / "manifest.json").read_text()).get("outcome", {})
    return f"{outcome.get('status')} in {outcome.get('checkpoint') or outcome.get('phase')}"


def _check_run_dir(done: Finished, fault: str, checkpoint: str) -> None:
    """The run directory: the raw data taken so far and a manifest saying where and why."""
    assert done.run is not None
    manifest = json.loads((done.run / "manifest.json").read_text())
    outcome = manifest["outcome"]
    assert outcome["status"] == ("interrupted" if fault in EXIT_CODES else "failed"), outcome
    assert outcome["reason"], outcome
    assert outcome["restore"].startswith(("complete", "nothing to restore")), outcome
    if checkpoint == "facts":
        assert outcome["phase"] == "facts" and "facts" not in manifest
        return
    for host in ("dut", "loadgen"):
        assert (done.run / host / "facts.raw").exists()
    steps = json.loads((done.run / "steps.json").read_text())
    assert steps["restore"] and all(s["status"] == "ok" for s in steps["restore"]), steps["restore"]
    assert f"**The run stopped: {outcome['status']} in " in (done.run / "report.md").read_text()
    assert json.loads((done.run / "restore.json").read_text())["undo"] == []
    if checkpoint in ("tuning", "load-start", "load-window", "snapshot") and fault != "kill-client":
        assert outcome["checkpoint"] == checkpoint or fault.startswith("kill-server"), outcome
    if checkpoint in ("load-window", "snapshot", "restore"):
        assert (done.run / "dut" / "interrupts.before").exists(), "the before snapshot is kept"
    if checkpoint == "restore":
        assert (done.run / "dut" / "interrupts.after").exists()
        assert (done.run / "loadgen" / "loadgen" / "client.json").exists()


def test_a_sampler_killed_in_the_window_keeps_its_samples(lab: FaultLab) -> None:
    """The series sampler SIGKILLed half-way through the load window: the run goes on and
    passes, the sample file is read up to its last whole sample, and the report says it was
    cut short."""
    runs = lab.dir / "runs-kill-sampler"
    marker = lab.dir / "paused-kill-sampler"
    proc = lab.start_run(lab.dir / "faults.yaml", runs, "load-window:pause", marker)
    wait_for_file(marker, proc, 60, "the checkpoint")
    sampler = next(pid for pid, line in processes_in(lab.namespaces).items() if "labctl-sampler.py" in line)
    time.sleep(1.2)                      # the client runs meanwhile: a sample or two more
    os.kill(sampler, signal.SIGKILL)
    marker.unlink()
    done = lab.finish(proc, runs)
    assert done.code == 0, done.stderr
    assert lab.hosts_state() == lab.original and not lab.stray_processes()
    series = json.loads((done.run / "series.json").read_text())["hosts"]["dut"]
    assert not series["complete"] and series["samples"] >= 2 and series["end_reason"] is None
    assert "**the sample file was cut short**" in (done.run / "report.md").read_text()
    stop = next(s for s in json.loads((done.run / "steps.json").read_text())["steps"]
                if s["description"].startswith("stop the sampler"))
    assert stop["status"] == "ok" and "had ended before it was stopped" in stop["warnings"][0]


def test_unreachable_host_is_restored_later(lab: FaultLab) -> None:
    """The DUT's loopback (its sshd's address) goes down in the load window: the run cannot
    restore it, says so, and keeps the journal; `labctl restore RUN` does it later."""
    runs = lab.dir / "runs-unreachable"
    marker = lab.dir / "paused-unreachable"
    proc = lab.start_run(lab.dir / "faults.yaml", runs, "load-window:pause", marker,
                         LABCTL_RECONNECT_SECONDS="3")
    wait_for_file(marker, proc, 60, "the checkpoint")
    in_ns(lab.ns("dut"), "ip", "link", "set", "lo", "down")
    try:
        lab.drop_ssh()
        marker.unlink()
        done = lab.finish(proc, runs)
        assert done.code == 1, done.stderr
        assert f"labctl restore {done.run.name}" in done.stderr
        assert lab.hosts_state()["hosts"]["dut"] != lab.original["hosts"]["dut"], "not restorable yet"
        assert lab.hosts_state()["hosts"]["loadgen"] == lab.original["hosts"]["loadgen"]
        journal = json.loads((done.run / "restore.json").read_text())
        assert {u["host"] for u in journal["undo"]} == {"dut"} and "server" in journal["processes"]
        assert "pending on dut" in json.loads((done.run / "manifest.json").read_text())["outcome"]["restore"]
        assert lab.labctl("restore", str(done.run)) == 1, "still unreachable"
    finally:
        in_ns(lab.ns("dut"), "ip", "link", "set", "lo", "up")
    assert cli.main(["-i", str(lab.inventory), "--runs-dir", str(runs), "restore", done.run.name]) == 0
    assert lab.hosts_state() == lab.original
    assert not lab.stray_processes()
    assert json.loads((done.run / "restore.json").read_text())["undo"] == []
    outcome = json.loads((done.run / "manifest.json").read_text())["outcome"]
    assert outcome["restore"].startswith("complete (by `labctl restore`")
    assert lab.labctl("restore", str(done.run)) == 0, "nothing left to restore"


def test_killed_labctl_leaves_a_stale_lock_and_a_journal(lab: FaultLab,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL cannot be handled: the host keeps the tuning and the loadgen, the lock file
    stays. The next command takes the stale lock over and `labctl restore` puts it all back."""
    runs = lab.dir / "runs-sigkill"
    marker = lab.dir / "paused-sigkill"
    proc = lab.start_run(lab.dir / "faults.yaml", runs, "load-window:pause", marker)
    wait_for_file(marker, proc, 60, "the checkpoint")
    busy = lab.labctl("run", str(lab.dir / "faults.yaml"))
    err = capsys.readouterr().err
    assert busy == 4 and f"PID {proc.pid}" in err and "run" in err and "is busy" in err
    assert lab.labctl("down") == 4 and lab.labctl("up") == 4
    proc.kill()
    done = lab.finish(proc, runs)
    marker.unlink()
    assert lab.hosts_state() != lab.original
    server = _loadgen_pid(lab, "server")
    capsys.readouterr()
    assert cli.main(["-i", str(lab.inventory), "--runs-dir", str(runs), "restore", done.run.name]) == 0
    err = capsys.readouterr().err
    assert "stale lock" in err and f"PID {proc.pid}" in err
    assert lab.hosts_state() == lab.original
    assert not pid_alive(server)
    assert not lab.stray_processes()


def test_no_secret_in_runs_logs_or_manifests(lab: FaultLab) -> None:
    """Every run directory of the fault tests (manifests, steps, journals, reports, raw data)
    and the lab's own files (state, sshd logs and configs): no private key, in any form."""
    ssh_dir = lab.dir / ".labctl" / lab.name / "ssh"
    keys = [p for p in ssh_dir.rglob("*") if p.is_file() and "PRIVATE KEY" in p.read_text(errors="replace")]
    assert len(keys) == 3, "the client key and one host key per sshd"
    for key in keys:
        assert key.stat().st_mode & 0o777 == 0o600, key
    scanned = assert_no_secrets([lab.dir], keys)
    runs = {f.parent for f in scanned if f.name == "manifest.json"}
    assert runs and all((run / "restore.json") in scanned for run in runs if (run / "steps.json").exists())
    assert any(f.name == "sshd.log" for f in scanned) and any(f.name == "state.json" for f in scanned)


def test_down_after_a_killed_up(tmp_path: Path) -> None:
    name = lab_name("lk")
    write_netns_inventory(tmp_path, name)
    lab = Lab(tmp_path, name)
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "-i", str(lab.inventory), "up"],
                            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        while "veth pair ready" not in proc.stderr.readline():
            assert proc.poll() is None, "up ended before it could be killed"
        proc.kill()
        proc.wait()
        state = lab.state()
        assert state["status"] == "creating"
    finally:
        kill_if_running(proc)
        assert lab.labctl("down") == 0
    assert lab.namespaces_gone()
    assert not (tmp_path / ".labctl").exists()
    assert lab.labctl("down") == 0, "down twice"
