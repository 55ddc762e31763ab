"""`labctl run A B C`: every scenario runs to its end whatever the others did, one table at the
end, the exit code of the worst outcome. The runs themselves are replaced here (their outcomes
are what is tested: a failed, an inconclusive and a broken run on demand); the real series runs
on the netns lab (tests/integration/test_netns_lab.py) and on the VM lab (tests/integration/test_vm_lab.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labctl import cli, runner
from labctl.errors import ExpectationsFailed, HostError, RunInconclusive
from labctl.runfiles.models import ExpectationRecord, Summary
from tests.helpers import NETNS_INVENTORY

INVENTORY = NETNS_INVENTORY
SCENARIO = "load:\n  client: {rate: max, duration: 1}\nexpect:\n  - {check: rate, min: 10}\n"


class Outcome:
    def __init__(self, summary: Summary):
        self.summary, self.report = summary, "report"


def _summary(*passed: bool) -> Summary:
    return Summary(expectations=[ExpectationRecord(passed=p) for p in passed])


def _files(tmp_path: Path, names: list[str]) -> list[str]:
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    for name in names:
        (tmp_path / f"{name}.yaml").write_text(SCENARIO)
    return [str(tmp_path / f"{name}.yaml") for name in names]


def _fake_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, results: dict[str, Any]) -> list[str]:
    ran: list[str] = []

    def fake_run(inventory: Path, scenario: Path, runs: Path, progress: Any,
                 created: list[Path] | None = None) -> Outcome:
        ran.append(scenario.stem)
        if created is not None:
            created.append(tmp_path / "runs" / f"T-{scenario.stem}")
        result = results[scenario.stem]
        if isinstance(result, BaseException):
            raise result
        return Outcome(result)

    monkeypatch.setattr(runner, "run", fake_run)
    return ran


def test_a_series_runs_every_scenario_and_ends_with_one_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _files(tmp_path, ["one", "two", "three", "four"])
    ran = _fake_runs(monkeypatch, tmp_path, {
        "one": _summary(True, True),
        "two": ExpectationsFailed("failed: 1 of 2 DUT check(s) failed", Outcome(_summary(False, True))),
        "three": RunInconclusive("inconclusive: generator-bound", Outcome(_summary(True, False))),
        "four": HostError("dut", "ethtool -L eth1 combined 2", 1, "Operation not supported"),
    })
    code = cli.main(["-q", "-i", str(tmp_path / "inventory.yaml"), "run", *paths])
    out = capsys.readouterr()
    assert ran == ["one", "two", "three", "four"], "a failure does not stop the series"
    assert code == 1, "an error is the worst outcome"
    lines = out.out.splitlines()
    assert lines[0].split() == ["scenario", "outcome", "checks", "run", "directory"]
    assert [line.split()[:3] for line in lines[1:5]] == [
        ["one", "passed", "2/2"], ["two", "failed", "1/2"], ["three", "inconclusive", "1/2"],
        ["four", "error", "-"]]
    assert lines[1].endswith(str(tmp_path / "runs" / "T-one"))
    assert lines[5] == "4 scenario(s): 1 error, 1 failed, 1 inconclusive, 1 passed"
    assert "labctl: " + paths[3] + ": error: dut: command exited 1" in out.err


@pytest.mark.parametrize("outcomes,code", [
    (["pass", "pass"], 0), (["pass", "short"], 5), (["short", "fail"], 3), (["fail", "pass"], 3)])
def test_the_exit_code_is_the_worst_outcome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            outcomes: list[str], code: int) -> None:
    made = {"pass": _summary(True),
            "short": RunInconclusive("inconclusive", Outcome(_summary(False))),
            "fail": ExpectationsFailed("failed", Outcome(_summary(False)))}
    names = [f"s{i}" for i in range(len(outcomes))]
    _fake_runs(monkeypatch, tmp_path, {n: made[o] for n, o in zip(names, outcomes)})
    assert cli.main(["-q", "-i", str(tmp_path / "inventory.yaml"), "run", *_files(tmp_path, names)]) == code


def test_every_scenario_is_validated_before_the_first_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _files(tmp_path, ["good", "bad"])
    Path(paths[1]).write_text("load:\n  client: {rate: max, duration: 1}\nexpect:\n"
                              "  - {check: rate, min_fraction: 0.9}\n")
    ran = _fake_runs(monkeypatch, tmp_path, {"good": _summary(True)})
    assert cli.main(["-q", "-i", str(tmp_path / "inventory.yaml"), "run", *paths]) == 2
    assert ran == []
    err = capsys.readouterr().err
    assert f"{paths[1]}:4:33: expect[0].min_fraction: the client sends as fast as it can (rate: max)" in err


def test_a_single_inconclusive_run_exits_5_with_its_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    paths = _files(tmp_path, ["only"])
    _fake_runs(monkeypatch, tmp_path, {"only": RunInconclusive(
        "inconclusive: generator-bound: 1634/s of 2000/s (81.7%)", Outcome(_summary(True, False)))})
    assert cli.main(["-q", "-i", str(tmp_path / "inventory.yaml"), "run", *paths]) == 5
    out = capsys.readouterr()
    assert out.out == "report\n"
    assert "labctl: inconclusive: generator-bound: 1634/s of 2000/s (81.7%)" in out.err
