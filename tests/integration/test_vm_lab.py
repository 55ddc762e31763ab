"""Integration: the libvirt lab with two real QEMU guests booted from the image labctl builds.

A private libvirtd runs in a network namespace the test session creates (tests/
conftest_libvirt.py); guests' networks and all their traffic live inside it, and SSH to the
guests is opened from inside it. The blog's procedure end to end, with a CPU hog keeping one
host core busy all along: up -> re-up (no-op) -> the main job's series (baseline, which
prepares the DUT first, combined2, irq_pin, rps_isolated, rps_cpu1) -> collect -> faults (SIGTERM while tuning, labctl's SSH sessions killed in the guest and the loadgen server
killed in the load window; each leaves the DUT as it was) -> the ssh provider's
prepare/unprepare -> the drift watchdog (rx-0's IRQ affinity changed over SSH in the window:
exit 6) -> down, and nothing is left behind.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import cli
from tests.helpers import ROOT
from tests.helpers.labs import labctl_in, paused_run, vm_lab_dir, vm_lab_state, vm_lab_up
from tests.helpers.processes import processes_mentioning

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def vm_lab(libvirt_host: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = vm_lab_dir(tmp_path_factory.mktemp("vmlab"), ROOT / "inventory.yaml", "lvm", libvirt_host)
    yield directory
    labctl_in(directory, "down")


def _virsh_names(uri: str, *args: str) -> list[str]:
    import subprocess
    out = subprocess.run(["virsh", "-c", uri, *args, "--name"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def _newest_run(directory: Path, scenario: str) -> Path:
    return max((directory / "runs").glob(f"*-{scenario}"), key=lambda p: p.stat().st_mtime)


def _dut_state(state: dict[str, Any]) -> dict[str, str]:
    """What runs change and must put back: channels, RPS masks, the NIC's IRQ affinities."""
    from labctl.transport.ssh import SshTransport
    from labctl.transport.target import SshTarget
    with SshTransport(SshTarget.from_dict(state["targets"]["dut"])) as dut:
        return {"channels": dut.run("ethtool -l eth1 | tail -n 5").stdout,
                "rps": dut.run("grep -H . /sys/class/net/eth1/queues/rx-*/rps_cpus").stdout,
                "affinity": dut.run("dev=$(basename $(readlink -e /sys/class/net/eth1/device)); for q in 0 1 2 3;"
                                    " do i=$(awk -F: -v n=\"$dev-input.$q\" '$NF ~ n\"$\" {gsub(/ /, \"\", $1); "
                                    "print $1}' /proc/interrupts); cat /proc/irq/$i/smp_affinity_list; done").stdout,
                "irqbalance": dut.run("systemctl is-active irqbalance; systemctl is-enabled irqbalance",
                                      check=False).stdout}


BLOG = ["baseline", "combined2", "irq_pin", "rps_isolated", "rps_cpu1"]


def _series(directory: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Path]:
    """The main job's command: the blog's five scenarios as one `labctl run` series. Every one
    must pass; returns each scenario's run directory (from the closing table)."""
    capsys.readouterr()
    code = labctl_in(directory, "run", *(str(directory / "scenarios" / f"{name}.yaml") for name in BLOG))
    out = capsys.readouterr()
    assert code == 0, f"series: exit {code}\n{out.err[-4000:]}\n{out.out[-3000:]}"
    table = out.out.splitlines()[-(len(BLOG) + 2):]
    assert table[0].split() == ["scenario", "outcome", "checks", "run", "directory"]
    assert table[-1] == f"{len(BLOG)} scenario(s): {len(BLOG)} passed"
    runs = {}
    for line in table[1:-1]:
        name, outcome, checks, run_dir = line.split()
        passed, total = checks.split("/")
        assert outcome == "passed" and passed == total, line
        runs[name] = Path(run_dir)
    assert list(runs) == BLOG
    return runs


def _summary(run: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((run / "summary.json").read_text())
    assert summary["verdict"]["status"] == "passed"
    assert summary["restore"] and all(r["status"] == "ok" for r in summary["restore"])
    print(f"{run.name}: " + "; ".join(f"{e['description']}: {e['measured']}" for e in summary["expectations"]))
    return summary


def test_the_blog_procedure_on_the_vm_lab(vm_lab: Path, libvirt_host: Any, cpu_hog: Any,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """With one host core kept busy by a CPU hog from start to end (a slower, busier machine of
    this kind): up -> the main job's series of the blog's five scenarios (the first prepares
    the DUT: irqbalance off, tuned realtime 4-7, a restart; the load generator's ceiling is
    measured once) -> irq_pin again -> rps_isolated refused -> collect -> faults -> the ssh
    provider's prepare/unprepare on an existing host -> down, nothing left behind."""
    up_seconds, state = vm_lab_up(vm_lab, "lvm", lambda: capsys.readouterr().err)
    assert state["facts"]["accelerator"] in ("tcg", "kvm")
    assert state["facts"]["virtio_net_backend"] in ("vhost", "qemu")
    started = time.monotonic()
    assert labctl_in(vm_lab, "up") == 0
    assert time.monotonic() - started <= 2.0, "re-up of a running lab is a no-op"

    started = time.monotonic()
    runs = _series(vm_lab, capsys)
    series_seconds = time.monotonic() - started
    summaries = {name: _summary(run) for name, run in runs.items()}
    manifest = json.loads((runs["baseline"] / "manifest.json").read_text())
    prep = manifest["preparation"]["dut"]
    assert prep["verified"]["isolated"] == "4-7" and prep["verified"]["pid1_cpus_allowed"] == "0-3"
    assert prep["verified"]["default_smp_affinity"] == "0-3"
    assert "managed_irq,domain,4-7" == prep["verified"]["isolcpus"]
    assert prep["verified"]["irqbalance"] == "inactive, disabled"
    assert prep["sysctl_changes"]["net.core.busy_poll"] == {"before": "0", "after": "50"}
    assert prep["reboot"]["method"].startswith("power off")
    assert manifest["facts"]["dut"]["isolated"] == "4-7"
    assert "loadgen" not in manifest["preparation"]
    assert manifest["lab"]["facts"]["virtio_net_backend"] == state["facts"]["virtio_net_backend"]
    # the generator's ceiling, measured once for the lab in the blog's mode, in every manifest
    ceilings = vm_lab_state(vm_lab, "lvm")["facts"]["generator_ceilings"]
    assert list(ceilings) == ["loadgen->dut/udp/64B/4w/new-socket/cpus=any"]
    for run in runs.values():
        generator = json.loads((run / "manifest.json").read_text())["generator"]    # None: no load
        if generator is not None:
            assert generator["ceiling"] == next(iter(ceilings.values())) and generator["asked_rate"] == "max"
            assert "its measured ceiling in this mode" in (run / "report.md").read_text()
    ceiling = next(iter(ceilings.values()))["rate"]
    achieved = {n: s["loadgen"]["achieved_rate"] for n, s in summaries.items() if s["loadgen"]}
    print(f"hog: {cpu_hog.cpu_seconds():.0f} CPU s; generator ceiling {ceiling:.0f} msg/s; achieved "
          + ", ".join(f"{n} {r:.0f}" for n, r in achieved.items()))
    assert cpu_hog.cpu_seconds() > 0.5 * series_seconds, "the hog kept a core busy"
    rows = {r["queue"]: r["per_cpu"] for r in summaries["combined2"]["hosts"]["dut"]["nic_irqs"]}
    assert sum(rows[2].values()) == sum(rows[3].values()) == 0
    original = _dut_state(state)

    started = time.monotonic()
    assert labctl_in(vm_lab, "run", str(vm_lab / "scenarios" / "irq_pin.yaml")) == 0
    assert time.monotonic() - started < 60, "a prepared DUT is not restarted again"
    assert "prepared already" in capsys.readouterr().err

    refused = vm_lab / "scenarios" / "rps_isolated_no_override.yaml"
    refused.write_text((vm_lab / "scenarios" / "rps_isolated.yaml").read_text()
                       .replace("allow_isolated_rps: true", "allow_isolated_rps: false"))
    assert labctl_in(vm_lab, "run", str(refused)) == 2
    err = capsys.readouterr().err
    assert "tuning.dut.rps.rx-0" in err and "EINVAL" in err and "nothing was changed" in err
    isolated = summaries["rps_isolated"]
    statuses = {s["description"].split(" (")[0]: s["status"] for s in isolated["steps"] if s["kind"] == "change"}
    assert statuses["RPS of rx-0 -> CPUs 4"] == "refused-as-expected"
    assert statuses["RPS of rx-1 -> CPUs 1,4"] == "ok"
    assert _dut_state(state) == original, "the refused and the trimmed write left nothing changed"

    rps = summaries["rps_cpu1"]
    dut = rps["hosts"]["dut"]
    busy = {cpu: 100 - dut["cpu_percent"][str(cpu)]["idle"] for cpu in (6, 7)}   # JSON: string keys
    assert min(busy.values()) < 5 < max(busy.values()), f"one server CPU idle: {busy}"
    profile = rps["profile"]          # the blog's flamegraphs: the RPS path on CPUs 2 and 1
    assert profile["cpus"] == [1, 2, 3, 6, 7] and profile["software_clock"] in (True, False)
    assert "process_backlog" in profile["per_cpu"]["1"]["frames"]
    # CPU 2 steers rx-0's packets (get_rps_cpu, enqueue_to_backlog: a few samples at 99 Hz) and wakes
    # CPU 1 (net_rps_send_ipi: an emulated APIC write under TCG, most of its softirq samples). One CI
    # run had 10 samples under __napi_poll and none in the first two: any of the three is the RPS path.
    assert {"get_rps_cpu", "enqueue_to_backlog", "net_rps_send_ipi"} & set(profile["per_cpu"]["2"]["frames"])
    assert (runs["rps_cpu1"] / profile["per_cpu"]["1"]["flamegraph"]).exists()
    report = (runs["rps_cpu1"] / "report.md").read_text()
    for heading in ("## Server CPUs", "### RPS on dut", "### NET_RX per CPU", "CPU6*", "dut prepared: tuned realtime"):
        assert heading in report
    assert labctl_in(vm_lab, "collect") == 0
    assert _dut_state(state) == original
    print(f"up {up_seconds:.0f} s, the series with the preparation {series_seconds:.0f} s")

    _faults(vm_lab, state, original)
    _drift_from_outside(vm_lab, state, original)
    _ssh_provider_prepare_and_unprepare(vm_lab, state, libvirt_host, capsys)

    assert labctl_in(vm_lab, "down") == 0
    assert not [n for n in _virsh_names(libvirt_host.uri, "list", "--all") if n.startswith("lvm-")]
    assert not [n for n in _virsh_names(libvirt_host.uri, "net-list", "--all") if n.startswith("lvm-")]
    assert not (vm_lab / ".labctl" / "lvm").exists()   # overlays, seeds, keys, records, console logs
    assert not processes_mentioning("qemu-system", "guest=lvm-"), "no QEMU of this lab left"


FAULT_SCENARIO = {
    "description": "fault injection on the VM lab",
    "tuning": {"dut": {"channels": {"combined": 2}, "irq_affinity": {"rx-0": 2}, "rps": {"all": 1}}},
    "load": {"server": {"host": "dut", "cpus": "6-7"},
             "client": {"host": "loadgen", "rate": 1000, "duration": 4, "workers": 2}},
}
# in the DUT guest: kill every sshd session process but those of this very session
KILL_OTHER_SESSIONS = r"""keep=" "; p=$$
while [ "$p" -gt 1 ]; do keep="$keep$p "; p=$(cut -d' ' -f4 /proc/$p/stat); done
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  case "$keep" in *" $pid "*) continue;; esac
  case "$(tr '\0' ' ' < $d/cmdline 2>/dev/null)" in "sshd: root@"*|"sshd: root [priv]"*) kill -9 $pid && echo $pid;; esac
done"""
RUN_PROCESSES = r"""for d in /proc/[0-9]*; do
  case "$(tr '\0' ' ' < $d/cmdline 2>/dev/null)" in *labctl-*) echo "${d#/proc/} $(tr '\0' ' ' < $d/cmdline)";; esac
done"""
KILL_SERVER = r"""for d in /proc/[0-9]*; do
  case "$(tr '\0' ' ' < $d/cmdline 2>/dev/null)" in *"labctl-loadgen.py server"*) kill -9 ${d#/proc/} && echo killed;; esac
done"""


def _faults(vm_lab: Path, state: dict[str, Any], original: dict[str, str]) -> None:
    """A fault in three phases of a run on the VM lab; after each the DUT's channels, RPS masks,
    IRQ affinities and irqbalance state are the originals and no process of the run is left."""
    from labctl.transport.ssh import SshTransport
    from labctl.transport.target import SshTarget
    scenario = vm_lab / "scenarios" / "faults.yaml"
    scenario.write_text(yaml.safe_dump(FAULT_SCENARIO))
    with SshTransport(SshTarget.from_dict(state["targets"]["dut"])) as dut:
        cases = (("tuning", "sigterm", 143), ("load-window", "ssh-drop", 1), ("load-window", "kill-server", 1))
        for checkpoint, fault, code in cases:
            def inject(proc: subprocess.Popen[str], fault: str = fault) -> None:
                if fault == "sigterm":
                    proc.send_signal(signal.SIGTERM)
                elif fault == "ssh-drop":
                    assert dut.run(KILL_OTHER_SESSIONS).stdout.split(), "labctl's session killed"
                else:
                    assert "killed" in dut.run(KILL_SERVER).stdout    # its main process and workers

            returncode, err, _ = paused_run(vm_lab, scenario, checkpoint, inject)
            assert returncode == code, f"{fault} at {checkpoint}: exit {returncode}\n{err[-3000:]}"
            assert "Traceback" not in err
            assert _dut_state(state) == original, f"{fault} at {checkpoint}: the DUT is not as it was"
            assert dut.run(RUN_PROCESSES).stdout.strip() == "", "no process of the run left on the DUT"
            outcome = json.loads((_newest_run(vm_lab, "faults") / "manifest.json").read_text())["outcome"]
            assert outcome["status"] in ("interrupted", "failed") and outcome["restore"] == "complete", outcome
            print(f"fault {fault} at {checkpoint}: exit {returncode}, {outcome['status']} in "
                  f"{outcome['phase']} ({outcome['step']}), DUT restored")


# in the DUT guest: move rx-0's IRQ (pinned to CPU 2 by FAULT_SCENARIO) to CPU 3, as irqbalance would
MOVE_RX0_IRQ = ("dev=$(basename $(readlink -e /sys/class/net/eth1/device)); i=$(awk -F: -v n=\"$dev-input.0\" "
                "'$NF ~ n\"$\" {gsub(/ /, \"\", $1); print $1}' /proc/interrupts); "
                "echo 3 > /proc/irq/$i/smp_affinity_list && echo $i")


def _drift_from_outside(vm_lab: Path, state: dict[str, Any], original: dict[str, str]) -> None:
    """The drift watchdog: paused in the load window, the test moves rx-0's IRQ over its own SSH
    session; the run ends invalid (exit 6) naming that IRQ, and the restore puts the original
    affinity back (from the journal, not the drifted value)."""
    from labctl.transport.ssh import SshTransport
    from labctl.transport.target import SshTarget
    scenario = vm_lab / "scenarios" / "drift.yaml"
    scenario.write_text(yaml.safe_dump(FAULT_SCENARIO))

    def move_rx0_irq(_: subprocess.Popen[str]) -> str:
        with SshTransport(SshTarget.from_dict(state["targets"]["dut"])) as dut:
            return dut.run(MOVE_RX0_IRQ).stdout.strip()

    returncode, err, irq = paused_run(vm_lab, scenario, "load-window", move_rx0_irq)
    assert returncode == 6, f"drift: exit {returncode}\n{err[-3000:]}"
    summary = json.loads((_newest_run(vm_lab, "drift") / "summary.json").read_text())
    assert summary["verdict"]["status"] == "invalid"
    moved = [c for c in summary["drift"]["changes"] if c["what"].startswith(f"IRQ {irq} ")]
    assert moved and (moved[0]["before"], moved[0]["after"]) == ("2", "3"), summary["drift"]
    assert all(r["status"] == "ok" for r in summary["restore"])
    assert _dut_state(state) == original, "drift: the DUT is not as it was"
    print(f"drift: IRQ {irq} moved at {moved[0]['seconds']:.1f} s into the window; exit 6, DUT restored")


def _ssh_provider_prepare_and_unprepare(vm_lab: Path, state: dict[str, Any], libvirt_host: Any,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Hosts labctl did not create: the loadgen guest seen through the ssh provider (as its
    DUT) gets irqbalance disabled and another tuned profile (no isolated CPUs: no restart),
    and `unprepare` puts back the original profile and irqbalance state."""
    directory = vm_lab / "existing"
    directory.mkdir()
    hosts = {}
    for name, guest in (("dut", "loadgen"), ("loadgen", "dut")):
        t = state["targets"][guest]
        hosts[name] = {"role": name, "interface": "eth1", "data_address": f"198.18.0.{2 if name == 'dut' else 1}/24",
                       "ssh": {"address": t["address"], "port": t["port"], "key": t["key_file"],
                               "known_hosts": t["known_hosts"], "netns": libvirt_host.netns}}
    hosts["dut"]["prepare"] = {"irqbalance": "disable", "tuned": {"profile": "network-latency"}}
    inventory = directory / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"lab": "existing", "provider": "ssh", "hosts": hosts}))
    ssh = ["-i", str(inventory)]

    def loadgen_guest() -> str:
        from labctl.transport.ssh import SshTransport
        from labctl.transport.target import SshTarget
        with SshTransport(SshTarget.from_dict(state["targets"]["loadgen"])) as t:
            return t.run("tuned-adm active; systemctl is-active irqbalance; systemctl is-enabled irqbalance",
                         check=False).stdout

    before = loadgen_guest()
    assert "virtual-guest" in before and "active\nenabled" in before
    assert cli.main([*ssh, "up"]) == 0
    assert cli.main([*ssh, "prepare"]) == 0
    assert "network-latency" in loadgen_guest() and "inactive\ndisabled" in loadgen_guest()
    assert "net.core.busy_poll: 0 -> 50" in capsys.readouterr().out
    assert cli.main([*ssh, "down"]) == 0
    assert "still prepared" in capsys.readouterr().err, "down says how to put the hosts back"
    assert cli.main([*ssh, "up"]) == 0
    assert cli.main([*ssh, "unprepare"]) == 0
    assert loadgen_guest() == before
    assert cli.main([*ssh, "unprepare"]) == 0
    assert "no host was prepared" in capsys.readouterr().out
    assert cli.main([*ssh, "down"]) == 0
