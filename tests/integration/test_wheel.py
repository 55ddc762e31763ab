"""Integration: the wheel built from this checkout, installed into a fresh virtualenv, drives
the netns lab from a directory that is not the checkout.

pip wheel -> venv + pip install -> labctl up -> run (two scenarios, --json) -> collect (--json,
report.html) -> compare (--json) -> down, and `python -m labctl`. The venv reuses the
dependencies of the interpreter running the tests (a .pth file) and fetches only what is
missing from the package index. The lab is removed at the end, also on failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
NOT_PACKAGED = shutil.ignore_patterns(".git", ".venv", "runs", ".labctl", "build", "dist",
                                      "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis")
COMMAND_TIMEOUT = 600


@dataclass
class Installed:
    venv: Path
    wheel: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def labctl(self) -> Path:
        return self.venv / "bin" / "labctl"


def _run(argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [str(a) for a in argv]
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.terminate()                # SIGTERM: a labctl run restores its hosts, then exits
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"{' '.join(command)}: no end after {COMMAND_TIMEOUT} s\n{err[-3000:]}")
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {proc.returncode}\n"
                    f"stdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def _clean_env(venv: Path) -> dict[str, str]:
    """No PYTHONPATH (it would reach the checkout), the venv's scripts first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def _build_wheel(work: Path) -> Path:
    """pip wheel of a copy of the checkout (an in-tree build would leave build/ behind)."""
    source, dist = work / "source", work / "dist"
    shutil.copytree(ROOT, source, ignore=NOT_PACKAGED)
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", dist, source],
         cwd=work)
    (wheel,) = dist.glob("labctl-*.whl")
    return wheel


def _requirements(wheel: Path) -> list[str]:
    """The wheel's own dependencies (Requires-Dist without an extra)."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines
            if line.startswith("Requires-Dist:") and "extra ==" not in line]


def _install(work: Path, wheel: Path) -> Installed:
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", venv], cwd=work)
    installed = Installed(venv, wheel)
    env = _clean_env(venv)
    pip: list[str | Path] = [installed.python, "-m", "pip", "-q", "--disable-pip-version-check"]
    _run([*pip, "install", "--no-deps", "--no-index", wheel], cwd=work, env=env)
    # after labctl, so the checkout's editable labctl among them is never taken for it
    reused = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    site = _run([installed.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=work, env=env).stdout.strip()
    (Path(site) / "labctl-test-reuse.pth").write_text("".join(f"{p}\n" for p in sorted(reused)))
    _run([*pip, "install", *_requirements(wheel)], cwd=work, env=env)
    return installed


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    return _install(work, _build_wheel(work))


def test_the_wheel_carries_templates_agent_and_entry_points(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    templates = {f"labctl/templates/{t.name}" for t in (ROOT / "templates").glob("*.j2")}
    assert templates and templates <= names
    assert {"labctl/__main__.py", "labctl/agent/loadgen.py", "labctl/packaged.py"} <= names
    assert "labctl = labctl.cli:main" in scripts
    assert "labctl-loadgen = labctl.agent.loadgen:main" in scripts


class Lab:
    """The netns lab in a directory of its own, driven by the installed labctl."""

    def __init__(self, installed: Installed, directory: Path, name: str):
        self.installed, self.dir, self.name = installed, directory, name
        self.env = _clean_env(installed.venv)

    def labctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run([self.installed.labctl, *args], cwd=self.dir, env=self.env, check=check)

    def json(self, *args: str) -> Any:
        return json.loads(self.labctl(*args, "--json").stdout)

    def namespaces(self) -> set[str]:
        listing = _run(["ip", "netns", "list"], cwd=self.dir).stdout
        mine = {f"{self.name}-dut", f"{self.name}-loadgen"}
        return {line.split()[0] for line in listing.splitlines() if line.strip()} & mine


@pytest.fixture
def lab(installed: Installed, tmp_path: Path) -> Iterator[Lab]:
    name = f"lw{os.getpid() % 100000}"
    data = yaml.safe_load((ROOT / "inventories" / "netns.yaml").read_text())
    data["lab"] = name
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(data))
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    the_lab = Lab(installed, tmp_path, name)
    try:
        yield the_lab
    finally:
        the_lab.labctl("down", "-q", check=False)
        assert not the_lab.namespaces()


def test_the_installed_labctl_drives_the_netns_lab(lab: Lab) -> None:
    version = _run([lab.installed.python, "-m", "labctl", "--version"], cwd=lab.dir, env=lab.env)
    assert version.stdout.startswith("labctl ")
    probe = "import labctl.packaged as p; print(p.__file__); print(p.templates_dir())"
    where = _run([lab.installed.python, "-c", probe], cwd=lab.dir, env=lab.env)
    module, templates = where.stdout.split()
    assert Path(module).is_relative_to(lab.installed.venv), "the wheel's labctl, not the checkout's"
    assert Path(templates) == Path(module).parent / "templates"

    lab.labctl("up", "-q", "-i", "inventory.yaml")
    status = lab.json("status")
    assert status["up"] and set(status["hosts"]) == {"dut", "loadgen"}

    runs = []
    for scenario in ("scenarios/netns_baseline.yaml", "scenarios/netns_rps_cpu1.yaml"):
        document = lab.json("run", "-q", "-i", "inventory.yaml", scenario)
        assert document["summary"]["verdict"]["status"] == "passed", document["summary"]["verdict"]
        runs.append(lab.dir / document["run_dir"])      # as given: relative to the lab
    assert all(run.parent == lab.dir / "runs" for run in runs)

    (runs[1] / "report.html").unlink()
    collected = lab.json("collect", runs[1].name, "--runs-dir", "runs")
    assert collected["summary"]["run_id"] == runs[1].name
    assert (runs[1] / "report.html").stat().st_size > 0

    compared = lab.json("compare", runs[0].name, runs[1].name)
    assert compared["comparison"]["a"]["run_id"] == runs[0].name
    assert (lab.dir / compared["html"]).stat().st_size > 0
    assert "_shtab_labctl" in lab.labctl("completion", "bash").stdout

    lab.labctl("down", "-q")
    assert not lab.namespaces() and not lab.json("status")["up"]
