"""Plan actions as types: every member of the Action union has its own handler in the
executor, is shown by the dry-run rendering, and keeps the `kind` name runs recorded before."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import get_args
from unittest import mock

import pytest

from labctl.execution.executor import Executor
from labctl.execution.restorer import StepResult
from labctl.plan.actions import (
    Action,
    Change,
    Fetch,
    Plan,
    Readback,
    Skip,
    Sleep,
    Snapshot,
    Start,
    Stop,
    Upload,
    WaitFile,
    WaitProcess,
)
from labctl.plan.dryrun import plan_document, render_plan
from labctl.runfiles.rundir import RunDir

ONE_OF_EACH: dict[type, Action] = {
    Change: Change("h", "tune", "change it", command="do", undo="undo",
                   readback=Readback("cat x", "cpulist", frozenset({1}))),
    Skip: Skip("h", "tune", "not applicable"),
    Sleep: Sleep("-", "measure", "settle", seconds=0.0),
    Upload: Upload("h", "load", "copy", local="labctl/agent/loadgen.py", remote="/w/l.py"),
    Start: Start("h", "load", "start", command="setsid x & echo $!", process="server"),
    WaitFile: WaitFile("h", "load", "ready?", path="/w/server.ready", process="server"),
    WaitProcess: WaitProcess("h", "load", "wait", process="client", result_file="/w/client.json"),
    Stop: Stop("h", "finish", "stop", process="server"),
    Fetch: Fetch("h", "finish", "fetch", remote="/w/server.json", local="loadgen/server.json"),
    Snapshot: Snapshot("h", "measure", "snapshot", command="script", local="before",
                       probes=(("stat", "cat /proc/stat"),)),
}
# the kind names in steps.json of earlier runs (reports read them): never renamed
RECORDED_KINDS = {"change", "skip", "sleep", "upload", "start", "wait_file", "snapshot",
                  "wait_process", "stop", "fetch"}


def test_one_of_each_covers_the_union() -> None:
    assert set(ONE_OF_EACH) == set(get_args(Action))


def test_kinds_are_unique_and_those_runs_recorded() -> None:
    kinds = [cls.kind for cls in get_args(Action)]
    assert len(set(kinds)) == len(kinds)
    assert set(kinds) == RECORDED_KINDS


@pytest.mark.parametrize("action", ONE_OF_EACH.values(), ids=lambda a: type(a).__name__)
def test_actions_are_frozen(action: Action) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        action.description = "changed"  # type: ignore[misc]


def test_every_action_type_has_its_own_handler(tmp_path: Path) -> None:
    """Each type reaches exactly one handler, and no two types share one."""
    executor = Executor(Plan("r", {}), {}, RunDir.create(tmp_path, "r"), lambda _: None)
    handlers = sorted(name for name in vars(Executor) if name.startswith("_do_"))
    used: dict[str, type] = {}
    for cls, action in ONE_OF_EACH.items():
        mocks = {name: mock.Mock() for name in handlers}
        with mock.patch.multiple(executor, **mocks):
            executor._dispatch(action, StepResult(0, action.host, action.kind, action.description, "ok"))
        called = [name for name, m in mocks.items() if m.called]
        assert len(called) == 1, (cls, called)
        assert mocks[called[0]].call_args.args[0] is action
        assert called[0] not in used, (cls, used[called[0]])
        used[called[0]] = cls
    assert set(used) == set(handlers)          # and no handler is left without a type


def test_every_action_type_is_rendered() -> None:
    actions = tuple(ONE_OF_EACH.values())
    text = render_plan(Plan("r", {}, actions))
    for number, action in enumerate(actions, 1):
        assert f"{number:3d}. [{action.host}] {action.kind}: {action.description}\n" in text
    assert "(sftp) labctl/agent/loadgen.py -> /w/l.py" in text
    assert "(sftp) /w/server.json -> runs/<run-id>/h/loadgen/server.json" in text
    assert "<pid of server>" in text and "<pid of client>" in text
    assert "cat /proc/stat   # -> h/stat.before" in text
    assert "read back: $ cat x  (expect 1)" in text and "undo: $ undo" in text


def test_every_action_type_is_a_json_document_with_the_printed_commands() -> None:
    """`run --dry-run --json`: each action's fields and the same literal commands as the text;
    the document survives json.dumps (a CPU set as a sorted list)."""
    actions = tuple(ONE_OF_EACH.values())
    plan = Plan("r", {"h": "/w"}, actions)
    document = json.loads(json.dumps(plan_document(plan)))
    text = render_plan(plan)
    assert document["run_id"] == "r" and document["workdir"] == {"h": "/w"}
    assert [(a["number"], a["kind"], a["phase"]) for a in document["actions"]] == [
        (number, action.kind, action.phase) for number, action in enumerate(actions, 1)]
    for entry in document["actions"]:
        assert all(f"$ {command}" in text for command in entry["commands"])
    change = document["actions"][0]
    assert change["readback"] == {"command": "cat x", "kind": "cpulist", "expected": [1]}
    assert change["undo"] == "undo" and change["expect_failure"] is False
    assert "readback" not in document["actions"][1]


def test_a_multiline_command_is_one_json_string() -> None:
    action = Change("h", "tune", "write\nit", command="printf 'a\nb'")
    (entry,) = plan_document(Plan("r", {}, (action,)))["actions"]
    assert entry["commands"] == ["printf 'a\nb'"] and entry["description"] == "write\nit"
