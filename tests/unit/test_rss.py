"""RSS as a tuning step: `ethtool -x` captures of several drivers parsed into facts, ethtool's
own table filling, the exact restore of an original table (refused where `ethtool -X` cannot
write it back), the planned step with its guard, read-back and undo, the refusals before
anything changes (with file:line), and the rx_queue_share expectation."""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from labctl.analysis.expectations import evaluate
from labctl.analysis.perhost import rx_queue_packets
from labctl.errors import Problem
from labctl.host.facts import HostFacts, parse_facts
from labctl.host.probes import parse_ethtool_rss, parse_flow_hash, rss_refusal
from labctl.input.config import load_inventory, load_scenario
from labctl.plan.actions import Change
from labctl.plan.dryrun import render_plan
from labctl.plan.feasibility import check_against_facts
from labctl.plan.guards import irq_guard, queue_count_check
from labctl.plan.rss import Spread, exact_spread, fill_table, restore_args, table_text
from tests.helpers import NETNS_INVENTORY, FakeTransport, Res, fixture
from tests.helpers.plans import guest_facts, igb_facts, igb_table, nic_facts, plan_for, scenario

IXGBE_X = "nics/ixgbe/intel-wired-lan-82599es-63rings-ethtool-x.txt"
MLX5_X = "nics/mlx5_core/intel-wired-lan-2025-01-03-mt27800-63rings-ethtool-x.txt"
BLOCKS_X = "ethtool_rss/packagecloud-p1p1-8rings-blocks.txt"
KERNEL_DOC_X = "ethtool_rss/kernel-doc-8rings-key-no-hfunc.txt"
KEY = "6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:d0:ca:2b:cb:ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:be:ac:01:fa"


def i40e_facts() -> HostFacts:
    """An i40e with the ixgbe capture's kind of table (i40e_fill_rss_lut: i mod rss_size) and a key."""
    return nic_facts("i40e", [i % 4 for i in range(512)], key=KEY)


# --------------------------------------------------------------------------- parsing

@pytest.mark.parametrize(("name", "rings", "size", "spread"), [
    (IXGBE_X, 63, 128, Spread(equal=16)),                 # ixgbe: RSS over 16 of 63 rings
    (MLX5_X, 63, 256, Spread(equal=63)),                  # mlx5 (ConnectX-5): 256 entries, i mod 63
    ("nics/tg3/netdev-2021-10-bcm5719-ethtool-x.txt", 4, 128, Spread(equal=4)),   # tg3, no key
    (BLOCKS_X, 8, 128, Spread(weights=(1,) * 8)),         # blocks of 16: weights, not equal
    (KERNEL_DOC_X, 8, 8, Spread(equal=8)),
])
def test_captured_tables_parse_and_have_an_exact_spread(name: str, rings: int, size: int, spread: Spread) -> None:
    info = parse_ethtool_rss(fixture(name))
    assert info.ring_count == rings and info.indirection is not None and len(info.indirection) == size
    assert exact_spread(info.indirection) == spread
    assert fill_table(size, spread) == info.indirection


@pytest.mark.parametrize(("name", "refusal"), [
    ("ethtool_rss/veth-unsupported.txt", "Cannot get RX ring count: Operation not supported"),
    ("ethtool_rss/debian12-guest-virtio.start.txt",
     "RX flow hash indirection table for eth1 with 4 RX ring(s): Operation not supported"),
    ("ethtool_rss/virtio-host-6.18-1ring.txt",
     "RX flow hash indirection table for eth0 with 1 RX ring(s): Operation not supported"),
])
def test_drivers_without_a_table_keep_their_own_answer(name: str, refusal: str) -> None:
    text = fixture(name)
    assert parse_ethtool_rss(text).indirection is None
    assert rss_refusal(text) == refusal


def facts_output(x_output: str, status: int) -> str:
    return ("@@labctl-section begin nic_exists\n\n@@labctl-section end nic_exists 0\n"
            f"@@labctl-section begin ethtool_x\n{x_output}\n@@labctl-section end ethtool_x {status}\n")


def test_facts_carry_the_table_key_and_functions() -> None:
    facts = parse_facts("dut", facts_output(fixture(BLOCKS_X), 0), "eth1", False)
    assert facts.nic.rss_table == [q for q in range(8) for _ in range(16)]
    assert facts.nic.rss_key is None and facts.nic.rss_hfuncs["toeplitz"] is True
    assert facts.nic.rss_note == ""
    doc = parse_facts("dut", facts_output(fixture(KERNEL_DOC_X), 0), "eth0", False).nic
    assert doc.rss_key is not None and doc.rss_key.startswith("84:50:f4") and doc.rss_hfuncs == {}


def test_facts_of_veth_say_why_there_is_no_table() -> None:
    nic = parse_facts("dut", facts_output(fixture("ethtool_rss/veth-unsupported.txt"), 1), "eth1", True).nic
    assert nic.rss_table is None and nic.rss_note == "Cannot get RX ring count: Operation not supported"


# --------------------------------------------------------------------------- ethtool's filling, restore

def test_fill_table_follows_ethtool_weights_and_start() -> None:
    # packagecloud's `ethtool -X eth0 weight 6 2`: 6/8 of the entries to queue 0
    table = fill_table(128, Spread(weights=(6, 2)))
    assert table.count(0) == 96 and table.count(1) == 32 and table == sorted(table)
    assert fill_table(8, Spread(start=2, equal=2)) == [2, 3, 2, 3, 2, 3, 2, 3]
    assert fill_table(8, Spread(start=1, weights=(1, 0, 1))) == [1, 1, 1, 1, 3, 3, 3, 3]
    with pytest.raises(ValueError, match="1..8"):
        fill_table(8, Spread(weights=(5, 5)))


@pytest.mark.parametrize(("table", "spread"), [
    (igb_table(4), Spread(weights=(1, 1, 1, 1))),
    (igb_table(3), Spread(weights=(43, 43, 42))),
    ([2, 3] * 64, Spread(start=2, equal=2)),
    ([1] * 3 + [3] * 5, Spread(start=1, weights=(3, 0, 5))),
    ([0] * 128, Spread(equal=1)),                          # sfc's all-zero table (onload issue 208)
])
def test_exact_spread_writes_the_same_table_back(table: list[int], spread: Spread) -> None:
    assert exact_spread(table) == spread and fill_table(len(table), spread) == table


@pytest.mark.parametrize("table", [[0, 0, 1, 1, 0, 0, 1, 1], [1, 0, 2, 3], [3, 2, 1, 0] * 4, []])
def test_tables_ethtool_cannot_write_have_no_spread(table: list[int]) -> None:
    assert exact_spread(table) is None


# --------------------------------------------------------------------------- the planned step

def rss_step(facts: HostFacts, rss: dict[str, Any], **tuning: Any) -> Change:
    plan = plan_for(facts, {"rss": rss, **tuning})
    steps = [a for a in plan.actions if isinstance(a, Change) and "ethtool -X" in a.command]
    assert len(steps) == 1
    return steps[0]


def test_equal_on_igb_sets_reads_back_and_restores_the_original_blocks() -> None:
    step = rss_step(igb_facts(), {"equal": 2})
    guard = irq_guard([queue_count_check(igb_facts(), 4, "RSS not changed")])
    assert step.command == f"{guard} && ethtool -X eth1 equal 2"
    assert step.description == ("RSS of eth1: equal 2 (was weight 1 1 1 1 (128 entries), the driver's own: "
                                "restored with `default`)")
    assert step.undo is not None and "then ethtool -X eth1 default; else echo" in step.undo
    assert step.readback is not None and step.readback.command == "ethtool -x eth1"
    assert step.readback.kind == "rss" and step.readback.expected == {"table": [0, 1] * 64}


def test_read_back_compares_the_table_the_driver_shows() -> None:
    step = rss_step(nic_facts("ixgbe", [i % 16 for i in range(128)], queues=63), {"equal": 16})
    assert step.readback is not None
    assert step.readback.observed(fixture(IXGBE_X)) == step.readback.expected
    other = rss_step(nic_facts("ixgbe", [i % 16 for i in range(128)], queues=63), {"equal": 8})
    assert other.readback is not None
    assert other.readback.observed(fixture(IXGBE_X)) != other.readback.expected


def test_weight_start_key_and_function_on_i40e_each_quoted() -> None:
    rss = {"weight": [3, 1], "start": 2, "hkey": KEY.upper(), "hfunc": "toeplitz"}
    step = rss_step(i40e_facts(), rss)
    words = shlex.split(step.command.rsplit(" && ", 1)[1])
    assert words == ["ethtool", "-X", "eth1", "hkey", KEY, "start", "2", "weight", "3", "1", "hfunc", "toeplitz"]
    assert f"ethtool -X eth1 hkey {KEY} default hfunc toeplitz" in (step.undo or "")   # i mod 4: the kernel's own
    assert step.readback is not None
    assert step.readback.expected == {"table": [2] * 384 + [3] * 128, "key": KEY, "hfunc": "toeplitz"}


def test_restore_args_only_put_back_what_the_step_changes() -> None:
    facts = i40e_facts()
    assert restore_args(scenario(tuning={"dut": {"rss": {"hkey": KEY}}}).tuning["dut"].rss, facts) == ["hkey", KEY]  # type: ignore[arg-type]


def test_the_guard_refuses_a_changed_queue_count_for_real() -> None:
    """The step's guard, run by sh against this machine's loopback (one RX queue): planned
    for 4 queues it stops with exit 1, naming the count found; planned for 1 it passes."""
    lo = dataclasses.replace(igb_facts(), nic=dataclasses.replace(igb_facts().nic, interface="lo"))
    step = rss_step(lo, {"equal": 2})
    guard = step.command.rsplit(" && ethtool -X", 1)[0]
    refused = subprocess.run(["sh", "-c", guard], capture_output=True, text=True, check=False)
    assert refused.returncode == 1
    assert "lo does not have the 4 RX queue(s) the plan was made for" in refused.stderr
    assert "RSS not changed: now 1" in refused.stderr
    one = irq_guard([queue_count_check(lo, 1, "RSS not changed")])
    assert subprocess.run(["sh", "-c", one], check=False).returncode == 0
    undo = subprocess.run(["sh", "-c", step.undo or ""], capture_output=True, text=True, check=False)
    assert undo.returncode == 0 and "RSS of lo left as it is" in undo.stdout


def test_dry_run_shows_the_step_its_read_back_and_undo() -> None:
    text = render_plan(plan_for(igb_facts(), {"rss": {"equal": 2, "start": 2}}))
    assert "change: RSS of eth1: start 2 equal 2 (was weight 1 1 1 1 (128 entries), the driver's own" in text
    assert "read back: $ ethtool -x eth1  (expect start 2 equal 2 (128 entries))" in text
    assert "ethtool -X eth1 default; else echo" in text
    custom = render_plan(plan_for(nic_facts("igb", [0] * 96 + [1] * 32), {"rss": {"equal": 2}}))
    assert "ethtool -X eth1 weight 3 1; else echo" in custom      # a table a user set: written back exactly


# --------------------------------------------------------------------------- refusals

def loaded(tmp_path: Path, text: str) -> Any:
    (tmp_path / "inventory.yaml").write_text(NETNS_INVENTORY)
    (tmp_path / "s.yaml").write_text(textwrap.dedent(text))
    return load_scenario(tmp_path / "s.yaml", load_inventory(tmp_path / "inventory.yaml").model)


def problems_of(tmp_path: Path, text: str, facts: HostFacts) -> list[Problem]:
    problems, _ = check_against_facts(loaded(tmp_path, text), None,  # type: ignore[arg-type]
                                      {"dut": facts, "loadgen": guest_facts()})
    return problems


def test_equal_beyond_the_queues_refused_at_its_line(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, """\
        tuning:
          dut:
            channels: {combined: 2}
            rss:
              equal: 3
        """, nic_facts("igb", [i % 2 for i in range(128)]))
    assert [(p.line, p.path) for p in problems] == [(5, "tuning.dut.rss.equal")]
    assert "equal 3 names RX queues up to rx-2, but eth1 on dut (driver igb) has 2 RX queue(s) after its " \
           "channels step" in problems[0].message


def test_weights_start_and_table_size_refused(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, """\
        tuning:
          dut:
            rss: {weight: [1, 1, 1], start: 2}
        """, igb_facts())
    assert [p.path for p in problems] == ["tuning.dut.rss.weight"]
    assert "start 2 weight 1 1 1 names RX queues up to rx-4" in problems[0].message
    small = nic_facts("igb", [0, 1, 2, 3])
    problems = problems_of(tmp_path, "tuning: {dut: {rss: {weight: [3, 3]}}}\n", small)
    assert ["the weights sum to 6, more than the 4 entries" in p.message for p in problems] == [True]


def test_a_table_that_cannot_be_restored_exactly_is_refused(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "tuning: {dut: {rss: {equal: 2}}}\n", nic_facts("igb", [0, 0, 1, 1, 0, 0, 1, 1]))
    assert len(problems) == 1 and problems[0].path == "tuning.dut.rss"
    assert "(0 0 1 1 0 0 1 1 (8 entries, not an even spread or weights)) cannot be written back" in problems[0].message
    assert "could not restore it exactly" in problems[0].message


def test_channels_below_the_original_table_refused(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "tuning: {dut: {channels: {combined: 2}, rss: {equal: 2}}}\n", igb_facts())
    assert ["names rx-3, but the channels step leaves 2 RX queue(s)" in p.message for p in problems] == [True]


def test_unsupported_drivers_refused_with_their_own_answer(tmp_path: Path) -> None:
    veth = nic_facts("veth", None, note="Cannot get RX ring count: Operation not supported")
    [problem] = problems_of(tmp_path, "tuning:\n  dut:\n    rss: {equal: 2}\n", veth)
    assert (problem.line, problem.path) == (3, "tuning.dut.rss")
    assert problem.message == ("refused: eth1 on dut (driver veth) has no RSS indirection table to tune; "
                               "`ethtool -x eth1` answered: Cannot get RX ring count: Operation not supported")
    virtio = nic_facts("virtio_net", None, note="RX flow hash indirection table for eth1 with 4 RX ring(s): "
                       "Operation not supported")
    [problem] = problems_of(tmp_path, "tuning:\n  dut:\n    rss: {equal: 2}\n", virtio)
    assert "driver virtio_net" in problem.message and "VIRTIO_NET_F_RSS" in problem.message


def test_key_and_function_refused_where_the_driver_cannot_restore_them(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, f"tuning: {{dut: {{rss: {{hkey: '{KEY}', hfunc: siphash}}}}}}\n", igb_facts())
    assert {p.path: p.message for p in problems} == {
        "tuning.dut.rss.hkey": "refused: eth1 on dut (driver igb) does not show its RSS hash key "
                               "(`ethtool -x`): labctl could not restore it",
        "tuning.dut.rss.hfunc": "refused: eth1 on dut (driver igb) lists hash functions crc32, toeplitz, "
                                "xor, not siphash"}
    short = "6d:5a:56:da"
    problems = problems_of(tmp_path, f"tuning: {{dut: {{rss: {{hkey: '{short}'}}}}}}\n", i40e_facts())
    assert ["the key has 4 bytes; the hash key of eth1 on dut (driver i40e) has 40" in p.message
            for p in problems] == [True]


def test_a_plannable_rss_has_no_problem(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "tuning: {dut: {rss: {equal: 2, start: 1}}}\n", igb_facts()) == []


# --------------------------------------------------------------------------- the expectation

IGB_S = fixture("nics/igb/format-string-ethtool-S.txt")


def bumped(text: str, extra: dict[str, int]) -> str:
    lines = []
    for line in text.splitlines():
        name, sep, value = line.rpartition(":")
        key = name.strip()
        lines.append(f"{name}: {int(value) + extra[key]}" if sep and key in extra else line)
    return "\n".join(lines)


def test_rx_queue_packets_from_the_drivers_counters() -> None:
    after = bumped(IGB_S, {"rx_queue_0_packets": 600, "rx_queue_1_packets": 300, "rx_queue_0_bytes": 1})
    assert rx_queue_packets(IGB_S, after, "igb") == {"rx-0": 600, "rx-1": 300}
    assert rx_queue_packets(IGB_S, after, "veth") == {} and rx_queue_packets(None, after, "igb") == {}


def test_rx_queue_share_evaluated() -> None:
    s = scenario(expect=[{"check": "rx_queue_share", "queues": ["rx-0", "rx-1"], "min": 0.8},
                         {"check": "rx_queue_share", "queues": ["rx-2"], "max": 0.05}])
    measured = {"hosts": {"dut": {"rx_queue_packets": {"rx-0": 600, "rx-1": 300, "rx-2": 100, "rx-3": 0}}}}
    first, second = evaluate(s, measured)
    assert first.passed and first.measured == "90.0% of 1000 (rx-0 600, rx-1 300, rx-2 100, rx-3 0)"
    assert not second.passed and second.bound == "<= 5%"
    [none] = evaluate(scenario(expect=[{"check": "rx_queue_share", "queues": ["rx-0"], "min": 0.4}]), {})
    assert not none.passed and none.measured == "no per-queue RX packets counted"


def test_rx_queue_share_refused_without_counters(tmp_path: Path) -> None:
    text = "snapshot: {probes: [interrupts]}\nexpect:\n  - {check: rx_queue_share, queues: [rx-0], min: 0.4}\n"
    problems = problems_of(tmp_path, text, nic_facts("veth", None))
    assert [p.line for p in problems] == [3, 3]
    assert "needs the ethtool_stats probe" in problems[0].message
    assert "does not know this driver's per-queue packet counters" in problems[1].message


def test_table_text_names_a_custom_table() -> None:
    assert table_text(None) == "no table"
    assert table_text(list(range(20))[::-1]).endswith("... (20 entries, not an even spread or weights)")


def test_facts_of_this_machine_capture() -> None:
    """The facts script's ethtool_x section as captured here: virtio_net without
    VIRTIO_NET_F_RSS answers with its table "Operation not supported" (exit 0), lo as veth."""
    eth0 = parse_facts("dut", fixture("facts/host-eth0-msi.txt"), "eth0", False).nic
    assert eth0.driver == "virtio_net" and eth0.rss_table is None
    assert eth0.rss_note == "RX flow hash indirection table for eth0 with 1 RX ring(s): Operation not supported"
    lo = parse_facts("dut", fixture("facts/host-lo-msi.txt"), "lo", True).nic
    assert lo.rss_note == "Cannot get RX ring count: Operation not supported"


def test_a_read_back_mismatch_names_both_tables() -> None:
    from labctl.execution.executor import describe_value
    step = rss_step(nic_facts("ixgbe", [i % 16 for i in range(128)], queues=63), {"equal": 8})
    assert step.readback is not None
    observed = step.readback.observed(fixture(IXGBE_X))
    assert describe_value(observed) == "equal 16 (128 entries)"
    assert describe_value(step.readback.expected) == "equal 8 (128 entries)"


# --------------------------------------------------------------------------- executed (fake NIC)

class FakeRssNic(FakeTransport):
    """A host whose NIC keeps an indirection table: `ethtool -X` (behind its guard) fills it as
    ethtool does unless `ignores` (a driver that accepts and does nothing), `ethtool -x` shows it."""

    def __init__(self, table: list[int], ignores: bool = False):
        super().__init__("dut")
        self.table, self.ignores = list(table), ignores
        self.configured = False          # the kernel's IFF_RXFH_CONFIGURED: a user wrote the table

    def respond(self, command: str) -> Res:
        if "ethtool -X eth1 " in command:
            words = shlex.split(command.split("ethtool -X eth1 ", 1)[1].split(";")[0])
            if "default" in words:       # the kernel's ethtool_rxfh_indir_default, no longer the user's
                self.table, self.configured = [i % 4 for i in range(len(self.table))], False
                return Res()
            self.configured = True
            start = int(words[words.index("start") + 1]) if "start" in words else 0
            spread = (Spread(start, equal=int(words[words.index("equal") + 1])) if "equal" in words else
                      Spread(start, weights=tuple(int(w) for w in words[words.index("weight") + 1:])))
            if not self.ignores:
                self.table = fill_table(len(self.table), spread)
            return Res()
        if command == "ethtool -x eth1":
            rows = [f"{i:5}: " + " ".join(f"{v:5}" for v in self.table[i:i + 8]) for i in range(0, len(self.table), 8)]
            return Res("RX flow hash indirection table for eth1 with 4 RX ring(s):\n" + "\n".join(rows) + "\n")
        return Res()


def run_rss(tmp_path: Path, host: FakeRssNic, rss: dict[str, Any]) -> Any:
    from labctl.execution.executor import Executor
    from labctl.runfiles.rundir import RunDir
    from tests.helpers.plans import RUN
    plan = plan_for(igb_facts(), {"rss": rss})
    tune = dataclasses.replace(plan, actions=tuple(a for a in plan.actions if a.phase in ("prepare", "tune")))
    return Executor(tune, {"dut": host, "loadgen": FakeTransport("loadgen")},
                    RunDir.create(tmp_path / "runs", RUN), lambda _: None, False).execute()


def test_executed_step_reads_back_and_restores_the_original_table(tmp_path: Path) -> None:
    host = FakeRssNic(igb_table(4))
    seen: list[list[int]] = []
    original_run = host.run

    def run(command: str, **kw: Any) -> Any:
        result = original_run(command, **kw)
        if command == "ethtool -x eth1":
            seen.append(list(host.table))
        return result
    host.run = run  # type: ignore[method-assign]
    outcome = run_rss(tmp_path, host, {"equal": 2})
    assert outcome.error is None
    assert seen == [[0, 1] * 64]                          # the read-back saw the tuned table
    assert host.table == [i % 4 for i in range(128)] and not host.configured   # the driver's again


def test_a_driver_that_ignores_the_table_fails_the_read_back_and_is_restored(tmp_path: Path) -> None:
    host = FakeRssNic(igb_table(4), ignores=True)
    outcome = run_rss(tmp_path, host, {"weight": [3, 1]})
    assert outcome.error is not None
    assert ("read-back mismatch after 'RSS of eth1: weight 3 1 (was weight 1 1 1 1 (128 entries), the driver's "
            "own: restored with `default`)': expected weight 3 1 (128 entries), host has weight 1 1 1 1 "
            "(128 entries)") in outcome.error
    assert [c for c in host.commands() if "ethtool -X" in c][-1].startswith("if ")   # the undo ran


# --------------------------------------------------------------------------- flow hash fields

def test_flow_hash_outputs_parse_to_ethtool_letters() -> None:
    assert parse_flow_hash(fixture("ethtool_rss/packagecloud-p1p1-rx-flow-hash-udp4.txt")) == "sd"
    assert parse_flow_hash(fixture("ethtool_rss/packagecloud-p1p1-rx-flow-hash-tcp4.txt")) == "sdfn"
    assert parse_flow_hash("UDP over IPV4 flows use these fields for computing Hash flow key:\nNone\n") == ""
    assert parse_flow_hash("Cannot get RX network flow hashing options: Operation not supported") is None
    assert parse_flow_hash("TCP over IPV4 flows use these fields for computing Hash flow key:\nIP SA\n"
                           "Something new\n") is None        # a field labctl cannot name: unknown
    eth0 = parse_facts("dut", fixture("facts/host-eth0-msi.txt"), "eth0", False).nic
    assert eth0.flow_hash == {"tcp4": "", "udp4": "", "tcp6": "", "udp6": ""}
    lo = parse_facts("dut", fixture("facts/host-lo-msi.txt"), "lo", True).nic
    assert lo.flow_hash["udp4"] == "!Cannot get RX network flow hashing options: Operation not supported"


def with_flow_hash(facts: HostFacts, **flows: str) -> HostFacts:
    return dataclasses.replace(facts, nic=dataclasses.replace(facts.nic, flow_hash=flows))


def test_flow_hash_step_quoted_read_back_and_undone() -> None:
    facts = with_flow_hash(igb_facts(), udp4="sd", tcp4="sdfn")
    plan = plan_for(facts, {"rss": {"flow_hash": {"udp4": "nfds"}}})
    [step] = [a for a in plan.actions if isinstance(a, Change) and "rx-flow-hash" in a.command]
    assert step.command == "ethtool -N eth1 rx-flow-hash udp4 sdfn"
    assert step.undo == "ethtool -N eth1 rx-flow-hash udp4 sd"
    assert step.description == "udp4 hash fields of eth1: sdfn (was sd)"
    assert step.readback is not None and step.readback.command == "ethtool -n eth1 rx-flow-hash udp4"
    assert step.readback.observed(fixture("ethtool_rss/packagecloud-p1p1-rx-flow-hash-tcp4.txt")) == "sdfn"
    assert not [a for a in plan.actions if isinstance(a, Change) and "ethtool -X" in a.command]


def test_flow_hash_refused_with_the_drivers_answer(tmp_path: Path) -> None:
    lo = parse_facts("dut", fixture("facts/host-lo-msi.txt"), "lo", True)
    veth = with_flow_hash(nic_facts("veth", None), **lo.nic.flow_hash)
    text = "tuning:\n  dut:\n    rss:\n      flow_hash: {udp4: sdfn}\n"
    [problem] = problems_of(tmp_path, text, veth)
    assert (problem.line, problem.path) == (4, "tuning.dut.rss.flow_hash.udp4")
    assert problem.message == ("refused: eth1 on dut (driver veth) does not tell its udp4 hash fields: "
                               "`ethtool -n eth1 rx-flow-hash udp4` answered: Cannot get RX network flow "
                               "hashing options: Operation not supported")
    eth0 = parse_facts("dut", fixture("facts/host-eth0-msi.txt"), "eth0", False)
    virtio = with_flow_hash(nic_facts("virtio_net", None), **eth0.nic.flow_hash)
    [problem] = problems_of(tmp_path, text, virtio)
    assert "hashes udp4 on no fields (`ethtool -n eth1 rx-flow-hash udp4`: None)" in problem.message
    assert problems_of(tmp_path, text, with_flow_hash(igb_facts(), udp4="sd")) == []
