"""Sweep directories (file I/O only, layer "runfiles"): ``<runs>/<UTC ts>-sweep-<scenario>/``.

Creates one, keeps its ``scenario.yaml`` copy, rewrites ``sweep.json`` atomically (a reader, or
a crash, never sees half a file), and answers the bookkeeping questions of a sweep record:
which repetitions remain, how many of each status a cell has. The layout is described in
labctl.runfiles.sweep.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import tempfile
from collections import Counter
from pathlib import Path

from labctl.errors import RunError
from labctl.runfiles.sweep import ENDED, SWEEP_FILE, CellRecord, RepetitionRecord, SweepRecord

SCENARIO_COPY = "scenario.yaml"
RUNS = "runs"


def new_sweep_id(scenario_name: str, now: _dt.datetime | None = None) -> str:
    now = now or _dt.datetime.now(_dt.UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-sweep-{scenario_name}"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class SweepDir:
    """One sweep's directory."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, runs_root: Path, sweep_id: str, scenario_text: str) -> SweepDir:
        path = runs_root / sweep_id
        suffix = 1
        while path.exists():
            suffix += 1
            path = runs_root / f"{sweep_id}.{suffix}"
        (path / RUNS).mkdir(parents=True)
        (path / SCENARIO_COPY).write_text(scenario_text)
        return cls(path)

    @property
    def sweep_id(self) -> str:
        return self.path.name

    @property
    def scenario_copy(self) -> Path:
        return self.path / SCENARIO_COPY

    @property
    def runs(self) -> Path:
        return self.path / RUNS

    def write(self, record: SweepRecord) -> None:
        """sweep.json replaced in one step (write a temporary file, fsync, rename)."""
        fd, temporary = tempfile.mkstemp(prefix=".sweep-", suffix=".json", dir=self.path)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(record.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path / SWEEP_FILE)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def read(self) -> SweepRecord:
        target = self.path / SWEEP_FILE
        try:
            text = target.read_text()
        except FileNotFoundError:
            raise RunError(f"{target} is missing: is {self.path} a labctl sweep directory?") from None
        return SweepRecord.from_json(text, str(target))


def repetition(record: SweepRecord, cell: int, number: int) -> RepetitionRecord:
    """The record of one cell x repetition."""
    return cell_of(record, cell).repetitions[number - 1]


def cell_of(record: SweepRecord, index: int) -> CellRecord:
    return record.cells[index - 1]


def remaining(record: SweepRecord) -> list[tuple[int, int]]:
    """The (cell, repetition) pairs not ended yet (pending or interrupted), in run order."""
    return [(c, r) for c, r in record.run_order if repetition(record, c, r).status not in ENDED]


def ended_count(record: SweepRecord) -> int:
    return len(record.run_order) - len(remaining(record))


def status_counts(cell: CellRecord) -> Counter[str]:
    return Counter(r.status for r in cell.repetitions)
