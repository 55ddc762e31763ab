"""Run artifacts (file I/O only): runs/<UTC timestamp>-<scenario>/ and what lives in it.

Raw data is written once and never overwritten; every report is rebuilt from it.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any, TypeVar

from labctl.errors import RunError
from labctl.runfiles.models import RunFile

F = TypeVar("F", bound=RunFile)


def utc_now() -> str:
    """Now, as manifests, lab state and records write it: UTC, ISO 8601, whole seconds."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")

RAW_PHASES = ("before", "after")


def new_run_id(scenario_name: str, now: _dt.datetime | None = None) -> str:
    now = now or _dt.datetime.now(_dt.UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{scenario_name}"


class RunDir:
    """One run's directory."""

    def __init__(self, path: Path):
        self.path = path

    @property
    def run_id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, runs_root: Path, run_id: str) -> RunDir:
        path = runs_root / run_id
        suffix = 1
        while path.exists():
            suffix += 1
            path = runs_root / f"{run_id}.{suffix}"
        path.mkdir(parents=True)
        return cls(path)

    def raw_path(self, host: str, probe: str, phase: str) -> Path:
        return self.path / host / f"{probe}.{phase}"

    def write_raw(self, host: str, probe: str, phase: str, text: str) -> Path:
        target = self.raw_path(host, probe, phase)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise RunError(f"refusing to overwrite raw data {target}")
        target.write_text(text)
        return target

    def read_raw(self, host: str, probe: str, phase: str) -> str | None:
        target = self.raw_path(host, probe, phase)
        return target.read_text() if target.exists() else None

    def write_json(self, name: str, data: Any) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
        return target

    def read_json(self, name: str) -> Any:
        target = self.path / name
        try:
            return json.loads(target.read_text())
        except FileNotFoundError:
            raise RunError(f"{target} is missing: is {self.path} a labctl run directory?") from None
        except json.JSONDecodeError as exc:
            raise RunError(f"{target} is not valid JSON: {exc}") from None

    def write_model(self, model: RunFile, name: str | None = None) -> Path:
        """A run file (manifest, steps, journal, summary) under its own name or `name`."""
        return self.write_text(name or model.FILE, model.to_json())

    def read_model(self, model: type[F]) -> F:
        """A run file, migrated from an older schema version; a newer one is refused."""
        target = self.path / model.FILE
        try:
            text = target.read_text()
        except FileNotFoundError:
            raise RunError(f"{target} is missing: is {self.path} a labctl run directory?") from None
        return model.from_json(text, str(target))

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    def write_text(self, name: str, text: str) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target


def find_run(runs_root: Path, name: str | None) -> RunDir:
    """A run by path or id; without a name, the newest run in runs_root."""
    if name:
        for candidate in (Path(name), runs_root / name):
            if (candidate / "manifest.json").exists():
                return RunDir(candidate)
        raise RunError(f"no run {name!r} (looked for {name}/manifest.json and "
                       f"{runs_root / name}/manifest.json)")
    runs = sorted(p for p in runs_root.glob("*") if (p / "manifest.json").exists()) if runs_root.exists() else []
    if not runs:
        raise RunError(f"no runs in {runs_root}/ yet: `labctl run SCENARIO` makes one")
    return RunDir(max(runs, key=lambda p: (p / "manifest.json").stat().st_mtime))
