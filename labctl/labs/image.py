"""The libvirt lab's guest image: Debian from Debian packages (debootstrap + chroot) as a qcow2.

Side-effects layer (root only): a sparse raw disk with one MBR partition on a loop device,
debootstrap into it, the lab's packages installed with apt in a chroot (private /dev, /proc,
/sys, /run), GRUB for BIOS boot with ``root=UUID=``, then ``qemu-img convert`` to a compressed
qcow2. The result lives in a cache directory under a name keyed by everything that shaped it
(suite, packages, kernel command line, disk size, mirror, recipe version), next to a JSON
manifest; a half-built image is never taken for a good one (built under a temporary name,
renamed last). The Debian mirror and the settings needed to reach it come from this
machine's own apt configuration. The pure helpers (apt sources, the key, /etc/default/grub,
progress condensing) come first and are unit-tested without root.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labctl.errors import LabError

Progress = Callable[[str], None]

RECIPE_VERSION = 3          # bump whenever the build steps change what ends up in the image
DEFAULT_PACKAGES: tuple[str, ...] = (
    "systemd", "systemd-sysv", "udev", "dbus", "openssh-server", "cloud-init",
    "linux-image-amd64", "grub-pc", "ethtool", "iproute2", "procps", "python3", "tuned",
    "tuna", "irqbalance", "linux-perf", "qemu-guest-agent", "netbase",
    "zstd")                  # initramfs-tools compresses with zstd when it is there (else gzip)
# The last console= is /dev/console: systemd's and cloud-init's messages go there, so the
# serial port (which libvirt logs to a file) comes last; the kernel writes to both.
DEFAULT_CMDLINE = "net.ifnames=0 console=tty0 console=ttyS0,115200"
DEBIAN_RELEASES = {"bullseye": "debian11", "bookworm": "debian12", "trixie": "debian13"}
GUEST_DISK = "/dev/vda"      # where the libvirt domains attach the disk (virtio-blk)
APT_DIR = Path("/etc/apt")
# command -> Debian package that provides it (for "missing tool" errors)
HOST_TOOLS = {"debootstrap": "debootstrap", "sfdisk": "fdisk", "mkfs.ext4": "e2fsprogs",
              "losetup": "mount", "mount": "mount", "umount": "mount", "fstrim": "util-linux",
              "partx": "util-linux", "unshare": "util-linux",
              "chroot": "coreutils", "qemu-img": "qemu-utils", "wget": "wget"}
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/root",
              "DEBIAN_FRONTEND": "noninteractive", "DEBCONF_NONINTERACTIVE_SEEN": "true"}
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


@dataclass(frozen=True)
class ImageSpec:
    """What the guest image is made of (the defaults are the blog's guest)."""

    suite: str = "bookworm"
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    cmdline: str = DEFAULT_CMDLINE
    disk_gb: int = 4


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    manifest_path: Path
    key: str
    manifest: dict[str, object]


# ===================================================================== pure helpers


@dataclass(frozen=True)
class AptSource:
    """One entry of an apt sources file, with the text it was written as."""

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    signed_by: str            # a keyring path, or "" (none, or an inline key)
    text: str
    deb822: bool


def _deb822_fields(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    name = ""
    for line in stanza.splitlines():
        if line.startswith("#"):
            continue
        if line[:1] in (" ", "\t") and name:
            fields[name] += "\n" + line.strip()
        elif ":" in line:
            name, value = line.split(":", 1)
            name = name.strip().lower()
            fields[name] = value.strip()
    return fields


def parse_deb822_sources(text: str) -> list[AptSource]:
    """Entries of a ``*.sources`` file (deb822); ``Enabled: no`` entries are left out."""
    sources = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = _deb822_fields(stanza)
        if not fields.get("types") or fields.get("enabled", "yes").lower() == "no":
            continue
        signed_by = fields.get("signed-by", "")
        sources.append(AptSource(
            types=tuple(fields["types"].split()), uris=tuple(fields.get("uris", "").split()),
            suites=tuple(fields.get("suites", "").split()),
            signed_by=signed_by if signed_by.startswith("/") and "\n" not in signed_by else "",
            text=stanza.strip() + "\n", deb822=True))
    return sources


_ONE_LINE = re.compile(r"^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)")


def parse_one_line_sources(text: str) -> list[AptSource]:
    """Entries of ``sources.list`` / ``*.list`` (one-line format)."""
    sources = []
    for line in text.splitlines():
        match = _ONE_LINE.match(line.strip())
        if not match:
            continue
        kind, options, uri, suite = match.groups()
        signed = re.search(r"signed-by=(\S+)", options or "")
        sources.append(AptSource((kind,), (uri,), (suite,), signed.group(1) if signed else "",
                                 line.strip() + "\n", deb822=False))
    return sources


def sources_for_suite(sources: list[AptSource], suite: str) -> list[AptSource]:
    """Binary entries for ``suite`` and its companions (``-updates``, ``-security``)."""
    def serves(name: str) -> bool:
        return name == suite or name.startswith((f"{suite}-", f"{suite}/"))
    return [s for s in sources if "deb" in s.types and any(serves(x) for x in s.suites)]


def pick_mirror(sources: list[AptSource], suite: str) -> str | None:
    """The archive URI serving ``suite`` itself (not -security), else any ``.../debian``."""
    for source in sources:
        if "deb" in source.types and suite in source.suites and source.uris:
            return source.uris[0].rstrip("/")
    for source in sources:
        if "deb" in source.types and any(u.rstrip("/").endswith("/debian") for u in source.uris):
            return next(u for u in source.uris if u.rstrip("/").endswith("/debian")).rstrip("/")
    return None


def image_key(spec: ImageSpec, mirror: str) -> str:
    """Cache key: a hash of every input that shapes the image."""
    inputs = {"recipe": RECIPE_VERSION, "suite": spec.suite, "cmdline": spec.cmdline,
              "packages": sorted(set(spec.packages)), "disk_gb": spec.disk_gb,
              "mirror": mirror.rstrip("/")}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def image_name(spec: ImageSpec, key: str) -> str:
    return f"{DEBIAN_RELEASES.get(spec.suite, 'debian-' + spec.suite)}-{key}"


def grub_defaults(text: str, cmdline: str) -> str:
    """/etc/default/grub with the lab's kernel command line, a 1 s menu and a serial terminal.

    Edited in place (not a grub.d drop-in) so that tools which later append to
    GRUB_CMDLINE_LINUX_DEFAULT in this file (tuned's bootloader plugin) still take effect.
    """
    wanted = {"GRUB_TIMEOUT": "1", "GRUB_CMDLINE_LINUX_DEFAULT": '""',
              "GRUB_CMDLINE_LINUX": shlex.quote(cmdline) if cmdline else '""',
              "GRUB_TERMINAL": '"console serial"',
              "GRUB_SERIAL_COMMAND": '"serial --unit=0 --speed=115200"'}
    lines, seen = [], set()
    for line in text.splitlines():
        name = line.split("=", 1)[0].strip().lstrip("#").strip()
        if name in wanted and "=" in line:
            if name not in seen:
                lines.append(f"{name}={wanted[name]}")
            seen.add(name)
        else:
            lines.append(line)
    lines += [f"{name}={value}" for name, value in wanted.items() if name not in seen]
    return "\n".join(lines) + "\n"


class LineCondenser:
    """Turns a tool's flood of output lines into a few progress lines.

    Each line falls into a group (``classify``; None = always shown, e.g. warnings). The first
    line of each group is shown, then at most one line per ``interval`` seconds, each saying
    how many it stands for.
    """

    def __init__(self, label: str, classify: Callable[[str], str | None], emit: Progress,
                 interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.label, self.classify, self.emit = label, classify, emit
        self.interval, self.clock = interval, clock
        self.group: str | None = None
        self.hidden = 0
        self.last_shown = float("-inf")

    def feed(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        group, now = self.classify(line), self.clock()
        if group is None:
            self._show(line, now)
        elif group != self.group:
            self._show(line, now)
            self.group = group
        elif now - self.last_shown >= self.interval:
            self._show(line, now)
        else:
            self.hidden += 1

    def close(self) -> None:
        if self.hidden:
            self.emit(f"{self.label}: ... ({self.hidden} more lines)")
            self.hidden = 0

    def _show(self, line: str, now: float) -> None:
        more = f"  (+{self.hidden} lines)" if self.hidden else ""
        self.emit(f"{self.label}: {line}{more}")
        self.hidden, self.last_shown = 0, now


_DEBOOTSTRAP_GROUPS = {"Retrieving": "download", "Validating": "download", "Extracting": "extract",
                       "Unpacking": "unpack", "Configuring": "configure", "Installing": "install"}


def classify_debootstrap(line: str) -> str | None:
    if line.startswith(("E:", "W:")):
        return None
    verb = line[3:].split(" ", 1)[0] if line.startswith("I: ") else ""
    return _DEBOOTSTRAP_GROUPS.get(verb, "other")


def classify_apt(line: str) -> str | None:
    """apt/dpkg interleave their phases batch by batch: one group, shown by time only."""
    if line.startswith(("E:", "W:", "dpkg: error", "Errors were")):
        return None
    return "apt"


# ===================================================================== host and cache


def cache_root() -> Path:
    """$LABCTL_CACHE, else /var/cache/labctl for root, else ~/.cache/labctl."""
    if os.environ.get("LABCTL_CACHE"):
        return Path(os.environ["LABCTL_CACHE"])
    return Path("/var/cache/labctl") if os.geteuid() == 0 else Path.home() / ".cache" / "labctl"


def host_sources(apt_dir: Path | None = None) -> list[AptSource]:
    """Every enabled entry of the machine's apt sources, in apt's reading order."""
    apt_dir = apt_dir or APT_DIR
    sources: list[AptSource] = []
    if (apt_dir / "sources.list").is_file():
        sources += parse_one_line_sources((apt_dir / "sources.list").read_text())
    for path in sorted((apt_dir / "sources.list.d").glob("*")):
        if path.suffix == ".list":
            sources += parse_one_line_sources(path.read_text())
        elif path.suffix == ".sources":
            sources += parse_deb822_sources(path.read_text())
    return sources


def host_mirror(suite: str = ImageSpec.suite) -> str:
    """The Debian mirror this machine's apt uses (LabError if it has none)."""
    mirror = pick_mirror(host_sources(), suite)
    if mirror is None:
        raise LabError(f"no Debian mirror in {APT_DIR}/sources.list or {APT_DIR}/sources.list.d/: "
                       "the guest image is built from the machine's own apt mirror; add one")
    return mirror


def _paths(cache: Path, spec: ImageSpec, key: str) -> tuple[Path, Path]:
    base = cache / "images" / image_name(spec, key)
    return base.with_name(base.name + ".qcow2"), base.with_name(base.name + ".manifest.json")


def find_image(spec: ImageSpec | None = None, cache: Path | None = None) -> ImageInfo | None:
    """The cached image for ``spec`` (built from this machine's mirror), or None."""
    spec, cache = spec or ImageSpec(), cache or cache_root()
    key = image_key(spec, host_mirror(spec.suite))
    path, manifest_path = _paths(cache, spec, key)
    if not (path.is_file() and manifest_path.is_file()):
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("key") != key:
        return None
    return ImageInfo(path, manifest_path, key, manifest)


def build_image(spec: ImageSpec | None = None, cache: Path | None = None,
                progress: Progress = lambda m: None, force: bool = False) -> ImageInfo:
    """The cached image for ``spec``; built first when missing (or when ``force``)."""
    spec, cache = spec or ImageSpec(), cache or cache_root()
    mirror = host_mirror(spec.suite)
    found = None if force else find_image(spec, cache)
    if found:
        progress(f"image: cached {found.path.name} (key {found.key})")
        return found
    _preflight()
    images = cache / "images"
    images.mkdir(parents=True, exist_ok=True)
    key = image_key(spec, mirror)
    with _build_lock(images / f".lock-{key}", progress):
        found = None if force else find_image(spec, cache)
        if found:                      # another process built it while we waited
            return found
        _remove_stale_builds(images, progress)
        return _build_in_own_mount_namespace(spec, mirror, key, cache, progress)


def _build_in_own_mount_namespace(spec: ImageSpec, mirror: str, key: str, cache: Path,
                                  progress: Progress) -> ImageInfo:
    """Run the build in a child process with a mount namespace of its own.

    Every mount of the build then lives and dies with that process (even when it is killed),
    and a mount namespace that some other program creates meanwhile (``ip netns exec``,
    ``unshare``) cannot take a copy of the image's filesystem with it, which would keep the
    filesystem alive, unflushed, after the build's own umount.
    """
    request = json.dumps({"spec": asdict(spec), "mirror": mirror, "key": key, "cache": str(cache)})
    package_root = str(Path(__file__).resolve().parent.parent)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(
        filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    argv = ["unshare", "--mount", "--propagation", "unchanged",
            sys.executable, "-m", "labctl.labs.image", request]
    result: dict[str, str] = {}
    output: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL, env=env) as child:
        try:
            assert child.stdout is not None
            for line in child.stdout:
                _relay(line, progress, result, output)
        finally:
            child.wait()          # on Ctrl-C the child cleans up first (same process group)
    if "error" in result:
        raise LabError(result["error"])
    if "path" not in result:
        tail = "".join(output[-15:]).rstrip().replace("\n", "\n    ")
        raise LabError(f"the image build process ended (exit {child.returncode}) without an "
                       f"image:\n    {tail}")
    manifest_path = Path(result["manifest_path"])
    return ImageInfo(Path(result["path"]), manifest_path, key, json.loads(manifest_path.read_text()))


def _relay(line: str, progress: Progress, result: dict[str, str], output: list[str]) -> None:
    """One line from the build process: {"progress": …}, {"error": …} or {"path": …, …}."""
    try:
        message = json.loads(line)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        output.append(line)              # not ours (a traceback): kept for the error message
    elif "progress" in message:
        progress(str(message["progress"]))
    else:
        result.update({str(k): str(v) for k, v in message.items()})


def _child_main(request_json: str) -> int:
    """The build process (see _build_in_own_mount_namespace): JSON lines on stdout."""
    request = json.loads(request_json)
    spec = ImageSpec(**{**request["spec"], "packages": tuple(request["spec"]["packages"])})

    def emit(message: dict[str, str]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
    # our mounts must not propagate back to the machine's namespace (shared "/" under systemd)
    subprocess.run(["mount", "--make-rprivate", "/"], capture_output=True, stdin=subprocess.DEVNULL)
    try:
        info = _Build(spec, request["mirror"], request["key"], Path(request["cache"]),
                      lambda text: emit({"progress": text})).run()
    except LabError as exc:
        emit({"error": str(exc)})
        return 1
    emit({"path": str(info.path), "manifest_path": str(info.manifest_path)})
    return 0


def _preflight() -> None:
    if os.geteuid() != 0:
        raise LabError("building the guest image needs root (loop devices, mount, chroot)")
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if not shutil.which(tool, path=path)})
    if missing:
        raise LabError("building the guest image needs these Debian packages: "
                       f"{' '.join(missing)} (apt-get install {' '.join(missing)})")
    if not Path("/dev/loop-control").exists():
        raise LabError("no loop devices (/dev/loop-control missing): load the loop module "
                       "(modprobe loop) or build the image on a machine that has them")


@contextlib.contextmanager
def _build_lock(path: Path, progress: Progress) -> Iterator[None]:
    with open(path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("image: another build of the same image is running; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# ===================================================================== subprocesses


def _run(argv: list[str], *, log: Path | None = None, on_line: Progress | None = None,
         env: dict[str, str] | None = None, what: str = "") -> str:
    """Run argv, stdout and stderr merged (into ``log`` too); LabError with the tail on failure."""
    lines: list[str] = []
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(open(log, "a")) if log else None
        if sink:
            sink.write(f"$ {shlex.join(argv)}\n")
        proc = stack.enter_context(subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, errors="replace", env=env))
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if sink:
                sink.write(line)
            if on_line:
                on_line(line)
        code = proc.wait()
    if code != 0:
        tail = "".join(lines[-15:]).rstrip().replace("\n", "\n    ")
        raise LabError(f"{what or argv[0]} failed (exit {code}): {shlex.join(argv)}\n    {tail}")
    return "".join(lines)


def _base_env() -> dict[str, str]:
    env = dict(CHROOT_ENV)
    env.update({name: os.environ[name] for name in PROXY_VARIABLES if name in os.environ})
    return env


def _mountpoints_under(path: Path) -> list[Path]:
    """Mount points at or below ``path`` (deepest first), from /proc/self/mountinfo."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4]))
        if point == path or path in point.parents:
            found.append(point)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _unmount(point: Path, *, lazy: bool = True) -> bool:
    """umount, retried for a few seconds while busy; then, if allowed, a lazy umount."""
    for _ in range(20):
        done = subprocess.run(["umount", str(point)], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        if done.returncode == 0 or "not mounted" in done.stderr:
            return True
        time.sleep(0.25)
    return lazy and subprocess.run(["umount", "--lazy", str(point)], capture_output=True,
                                   stdin=subprocess.DEVNULL).returncode == 0


def _users_of(path: Path) -> list[str]:
    """Processes with their root, cwd or an open file under ``path`` ("pid comm")."""
    users = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            links = [proc / "root", proc / "cwd", *(proc / "fd").iterdir()]
            targets = [Path(os.readlink(link)) for link in links]
            if any(t == path or path in t.parents for t in targets):
                users.append(f"{proc.name} {(proc / 'comm').read_text().strip()}")
    return users


def _detach_loops_of(raw: Path) -> None:
    done = subprocess.run(["losetup", "--noheadings", "--output", "NAME", "--associated", str(raw)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    for name in done.stdout.split():
        subprocess.run(["losetup", "--detach", name], capture_output=True, stdin=subprocess.DEVNULL)


def _remove_stale_builds(images: Path, progress: Progress) -> None:
    """Remove what a killed build left behind (its process is gone): mounts, loop, files."""
    for workdir in images.glob(".build-*"):
        pid = workdir.name.rsplit("-", 1)[-1]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            continue
        progress(f"image: removing a stale build directory {workdir}")
        left = [p for p in _mountpoints_under(workdir) if not _unmount(p)]
        _detach_loops_of(workdir / "disk.raw")
        if not left and not _mountpoints_under(workdir):
            shutil.rmtree(workdir, ignore_errors=True)
    for partial in images.glob(".*.partial-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            partial.unlink(missing_ok=True)


def _copy_device_node(source: Path, target: Path) -> None:
    info = os.stat(source)
    os.mknod(target, info.st_mode, info.st_rdev)
    os.chmod(target, stat.S_IMODE(info.st_mode))


def _processes_rooted_in(root: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(os.readlink(entry / "root")) == root:
                    pids.append(int(entry.name))
    return pids


# ===================================================================== the build


CLOUD_CFG = """\
# labctl: NoCloud seed only (no waiting for metadata services), systemd-networkd renders
# the seed's network-config, and only the modules a lab guest uses (boot time under TCG).
datasource_list: [ NoCloud, None ]
disable_root: false
manage_etc_hosts: localhost
ssh_deletekeys: true
ssh_genkeytypes: [ ed25519 ]
system_info:
  network:
    renderers: [ networkd ]
cloud_init_modules: [ seed_random, bootcmd, write_files, set_hostname, update_hostname,
                      update_etc_hosts, users_groups, ssh ]
cloud_config_modules: [ set_passwords, runcmd ]
cloud_final_modules: [ write_files_deferred, scripts_vendor, scripts_per_once, scripts_per_boot,
                       scripts_per_instance, scripts_user, ssh_authkey_fingerprints,
                       keys_to_console, final_message, power_state_change ]
"""
# The stock unit waits for every configured link, up to 2 min (a DHCP that never answers),
# and cloud-init.service waits for it; NoCloud needs no network: one link online is enough.
WAIT_ONLINE_DROPIN = """\
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30
"""
DPKG_NODOC = """\
# labctl: a small image; copyright files stay
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
"""
DEBCONF_SELECTIONS = """\
grub-pc grub-pc/install_devices multiselect
grub-pc grub-pc/install_devices_empty boolean true
cloud-init cloud-init/datasources multiselect NoCloud, None
"""
# periodic jobs that would download (no network later) or disturb measurements
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer",
                "e2scrub_all.timer", "fstrim.timer", "dpkg-db-backup.timer")
HOST_APT_PREFIX = "zz-labctl-host-"
CLEAN_GLOBS = (
    "etc/ssh/ssh_host_*", "var/lib/apt/lists/*_*", "var/cache/apt/*.bin",
    "var/cache/apt/archives/*.deb", "var/cache/debconf/*-old", "var/lib/dpkg/*-old",
    f"etc/apt/apt.conf.d/{HOST_APT_PREFIX}*", "usr/sbin/policy-rc.d", "tmp/labctl-debconf",
    "var/lib/dbus/machine-id", "var/lib/systemd/random-seed",
    # what DPKG_NODOC keeps out of later packages, also from debootstrap's
    "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*", "usr/share/doc/*/*")
INITRAMFS_TOOL = "/usr/sbin/update-initramfs"


@dataclass
class _Build:
    spec: ImageSpec
    mirror: str
    key: str
    cache: Path
    progress: Progress
    started: float = field(default_factory=time.monotonic)
    stages: dict[str, float] = field(default_factory=dict)
    mounts: list[Path] = field(default_factory=list)
    loop: Path | None = None
    part: Path = Path()
    root_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    grub_linux: str = ""
    facts: dict[str, object] = field(default_factory=dict)
    partial: Path = Path()

    def __post_init__(self) -> None:
        self.workdir = self.cache / "images" / f".build-{self.key}-{os.getpid()}"
        self.raw, self.root, self.log = (self.workdir / "disk.raw", self.workdir / "root",
                                         self.workdir / "build.log")
        self.debs = self.cache / "debs" / self.spec.suite

    def run(self) -> ImageInfo:
        self.progress(f"image: building {image_name(self.spec, self.key)} from {self.mirror} "
                      f"in {self.workdir} (its build.log is kept beside the image)")
        self.workdir.mkdir()
        try:
            try:
                self._in_chroot_stages()
            finally:
                self._teardown()
            self._stage("convert", self._convert)
            return self._publish()
        except LabError as exc:
            raise LabError(f"{exc}\n  build log: {self._keep_log('failed')}") from None
        finally:
            self._remove_workdir()

    def _keep_log(self, kind: str) -> Path:
        kept = self.cache / "images" / f"{image_name(self.spec, self.key)}.{kind}.log"
        if self.log.exists():
            shutil.copyfile(self.log, kept)
        return kept

    def _in_chroot_stages(self) -> None:
        self._stage("disk", self._make_disk)
        self._stage("debootstrap", self._debootstrap)
        self._stage("packages", self._install_packages)
        self._stage("configure", self._configure)
        self._stage("grub", self._install_grub)
        self.facts = self._collect_facts()
        self._stage("clean", self._clean)
        self._unmount_root()

    def _stage(self, name: str, action: Callable[[], None]) -> None:
        begun = time.monotonic()
        self.progress(f"image: {name} ...")
        action()
        self.stages[name] = round(time.monotonic() - begun, 1)
        self.progress(f"image: {name} done in {self.stages[name]:.1f} s "
                      f"(total {time.monotonic() - self.started:.1f} s)")

    # ----------------------------------------------------------------- disk
    def _make_disk(self) -> None:
        with open(self.raw, "wb") as disk:
            disk.truncate(self.spec.disk_gb * 2**30)
        self._quiet(["sfdisk", "--quiet", str(self.raw)], stdin="label: dos\nstart=2048, type=83, bootable\n")
        out = _run(["losetup", "--find", "--show", "--partscan", str(self.raw)], log=self.log)
        self.loop = Path(out.strip().splitlines()[-1])
        self.part = Path(f"{self.loop}p1")
        self._wait_for_partition()
        _run(["mkfs.ext4", "-q", "-L", "root", "-U", self.root_uuid, str(self.part)], log=self.log)
        self._mount(self.root, str(self.part))

    def _wait_for_partition(self) -> None:
        """The kernel's own scan, else partx (kernels built without MBR partition support)."""
        assert self.loop is not None
        for attempt in range(200):
            if self.part.exists():
                return
            if attempt == 20:
                _run(["partx", "--add", str(self.loop)], log=self.log)
            time.sleep(0.05)
        raise LabError(f"{self.part} did not appear after losetup --partscan and partx --add "
                       "(no devtmpfs on /dev?)")

    def _quiet(self, argv: list[str], stdin: str) -> None:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
        if done.returncode != 0:
            raise LabError(f"{shlex.join(argv)} failed: {done.stderr.strip()}")

    def _mount(self, target: Path, *args: str) -> None:
        target.mkdir(parents=True, exist_ok=True)
        _run(["mount", *args, str(target)], log=self.log)
        self.mounts.append(target)

    # ----------------------------------------------------------------- debootstrap
    def _debootstrap(self) -> None:
        cache = self.debs / "debootstrap"
        cache.mkdir(parents=True, exist_ok=True)
        include = ["--include=ca-certificates"] if self.mirror.startswith("https:") else []
        argv = ["debootstrap", "--variant=minbase", f"--cache-dir={cache}", *include,
                self.spec.suite, str(self.root), self.mirror]
        condenser = LineCondenser("debootstrap", classify_debootstrap, self.progress)
        try:
            _run(argv, log=self.log, on_line=condenser.feed, env=_base_env() | {"LC_ALL": "C"})
        except LabError as exc:
            inner = self.root / "debootstrap" / "debootstrap.log"
            tail = inner.read_text(errors="replace").splitlines()[-15:] if inner.exists() else []
            raise LabError(f"{exc}\n  debootstrap.log (tail):\n    " + "\n    ".join(tail)) from None
        finally:
            condenser.close()

    # ----------------------------------------------------------------- packages
    def _install_packages(self) -> None:
        # before the kernel: the initramfs takes the root filesystem type (fsck) from fstab
        self._write("etc/fstab", f"UUID={self.root_uuid} / ext4 errors=remount-ro 0 1\n")
        self._write_apt_config()
        self._mount_chroot_filesystems()
        self._write("etc/dpkg/dpkg.cfg.d/01-labctl-nodoc", DPKG_NODOC)
        self._write("usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", mode=0o755)
        self._write("tmp/labctl-debconf", DEBCONF_SELECTIONS)
        self._chroot(["debconf-set-selections", "/tmp/labctl-debconf"])
        self._chroot_apt(["apt-get", "update"])
        self._hold_initramfs(True)
        self._chroot_apt(["apt-get", "install", "--yes", "--no-install-recommends",
                          "-o", "Dpkg::Options::=--force-confdef",
                          "-o", "Dpkg::Options::=--force-confold", *sorted(set(self.spec.packages))])
        self._hold_initramfs(False)
        self.progress("image: generating the initramfs once")
        self._chroot(["update-initramfs", "-c", "-k", "all"])

    def _hold_initramfs(self, hold: bool) -> None:
        """Package scripts would regenerate the initramfs several times (~20 s each): once is enough."""
        if not hold:
            (self.root / INITRAMFS_TOOL.lstrip("/")).unlink()
        self._chroot(["dpkg-divert", "--local", "--rename", "--divert", f"{INITRAMFS_TOOL}.labctl",
                      "--add" if hold else "--remove", INITRAMFS_TOOL])
        if hold:
            self._write(INITRAMFS_TOOL.lstrip("/"), "#!/bin/sh\nexit 0\n", mode=0o755)

    def _write_apt_config(self) -> None:
        """The machine's own sources for the suite, keyrings, and the settings to reach them."""
        matching = sources_for_suite(host_sources(), self.spec.suite)
        if matching:               # else debootstrap's sources.list (the same mirror) stays
            (self.root / "etc/apt/sources.list").unlink(missing_ok=True)
            deb822 = "\n".join(s.text for s in matching if s.deb822)
            one_line = "".join(s.text for s in matching if not s.deb822)
            if deb822:
                self._write("etc/apt/sources.list.d/labctl-host.sources", deb822)
            if one_line:
                self._write("etc/apt/sources.list.d/labctl-host.list", one_line)
        for keyring in {s.signed_by for s in matching if s.signed_by}:
            target = self.root / keyring.lstrip("/")
            if Path(keyring).is_file() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(keyring, target)
        for path in self._host_apt_settings():
            shutil.copy2(path, self.root / "etc/apt/apt.conf.d" / f"{HOST_APT_PREFIX}{path.name}")

    def _host_apt_settings(self) -> list[Path]:
        """apt.conf files of this machine that say how to fetch (Acquire::…, proxies)."""
        candidates = [APT_DIR / "apt.conf", *sorted((APT_DIR / "apt.conf.d").glob("*"))]
        return [p for p in candidates if p.is_file()
                and re.search(r"acquire|proxy", p.read_text(errors="replace"), re.IGNORECASE)]

    def _mount_chroot_filesystems(self) -> None:
        """proc, sys, a private /run and /dev (with the loop disk and its by-uuid link)."""
        self._mount(self.root / "proc", "-t", "proc", "proc")
        self._mount(self.root / "sys", "-t", "sysfs", "sysfs")
        self._mount(self.root / "run", "-t", "tmpfs", "-o", "mode=755,nosuid,nodev", "labctl-run")
        dev = self.root / "dev"
        self._mount(dev, "-t", "tmpfs", "-o", "mode=755,nosuid", "labctl-dev")
        assert self.loop is not None
        for node in [Path("/dev") / name for name in ("null", "zero", "full", "random", "urandom", "tty")]:
            _copy_device_node(node, dev / node.name)
        for node in (self.loop, self.part):
            _copy_device_node(node, dev / node.name)
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                             ("ptmx", "pts/ptmx")):
            os.symlink(target, dev / name)
        (dev / "shm").mkdir()
        self._mount(dev / "pts", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620", "devpts")
        by_uuid = dev / "disk" / "by-uuid"      # grub-mkconfig writes root=UUID= only if this exists
        by_uuid.mkdir(parents=True)
        os.symlink(f"../../{self.part.name}", by_uuid / self.root_uuid)
        archives = self.debs / "apt"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        self._mount(self.root / "var/cache/apt/archives", "--bind", str(archives))

    def _chroot(self, argv: list[str], on_line: Progress | None = None) -> str:
        return _run(["chroot", str(self.root), *argv], log=self.log, on_line=on_line,
                    env=_base_env(), what=f"in the image: {argv[0]}")

    def _chroot_apt(self, argv: list[str]) -> None:
        condenser = LineCondenser(shlex.join(argv[:2]), classify_apt, self.progress, interval=5)
        try:
            self._chroot(argv, on_line=condenser.feed)
        finally:
            condenser.close()

    def _write(self, relative: str, text: str, mode: int = 0o644) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)

    # ----------------------------------------------------------------- configuration
    def _configure(self) -> None:
        self._write("etc/hostname", "debian\n")
        self._write("etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        self._write("etc/cloud/cloud.cfg.d/99-labctl.cfg", CLOUD_CFG)
        self._write("etc/systemd/system/systemd-networkd-wait-online.service.d/labctl.conf",
                    WAIT_ONLINE_DROPIN)
        self._chroot(["systemctl", "enable", "systemd-networkd.service"])
        self._chroot(["systemctl", "mask", *MASKED_UNITS])
        grub = self.root / "etc/default/grub"
        grub.write_text(grub_defaults(grub.read_text(), self.spec.cmdline))

    def _install_grub(self) -> None:
        assert self.loop is not None
        self._chroot(["grub-install", "--target=i386-pc", str(self.loop)])
        self._chroot(["update-grub"])
        config = (self.root / "boot/grub/grub.cfg").read_text()
        linux = [line.strip() for line in config.splitlines() if line.strip().startswith("linux\t")
                 or line.strip().startswith("linux ")]
        if not linux or not all(f"root=UUID={self.root_uuid}" in line for line in linux):
            raise LabError("update-grub in the image did not write root=UUID="
                           f"{self.root_uuid}:\n    " + "\n    ".join(linux or ["(no linux lines)"]))
        self.grub_linux = linux[0]
        self._write("tmp/labctl-debconf", f"grub-pc grub-pc/install_devices multiselect {GUEST_DISK}\n"
                    "grub-pc grub-pc/install_devices_empty boolean false\n")
        self._chroot(["debconf-set-selections", "/tmp/labctl-debconf"])

    def _collect_facts(self) -> dict[str, object]:
        listing = self._chroot(["dpkg-query", "--show", "--showformat=${Package}\t${Version}\n"])
        installed = dict(line.split("\t", 1) for line in listing.splitlines() if "\t" in line)
        kernels = sorted(p.name.removeprefix("vmlinuz-") for p in (self.root / "boot").glob("vmlinuz-*"))
        return {"kernel": kernels[-1] if kernels else None, "kernels": kernels,
                "packages": {name: installed.get(name) for name in self.spec.packages},
                "installed": installed, "grub_linux": self.grub_linux, "root_uuid": self.root_uuid}

    # ----------------------------------------------------------------- clean and finish
    def _clean(self) -> None:
        """No host keys, machine id, apt lists, host settings, cached debs or build leftovers."""
        self._stop_chroot_processes()
        for point in reversed(self.mounts[1:]):       # everything but the root filesystem
            if not _unmount(point, lazy=False):
                raise LabError(f"{point} stays busy; used by: {', '.join(_users_of(point))}")
        self.mounts = self.mounts[:1]
        root = self.root
        for path in [path for pattern in CLEAN_GLOBS for path in root.glob(pattern)]:
            if path.name in ("copyright", "locale.alias"):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        for name in ("etc/machine-id", "etc/resolv.conf"):
            (root / name).unlink(missing_ok=True)
            self._write(name, "")
        for log in (root / "var/log").rglob("*"):
            if log.is_file() and log.name != "dpkg.log":
                log.write_bytes(b"")
        _run(["fstrim", str(root)], log=self.log)
        self.facts["filesystem_used_bytes"] = shutil.disk_usage(root).used

    def _stop_chroot_processes(self) -> None:
        """Processes the package scripts left running in the image (started by this build)."""
        pids = _processes_rooted_in(self.root)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                self.progress(f"image: stopped process {pid} left running in the image")
        deadline = time.monotonic() + 5
        while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _unmount_root(self) -> None:
        """A clean unmount before the disk is converted: a lazy one would lose writes."""
        self._stop_chroot_processes()
        if not _unmount(self.root, lazy=False):
            raise LabError(f"the image filesystem at {self.root} stays busy; used by: "
                           f"{', '.join(_users_of(self.root)) or 'no process found'}")
        self.mounts.remove(self.root)
        try:                      # a filesystem mounted anywhere holds its device exclusively
            os.close(os.open(self.part, os.O_RDONLY | os.O_EXCL))
        except OSError as exc:
            raise LabError(f"the image filesystem on {self.part} is still mounted after umount "
                           f"(another mount namespace has a copy?): {exc.strerror}") from None

    def _teardown(self) -> None:
        """Whatever is still mounted or attached (after a failure): lazily if need be."""
        self._stop_chroot_processes()
        stuck = [str(p) for p in reversed(self.mounts) if not _unmount(p)]
        self.mounts = []
        if self.loop is not None:
            subprocess.run(["losetup", "--detach", str(self.loop)], capture_output=True,
                           stdin=subprocess.DEVNULL)
            self.loop = None
        if stuck:
            raise LabError(f"could not unmount {', '.join(stuck)}")

    def _remove_workdir(self) -> None:
        """Delete the build directory, never through a mount still inside it."""
        left = [p for p in _mountpoints_under(self.workdir) if not _unmount(p)]
        if left or _mountpoints_under(self.workdir):
            self.progress(f"image: left {self.workdir} in place: still mounted there: {left}")
            return
        _detach_loops_of(self.raw)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _convert(self) -> None:
        final, _ = _paths(self.cache, self.spec, self.key)
        self.partial = final.with_name(f".{final.name}.partial-{os.getpid()}")
        _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", "-o", "compression_type=zstd",
              str(self.raw), str(self.partial)], log=self.log, what="qemu-img convert")

    def _publish(self) -> ImageInfo:
        path, manifest_path = _paths(self.cache, self.spec, self.key)
        size, seconds = self.partial.stat().st_size, round(time.monotonic() - self.started, 1)
        manifest = {"key": self.key, "name": path.name, "recipe_version": RECIPE_VERSION,
                    "suite": self.spec.suite, "mirror": self.mirror, "cmdline": self.spec.cmdline,
                    "spec": asdict(self.spec),
                    "built_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                    "build_seconds": seconds, "stage_seconds": self.stages, "image_bytes": size,
                    "virtual_bytes": self.spec.disk_gb * 2**30, "format": "qcow2 (zstd-compressed)",
                    **self.facts}
        os.replace(self.partial, path)
        self._keep_log("build")
        tmp = manifest_path.with_name(f".{manifest_path.name}.partial-{os.getpid()}")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, manifest_path)
        self.progress(f"image: ready {path} ({size / 2**20:.0f} MiB, {seconds} s)")
        return ImageInfo(path, manifest_path, self.key, manifest)


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))
