"""Integration: queue <-> IRQ discovery on the netns lab's veth, over real sshd.

veth has no device and no IRQs: the facts record no vectors and the method "none", the
netdev netlink family is asked from inside the namespace, and an `irq_affinity` step stays
"not applicable" (planned, never written to the host-wide /proc/irq) as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers.labs import Lab, netns_lab

pytestmark = pytest.mark.integration


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from netns_lab(tmp_path, "nq")


def test_veth_has_no_vectors_and_irq_pinning_stays_not_applicable(
        lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert lab.labctl("up") == 0
    scenario = lab.dir / "pin.yaml"
    scenario.write_text(yaml.safe_dump({"tuning": {"dut": {"irq_affinity": {"rx-0": 1, "rx-1": 1}}},
                                        "settle": 0.5}))
    capsys.readouterr()
    assert lab.labctl("run", "--dry-run", str(scenario)) == 0
    out = capsys.readouterr().out
    assert "IRQ affinity of rx-0 -> CPUs 1: not applicable" in out and "veth has no IRQs" in out
    assert "refused" not in out

    assert lab.labctl("run", str(scenario)) == 0, capsys.readouterr()
    manifest = json.loads((lab.newest_run() / "manifest.json").read_text())
    nic = manifest["facts"]["dut"]["nic"]
    assert (nic["driver"], nic["irq_method"], nic["vectors"], nic["rx_irqs"]) == ("veth", "none", {}, {})
    assert nic["msi_listed"] is False and nic["unmapped_vectors"] == {}
    # RSS facts: veth has no indirection table and no flow hashing; the driver's answers are kept
    assert nic["rss_table"] is None and nic["rss_note"] == "Cannot get RX ring count: Operation not supported"
    assert nic["flow_hash"]["udp4"] == "!Cannot get RX network flow hashing options: Operation not supported"
    # the namespace's own netlink answered (kernel 6.8+) or said why not (older kernels)
    assert nic["netlink"].startswith(("netdev netlink", "netdev netlink not available"))
    assert not [w for w in manifest.get("warnings", []) if "IRQ vector" in w]
