"""labctl.runfiles.models: the run directory's files as typed models. Round trips, the fixture
runs of tests/fixtures/runs/ (written before files had a schema_version: version 1) read by
`collect` and `compare`, a file of a newer labctl refused with one message, and the JSON
Schemas `labctl schema run|summary` prints."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl import cli, runner
from labctl.errors import RunError
from labctl.execution.restorer import Restorer, Undo, read_journal
from labctl.runfiles.models import (
    SCHEMA_VERSION,
    Journal,
    Manifest,
    RunFile,
    StepRecord,
    StepsRecord,
    Summary,
    run_schema,
    summary_schema,
)
from labctl.runfiles.rundir import RunDir
from tests.helpers import FIXTURES

RUNS = sorted(p for p in (FIXTURES / "runs").iterdir() if p.is_dir())
VERSIONS_READ = "reads schema versions 1 to 2"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A copy of the fixture runs (collect and compare write into the run directories)."""
    for run in RUNS:
        shutil.copytree(run, tmp_path / run.name)
    return tmp_path


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_fixture_runs_load_as_version_1_and_round_trip(run: Path) -> None:
    for model in (Manifest, Summary):
        text = (run / model.FILE).read_text()
        assert "schema_version" not in json.loads(text)
        loaded = RunDir(run).read_model(model)
        assert loaded.schema_version == SCHEMA_VERSION
        assert type(loaded).from_json(loaded.to_json()) == loaded
    summary = RunDir(run).read_model(Summary)
    dut = summary.hosts["dut"]
    assert list(dut.softnet) == list(range(8)) and all(isinstance(c, int) for c in dut.cpu_percent)
    assert all(isinstance(c, int) for row in dut.nic_irqs for c in row.per_cpu)


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_written_json_keeps_todays_keys_plus_the_version(run: Path) -> None:
    before = json.loads((run / "summary.json").read_text())
    after = json.loads(Summary.from_json(json.dumps(before)).to_json())
    assert after.pop("schema_version") == SCHEMA_VERSION
    assert set(before) <= set(after)
    assert after["hosts"]["dut"]["softnet"] == before["hosts"]["dut"]["softnet"]    # "0": {...}
    assert after["facts"] == before["facts"] and after["steps"] == before["steps"]


def test_collect_and_compare_read_version_1_runs(runs: Path) -> None:
    names = [run.name for run in RUNS]
    comparison = runner.compare_runs(names[0], names[1], runs)
    assert "# labctl compare" in comparison.text and comparison.html_path.exists()
    outcome = runner.collect(names[1], runs)
    assert outcome.summary.run_id == names[1]
    written = json.loads((runs / names[1] / "summary.json").read_text())
    assert written["schema_version"] == SCHEMA_VERSION


def _with_version(path: Path, version: Any) -> None:
    data = json.loads(path.read_text())
    data["schema_version"] = version
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("command", ["collect", "compare"])
def test_a_newer_run_directory_is_refused_with_one_message(
        runs: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    run = runs / RUNS[0].name
    name = "manifest.json" if command == "collect" else "summary.json"
    _with_version(run / name, SCHEMA_VERSION + 1)
    args = ["--runs-dir", str(runs), command, run.name] + ([RUNS[1].name] if command == "compare" else [])
    assert cli.main(args) == 1
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0, message
    assert str(run / name) in message
    assert f"schema_version {SCHEMA_VERSION + 1} (written by a newer labctl)" in message
    assert VERSIONS_READ in message


@pytest.mark.parametrize("text, says", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "not a labctl run file"),
    ('{"schema_version": "two"}', "has schema_version 'two'"),
    ('{"schema_version": 2, "run_id": 7}', "(schema_version 2) is not a run file this labctl reads"),
])
def test_an_unreadable_file_is_named_with_the_versions_read(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "summary.json").write_text(text)
    with pytest.raises(RunError) as caught:
        RunDir(tmp_path).read_model(Summary)
    message = str(caught.value)
    assert str(tmp_path / "summary.json") in message and says in message and VERSIONS_READ in message


def test_a_missing_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="manifest.json is missing"):
        RunDir(tmp_path).read_model(Manifest)


def test_a_manifest_without_facts_writes_no_facts() -> None:
    manifest = Manifest.from_json((RUNS[0] / "manifest.json").read_text())
    manifest.facts = None
    assert "facts" not in json.loads(manifest.to_json())


def test_steps_record_round_trip(tmp_path: Path) -> None:
    step = StepRecord(index=0, host="dut", kind="change", description="RPS of rx-0", status="ok",
                      observed="1", seconds=0.1)
    record = StepsRecord(steps=[step], restore=[], interrupted="SIGINT",
                         stopped_at={"phase": "tune", "host": "dut", "checkpoint": None},
                         pending_restore=["dut"])
    run_dir = RunDir(tmp_path)
    run_dir.write_model(record)
    assert run_dir.read_model(StepsRecord) == record
    assert json.loads((tmp_path / "steps.json").read_text())["steps"][0]["observed"] == "1"


class _NoTransport:
    def run(self, command: str, *, check: bool = True, timeout: float | None = 60.0) -> Any:
        raise AssertionError("not called")

    def reset(self) -> None:
        pass


def test_the_journal_is_a_model_that_survives_a_restart(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    assert read_journal(run_dir) == Journal()
    restorer = Restorer({"dut": _NoTransport()}, run_dir, lambda _: None)
    restorer.record_undo(Undo("dut", "echo 0 > /x", "undo: x", tuning=True))
    restorer.record_process("server", "dut", 4242, match="/tmp/labctl-run")
    on_disk = json.loads((tmp_path / "restore.json").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION
    assert on_disk["processes"] == {"server": {"host": "dut", "pid": 4242, "match": "/tmp/labctl-run"}}
    later = Restorer.from_journal(run_dir, {}, lambda _: None)
    assert later.undo == restorer.undo and later.processes == {"server": ("dut", 4242)}
    assert later.matches == {"server": "/tmp/labctl-run"} and later.hosts() == ["dut"]


def test_a_version_1_journal_is_read(tmp_path: Path) -> None:
    (tmp_path / "restore.json").write_text(json.dumps({
        "undo": [{"host": "dut", "command": "true", "description": "d", "tuning": False}],
        "processes": {"p": {"host": "dut", "pid": "12"}}, "kept": []}))
    journal = read_journal(RunDir(tmp_path))
    assert journal.undo[0].command == "true" and journal.processes["p"].pid == 12


# --- JSON Schemas ---------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}


def _types(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        kind = node.get("type")
        if isinstance(kind, str):
            yield kind
        for key, value in node.items():
            if key not in ("properties", "$defs") or not isinstance(value, dict):
                yield from _types(value)
            else:
                for sub in value.values():
                    yield from _types(sub)
    elif isinstance(node, list):
        for value in node:
            yield from _types(value)


def _check_schema(schema: dict[str, Any]) -> None:
    """What a JSON Schema (2020-12) document must be, checked without a validator library:
    its dialect, every $ref resolving inside it, every type one of JSON's."""
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    defs = schema.get("$defs", {})
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in defs, ref
    assert set(_types(schema)) <= TYPES


def test_labctl_schema_summary_prints_a_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema", "summary"]) == 0
    schema = json.loads(capsys.readouterr().out)
    _check_schema(schema)
    assert schema["type"] == "object" and schema["title"] == "Summary"
    assert schema["properties"]["schema_version"] == {"default": SCHEMA_VERSION, "title": "Schema Version",
                                                      "type": "integer"}
    assert schema == json.loads(json.dumps(summary_schema()))


def test_labctl_schema_run_has_the_manifest_steps_and_journal(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema", "run"]) == 0
    schema = json.loads(capsys.readouterr().out)
    _check_schema(schema)
    assert set(schema["properties"]) == {"manifest.json", "steps.json", "restore.json"}
    for name in ("Manifest", "StepsRecord", "Journal"):
        assert "schema_version" in schema["$defs"][name]["properties"]
    assert schema == json.loads(json.dumps(run_schema()))


def test_every_run_file_dumps_itself_as_json() -> None:
    for model in (Manifest, StepsRecord, Journal, Summary):
        assert issubclass(model, RunFile) and model.FILE.endswith(".json")
    assert json.loads(Summary(run_id="r").to_json())["run_id"] == "r"
