"""Integration: an RSS step against the netns lab's veth, over real sshd.

veth answers `ethtool -x` with "Cannot get RX ring count: Operation not supported": a scenario
that tunes RSS there is refused from the facts, before anything changes (exit 2), naming the
host, the interface, the driver and the driver's own answer; its other steps (an RPS mask) are
not run either, and the host's queues, masks and channels are as they were. Likewise an
`rx-flow-hash` step (`ethtool -n` answers "Operation not supported" on veth).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.labs import Lab, netns_lab
from tests.helpers.namespaces import in_ns

pytestmark = pytest.mark.integration


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from netns_lab(tmp_path, "rs")


def host_state(lab: Lab) -> dict[str, str]:
    dut = lab.ns("dut")
    script = ("for q in /sys/class/net/eth1/queues/rx-*; do echo \"$q $(cat $q/rps_cpus)\"; done; "
              "ethtool -l eth1; ethtool -x eth1 2>&1; ls -d /tmp/labctl-* 2>/dev/null; true")
    return {"dut": in_ns(dut, "sh", "-c", script)}


def test_rss_on_veth_refused_before_any_change(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert lab.labctl("up") == 0
    scenario = lab.dir / "rss.yaml"
    scenario.write_text("tuning:\n  dut:\n    rps: {rx-0: 1}\n    rss: {equal: 2}\nsettle: 0.5\n")
    flows = lab.dir / "flows.yaml"
    flows.write_text("tuning:\n  dut:\n    rss:\n      flow_hash: {udp4: sdfn}\n")
    before = host_state(lab)
    assert "Cannot get RX ring count: Operation not supported" in before["dut"]
    runs_before = sorted(lab.runs.iterdir()) if lab.runs.exists() else []
    for args in (["run", "--dry-run", str(scenario)], ["run", str(scenario)]):
        capsys.readouterr()
        assert lab.labctl(*args) == 2
        err = capsys.readouterr().err
        assert f"{scenario}:4:10: tuning.dut.rss: " in err and "tuning.dut.rss" in err, err
        assert ("refused: eth1 on dut (driver veth) has no RSS indirection table to tune; "
                "`ethtool -x eth1` answered: Cannot get RX ring count: Operation not supported") in err, err
        assert "nothing was changed" in err, err
        assert lab.labctl(*args[:-1], str(flows)) == 2
        err = capsys.readouterr().err
        assert (f"{flows}:4:25: tuning.dut.rss.flow_hash.udp4: refused: eth1 on dut (driver veth) does not "
                "tell its udp4 hash fields: `ethtool -n eth1 rx-flow-hash udp4` answered: Cannot get RX "
                "network flow hashing options: Operation not supported") in err, err
    assert host_state(lab) == before
    assert (sorted(lab.runs.iterdir()) if lab.runs.exists() else []) == runs_before
