"""Calibration (side effects): measure the load generator's ceiling in a scenario's mode.

The scenario's server runs on its host as in a run (same protocol, port, workers, CPUs) and
the scenario's client sends to it as fast as it can for a few seconds, in the scenario's
mode (payload, workers, flows or a new socket per message, pinning). Both run from a private
directory under /tmp that is removed afterwards, and the server is stopped, also when
something fails or Ctrl-C comes: a calibration leaves nothing changed on any host. The
ceiling is recorded per mode in the lab state (see labctl.plan.generator).
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from labctl.errors import CalibrationError, HostError, LabctlError, TransportError
from labctl.host import probes
from labctl.input.model import Inventory, Load
from labctl.labs.state import LabState, StateFile
from labctl.packaged import agent_file
from labctl.plan.generator import (
    CALIBRATION_SECONDS,
    CEILINGS_KEY,
    Ceiling,
    ceiling_from_results,
    mode_of,
)
from labctl.plan.planner import (
    LOADGEN_REMOTE_NAME,
    client_argv,
    server_address,
    server_argv,
)
from labctl.runfiles.rundir import utc_now
from labctl.shell import detached_command, q, stop_command, wait_file_command
from labctl.transport.base import CommandResult, Transport

Progress = Callable[[str], None]
SERVER_READY_SECONDS = 30.0
STARTUP_ALLOWANCE = 60.0     # python3 and its workers starting in a slow (TCG) guest


def measure_ceiling(inventory: Inventory, load: Load, transports: Mapping[str, Transport], progress: Progress,
                    seconds: float = CALIBRATION_SECONDS) -> Ceiling:
    """Run the scenario's server and, as fast as it can, its client; return the ceiling."""
    mode = mode_of(load)
    hosts = (load.server.host, load.client.host)
    calibration = uuid.uuid4().hex[:12]
    workdirs = {h: f"/tmp/labctl-calibrate-{calibration}-{h}" for h in hosts}   # hosts may share /tmp
    progress(f"calibrating the load generator: {mode.describe()}, as fast as it can for {seconds:g} s")
    server_pid: str | None = None
    try:
        for host in hosts:
            _install(transports[host], host, workdirs[host])
        server_dir, client_dir = workdirs[load.server.host], workdirs[load.client.host]
        server_pid = _start_server(transports[load.server.host], inventory, load, server_dir)
        _wait_until_bound(transports[load.server.host], load, server_dir)
        argv = client_argv(f"{client_dir}/{LOADGEN_REMOTE_NAME}", load.server.protocol,
                           server_address(inventory, load.server.host), load.server.port, load.client,
                           f"{client_dir}/client.json", rate="max", duration=seconds)
        _call(transports[load.client.host], load.client.host, q(*argv) + " </dev/null",
              "the load generator's client", timeout=seconds + STARTUP_ALLOWANCE)
        client = _read_json(transports[load.client.host], load.client.host, f"{client_dir}/client.json")
        _call(transports[load.server.host], load.server.host, stop_command(server_pid, 15),
              "stopping the calibration server")
        server_pid = None
        server = _read_json(transports[load.server.host], load.server.host, f"{server_dir}/server.json")
    except HostError as exc:
        raise CalibrationError(f"calibration of the load generator failed: {exc}") from None
    except TransportError as exc:
        raise CalibrationError(f"calibration of the load generator failed: {exc}; nothing was "
                               "left on the hosts that answered") from None
    finally:
        _clean_up(transports, load, workdirs, server_pid)
    ceiling = ceiling_from_results(mode, client, server, utc_now())
    progress(f"load generator ceiling: {ceiling.rate:.0f} msg/s sent, {ceiling.received_rate:.0f} "
             f"received ({mode.describe()})")
    return ceiling


def record_ceiling(state_file: StateFile, ceiling: Ceiling, state: LabState | None = None) -> None:
    """Keep the ceiling in the lab state file (per mode; a newer one replaces the older) and,
    when given, in the caller's copy of that state too."""
    with state_file.lock:
        saved = state_file.load()
        ceilings = saved.facts.setdefault(CEILINGS_KEY, {})
        ceilings[ceiling.mode] = ceiling.to_json()
        state_file.save(saved)
    if state is not None:
        state.facts[CEILINGS_KEY] = dict(ceilings)


def _install(transport: Transport, host: str, workdir: str) -> None:
    found = transport.run("command -v python3", check=False)
    if not found.ok:
        raise CalibrationError(f"{host}: no python3 on the host: the load generator needs it "
                               "(Debian: apt-get install python3)")
    _call(transport, host, f"mkdir -m 0700 {shlex.quote(workdir)}", "making the calibration directory")
    with agent_file() as local:
        transport.put_file(local, f"{workdir}/{LOADGEN_REMOTE_NAME}", 0o755)


def _start_server(transport: Transport, inventory: Inventory, load: Load, workdir: str) -> str:
    host = load.server.host
    command = detached_command(server_argv(inventory, load.server, workdir), f"{workdir}/server.log")
    pid = _call(transport, host, command, "starting the calibration server").stdout.strip()
    if not pid.isdigit():
        raise CalibrationError(f"{host}: the calibration server did not start (printed {pid!r})")
    return pid


def _wait_until_bound(transport: Transport, load: Load, workdir: str) -> None:
    host = load.server.host
    ready = transport.run(wait_file_command(f"{workdir}/server.ready", SERVER_READY_SECONDS), check=False,
                          timeout=SERVER_READY_SECONDS + 10)
    if not ready.ok:
        log = transport.run(f"tail -n 5 {shlex.quote(workdir)}/server.log", check=False).stdout
        raise CalibrationError(f"{host}: the calibration server did not bind {load.server.protocol} port "
                               f"{load.server.port} within {SERVER_READY_SECONDS:g} s: {log.strip()}")


def _call(transport: Transport, host: str, command: str, what: str,
          timeout: float = 60.0) -> CommandResult:
    result = transport.run(command, check=False, timeout=timeout)
    if not result.ok:
        raise HostError(host, command, result.exited, result.output, why=f"{what} exited {result.exited}")
    return result


def _read_json(transport: Transport, host: str, path: str) -> dict[str, Any]:
    probe = probes.file_text(path)
    text = probe.parse(_call(transport, host, probe.command, f"reading {path}").stdout)
    try:
        data: dict[str, Any] = json.loads(text)
    except ValueError:
        raise CalibrationError(f"{host}: {path} is not the loadgen's JSON result: {text[:200]!r}") from None
    return data


def _clean_up(transports: Mapping[str, Transport], load: Load, workdirs: dict[str, str],
              server_pid: str | None) -> None:
    """Stop the server if it still runs and remove the directories, on every host that answers."""
    for host, workdir in workdirs.items():
        commands = [stop_command(server_pid, 15)] if server_pid and host == load.server.host else []
        commands.append(f"rm -rf {shlex.quote(workdir)}")
        for command in commands:
            try:
                transports[host].run(command, check=False, timeout=30)
            except LabctlError:
                pass          # unreachable: it had nothing of ours, or the lab is gone with it

