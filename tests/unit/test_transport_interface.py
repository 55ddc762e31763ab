"""The one transport interface (labctl.transport.base): the SSH transport and the unit tests'
fake both have its shape, method by method, and CommandResult carries what callers read.
No connection is made: SshTransport connects in open(), never in its constructor."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
from pathlib import Path

import pytest

import labctl
from labctl.errors import HostError
from labctl.transport.base import CommandResult, Transport
from labctl.transport.ssh import SshTransport
from labctl.transport.target import SshTarget
from tests.helpers.fakes import FakeTransport, Res

TARGET = SshTarget("dut", "192.0.2.1", 22, "root", "/nonexistent/key", "/nonexistent/known_hosts")
IMPLEMENTATIONS = (SshTransport, FakeTransport)
METHODS = ("open", "close", "reset", "run", "run_script", "put_file", "put_text", "get_file")


def as_transport(transport: SshTransport | FakeTransport) -> Transport:
    """mypy checks this assignment structurally: a method that drifts from the Protocol in
    either class is a type error here (mypy tests/unit/test_transport_interface.py)."""
    return transport


def instances() -> list[SshTransport | FakeTransport]:
    return [SshTransport(TARGET), FakeTransport("dut")]


def test_the_protocol_declares_what_callers_use() -> None:
    declared = {name for name, value in vars(Transport).items()
                if callable(value) and not name.startswith("_")}
    assert declared == set(METHODS)
    assert typing.get_type_hints(Transport)["target"] is SshTarget


@pytest.mark.parametrize("transport", instances(), ids=lambda t: type(t).__name__)
def test_both_implementations_are_transports(transport: SshTransport | FakeTransport) -> None:
    assert isinstance(as_transport(transport), Transport)
    assert isinstance(transport.target, SshTarget)


@pytest.mark.parametrize("cls", IMPLEMENTATIONS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", METHODS)
def test_each_method_has_the_protocols_signature(cls: type, method: str) -> None:
    """Same parameters (names, kinds, defaults) and the same types as the Protocol."""
    wanted, got = getattr(Transport, method), getattr(cls, method)
    assert _parameters(got) == _parameters(wanted), f"{cls.__name__}.{method}"
    assert typing.get_type_hints(got) == typing.get_type_hints(wanted), f"{cls.__name__}.{method}"


def _parameters(function: typing.Callable[..., object]) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_command_result_carries_what_callers_read() -> None:
    failed = CommandResult("dut", "false", "out", "err\n", 1)
    assert (failed.host, failed.command, failed.stdout, failed.stderr, failed.exited) == (
        "dut", "false", "out", "err\n", 1)
    assert not failed.ok and failed.output == "out\nerr\n"
    assert CommandResult("dut", "true", "", "", 0).ok
    assert CommandResult("dut", "x", "a\n", "b", 0).output == "a\nb"
    with pytest.raises(dataclasses.FrozenInstanceError):
        failed.exited = 0  # type: ignore[misc]


def test_the_fake_answers_like_the_real_transport() -> None:
    fake = FakeTransport("dut", {"false": Res("out", "err\n", 1)})
    assert fake.run("true") == CommandResult("dut", "true", "", "", 0)
    assert fake.run("false", check=False) == CommandResult("dut", "false", "out", "err\n", 1)
    with pytest.raises(HostError) as info:
        fake.run("false")
    assert (info.value.host, info.value.command, info.value.rc) == ("dut", "false", 1)
    fake.put_text("/etc/x.conf", "a = 1\n")
    assert fake.written == {"/etc/x.conf": "a = 1\n"}
    assert fake.commands() == ["true", "false", "false"]


def test_no_other_transport_protocol_in_labctl() -> None:
    """One interface: no module declares its own Transport Protocol again."""
    package = Path(labctl.__file__).parent
    found = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and "Transport" in node.name and any(
                    isinstance(b, ast.Name) and b.id == "Protocol" for b in node.bases):
                found.append(f"{path.relative_to(package)}:{node.name}")
    assert found == ["transport/base.py:Transport"]
