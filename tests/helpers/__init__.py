"""Helpers shared by the tests (no fixtures here: see conftest.py)."""

from __future__ import annotations

import bz2
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.helpers.fakes import FakeTransport as FakeTransport
from tests.helpers.fakes import Res as Res

ROOT = Path(__file__).resolve().parents[2]          # the repository
FIXTURES = ROOT / "tests" / "fixtures"
NETNS_INVENTORY = """\
lab: t
provider: netns
hosts:
  dut: {role: dut, data_address: 198.18.0.1/24}
  loadgen: {role: loadgen, data_address: 198.18.0.2/24}
"""


def fixture(relative: str) -> str:
    """A captured output under tests/fixtures/ (.bz2 files are decompressed)."""
    path = FIXTURES / relative
    if path.suffix == ".bz2":
        return bz2.decompress(path.read_bytes()).decode()
    return path.read_text()


PRIVATE_KEY_MARKER = b"PRIVATE KEY-----"
MIN_NEEDLE = 16          # shorter pieces of a key would match by chance


def secret_needles(secret: str | bytes | Path) -> list[bytes]:
    """What to look for: the secret itself and each line of it long enough to be telling (a
    key's base64 lines are found on their own: re-wrapped, indented or JSON-escaped copies
    keep them whole). A Path is a secret file (a private key): its content is the secret."""
    data = secret.read_bytes() if isinstance(secret, Path) else (
        secret.encode() if isinstance(secret, str) else secret)
    lines = [line.strip() for line in data.splitlines()]
    return [data.strip()] + [line for line in lines
                             if len(line) >= MIN_NEEDLE and PRIVATE_KEY_MARKER not in line]


def files_under(paths: Iterable[Path]) -> list[Path]:
    """Every regular file of ``paths`` (files, or directories walked; symlinks not followed)."""
    found: list[Path] = []
    for path in paths:
        if path.is_file() and not path.is_symlink():
            found.append(path)
        elif path.is_dir():
            for top, _, names in os.walk(path):
                found += [Path(top, n) for n in names
                          if Path(top, n).is_file() and not Path(top, n).is_symlink()]
    return sorted(found)


def assert_no_secrets(paths: Iterable[Path], secrets: Iterable[str | bytes | Path],
                      exempt: Iterable[Path] = ()) -> list[Path]:
    """Fail if any file under ``paths`` holds a secret, or any private key at all.

    ``secrets``: private key files (Path: their content is looked for) and secret strings.
    Skipped: the secret files themselves and ``exempt`` (files that must carry a key, such as
    a guest's NoCloud seed). Returns the files it read, so that a caller can check it saw
    what it meant to."""
    secrets = list(secrets)
    skip = {p.resolve() for p in exempt} | {s.resolve() for s in secrets if isinstance(s, Path)}
    needles = [n for s in secrets for n in secret_needles(s)]
    scanned = [f for f in files_under(paths) if f.resolve() not in skip]
    leaks = []
    for file in scanned:
        data = file.read_bytes()
        if PRIVATE_KEY_MARKER in data:
            leaks.append(f"{file}: holds a private key")
        leaks += [f"{file}: holds secret text {n[:12]!r}..." for n in needles if n in data][:1]
    assert not leaks, "secrets outside their files:\n" + "\n".join(leaks)
    return scanned


# --------------------------------------------------------------------------- a busy neighbour

HOG_PROGRAM = "while True:\n    pass\n"


class CpuHog:
    """One process that keeps one of the host's cores busy (a slower, busier machine of the
    same kind), started and stopped by its PID; it also reports the CPU time it got."""

    def __init__(self) -> None:
        import subprocess
        import sys
        self.process = subprocess.Popen([sys.executable, "-c", HOG_PROGRAM],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.pid = self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the hog has used so far (from /proc/PID/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def __enter__(self) -> CpuHog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
