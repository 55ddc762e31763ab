"""Malformed inventories and scenarios: every problem at once, with file:line:column and key
path, exit code 2, and no host touched (transports are never opened)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from labctl import cli
from labctl.errors import ValidationError
from labctl.input.config import load_inventory, load_scenario
from tests.helpers import NETNS_INVENTORY, ROOT

GOOD_INVENTORY = NETNS_INVENTORY

GOOD_SCENARIO = """\
tuning:
  dut:
    rps: {all: 1}
load:
  client: {rate: 100, duration: 1}
expect:
  - {check: loss, max: 0.1}
"""

# (scenario text, line, key path, words in the message)
BAD_SCENARIOS = [
    ("tuning:\n  dut:\n    rsp: {rx-0: 1}\n", 3, "tuning.dut.rsp", "did you mean 'rps'"),
    ("tuning:\n  dut:\n    rps: {rx-x: 1}\n", 3, "tuning.dut.rps.rx-x", "does not match"),
    ("tuning:\n  dut:\n    rps: {rx-0: 9-2}\n", 3, "tuning.dut.rps.rx-0", "descending"),
    ("tuning:\n  dut:\n    rps: {rx-0: abc}\n", 3, "tuning.dut.rps.rx-0", "not a CPU list"),
    ("tuning:\n  dut:\n    rps: {rx-0: -1}\n", 3, "tuning.dut.rps.rx-0", ">= 0"),
    ("tuning:\n  dut:\n    rps: {rx-0: true}\n", 3, "tuning.dut.rps.rx-0", "boolean"),
    ("tuning:\n  dut:\n    irq_affinity: {rx-0: none}\n", 3, "tuning.dut.irq_affinity.rx-0", "CPU list"),
    ("tuning:\n  dut:\n    irq_affinity: {all: 1}\n", 3, "tuning.dut.irq_affinity.all", "does not match"),
    ("tuning:\n  dut:\n    channels: {combined: 0}\n", 3, "tuning.dut.channels.combined", "greater than or equal to 1"),
    ("tuning:\n  dut:\n    channels: {combined: 2, rx: 2}\n", 3, "tuning.dut.channels", "exclusive"),
    ("tuning:\n  dut:\n    channels: {}\n", 3, "tuning.dut.channels", "combined"),
    ("tuning:\n  dut:\n    irqbalance: off\n", 3, "tuning.dut.irqbalance", "'stop'"),
    ("tuning:\n  nosuch:\n    rps: {all: 1}\n", 2, "tuning.nosuch", "no host 'nosuch'"),
    ("load:\n  client: {rate: 0, duration: 1}\n", 2, "load.client.rate", "greater than 0"),
    ("load:\n  client: {rate: -5, duration: 1}\n", 2, "load.client.rate", "greater than 0"),
    ("load:\n  client: {rate: fast, duration: 1}\n", 2, "load.client.rate", "integer"),
    ("load:\n  client: {rate: 10}\n", 2, "load.client", "'duration' is missing"),
    ("load:\n  client: {rate: 10, duration: 1, duraton: 2}\n", 2, "load.client.duraton", "did you mean 'duration'"),
    ("load:\n  client: {rate: 10, duration: 1, payload: 70000}\n", 2, "load.client.payload", "65507"),
    ("load:\n  client: {rate: 10, duration: 1, flows: 0}\n", 2, "load.client.flows", "greater than or equal to 1"),
    ("load:\n  server: {protocol: sctp}\n  client: {rate: 10, duration: 1}\n", 2, "load.server.protocol", "'udp'"),
    ("load:\n  server: {port: 99999}\n  client: {rate: 10, duration: 1}\n", 2, "load.server.port", "65535"),
    ("load:\n  server: {host: loadgen}\n  client: {rate: 10, duration: 1}\n", 2, "load.server.host", "different hosts"),
    ("load:\n  client: {host: ghost, rate: 10, duration: 1}\n", 2, "load.client.host", "no host 'ghost'"),
    ("expect:\n  - {check: nope}\n", 2, "expect[0].check", "unknown check 'nope'"),
    ("expect:\n  - {check: softirq_share, cpus: 1}\n", 2, "expect[0]", "min and/or max"),
    ("expect:\n  - {check: softirq_share, cpus: 1, min: 1.5}\n", 2, "expect[0].min", "less than or equal to 1"),
    ("expect:\n  - {check: softirq_share, cpus: 1, min: 0.9, max: 0.1}\n", 2, "expect[0]", "above max"),
    ("expect:\n  - {check: softirq_share, cpus: 1, mn: 0.5}\n", 2, "expect[0].mn", "did you mean 'min'"),
    ("expect:\n  - {check: loss, max: 0.1}\n", 2, "expect[0]", "needs a `load:` section"),
    ("expect:\n  - {check: softnet_share, column: bogus, cpus: 1, min: 0.1}\n", 2, "expect[0].column", "'processed'"),
    ("expect:\n  - {check: rps_mask, queue: rx-0}\n", 2, "expect[0]", "'equals' is missing"),
    ("snapshot:\n  probes: [interrupts, nope]\n", 2, "snapshot.probes[1]", "'interrupts'"),
    ("snapshot:\n  hosts: [ghost]\n", 2, "snapshot.hosts[0]", "no host 'ghost'"),
    ("profile: {cpus: 1}\n", 1, "profile", "needs a `load:` section"),
    ("load: {client: {rate: 1, duration: 1}}\nprofile: {frequency: 0}\n", 2, "profile.frequency", "greater than or equal to 1"),
    ("load: {client: {rate: 1, duration: 1}}\nprofile: {host: ghost}\n", 2, "profile.host", "no host 'ghost'"),
    ("load: {client: {rate: 1, duration: 1}}\nprofile: {cpus: some}\n", 2, "profile.cpus", "CPU"),
    ("keep_tuning: maybe\n", 1, "keep_tuning", "boolean"),
    ("settle: -1\n", 1, "settle", "greater than or equal to 0"),
    ("name: 'bad name!'\n", 1, "name", "pattern"),
    ("tunning: {}\n", 1, "tunning", "did you mean 'tuning'"),
    ("tuning:\n  dut:\n    rps: {all: 1}\n    rps: {all: 2}\n", 4, "tuning.dut.rps", "duplicate key"),
    ("- just\n- a list\n", 1, "", "mapping of keys"),
    ("tuning: [\n", 2, "", "YAML syntax"),
]

VM_HOSTS = ("  dut:\n    role: dut\n    data_address: 198.18.0.1/24\n    prepare:\n{prepare}"
            "  loadgen: {{role: loadgen, data_address: 198.18.0.2/24}}\n")
BAD_INVENTORIES = [
    ("lab: t\nprovider: netns\nhosts:\n" + VM_HOSTS.format(prepare="      irqbalance: disable\n"), 7,
     "hosts.dut.prepare", "provider netns"),
    ("lab: t\nprovider: libvirt\nhosts:\n" + VM_HOSTS.format(prepare="      irqbalance: stop\n"), 8,
     "hosts.dut.prepare.irqbalance", "'disable'"),
    ("lab: t\nprovider: libvirt\nhosts:\n" + VM_HOSTS.format(prepare="      tuned: {isolated_cores: 4-x}\n"), 8,
     "hosts.dut.prepare.tuned.isolated_cores", "CPU"),
    ("lab: t\nprovider: libvirt\nhosts:\n" + VM_HOSTS.format(prepare="      tuned: {profile: 'a;b'}\n"), 8,
     "hosts.dut.prepare.tuned.profile", "pattern"),
    ("lab: t\nprovider: libvirt\nhosts:\n" + VM_HOSTS.format(prepare="      tuned: {isolatd_cores: 4}\n"), 8,
     "hosts.dut.prepare.tuned.isolatd_cores", "did you mean 'isolated_cores'"),
    ("lab: t\nprovider: libvirt\nhosts:\n" + VM_HOSTS.format(
        prepare="      tuned: {variables: {'bad key': x}}\n"), 8, "hosts.dut.prepare.tuned.variables", "does not match"),
    ("lab: t\nprovider: netns\nhosts:\n  dut: {role: dut, data_address: 198.18.0.1/24}\n", 3, "hosts", "exactly one"),
    ("lab: t\nprovider: vmware\nhosts: {}\n", 2, "provider", "'netns'"),
    ("lab: T!\nprovider: netns\nhosts: {}\n", 1, "lab", "pattern"),
    ("lab: t\nprovider: netns\nhosts:\n  dut: {role: dut, data_address: 198.18.0.1}\n"
     "  loadgen: {role: loadgen, data_address: 198.18.0.2/24}\n", 4, "hosts.dut.data_address", "prefix"),
    ("lab: t\nprovider: netns\nhosts:\n  dut: {role: server, data_address: 198.18.0.1/24}\n"
     "  loadgen: {role: loadgen, data_address: 198.18.0.2/24}\n", 4, "hosts.dut.role", "'dut'"),
    ("lab: t\nprovider: ssh\nhosts:\n  dut: {role: dut, data_address: 198.18.0.1/24}\n"
     "  loadgen: {role: loadgen, data_address: 198.18.0.2/24}\n", 3, "hosts", "need an `ssh:` section"),
    ("lab: t\nprovider: netns\nnetns: {queues: 0}\nhosts: {}\n", 3, "netns.queues", "greater than or equal to 1"),
    ("lab: t\nprovider: netns\nhots: {}\n", 3, "hots", "did you mean 'hosts'"),
    ("lab: t\nprovider: netns\nhosts:\n  dut: {role: dut, data_address: 198.18.0.1/24, interface: 'a b'}\n"
     "  loadgen: {role: loadgen, data_address: 198.18.0.2/24}\n", 4, "hosts.dut.interface", "pattern"),
]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("text,line,key,words", BAD_SCENARIOS)
def test_bad_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str], no_host_touched: list[str],
                      text: str, line: int, key: str, words: str) -> None:
    inventory = _write(tmp_path, "inventory.yaml", GOOD_INVENTORY)
    scenario = _write(tmp_path, "bad.yaml", text)
    code = cli.main(["-i", str(inventory), "run", str(scenario)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    expected = f"{scenario}:{line}:"
    matching = [line for line in err.splitlines() if expected in line and words in line]
    assert matching, f"no line with {expected!r} and {words!r} in:\n{err}"
    assert key in matching[0]


@pytest.mark.parametrize("text,line,key,words", BAD_INVENTORIES)
def test_bad_inventory(tmp_path: Path, capsys: pytest.CaptureFixture[str], no_host_touched: list[str],
                       text: str, line: int, key: str, words: str) -> None:
    inventory = _write(tmp_path, "inventory.yaml", text)
    scenario = _write(tmp_path, "ok.yaml", GOOD_SCENARIO)
    code = cli.main(["-i", str(inventory), "run", str(scenario)])
    err = capsys.readouterr().err
    assert code == 2, err
    matching = [text for text in err.splitlines() if f"{inventory}:{line}:" in text and words in text]
    assert matching, err
    assert key in matching[0]


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    inventory = load_inventory(_write(tmp_path, "inventory.yaml", GOOD_INVENTORY)).model
    scenario = _write(tmp_path, "bad.yaml", "tuning:\n  dut:\n    rsp: 1\nload:\n  client: {rate: 0}\n")
    with pytest.raises(ValidationError) as info:
        load_scenario(scenario, inventory)
    paths = {p.path for p in info.value.problems}
    assert {"tuning.dut.rsp", "load.client.rate", "load.client"} <= paths


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["-i", str(tmp_path / "nope.yaml"), "status"])
    assert code == 2
    assert "cannot read" in capsys.readouterr().err


def test_shipped_files_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[2]
    netns = sorted(str(p) for p in (root / "scenarios").glob("netns_*.yaml"))
    vm = sorted(str(p) for p in (root / "scenarios").glob("*.yaml") if not p.name.startswith("netns_"))
    assert netns and {Path(p).stem for p in vm} >= {"baseline", "combined2", "irq_pin", "rps_isolated", "rps_cpu1"}
    assert cli.main(["-i", str(root / "inventories" / "netns.yaml"), "validate", *netns]) == 0
    assert cli.main(["-i", str(root / "inventory.yaml"), "validate", *vm]) == 0
    assert cli.main(["-i", str(root / "inventories" / "nic-models.yaml"), "validate",
                     str(root / "scenarios" / "vmxnet3_irq_pin.yaml")]) == 0


def test_schema_is_generated_from_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    assert cli.main(["schema"]) == 0
    schemas = json.loads(capsys.readouterr().out)
    assert schemas["scenario"]["additionalProperties"] is False
    assert "rps" in schemas["scenario"]["$defs"]["HostTuning"]["properties"]
    assert set(schemas["inventory"]["properties"]["provider"]["enum"]) == {"netns", "libvirt", "ssh"}


def test_sweep_schema_is_the_scenarios_plus_the_sweep_keys(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    assert cli.main(["schema", "sweep"]) == 0
    sweep = json.loads(capsys.readouterr().out)
    assert cli.main(["schema", "scenario"]) == 0
    scenario = json.loads(capsys.readouterr().out)
    assert sweep["additionalProperties"] is False and sweep["$defs"] == scenario["$defs"]
    assert set(sweep["properties"]) == set(scenario["properties"]) | {"matrix", "repeat", "order", "seed"}
    example = yaml.safe_load((ROOT / "scenarios" / "netns_sweep_rps.yaml").read_text())
    assert set(example) <= set(sweep["properties"]) and "matrix" in example
    assert sweep["properties"]["order"]["enum"] == ["sequential", "shuffled"]
