"""Test helpers: the load generator agent (labctl/agent/loadgen.py) run as real subprocesses
on 127.0.0.1, the way labctl runs it on lab hosts: a free port, a detached server (ready when
yielded, stopped after), a client run to its end."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labctl.agent import loadgen
from tests.helpers.processes import stop_process, wait_for_file

LOADGEN = Path(loadgen.__file__).resolve()
HOST = "127.0.0.1"


def free_port(protocol: str) -> int:
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def loadgen_argv(*args: str) -> list[str]:
    return [sys.executable, str(LOADGEN), *args]


@contextmanager
def server(tmp_path: Path, protocol: str, port: int, *extra: str) -> Iterator[tuple[subprocess.Popen, Path]]:
    """A loadgen server started detached (setsid, stdio redirected), ready when yielded."""
    result, ready = tmp_path / "server.json", tmp_path / "server.ready"
    argv = loadgen_argv("server", "--protocol", protocol, "--bind", HOST, "--port", str(port),
                        "--result", str(result), "--ready-file", str(ready), *extra)
    with open(tmp_path / "server.log", "w") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    try:
        wait_for_file(ready, process)
        yield process, result
    finally:
        if process.poll() is None:
            stop_process(process)


def run_client(tmp_path: Path, protocol: str, port: int, *extra: str) -> dict:
    result = tmp_path / "client.json"
    done = subprocess.run(
        loadgen_argv("client", "--protocol", protocol, "--host", HOST, "--port", str(port),
                     "--result", str(result), *extra),
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(result.read_text())
