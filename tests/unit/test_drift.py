"""The drift watchdog: the plan's read-backs become sampler parts, each sample's value is compared
with the planned one (CPU lists and masks in every spelling the kernel writes), and a change
makes the run invalid whatever its checks said (exit 6; never a DUT result in a sweep)."""

from __future__ import annotations

import dataclasses

from labctl import cli
from labctl.analysis.drift import Watch, drift_record, host_changes, judged, read_value, watch_record
from labctl.analysis.expectations import Verdict
from labctl.analysis.sweepstats import JUDGED_STATUSES
from labctl.errors import RunInvalid
from labctl.host.samples import Sample, SampleStream
from labctl.plan.actions import Start
from labctl.plan.series import planned_readbacks
from labctl.reports.html import render_html
from labctl.reports.markdown import render_markdown
from labctl.runfiles.models import DriftRecord, Summary, VerdictRecord
from labctl.runfiles.sweep import ENDED
from tests.helpers import fixture
from tests.helpers.plans import LOAD, guest_facts, igb_facts, plan_for

RPS = watch_record("readback:mask@rx-0", "mask", "eth1 rx-0 RPS mask", frozenset({1}))
IRQ = watch_record("readback:cpulist@37", "cpulist", "IRQ 37 (virtio1-input.0) affinity", frozenset({1}))
CHANNELS = watch_record("readback:channels", "channels", "eth1 channels", {"combined": 2})


def stream(*parts: dict[str, str | tuple[str, int]]) -> SampleStream:
    """Samples one second apart from Unix time 1_700_000_000; a part is its text, or (text, status)."""
    samples = []
    for seq, given in enumerate(parts):
        texts = {k: v if isinstance(v, str) else v[0] for k, v in given.items()}
        status = {k: v[1] for k, v in given.items() if not isinstance(v, str)}
        samples.append(Sample(seq, 1_700_000_000.0 + seq, 500.0 + seq, 0.001, texts, status))
    return SampleStream(1.0, (), tuple(samples), {}, {"reason": "signal"}, False)


def test_every_spelling_of_the_planned_cpus_is_no_change() -> None:
    rps, irq = Watch.of(RPS), Watch.of(IRQ)
    for text in ("2\n", "00000002\n", "00000000,00000002\n", "0,2"):
        assert read_value(rps, text, 0) == frozenset({1}), text
    for text in ("1\n", "1-1\n"):
        assert read_value(irq, text, 0) == frozenset({1}), text
    samples = stream(*({"readback:mask@rx-0": m, "readback:cpulist@37": c}
                       for m, c in (("2\n", "1\n"), ("00000000,00000002\n", "1-1\n"), ("002\n", "1"))))
    assert host_changes("dut", [rps, irq], samples) == []


def test_a_change_that_goes_back_still_counts_with_when_and_from_to() -> None:
    samples = stream({"readback:mask@rx-0": "2\n"}, {"readback:mask@rx-0": "2\n"},
                     {"readback:mask@rx-0": "c\n"}, {"readback:mask@rx-0": "2\n"})
    changes = host_changes("dut", [Watch.of(RPS)], samples)
    assert [(c.sample, c.seconds, c.before, c.after, c.planned) for c in changes] == [
        (2, 2.0, "1", "2-3", "1"), (3, 3.0, "2-3", "1", "1")]
    assert changes[0].time == "2023-11-14T22:13:22.000+00:00" and changes[0].what == "eth1 rx-0 RPS mask"
    record = drift_record({"dut": [RPS]}, {"dut": samples}, {})
    assert record is not None and record.watched == {"dut": 1} and record.samples == {"dut": 4}
    assert judged(Verdict("passed", "3/3 checks passed"), record).status == "invalid"


def test_the_first_sample_is_compared_with_the_plan() -> None:
    changes = host_changes("dut", [Watch.of(RPS)], stream({"readback:mask@rx-0": "0\n"}))
    assert [(c.before, c.after, c.seconds) for c in changes] == [("1", "none", 0.0)]


def test_missing_unreadable_and_unparseable_values() -> None:
    samples = stream({"readback:mask@rx-0": "2\n"}, {},                    # not in this sample: not judged
                     {"readback:mask@rx-0": "2\n"}, {"readback:mask@rx-0": ("", 2)},
                     {"readback:mask@rx-0": "zz\n"})
    changes = host_changes("dut", [Watch.of(RPS)], samples)
    assert [(c.sample, c.after) for c in changes] == [
        (3, "unreadable (errno/exit 2)"), (4, "unparseable ('zz')")]


def test_channels_compare_only_what_the_plan_set() -> None:
    listing = ("Channel parameters for eth1:\nPre-set maximums:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\tn/a\n"
               "Combined:\t4\nCurrent hardware settings:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\tn/a\n"
               "Combined:\t{n}\n")
    samples = stream({"readback:channels": listing.format(n=2)}, {"readback:channels": listing.format(n=1)})
    changes = host_changes("dut", [Watch.of(CHANNELS)], samples)
    assert [(c.before, c.after) for c in changes] == [("combined 2", "combined 1")]


def test_hosts_without_a_sample_file_are_named_and_no_watch_is_no_record() -> None:
    record = drift_record({"dut": [RPS], "lg": []}, {}, {"dut": "no sample file was fetched"})
    assert record is not None and record.unwatched == {"dut": "no sample file was fetched"}
    assert not record.changes and drift_record({"dut": []}, {}, {}) is None


def test_drift_beats_every_verdict_and_no_drift_keeps_it() -> None:
    drifted = drift_record({"dut": [RPS]}, {"dut": stream({"readback:mask@rx-0": "4"})}, {})
    for status in ("passed", "failed", "inconclusive"):
        verdict = judged(Verdict(status, "why"), drifted)
        assert verdict.status == "invalid" and "eth1 rx-0 RPS mask changed from 1 to 2" in verdict.reason
        assert f"the checks alone said: {status}" in verdict.reason
    steady = drift_record({"dut": [RPS]}, {"dut": stream({"readback:mask@rx-0": "2"})}, {})
    assert judged(Verdict("failed", "why"), steady) == Verdict("failed", "why")
    assert judged(Verdict("passed", "why"), None) == Verdict("passed", "why")


def test_the_sampler_reads_back_what_the_plan_set_and_nothing_else() -> None:
    tuning = {"channels": {"combined": 2}, "irq_affinity": {"rx-0": 1}, "rps": {"all": "1,6"}}
    plan = plan_for(guest_facts(), tuning, load=LOAD)
    readbacks = planned_readbacks(list(plan.actions))["dut"]
    assert [(r.name, r.path) for r in readbacks] == [
        ("readback:channels", ""),
        ("readback:cpulist@37", "/proc/irq/37/smp_affinity_list"),
        ("readback:mask@rx-0", "/sys/class/net/eth1/queues/rx-0/rps_cpus"),
        ("readback:mask@rx-1", "/sys/class/net/eth1/queues/rx-1/rps_cpus")]
    assert [r.expected for r in readbacks[2:]] == [frozenset({1})] * 2       # 6 is isolated: trimmed
    start = next(a for a in plan.actions if isinstance(a, Start) and a.process == "sampler-dut")
    for part in ("--command readback:channels=ethtool -l eth1",
                 "--file readback:cpulist@37=/proc/irq/37/smp_affinity_list",
                 "--file readback:mask@rx-1=/sys/class/net/eth1/queues/rx-1/rps_cpus"):
        assert part in start.command.replace("'", ""), (part, start.command)
    untuned = plan_for(guest_facts(), {}, load=LOAD)
    sampler = next(a for a in untuned.actions if isinstance(a, Start) and a.process == "sampler-dut")
    assert "readback:" not in sampler.command and planned_readbacks(list(untuned.actions)) == {}
    refused = plan_for(guest_facts(), {"rps": {"rx-0": "6"}}, load=LOAD)      # isolated only: EINVAL
    assert planned_readbacks(list(refused.actions)) == {}


def test_rss_and_flow_hash_are_watched_and_a_driver_reset_is_drift() -> None:
    """An RSS step is read back each sample with `ethtool -x` (the plan's own command and
    parser): the table the plan wrote is no change; the driver's blocks back (a reset, a
    `ethtool -X default` from another tool) are, said as spreads. The flow hash fields too."""
    facts = igb_facts()
    facts = dataclasses.replace(facts, nic=dataclasses.replace(facts.nic, flow_hash={"udp4": "sd"}))
    plan = plan_for(facts, {"rss": {"equal": 4, "flow_hash": {"udp4": "sdfn"}}}, load=LOAD)
    readbacks = planned_readbacks(list(plan.actions))["dut"]
    assert [(r.name, r.label) for r in readbacks] == [
        ("readback:rss", "RSS of eth1"), ("readback:flow_hash@udp4", "udp4 hash fields of eth1")]
    sampler = next(a for a in plan.actions if isinstance(a, Start) and a.process == "sampler-dut")
    assert "--command readback:rss=ethtool -x eth1" in sampler.command.replace("'", "")
    rss, flow = (watch_record(r.name, r.kind, r.label, r.expected) for r in readbacks)
    blocks = fixture("nics/igb/qemu10-guest-ethtool-x.txt")           # igb's own table, as captured
    rows = [f"{8 * i:5d}:" + "".join(f"{(8 * i + j) % 4:6d}" for j in range(8)) for i in range(16)]
    planned = "\n".join(["RX flow hash indirection table for data0 with 4 RX ring(s):", *rows,
                         *blocks.splitlines()[17:]]) + "\n"
    sdfn = ("UDP over IPV4 flows use these fields for computing Hash flow key:\nIP SA\nIP DA\n"
            "L4 bytes 0 & 1 [TCP/UDP src port]\nL4 bytes 2 & 3 [TCP/UDP dst port]\n")
    samples = stream({"readback:rss": planned, "readback:flow_hash@udp4": sdfn},
                     {"readback:rss": planned, "readback:flow_hash@udp4": sdfn},
                     {"readback:rss": blocks,
                      "readback:flow_hash@udp4": fixture("nics/igb/qemu10-guest-ethtool-n-udp4.txt")})
    changes = host_changes("dut", [Watch.of(rss), Watch.of(flow)], samples)
    assert [(c.what, c.seconds, c.before, c.after) for c in changes] == [
        ("RSS of eth1", 2.0, "equal 4 (128 entries)", "weight 1 1 1 1 (128 entries)"),
        ("udp4 hash fields of eth1", 2.0, "sdfn", "sd")]


def _drifted_summary() -> Summary:
    record = drift_record({"dut": [RPS, IRQ], "lg": [RPS]}, {"dut": stream(
        {"readback:mask@rx-0": "2", "readback:cpulist@37": "1"},
        {"readback:mask@rx-0": "8", "readback:cpulist@37": "1"})}, {"lg": "no sample file was fetched"})
    assert isinstance(record, DriftRecord)
    verdict = judged(Verdict("passed", "2/2 checks passed"), record)
    return Summary(run_id="r1", scenario="drift", verdict=VerdictRecord(**verdict.to_json()), drift=record)


def test_the_reports_say_invalid_and_name_the_change() -> None:
    summary = _drifted_summary()
    text = render_markdown(summary)
    assert "Verdict: INVALID (the tuning drifted: not the scenario's result): tuning drifted" in text
    assert "## Drift" in text and "2 value(s) the plan set (dut: 2 in 2 samples): 1 change(s)" in text
    row = next(line for line in text.splitlines() if "eth1 rx-0 RPS mask" in line and "|" in line)
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "dut", "eth1 rx-0 RPS mask", "1.0 s", "2023-11-14T22:13:21.000+00:00", "1", "3", "1"]
    assert "- lg: not watched (no sample file was fetched)" in text
    html = render_html(summary)
    assert "Drift" in html and "eth1 rx-0 RPS mask" in html and "INVALID" in html
    again = Summary.from_json(summary.to_json())            # summary.json keeps it, typed
    assert again.drift == summary.drift and again.verdict and again.verdict.status == "invalid"


def test_invalid_has_its_own_exit_code_and_is_no_dut_result_in_a_sweep() -> None:
    assert RunInvalid("x").exit_code == 6 == cli.SERIES_EXIT["invalid"]
    assert len(set(cli.SERIES_EXIT.values())) == len(cli.SERIES_EXIT)
    assert cli.SERIES_ORDER.index("invalid") < cli.SERIES_ORDER.index("failed")
    assert "invalid" in ENDED and "invalid" not in JUDGED_STATUSES


def test_the_manifest_lists_the_watches_of_a_run_with_a_series_only() -> None:
    from labctl.runner import _watches
    plan = plan_for(guest_facts(), {"rps": {"rx-0": 1}}, load=LOAD)
    assert _watches(plan) == {"dut": [watch_record("readback:mask@rx-0", "mask", "eth1 rx-0 RPS mask",
                                                   frozenset({1}))]}
    assert _watches(plan_for(guest_facts(), {"rps": {"rx-0": 1}})) == {}                # no load window
    assert _watches(plan_for(guest_facts(), {"rps": {"rx-0": 1}}, load=LOAD, snapshot={"interval": None})) == {}
    unsampled = plan_for(guest_facts(), {"rps": {"rx-0": 1}}, load=LOAD, snapshot={"hosts": ["loadgen"]})
    record = drift_record(_watches(unsampled), {}, {})
    assert record is not None and record.unwatched == {"dut": "no sampler ran there: not in snapshot.hosts"}
