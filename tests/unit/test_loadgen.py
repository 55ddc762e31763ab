"""Tests for labctl/agent/loadgen.py: pure helpers in-process, server and client as real
subprocesses on 127.0.0.1 (free ports), the way labctl runs them on lab hosts."""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labctl.agent import loadgen
from tests.helpers.loadgen_runs import HOST, LOADGEN, free_port, loadgen_argv, run_client, server
from tests.helpers.processes import stop_process


def paced_run(tmp_path: Path, protocol: str, *client_extra: str) -> tuple[dict, dict]:
    """2 server workers; client 2 workers at 2000 msg/s for 1 s; returns (client, server) results."""
    port = free_port(protocol)
    with server(tmp_path, protocol, port, "--workers", "2") as (process, result):
        client = run_client(tmp_path, protocol, port, "--rate", "2000", "--duration", "1", "--payload", "64",
                            "--workers", "2", *client_extra)
        time.sleep(0.1)
        assert stop_process(process) == 0
    return client, json.loads(result.read_text())


def assert_rate_held(client: dict, server_result: dict) -> None:
    assert client["asked_rate"] == 2000
    assert abs(client["achieved_rate"] - 2000) <= 200, client
    assert client["errors"] == 0
    assert server_result["received"] >= 0.95 * client["sent"], (server_result["received"], client["sent"])
    assert server_result["received"] <= client["sent"]
    assert len(client["workers"]) == 2 and len(server_result["workers"]) == 2


# --- pure helpers -----------------------------------------------------------------------


def test_parse_cpu_list() -> None:
    assert loadgen.parse_cpu_list("6,7") == (6, 7)
    assert loadgen.parse_cpu_list("0-3,6") == (0, 1, 2, 3, 6)
    for bad in ("", "a", "3-1", "1,,2"):
        with pytest.raises(loadgen.UsageError):
            loadgen.parse_cpu_list(bad)


def test_messages_due_follows_absolute_deadlines() -> None:
    assert loadgen.messages_due(-0.1, 1000, 1.0) == 0
    assert loadgen.messages_due(0.0, 1000, 1.0) == 1  # message 0 is due at the start
    assert loadgen.messages_due(0.0105, 1000, 1.0) == 11
    assert loadgen.messages_due(5.0, 1000, 1.0) == 1000  # never more than the window holds


def test_flows_are_dealt_round_robin_and_rate_follows_flows() -> None:
    assert [loadgen.flows_of_worker(5, 2, i) for i in range(2)] == [[0, 2, 4], [1, 3]]
    config = loadgen.parse_config(["client", "--protocol", "udp", "--host", HOST, "--port", "1", "--rate", "1000",
                                   "--duration", "1", "--flows", "5", "--workers", "2", "--result", "/tmp/x.json"])
    assert isinstance(config, loadgen.ClientConfig)
    assert [loadgen.worker_rate(config, i) for i in range(2)] == [600.0, 400.0]


@given(st.lists(st.integers(min_value=8, max_value=300), min_size=1, max_size=20), st.data())
def test_stream_framer_counts_messages_however_the_stream_is_cut(sizes: list[int], data: st.DataObject) -> None:
    stream = b"".join(bytes(loadgen.build_message(size, n)) for n, size in enumerate(sizes))
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=10)))
    framer, counted, previous = loadgen.StreamFramer(), 0, 0
    for cut in [*cuts, len(stream)]:
        counted += framer.feed(memoryview(stream)[previous:cut])
        previous = cut
    assert counted == len(sizes)
    assert not framer.in_message


def test_stream_framer_rejects_foreign_bytes() -> None:
    with pytest.raises(ValueError):
        loadgen.StreamFramer().feed(b"GET / HTTP/1.1\r\n")


def test_loadgen_is_one_stdlib_only_file_with_python39_syntax() -> None:
    tree = ast.parse(LOADGEN.read_text(), feature_version=(3, 9))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


# --- usage errors -----------------------------------------------------------------------


@pytest.mark.parametrize("rate", ["0", "-5"])
def test_rate_not_positive_exits_2_with_one_line(tmp_path: Path, rate: str) -> None:
    done = subprocess.run(
        loadgen_argv("client", "--protocol", "udp", "--host", HOST, "--port", "9", f"--rate={rate}",
                     "--duration", "1", "--result", str(tmp_path / "c.json")),
        capture_output=True, text=True, timeout=10,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "--rate must be > 0" in done.stderr and "--max" in done.stderr
    assert not (tmp_path / "c.json").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rate", "10", "--max"], "not allowed with"),
        ([], "one of the arguments --rate --max is required"),
        (["--rate", "10", "--payload", "4"], "--payload must be 8-65507"),
        (["--rate", "10", "--workers", "4", "--flows", "2"], "--flows (2) must be >= --workers (4)"),
        (["--rate", "10", "--duration", "0"], "--duration must be > 0"),
        (["--rate", "10", "--cpus", "x"], "--cpus"),
        (["--rate", "nan"], "--rate must be > 0"),
    ],
)
def test_invalid_client_arguments_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    base = ["client", "--protocol", "udp", "--host", HOST, "--port", "9", "--duration", "1", "--result", "/tmp/c.json"]
    assert loadgen.main([*base, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_invalid_server_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert loadgen.main(["server", "--protocol", "sctp", "--port", "9", "--result", "/tmp/s.json"]) == 2
    assert loadgen.main(["server", "--protocol", "udp", "--port", "0", "--result", "/tmp/s.json"]) == 2
    assert loadgen.main(["server", "--protocol", "udp", "--port", "9", "--result", "/nonexistent/s.json"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 3


def test_port_in_use_exits_1(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((HOST, 0))
        done = subprocess.run(
            loadgen_argv("server", "--protocol", "udp", "--bind", HOST, "--port", str(taken.getsockname()[1]),
                         "--result", str(tmp_path / "s.json")),
            capture_output=True, text=True, timeout=10,
        )
    assert done.returncode == 1
    assert "Address already in use" in done.stderr


# --- real runs on loopback --------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_paced_two_workers_four_flows(tmp_path: Path, protocol: str) -> None:
    client, server_result = paced_run(tmp_path, protocol, "--flows", "4")
    assert_rate_held(client, server_result)
    assert sorted(w["flows"] for w in client["workers"]) == [2, 2]
    ports = [port for w in client["workers"] for port in w["source_ports"]]
    assert len(set(ports)) == 4  # four distinct source ports = four flows for RSS/RPS
    assert server_result["bytes"] == 64 * server_result["received"]
    if protocol == "tcp":
        assert server_result["connections"] == 4
    else:
        assert server_result["drops"] == 0


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_new_socket_per_message(tmp_path: Path, protocol: str) -> None:
    client, server_result = paced_run(tmp_path, protocol, "--new-socket-per-message")
    assert_rate_held(client, server_result)
    if protocol == "tcp":
        assert server_result["connections"] == client["sent"]


def test_cpu_pinning_is_reported(tmp_path: Path) -> None:
    port = free_port("udp")
    with server(tmp_path, "udp", port, "--workers", "2", "--cpus", "0") as (process, result):
        client = run_client(tmp_path, "udp", port, "--rate", "500", "--duration", "0.3", "--workers", "2",
                            "--cpus", "0")
        assert stop_process(process) == 0
    assert [w["cpus"] for w in json.loads(result.read_text())["workers"]] == [[0], [0]]
    assert [w["cpus"] for w in client["workers"]] == [[0], [0]]


def test_detached_server_stops_on_sigterm_with_a_valid_result(tmp_path: Path) -> None:
    port = free_port("tcp")
    with server(tmp_path, "tcp", port, "--workers", "3") as (process, result):
        ready = json.loads((tmp_path / "server.ready").read_text())
        assert ready["pid"] == process.pid and len(ready["workers"]) == 3
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    document = json.loads(result.read_text())
    assert document["role"] == "server" and document["protocol"] == "tcp"
    assert document["received"] == 0 and len(document["workers"]) == 3
    for worker in document["workers"]:
        assert set(worker) >= {"pid", "cpus", "received", "bytes", "errors", "cpu_time_user", "cpu_time_system"}
    for pid in ready["workers"]:  # the workers are gone too
        assert not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_server_duration_ends_the_run(tmp_path: Path) -> None:
    port = free_port("udp")
    with server(tmp_path, "udp", port, "--duration", "0.3") as (process, result):
        assert process.wait(10) == 0
    assert 0.25 <= json.loads(result.read_text())["duration"] < 2


def test_client_sigterm_stops_early_with_a_result(tmp_path: Path) -> None:
    port = free_port("udp")
    result = tmp_path / "client.json"
    process = subprocess.Popen(
        loadgen_argv("client", "--protocol", "udp", "--host", HOST, "--port", str(port), "--rate", "100",
                     "--duration", "60", "--workers", "2", "--result", str(result)),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    try:            # its workers forked: the stop handler is in place (a busy machine starts slowly)
        deadline = time.monotonic() + 30
        while len(children.read_text().split()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        assert stop_process(process) == 0
    document = json.loads(result.read_text())
    assert document["role"] == "client" and 0.1 < document["duration"] < 30
    assert len(document["workers"]) == 2


def test_refused_udp_is_counted_not_fatal(tmp_path: Path) -> None:
    client = run_client(tmp_path, "udp", free_port("udp"), "--rate", "500", "--duration", "0.3")
    assert client["errors"] > 0  # ICMP port unreachable -> ECONNREFUSED on the connected socket
    assert client["sent"] + client["errors"] >= 140


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_max_mode_outruns_paced_rates(tmp_path: Path, protocol: str) -> None:
    port = free_port(protocol)
    with server(tmp_path, protocol, port) as (process, result):
        client = run_client(tmp_path, protocol, port, "--max", "--duration", "0.3", "--workers", "2")
        time.sleep(0.1)
        assert stop_process(process) == 0
    assert client["mode"] == "max" and client["asked_rate"] is None
    assert client["achieved_rate"] > 10000
    received = json.loads(result.read_text())["received"]
    assert 0 < received <= client["sent"]
    if protocol == "tcp":
        assert received == client["sent"]  # a stream loses nothing


def test_max_mode_with_new_socket_per_message_opens_one_connection_per_message(tmp_path: Path) -> None:
    port = free_port("tcp")
    with server(tmp_path, "tcp", port) as (process, result):
        client = run_client(tmp_path, "tcp", port, "--max", "--new-socket-per-message", "--duration", "0.3")
        time.sleep(0.1)
        assert stop_process(process) == 0
    server_result = json.loads(result.read_text())
    assert client["flows"] is None and client["sent"] > 100
    assert server_result["connections"] == server_result["received"] == client["sent"]
