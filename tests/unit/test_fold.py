"""labctl.analysis.fold against real `perf script` captures (origins in tests/fixtures/perf/README.md)."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from labctl.analysis.fold import (
    HEADLESS,
    KERNEL_SUFFIX,
    NO_CALLCHAINS,
    NO_CPU,
    NO_CPU_FIELD,
    NO_PID_FIELD,
    NO_SAMPLES,
    TRUNCATED,
    FoldOptions,
    event_base,
    fold_perf_script,
    format_folded,
    frame_name,
    parse_folded,
)
from labctl.errors import RunError
from tests.helpers import fixture

HOST = "perf/host-6.18-2cpu.perf_script.txt"
GUEST = "perf/guest-6.1-tcg.{}.perf_script.txt"
GUEST_MODULES = "guest-6.1-tcg.rx-modules.cpu6"
# perf 6.1's Python scripting names a module's symbol "sym\0[module]" (bench/fold.py says why)
PERF_MODULE_NAME = re.compile(r"\x00\[[A-Za-z0-9_.-]+\](?=;|$)")
DROPPED_TRUNCATED = f"dropped 1 incomplete sample(s): {TRUNCATED}"


def perf_folded(name: str) -> dict[str, int]:
    return parse_folded(fixture(f"perf/{name}"))


def frames_of(stacks: dict[str, int]) -> set[str]:
    return {frame for stack in stacks for frame in stack.split(";")}


# --- the same stacks and counts as perf's stackcollapse.py ----------------------------------


def test_host_capture_equals_perf_stackcollapse() -> None:
    result = fold_perf_script(fixture(HOST))
    assert result.merged() == perf_folded("host-6.18-2cpu.stackcollapse.folded")
    assert result.total_samples == 195
    assert result.diagnostics == ()


@pytest.mark.parametrize("cpu", [0, 1])
def test_host_capture_per_cpu_equals_perf_script_dash_c(cpu: int) -> None:
    result = fold_perf_script(fixture(HOST))
    assert result.cpus == [0, 1]
    assert result.stacks[cpu] == perf_folded(f"host-6.18-2cpu.stackcollapse.cpu{cpu}.folded")
    assert result.samples[cpu] == sum(result.stacks[cpu].values())


def test_host_capture_kernel_annotation_equals_perf_kernel_option() -> None:
    result = fold_perf_script(fixture(HOST), FoldOptions(annotate_kernel=True))
    assert result.merged() == perf_folded("host-6.18-2cpu.stackcollapse-kernel.folded")
    # junk past the end of a qemu user stack, at a kernel-space address: not a kernel frame
    assert "CPU_3/TCG;[unknown];[unknown]" in result.stacks[1]


def test_host_capture_without_comm_equals_perf_no_comm() -> None:
    result = fold_perf_script(fixture(HOST), FoldOptions(include_comm=False))
    assert result.merged() == perf_folded("host-6.18-2cpu.stackcollapse-no-comm.folded")


def test_host_capture_pid_tid_equals_perf_include_pid_tid() -> None:
    options = FoldOptions(include_pid=True, include_tid=True)
    result = fold_perf_script(fixture("perf/host-6.18-2cpu.pid.perf_script.txt"), options)
    assert result.merged() == perf_folded("host-6.18-2cpu.stackcollapse-pid-tid.folded")
    assert "CPU_1/TCG-7183/7190;" in format_folded(result.merged())


def test_pid_asked_but_only_tid_printed_is_said() -> None:
    result = fold_perf_script(fixture(HOST), FoldOptions(include_pid=True))
    assert NO_PID_FIELD in result.diagnostics
    assert any(stack.startswith("CPU_1/TCG-7190;") for stack in result.merged())


def test_comm_with_spaces_becomes_one_frame_with_underscores() -> None:
    result = fold_perf_script(fixture(HOST))
    assert {stack.split(";")[0] for stack in result.merged()} >= {"CPU_1/TCG", "swapper"}


def test_tid_without_comm_is_refused() -> None:
    with pytest.raises(RunError, match="include_comm"):
        FoldOptions(include_comm=False, include_tid=True)


def test_guest_capture_with_module_frames_equals_perf_but_for_its_module_names() -> None:
    """Frames of modules (virtio_net, virtio_ring) at ffffffffc0... addresses print in the text
    as ``sym+0x.. ([kernel.kallsyms])``; perf's stackcollapse names them ``sym\\0[module]``.
    Apart from that suffix, which the text cannot give, stacks and counts are perf's."""
    result = fold_perf_script(fixture(f"perf/{GUEST_MODULES}.perf_script.txt"))
    perf = perf_folded(f"{GUEST_MODULES}.stackcollapse.folded")
    without_modules: dict[str, int] = {}
    for stack, count in perf.items():
        plain = PERF_MODULE_NAME.sub("", stack)
        without_modules[plain] = without_modules.get(plain, 0) + count
    assert sum(PERF_MODULE_NAME.search(stack) is not None for stack in perf) == 32
    assert "virtnet_poll\x00[virtio_net]" in frames_of(perf)
    assert not any("\x00" in stack or "[virtio" in stack for stack in without_modules)
    assert result.stacks == {6: without_modules}
    assert (result.total_samples, result.diagnostics) == (60, ())
    assert {"virtnet_poll", "virtqueue_add_split"} <= frames_of(result.stacks[6])


# --- guest captures: where the receive path ran ---------------------------------------------


@pytest.mark.parametrize(
    "scenario, cpu, present, absent",
    [
        ("c_pinned.cpu2", 2, {"net_rx_action", "napi_gro_receive", "__netif_receive_skb_list_core"},
         set()),
        ("c_pinned.cpu7", 7, {"napi_busy_loop", "__netif_receive_skb_list_core"},
         {"net_rx_action"}),
        ("f_rps_cpu1.cpu2", 2, {"net_rx_action", "get_rps_cpu", "enqueue_to_backlog", "net_rps_send_ipi"},
         {"__netif_receive_skb_list_core", "__netif_receive_skb_one_core"}),
        ("f_rps_cpu1.cpu1", 1, {"net_rx_action", "process_backlog",
                                "__netif_receive_skb_one_core"}, set()),
    ],
)
def test_guest_receive_path_frames_on_their_cpu(
    scenario: str, cpu: int, present: set[str], absent: set[str]
) -> None:
    result = fold_perf_script(fixture(GUEST.format(scenario)))
    assert result.cpus == [cpu]
    frames = frames_of(result.stacks[cpu])
    assert present <= frames
    assert not absent & frames
    assert result.software_clock and result.events.keys() == {"cpu-clock:ppp"}


def test_guest_receive_path_is_root_first() -> None:
    stacks = fold_perf_script(fixture(GUEST.format("c_pinned.cpu2"))).stacks[2]
    softirq = [s for s in stacks if s.startswith("ksoftirqd/2;ret_from_fork;kthread;")]
    assert softirq and all("net_rx_action;__napi_poll;virtnet_poll" in s for s in softirq)


@pytest.mark.parametrize("scenario", ["c_pinned.cpu7", "f_rps_cpu1.cpu1", "f_rps_cpu1.cpu2"])
def test_guest_capture_cut_by_head_drops_its_last_sample(scenario: str) -> None:
    text = fixture(GUEST.format(scenario))
    result = fold_perf_script(text)
    assert result.dropped_samples == 1
    assert result.diagnostics == (DROPPED_TRUNCATED,)
    assert result.total_samples == text.count("\n\n")


def test_guest_capture_ending_on_a_blank_line_is_whole() -> None:
    text = fixture(GUEST.format("c_pinned.cpu2"))
    result = fold_perf_script(text)
    assert (result.total_samples, result.dropped_samples, result.diagnostics) == (197, 0, ())


# --- odd input: diagnostics, never an exception ---------------------------------------------


@pytest.mark.parametrize("text", ["", "\n", "\n\n\n", "   \n"])
def test_empty_input_says_no_samples(text: str) -> None:
    result = fold_perf_script(text)
    assert result.diagnostics == (NO_SAMPLES,)
    assert result.stacks == {} and result.total_samples == 0 and not result.has_callchains


def test_recording_without_g_is_detected() -> None:
    result = fold_perf_script(fixture("perf/host-6.18-2cpu-no-g.perf_script.txt"))
    assert result.diagnostics == (NO_CALLCHAINS,)
    assert not result.has_callchains and result.chainless_samples == result.total_samples
    # same samples per comm as perf, each with its sampled symbol as one frame
    perf = perf_folded("host-6.18-2cpu-no-g.stackcollapse.folded")
    per_comm: dict[str, int] = {}
    for stack, count in result.merged().items():
        comm, symbol = stack.split(";")
        per_comm[comm] = per_comm.get(comm, 0) + count
    assert per_comm == perf
    assert result.merged()["swapper;pv_native_safe_halt"] == 23


def test_recording_without_g_cut_mid_line_drops_that_sample() -> None:
    text = fixture("perf/host-6.18-2cpu-no-g.perf_script.txt")
    result = fold_perf_script(text[:-10])
    assert result.total_samples == 137 and result.dropped_samples == 1
    assert DROPPED_TRUNCATED in result.diagnostics


def test_recording_without_a_has_no_cpu_field() -> None:
    result = fold_perf_script(fixture("perf/host-6.18-dd-no-a.perf_script.txt"))
    assert result.cpus == [NO_CPU]
    assert result.diagnostics == (NO_CPU_FIELD,)
    assert result.merged() == perf_folded("host-6.18-dd-no-a.stackcollapse.folded")


def test_odd_lines_are_counted_and_shown_not_fatal() -> None:
    text = fixture(HOST)
    first_blank = text.index("\n\n") + 2
    noisy = (
        "Warning: 3 out of order events\n"
        + text[:first_blank]
        + "garbage between samples\n\n"
        + text[first_blank:]
        + "trailing junk\n"
    )
    result = fold_perf_script(noisy)
    assert result.odd_lines == 3
    assert result.merged() == fold_perf_script(text).merged()
    assert any("ignored 3 unrecognised line(s)" in d and "out of order" in d
               for d in result.diagnostics)


def test_odd_line_inside_a_call_chain_keeps_the_sample() -> None:
    text = "perf 1 [000] 1.000001: 1 cpu-clock: \n\tffffffff81000001 b+0x1 ([kernel.kallsyms])\n" \
           "  /src/b.c:12\n\t          400000 a+0x2 (/bin/a)\n\n"
    result = fold_perf_script(text)
    assert result.merged() == {"perf;a;b": 1}
    assert result.odd_lines == 1


def test_frames_without_header_are_dropped() -> None:
    text = fixture(HOST)
    result = fold_perf_script(text[text.index("\n") + 1:])  # starts inside the first sample
    assert result.total_samples == 194
    assert f"dropped 1 incomplete sample(s): {HEADLESS}" in result.diagnostics


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(fixture(HOST))))
@example(cut=fixture(HOST).index("\n") + 1)    # a whole header line, its call chain cut off (found in CI)
def test_any_cut_keeps_every_complete_sample_and_drops_the_cut_one(cut: int) -> None:
    text = fixture(HOST)[:cut]
    result = fold_perf_script(text)
    started = sum(1 for line in text.split("\n") if line and not line.startswith("\t"))
    assert result.total_samples == text.count("\n\n")
    assert result.total_samples + result.dropped_samples == started


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab [0]1.:;+x()\t\n/-")) | st.characters()))
def test_arbitrary_text_never_raises(text: str) -> None:
    result = fold_perf_script(text)
    assert result.total_samples >= 0 and isinstance(result.diagnostics, tuple)


def test_crlf_line_ends() -> None:
    text = fixture(GUEST.format("c_pinned.cpu2"))
    assert fold_perf_script(text.replace("\n", "\r\n")).merged() == fold_perf_script(text).merged()


# --- header and frame line forms --------------------------------------------------------------


SAMPLE = "{header}\n\tffffffff81000010 leaf+0x10 ([kernel.kallsyms])\n\t    55d4a1000020 main+0x20 (/usr/bin/app)\n\n"


@pytest.mark.parametrize(
    "header, cpu, comm, event",
    [
        ("Web Content  4242 [003]   123.456789:     250000 cycles:P: ", 3, "Web_Content", "cycles:P"),
        ("kworker/u16:2-ev     311 [000] 1.000000:   10101010 cpu-clock:ppp: ", 0, "kworker/u16:2-ev",
         "cpu-clock:ppp"),
        ("app 12  1234/1235  [007] 99.000001: 1 sched:sched_switch: prev_comm=a prev_pid=1", 7,
         "app_12", "sched:sched_switch"),
        ("a: b  77 [001] 5.5: 1 cpu-clock:", 1, "a:_b", "cpu-clock"),
        ("no-period  9 [002] 5.000001: cpu-clock: ", 2, "no-period", "cpu-clock"),
        ("dd  7916 13130.609454:    2004008 cpu-clock:ppp: ", NO_CPU, "dd", "cpu-clock:ppp"),
    ],
)
def test_header_forms(header: str, cpu: int, comm: str, event: str) -> None:
    result = fold_perf_script(SAMPLE.format(header=header) * 2)
    assert result.stacks == {cpu: {f"{comm};main;leaf": 2}}
    assert result.events == {event: 2}


def test_hardware_event_periods_vary_and_still_merge() -> None:
    text = "".join(
        SAMPLE.format(header=f"iperf3  5120 [001] 10.{i:06d}: {1000 + i} cycles: ") for i in range(50)
    )
    result = fold_perf_script(text)
    assert result.stacks == {1: {"iperf3;main;leaf": 50}}
    assert not result.software_clock


@pytest.mark.parametrize(
    "line, plain, kernel",
    [
        ("\tffffffffb9aa8ddd handle_softirqs+0x7d ([kernel.kallsyms])", "handle_softirqs",
         "handle_softirqs_[k]"),
        ("\t           9dcc8 [unknown] (/usr/bin/perf)", "[unknown]", "[unknown]"),
        ("\t               0 [unknown] ([unknown])", "[unknown]", "[unknown]"),
        ("\tffff8bc26fcb88f0 [unknown] ([unknown])", "[unknown]", "[unknown]"),
        ("\tffffffffc0597cf7 virtnet_poll+0x1f7 ([virtio_net])", "virtnet_poll", "virtnet_poll_[k]"),
        ("\tffffffff81234567 tcp_v4_rcv (inlined)", "tcp_v4_rcv", "tcp_v4_rcv_[k]"),
        ("\t    55d4a1b2c3d4 inner_helper (inlined)", "inner_helper", "inner_helper"),
        ("\t          1f2e3d operator new(unsigned long)+0x1c (/usr/lib/libstdc++.so.6)",
         "operator new(unsigned long)", "operator new(unsigned long)"),
        ("\t          1f2e3d Lorg/Foo;.bar+0x1c (/tmp/perf-1.map)", "Lorg/Foo:.bar", "Lorg/Foo:.bar"),
        ("\t          1f2e3d freed+0x2 (/tmp/app (deleted))", "freed", "freed"),
        ("\t          1f2e3d pthread_cond_broadcast@@GLIBC_2.3.2+0x1 (/lib/libc.so.6)",
         "pthread_cond_broadcast@@GLIBC_2.3.2", "pthread_cond_broadcast@@GLIBC_2.3.2"),
    ],
)
def test_frame_lines(line: str, plain: str, kernel: str) -> None:
    assert frame_name(line) == plain
    assert frame_name(line, annotate_kernel=True) == kernel


@pytest.mark.parametrize("line", ["", "\t", "\tnot-hex symbol (dso)", "swapper 0 [000] 1.0: x:"])
def test_not_frame_lines(line: str) -> None:
    assert frame_name(line) is None


def test_inlined_frames_are_frames_of_their_own() -> None:
    text = (
        "app  10 [000] 1.000001: 1 cycles: \n"
        "\tffffffff81234567 tcp_rcv_established (inlined)\n"
        "\tffffffff81234567 tcp_v4_do_rcv+0x1a7 ([kernel.kallsyms])\n"
        "\t    55d4a1b2c3d4 parse_header (inlined)\n"
        "\t    55d4a1b2c3d4 main+0x44 (/usr/bin/app)\n\n"
    )
    result = fold_perf_script(text, FoldOptions(annotate_kernel=True))
    assert result.merged() == {
        f"app;main;parse_header;tcp_v4_do_rcv{KERNEL_SUFFIX};tcp_rcv_established{KERNEL_SUFFIX}": 1
    }


def test_sample_of_a_g_recording_with_no_frames_is_comm_only() -> None:
    text = SAMPLE.format(header="a  1 [000] 1.000001: 1 cpu-clock: ") + "b  2 [000] 1.000002: 1 cpu-clock: \n\n"
    result = fold_perf_script(text)
    assert result.merged() == {"a;main;leaf": 1, "b": 1}
    assert "1 of 2 samples have no call chain" in result.diagnostics


@pytest.mark.parametrize(
    "event, base", [("cpu-clock:ppp", "cpu-clock"), ("cycles:P", "cycles"),
                    ("sched:sched_switch", "sched:sched_switch"), ("task-clock", "task-clock")]
)
def test_event_base(event: str, base: str) -> None:
    assert event_base(event) == base


# --- the .folded text ---------------------------------------------------------------------------


def test_folded_text_round_trip_sorted_like_perf() -> None:
    text = fixture("perf/host-6.18-2cpu.stackcollapse.folded")
    assert format_folded(parse_folded(text)) == text


def test_folded_text_with_bad_lines_names_them() -> None:
    with pytest.raises(RunError, match="line 2, 3"):
        parse_folded("a;b 3\nno count\na;c x\n\n")
