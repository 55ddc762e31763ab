"""Dry-run rendering (pure): a plan as `labctl run --dry-run` prints it.

Every action with its literal command; what is only known at run time (a process's PID, the
run directory) is shown as a placeholder. Values never escape their line: see render_plan.
"""

from __future__ import annotations

from typing import Any, assert_never

from labctl.cpulist import format_cpulist
from labctl.plan.actions import (
    Action,
    Change,
    Fetch,
    Plan,
    Skip,
    Sleep,
    Snapshot,
    Start,
    Stop,
    Upload,
    WaitFile,
    WaitProcess,
)
from labctl.plan.rss import table_text
from labctl.shell import running_command, stop_command, wait_file_command

CONTINUATION = "       > "


def render_plan(plan: Plan) -> str:
    """The plan as `labctl run --dry-run` prints it: every action with its literal command.
    A line break inside a command (a quoted value) is shown after sh's continuation prompt
    `>`, descriptions stay on one line: no part of a value can pass for a command of its own."""
    lines = [f"plan for run {one_line(plan.run_id)} ({len(plan.actions)} actions)"]
    phase = None
    for number, action in enumerate(plan.actions, 1):
        if action.phase != phase:
            phase = action.phase
            lines.append(f"\n== {phase}")
        lines.append(f"{number:3d}. [{action.host}] {action.kind}: {one_line(action.description)}")
        lines += [f"       warning: {one_line(w)}" for w in action.warnings]
        for command in _display_commands(action):
            lines += shown_command("       $ ", command)
        if isinstance(action, Change):
            lines += _check_and_undo_lines(action)
    return "\n".join(lines) + "\n"


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as `labctl run --dry-run --json` prints it: the same actions, commands,
    read-backs and undos as render_plan, as data (values unescaped: JSON quotes them)."""
    return {"run_id": plan.run_id, "workdir": dict(plan.workdir),
            "actions": [_action_document(number, action) for number, action in enumerate(plan.actions, 1)]}


def _action_document(number: int, action: Action) -> dict[str, Any]:
    document: dict[str, Any] = {"number": number, "phase": action.phase, "host": action.host,
                                "kind": action.kind, "description": action.description,
                                "warnings": list(action.warnings), "commands": _display_commands(action)}
    if isinstance(action, Change):
        document["readback"] = None if action.readback is None else {
            "command": action.readback.command, "kind": action.readback.kind,
            "expected": _expected_document(action.readback.expected)}
        document["undo"] = action.undo
        document["expect_failure"] = action.expect_failure
    return document


def _expected_document(value: Any) -> Any:
    """A read-back's expected value as JSON: a CPU set as its sorted list."""
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, dict):
        return {key: _expected_document(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_expected_document(item) for item in value]
    return value


def _check_and_undo_lines(action: Change) -> list[str]:
    lines = []
    if action.readback:
        lines += shown_command("       read back: $ ", f"{action.readback.command}  "
                               f"(expect {shown_value(action.readback.expected)})")
    if action.undo:
        lines += shown_command("       undo: $ ", action.undo)
    return lines


def shown_command(prefix: str, command: str) -> list[str]:
    """A command's printed lines: the first after ``prefix``, the rest after CONTINUATION;
    other unprintable characters (a carriage return would let a value overwrite the `$`, an
    escape sequence clear the screen) are shown escaped, as by one_line."""
    first, *rest = (_visible(line) for line in command.split("\n"))
    return [prefix + first] + [CONTINUATION + line for line in rest]


def one_line(text: str) -> str:
    """Text (a description, a warning) on one printed line: control characters escaped."""
    return _visible(text.replace("\n", "\\n"))


def _visible(text: str) -> str:
    return "".join(c if c == "\t" or c.isprintable() else repr(c)[1:-1] for c in text)


def _display_commands(action: Action) -> list[str]:
    """The commands an action runs, as printed (sftp copies and PIDs in words)."""
    match action:
        case Snapshot():
            return [f"{command}   # -> {action.host}/{name}.{action.local}"
                    for name, command in action.probes]
        case Upload():
            return [f"(sftp) {action.local} -> {action.remote}"]
        case Fetch():
            return [f"(sftp) {action.remote} -> runs/{plan_placeholder()}/{action.host}/{action.local}"]
        case WaitFile():
            return [wait_file_command(action.path, action.timeout)]
        case Stop():
            return [stop_command_template(action.process, action.timeout, action.signal)]
        case WaitProcess():
            return [f"{running_command_template(action.process)}  (polled until it fails)"]
        case Change() | Start():
            return [action.command] if action.command else []
        case Skip() | Sleep():
            return []
        case _:
            assert_never(action)


def plan_placeholder() -> str:
    return "<run-id>"


def stop_command_template(process: str, timeout: float, signal: str = "TERM") -> str:
    return stop_command(f"<pid of {process}>", timeout, signal)


def running_command_template(process: str) -> str:
    return running_command(f"<pid of {process}>")


def shown_value(value: Any) -> str:
    """A read-back value as the plan and the reports write it: CPUs as a list ("none" for no
    CPU), an RSS table as its spread, channels and the rest of a dict as words."""
    if isinstance(value, frozenset):
        return format_cpulist(value) or "none"
    if isinstance(value, dict):
        return ", ".join(table_text(v) if k == "table" and isinstance(v, list) else f"{k} {v}"
                         for k, v in value.items())
    return str(value)
