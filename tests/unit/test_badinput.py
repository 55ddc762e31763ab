"""The bad-input corpus (tests/badinput/: inventory, scenario and sweep files): every file through
the real CLI, in-process.

Each case must end in exit code 2 and one message on stderr: the header line, then one line
per problem naming the file, a line (> 0) and the key path, with no traceback, and with no
host touched: everything that could open SSH, libvirt, a socket or a process refuses to be
called. A corpus file states what it expects in its first lines:

    # expect: <substring of the problem's message>
    # where: <line> [<key path>]      ("any": a line > 0, wherever the limit was hit)
    # inventory: inventory.yaml       (scenario files only; default inventories/netns.yaml)

Binary, empty and whitespace-only files have theirs in tests/badinput/expect.yaml. Huge
files, big bombs and special files are generated into tmp_path by the tests at the end.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import cli
from labctl.input.config import MAX_FILE_BYTES
from labctl.input.yamlpos import MAX_DEPTH, MAX_NODES
from tests.helpers import ROOT

CORPUS = ROOT / "tests" / "badinput"
NETNS_INVENTORY = ROOT / "inventories" / "netns.yaml"
GOOD_SCENARIO = ROOT / "scenarios" / "netns_baseline.yaml"
HEADER = re.compile(r"labctl: invalid input \((\d+) problems?\); nothing was changed on any host:")
QUICK = 10.0        # seconds; generous: the machine's CPUs may be busy with VM tests


@dataclass(frozen=True)
class Case:
    """One corpus file and what its problem must look like."""

    path: Path
    expect: str
    line: int | None
    key: str | None
    inventory: Path = NETNS_INVENTORY

    @property
    def kind(self) -> str:
        return self.path.parent.name

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.path.name}"


def _header(path: Path) -> dict[str, str]:
    fields = {}
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        match = re.fullmatch(r"# (expect|where|inventory): (.+)", line)
        if not match:
            break
        fields[match[1]] = match[2]
    return fields


def _where(text: str) -> tuple[int | None, str | None]:
    if text == "any":
        return None, None
    line, _, key = text.partition(" ")
    return int(line), key or None


def _case(path: Path, index: dict[str, Any]) -> Case:
    name = f"{path.parent.name}/{path.name}"
    if name in index:
        entry = index[name]
        return Case(path, entry["expect"], entry.get("line"), entry.get("path"))
    fields = _header(path)
    assert "expect" in fields, f"{name}: no `# expect:` line and no entry in expect.yaml"
    line, key = _where(fields.get("where", "any"))
    inventory = ROOT / fields["inventory"] if "inventory" in fields else NETNS_INVENTORY
    return Case(path, fields["expect"], line, key, inventory)


def corpus() -> list[Case]:
    index = yaml.safe_load((CORPUS / "expect.yaml").read_text())
    return [_case(p, index) for kind in ("inventory", "scenario", "sweep")
            for p in sorted((CORPUS / kind).iterdir())]


CASES = corpus()


def commands(case: Case, runs: Path) -> dict[str, list[str]]:
    """The CLI invocations a case goes through; each must refuse before touching a host."""
    base = ["--runs-dir", str(runs)]
    if case.kind == "inventory":
        inv, scenario = str(case.path), str(GOOD_SCENARIO)
        return {"validate": [*base, "-i", inv, "validate", scenario],
                "run": [*base, "-i", inv, "run", scenario],
                "dry-run": [*base, "-i", inv, "run", "--dry-run", scenario],
                "up": [*base, "-i", inv, "up"]}
    inv, scenario = str(case.inventory), str(case.path)
    if case.kind == "sweep":
        return {"validate": [*base, "-i", inv, "validate", scenario],
                "sweep": [*base, "-i", inv, "sweep", scenario],
                "sweep-dry-run": [*base, "-i", inv, "sweep", "--dry-run", scenario]}
    return {"validate": [*base, "-i", inv, "validate", scenario],
            "run": [*base, "-i", inv, "run", scenario],
            "dry-run": [*base, "-i", inv, "run", "--dry-run", scenario]}


RUNS = [(case, command) for case in CASES for command in commands(case, Path("runs"))]


# --------------------------------------------------------------------------- checking stderr

def problem_lines(err: str, file: Path) -> list[tuple[int, str]]:
    """(line, "key.path: message") of every problem; asserts the message's shape."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert lines, "nothing on stderr"
    head = HEADER.fullmatch(lines[0])
    assert head, f"not the invalid-input header: {lines[0]!r}"
    assert int(head[1]) == len(lines) - 1, f"header counts {head[1]} problems:\n{err}"
    found = []
    for line in lines[1:]:
        match = re.fullmatch(rf"  {re.escape(str(file))}:(\d+):(\d+): (.+)", line)
        assert match, f"not a problem line about {file}: {line!r}"
        assert int(match[1]) > 0 and int(match[2]) > 0, line
        found.append((int(match[1]), match[3]))
    return found


def assert_refused(err: str, file: Path, expect: str, line: int | None = None,
                   key: str | None = None) -> None:
    found = problem_lines(err, file)
    hits = [(n, text) for n, text in found if expect in text]
    assert hits, f"no problem says {expect!r}:\n{err}"
    if line is not None:
        assert any(n == line for n, _ in hits), f"no {expect!r} problem on line {line}:\n{err}"
        hits = [(n, text) for n, text in hits if n == line]
    if key is not None:
        assert any(text.startswith(f"{key}: ") for _, text in hits), \
            f"no {expect!r} problem at key path {key!r}:\n{err}"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert out == "", f"stdout should be empty, got {out!r}"
    return code, err


# --------------------------------------------------------------------------- the corpus

def test_corpus_is_big_enough() -> None:
    kinds = [case.kind for case in CASES]
    assert len(CASES) >= 110
    assert kinds.count("inventory") >= 40 and kinds.count("scenario") >= 40


def test_every_index_entry_names_a_corpus_file() -> None:
    index = yaml.safe_load((CORPUS / "expect.yaml").read_text())
    assert set(index) <= {case.name for case in CASES}


@pytest.mark.parametrize("case,command", RUNS, ids=[f"{c.name}-{cmd}" for c, cmd in RUNS])
def test_corpus(case: Case, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                no_host_touched: list[str]) -> None:
    started = time.monotonic()
    code, err = run_cli(commands(case, tmp_path / "runs")[command], capsys)
    assert code == 2, err
    assert_refused(err, case.path, case.expect, case.line, case.key)
    assert not no_host_touched
    assert not (tmp_path / "runs").exists() and not (case.path.parent / ".labctl").exists()
    assert time.monotonic() - started < QUICK


# --------------------------------------------------------------------------- generated cases

def _scenario_run(path: Path, runs: Path) -> list[str]:
    return ["--runs-dir", str(runs), "-i", str(NETNS_INVENTORY), "run", str(path)]


def _timed(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    started = time.monotonic()
    code, err = run_cli(argv, capsys)
    return code, err, time.monotonic() - started


def test_50_mb_inventory_is_refused_by_its_size(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               no_host_touched: list[str]) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        chunk = b"lab: t\n" + b"# padding padding padding padding padding padding\n" * 20_000
        while f.tell() < 50 << 20:
            f.write(chunk)
    code, err, seconds = _timed(["-i", str(path), "validate"], capsys)
    assert code == 2
    assert_refused(err, path, "labctl reads at most 1 MiB", line=1)
    assert seconds < QUICK and not no_host_touched


def test_a_million_keys_are_refused_by_size(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            no_host_touched: list[str]) -> None:
    path = tmp_path / "million.yaml"
    path.write_text("".join(f"k{i}: {i}\n" for i in range(1_000_000)))
    code, err, seconds = _timed(_scenario_run(path, tmp_path / "runs"), capsys)
    assert code == 2
    assert_refused(err, path, f"more than {MAX_FILE_BYTES} bytes", line=1)
    assert seconds < QUICK and not no_host_touched


@pytest.mark.parametrize("shape", ["keys", "flow_list", "block_list", "anchors"])
def test_just_under_the_size_limit_is_refused_by_node_count(
        shape: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        no_host_touched: list[str]) -> None:
    items = {"keys": lambda i: f"k{i}: {i}\n", "flow_list": lambda i: f"{i}, ",
             "block_list": lambda i: f"- {i}\n", "anchors": lambda i: f"a{i}: &a{i} [{i}]\n"}[shape]
    body, i = [], 0
    size = 0
    while size < MAX_FILE_BYTES - 100:
        body.append(items(i))
        size += len(body[-1])
        i += 1
    text = {"flow_list": "expect: [" + "".join(body) + "]\n", "block_list": "expect:\n" + "".join(body)}
    path = tmp_path / "big.yaml"
    path.write_text(text.get(shape, "".join(body)))
    assert path.stat().st_size <= MAX_FILE_BYTES
    code, err, seconds = _timed(_scenario_run(path, tmp_path / "runs"), capsys)
    assert code == 2
    assert_refused(err, path, f"more than {MAX_NODES} YAML nodes")
    assert seconds < QUICK and not no_host_touched


@pytest.mark.parametrize("levels,width", [(20, 10), (60, 2), (5, 1000)])
def test_generated_alias_bombs(levels: int, width: int, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str], no_host_touched: list[str]) -> None:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + f"\ndescription: *l{levels - 1}\n")
    code, err, seconds = _timed(_scenario_run(path, tmp_path / "runs"), capsys)
    assert code == 2
    assert_refused(err, path, "an alias bomb")
    assert seconds < QUICK and not no_host_touched


@pytest.mark.parametrize("opening", ["[", "{a: ", "- "])
def test_generated_deep_nesting(opening: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                no_host_touched: list[str]) -> None:
    depth = 200_000 if opening == "[" else 2_000
    path = tmp_path / "deep.yaml"
    path.write_text("expect:\n  " + opening * depth + "1\n")
    code, err, seconds = _timed(_scenario_run(path, tmp_path / "runs"), capsys)
    assert code == 2
    assert_refused(err, path, f"nested deeper than {MAX_DEPTH} levels")
    assert seconds < QUICK and not no_host_touched


@pytest.mark.parametrize("special", ["directory", "fifo", "dev_zero", "missing"])
def test_special_files_are_refused_without_reading(
        special: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        no_host_touched: list[str]) -> None:
    path = {"dev_zero": Path("/dev/zero")}.get(special, tmp_path / special)
    if special == "directory":
        path.mkdir()
    elif special == "fifo":
        os.mkfifo(path)                  # opening it would block forever: it must not be opened
    code, err, seconds = _timed(["-i", str(path), "validate"], capsys)
    assert code == 2, err
    assert "Traceback" not in err and HEADER.match(err.splitlines()[0])
    expect = "cannot read: No such file" if special == "missing" else "not a regular file"
    assert f"  {path}:" in err and expect in err, err
    assert seconds < QUICK and not no_host_touched


@pytest.mark.parametrize("stem", ["rps;reboot", "$(reboot)", "`id`", "a b", "new\nline", "-rf", ".hidden"])
def test_scenario_file_names_that_cannot_name_a_run(
        stem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        no_host_touched: list[str]) -> None:
    """Without `name:` the file's name names the run (and its remote work directory)."""
    path = tmp_path / f"{stem}.yaml"
    path.write_text("tuning:\n  dut:\n    rps: {all: 1}\n")
    code, err = run_cli(_scenario_run(path, tmp_path / "runs"), capsys)
    assert code == 2, err
    if "\n" in stem:    # the file name itself breaks the line; the message is still one
        assert err.count("\n") == 3 and "cannot name the run" in err
        return
    assert_refused(err, path, "cannot name the run", line=1, key="name")
    assert not no_host_touched


def test_a_bad_file_name_is_fine_with_a_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rps;reboot.yaml"
    path.write_text("name: rps-cpu1\ntuning:\n  dut:\n    rps: {all: 1}\n")
    assert cli.main(["-i", str(NETNS_INVENTORY), "validate", str(path)]) == 0


def test_problems_are_capped(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             no_host_touched: list[str]) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("".join(f"unknown{i}: 1\n" for i in range(2000)))
    code, err = run_cli(_scenario_run(path, tmp_path / "runs"), capsys)
    assert code == 2
    found = problem_lines(err, path)
    assert len(found) <= 101 and "1900 more problems" in found[-1][1]
