"""A private libvirtd inside a network namespace (side effects: namespaces, mounts, daemons).

On a machine without systemd nobody starts libvirtd for us. ``start_libvirtd_in_netns``
starts ``virtlogd`` and ``libvirtd`` inside a network namespace (created here unless it
exists), so the guests' bridges, dnsmasq and all guest traffic live in that namespace. The
daemons' control socket stays at the usual /run/libvirt/libvirt-sock, so ``qemu:///system``
works from the root namespace (virsh, libvirt-python); only guest traffic needs the namespace.

The daemons run in their own mount namespace (labctl.local.nsexec: nsenter --net + unshare --mount
+ a fresh sysfs that shows the namespace's devices). Inside it, and only there, directories
of ``workdir`` are bind-mounted over libvirt's own:

    workdir/etc    -> /etc/libvirt        our qemu.conf, libvirtd.conf, virtlogd.conf; the
                                          persistent domain and network definitions
    workdir/lib    -> /var/lib/libvirt    domain state, dnsmasq configs and leases
    workdir/cache  -> /var/cache/libvirt  QEMU capability cache (first start probes: ~8 s)
    workdir/log    -> /var/log/libvirt    libvirtd.log, virtlogd.log, qemu/<domain>.log

so the host's libvirt files are never read or written, and the lab's qemu.conf (QEMU runs
as root) avoids the capability-cache re-probe that made define + start take 80 s. Whatever the
host keeps in those directories (e.g. /var/lib/libvirt/images) is invisible to this daemon:
keep disks, seed ISOs and console logs in the lab's own directory. libvirtd 9.0 resolves its
compiled-in user ``libvirt-qemu`` even when qemu.conf says root; where the host has no such
user (libvirt-daemon-system makes it; we do not install that), private copies of /etc/passwd
and /etc/group with that one entry added are bound over the host's, again only inside the
daemons' mount namespace. The root mount is made a slave there first where it is a mount
point, so nothing mounted inside propagates back to the host (checked after the start).

Host paths that did not exist before (empty mount points, /run/libvirt) are recorded in the
returned ``LibvirtHost`` and removed by ``stop_libvirtd``, which also destroys whatever runs on
this private daemon (it can only hold this lab's guests and networks), stops both daemons by
PID after checking that the PID is still our daemon, and deletes the namespace if it made it.
The workdir itself (configs, definitions, logs, capability cache) is left to its owner: a
restart with the same workdir is warm (0.3-0.7 s) and the logs survive for a post-mortem.

``python3 -m labctl.labs.libvirtd start|stop|status --netns NAME --workdir DIR`` does the same
from a shell script, keeping the handle in DIR/libvirtd.json.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labctl.errors import LabctlError, LabError
from labctl.local.nsexec import NETNS_DIR, netns_argv, run_in_netns
from labctl.local.procs import stop_pid

Progress = Callable[[str], None]

SYSTEM_URI = "qemu:///system"
LIBVIRTD_PIDFILE = Path("/run/libvirtd.pid")
VIRTLOGD_PIDFILE = Path("/run/virtlogd.pid")
RUN_DIR = Path("/run/libvirt")
HANDLE_NAME = "libvirtd.json"
QEMU_USER = "libvirt-qemu"
SAFE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
NETNS_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

# workdir subdirectory -> the libvirt directory it stands in for (inside the daemons' mounts)
BIND_DIRS = (("etc", "/etc/libvirt"), ("lib", "/var/lib/libvirt"),
             ("cache", "/var/cache/libvirt"), ("log", "/var/log/libvirt"))

# program -> Debian package that provides it
REQUIRED_PROGRAMS = {
    "libvirtd": "libvirt-daemon", "virtlogd": "libvirt-daemon", "virsh": "libvirt-clients",
    "qemu-system-x86_64": "qemu-system-x86", "dnsmasq": "dnsmasq-base",
    "iptables": "iptables", "ip": "iproute2", "nsenter": "util-linux",
    "unshare": "util-linux", "mountpoint": "util-linux",
}

QEMU_CONF = """\
# Written by labctl (labctl/libvirtd.py) for a private libvirtd; not the host's qemu.conf.
# QEMU runs as root: no capability-cache re-probe when /dev/kvm is root-only, no chown of
# the lab's images, no xattrs remembering owners.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
# The daemons see a fresh sysfs without the host's cgroup mounts, and QEMU needs no
# private /dev: cgroups and per-domain mount namespaces off.
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "logd"
"""

LIBVIRTD_CONF = """\
# Written by labctl (labctl/libvirtd.py): a private libvirtd that serves root only.
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
"""

VIRTLOGD_CONF = """\
# Written by labctl (labctl/libvirtd.py).
log_outputs = "3:file:/var/log/libvirt/virtlogd.log"
"""

# Runs as: sh -c DAEMONS sh SRC1 DST1 SRC2 DST2 ... --   (after labctl.local.nsexec's own sysfs)
_DAEMONS = r"""set -e
if mountpoint -q /; then mount --make-rslave /; fi
while [ "$1" != -- ]; do
  mount --bind "$1" "$2"
  mount --make-private "$2"
  shift 2
done
virtlogd --daemon
exec libvirtd --daemon
"""


def _quiet(message: str) -> None:
    """The default progress callback: say nothing."""


@dataclass(frozen=True)
class LibvirtHost:
    """A running private libvirtd: what ``stop_libvirtd`` needs to undo ``start``."""

    netns: str
    workdir: Path
    libvirtd_pid: int
    virtlogd_pid: int
    uri: str = SYSTEM_URI
    created_netns: bool = True
    created_paths: tuple[str, ...] = field(default=())

    @property
    def log_dir(self) -> Path:
        """Where the daemons' /var/log/libvirt really is (libvirtd.log, qemu/<domain>.log)."""
        return self.workdir / "log"

    def qemu_log(self, domain: str) -> Path:
        """QEMU's own log (command line, errors) of ``domain``."""
        return self.log_dir / "qemu" / f"{domain}.log"

    def dnsmasq_status(self, bridge: str) -> Path:
        """The JSON lease list libvirt's dnsmasq keeps for the network on ``bridge``."""
        return self.workdir / "lib" / "dnsmasq" / f"{bridge}.status"

    def to_json(self) -> str:
        data = asdict(self)
        data["workdir"] = str(self.workdir)
        data["created_paths"] = list(self.created_paths)
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LibvirtHost:
        try:
            data = json.loads(text)
            paths = data["created_paths"]
            if not isinstance(paths, list):
                raise TypeError(f"created_paths is not a list: {paths!r}")
            return cls(netns=str(data["netns"]), workdir=Path(data["workdir"]),
                       libvirtd_pid=int(data["libvirtd_pid"]),
                       virtlogd_pid=int(data["virtlogd_pid"]), uri=str(data["uri"]),
                       created_netns=bool(data["created_netns"]),
                       created_paths=tuple(str(path) for path in paths))
        except (ValueError, KeyError, TypeError) as exc:
            raise LabError(f"not a libvirtd handle ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------- start


def start_libvirtd_in_netns(netns: str, workdir: Path, progress: Progress = _quiet,
                            timeout: float = 120.0) -> LibvirtHost:
    """Start virtlogd + libvirtd inside ``netns`` (created if missing) with the lab's own
    config under ``workdir``; return once ``qemu:///system`` answers. Undoes itself on error."""
    workdir = workdir.absolute()
    _check_can_start(netns, workdir)
    created_netns = _ensure_netns(netns)
    created: list[str] = []
    pids = (0, 0)
    try:
        binds = _prepare_workdir(workdir) + _nss_overlay(workdir)
        created += _ensure_mount_points([target for _, target in binds])
        if not RUN_DIR.exists():
            created.append(str(RUN_DIR))
        progress(f"libvirtd: starting virtlogd and libvirtd in network namespace {netns}")
        pids = _launch_daemons(netns, workdir, binds)
        host = LibvirtHost(netns, workdir, libvirtd_pid=pids[1], virtlogd_pid=pids[0],
                           created_netns=created_netns, created_paths=tuple(created))
        _wait_until_answering(host, timeout, progress)
        _check_no_mount_leaked(binds)
        return host
    except BaseException:
        stop_libvirtd(LibvirtHost(netns, workdir, libvirtd_pid=pids[1], virtlogd_pid=pids[0],
                                  created_netns=created_netns, created_paths=tuple(created)))
        raise


def missing_programs() -> list[str]:
    """Programs a private libvirtd needs that are missing, as 'program (package)'."""
    return [f"{program} ({package})" for program, package in REQUIRED_PROGRAMS.items()
            if shutil.which(program, path=SAFE_PATH) is None]


def _check_can_start(netns: str, workdir: Path) -> None:
    if not NETNS_PATTERN.match(netns):
        raise LabError(f"network namespace name {netns!r}: use letters, digits, '_.-'")
    for _, target in BIND_DIRS:
        if workdir == Path(target) or Path(target) in workdir.parents:
            raise LabError(f"workdir {workdir} is inside {target}, which the private "
                           "daemon sees as the workdir itself: choose another directory")
    if os.geteuid() != 0:
        raise LabError("starting libvirtd needs root (network namespace, mounts, daemons)")
    missing = missing_programs()
    if missing:
        raise LabError("cannot start libvirtd, missing: " + ", ".join(missing)
                       + " (run scripts/setup.sh)")
    for pidfile, program in ((LIBVIRTD_PIDFILE, "libvirtd"), (VIRTLOGD_PIDFILE, "virtlogd")):
        pid = _pid_in(pidfile)
        if pid is not None and _runs_program(pid, program):
            raise LabError(f"a {program} is already running (PID {pid}, {pidfile}): labctl "
                           f"starts its own only where none runs; use {SYSTEM_URI} directly "
                           "(no netns in the inventory) or stop that daemon first")
    if libvirtd_running(SYSTEM_URI):
        raise LabError(f"{SYSTEM_URI} already answers (a libvirt daemon runs): use it directly")


def _ensure_netns(netns: str) -> bool:
    """Create ``netns`` with lo up; False if it already existed (then it is not ours)."""
    if Path(NETNS_DIR, netns).exists():
        return False
    _run(["ip", "netns", "add", netns])
    try:
        run_in_netns(netns, ["ip", "link", "set", "lo", "up"])
    except LabError:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        raise
    return True


def _prepare_workdir(workdir: Path) -> list[tuple[str, str]]:
    """Write the daemons' configs; return the (source, target) directory bind mounts."""
    for sub, _ in BIND_DIRS:
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    etc = workdir / "etc"
    for name, text in (("qemu.conf", QEMU_CONF), ("libvirtd.conf", LIBVIRTD_CONF),
                       ("virtlogd.conf", VIRTLOGD_CONF)):
        (etc / name).write_text(text)
        (etc / name).chmod(0o600)
    return [(str(workdir / sub), target) for sub, target in BIND_DIRS]


def _nss_overlay(workdir: Path) -> list[tuple[str, str]]:
    """Private passwd/group files with ``libvirt-qemu`` added, where the host lacks it."""
    binds: list[tuple[str, str]] = []
    nss = workdir / "nss"
    if not _has_user(QEMU_USER):
        nss.mkdir(exist_ok=True)
        uid = _free_id(64055, lambda n: _exists(pwd.getpwuid, n))
        _write_with_line(Path("/etc/passwd"), nss / "passwd",
                         f"{QEMU_USER}:x:{uid}:{uid}:labctl private:/var/lib/libvirt:"
                         "/usr/sbin/nologin")
        binds.append((str(nss / "passwd"), "/etc/passwd"))
    if not _has_group(QEMU_USER):
        nss.mkdir(exist_ok=True)
        gid = _free_id(64055, lambda n: _exists(grp.getgrgid, n))
        _write_with_line(Path("/etc/group"), nss / "group", f"{QEMU_USER}:x:{gid}:")
        binds.append((str(nss / "group"), "/etc/group"))
    return binds


def _has_user(name: str) -> bool:
    return _exists(pwd.getpwnam, name)


def _has_group(name: str) -> bool:
    return _exists(grp.getgrnam, name)


def _exists(lookup: Callable[[Any], object], key: object) -> bool:
    try:
        lookup(key)
    except KeyError:
        return False
    return True


def _free_id(preferred: int, taken: Callable[[int], bool]) -> int:
    candidate = preferred
    while taken(candidate):
        candidate += 1
    return candidate


def _write_with_line(original: Path, copy: Path, line: str) -> None:
    text = original.read_text()
    if text and not text.endswith("\n"):
        text += "\n"
    copy.write_text(text + line + "\n")
    copy.chmod(0o644)


def _ensure_mount_points(targets: list[str]) -> list[str]:
    """Create missing bind-mount targets (directories only) and return those created."""
    created = []
    for target in targets:
        path = Path(target)
        if not path.exists():
            path.mkdir(mode=0o755)
            created.append(target)
    return created


def _launch_daemons(netns: str, workdir: Path,
                    binds: list[tuple[str, str]]) -> tuple[int, int]:
    """Run the wrapper that mounts and daemonizes both; return (virtlogd, libvirtd) PIDs."""
    pairs = [part for bind in binds for part in bind]
    argv = netns_argv(netns, ["sh", "-c", _DAEMONS, "sh", *pairs, "--"], own_sysfs=True)
    out = workdir / "log" / "start.out"
    with out.open("w") as stream:         # a file, not a pipe: a daemon may keep it open
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=stream,
                              stderr=subprocess.STDOUT, env={"PATH": SAFE_PATH}, timeout=60)
    try:
        if done.returncode != 0:
            raise LabError(f"starting the libvirt daemons in {netns} failed (exit "
                           f"{done.returncode}):\n{_tail(out)}\n"
                           f"{_tail(workdir / 'log' / 'libvirtd.log')}".rstrip())
        return (_wait_for_pidfile(VIRTLOGD_PIDFILE, "virtlogd", netns),
                _wait_for_pidfile(LIBVIRTD_PIDFILE, "libvirtd", netns))
    except LabError:
        _end_our_daemons(netns)           # e.g. virtlogd started, libvirtd did not
        raise


def _end_our_daemons(netns: str) -> None:
    for pidfile, program in ((LIBVIRTD_PIDFILE, "libvirtd"), (VIRTLOGD_PIDFILE, "virtlogd")):
        pid = _pid_in(pidfile)
        if pid is not None and _is_our_daemon(pid, program, netns):
            stop_pid(pid, 10.0)


def _wait_for_pidfile(pidfile: Path, program: str, netns: str, wait: float = 10.0) -> int:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        pid = _pid_in(pidfile)
        if pid is not None and _is_our_daemon(pid, program, netns):
            return pid
        time.sleep(0.02)
    raise LabError(f"{program} wrote no PID of a live {program} in {netns} to {pidfile} "
                   f"within {wait:g}s")


def _wait_until_answering(host: LibvirtHost, timeout: float, progress: Progress) -> None:
    """Poll ``virsh version``; libvirtd holds connections until its drivers are ready, so
    one poll can block for the whole QEMU probe (~8 s on a cold capability cache)."""
    started = time.monotonic()
    if not any((host.workdir / "cache" / "qemu" / "capabilities").glob("*.xml")):
        progress("libvirtd: first start with this workdir: probing QEMU's capabilities "
                 "(~10 s; later starts reuse the cache)")
    while not libvirtd_running(host.uri):
        if not _is_our_daemon(host.libvirtd_pid, "libvirtd", host.netns):
            raise LabError(f"libvirtd (PID {host.libvirtd_pid}) exited during startup:\n"
                           f"{_tail(host.log_dir / 'libvirtd.log')}")
        if time.monotonic() - started > timeout:
            raise LabError(f"libvirtd did not answer on {host.uri} within {timeout:g}s:\n"
                           f"{_tail(host.log_dir / 'libvirtd.log')}")
        time.sleep(0.05)
    progress(f"libvirtd: {host.uri} answers after {time.monotonic() - started:.1f}s "
             f"(libvirtd PID {host.libvirtd_pid}, virtlogd PID {host.virtlogd_pid})")


def _check_no_mount_leaked(binds: list[tuple[str, str]]) -> None:
    """The binds must exist only in the daemons' mount namespace, never in ours."""
    targets = {target for _, target in binds}
    leaked = sorted(targets & set(_mount_points()))
    if leaked:
        raise LabError("the daemons' private mounts propagated to this mount namespace ("
                       + ", ".join(leaked) + "): its root mount is shared and not a mount "
                       "point here (a chroot?); refusing to go on")


def _mount_points() -> Iterator[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4:
            yield fields[4].replace("\\040", " ")


# ---------------------------------------------------------------- stop


def stop_libvirtd(host: LibvirtHost, timeout: float = 30.0) -> None:
    """Destroy what runs on the private daemon, stop both daemons (by PID, only if still
    ours), remove the host paths and the namespace that start created. Idempotent."""
    if _is_our_daemon(host.libvirtd_pid, "libvirtd", host.netns):
        _destroy_everything(host.uri)
        stop_pid(host.libvirtd_pid, timeout)
    if _is_our_daemon(host.virtlogd_pid, "virtlogd", host.netns):
        stop_pid(host.virtlogd_pid, timeout)
    _end_leftovers_in_netns(host.netns)
    for pidfile, pid in ((LIBVIRTD_PIDFILE, host.libvirtd_pid),
                         (VIRTLOGD_PIDFILE, host.virtlogd_pid)):
        if pid and _pid_in(pidfile) == pid:
            pidfile.unlink(missing_ok=True)
    _remove_created_paths(host.created_paths)
    if host.created_netns:
        subprocess.run(["ip", "netns", "del", host.netns], capture_output=True,
                       stdin=subprocess.DEVNULL)


def _destroy_everything(uri: str) -> None:
    """Stop every running domain and active network of our private daemon (best effort:
    it only ever holds this lab's guests and networks, its /etc/libvirt is the workdir's)."""
    try:
        for name in _virsh_names(uri, "list", "--name"):
            _virsh(uri, "destroy", name)
        for name in _virsh_names(uri, "net-list", "--name"):
            _virsh(uri, "net-destroy", name)
    except subprocess.TimeoutExpired:
        pass                              # a daemon that hangs gets SIGTERM/SIGKILL next


def _virsh_names(uri: str, *args: str) -> list[str]:
    done = _virsh(uri, *args)
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def _virsh(uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=30)


def _end_leftovers_in_netns(netns: str) -> None:
    """QEMU or dnsmasq processes our daemon left in our namespace (e.g. it was killed)."""
    try:
        inode = os.stat(Path(NETNS_DIR, netns)).st_ino
    except FileNotFoundError:
        return
    for pid in _pids_in_netns(inode):
        comm = _read(f"/proc/{pid}/comm").strip()
        cmdline = _read(f"/proc/{pid}/cmdline").split("\0")
        libvirts_dnsmasq = comm == "dnsmasq" and any(
            arg.startswith("--conf-file=/var/lib/libvirt/dnsmasq/") for arg in cmdline)
        libvirts_qemu = comm.startswith("qemu-system") and "-name" in cmdline
        if libvirts_dnsmasq or libvirts_qemu:
            stop_pid(pid, 10.0)


def _pids_in_netns(inode: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.stat(entry / "ns" / "net").st_ino == inode:
                    pids.append(int(entry.name))
            except (FileNotFoundError, PermissionError, ProcessLookupError):
                continue
    return pids


def _remove_created_paths(paths: tuple[str, ...]) -> None:
    """Remove what start created on the host: empty mount points and /run/libvirt (unless
    some other libvirtd has taken it over since)."""
    for text in reversed(paths):
        path = Path(text)
        if path == RUN_DIR:
            other = _pid_in(LIBVIRTD_PIDFILE)
            if other is None or not _runs_program(other, "libvirtd"):
                shutil.rmtree(path, ignore_errors=True)
            continue
        try:
            path.rmdir()
        except OSError:
            pass          # gone already, or someone put something there: leave it


# ---------------------------------------------------------------- queries


def libvirtd_running(uri: str = SYSTEM_URI) -> bool:
    """True if a libvirt daemon answers on ``uri``."""
    try:
        return _virsh(uri, "version").returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


def find_running_libvirtd() -> int | None:
    """PID of the libvirtd that holds /run/libvirtd.pid (ours or the host's), or None."""
    pid = _pid_in(LIBVIRTD_PIDFILE)
    return pid if pid is not None and _runs_program(pid, "libvirtd") else None


def host_alive(host: LibvirtHost) -> bool:
    """True while ``host``'s libvirtd runs (in its namespace) and answers on its URI."""
    return _is_our_daemon(host.libvirtd_pid, "libvirtd", host.netns) and \
        libvirtd_running(host.uri)


def vhost_net_available() -> bool:
    """True if this machine has /dev/vhost-net (libvirt uses vhost only for KVM guests)."""
    return Path("/dev/vhost-net").exists()


def load_host(workdir: Path) -> LibvirtHost | None:
    """The handle ``python3 -m labctl.labs.libvirtd start`` left in ``workdir``, if any."""
    path = workdir / HANDLE_NAME
    if not path.exists():
        return None
    return LibvirtHost.from_json(path.read_text())


# ---------------------------------------------------------------- processes


def _pid_in(pidfile: Path) -> int | None:
    text = _read(str(pidfile)).strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
        return ""


def _runs_program(pid: int, program: str) -> bool:
    """True if ``pid`` is alive (not a zombie) and runs ``program`` (by argv[0] basename)."""
    if pid <= 0:
        return False
    argv0 = _read(f"/proc/{pid}/cmdline").split("\0", 1)[0]
    if os.path.basename(argv0) != program:
        return False
    stat = _read(f"/proc/{pid}/stat")
    return bool(stat) and stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _is_our_daemon(pid: int, program: str, netns: str) -> bool:
    """``pid`` runs ``program`` inside ``netns`` (if that namespace is still mounted)."""
    if not _runs_program(pid, program):
        return False
    try:
        wanted = os.stat(Path(NETNS_DIR, netns)).st_ino
    except FileNotFoundError:
        return True
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == wanted
    except (FileNotFoundError, ProcessLookupError):
        return False


def _tail(path: Path, lines: int = 10) -> str:
    return "\n".join(_read(str(path)).strip().splitlines()[-lines:])


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed (exit {done.returncode}): "
                       f"{done.stderr.strip()}")


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``python3 -m labctl.labs.libvirtd start|stop|status --netns NAME --workdir DIR`` (for
    scripts; the only place in this module that prints)."""
    parser = argparse.ArgumentParser(
        prog="python3 -m labctl.labs.libvirtd",
        description="Start, stop or check a private libvirtd inside a network namespace.")
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--netns", help="network namespace (start: created if missing)")
    parser.add_argument("--workdir", type=Path, required=True,
                        help=f"the daemons' config, state and logs; holds {HANDLE_NAME}")
    args = parser.parse_args(argv)
    if args.action == "start" and not args.netns:
        parser.error("start needs --netns")
    try:
        return _ACTIONS[args.action](args.workdir.absolute(), args.netns)
    except LabctlError as exc:
        print(f"labctl.labs.libvirtd {args.action}: {exc}", file=sys.stderr)
        return exc.exit_code


def _cli_start(workdir: Path, netns: str | None) -> int:
    assert netns is not None
    old = load_host(workdir)
    if old is not None and host_alive(old):
        print(f"libvirtd already running: PID {old.libvirtd_pid} in {old.netns}, {old.uri}")
        return 0
    started = time.monotonic()
    host = start_libvirtd_in_netns(netns, workdir, progress=_to_stderr)
    (workdir / HANDLE_NAME).write_text(host.to_json())
    print(f"libvirtd running: PID {host.libvirtd_pid} in network namespace {host.netns}, "
          f"{host.uri} ({time.monotonic() - started:.1f}s)")
    return 0


def _cli_stop(workdir: Path, netns: str | None) -> int:
    host = load_host(workdir)
    if host is None:
        print(f"nothing to stop: no {workdir / HANDLE_NAME}")
        return 0
    if netns and netns != host.netns:
        raise LabError(f"{workdir / HANDLE_NAME} is for namespace {host.netns}, not {netns}")
    stop_libvirtd(host)
    (workdir / HANDLE_NAME).unlink(missing_ok=True)
    print(f"libvirtd stopped; namespace {host.netns} "
          + ("deleted" if host.created_netns else "left (not created by us)"))
    return 0


def _cli_status(workdir: Path, netns: str | None) -> int:
    host = load_host(workdir)
    if host is None or not host_alive(host):
        print("libvirtd not running" + ("" if host is None else f" (stale {HANDLE_NAME})"))
        return 1
    print(f"libvirtd running: PID {host.libvirtd_pid} in network namespace {host.netns}, "
          f"{host.uri}")
    return 0


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


_ACTIONS: dict[str, Callable[[Path, str | None], int]] = {
    "start": _cli_start, "stop": _cli_stop, "status": _cli_status,
}

if __name__ == "__main__":
    sys.exit(main())
