"""Benchmark: labctl-loadgen --max against a golang-loadgen-style sender and iperf3.

Layer: side effects (root: network namespaces, veth, processes). Standalone:

    sudo python3 bench/loadgen.py [--seconds 5] [--workers N] [--flows F]

Builds two namespaces (lg, dut) joined by a veth pair with 4 RX/TX queues and addresses
from 198.18.0.0/24 that exist only inside them, then sends 64-byte UDP for --seconds each:
  (a) labctl-loadgen client --max, one worker per CPU of the host;
  (b) a golang-loadgen-style sender: a new socket (socket, connect, send, close) per message,
      as fast as one Python process can (the baseline);
  (c) iperf3 -u -l 64 -b 0 (iperf3 server in the dut namespace).
Every method is measured the same way, at the receiving side: the dut veth's rx_packets
counter over the sender's own duration (the loadgen server's count is shown as well).
Prints a table with pkt/s and the ratios a/b (goal >= 3) and a/c (goal >= 1).
Namespaces and processes are removed by name/PID at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LOADGEN = Path(__file__).resolve().parent.parent / "labctl" / "loadgen.py"
LG_ADDRESS, DUT_ADDRESS = "198.18.0.1", "198.18.0.2"
LOADGEN_PORT, IPERF_PORT = 9000, 5201
PAYLOAD = 64
QUEUES = 4

NEW_SOCKET_SENDER = r"""
import json, socket, sys, time
host, port, seconds, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
payload, address = b"m" * size, (host, port)
sent = errors = 0
start = time.monotonic()
end = start + seconds
while time.monotonic() < end:
    for _ in range(16):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.connect(address)
            sock.send(payload)
            sent += 1
        except OSError:
            errors += 1
        finally:
            sock.close()
print(json.dumps({"sent": sent, "errors": errors, "duration": time.monotonic() - start}))
"""


@dataclass
class Lab:
    """Two namespaces joined by a veth pair; remembers the processes it started."""

    lg: str
    dut: str
    lg_if: str
    dut_if: str
    workdir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    def run(self, namespace: str, argv: list[str], timeout: float = 60) -> str:
        """Run argv inside `namespace`; return stdout (raise on failure)."""
        done = subprocess.run(
            ["ip", "netns", "exec", namespace, *argv], capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} in {namespace}: exit {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def start(self, namespace: str, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        """Start argv in the background inside `namespace`, output to a log file."""
        log = open(self.workdir / log_name, "w")
        process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, *argv], stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        log.close()
        self.processes.append(process)
        return process

    def rx_packets(self) -> int:
        return int(self.run(self.dut, ["cat", f"/sys/class/net/{self.dut_if}/statistics/rx_packets"]))


def sh(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")


def build_lab(lab: Lab) -> None:
    """Namespaces, 4-queue veth pair, addresses; each recorded as soon as it exists."""
    for namespace in (lab.lg, lab.dut):
        sh(["ip", "netns", "add", namespace])
        lab.namespaces.append(namespace)
    queues = ["numtxqueues", str(QUEUES), "numrxqueues", str(QUEUES)]
    sh(["ip", "link", "add", lab.lg_if, *queues, "netns", lab.lg, "type", "veth",
        "peer", "name", lab.dut_if, *queues, "netns", lab.dut])
    for namespace, interface, address in ((lab.lg, lab.lg_if, LG_ADDRESS), (lab.dut, lab.dut_if, DUT_ADDRESS)):
        sh(["ip", "-n", namespace, "link", "set", "lo", "up"])
        sh(["ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", interface])
        sh(["ip", "-n", namespace, "link", "set", interface, "up"])


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """Stop one process we started, by its PID; SIGKILL if it does not go."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tear_down(lab: Lab) -> None:
    """Stop every process we started, delete our namespaces (the veth goes with them)."""
    for process in lab.processes:
        stop_process(process)
    for namespace in reversed(lab.namespaces):
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Measurement:
    name: str
    rx_packets: int
    seconds: float
    sender_count: int
    receiver_count: int | None

    @property
    def rate(self) -> float:
        return self.rx_packets / self.seconds if self.seconds > 0 else 0.0


def start_loadgen_server(lab: Lab, tag: str) -> tuple[subprocess.Popen[bytes], Path]:
    """The labctl-loadgen UDP server in dut; returns it and its result path once ready."""
    ready, result = lab.workdir / f"{tag}.ready", lab.workdir / f"{tag}.server.json"
    server = lab.start(lab.dut, [sys.executable, str(LOADGEN), "server", "--protocol", "udp",
                                 "--bind", DUT_ADDRESS, "--port", str(LOADGEN_PORT), "--workers", "1",
                                 "--result", str(result), "--ready-file", str(ready)], f"{tag}.server.log")
    wait_for(ready.exists, "the loadgen server's ready file")
    return server, result


def with_loadgen_server(lab: Lab, tag: str, name: str, send: Callable[[], tuple[float, int]]) -> Measurement:
    """Run `send` (-> seconds, sent) against a fresh loadgen server; count at the receiver."""
    server, result = start_loadgen_server(lab, tag)
    before = lab.rx_packets()
    seconds, sent = send()
    time.sleep(0.2)
    after = lab.rx_packets()
    stop_process(server)
    received = json.loads(result.read_text())["received"]
    return Measurement(name, after - before, seconds, sent, received)


def loadgen_max(lab: Lab, seconds: float, workers: int, flows: int) -> Measurement:
    """(a) labctl-loadgen client --max."""
    result = lab.workdir / "a.client.json"

    def send() -> tuple[float, int]:
        lab.run(lab.lg, [sys.executable, str(LOADGEN), "client", "--protocol", "udp", "--host", DUT_ADDRESS,
                         "--port", str(LOADGEN_PORT), "--max", "--duration", str(seconds), "--payload",
                         str(PAYLOAD), "--workers", str(workers), "--flows", str(flows), "--result", str(result)])
        document = json.loads(result.read_text())
        return document["duration"], document["sent"]

    return with_loadgen_server(lab, "a", f"labctl-loadgen --max ({workers} workers, {flows} flows)", send)


def new_socket_baseline(lab: Lab, seconds: float) -> Measurement:
    """(b) golang-loadgen style: a new socket per message, one Python process."""

    def send() -> tuple[float, int]:
        output = lab.run(lab.lg, [sys.executable, "-c", NEW_SOCKET_SENDER, DUT_ADDRESS, str(LOADGEN_PORT),
                                  str(seconds), str(PAYLOAD)])
        document = json.loads(output)
        return document["duration"], document["sent"]

    return with_loadgen_server(lab, "b", "new socket per message (baseline)", send)


def iperf3_udp(lab: Lab, seconds: float) -> Measurement:
    """(c) iperf3 -u -l 64 -b 0, server in dut."""
    server = lab.start(lab.dut, ["iperf3", "-s", "-1", "-B", DUT_ADDRESS, "-p", str(IPERF_PORT)], "iperf3.server.log")
    wait_for(lambda: bool(lab.run(lab.dut, ["ss", "-Hltn", f"sport = :{IPERF_PORT}"]).strip()), "iperf3 -s")
    before = lab.rx_packets()
    output = lab.run(lab.lg, ["iperf3", "-c", DUT_ADDRESS, "-p", str(IPERF_PORT), "-u", "-l", str(PAYLOAD),
                              "-b", "0", "-t", str(seconds), "-J"], timeout=seconds + 30)
    time.sleep(0.2)
    after = lab.rx_packets()
    stop_process(server)
    summary = json.loads(output)["end"]["sum"]
    return Measurement("iperf3 -u -l 64 -b 0", after - before, summary["seconds"], summary["packets"], None)


def print_table(rows: list[Measurement], seconds: float) -> None:
    loadgen, baseline, iperf = rows
    print(f"\n64-byte UDP over a {QUEUES}-queue veth between namespaces, {seconds:g} s each, "
          f"{os.cpu_count()} CPUs; counted at the receiver (dut veth rx_packets)\n")
    print(f"{'method':<44} {'rx pkt/s':>10} {'sender sent':>12} {'server recv':>12} {'seconds':>8}")
    for row in rows:
        received = "-" if row.receiver_count is None else str(row.receiver_count)
        print(f"{row.name:<44} {row.rate:>10,.0f} {row.sender_count:>12} {received:>12} {row.seconds:>8.2f}")
    versus_baseline = loadgen.rate / baseline.rate if baseline.rate else float("inf")
    versus_iperf = loadgen.rate / iperf.rate if iperf.rate else float("inf")
    print(f"\nlabctl-loadgen / new-socket baseline: {versus_baseline:5.2f}x  (goal >= 3x) "
          f"{'OK' if versus_baseline >= 3 else 'MISSED'}")
    print(f"labctl-loadgen / iperf3:              {versus_iperf:5.2f}x  (goal >= 1x) "
          f"{'OK' if versus_iperf >= 1 else 'MISSED'}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="default: CPUs of the host")
    parser.add_argument("--flows", type=int, help="default: --workers")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if os.geteuid() != 0:
        print("bench/loadgen.py needs root (network namespaces)", file=sys.stderr)
        return 2
    if shutil.which("iperf3") is None:
        print("bench/loadgen.py needs iperf3 (apt-get install iperf3)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    tag = f"lgb{os.getpid()}"
    lab = Lab(f"{tag}-lg", f"{tag}-dut", f"{tag}a", f"{tag}b", Path(tempfile.mkdtemp(prefix="lgbench-")))
    try:
        build_lab(lab)
        rows = [
            loadgen_max(lab, args.seconds, args.workers, args.flows or args.workers),
            new_socket_baseline(lab, args.seconds),
            iperf3_udp(lab, args.seconds),
        ]
        print_table(rows, args.seconds)
    finally:
        tear_down(lab)
        shutil.rmtree(lab.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
