"""The live view: the pure renderer at every screen size, the rows it shows (from real captures,
through the series' own derivation), the tail reader of a growing sampler file (its records
written by the real agent, read in pieces through a fake transport), `watch`'s loop, the
run's window hook failing without failing anything, and `labctl watch`'s bad input. The real
thing runs on the netns lab (tests/integration/test_live_view.py)."""

from __future__ import annotations

import io
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from labctl import cli, runner
from labctl.analysis.live import CpuRow, HostView, LiveHost, cpu_rows
from labctl.errors import Terminated, TransportError
from labctl.execution.liveview import (
    Followed,
    LiveWindow,
    live_host,
    proc_reader,
    refresh,
    sampler_reader,
    watch,
)
from labctl.host.probes import ProbeOutputError
from labctl.host.samples import SampleTail, parse_sample_stream, tail_command, watch_script
from labctl.host.sections import MARKER
from labctl.reports.live import number, render_host, render_live
from labctl.terminal import PipeLive, TerminalLive, is_terminal
from labctl.transport.base import CommandResult
from tests.helpers import NETNS_INVENTORY, fixture
from tests.helpers.fakes import FakeTransport, Res
from tests.helpers.plans import guest_facts
from tests.helpers.series import sample_file

PAIR = "debian12-guest-8cpu.c_pinned"
FILES = {"interrupts": "interrupts/{}.{}.txt", "softirqs": "softirqs/{}.{}.txt",
         "softnet_stat": "softnet_stat/debian12-guest-8cpu-13col.c_pinned.{1}.txt",
         "stat": "stat/{}.{}.txt"}


def capture(when: str) -> dict[str, str]:
    """The guest's four /proc files before or after a run (the c_pinned capture)."""
    return {name: fixture(path.format(PAIR, when)) for name, path in FILES.items()}


# ------------------------------------------------------------------------- the renderer

def rows(n: int, isolated: set[int] | None = None, missing: bool = False) -> tuple[CpuRow, ...]:
    isolated = isolated or set()
    return tuple(CpuRow(c, c in isolated, irqs=None if missing else 10.0 * c,
                        net_rx=None if missing and c % 2 else 1000.0 * c + 1, processed=2.5 * c,
                        received_rps=0.0, dropped=None, softirq_pct=None if missing else c % 100)
                 for c in range(n))


@pytest.mark.parametrize("width", [20, 21, 25, 33, 40, 59, 60, 79, 80, 120, 159, 200])
@pytest.mark.parametrize("cpus", [2, 8, 64, 256])
@pytest.mark.parametrize("height", [3, 10, 24, 60, 300])
def test_the_table_always_fits_the_screen(width: int, cpus: int, height: int) -> None:
    views = [HostView("dut", rows(cpus, {1}), 1.0), HostView("loadgen", rows(2, missing=True), 1.0)]
    lines = render_live(views, width, height).split("\n")
    assert len(lines) <= height and all(len(line) <= width for line in lines)
    assert lines[0].startswith("dut")
    hidden = sum(int(m.group(1)) for m in re.finditer(r"\+(\d+) (?:quieter )?CPUs", "\n".join(lines)))
    if height >= cpus + 2 + 4:              # room for every CPU of both hosts
        assert hidden == 0 and set(range(cpus)) <= set(cpus_shown(dut_lines(lines)))
    elif height >= 5:                       # the busiest shown, the others counted
        assert len(set(cpus_shown(dut_lines(lines)))) + hidden >= cpus


def dut_lines(lines: list[str]) -> list[str]:
    return lines[:next((i for i, line in enumerate(lines) if line.startswith("loadgen")), len(lines))]


def cpus_shown(lines: list[str]) -> list[int]:
    """The CPU numbers in the tables' CPU cells (under each "CPU" of a heading)."""
    found: list[int] = []
    starts: list[int] = []
    for line in lines:
        if line.lstrip().startswith("CPU"):
            starts = [m.start() - 2 for m in re.finditer("CPU", line)]
        elif starts and not line.startswith(("dut", "loadgen", "  ...")):
            found += [int(line[i:i + 4]) for i in starts if line[i:i + 4].strip()]
    return found


def test_columns_drop_out_least_telling_first() -> None:
    view = HostView("dut", rows(4), 1.0)
    headings = [render_host(view, width, 20)[1].split() for width in (14, 20, 40, 59, 200)]
    assert headings == [["CPU", "NET_RX/s"], ["CPU", "NET_RX/s"],
                        ["CPU", "NET_RX/s", "%sirq", "IRQs/s"],
                        ["CPU", "NET_RX/s", "%sirq", "IRQs/s", "proc/s", "drop/s", "rps/s"],
                        ["CPU", "NET_RX/s", "%sirq", "IRQs/s", "proc/s", "drop/s", "rps/s"]]
    assert render_host(view, 5, 20)[1] == "  CPU"          # narrower than one column: CPUs only


def test_isolated_cpus_are_marked_and_missing_values_are_dashes() -> None:
    text = render_live([HostView("dut", rows(4, {2, 3}, missing=True), 0.5)], 80, 20)
    lines = text.split("\n")
    assert lines[0] == "dut | last 0.50 s | * isolated"
    assert lines[2].split() == ["0", "1.0", "-", "-", "0", "-", "0"]
    assert lines[3].split() == ["1", "-", "-", "-", "2.5", "-", "0"]
    assert lines[4].startswith("   2*") and lines[5].startswith("   3*")
    assert "*" not in lines[2] + lines[3]


def test_too_many_cpus_shows_the_busiest_in_cpu_order() -> None:
    busy = tuple(CpuRow(c, False, net_rx=float(1000 if c in (7, 200, 3) else 0)) for c in range(256))
    lines = render_host(HostView("dut", busy, 1.0), 60, 6)
    assert [line.split()[0] for line in lines[2:5]] == ["3", "7", "200"]
    assert lines[5] == "  ... +253 quieter CPUs not shown"


def test_a_wide_screen_puts_cpus_side_by_side() -> None:
    lines = render_host(HostView("dut", rows(64), 1.0), 200, 30)
    assert len(lines) == 2 + 22 and lines[1].count("CPU") == 3 and len(lines) <= 30


def test_waiting_and_nothing_to_show() -> None:
    assert render_live([], 80, 24) == ""
    assert render_live([HostView("dut", (), note="waiting for samples")], 80, 24).split("\n")[0] == \
        "dut | waiting for samples"
    assert render_live([HostView("dut", rows(8), 1.0)], 1, 1) == "d"


@pytest.mark.parametrize(("value", "text"), [(None, "-"), (0.0, "0"), (0.42, "0.4"), (9.94, "9.9"),
                                             (812.0, "812"), (12345.0, "12.3k"), (123456.0, "123k"),
                                             (4.56e6, "4.6M"), (2e9, "2.0G")])
def test_numbers_are_short(value: float | None, text: str) -> None:
    assert number(value) == text


# ------------------------------------------------------------------------- the rows

def test_rows_from_real_captures_through_the_series_derivation(tmp_path: Path) -> None:
    data = sample_file(tmp_path, [capture("before"), capture("after")], end=False)
    live = live_host("dut", guest_facts())
    live.update(list(parse_sample_stream(data).samples))
    view = live.view()
    assert [r.cpu for r in view.rows] == list(range(8)) and view.note == ""
    assert [r.cpu for r in view.rows if r.isolated] == [4, 5, 6, 7]
    assert all(r.irqs is not None and r.net_rx is not None and r.softirq_pct is not None for r in view.rows)
    assert sum(r.irqs or 0 for r in view.rows) > 0 and sum(r.net_rx or 0 for r in view.rows) > 0


def test_cpu_rows_sum_the_queues_and_fill_quiet_cpus() -> None:
    values = {("irqs_per_s", 0, "rx-0"): 5.0, ("irqs_per_s", 0, "rx-1"): 2.0,
              ("softirqs_per_s.NET_RX", 1, None): 9.0, ("softnet_per_s.dropped", 1, None): 1.0,
              ("nic_per_s.packets", None, "rx-0"): 99.0}
    got = cpu_rows(values, [0, 1, 2], [2])
    assert got == [CpuRow(0, False, irqs=7.0), CpuRow(1, False, irqs=0.0, net_rx=9.0, dropped=1.0),
                   CpuRow(2, True, irqs=0.0)]


def test_a_host_waits_for_two_samples_then_shows_the_time_between_refreshes(tmp_path: Path) -> None:
    samples = list(parse_sample_stream(sample_file(
        tmp_path, [capture("before"), capture("after"), capture("after")], end=False)).samples)
    live = LiveHost("dut", live_host("dut", guest_facts()).snapshot, guest_facts().to_json()["nic"], range(8), [4])
    assert live.view().note == "waiting for samples"
    live.update(samples[:1])
    assert live.view().note == "waiting for samples"
    live.update(samples[1:])                       # two at once: the newest against the last seen
    assert live.previous is not None and live.last is not None
    assert live.last.mono == samples[2].mono and live.previous.mono == samples[0].mono
    live.update([])                                # nothing new: the same view
    assert live.view().seconds == round(samples[2].mono - samples[0].mono, 3)


def test_a_part_that_does_not_parse_is_a_note_not_a_failure(tmp_path: Path) -> None:
    bad = {**capture("after"), "softnet_stat": "not hex\n"}
    samples = list(parse_sample_stream(sample_file(tmp_path, [capture("before"), bad], end=False)).samples)
    live = live_host("dut", guest_facts())
    live.update(samples)
    view = live.view()
    assert "softnet_stat" in view.note and all(r.processed is None for r in view.rows)
    assert any(r.net_rx for r in view.rows)


# ------------------------------------------------------------------------- the tail reader

def test_a_tail_fed_in_any_pieces_yields_every_sample_once(tmp_path: Path) -> None:
    data = sample_file(tmp_path, [{"stat": f"cpu0 {i} 0 0 0\n", "x": "é" * i} for i in range(4)], end=True)
    whole = parse_sample_stream(data).samples
    for size in (1, 7, 100, len(data)):
        tail = SampleTail()
        got = [s for i in range(0, len(data), size) for s in tail.feed(data[i:i + size])]
        assert got == list(whole) and tail.offset == len(data) and tail.ended and tail.interval == 1.0


def test_a_tail_keeps_a_partial_record_for_the_next_read(tmp_path: Path) -> None:
    data = sample_file(tmp_path, [{"stat": f"cpu0 {i} 0 0 0\n"} for i in range(3)], end=False)
    cut = data.rindex(b'{"kind":"sample","seq":2') + 10
    tail = SampleTail()
    assert [s.seq for s in tail.feed(data[:cut])] == [0, 1]
    assert [s.seq for s in tail.feed(data[cut:])] == [2]


def test_a_tail_of_something_else_is_refused() -> None:
    with pytest.raises(ProbeOutputError, match="not a labctl sample file"):
        SampleTail().feed(b'{"kind":"other"}\n')


class GrowingFile(FakeTransport):
    """A host whose sampler file grows (in tmp_path): each command runs in a local `sh`, so the
    reader's real command (tail, wc, base64) reads the real file."""

    def __init__(self, path: Path):
        super().__init__("dut")
        self.path = path
        path.write_bytes(b"")

    def grow(self, data: bytes) -> None:
        with self.path.open("ab") as out:
            out.write(data)

    def respond(self, command: str) -> CommandResult:
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
        return Res(done.stdout, done.stderr, done.returncode)


def test_the_reader_reads_only_new_bytes_and_keeps_partial_records(tmp_path: Path) -> None:
    data = sample_file(tmp_path, [{"stat": f"cpu0 {i} 0 0 0\n"} for i in range(3)], end=False)
    host = GrowingFile(tmp_path / "the samples.raw")
    read = sampler_reader(host, str(host.path))
    assert read() == []                                    # an empty file so far
    cut = data.rindex(b'{"kind":"sample","seq":1') + 5
    host.grow(data[:cut])
    assert [s.seq for s in read()] == [0]
    host.grow(data[cut:])
    assert [s.seq for s in read()] == [1, 2] and read() == []
    starts = [int(re.search(r"o=(\d+)", c).group(1)) for c in host.commands()]  # type: ignore[union-attr]
    assert starts == [0, 0, cut, len(data)]
    assert shlex.quote(str(host.path)) in host.commands()[0]


def test_the_reader_skips_to_the_newest_records_when_many_came(tmp_path: Path) -> None:
    big = "x" * 100_000
    data = sample_file(tmp_path, [{"stat": f"cpu0 {i} 0 0 0\n{big}"} for i in range(12)], end=False)
    host = GrowingFile(tmp_path / "samples.raw")
    tail = SampleTail()
    read = sampler_reader(host, str(host.path), tail)
    first = data.index(b'{"kind":"sample","seq":1')
    host.grow(data[:first])
    assert [s.seq for s in read()] == [0]
    host.grow(data[first:])                    # 11 records of 100 kB at once: only the last ~3 read
    got = [s.seq for s in read()]
    assert got[-1] == 11 and 2 <= len(got) <= 3 and got == list(range(12 - len(got), 12))
    assert tail.offset == len(data) and read() == []


def test_a_tail_fed_from_further_on_resumes_at_the_next_record(tmp_path: Path) -> None:
    data = sample_file(tmp_path, [{"stat": f"cpu0 {i} 0 0 0\n"} for i in range(5)], end=True)
    second = data.index(b'{"kind":"sample","seq":1')
    tail = SampleTail()
    assert [s.seq for s in tail.feed(data[:second])] == [0]
    skip = data.index(b'{"kind":"sample","seq":3') - 7           # inside record 2
    assert [s.seq for s in tail.feed_from(skip, data[skip:])] == [3, 4] and tail.ended
    again = SampleTail()
    assert [s.seq for s in again.feed(data[:second + 3])] == [0]
    assert [s.seq for s in again.feed_from(second, data[second:])] == [1, 2, 3, 4]   # overlap: no skip


def test_a_read_that_fails_is_a_host_error() -> None:
    host = FakeTransport("dut", {tail_command("/f", 0): Res("0\n", "tail: cannot open", 1)})
    with pytest.raises(Exception, match="cannot open"):
        sampler_reader(host, "/f")()


# ------------------------------------------------------------------------- watch

class ProcHost(FakeTransport):
    """A host whose /proc moves from the capture's before to its after, then stays."""

    def __init__(self) -> None:
        super().__init__("dut")
        self.reads = 0

    def respond_script(self, script: str) -> CommandResult:
        assert script == watch_script()
        texts = capture("before" if self.reads == 0 else "after")
        self.reads += 1
        return Res("".join(f"{MARKER} begin {n}\n{t}\n{MARKER} end {n} 0\n" for n, t in texts.items()))


def test_watch_shows_count_views_and_writes_nothing() -> None:
    host, shown = ProcHost(), []
    clock = iter(float(i) for i in range(100))
    followed = [Followed(live_host("dut", guest_facts()), proc_reader(host, clock=lambda: next(clock)))]
    assert watch(followed, 0.1, shown.append, count=3, sleep=lambda s: None) == 3
    assert len(shown) == 3 and host.reads == 4
    assert all(kind == "run_script" for kind, _ in host.calls)
    first = shown[0][0]
    assert first.seconds == 2.0 and sum(r.net_rx or 0 for r in first.rows) > 0
    assert all(r.net_rx == 0 for r in shown[1][0].rows)            # /proc did not move since
    assert set(re.findall(r"cat (\S+)", watch_script())) == {
        "/proc/interrupts", "/proc/softirqs", "/proc/net/softnet_stat", "/proc/stat"}
    assert ">" not in watch_script().replace("2>&1", "").replace("</dev/null", "")


# ------------------------------------------------------------------------- the run's window

class Screen:
    def __init__(self) -> None:
        self.views: list[list[HostView]] = []
        self.stops = 0

    def show(self, views: list[HostView]) -> None:
        self.views.append(views)

    def stop(self) -> None:
        self.stops += 1


def _wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll the live window's thread (it works in the background) until `condition` holds."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_window_that_cannot_connect_says_so_once_and_ends() -> None:
    said, screen = [], Screen()

    def connect(hosts: list[str]) -> dict[str, FakeTransport]:
        raise TransportError("dut: connection refused")
    window = LiveWindow({"dut": "/f"}, {"dut": guest_facts()}, 0.01, connect, screen, said.append)
    window.opened()
    _wait_until(lambda: window.failed)
    window.closed()
    assert said == ["warning: the live view stopped (dut: connection refused); the run goes on"]
    assert screen.views == [] and screen.stops == 1 and window.failed


def test_a_window_follows_the_sampler_and_closes_its_own_transports(tmp_path: Path) -> None:
    data = sample_file(tmp_path, [capture("before"), capture("after")], end=False)
    host, screen, said = GrowingFile(tmp_path / "samples.raw"), Screen(), []
    host.grow(data)
    window = LiveWindow({"dut": str(host.path)}, {"dut": guest_facts()}, 0.01, lambda hosts: {"dut": host},
                        screen, said.append)
    window.opened()
    _wait_until(lambda: bool(screen.views))
    window.closed()
    assert said == [] and screen.views and host.closes == 1 and screen.stops == 1
    assert sum(r.net_rx or 0 for r in screen.views[0][0].rows) > 0


def test_refresh_reads_every_host() -> None:
    host = ProcHost()
    views = refresh([Followed(live_host("dut", guest_facts()), proc_reader(host))])
    assert views[0].note == "waiting for samples" and host.reads == 1


# ------------------------------------------------------------------------- labctl watch: bad input

def test_watch_of_an_unknown_host_names_the_lab_hosts(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "inventory.yaml").write_text(NETNS_INVENTORY)
    assert cli.main(["-i", str(tmp_path / "inventory.yaml"), "watch", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "no host 'nosuch' in lab t" in err and "dut, loadgen" in err


@pytest.mark.parametrize(("args", "message"), [(["--interval", "0.05"], "at least 0.1 s, got 0.05"),
                                               (["--interval", "nan"], "at least 0.1 s"),
                                               (["--count", "0"], "at least 1, got 0")])
def test_watch_refuses_bad_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                   message: str) -> None:
    (tmp_path / "inventory.yaml").write_text(NETNS_INVENTORY)
    assert cli.main(["-i", str(tmp_path / "inventory.yaml"), "watch", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("stop", "code"), [(KeyboardInterrupt(), 0), (Terminated(), 143)])
def test_ctrl_c_ends_watch_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str], stop: BaseException, code: int) -> None:
    def interrupted(*args: object) -> int:
        raise stop
    monkeypatch.setattr(runner, "lab_watch", interrupted)
    (tmp_path / "inventory.yaml").write_text(NETNS_INVENTORY)
    assert cli.main(["-i", str(tmp_path / "inventory.yaml"), "watch"]) == code
    assert "Traceback" not in capsys.readouterr().err


def test_a_window_closed_during_a_slow_read_returns_at_once_and_draws_no_more(tmp_path: Path) -> None:
    data = sample_file(tmp_path, [capture("before"), capture("after")], end=False)
    screen, said = Screen(), []
    slow = threading.Event()

    class SlowHost(GrowingFile):
        def respond(self, command: str) -> CommandResult:
            slow.set()
            time.sleep(3)                     # a host that hangs while the window ends
            return super().respond(command)
    hung = SlowHost(tmp_path / "samples.raw")
    hung.grow(data)
    window = LiveWindow({"dut": str(hung.path)}, {"dut": guest_facts()}, 0.01, lambda hosts: {"dut": hung},
                        screen, said.append)
    window.opened()
    assert slow.wait(10)
    started = time.monotonic()
    window.closed()
    assert time.monotonic() - started < 2.5 and screen.stops == 1
    time.sleep(3.5)                           # the read ends: nothing drawn, nothing said
    assert screen.views == [] and said == [] and hung.closes == 1


# ------------------------------------------------------------------------- the terminal

class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_terminal_redraws_in_place_and_prints_progress_above(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "61")
    monkeypatch.setenv("LINES", "12")
    out, messages = Tty(), []
    live = TerminalLive(out)
    progress = live.wrap(lambda m: (messages.append(m), out.write(f"<{m}>\n")))
    view = [HostView("dut", rows(4, {3}), 1.0)]
    live.show(view)
    first = out.getvalue()
    assert first == render_live(view, 60, 10) + "\n" and "\x1b" not in first
    live.show(view)
    assert out.getvalue() == first + "\x1b[6F\x1b[J" + first               # 6 lines up, cleared
    progress("wait for the client: 2 s")
    assert out.getvalue().endswith("\x1b[6F\x1b[J<wait for the client: 2 s>\n" + first)
    live.stop()                                                           # the last table stays
    progress("stop the sampler")
    assert out.getvalue().endswith(first + "<stop the sampler>\n") and messages == [
        "wait for the client: 2 s", "stop the sampler"]


def test_a_tiny_terminal_gets_a_table_that_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "12")
    monkeypatch.setenv("LINES", "4")
    out = Tty()
    TerminalLive(out).show([HostView("dut", rows(256), 1.0)])
    lines = out.getvalue().rstrip("\n").split("\n")
    assert len(lines) <= 2 and all(len(line) <= 11 for line in lines)


def test_pipes_and_dumb_terminals_get_no_redraw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    assert is_terminal(Tty()) and not is_terminal(io.StringIO())
    monkeypatch.setenv("TERM", "dumb")
    assert not is_terminal(Tty())
    out = io.StringIO()
    pipe = PipeLive(out)
    pipe.show([HostView("dut", rows(2), 1.0)])
    pipe.show([HostView("dut", rows(2), 1.0)])
    assert out.getvalue().count("dut | last 1.00 s") == 2 and "\x1b" not in out.getvalue()
    assert out.getvalue().count("\n\n") == 2
