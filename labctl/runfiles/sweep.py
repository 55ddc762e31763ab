"""Sweep files (pure, layer "runfiles"): the typed model of a sweep directory's ``sweep.json``.

A sweep directory is ``<runs>/<UTC timestamp>-sweep-<scenario>/``::

    sweep.json                  SweepRecord: the matrix, the cells, the order, every repetition
    scenario.yaml               the sweep scenario's text, as it was when the sweep started
    runs/<run id>/              one ordinary run directory per cell x repetition
    sweep.md, sweep.html        the reports (rebuilt from sweep.json and the runs' summary.json)

``sweep.json`` is rewritten (atomically) after each repetition ends, so a crash or Ctrl-C leaves
it naming exactly the repetitions that ended; ``--resume`` runs the ones whose status is
``pending`` (or ``interrupted``: that run directory is kept and a new one made).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, JsonValue

from labctl.runfiles.models import Record, RunFile

SWEEP_FILE = "sweep.json"

# passed/failed/inconclusive/invalid: the run's verdict (invalid: its tuning drifted during the
# load window; like error, never a DUT result in the statistics); error: the run stopped (its
# outcome says why);
# interrupted: Ctrl-C or a crash during it; pending: not run yet.
RepetitionStatus = Literal["pending", "passed", "failed", "inconclusive", "invalid", "error",
                           "interrupted"]
ENDED: frozenset[str] = frozenset({"passed", "failed", "inconclusive", "invalid", "error"})


class MatrixAxis(Record):
    """One ``matrix:`` entry: a scenario field by its dotted path and the values it takes."""

    path: str                        # e.g. "tuning.dut.rps.rx-0", "load.client.rate"
    values: list[JsonValue]          # as written in the scenario (None = the field absent/"none")
    line: int = 0                    # the matrix entry's line in the scenario file


class RepetitionRecord(Record):
    """One cell x repetition: an ordinary run."""

    repetition: int                  # 1..repeat
    status: RepetitionStatus = "pending"
    run_dir: str | None = None       # relative to the sweep directory, e.g. "runs/2026...-x"
    reason: str | None = None        # the verdict's or the error's one-line reason
    started_at: str | None = None
    ended_at: str | None = None
    seconds: float | None = None     # wall time of the whole run (plan, tune, load, restore)
    earlier_runs: list[str] = Field(default_factory=list)   # run dirs of attempts interrupted before


class CellRecord(Record):
    """One combination of the matrix's values."""

    index: int                       # 1..n, in matrix (not run) order
    values: dict[str, JsonValue]     # matrix path -> value of this cell
    label: str                       # e.g. "rps.rx-0=1, channels.combined=2"
    repetitions: list[RepetitionRecord] = Field(default_factory=list)


class SweepRecord(RunFile):
    """sweep.json: what the sweep is, its run order and where each repetition's run is."""

    FILE: ClassVar[str] = SWEEP_FILE

    sweep_id: str
    scenario: str                    # the scenario's name
    scenario_path: str
    scenario_sha256: str
    inventory_path: str
    labctl_version: str
    created_at: str
    matrix: list[MatrixAxis]
    repeat: int = 1
    order: Literal["sequential", "shuffled"] = "sequential"
    seed: int | None = None          # the shuffle's seed (recorded also when chosen by labctl)
    run_order: list[tuple[int, int]] = Field(default_factory=list)   # (cell index, repetition)
    cells: list[CellRecord] = Field(default_factory=list)
    status: Literal["running", "interrupted", "completed"] = "running"
    metrics: list[str] = Field(default_factory=list)   # the metrics the reports show (empty: defaults)
