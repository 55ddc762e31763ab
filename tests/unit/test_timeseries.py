"""The per-second series: the fast /proc/interrupts parser against the old one, the sampler's
file (written by the real agent, cut at every byte of its last record), rates derived from
hand-made samples with hand-computed values, the plan's sampler steps, validation, the
report's section and `labctl export`'s table."""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labctl import cli
from labctl.agent import sampler
from labctl.analysis.series import busy_cpus, derive_series
from labctl.errors import ValidationError
from labctl.host.probes import ProbeOutputError, parse_interrupts
from labctl.host.samples import kept_rows_command, parse_sample_stream, sampler_sources, watch_script
from labctl.host.snapshots import SnapshotHost
from labctl.input.config import load_inventory, load_scenario
from labctl.plan.actions import Fetch, Start, Stop, Upload, WaitFile
from labctl.plan.series import nic_interrupt_rows, series_interval
from labctl.reports.export import COLUMNS, ExportError, export_rows, parquet_table, write_csv
from labctl.reports.series import render_series_markdown
from labctl.runfiles.series import HostSeries, SeriesFile, SeriesLine
from tests.helpers import NETNS_INVENTORY, fixture
from tests.helpers.plans import LOAD, guest_facts, plan_for, scenario, veth_facts
from tests.helpers.series import sample_file

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "interrupts"


def _bench() -> ModuleType:
    """bench/parse_interrupts.py: the parser as it was (the baseline) and the synthetic file."""
    spec = importlib.util.spec_from_file_location("bench_parse_interrupts", ROOT / "bench" / "parse_interrupts.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench()


def _old_or_error(text: str) -> object:
    try:
        return BENCH.old_parse_interrupts(text)
    except ProbeOutputError as exc:
        return ("error", str(exc))


def _new_or_error(text: str) -> object:
    try:
        return parse_interrupts(text)
    except ProbeOutputError as exc:
        return ("error", str(exc))


# ------------------------------------------------------------------------- the fast parser

@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_fast_parser_equals_the_old_one_on_every_fixture(name: str) -> None:
    text = fixture(f"interrupts/{name}")
    assert parse_interrupts(text) == BENCH.old_parse_interrupts(text)


def test_fast_parser_equals_the_old_one_on_the_synthetic_big_file() -> None:
    for dense in (False, True):
        text = BENCH.synthetic_interrupts(256, 300, dense=dense)
        table = parse_interrupts(text)
        assert table == BENCH.old_parse_interrupts(text)
        assert len(table.cpus) == 256 and table.by_irq(0) is not None


def test_fast_parser_on_the_1152_cpu_capture() -> None:
    text = bz2.decompress((FIXTURES / "pcp-interrupts-1152cpu-x86_64.txt.bz2").read_bytes()).decode()
    assert parse_interrupts(text) == BENCH.old_parse_interrupts(text)


@pytest.mark.parametrize("column", ["   12    34", "         00", "          5", "     0    0"])
def test_fast_parser_on_odd_columns_of_a_wide_sparse_row(column: str) -> None:
    """64 CPUs, all zero but one column: the fast path reads only that column."""
    header = "       " + "".join(f"CPU{c:<8d}" for c in range(64))
    row = " 40:" + " " * 10 + "0" + column + (" " * 10 + "0") * 62 + "  PCI-MSI 1-edge  eth0-TxRx-0"
    text = f"{header}\n{row}\n"
    assert _new_or_error(text) == _old_or_error(text)


COUNT = st.integers(0, 2**32 - 1)
SEPARATOR = st.sampled_from([" ", "  ", "\t", " \t"])


@st.composite
def interrupts_text(draw: st.DrawFn) -> str:
    """Rows in the kernel's layout, and rows that are not: other spacing, tabs, short rows,
    extra counts, digits glued to words, non-ASCII names, ERR/MIS, blank lines."""
    cpus = draw(st.integers(1, 6))
    lines = ["           " + "".join(f"CPU{c:<8d}" for c in range(cpus))]
    for number in range(draw(st.integers(0, 8))):
        label = draw(st.sampled_from([str(number), "NMI", "LOC", "ERR", "MIS", "IPI0", " 7"]))
        width = draw(st.sampled_from(["kernel", "kernel", "odd", "two-in-a-column", "padded-zero"]))
        counts = draw(st.lists(COUNT, min_size=max(0, cpus - 1), max_size=cpus + 1))
        if width == "kernel":
            columns = "".join(f" {c:10d}" for c in counts)
        elif width == "two-in-a-column":        # 11 characters wide, but two numbers
            columns = "".join(f" {c % 1000:4d} {c % 77:5d}" if i == 0 else f" {c:10d}"
                              for i, c in enumerate(counts))
        elif width == "padded-zero":            # a zero the kernel never prints ("00")
            columns = "".join(f" {'00':>10}" if i == 0 else f" {c:10d}" for i, c in enumerate(counts))
        else:
            columns = "".join(draw(SEPARATOR) + str(c) for c in counts)
        tail = draw(st.sampled_from(["", "  IR-PCI-MSI 49153-edge      virtio1-input.0",
                                     "  GICv3  27 Level     arch_timer", "   Local timer interrupts",
                                     "7abc name", "  PCI-MSI 5-edge  ethé-rx-0", "\t", "  "]))
        lines.append(f"{label}:{columns}{tail}")
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["", "   "])))
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None)
@given(interrupts_text())
def test_fast_parser_equals_the_old_one_on_odd_rows(text: str) -> None:
    assert _new_or_error(text) == _old_or_error(text)


# ------------------------------------------------------------------------- the sample file

def test_a_stream_reads_back_whole(tmp_path: Path) -> None:
    data = sample_file(tmp_path, [{"stat": "cpu0 1 2 3 4\n", "softirqs": "x"}, {"stat": "b\n", "softirqs": "é"}])
    stream = parse_sample_stream(data)
    assert stream.complete and not stream.truncated and stream.sources == ("stat", "softirqs")
    assert [s.texts for s in stream.samples] == [{"stat": "cpu0 1 2 3 4\n", "softirqs": "x"},
                                                  {"stat": "b\n", "softirqs": "é"}]
    assert stream.samples[1].mono >= stream.samples[0].mono
    assert stream.end is not None and stream.end["reason"] == "signal" and stream.cpu_seconds is not None


def test_a_stream_cut_anywhere_keeps_every_whole_sample(tmp_path: Path) -> None:
    data = sample_file(tmp_path, [{"stat": f"cpu0 {i} 0 0 0\n" * 3} for i in range(3)], end=False)
    last = data.rindex(b'{"kind":"sample","seq":2')
    for cut in range(last, len(data)):
        stream = parse_sample_stream(data[:cut])
        assert len(stream.samples) == 2 and not stream.complete and stream.end is None
        assert stream.truncated == (cut > last)
    whole = parse_sample_stream(data)
    assert len(whole.samples) == 3 and not whole.truncated and not whole.complete
    assert whole.cpu_seconds is None


def test_a_stream_with_an_unknown_record_kind_and_a_missing_file(tmp_path: Path) -> None:
    data = sample_file(tmp_path, [{"stat": "a"}])
    extra = sampler.json_line({"kind": "readback", "parts": [["rps_cpus@rx-0", 2, 0]]}) + b"02\n"
    missing = sampler.Source("gone", path=str(tmp_path / "no-such-file"))
    data = data.replace(b'{"kind":"end"', extra + sampler.sample_record(1, [missing]) + b'{"kind":"end"')
    stream = parse_sample_stream(data)
    assert stream.complete and len(stream.samples) == 2
    assert stream.samples[1].texts == {"gone": ""} and stream.samples[1].status["gone"] == 2   # ENOENT


def test_not_a_sample_file() -> None:
    with pytest.raises(ProbeOutputError, match="not a labctl sample file"):
        parse_sample_stream(b"cpu0 1 2 3\n")


def _run_sampler(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    (tmp_path / "counter").write_text("1\n")
    return subprocess.Popen([sys.executable, str(ROOT / "labctl" / "agent" / "sampler.py"),
                             "--output", str(tmp_path / "out.raw"), "--file", f"counter={tmp_path / 'counter'}",
                             "--command", "echo=echo hello", *args])


def test_the_sampler_stops_at_its_deadline(tmp_path: Path) -> None:
    process = _run_sampler(tmp_path, "--interval", "0.1", "--deadline", "0.45")
    assert process.wait(timeout=10) == 0
    stream = parse_sample_stream((tmp_path / "out.raw").read_bytes())
    assert stream.complete and stream.end is not None and stream.end["reason"] == "deadline"
    assert 4 <= len(stream.samples) <= 7
    assert stream.samples[0].texts == {"counter": "1\n", "echo": "hello\n"}
    gaps = [b.mono - a.mono for a, b in zip(stream.samples, stream.samples[1:])]
    assert all(0.05 < gap < 0.2 for gap in gaps[:-1])


def test_the_sampler_takes_a_last_sample_on_sigterm(tmp_path: Path) -> None:
    process = _run_sampler(tmp_path, "--interval", "5", "--deadline", "60")
    deadline = time.monotonic() + 10
    out = tmp_path / "out.raw"
    while not (out.exists() and b'"seq":0' in out.read_bytes()):     # the first sample is written
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    stream = parse_sample_stream((tmp_path / "out.raw").read_bytes())
    assert stream.complete and stream.end is not None and stream.end["reason"] == "signal"
    assert len(stream.samples) == 2


def test_keep_leaves_the_header_and_the_nics_rows_of_a_real_capture() -> None:
    """igb's /proc/interrupts (the igb lab's capture): IRQ labels and the interface's name keep
    the header, the queue vectors and the link vector; nothing else, and nothing changed."""
    text = fixture("nics/igb/qemu10-guest-interrupts.txt").encode()
    _, labels, words = sampler.keep_arg("interrupts=25,26,data0")
    kept = sampler.kept_lines(text, labels, words)
    lines = kept.decode().splitlines()
    assert lines[0] == text.decode().splitlines()[0]
    assert all(line in text.decode().splitlines() for line in lines)
    names = [line.split()[-1] for line in lines[1:]]
    assert names and all(name.startswith("data0") for name in names) and "data0" in names
    assert len(kept) < len(text) / 2
    table, whole = parse_interrupts(kept.decode()), parse_interrupts(text.decode())
    assert {r.irq: r for r in table.rows} == {r.irq: r for r in whole.rows if r.name.startswith("data0")}
    assert sampler.kept_lines(b"", labels, words) == b""


def test_the_sampler_keeps_only_the_nics_rows_and_the_series_is_the_same(tmp_path: Path) -> None:
    """A sample file with `--keep interrupts=...` as the planner gives it, against the whole
    file: the same per-queue rates from a fraction of the bytes."""
    samples = [_texts((100, 10), (1000, 50), (200, 0, 0), (10, 10, 70, 10), 500),
               _texts((300, 10), (3000, 50), (600, 2, 40), (30, 30, 110, 30), 1500)]
    for texts in samples:               # a big host's other IRQs
        texts["interrupts"] += "".join(f"{n}: 1 2 PCI-MSI {n}-edge other{n}\n" for n in range(100, 400))
    whole_data = _with_times(sample_file(tmp_path, samples), [100.0, 102.0])
    whole = derive_series(parse_sample_stream(whole_data), guest_facts().to_json())
    rows = nic_interrupt_rows(guest_facts())
    assert rows[-2:] == ["eth1", "virtio1"] and "37" in rows
    argv = ["--output", str(tmp_path / "o"), "--deadline", "1", "--file", f"interrupts={tmp_path / 'interrupts'}",
            "--keep", "interrupts=" + ",".join(rows)]
    (source,) = sampler.parse_args(argv).sources
    data = _with_times(sample_file(tmp_path, samples, keep={"interrupts": source.keep}), [100.0, 102.0])
    kept = derive_series(parse_sample_stream(data), guest_facts().to_json())
    assert [(line.metric, line.cpu, line.queue, line.values) for line in kept.lines] == \
        [(line.metric, line.cpu, line.queue, line.values) for line in whole.lines]
    assert any(line.metric == "irqs_per_s" for line in kept.lines)
    assert len(data) < len(whole_data) / 3


def test_a_pci_nics_queue_irqs_are_in_the_series_named_by_its_driver(tmp_path: Path) -> None:
    """igb's vectors are `data0-rx-K`, not named after the PCI device: the series (and the live
    view, which reads samples the same way) finds them with the driver table, as the report
    does. Two samples of the igb lab's capture, the second with 500 more rx-1 IRQs on CPU 3
    and the sampler keeping only the NIC's rows as planned."""
    first = fixture("nics/igb/qemu10-guest-interrupts.txt")
    second = first.replace("  9642      11041 ", "  9642      11541 ")
    assert second != first
    facts = {"cpus_online": "0-7", "nic": {"interface": "data0", "driver": "igb", "device": "0000:00:03.0",
                                           "bus_info": "0000:00:03.0"}}
    _, labels, words = sampler.keep_arg("interrupts=" + ",".join([*map(str, range(24, 33)), "data0", "0000:00:03.0"]))
    data = _with_times(sample_file(tmp_path, [{"interrupts": first}, {"interrupts": second}],
                                   keep={"interrupts": (labels, words)}), [10.0, 12.0])
    series = derive_series(parse_sample_stream(data), facts)
    irq_lines = {(line.cpu, line.queue): line.values for line in series.lines if line.metric == "irqs_per_s"}
    assert irq_lines == {(3, "rx-1"): [250.0]}


@pytest.mark.parametrize(("capture", "keep"), [
    ("nics/igb/qemu10-guest-interrupts.txt", ["25", "26", "27", "28", "data0", "0000:00:03.0"]),
    ("interrupts/debian12-guest-8cpu.a_combined2.after.txt", ["37", "39", "eth1", "virtio1"]),
    ("nics/mlx5_core/jrife-100gbe-2ports-interrupts.excerpt.txt", ["99", "0000:01:00.1"]),
])
def test_labctl_watch_keeps_with_awk_what_the_sampler_keeps(capture: str, keep: list[str], tmp_path: Path) -> None:
    """`labctl watch` reads the same rows with one awk on the host: the same bytes as the
    sampler's --keep, run here on real captures."""
    path = tmp_path / "interrupts"
    path.write_text(fixture(capture))
    awk = subprocess.run(["sh", "-c", kept_rows_command(str(path), keep)], capture_output=True, check=True).stdout
    _, labels, words = sampler.keep_arg("interrupts=" + ",".join(keep))
    assert awk == sampler.kept_lines(path.read_bytes(), labels, words)
    assert 1 < len(awk.splitlines()) < len(path.read_bytes().splitlines())
    assert "awk" in watch_script(keep) and "awk" not in watch_script()


def test_the_planner_keeps_the_nics_rows_only_where_the_nic_has_irqs() -> None:
    start = next(a for a in plan_for(guest_facts(), {}, load=LOAD).actions
                 if isinstance(a, Start) and a.process == "sampler-dut")
    assert "--keep interrupts=" + ",".join(nic_interrupt_rows(guest_facts())) in start.command
    veth = next(a for a in plan_for(veth_facts(), {}, load=LOAD).actions
                if isinstance(a, Start) and a.process == "sampler-dut")
    assert nic_interrupt_rows(veth_facts()) == [] and "--keep" not in veth.command


@pytest.mark.parametrize("args, message", [
    (["--deadline", "1", "--file", "a=/x", "--keep", "b=1"], "--keep b: no such part"),
    (["--deadline", "1", "--file", "a=/x", "--keep", "a="], "expected NAME=WORD"),
    (["--interval", "0.05", "--deadline", "1", "--file", "a=/proc/stat"], "at least 0.1"),
    (["--deadline", "1"], "at least one"),
    (["--deadline", "1", "--file", "a=/x", "--file", "a=/y"], "given twice"),
    (["--deadline", "0", "--file", "a=/x"], "must be > 0"),
])
def test_the_sampler_refuses_bad_arguments(args: list[str], message: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        sampler.parse_args(["--output", str(tmp_path / "o"), *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


# ------------------------------------------------------------------------- rates

INTERRUPTS = """\
           CPU0       CPU1
 37: {a:10d} {b:10d}  PCI-MSI 49153-edge      virtio1-input.0
 38: {c:10d} {d:10d}  PCI-MSI 49154-edge      virtio1-output.0
LOC: {c:10d} {d:10d}   Local timer interrupts
"""
SOFTIRQS = "                    CPU0       CPU1\n      NET_RX: {a:10d} {b:10d}\n      NET_TX: 0 0\n"
SOFTNET = ("{a:08x} 00000000 {b:08x} 00000000 00000000 00000000 00000000 00000000 00000000 {c:08x} "
           "00000000 00000003 00000000\n"
           "00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
           "00000000 00000000 00000001\n")
STAT = "cpu  1 1 1 1\ncpu0 {a} 0 {b} {c} 0 0 {d} 0 0 0\ncpu1 0 0 0 100 0 0 0 0 0 0\n"
ETHTOOL = "NIC statistics:\n     rx_queue_0_packets: {a}\n     tx_queue_0_packets: 7\n"


def _texts(irq: tuple[int, int], net_rx: tuple[int, int], softnet: tuple[int, int, int],
           stat: tuple[int, int, int, int], rx_packets: int) -> dict[str, str]:
    return {"interrupts": INTERRUPTS.format(a=irq[0], b=irq[1], c=5, d=6),
            "softirqs": SOFTIRQS.format(a=net_rx[0], b=net_rx[1]),
            "softnet_stat": SOFTNET.format(a=softnet[0], b=softnet[1], c=softnet[2]),
            "stat": STAT.format(a=stat[0], b=stat[1], c=stat[2], d=stat[3]),
            "ethtool_stats": ETHTOOL.format(a=rx_packets)}


def _with_times(data: bytes, monos: list[float]) -> bytes:
    """Give the samples chosen monotonic times (the sampler's own are too close together)."""
    lines = data.split(b"\n")
    seq = 0
    for index, line in enumerate(lines):
        if line.startswith(b'{"kind":"sample"'):
            record = json.loads(line)
            record["mono"] = monos[seq]
            lines[index] = json.dumps(record, separators=(",", ":")).encode()
            seq += 1
    return b"\n".join(lines)


def _guest_series(tmp_path: Path) -> HostSeries:
    samples = [_texts((100, 10), (1000, 50), (200, 0, 0), (10, 10, 70, 10), 500),
               _texts((300, 10), (3000, 50), (600, 2, 40), (30, 30, 110, 30), 1500),
               _texts((301, 20), (3000, 250), (600, 2, 40), (30, 30, 210, 30), 1500)]
    data = _with_times(sample_file(tmp_path, samples), [100.0, 102.0, 102.5])
    return derive_series(parse_sample_stream(data), guest_facts().to_json())


def test_rates_by_hand(tmp_path: Path) -> None:
    series = _guest_series(tmp_path)
    assert series.samples == 3 and series.times == [2.0, 2.5] and series.complete
    def values(metric: str, cpu: int | None = None, queue: str | None = None) -> list[float | None]:
        line = series.line(metric, cpu, queue)
        assert line is not None, (metric, cpu, queue)
        return line.values
    # virtio1-input.0 (IRQ 37) on CPU 0: +200 in 2 s, +1 in 0.5 s; the TX row is not a queue's RX
    assert values("irqs_per_s", 0, "rx-0") == [100.0, 2.0]
    assert values("irqs_per_s", 1, "rx-0") == [0.0, 20.0]
    assert not [line for line in series.lines if line.metric == "irqs_per_s" and line.queue != "rx-0"]
    assert values("softirqs_per_s.NET_RX", 0) == [1000.0, 0.0]
    assert values("softirqs_per_s.NET_RX", 1) == [0.0, 400.0]
    assert values("softnet_per_s.processed", 0) == [200.0, 0.0]
    assert values("softnet_per_s.time_squeeze", 0) == [1.0, 0.0]
    assert values("softnet_per_s.received_rps", 0) == [20.0, 0.0]
    assert values("softnet.backlog_len", 0) == [3.0, 3.0]           # a level, not a rate
    # CPU 0: user +20, system +20, idle +40, softirq +20 of 100 jiffies; then idle +100 only
    assert values("cpu_percent.softirq", 0) == [20.0, 0.0]
    assert values("cpu_percent.idle", 0) == [40.0, 100.0]
    assert values("nic_per_s.packets", None, "rx-0") == [500.0, 0.0]
    assert values("nic_per_s.packets", None, "tx-0") == [0.0, 0.0]
    assert busy_cpus(series) == [(0, 500.0, 1000.0), (1, 200.0, 400.0)]


def test_a_part_that_does_not_parse_leaves_a_gap(tmp_path: Path) -> None:
    samples = [_texts((1, 1), (1, 1), (1, 1, 1), (1, 1, 1, 1), 1) for _ in range(4)]
    samples[1]["softirqs"] = "garbage\n"
    series = derive_series(parse_sample_stream(sample_file(tmp_path, samples)), guest_facts().to_json())
    line = series.line("softirqs_per_s.NET_RX", 0)
    assert line is not None and line.values == [None, None, 0.0]
    assert series.line("cpu_percent.idle", 1) is not None
    assert series.problems and "softirqs" in series.problems[0]


# ------------------------------------------------------------------------- plan and validation

def test_the_plan_samples_each_snapshot_host_during_the_window() -> None:
    plan = plan_for(guest_facts(), {}, load=LOAD, snapshot={"interval": 0.5})
    kinds = [(type(a).__name__, a.description) for a in plan.actions]
    start = next(a for a in plan.actions if isinstance(a, Start) and a.process == "sampler-dut")
    client = next(i for i, a in enumerate(plan.actions) if isinstance(a, Start) and a.process == "client")
    assert plan.actions.index(start) < client
    assert isinstance(plan.actions[plan.actions.index(start) + 1], WaitFile)
    argv = start.command
    for expected in ("--interval 0.5", "--deadline 122.5", "--file interrupts=/proc/interrupts",
                     "--file softnet_stat=/proc/net/softnet_stat", "'--command' 'ethtool_stats=ethtool -S eth1'"):
        assert expected.replace("'", "") in argv.replace("'", ""), (expected, argv)
    stop = next(a for a in plan.actions if isinstance(a, Stop) and a.process == "sampler-dut")
    wait = next(i for i, a in enumerate(plan.actions) if a.kind == "wait_process")
    assert plan.actions.index(stop) == wait + 1 and stop.ended_ok
    assert [a.local for a in plan.actions if isinstance(a, Upload)][-1] == "labctl/agent/sampler.py"
    assert [a.local for a in plan.actions if isinstance(a, Fetch)][-2:] == [
        "series/samples.raw", "series/sampler.log"]
    assert kinds


@pytest.mark.parametrize("snapshot, duration, interval", [
    ({}, 2.5, 1.0), ({"interval": None}, 2.5, None), ({}, 1.0, None), ({"interval": 0.1}, 0.5, 0.1)])
def test_series_interval(snapshot: dict[str, object], duration: float, interval: float | None) -> None:
    load = {"client": {"rate": 10, "duration": duration}}
    assert series_interval(scenario(load=load, snapshot=snapshot)) == interval
    assert series_interval(scenario(snapshot=snapshot)) is None                 # no load window


def test_sampler_sources_follow_the_snapshot_probes() -> None:
    host = SnapshotHost.of(veth_facts())
    assert sampler_sources(["stat", "ethtool_stats"], host) == [
        ("file", "stat", "/proc/stat"), ("command", "ethtool_stats", "ethtool -S eth1")]


@pytest.mark.parametrize("snapshot, message", [
    ("{interval: 0.05}", "snapshot.interval: Input should be greater than or equal to 0.1"),
    ("{interval: 5}", "s.yaml:3:22: snapshot.interval: the series samples every 5 s: that must be shorter than the load window"),
    ("{hosts: [nope]}", "s.yaml:3:20: snapshot.hosts[0]: no host 'nope' in the inventory"),
])
def test_bad_series_input(tmp_path: Path, snapshot: str, message: str) -> None:
    path, inventory = tmp_path / "s.yaml", tmp_path / "inventory.yaml"
    path.write_text(f"load:\n  client: {{rate: 10, duration: 5}}\nsnapshot: {snapshot}\n")
    inventory.write_text(NETNS_INVENTORY)
    with pytest.raises(ValidationError) as exc:
        load_scenario(path, load_inventory(inventory).model)
    assert message in str(exc.value), str(exc.value)


# ------------------------------------------------------------------------- report and export

def _series_file(run: str = "20261203T000000Z-x") -> SeriesFile:
    host = HostSeries(interval=1.0, samples=3, started=1.0, times=[1.0, 2.0], lines=[
        SeriesLine(metric="softirqs_per_s.NET_RX", cpu=1, values=[10.0, None]),
        SeriesLine(metric="nic_per_s.packets", queue="rx-0", values=[5.0, 6.5])],
        sampler_cpu_seconds=0.03, sampler_cpu_per_sample=0.01, read_seconds_mean=0.002)
    return SeriesFile(run_id=run, scenario="x", hosts={"dut": host})


def test_export_csv_columns_and_rows() -> None:
    out = io.StringIO()
    assert write_csv(export_rows([_series_file("a"), _series_file("b")]), out) == 6
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == COLUMNS
    assert rows[0] == {"run": "a", "scenario": "x", "host": "dut", "metric": "softirqs_per_s.NET_RX",
                       "cpu": "1", "queue": "", "time": "1.0", "value": "10.0"}
    assert rows[1]["cpu"] == "" and rows[1]["queue"] == "rx-0" and rows[2]["value"] == "6.5"


def test_export_parquet_without_pyarrow_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ExportError, match=r"labctl\[parquet\]"):
        parquet_table(export_rows([_series_file()]))


def test_export_parquet_with_pyarrow() -> None:
    pyarrow = pytest.importorskip("pyarrow", reason="pyarrow is the optional extra labctl[parquet]")
    table = parquet_table(export_rows([_series_file()]))
    assert table.column_names == list(COLUMNS) and table.num_rows == 3
    assert table.schema.field("cpu").type == pyarrow.int64()


def test_labctl_export_of_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old_run = "20261126T075252Z-rps_cpu1"            # a run of a labctl before the series
    run = tmp_path / "runs" / old_run
    shutil.copytree(ROOT / "tests" / "fixtures" / "runs" / old_run, run)
    runs = ["--runs-dir", str(tmp_path / "runs"), "export"]
    assert cli.main([*runs, old_run]) == 1
    assert f"run {old_run} has no series" in capsys.readouterr().err
    (run / "series.json").write_text(_series_file(run.name).to_json())
    assert cli.main([*runs, old_run]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 4
    assert cli.main([*runs, old_run, "-o", str(tmp_path / "out.csv")]) == 0
    assert (tmp_path / "out.csv").read_text().splitlines() == lines
    assert cli.main([*runs, old_run, "--format", "parquet"]) == 1
    assert "give -o FILE" in capsys.readouterr().err


def test_the_report_section() -> None:
    series = _series_file()
    text = render_series_markdown(series, shared_kernel=True)
    assert "## Series" in text and "3 samples every 1 s (2 intervals over 2.0 s)" in text
    assert "0.03 s of CPU, starting Python included (10.0 ms per sample" in text and "CPU 1: mean 10, peak 10" in text
    assert "cut short" not in text and "host-wide" in text
    series.hosts["dut"].complete = False
    series.missing["lg"] = "no sample file was fetched"
    text = render_series_markdown(series)
    assert "**the sample file was cut short**" in text and "**lg: no series**" in text
    assert render_series_markdown(None) == ""
