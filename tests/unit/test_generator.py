"""The load generator's ceiling: modes, warnings with file:line, the manifest record, and the
calibration's clean-up on the error paths a real host cannot produce on demand (a fake
transport; the real calibration runs in tests/integration/test_netns_lab.py and tests/integration/test_vm_lab.py)."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from labctl.errors import CalibrationError, TransportError
from labctl.execution.calibrate import measure_ceiling, record_ceiling
from labctl.input.config import load_inventory, load_scenario
from labctl.input.model import Load
from labctl.labs.state import LabState, StateFile
from labctl.plan.generator import (
    CEILINGS_KEY,
    Ceiling,
    ceiling_from_results,
    ceiling_warning,
    generator_record,
    mode_of,
    recorded_ceiling,
)
from tests.helpers import NETNS_INVENTORY, FakeTransport, Res

INVENTORY = NETNS_INVENTORY
SCENARIO = """\
description: paced
load:
  server: {host: dut, port: 8080, cpus: 6-7}
  client:
    host: loadgen
    rate: 2000
    duration: 10
    workers: 4
    new_socket_per_message: true
"""


def _loaded(tmp_path: Path, text: str = SCENARIO) -> Any:
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    (tmp_path / "s.yaml").write_text(textwrap.dedent(text))
    return load_scenario(tmp_path / "s.yaml", load_inventory(tmp_path / "inventory.yaml").model)


def _ceiling(rate: float, load: Load) -> Ceiling:
    mode = mode_of(load)
    return Ceiling(mode.key, mode.describe(), rate, rate, [rate / 4] * 4, 5.0, "2026-12-03T14:00:00+00:00")


def test_the_mode_is_what_the_ceiling_depends_on(tmp_path: Path) -> None:
    load = _loaded(tmp_path).model.load
    mode = mode_of(load)
    assert mode.key == "loadgen->dut/udp/64B/4w/new-socket/cpus=any"
    assert mode.describe() == "UDP from loadgen to dut, a new socket per message, 64 B, 4 worker(s)"
    faster = load.model_copy(update={"client": load.client.model_copy(update={"rate": 9999})})
    assert mode_of(faster) == mode, "the asked rate is not part of the mode"
    pooled = load.model_copy(update={"client": load.client.model_copy(
        update={"new_socket_per_message": False, "flows": 256, "cpus": frozenset({0, 1})})})
    assert mode_of(pooled).key == "loadgen->dut/udp/64B/4w/256-flows/cpus=0-1"


@pytest.mark.parametrize("ceiling,warned", [(2500.0, False), (3000.0, False), (2499.0, True), (1634.0, True)])
def test_a_rate_above_the_safe_share_of_the_ceiling_is_warned_with_file_and_line(
        tmp_path: Path, ceiling: float, warned: bool) -> None:
    loaded = _loaded(tmp_path)
    warning = ceiling_warning(loaded, _ceiling(ceiling, loaded.model.load))
    assert (warning is not None) is warned
    if warned:
        assert warning is not None
        assert warning.startswith(f"{tmp_path / 's.yaml'}:6:11: load.client.rate: asks 2000 msg/s, ")
        assert f"of the load generator's measured ceiling of {ceiling:.0f} msg/s" in warning
        assert "a new socket per message" in warning and "`rate: max`" in warning


def test_no_warning_without_a_ceiling_or_for_an_as_fast_as_it_can_client(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path)
    assert ceiling_warning(loaded, None) is None
    as_fast = _loaded(tmp_path, SCENARIO.replace("rate: 2000", "rate: max"))
    assert ceiling_warning(as_fast, _ceiling(10.0, as_fast.model.load)) is None


def test_ceilings_are_kept_per_mode_in_the_lab_state(tmp_path: Path) -> None:
    load = _loaded(tmp_path).model.load
    state_file = StateFile(tmp_path / "state.json")
    state_file.save(LabState("t", "netns", "up"))
    record_ceiling(state_file, _ceiling(1000.0, load))
    record_ceiling(state_file, _ceiling(1700.0, load))          # a newer one replaces it
    facts = state_file.load().facts
    assert list(facts[CEILINGS_KEY]) == [mode_of(load).key]
    found = recorded_ceiling(facts, load)
    assert found is not None and found.rate == 1700.0
    other = load.model_copy(update={"client": load.client.model_copy(update={"workers": 8})})
    assert recorded_ceiling(facts, other) is None


def test_the_manifest_record_says_the_asked_share(tmp_path: Path) -> None:
    load = _loaded(tmp_path).model.load
    record = generator_record(load, _ceiling(4000.0, load))
    assert record is not None and record["asked_share_of_ceiling"] == 0.5
    assert record["ceiling"]["rate"] == 4000.0 and record["asked_rate"] == 2000
    assert generator_record(load, None)["ceiling"] is None      # type: ignore[index]
    assert generator_record(None, None) is None


def test_a_ceiling_from_the_loadgen_results() -> None:
    load = Load.model_validate({"client": {"rate": "max", "duration": 5, "workers": 2}})
    client = {"achieved_rate": 2681.2, "duration": 5.0,
              "workers": [{"achieved_rate": 1340.04}, {"achieved_rate": 1341.16}]}
    ceiling = ceiling_from_results(mode_of(load), client, {"received": 13000}, "t")
    assert (ceiling.rate, ceiling.received_rate, ceiling.worker_rates) == (2681.2, 2600.0, [1340.0, 1341.2])
    assert ceiling_from_results(mode_of(load), {}, None, "t").rate == 0.0


# --------------------------------------------------------------------------- calibration clean-up

class CalibrationHost(FakeTransport):
    """A host that runs the calibration's commands as a real one would answer them."""

    def __init__(self, name: str, fail_on: str = "", python: bool = True):
        super().__init__(name)
        self.fail_on, self.python = fail_on, python

    def respond(self, command: str) -> Res:
        if self.fail_on and self.fail_on in command:
            return Res("", "boom", 1)
        if command == "command -v python3":
            return Res("/usr/bin/python3\n" if self.python else "", "", 0 if self.python else 1)
        if command.startswith("setsid "):
            return Res("4242\n")
        if command.startswith("cat ") and command.endswith("client.json"):
            return Res(json.dumps({"achieved_rate": 1800.0, "duration": 5.0, "workers": []}))
        if command.startswith("cat ") and command.endswith("server.json"):
            return Res(json.dumps({"received": 9000}))
        return Res()


def _calibrate(tmp_path: Path, dut: FakeTransport, loadgen: FakeTransport) -> Ceiling:
    loaded = _loaded(tmp_path)
    inventory = load_inventory(tmp_path / "inventory.yaml").model
    return measure_ceiling(inventory, loaded.model.load, {"dut": dut, "loadgen": loadgen},
                           lambda message: None, seconds=1.0)


def _workdir(host: FakeTransport) -> str:
    made = [c for c in host.commands() if c.startswith("mkdir ")]
    assert made, host.commands()
    found = re.search(r"(/tmp/labctl-calibrate-[\w-]+)", made[0])
    assert found and found.group(1).endswith(f"-{host.name}"), "a directory of its own per host"
    return found.group(1)


def test_a_calibration_runs_server_then_client_and_leaves_nothing(tmp_path: Path) -> None:
    dut, loadgen = CalibrationHost("dut"), CalibrationHost("loadgen")
    ceiling = _calibrate(tmp_path, dut, loadgen)
    assert (ceiling.rate, ceiling.received_rate) == (1800.0, 1800.0)
    client = next(c for c in loadgen.commands() if " client " in c)
    assert "--max" in client and "--new-socket-per-message" in client and "--duration 1" in client
    assert "--rate" not in client and "--host 198.18.0.1" in client
    server = next(c for c in dut.commands() if " server " in c)
    assert "--cpus 6-7" in server and "--port 8080" in server
    for host in (dut, loadgen):
        assert host.commands()[-1] == f"rm -rf {_workdir(host)}"
    assert any(c.startswith("kill -TERM 4242") for c in dut.commands())


@pytest.mark.parametrize("where,fail_on,message", [
    ("loadgen", " client ", "the load generator's client exited 1"),
    ("dut", "until [ -e", "the calibration server did not bind udp port 8080"),
    ("loadgen", "cat ", "reading /tmp/labctl-calibrate-"),
])
def test_a_failed_calibration_is_one_error_and_stops_the_server(
        tmp_path: Path, where: str, fail_on: str, message: str) -> None:
    hosts = {"dut": CalibrationHost("dut"), "loadgen": CalibrationHost("loadgen")}
    hosts[where].fail_on = fail_on
    with pytest.raises(CalibrationError, match=re.escape(message)):
        _calibrate(tmp_path, hosts["dut"], hosts["loadgen"])
    dut = hosts["dut"]
    assert any(c.startswith("kill -TERM 4242") for c in dut.commands()), "the server is stopped"
    for host in hosts.values():
        assert f"rm -rf {_workdir(host)}" in host.commands()


def test_no_python3_is_a_clear_error_before_anything_starts(tmp_path: Path) -> None:
    dut, loadgen = CalibrationHost("dut"), CalibrationHost("loadgen", python=False)
    with pytest.raises(CalibrationError, match=r"loadgen: no python3 on the host: the load generator needs it"):
        _calibrate(tmp_path, dut, loadgen)
    assert not any(" server " in c for c in dut.commands())
    assert not any(c.startswith("mkdir") for c in loadgen.commands())


def test_a_host_lost_mid_calibration_is_said_and_the_other_is_cleaned(tmp_path: Path) -> None:
    dut, loadgen = CalibrationHost("dut"), CalibrationHost("loadgen")
    lost = TransportError("loadgen: connection lost while running: python3 ...")
    original = loadgen.respond
    loadgen.respond = lambda command: (_ for _ in ()).throw(lost) if " client " in command else original(command)  # type: ignore[method-assign]
    with pytest.raises(CalibrationError, match="connection lost"):
        _calibrate(tmp_path, dut, loadgen)
    assert any(c.startswith("kill -TERM 4242") for c in dut.commands())
    assert f"rm -rf {_workdir(dut)}" in dut.commands()
