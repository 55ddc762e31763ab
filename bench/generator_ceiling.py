"""Benchmark: the load generator's ceiling on a lab host (a TCG guest on the default lab), in
msg/s, against the rate the blog's scenarios used to ask (2,000 msg/s) and against a baseline
sender measured in the same run.

Layer: side effects (SSH to a lab that is up). Standalone, from the repository:

    .venv/bin/python bench/generator_ceiling.py [-i inventory.yaml] [--seconds 5] [--rounds 2]

Each mode sends 64-byte UDP as fast as it can for --seconds from the inventory's loadgen host
to a labctl-loadgen server on its dut host (exactly what `labctl calibrate` does):
  baseline   the blog's golang-loadgen way in Python, what labctl-loadgen did before:
             socket, connect, send, close per message, W processes (bench/loadgen.py's sender)
  new-socket labctl-loadgen --new-socket-per-message (socket, sendto, close: a new source
             port, so a new flow, per message)
  pool       labctl-loadgen with 256 connected sockets used in turn (one send per message;
             as many flows as RSS needs, not one per message)
with W = 4 and 8 workers. Rounds alternate the modes, so a neighbour's load is shared out.
Prints msg/s per mode (median over rounds), its ratio to the baseline with the same workers,
and its ratio to 2,000 msg/s.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loadgen import NEW_SOCKET_SENDER  # noqa: E402
from labctl.execution.calibrate import measure_ceiling  # noqa: E402
from labctl.input.config import load_inventory  # noqa: E402
from labctl.input.model import Inventory, Load  # noqa: E402
from labctl.labs.providers import load_state  # noqa: E402
from labctl.plan.planner import LOADGEN_REMOTE_NAME, server_address, server_argv  # noqa: E402
from labctl.runner import connected, default_load  # noqa: E402
from labctl.shell import detached_command, stop_command, wait_file_command  # noqa: E402

BLOG_RATE = 2000
LOADGEN = Path(__file__).resolve().parent.parent / "labctl" / "loadgen.py"


def _mode_load(inventory: Inventory, workers: int, pool: bool) -> Load:
    data = default_load(inventory).model_dump(mode="json")
    data["client"].update(workers=workers, new_socket_per_message=not pool, flows=256 if pool else 4)
    return Load.model_validate(data)


def _baseline(transports: dict[str, Any], inventory: Inventory, load: Load, seconds: float) -> float:
    """The baseline sender, to a labctl-loadgen server on the DUT as for the other modes."""
    dut, lg = transports[load.server.host], transports[load.client.host]
    workdir = f"/tmp/labctl-bench-{uuid.uuid4().hex[:12]}"
    pid = ""
    try:
        dut.run(f"mkdir -m 0700 {workdir}")
        dut.put_file(LOADGEN, f"{workdir}/{LOADGEN_REMOTE_NAME}", 0o755)
        start = detached_command(server_argv(inventory, load.server, workdir), f"{workdir}/server.log")
        pid = dut.run(start).stdout.strip()
        dut.run(wait_file_command(f"{workdir}/server.ready", 30), timeout=40)
        sender = (f"python3 -c {shlex.quote(NEW_SOCKET_SENDER)} {server_address(inventory, load.server.host)} "
                  f"{load.server.port} {seconds:g} 64")
        workers = " ".join([f"{sender} &"] * load.client.workers)
        lines = lg.run(f"{workers} wait", timeout=seconds + 120).stdout.splitlines()
        return sum(json.loads(line)["sent"] for line in lines) / seconds
    finally:
        if pid.isdigit():
            dut.run(stop_command(pid, 15), check=False)
        dut.run(f"rm -rf {workdir}", check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory", type=Path, default=Path("inventory.yaml"))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    inventory = load_inventory(args.inventory).model
    state = load_state(args.inventory, inventory)
    rates: dict[tuple[str, int], list[float]] = {}
    with connected(state, list(inventory.hosts)) as transports:
        for round_number in range(args.rounds):
            for workers in (4, 8):
                for mode in ("baseline", "new-socket", "pool"):
                    load = _mode_load(inventory, workers, pool=mode == "pool")
                    if mode == "baseline":
                        rate = _baseline(transports, inventory, load, args.seconds)
                    else:
                        rate = measure_ceiling(inventory, load, transports, lambda m: None, args.seconds).rate
                    rates.setdefault((mode, workers), []).append(rate)
                    print(f"round {round_number + 1}: {mode:10s} {workers} workers {rate:9.0f} msg/s",
                          file=sys.stderr, flush=True)
    print(f"{'mode':10s} {'workers':>7s} {'msg/s':>9s} {'vs baseline':>11s} {'vs 2,000/s':>10s}")
    for (mode, workers), values in rates.items():
        median = statistics.median(values)
        base = statistics.median(rates[("baseline", workers)])
        print(f"{mode:10s} {workers:7d} {median:9.0f} {median / base:10.2f}x {median / BLOG_RATE:9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
