"""Integration: the ssh provider as a real server is run — a non-root login that becomes root
with `sudo -n`, and a host reached only through a jump host — on the netns lab's namespaces.

Each lab namespace gets a second real sshd (port 2222, the test's own key and host key) that
lets in this run's throw-away users; the loadgen's may forward TCP, so it serves as the jump
host to the DUT's, which it reaches over the lab's data link (198.18.0.1): from the test's own
namespace the DUT cannot be reached that way at all. Users, sudoers drop-ins, sshds and
namespaces are removed at the end, also on failure.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import cli
from labctl.errors import HostError
from labctl.labs import sshd
from labctl.local.procs import stop_pid
from labctl.shell import detached_command, q, stop_command
from labctl.transport.ssh import SshTransport
from labctl.transport.target import SshTarget
from tests.helpers.labs import HOSTS, Lab, lab_name, write_netns_inventory
from tests.helpers.namespaces import in_ns
from tests.helpers.processes import cmdline, processes_mentioning
from tests.helpers.sudo_users import skip_reason, sudo_user

pytestmark = pytest.mark.integration

PORT = 2222
DATA = {"dut": "198.18.0.1", "loadgen": "198.18.0.2"}
NOPASSWD = "{user} ALL=(root) NOPASSWD: ALL"
PASSWORD = "{user} ALL=(root) ALL"


@dataclass
class SudoLab:
    lab: Lab
    users: dict[str, str]                 # "nopasswd" / "password" -> user name
    key: Path
    known_hosts: Path
    logs: dict[str, Path]                 # host -> its second sshd's log

    def inventory(self, user: str, dut: dict[str, Any] | None = None,
                  loadgen: dict[str, Any] | None = None) -> Path:
        """An ssh-provider inventory for ``user`` (become: sudo) on the lab's hosts, each
        reached from inside its namespace unless ``dut``/``loadgen`` replace its ssh keys."""
        hosts = {}
        for host, changes in (("dut", dut), ("loadgen", loadgen)):
            access = {"address": "127.0.0.1", "port": PORT, "user": user, "become": "sudo",
                      "key": str(self.key), "known_hosts": str(self.known_hosts),
                      "netns": self.lab.ns(host)}
            access.update(changes or {})
            hosts[host] = {"role": host, "data_address": f"{DATA[host]}/24",
                           "ssh": {k: v for k, v in access.items() if v is not None}}
        path = self.lab.dir / "existing" / f"inventory-{user}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump({"lab": "existing", "provider": "ssh", "hosts": hosts}))
        return path

    def labctl(self, inventory: Path, *args: str) -> int:
        runs = self.lab.dir / "existing" / "runs"
        return cli.main(["-q", "-i", str(inventory), "--runs-dir", str(runs), *args])


@pytest.fixture
def sudo_lab(tmp_path: Path) -> Iterator[SudoLab]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    name = lab_name("su")
    write_netns_inventory(tmp_path, name)
    lab = Lab(tmp_path, name)
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: lab.labctl("down"))
        assert lab.labctl("up") == 0
        homes = Path(tempfile.mkdtemp(prefix="labctl-sudo-homes-"))
        stack.callback(shutil.rmtree, homes, True)
        homes.chmod(0o755)
        users = {"nopasswd": stack.enter_context(sudo_user(homes, "lcsn", NOPASSWD)),
                 "password": stack.enter_context(sudo_user(homes, "lcsp", PASSWORD))}
        keys = Path(tempfile.mkdtemp(prefix="labctl-sudo-sshd-"))
        stack.callback(shutil.rmtree, keys, True)
        keys.chmod(0o755)             # the users' sshd children read authorized_keys here
        logs = _second_sshds(stack, lab, keys, list(users.values()))
        yield SudoLab(lab, users, keys / "id_ed25519", keys / "known_hosts", logs)
    assert lab.namespaces_gone()


def _second_sshds(stack: contextlib.ExitStack, lab: Lab, keys: Path, users: list[str]
                  ) -> dict[str, Path]:
    """One more sshd per lab namespace on 0.0.0.0:2222 for ``users``; the loadgen's forwards."""
    sshd.generate_keypair(keys / "id_ed25519", "labctl sudo test client key")
    authorized = keys / "authorized_keys"
    authorized.write_text((keys / "id_ed25519.pub").read_text())
    authorized.chmod(0o644)
    known, logs = [], {}
    for host in HOSTS:
        host_dir = keys / host
        sshd.generate_keypair(host_dir / "host_ed25519", f"labctl sudo test {host} host key")
        host_dir.chmod(0o755)
        config = sshd.write_sshd_config(
            host_dir, "0.0.0.0", PORT, authorized, host_dir / "host_ed25519",
            host_dir / "sshd.pid", allow_users=users, permit_root_login=False,
            allow_tcp_forwarding=host == "loadgen")
        logs[host] = host_dir / "sshd.log"
        stack.callback(stop_pid, sshd.start_sshd_in_netns(lab.ns(host), config, logs[host]))
        pub = host_dir / "host_ed25519.pub"
        known += [sshd.known_hosts_line("127.0.0.1", PORT, pub) if host == "loadgen" else
                  sshd.known_hosts_line(DATA[host], PORT, pub)]
    # the DUT's key under its own loopback name only in a second file: namespaces share
    # 127.0.0.1, and known_hosts holds one key per name
    (keys / "known_hosts").write_text("\n".join(known) + "\n")
    dut_pub = keys / "dut" / "host_ed25519.pub"
    (keys / "known_hosts_dut").write_text(sshd.known_hosts_line("127.0.0.1", PORT, dut_pub) + "\n")
    return logs


def _rps_cpus(lab: Lab, queue: int) -> int:
    return int(in_ns(lab.ns("dut"), "cat", f"/sys/class/net/eth1/queues/rx-{queue}/rps_cpus"), 16)


def _queue_count(lab: Lab) -> int:
    queues = in_ns(lab.ns("dut"), "ls", "/sys/class/net/eth1/queues").split()
    return len([q for q in queues if q.startswith("rx-")])


def _newest_run(runs: Path) -> Path:
    return max((p for p in runs.iterdir() if p.is_dir() and (p / "steps.json").exists()),
               key=lambda p: p.stat().st_mtime)


SCENARIO = {
    "description": "RPS to CPU 1 and 2 channels, as a non-root login with sudo",
    "tuning": {"dut": {"channels": {"rx": 2, "tx": 2}, "rps": {"all": 1}}},
    "load": {"server": {"host": "dut", "protocol": "udp", "port": 8080, "cpus": 1},
             "client": {"host": "loadgen", "rate": 5000, "duration": 3, "payload": 64,
                        "flows": 2, "workers": 1, "cpus": 0}},
    "profile": {"host": "dut", "cpus": "auto", "frequency": 499},
    "expect": [{"check": "rps_mask", "queue": "all", "equals": 1},
               {"check": "loss", "max": 0.2}],
}


def test_non_root_login_with_sudo_runs_and_restores(sudo_lab: SudoLab,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A whole run as a plain user: tuning applied as root and restored, loadgen and perf
    started and stopped through the sudo shell, root-owned results fetched."""
    lab, user = sudo_lab.lab, sudo_lab.users["nopasswd"]
    known_dut = str(sudo_lab.known_hosts.with_name("known_hosts_dut"))
    inventory = sudo_lab.inventory(user, dut={"known_hosts": known_dut})
    scenario = inventory.with_name("sudo.yaml")
    scenario.write_text(yaml.safe_dump(SCENARIO))
    assert sudo_lab.labctl(inventory, "up") == 0, capsys.readouterr()
    assert sudo_lab.labctl(inventory, "run", str(scenario)) == 0, capsys.readouterr()
    run = _newest_run(lab.dir / "existing" / "runs")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["verdict"]["status"] == "passed", summary["expectations"]
    assert all(r["status"] == "ok" for r in summary["restore"]), summary["restore"]
    # fetched: the loadgen's results and the DUT's perf data, written by root processes
    assert (run / "dut" / "perf" / "perf.script").stat().st_size > 0
    assert summary["hosts"]["dut"]["softnet"], "snapshots read"
    # restored: RPS off, 4 channels again; no process of the run is left
    assert [_rps_cpus(lab, q) for q in range(4)] == [0, 0, 0, 0]
    assert _queue_count(lab) == 4
    assert not processes_mentioning(f"/tmp/labctl-{run.name}")
    assert not Path(f"/tmp/labctl-{run.name}").exists()
    for host in HOSTS:
        log = sudo_lab.logs[host].read_text()
        assert f"Accepted publickey for {user}" in log and "for root" not in log
    assert sudo_lab.labctl(inventory, "down") == 0


def test_sudo_that_wants_a_password_is_refused_before_anything(
        sudo_lab: SudoLab, capsys: pytest.CaptureFixture[str]) -> None:
    lab, user = sudo_lab.lab, sudo_lab.users["password"]
    known_dut = str(sudo_lab.known_hosts.with_name("known_hosts_dut"))
    inventory = sudo_lab.inventory(user, dut={"known_hosts": known_dut})
    scenario = inventory.with_name("sudo.yaml")
    scenario.write_text(yaml.safe_dump(SCENARIO))
    capsys.readouterr()
    assert sudo_lab.labctl(inventory, "up") == 1
    err = capsys.readouterr().err
    assert f"dut: sudo wants a password: labctl needs NOPASSWD for {user}" in err, err
    assert f"{user} ALL=(root) NOPASSWD: ALL" in err and "Traceback" not in err
    assert sudo_lab.labctl(inventory, "run", str(scenario)) == 1
    assert "wants a password" in capsys.readouterr().err
    assert [_rps_cpus(lab, q) for q in range(4)] == [0, 0, 0, 0]
    assert _queue_count(lab) == 4
    assert not list((lab.dir / "existing" / "runs").glob("*/steps.json")), "no step ran"
    sudo_lab.labctl(inventory, "down")


def test_dut_reached_only_through_a_jump_host(sudo_lab: SudoLab,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The DUT's address is the lab's data address, which only the loadgen's namespace can
    reach; the loadgen's sshd is the jump host. Its sshd log shows where the login came from."""
    lab, user = sudo_lab.lab, sudo_lab.users["nopasswd"]
    jump = {"address": "127.0.0.1", "port": PORT, "netns": lab.ns("loadgen")}
    inventory = sudo_lab.inventory(user, dut={"address": DATA["dut"], "netns": None,
                                              "jump": jump})
    scenario = inventory.with_name("rps.yaml")
    scenario.write_text(yaml.safe_dump({
        "tuning": {"dut": {"rps": {"rx-0": "0-1"}}},
        "expect": [{"check": "rps_mask", "queue": "rx-0", "equals": "0-1"}]}))
    assert sudo_lab.labctl(inventory, "up") == 0, capsys.readouterr()
    assert sudo_lab.labctl(inventory, "run", str(scenario)) == 0, capsys.readouterr()
    assert _rps_cpus(lab, 0) == 0
    assert f"Accepted publickey for {user} from {DATA['loadgen']}" in sudo_lab.logs["dut"].read_text()
    assert sudo_lab.labctl(inventory, "down") == 0

    capsys.readouterr()
    unreachable_jump = sudo_lab.inventory(user, dut={"address": DATA["dut"], "netns": None,
                                                     "jump": {**jump, "port": 2999}})
    assert sudo_lab.labctl(unreachable_jump, "up") == 1
    err = capsys.readouterr().err
    assert f"dut: jump host {user}@127.0.0.1:2999" in err and "Traceback" not in err, err
    sudo_lab.labctl(unreachable_jump, "down")

    empty = sudo_lab.known_hosts.with_name("known_hosts_empty")
    empty.write_text("")
    jump_unpinned = sudo_lab.inventory(user, dut={"address": DATA["dut"], "netns": None,
                                                  "jump": {**jump, "known_hosts": str(empty)}})
    assert sudo_lab.labctl(jump_unpinned, "up") == 1
    err = capsys.readouterr().err
    assert f"dut: unknown host key for jump host [127.0.0.1]:{PORT}" in err, err
    assert "hosts.dut.ssh.jump.known_hosts" in err
    sudo_lab.labctl(jump_unpinned, "down")

    host_unpinned = sudo_lab.inventory(user, dut={"address": DATA["dut"], "netns": None,
                                                  "known_hosts": str(empty),
                                                  "jump": {**jump, "known_hosts":
                                                           str(sudo_lab.known_hosts)}})
    assert sudo_lab.labctl(host_unpinned, "up") == 1
    err = capsys.readouterr().err
    assert f"dut: unknown host key for [{DATA['dut']}]:{PORT}" in err, err
    # the re-pin hint scans the key from the jump host, the one place that reaches the host
    scan = next(line for line in err.splitlines() if "ssh-keyscan" in line).split(" > ")[0]
    scanned = subprocess.run(["sh", "-c", scan.strip()], capture_output=True, text=True,
                             timeout=30, stdin=subprocess.DEVNULL)
    dut_key = (sudo_lab.key.parent / "dut" / "host_ed25519.pub").read_text().split()[1]
    assert dut_key in scanned.stdout, (scan, scanned.stderr)
    sudo_lab.labctl(host_unpinned, "down")

    target_down = sudo_lab.inventory(user, dut={"address": DATA["dut"], "port": 2998,
                                                "netns": None, "jump": jump})
    assert sudo_lab.labctl(target_down, "up") == 1
    err = capsys.readouterr().err
    assert (f"dut: the jump host {user}@127.0.0.1:{PORT} could not connect to "
            f"{DATA['dut']}:2998") in err and "Traceback" not in err, err
    sudo_lab.labctl(target_down, "down")


def test_sudo_shell_is_root_for_commands_processes_and_files(sudo_lab: SudoLab,
                                                             tmp_path: Path) -> None:
    """The transport itself, as the plain user: commands run as root, a detached process's
    PID is the process itself (not sudo), a timed-out command's whole group is stopped, and
    files move in and out of a directory only root may enter."""
    user = sudo_lab.users["nopasswd"]
    target = SshTarget("dut", "127.0.0.1", PORT, user, str(sudo_lab.key),
                       str(sudo_lab.known_hosts.with_name("known_hosts_dut")),
                       sudo_lab.lab.ns("dut"), become="sudo")
    private = Path(tempfile.mkdtemp(prefix="labctl-sudo-private-"))   # root's, 0700
    try:
        with SshTransport(target) as transport:
            assert transport.run("id -un; id -u").stdout.split() == ["root", "0"]
            assert transport.run("echo $SUDO_USER").stdout.strip() == user
            pid = int(transport.run(detached_command(["sleep", "300"], "/dev/null")).stdout)
            # setsid execs sleep in the same process; mid-exec the new image's command line is
            # still empty (CI read "" once), so wait for sleep's own, not only for setsid's to go
            deadline = time.monotonic() + 5.0
            while not (cmdline(pid) or "").startswith("sleep") and time.monotonic() < deadline:
                time.sleep(0.01)
            assert (cmdline(pid) or "").startswith("sleep 300") and _uid(pid) == 0
            transport.run(stop_command(pid, 5.0))
            assert not cmdline(pid), "stopped (a zombie until PID 1 reaps it)"
            with pytest.raises(HostError, match="timed out"):
                transport.run("sleep 77.5", timeout=0.5)
            assert transport.run("echo again").stdout == "again\n"
            assert _gone("sleep 77.5"), "the old shell's group (sudo, sh, sleep) was stopped"

            transport.put_text(f"{private}/conf", "written as root\n", 0o600)
            written = private / "conf"
            assert written.read_text() == "written as root\n"
            assert (written.stat().st_uid, written.stat().st_mode & 0o777) == (0, 0o600)
            (private / "secret").write_bytes(b"\x00\xffroot only\n")
            (private / "secret").chmod(0o600)
            transport.get_file(f"{private}/secret", tmp_path / "secret")
            assert (tmp_path / "secret").read_bytes() == b"\x00\xffroot only\n"
            assert transport.run(f"ls -A {q(str(private))}").stdout.split() == ["conf", "secret"]
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def _gone(words: str, wait: float = 5.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not processes_mentioning(words):
            return True
        time.sleep(0.05)
    return False
