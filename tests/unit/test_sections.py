"""Batched scripts: build_script run by a real `sh`, split back per command by split_sections."""

from __future__ import annotations

import subprocess

import pytest

from labctl.host.sections import MARKER, Section, build_script, split_sections


def run_sh(script: str) -> str:
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done.stdout


COMMANDS = {
    "no_newline": "printf abc",
    "one_newline": "printf 'abc\\n'",
    "two_newlines": "printf 'abc\\n\\n'",
    "empty": "true",
    "only_newline": "echo",
    "multi": "printf 'a\\n b \\n\\tc'",
    "failing": "printf 'out\\n'; exit 7",
    "stderr": "echo to-stdout; echo to-stderr >&2; exit 3",
    "reads_stdin": "cat",
    "comment_at_end": "printf x # a trailing comment must not eat the subshell's )",
}

EXPECTED = {
    "no_newline": Section("no_newline", "abc", 0),
    "one_newline": Section("one_newline", "abc\n", 0),
    "two_newlines": Section("two_newlines", "abc\n\n", 0),
    "empty": Section("empty", "", 0),
    "only_newline": Section("only_newline", "\n", 0),
    "multi": Section("multi", "a\n b \n\tc", 0),
    "failing": Section("failing", "out\n", 7),
    "stderr": Section("stderr", "to-stdout\nto-stderr\n", 3),
    "reads_stdin": Section("reads_stdin", "", 0),
    "comment_at_end": Section("comment_at_end", "x", 0),
}


def test_round_trip_through_real_sh() -> None:
    sections = split_sections(run_sh(build_script(COMMANDS)))
    assert sections == EXPECTED
    assert list(sections) == list(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_alone(name: str) -> None:
    assert split_sections(run_sh(build_script({name: COMMANDS[name]}))) == {name: EXPECTED[name]}


def test_exit_status_does_not_stop_the_script() -> None:
    sections = split_sections(run_sh(build_script({"a": "exit 9", "b": "false", "c": "echo ok"})))
    assert [(s.name, s.status, s.output) for s in sections.values()] == [
        ("a", 9, ""), ("b", 1, ""), ("c", 0, "ok\n")]


def test_stdin_is_closed() -> None:
    """A command reading stdin gets EOF instead of eating the rest of the script."""
    script = build_script({"reader": "cat; echo after-cat", "next": "echo still-here"})
    done = subprocess.run(["sh"], input=script, capture_output=True, text=True, timeout=10)
    sections = split_sections(done.stdout)
    assert sections["reader"].output == "after-cat\n"
    assert sections["next"].output == "still-here\n"


def test_marker_is_one_quoted_echo_per_section() -> None:
    script = build_script({"a.b:c@d-e_1": "true"})
    assert f"echo '{MARKER} begin a.b:c@d-e_1'" in script
    assert script.endswith("\n")


@pytest.mark.parametrize("name", ["", "a b", "a;rm -rf /", "a\nb", "$(id)", "a'b", "ä"])
def test_bad_names_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="bad section name"):
        build_script({name: "true"})


def test_split_ignores_text_outside_sections() -> None:
    text = (f"motd noise\n{MARKER} begin a\nx\n\n{MARKER} end a 0\n"
            f"between\n{MARKER} begin b\n\n{MARKER} end b 2\ntrailing")
    assert split_sections(text) == {"a": Section("a", "x\n", 0), "b": Section("b", "", 2)}


def test_truncated_section_is_dropped() -> None:
    """An end marker that never came (connection lost) leaves no half section behind."""
    text = f"{MARKER} begin a\nx\n\n{MARKER} end a 0\n{MARKER} begin b\npartial"
    assert split_sections(text) == {"a": Section("a", "x\n", 0)}


def test_marker_like_lines_of_other_sections_stay_in_the_body() -> None:
    body = f"{MARKER} begin other\n{MARKER} end other 0"
    text = f"{MARKER} begin a\n{body}\n\n{MARKER} end a 0\n"
    assert split_sections(text) == {"a": Section("a", body + "\n", 0)}


def test_empty_text() -> None:
    assert split_sections("") == {}
