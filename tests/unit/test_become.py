"""The ssh provider's non-root logins and jump hosts, in their pure parts: the inventory keys,
the targets the provider records, and what a refusing sudo's answer means."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from labctl.errors import LabError
from labctl.input.model import Inventory, SshAccess
from labctl.labs.providers.ssh import SshProvider
from labctl.transport.become import as_root, sudo_problem, sudoers_line
from labctl.transport.target import SshTarget


def access(**fields: Any) -> SshAccess:
    return SshAccess(**{"address": "192.0.2.1", "key": "id", "known_hosts": "kh", **fields})


@pytest.mark.parametrize(("spec", "address", "port", "user"), [
    ("bastion.example", "bastion.example", 22, None),
    ("admin@bastion.example:2200", "bastion.example", 2200, "admin"),
    ("[2001:db8::7]:22", "2001:db8::7", 22, None),
    ("ops@[2001:db8::7]", "2001:db8::7", 22, "ops"),
    ({"address": "192.0.2.9", "port": 2022, "user": "ops"}, "192.0.2.9", 2022, "ops"),
])
def test_jump_as_text_or_mapping(spec: Any, address: str, port: int, user: str | None) -> None:
    jump = access(jump=spec).jump
    assert jump is not None and (jump.address, jump.port, jump.user) == (address, port, user)


@pytest.mark.parametrize(("fields", "says"), [
    ({"jump": "a@b:c:d"}, "not [user@]host[:port]"),
    ({"jump": "ops@bastion;id"}, "not an IP address or host name"),
    ({"jump": "ops@bastion:70000"}, "less than or equal to 65535"),
    ({"jump": "$(id)@bastion"}, "String should match pattern"),
    ({"jump": {"address": "b", "proxy": "x"}}, "Extra inputs are not permitted"),
    ({"user": "alice"}, "add `become: sudo`"),
    ({"user": "alice", "become": "doas"}, "Input should be 'sudo'"),
    ({"netns": "lab", "jump": "bastion"}, "netns and jump together"),
])
def test_refused_access(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says.replace("[", r"\[").replace("$", r"\$")
                       .replace("(", r"\(").replace(")", r"\)")):
        access(**fields)


def test_root_with_or_without_become_and_plain_user_with_it() -> None:
    assert access().become is None
    assert access(become="sudo").become == "sudo"
    assert access(user="alice", become="sudo").user == "alice"


def inventory(dut: dict[str, Any]) -> Inventory:
    loadgen = {"address": "192.0.2.2", "key": "id", "known_hosts": "kh"}
    return Inventory.model_validate({"lab": "t", "provider": "ssh", "hosts": {
        "dut": {"role": "dut", "data_address": "198.18.0.1/24", "ssh": dut},
        "loadgen": {"role": "loadgen", "data_address": "198.18.0.2/24", "ssh": loadgen}}})


def test_provider_records_become_and_jump_with_the_hosts_defaults(tmp_path: Path) -> None:
    for name in ("id", "kh", "jump_kh"):
        (tmp_path / name).write_text("")
    model = inventory({"address": "10.0.0.5", "user": "alice", "become": "sudo", "key": "id",
                       "known_hosts": "kh",
                       "jump": {"address": "192.0.2.9", "known_hosts": "jump_kh", "netns": "x"}})
    targets = SshProvider(model, tmp_path / "lab", tmp_path)._targets()
    dut = targets["dut"]
    assert (dut.user, dut.become, dut.netns) == ("alice", "sudo", None)
    assert dut.jump == SshTarget("dut", "192.0.2.9", 22, "alice", str(tmp_path / "id"),
                                 str(tmp_path / "jump_kh"), "x")
    assert targets["loadgen"].jump is None and targets["loadgen"].become is None
    # the lab state file stores targets as dicts: the jump comes back as a target
    assert SshTarget.from_dict(asdict(dut)) == dut


def test_provider_names_a_missing_jump_key(tmp_path: Path) -> None:
    for name in ("id", "kh"):
        (tmp_path / name).write_text("")
    model = inventory({"address": "10.0.0.5", "key": "id", "known_hosts": "kh",
                       "jump": {"address": "192.0.2.9", "key": "jump_id"}})
    with pytest.raises(LabError, match=f"missing {tmp_path / 'jump_id'}"):
        SshProvider(model, tmp_path / "lab", tmp_path)._targets()


def test_sudo_that_gives_root_is_no_problem() -> None:
    assert sudo_problem("dut", "alice", 0, "0\n", "") is None


@pytest.mark.parametrize(("status", "stdout", "stderr", "says"), [
    (1, "", "sudo: a password is required\n", "dut: sudo wants a password: labctl needs "
     "NOPASSWD for alice"),
    (1, "", "sudo: a terminal is required to read the password; either use the -S option",
     "dut: sudo wants a password"),
    (127, "", "sh: 1: exec: sudo: not found\n", "dut: sudo is not installed"),
    (1, "", "sudo: sorry, you must have a tty to run sudo\n", "dut: sudo requires a terminal (requiretty) and labctl runs without one: add "
     "`Defaults:alice !requiretty`"),
    (1, "", "alice is not in the sudoers file.  This incident will be reported.\n",
     "dut: alice may not use sudo"),
    (1, "", "Sorry, user alice is not allowed to execute '/bin/sh -c id -u' as root on dut.\n",
     "dut: alice may not use sudo"),
    (0, "1000\n", "", "dut: sudo did not give root: `id -u` printed '1000'"),
    (1, "", "sudo: unable to resolve host dut\nsudo: PAM account management error\n",
     "dut: sudo failed (exit 1)"),
])
def test_sudo_refusals_say_what_sudoers_needs(status: int, stdout: str, stderr: str,
                                             says: str) -> None:
    problem = sudo_problem("dut", "alice", status, stdout, stderr)
    assert problem is not None and problem.startswith(says), problem
    assert sudoers_line("alice") in problem
    if stderr:
        assert "sudo said: " + " ".join(stderr.split()) in problem


def test_root_shell_command_quotes_the_script() -> None:
    assert as_root("echo 'a b'; kill -TERM -1") == \
        "exec sudo -n /bin/sh -c 'echo '\"'\"'a b'\"'\"'; kill -TERM -1'"
