"""Sweeps without a lab: a matrix expanded into cells (labctl.input.matrix), its bad input
refused with positions, the run order, sweep.json written and read back (labctl.runfiles.sweepdir),
which repetitions a resume runs, and the resume's refusals (labctl.sweeper, before any host)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import __version__, cli
from labctl.errors import ValidationError
from labctl.input.config import load_inventory
from labctl.input.matrix import (
    MAX_CELLS,
    load_sweep,
    parse_path,
    run_order,
    with_value,
)
from labctl.input.model import Channels, Inventory
from labctl.runfiles.sweep import SweepRecord
from labctl.runfiles.sweepdir import SweepDir, remaining, repetition, sha256_text
from labctl.sweeper import new_record, worst_status
from tests.helpers import ROOT

NETNS: Inventory = load_inventory(ROOT / "inventories" / "netns.yaml").model

BASE = """\
tuning:
  dut:
    channels: {rx: 4, tx: 4}
load:
  server: {cpus: 1}
  client:
    rate: 2000
    duration: 1
    cpus: 0
"""


def sweep_file(tmp_path: Path, tail: str, base: str = BASE, name: str = "sw.yaml") -> Path:
    path = tmp_path / name
    path.write_text(base + tail)
    return path


def problems_of(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        load_sweep(path, NETNS, **kwargs)
    return [str(p) for p in caught.value.problems]


# --------------------------------------------------------------------------- paths and cells

def test_paths_parse_with_dots_and_indexes() -> None:
    assert parse_path("tuning.dut.rps.rx-0") == (("tuning", "dut", "rps", "rx-0"), None)
    assert parse_path("expect[1].min") == (("expect", 1, "min"), None)
    assert parse_path("load..client")[0] is None
    assert parse_path("a[x]")[0] is None


def test_the_product_in_matrix_order_with_labels(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, "matrix:\n  tuning.dut.rps.rx-0: [none, 1, 0-3]\n"
                      "  load.client.rate: [1000, 4000]\nrepeat: 3\n")
    sweep = load_sweep(path, NETNS)
    assert len(sweep.cells) == 6 and sweep.repeat == 3 and sweep.order == "sequential"
    assert [c.label for c in sweep.cells[:3]] == [
        "rps.rx-0=none, client.rate=1000", "rps.rx-0=none, client.rate=4000",
        "rps.rx-0=1, client.rate=1000"]
    first, last = sweep.cells[0].scenario.model, sweep.cells[-1].scenario.model
    assert first.tuning["dut"].rps == {"rx-0": frozenset()}, "none: RPS off, the field's own word"
    assert last.tuning["dut"].rps == {"rx-0": frozenset({0, 1, 2, 3})}
    assert first.load and first.load.client.rate == 1000 and last.load and last.load.client.rate == 4000
    assert first.name == "sw", "the file's name names a cell's runs, as for a scenario"
    assert sweep.cells[4].values == {"tuning.dut.rps.rx-0": "0-3", "load.client.rate": 1000}


def test_null_removes_the_key_and_the_mapping_it_leaves_empty(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, "matrix:\n  tuning.dut.channels.rx: [null, 2]\n"
                      "  tuning.dut.channels.tx: [null, 2]\n")
    cells = load_sweep(path, NETNS).cells
    assert cells[0].scenario.model.tuning == {}, "channels (and the dut's tuning it emptied) left alone"
    assert cells[1].scenario.model.tuning["dut"].channels == Channels(tx=2)
    assert cells[3].scenario.model.tuning["dut"].channels == Channels(rx=2, tx=2)


def test_with_value_makes_and_prunes_mappings() -> None:
    data = {"tuning": {"dut": {"rps": {"all": 1}}}}
    made, created = with_value(data, ("tuning", "dut", "channels", "combined"), 2)
    assert made["tuning"]["dut"]["channels"] == {"combined": 2} and created == [("tuning", "dut", "channels")]
    removed, _ = with_value(data, ("tuning", "dut", "rps", "all"), None)
    assert removed == {}, "each mapping the removal left empty goes too"
    assert data == {"tuning": {"dut": {"rps": {"all": 1}}}}, "the base is not changed"
    assert with_value(data, ("load", "client", "rate"), None) == (data, [])


def test_a_scenario_without_a_matrix_is_one_cell(tmp_path: Path) -> None:
    sweep = load_sweep(sweep_file(tmp_path, "repeat: 4\n"), NETNS)
    assert len(sweep.cells) == 1 and sweep.repeat == 4 and sweep.cells[0].values == {}


# --------------------------------------------------------------------------- bad input

def test_a_path_that_names_no_field(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, "matrix:\n  load.client.rat: [1, 2]\n  load.client.rate.x: [1]\n"
                      "  matrix.x: [1]\n")
    found = problems_of(path)
    assert f"{path}:11:3: matrix.load.client.rat: matrix path 'load.client.rat' names no field: " \
           "load.client has no 'rat'; did you mean 'rate'?" in found
    assert any(p.startswith(f"{path}:12:3:") and "load.client.rate is a value" in p for p in found)
    assert any(p.startswith(f"{path}:13:3:") and "the sweep's own key" in p for p in found)


def test_a_value_the_field_refuses_names_its_cells_and_the_value(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, "matrix:\n  tuning.dut.rps.rx-0: [none, abc]\n"
                      "  load.client.rate: [1000, 0]\n")
    found = problems_of(path)
    assert any(p.startswith(f"{path}:11:31: tuning.dut.rps.rx-0: cells 3-4 of 4 (the first: "
                            "rps.rx-0=abc, client.rate=1000): not a CPU list element") for p in found), found
    assert any(p.startswith(f"{path}:12:28: load.client.rate: cells 2,4 of 4") and "greater than 0" in p
               for p in found), found


def test_a_combination_the_model_refuses_points_at_the_matrix(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, "matrix:\n  tuning.dut.channels.combined: [null, 2]\n")
    (found,) = problems_of(path)
    assert found.startswith(f"{path}:11:40: tuning.dut.channels: cell 2 of 2 "
                            "(channels.combined=2): combined and rx/tx are exclusive"), found


def test_a_problem_of_the_scenario_itself_is_reported_once(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, "matrix:\n  load.client.rate: [1000, 2000]\n",
                      base=BASE.replace("cpus: 0", "cpus: 0\n    colour: red"))
    (found,) = problems_of(path)
    assert found.startswith(f"{path}:10:5: load.client.colour: unknown key 'colour'"), found


def test_an_unknown_host_in_a_path(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, "matrix:\n  tuning.dtu.rps.all: [1]\n")
    (found,) = problems_of(path)
    assert found.startswith(f"{path}:11:3: tuning.dtu: ") and "no host 'dtu'" in found


@pytest.mark.parametrize("tail,where,words", [
    ("matrix: {}\n", "10:1: matrix", "an empty matrix"),
    ("matrix:\n  load.client.rate: []\n", "11:21: matrix.load.client.rate", "an empty list of values"),
    ("matrix:\n  load.client.rate: 1000\n", "11:21: matrix.load.client.rate", "a list of values"),
    ("matrix:\n  load.client.rate: [1, 1]\n", "11:25: matrix.load.client.rate[1]", "listed twice"),
    ("matrix:\n  tuning.dut.channels: [{rx: 2}]\n  tuning.dut.channels.rx: [1]\n", "12:3",
     "overlaps the matrix path"),
    ("repeat: 0\n", "10:9: repeat", "a whole number from 1"),
    ("repeat: true\n", "10:9: repeat", "a whole number from 1"),
    ("order: random\n", "10:8: order", "sequential or shuffled"),
    ("seed: 3\n", "10:1: seed", "a seed orders a shuffled sweep"),
    ("order: shuffled\nseed: -1\n", "11:7: seed", "a whole number >= 0"),
])
def test_bad_sweep_keys(tmp_path: Path, tail: str, where: str, words: str) -> None:
    path = sweep_file(tmp_path, tail)
    found = problems_of(path)
    assert any(p.startswith(f"{path}:{where}") and words in p for p in found), found


def test_every_problem_at_once(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, "matrix:\n  load.client.rat: [1]\n  snapshot.probes: []\nrepeat: 0\n")
    assert len(problems_of(path)) == 3


def test_more_than_a_thousand_cells_only_when_asked(tmp_path: Path) -> None:
    tail = ("matrix:\n  load.client.rate: [" + ", ".join(str(r) for r in range(1000, 1011)) + "]\n"
            "  load.client.payload: [" + ", ".join(str(p) for p in range(64, 155)) + "]\n")
    path = sweep_file(tmp_path, tail)
    (found,) = problems_of(path)
    assert f"1001 cells (11 x 91), more than {MAX_CELLS}: say --allow-large" in found
    assert len(load_sweep(path, NETNS, allow_large=True).cells) == 1001


def test_labctl_run_refuses_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = sweep_file(tmp_path, "matrix:\n  load.client.rate: [1000, 2000]\nrepeat: 2\n")
    inventory = str(ROOT / "inventories" / "netns.yaml")
    assert cli.main(["-i", inventory, "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:10:1: matrix: `matrix:` makes this file a sweep: run it with `labctl sweep {path}`" in err
    assert "(1 problem)" in err
    assert cli.main(["-i", inventory, "validate", str(path)]) == 0


# --------------------------------------------------------------------------- run order

def test_sequential_runs_rounds_of_every_cell() -> None:
    assert run_order(3, 2, "sequential", None) == [(1, 1), (2, 1), (3, 1), (1, 2), (2, 2), (3, 2)]


def test_a_shuffle_is_the_same_for_a_seed() -> None:
    order = run_order(4, 3, "shuffled", 16)
    assert order == run_order(4, 3, "shuffled", 16)
    assert order != run_order(4, 3, "shuffled", 17)
    assert order != run_order(4, 3, "sequential", None)
    assert sorted(order) == sorted(run_order(4, 3, "sequential", None)), "every pair exactly once"
    for cell in range(1, 5):
        assert [r for c, r in order if c == cell] == [1, 2, 3], "repetitions numbered as they come"


# --------------------------------------------------------------------------- sweep.json and resume

def _record(tmp_path: Path, tail: str = "matrix:\n  load.client.rate: [1000, 2000]\nrepeat: 2\n"
            ) -> tuple[SweepDir, SweepRecord]:
    path = sweep_file(tmp_path, tail)
    sweep = load_sweep(path, NETNS)
    sweep_dir = SweepDir.create(tmp_path / "runs", "20261203T000000Z-sweep-sw", sweep.text)
    record = new_record(sweep, sweep_dir, tmp_path / "inventory.yaml")
    sweep_dir.write(record)
    return sweep_dir, record


def test_sweep_json_round_trip(tmp_path: Path) -> None:
    sweep_dir, record = _record(tmp_path)
    back = sweep_dir.read()
    assert back == record
    assert back.run_order == [(1, 1), (2, 1), (1, 2), (2, 2)]
    assert back.matrix[0].path == "load.client.rate" and back.matrix[0].line == 11
    assert [f.name for f in sweep_dir.path.iterdir()] and not list(sweep_dir.path.glob(".sweep-*")), \
        "no temporary file left"
    data = json.loads((sweep_dir.path / "sweep.json").read_text())
    assert data["scenario_sha256"] == sha256_text((tmp_path / "sw.yaml").read_text())
    assert (sweep_dir.path / "scenario.yaml").read_text() == (tmp_path / "sw.yaml").read_text()


def test_a_shuffle_without_seed_gets_one_recorded(tmp_path: Path) -> None:
    _, record = _record(tmp_path, "matrix:\n  load.client.rate: [1000, 2000, 3000]\nrepeat: 3\n"
                        "order: shuffled\n")
    assert record.seed is not None
    assert record.run_order == run_order(3, 3, "shuffled", record.seed)


def test_remaining_is_what_did_not_end_in_run_order(tmp_path: Path) -> None:
    _, record = _record(tmp_path)
    repetition(record, 1, 1).status = "passed"
    repetition(record, 2, 1).status = "failed"
    repetition(record, 1, 2).status = "interrupted"
    assert remaining(record) == [(1, 2), (2, 2)]
    repetition(record, 1, 2).status = "error"
    repetition(record, 2, 2).status = "inconclusive"
    assert remaining(record) == []
    assert worst_status(record) == "error"


def test_worst_status() -> None:
    record = SweepRecord.model_validate({
        "sweep_id": "s", "scenario": "x", "scenario_path": "x", "scenario_sha256": "0",
        "inventory_path": "i", "labctl_version": __version__, "created_at": "t", "matrix": [],
        "cells": [{"index": 1, "values": {}, "label": "l", "repetitions": [
            {"repetition": 1, "status": "passed"}, {"repetition": 2, "status": "inconclusive"}]}]})
    assert worst_status(record) == "inconclusive"
    record.cells[0].repetitions[0].status = "failed"
    assert worst_status(record) == "failed"


def _resume(tmp_path: Path, *extra: str) -> list[str]:
    return ["-i", str(ROOT / "inventories" / "netns.yaml"), "sweep", "--resume",
            str(next((tmp_path / "runs").iterdir())), *extra]


def test_resume_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep_dir, record = _record(tmp_path)
    original = tmp_path / "sw.yaml"
    original.write_text(original.read_text() + "# edited\n")
    assert cli.main(_resume(tmp_path)) == 1
    assert "changed since the sweep started" in capsys.readouterr().err
    assert cli.main(_resume(tmp_path, str(original))) == 1
    assert "is a sweep of another scenario" in capsys.readouterr().err

    record.labctl_version = "0.0.1"
    sweep_dir.write(record)
    assert cli.main(_resume(tmp_path, str(sweep_dir.scenario_copy))) == 1
    assert "was started by labctl 0.0.1" in capsys.readouterr().err

    record.labctl_version = __version__
    for cell in record.cells:
        for rep in cell.repetitions:
            rep.status = "passed"
    sweep_dir.write(record)
    assert cli.main(_resume(tmp_path)) == 1
    assert "is completed" in capsys.readouterr().err


def test_resume_of_a_lab_that_is_down_touches_nothing(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    sweep_dir, _ = _record(tmp_path)
    data = yaml.safe_load((ROOT / "inventories" / "netns.yaml").read_text())
    data["lab"] = "nolab"
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(data))
    args = ["-i", str(tmp_path / "inventory.yaml"), "sweep", "--resume", str(sweep_dir.path)]
    assert cli.main(args) == 1
    assert "run `labctl up` first" in capsys.readouterr().err
    assert sweep_dir.read().status == "running" and remaining(sweep_dir.read()) == sweep_dir.read().run_order


@pytest.mark.parametrize("args,words", [
    (["sweep"], "give a sweep scenario, or --resume DIR"),
    (["sweep", "--dry-run", "--json", "s.yaml"], "--dry-run prints the cells as text"),
    (["sweep", "--resume", "D", "--allow-large"], "--allow-large is for a new sweep"),
])
def test_sweep_arguments(args: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(args) == 2
    assert words in capsys.readouterr().err


def test_the_help_names_the_limit_the_loader_keeps() -> None:
    assert cli.MAX_CELLS == MAX_CELLS


def test_completion_knows_the_sweep_verb(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["completion", "bash"]) == 0
    out = capsys.readouterr().out
    assert "sweep" in out and "--resume" in out and "--allow-large" in out
