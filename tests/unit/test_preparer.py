"""Host preparation's checks before any change, with a recording stand-in for SSH that answers
the facts script with the output captured from a real Debian 12 guest (the changes themselves
run against real guests in tests/integration/test_vm_lab.py)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from labctl.errors import ValidationError
from labctl.execution.preparer import Preparer
from labctl.input.config import load_inventory
from labctl.transport.base import CommandResult
from tests.helpers import FIXTURES, FakeTransport, Res

FIXTURE = FIXTURES / "prep" / "debian12-as-booted.txt"


class Answers(FakeTransport):
    """The guest as booted: answers the facts script from the capture."""

    def __init__(self, name: str = "dut") -> None:
        super().__init__(name)

    def respond_script(self, script: str) -> CommandResult:
        text = FIXTURE.read_text()
        if "/realtime/" not in script:         # the guest has no such profile: `ls` finds nothing
            text = re.sub(r"(begin profile_exists\n).*?(\n@@labctl-section end)", r"\1\2", text, flags=re.S)
        return Res(text)

    def kinds(self) -> list[str]:
        """What was done, in order: "run_script" reads facts; "run" or "put_text" would change."""
        return [kind for kind, _ in self.calls]


def inventory(tmp_path: Path, prepare: str) -> Any:
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent("""\
        lab: t
        provider: libvirt
        hosts:
          dut:
            role: dut
            data_address: 198.18.0.1/24
            prepare:
        """) + textwrap.indent(textwrap.dedent(prepare), "      ")
        + "  loadgen: {role: loadgen, data_address: 198.18.0.2/24}\n")
    return load_inventory(path)


@pytest.mark.parametrize("prepare, line, words", [
    ("tuned: {isolated_cores: 4-11}\n", 8, "tuned.isolated_cores: CPU(s) 8-11 do not exist on dut (online: 0-7)"),
    ("tuned:\n  isolated_cores: 0-7\n", 9, "tuned.isolated_cores: isolating every CPU of dut (0-7) leaves none"),
    ("tuned: {profile: no-such-profile}\n", 8, "tuned.profile: tuned profile 'no-such-profile' does not exist"),
    ("tuned: {isolated_cores: 4-7, netdev_queue_count: 16}\n", 8, "at most 4 combined channels"),
])
def test_what_the_host_cannot_take_is_refused_before_any_change(
        tmp_path: Path, prepare: str, line: int, words: str) -> None:
    loaded = inventory(tmp_path, prepare)
    answers = Answers()
    preparer = Preparer(loaded, {"dut": answers, "loadgen": FakeTransport("loadgen")}, tmp_path / "records", None, print)
    with pytest.raises(ValidationError) as info:
        preparer.prepare()
    (problem,) = info.value.problems
    assert f"{loaded.path}:{line}:" in str(problem) and words in str(problem)
    assert answers.kinds() == ["run_script"] and not (tmp_path / "records").exists()


def test_describe_prints_the_steps_and_changes_nothing(tmp_path: Path) -> None:
    loaded = inventory(tmp_path, "irqbalance: disable\ntuned: {isolated_cores: 4-7}\n")
    dut = Answers()
    preparer = Preparer(loaded, {"dut": dut, "loadgen": FakeTransport("loadgen")}, tmp_path / "records", None, print)
    text = "\n".join(preparer.describe())
    assert "$ systemctl disable --now irqbalance" in text and "+isolated_cores=4-7" in text
    assert "$ tuned-adm profile realtime" in text and "[dut] reboot: the running kernel isolates no CPU" in text
    assert not (tmp_path / "records").exists() and dut.kinds() == ["run_script"]
