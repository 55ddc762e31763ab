"""Integration: the live view on the real netns lab (real sshd, real namespaces, real sampler).

`labctl watch --count 3` prints three tables of the DUT's CPUs and changes nothing on it;
`labctl run` in a pseudo-terminal draws the live table in place during the load window and
the run still passes; with stdout not a terminal no table appears. Traffic stays inside the
lab's namespaces; the lab is removed at the end, also on failure.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.labs import ROOT, Lab, netns_lab
from tests.helpers.namespaces import in_ns

pytestmark = pytest.mark.integration

# a light load: the live view is under test here, not the machine (shared, often busy)
SCENARIO = """\
tuning:
  dut:
    channels: {rx: 4, tx: 4}
    rps: {all: none}
load:
  server: {cpus: 1}
  client: {rate: 5000, duration: 4, cpus: 0}
expect:
  - {check: loss, max: 0.2}
"""
TITLE = re.compile(r"dut \| last \d+\.\d\d s")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from netns_lab(tmp_path, "lv")


def tuning_state(lab: Lab) -> dict[str, str]:
    """What a run may change on the DUT: RPS masks and flow counts, channels, IRQ affinity."""
    ns, queues = lab.ns("dut"), "/sys/class/net/eth1/queues"
    state = {"channels": in_ns(ns, "ethtool", "-l", "eth1")}
    for queue in sorted(q for q in in_ns(ns, "ls", queues).split() if q.startswith("rx-")):
        for name in ("rps_cpus", "rps_flow_cnt"):
            state[f"{queue}/{name}"] = in_ns(ns, "cat", f"{queues}/{queue}/{name}")
    state["default_smp_affinity"] = Path("/proc/irq/default_smp_affinity").read_text()
    return state


def test_watch_prints_count_tables_and_changes_nothing(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert lab.labctl("up") == 0
    before = tuning_state(lab)
    capsys.readouterr()
    started = time.monotonic()
    assert lab.labctl("watch", "--count", "3", "--interval", "0.5") == 0
    seconds = time.monotonic() - started
    out = capsys.readouterr().out
    tables = [t for t in out.split("\n\n") if t.strip()]
    assert len(tables) == 3 and len(TITLE.findall(out)) == 3, out
    cpus = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
    for table in tables:
        lines = table.split("\n")
        assert lines[1].split()[:3] == ["CPU", "NET_RX/s", "%sirq"]
        assert [int(line.split()[0].rstrip("*")) for line in lines[2:]] == cpus
        assert all(len(line.split()) == 7 for line in lines[2:])          # every column, a value
    assert 1.5 <= seconds < 30
    assert tuning_state(lab) == before
    assert "\x1b[" not in out                          # no terminal codes in a pipe


def pty_run(lab: Lab, *args: str, timeout: float = 240) -> tuple[int, str]:
    """labctl with stdout and stderr on a pseudo-terminal (120 x 40); its exit code and output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm", "PYTHONPATH": str(ROOT)}
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "-i", str(lab.inventory), "--runs-dir",
                             str(lab.runs), *args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=lab.dir, env=env, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:                   # EIO: the terminal's other side is closed
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def test_run_on_a_terminal_shows_the_live_table_and_passes(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert lab.labctl("up") == 0
    scenario = lab.dir / "live.yaml"
    scenario.write_text(SCENARIO)
    code, out = pty_run(lab, "run", str(scenario))
    assert code == 0, out[-3000:]
    views = TITLE.findall(out)
    assert len(views) >= 2, out[-3000:]             # a 4 s window refreshed every second
    assert "\x1b[" in out and "F\x1b[J" in out      # redrawn in place
    assert re.search(r"^\s+CPU\s+NET_RX/s\s+%sirq\s+IRQs/s\s+proc/s\s+drop/s\s+rps/s", out, re.MULTILINE)
    assert "live view stopped" not in out and "Traceback" not in out
    rows = [line for line in out.splitlines() if re.match(r"^\s+0[ *]\s", line)]
    assert any(float(line.split()[1].rstrip("kM")) > 0 for line in rows), rows   # NET_RX on CPU 0
    assert "run directory:" in out

    capsys.readouterr()                             # and without a terminal: no table
    assert lab.labctl("run", str(scenario)) == 0
    captured = capsys.readouterr()
    assert not TITLE.search(captured.out + captured.err) and "\x1b[" not in captured.out


def test_sweep_on_a_terminal_shows_the_live_table_of_each_repetition(lab: Lab) -> None:
    """`labctl sweep` in a terminal: each repetition's window has its live view (titled by the
    DUT), the progress lines print above it, and the sweep still completes."""
    assert lab.labctl("up") == 0
    scenario = lab.dir / "live-sweep.yaml"
    scenario.write_text(SCENARIO.replace("duration: 4", "duration: 3") + "matrix:\n  tuning.dut.rps.all: [none, 1]\n")
    code, out = pty_run(lab, "sweep", str(scenario))
    assert code == 0, out[-3000:]
    cells = [out.find(f"cell {n}/2") for n in (1, 2)]
    assert -1 not in cells and cells[0] < cells[1], out[-3000:]
    for start, end in ((cells[0], cells[1]), (cells[1], len(out))):
        assert TITLE.search(out, start, end), f"no live view in this repetition: {out[start:end][-2000:]}"
    assert "F\x1b[J" in out and "Traceback" not in out and "live view stopped" not in out
    assert "sweep directory:" in out
