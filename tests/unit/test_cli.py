"""labctl.cli: the global options before or after every verb, `--json` results on stdout, the
shell completion script and `python -m labctl`. The runs are the real fixtures' (copied) or a
replaced runner.run; the real lab drives the CLI in tests/integration/test_wheel.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from labctl import cli, runner
from labctl.errors import ExpectationsFailed
from labctl.runfiles.models import Summary
from tests.helpers import NETNS_INVENTORY

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_RUNS = ROOT / "tests" / "fixtures" / "runs"
BASELINE, RPS = "20261126T075117Z-baseline", "20261126T075252Z-rps_cpu1"

# the arguments each verb needs besides the options; a new verb fails the test until it is here
VERB_ARGS: dict[tuple[str, ...], list[str]] = {
    ("up",): [], ("down",): [], ("status",): [], ("prepare",): [], ("unprepare",): [],
    ("run",): ["s.yaml"], ("sweep",): ["s.yaml"], ("calibrate",): [], ("restore",): ["R"], ("collect",): [],
    ("compare",): ["A", "B"], ("schema",): [], ("validate",): [], ("completion",): ["bash"],
    ("image", "build"): [], ("image", "show"): [],
    ("export",): ["R"], ("watch",): [],
}
GLOBALS = ["-i", "lab.yaml", "--runs-dir", "elsewhere", "-q"]


def verbs() -> list[tuple[str, ...]]:
    found = [(verb,) for verb in cli.COMMANDS if verb != "image"]
    return found + [("image", "build"), ("image", "show")]


def test_every_verb_is_covered() -> None:
    assert sorted(verbs()) == sorted(VERB_ARGS)


@pytest.mark.parametrize("verb", verbs(), ids=" ".join)
def test_global_options_after_the_verb(verb: tuple[str, ...]) -> None:
    args = cli.build_parser().parse_args([*verb, *GLOBALS, *VERB_ARGS[verb]])
    assert (args.inventory, args.runs_dir, args.quiet) == (Path("lab.yaml"), Path("elsewhere"), True)


@pytest.mark.parametrize("verb", verbs(), ids=" ".join)
def test_global_options_before_the_verb_are_kept(verb: tuple[str, ...]) -> None:
    args = cli.build_parser().parse_args([*GLOBALS, *verb, *VERB_ARGS[verb]])
    assert (args.inventory, args.runs_dir, args.quiet) == (Path("lab.yaml"), Path("elsewhere"), True)
    plain = cli.build_parser().parse_args([*verb, *VERB_ARGS[verb]])
    assert (plain.inventory, plain.runs_dir, plain.quiet, plain.json) == (
        Path("inventory.yaml"), Path("runs"), False, False)


def test_the_inventory_between_run_and_its_scenario() -> None:
    args = cli.build_parser().parse_args(
        ["run", "-i", "inventories/netns.yaml", "scenarios/netns_baseline.yaml"])
    assert args.inventory == Path("inventories/netns.yaml")
    assert args.scenarios == [Path("scenarios/netns_baseline.yaml")]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE_RUNS, tmp_path / "runs")
    return tmp_path / "runs"


def _json_out(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_status_json_of_a_lab_that_is_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "inventory.yaml").write_text(NETNS_INVENTORY)
    assert cli.main(["status", "--json", "-i", str(tmp_path / "inventory.yaml")]) == 0
    assert _json_out(capsys) == {"lab": "t", "provider": "netns", "up": False, "hosts": {},
                                 "generator_ceilings": []}


def test_collect_json_is_the_rebuilt_summary(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["collect", "--json", "--runs-dir", str(runs), BASELINE]) == 0
    document = _json_out(capsys)
    assert document["run_dir"] == str(runs / BASELINE)
    assert document["summary"] == json.loads((runs / BASELINE / "summary.json").read_text())


def test_compare_json(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compare", BASELINE, RPS, "--runs-dir", str(runs), "--json"]) == 0
    document = _json_out(capsys)
    assert Path(document["html"]).is_file()
    assert document["comparison"]["a"]["run_id"] == BASELINE
    assert document["comparison"]["b"]["run_id"] == RPS
    assert "dut" in document["comparison"]["hosts"]


def test_an_error_with_json_is_a_message_on_stderr(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["collect", "--json", "--runs-dir", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("labctl: ")


def test_image_show_json_without_an_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LABCTL_CACHE", str(tmp_path))
    assert cli.main(["image", "show", "--json"]) == 1
    out = capsys.readouterr()
    assert out.out == "" and "no guest image yet" in out.err


def _replace_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                  results: dict[str, dict[str, Any] | BaseException]) -> list[str]:
    (tmp_path / "inventory.yaml").write_text(NETNS_INVENTORY)
    paths = []
    for name in results:
        (tmp_path / f"{name}.yaml").write_text("load:\n  client: {rate: 1000, duration: 1}\n")
        paths.append(str(tmp_path / f"{name}.yaml"))

    def fake_run(inventory: Path, scenario: Path, runs_root: Path, progress: Any,
                 created: list[Path] | None = None) -> runner.RunOutcome:
        run_dir = runs_root / f"T-{scenario.stem}"
        if created is not None:
            created.append(run_dir)
        result = results[scenario.stem]
        if isinstance(result, BaseException):
            raise result
        return runner.RunOutcome(run_dir, Summary.model_validate(result), "report")

    monkeypatch.setattr(runner, "run", fake_run)
    return ["-i", str(tmp_path / "inventory.yaml"), "--runs-dir", str(tmp_path / "runs"), *paths]


def test_run_json_of_one_scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    argv = _replace_runs(monkeypatch, tmp_path, {"one": {"verdict": {"status": "passed", "reason": "all checks held"}}})
    assert cli.main(["run", "--json", *argv]) == 0
    document = _json_out(capsys)
    assert document["run_dir"] == str(tmp_path / "runs" / "T-one")
    assert document["summary"]["verdict"]["status"] == "passed"
    assert document["summary"]["schema_version"] == Summary.model_fields["schema_version"].default


def test_run_json_of_a_failed_run_still_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    outcome = runner.RunOutcome(tmp_path / "runs" / "T-one",
                                Summary.model_validate({"verdict": {"status": "failed", "reason": "1 check"}}), "report")
    argv = _replace_runs(monkeypatch, tmp_path, {"one": ExpectationsFailed("failed: 1 check", outcome)})
    assert cli.main(["run", "--json", *argv]) == 3
    out = capsys.readouterr()
    assert json.loads(out.out)["summary"]["verdict"]["status"] == "failed"
    assert "labctl: failed: 1 check" in out.err


def test_run_json_of_a_series(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    failed = runner.RunOutcome(tmp_path / "x", Summary.model_validate({"expectations": [{"passed": False}]}),
                               "report")
    argv = _replace_runs(monkeypatch, tmp_path, {
        "one": {"expectations": [{"passed": True}]},
        "two": ExpectationsFailed("failed: 1 of 1 DUT check(s) failed", failed)})
    assert cli.main(["run", *argv, "--json"]) == 3
    document = _json_out(capsys)
    assert document["outcome"] == "failed"
    assert [(r["outcome"], Path(r["scenario"]).stem) for r in document["runs"]] == [
        ("passed", "one"), ("failed", "two")]
    assert document["runs"][1]["reason"] == "failed: 1 of 1 DUT check(s) failed"
    assert document["runs"][1]["run_dir"] == str(tmp_path / "runs" / "T-two")




def test_bash_completion_offers_verbs_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("shtab")
    assert cli.main(["completion", "bash"]) == 0
    script = capsys.readouterr().out

    def complete(*words: str) -> list[str]:
        line = " ".join(["labctl", *words])
        probe = (f'{script}\nCOMP_WORDS=(labctl {" ".join(words)}); COMP_CWORD={len(words)}; '
                 f'COMP_LINE="{line}"; COMP_POINT={len(line)}; _shtab_labctl; '
                 'printf "%s\\n" "${COMPREPLY[@]}"')
        return subprocess.run(["bash", "-c", probe], capture_output=True, text=True,
                              check=True).stdout.split()

    assert "run" in complete("ru") and "collect" in complete("co")
    assert "--json" in complete("status", "--")
    assert {"--inventory", "--runs-dir"} <= set(complete("run", "--"))


def test_python_dash_m_labctl() -> None:
    from labctl import __version__
    done = subprocess.run([sys.executable, "-m", "labctl", "--version"], capture_output=True,
                          text=True, cwd=ROOT, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, f"labctl {__version__}")
