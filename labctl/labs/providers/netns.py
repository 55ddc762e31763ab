"""The `netns` provider (side effects: ip, sshd, files): a whole lab on one Linux host.

Each lab host is a network namespace named <lab>-<host> with its own OpenSSH sshd on the
namespace's loopback; the hosts' test interfaces are the two ends of one multi-queue veth
pair. Real kernel stack, real RPS and softirqs, no hardware IRQs. Everything created is
recorded in the state file as soon as it exists, so `down` removes exactly that.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from labctl.errors import LabctlError, LabError
from labctl.input.model import Inventory
from labctl.labs import sshd
from labctl.labs.providers import Progress, remove_empty_lab_dir
from labctl.labs.state import LabState, Resource, StateFile
from labctl.local.nsexec import run_in_netns
from labctl.local.procs import stop_pid
from labctl.transport.target import SshTarget

SSH_BASE_PORT = 2200
LISTEN = "127.0.0.1"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise LabError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def _in_ns(netns: str, *argv: str, check: bool = True) -> None:
    run_in_netns(netns, list(argv), check=check)


def existing_namespaces() -> set[str]:
    out = _ip("netns", "list", check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


class NetnsProvider:
    verifies_ssh = False

    def __init__(self, inventory: Inventory, directory: Path):
        self.inventory, self.dir = inventory, directory
        self.state_file = StateFile(directory / "state.json")
        self.ssh_dir = directory / "ssh"

    def namespace(self, host: str) -> str:
        return f"{self.inventory.lab}-{host}"

    # ------------------------------------------------------------------ up
    def up(self, progress: Progress) -> LabState:
        if self.state_file.exists():
            state = self.state_file.load()
            problems = self._health(state)
            if state.status == "up" and not problems:
                progress(f"lab {self.inventory.lab} is already up")
                return state
            progress(f"lab {self.inventory.lab} is half made ({'; '.join(problems) or state.status}):"
                     " removing what it recorded, then making it again")
            self.down(progress)
        self._refuse_foreign()
        state = LabState(self.inventory.lab, "netns")
        self.state_file.save(state)
        try:
            self._create(state, progress)
        except (LabctlError, OSError) as exc:
            raise LabError(f"{exc}\n(what was made is recorded: `labctl down` removes it)") from None
        state.status = "up"
        self.state_file.save(state)
        return state

    def _refuse_foreign(self) -> None:
        clash = sorted({self.namespace(h) for h in self.inventory.hosts} & existing_namespaces())
        if clash:
            raise LabError(f"network namespace(s) {', '.join(clash)} exist but this lab did not "
                           "create them (no state file): refusing to touch them. Remove them "
                           "yourself or choose another `lab:` name.")

    def _create(self, state: LabState, progress: Progress) -> None:
        started = time.monotonic()
        sshd.make_private_dir(self.ssh_dir)
        self.ssh_dir.chmod(0o700)         # private keys below: the client's, each host's
        self.state_file.record(state, Resource("dir", str(self.ssh_dir)))
        client_key = self.ssh_dir / "id_ed25519"
        sshd.generate_keypair(client_key, f"labctl-{self.inventory.lab}")
        for host in self.inventory.hosts:
            ns = self.namespace(host)
            _ip("netns", "add", ns)
            self.state_file.record(state, Resource("netns", ns))
            _in_ns(ns, "ip", "link", "set", "lo", "up")
        self._veth(state)
        progress(f"namespaces and a {self.inventory.netns.queues}-queue veth pair ready")
        known_hosts = self.ssh_dir / "known_hosts"
        lines = []
        for index, host in enumerate(self.inventory.hosts):
            port = SSH_BASE_PORT + 1 + index
            lines.append(self._sshd(state, host, port, client_key))
            state.targets[host] = SshTarget(host, LISTEN, port, "root", str(client_key),
                                            str(known_hosts), self.namespace(host))
        known_hosts.write_text("\n".join(lines) + "\n")
        self.state_file.save(state)
        progress(f"sshd running in each namespace ({time.monotonic() - started:.1f} s)")

    def _veth(self, state: LabState) -> None:
        (dut, dut_spec), (lg, lg_spec) = sorted(self.inventory.hosts.items(),
                                                key=lambda kv: kv[1].role)
        queues = str(self.inventory.netns.queues)
        _ip("link", "add", dut_spec.interface, "netns", self.namespace(dut),
            "numrxqueues", queues, "numtxqueues", queues, "type", "veth",
            "peer", "name", lg_spec.interface, "netns", self.namespace(lg),
            "numrxqueues", queues, "numtxqueues", queues)
        self.state_file.record(state, Resource("veth", dut_spec.interface,
                                               {"netns": self.namespace(dut)}))
        for host, spec in ((dut, dut_spec), (lg, lg_spec)):
            ns = self.namespace(host)
            _in_ns(ns, "ip", "addr", "add", spec.data_address, "dev", spec.interface)
            # veth receives through per-RX-queue NAPI (like a NIC; per-queue counters work)
            # only with GRO on before the link is up, and for local UDP senders with TSO
            # also UDP GRO forwarding on the receiver.
            _in_ns(ns, "ethtool", "-K", spec.interface, "gro", "on", "rx-udp-gro-forwarding", "on")
            _in_ns(ns, "ip", "link", "set", spec.interface, "up")

    def _sshd(self, state: LabState, host: str, port: int, client_key: Path) -> str:
        host_dir = self.ssh_dir / host
        host_key = host_dir / "ssh_host_ed25519_key"
        sshd.generate_keypair(host_key, f"labctl-{self.inventory.lab}-{host}")
        authorized = host_dir / "authorized_keys"
        authorized.write_text(client_key.with_name(client_key.name + ".pub").read_text())
        config = sshd.write_sshd_config(host_dir, LISTEN, port, authorized, host_key,
                                        host_dir / "sshd.pid")
        pid = sshd.start_sshd_in_netns(self.namespace(host), config, host_dir / "sshd.log")
        self.state_file.record(state, Resource("process", str(pid),
                                               {"what": "sshd", "host": host, "config": str(config)}))
        return sshd.known_hosts_line(LISTEN, port, host_key.with_name(host_key.name + ".pub"))

    # ------------------------------------------------------------------ health, down
    def _health(self, state: LabState) -> list[str]:
        problems = []
        namespaces = existing_namespaces()
        for res in state.resources:
            if res.kind == "netns" and res.id not in namespaces:
                problems.append(f"namespace {res.id} is gone")
            if res.kind == "process" and not _is_our_sshd(int(res.id), res.info.get("config", "")):
                problems.append(f"{res.info.get('what', 'process')} PID {res.id} is gone")
        return problems

    def down(self, progress: Progress) -> bool:
        state = self.state_file.mark_removing()
        if state is None:
            return False
        for res in reversed(state.resources):
            self._remove(res, progress)
        self.state_file.remove()
        remove_empty_lab_dir(self.dir)
        return True

    def _remove(self, res: Resource, progress: Progress) -> None:
        if res.kind == "process":
            if _is_our_sshd(int(res.id), res.info.get("config", "")):
                stop_pid(int(res.id))
        elif res.kind == "veth":
            if res.info["netns"] in existing_namespaces():
                _in_ns(res.info["netns"], "ip", "link", "del", res.id, check=False)
        elif res.kind == "netns":
            _ip("netns", "del", res.id, check=False)
        elif res.kind == "dir":
            shutil.rmtree(res.id, ignore_errors=True)
        progress(f"removed {res.kind} {res.id}")

    def status(self) -> dict[str, str]:
        if not self.state_file.exists():
            return {}
        state = self.state_file.load()
        namespaces = existing_namespaces()
        sshd_of = {r.info.get("host"): r for r in state.resources if r.kind == "process"}
        result = {}
        for host in self.inventory.hosts:
            ns = self.namespace(host)
            res = sshd_of.get(host)
            alive = res is not None and _is_our_sshd(int(res.id), res.info.get("config", ""))
            sshd_text = f", sshd PID {res.id} running" if res is not None and alive else ", sshd NOT running"
            result[host] = ("namespace " + ns + (" present" if ns in namespaces else " MISSING")
                            + sshd_text)
        return result


def _is_our_sshd(pid: int, config: str) -> bool:
    """True only for the sshd we started (its command line names our config): PIDs get reused."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return bool(config) and config.encode() in cmdline   # sshd rewrites its title: substring
