"""Host preparation planning (pure) against facts captured from real Debian 12 guests: one
prepared by labctl (tuned realtime isolating 4-7, irqbalance disabled), one as it booted."""

from __future__ import annotations

import dataclasses

import pytest

from labctl.input.model import HostPrepare
from labctl.plan import hostprep
from labctl.plan.hostprep import PrepFacts
from tests.helpers import FIXTURES

PREP = FIXTURES / "prep"
SPEC = HostPrepare.model_validate({"irqbalance": "disable",
                                   "tuned": {"profile": "realtime", "isolated_cores": "4-7"}})


def facts(name: str) -> PrepFacts:
    return hostprep.parse_prep_facts("dut", (PREP / name).read_text())


@pytest.fixture
def prepared() -> PrepFacts:
    return facts("debian12-realtime-4-7.txt")


@pytest.fixture
def fresh() -> PrepFacts:
    return facts("debian12-as-booted.txt")


def test_parse_prepared_guest(prepared: PrepFacts) -> None:
    assert prepared.isolated == frozenset({4, 5, 6, 7})
    assert prepared.cpus_online == frozenset(range(8))
    assert prepared.pid1_cpus_allowed == frozenset({0, 1, 2, 3})
    assert prepared.default_smp_affinity == frozenset({0, 1, 2, 3})
    assert prepared.tuned_profile == "realtime" and prepared.profile_exists
    assert (prepared.irqbalance_active, prepared.irqbalance_enabled) == ("inactive", "disabled")
    assert prepared.systemd and prepared.tuned_installed and prepared.nic_max_combined == 4
    assert prepared.sysctls["net.core.busy_poll"] == "50"
    assert "isolated_cores=4-7" in (prepared.variables_text or "")


def test_parse_guest_as_booted(fresh: PrepFacts) -> None:
    assert fresh.isolated == frozenset() and fresh.tuned_profile == "virtual-guest"
    assert (fresh.irqbalance_active, fresh.irqbalance_enabled) == ("active", "enabled")
    assert fresh.pid1_cpus_allowed == frozenset(range(8))
    assert fresh.sysctls["net.core.busy_poll"] == "0"


def test_prepared_host_needs_nothing(prepared: PrepFacts) -> None:
    assert hostprep.prep_steps(SPEC, prepared) == []
    assert hostprep.reboot_reason(SPEC, prepared) == ""
    assert hostprep.verify(SPEC, prepared) == []


def test_fresh_host_gets_every_step_and_a_reboot(fresh: PrepFacts) -> None:
    steps = hostprep.prep_steps(SPEC, fresh)
    assert [s.command for s in steps if s.command] == ["systemctl disable --now irqbalance",
                                                      "tuned-adm profile realtime"]
    written = next(s for s in steps if s.write_path)
    assert written.write_path == "/etc/tuned/realtime-variables.conf"
    assert "isolated_cores=4-7" in written.content and "netdev_queue_count=4" in written.content
    assert "isolate_managed_irq=Y" in written.content          # the rest of the file is kept
    assert "no CPU" in hostprep.reboot_reason(SPEC, fresh)
    problems = hostprep.verify(SPEC, fresh)
    assert any("isolcpus" in p for p in problems) and any("PID 1" in p for p in problems)
    assert any("irqbalance" in p for p in problems) and any("virtual-guest" in p for p in problems)


def test_isolation_change_alone_means_reboot_without_steps(prepared: PrepFacts) -> None:
    spec = HostPrepare.model_validate({"tuned": {"isolated_cores": "6-7"}})
    steps = hostprep.prep_steps(spec, prepared)
    assert [s.description.split()[0] for s in steps] == ["set", "activate"]
    assert "4-7" in hostprep.reboot_reason(spec, prepared)


def test_leave_irqbalance_alone(fresh: PrepFacts) -> None:
    spec = HostPrepare.model_validate({"tuned": {"isolated_cores": "4-7"}})
    assert not any("irqbalance" in s.description for s in hostprep.prep_steps(spec, fresh))


def test_set_variables_replaces_appends_and_is_idempotent() -> None:
    text = "# isolated_cores=1\nisolated_cores=${f:calc_isolated_cores:1}\n\n# netdev_queue_count=4\nother=x\n"
    once = hostprep.set_variables(text, {"isolated_cores": "4-7", "netdev_queue_count": "4"})
    assert once.splitlines() == ["# isolated_cores=1", "isolated_cores=4-7", "", "# netdev_queue_count=4",
                                 "other=x", "", "netdev_queue_count=4"]
    assert hostprep.set_variables(once, {"isolated_cores": "4-7", "netdev_queue_count": "4"}) == once
    assert hostprep.set_variables(None, {"a": "1"}) == "a=1\n"


@pytest.mark.parametrize("isolated, message", [
    ("4-9", "CPU(s) 8-9 do not exist on dut (online: 0-7)"),
    ("0-7", "leaves none for housekeeping"),
])
def test_isolated_cores_the_host_cannot_take(fresh: PrepFacts, isolated: str, message: str) -> None:
    spec = HostPrepare.model_validate({"tuned": {"isolated_cores": isolated}})
    problems = hostprep.spec_problems(spec, fresh)
    assert [(path, message in text) for path, text in problems] == [(("tuned", "isolated_cores"), True)]


def test_host_without_tuned_systemd_or_profile(fresh: PrepFacts) -> None:
    spec = HostPrepare.model_validate({"tuned": {"profile": "no-such", "netdev_queue_count": 8}})
    bare = dataclasses.replace(fresh, systemd=False, profile_exists=False)
    paths = [path for path, _ in hostprep.spec_problems(spec, bare)]
    assert paths == [(), ("tuned", "profile"), ("tuned", "netdev_queue_count")]
    no_tuned = dataclasses.replace(fresh, tuned_installed=False)
    assert [p for p, _ in hostprep.spec_problems(spec, no_tuned)][0] == ("tuned",)


def test_sysctl_changes_leave_out_counters(fresh: PrepFacts, prepared: PrepFacts) -> None:
    changes = hostprep.sysctl_changes(fresh.sysctls, prepared.sysctls)
    assert changes["net.core.busy_poll"] == {"before": "0", "after": "50"}
    assert changes["net.core.busy_read"] == {"before": "0", "after": "50"}
    assert changes["kernel.sched_rt_runtime_us"]["after"] == "-1"
    assert not [k for k in changes if k.startswith(("fs.", "kernel.random", "kernel.ns_last_pid"))]


def test_unprepare_puts_back_what_was_recorded(fresh: PrepFacts, prepared: PrepFacts) -> None:
    original = hostprep.original_state(SPEC, fresh)
    steps = hostprep.unprepare_steps(original, prepared)
    assert [s.command for s in steps if s.command] == ["tuned-adm profile virtual-guest",
                                                      "systemctl enable irqbalance",
                                                      "systemctl start irqbalance"]
    assert next(s for s in steps if s.write_path).content == fresh.variables_text
    assert "originally none" in hostprep.unprepare_reboot_reason(original, prepared)
    assert hostprep.unprepare_steps(original, fresh) == []
    assert hostprep.unprepare_reboot_reason(original, fresh) == ""


def test_unprepare_removes_a_variables_file_labctl_created(prepared: PrepFacts) -> None:
    original = dict(hostprep.original_state(SPEC, prepared), variables_text=None)
    steps = hostprep.unprepare_steps(original, prepared)
    assert steps[0].command == "rm -f /etc/tuned/realtime-variables.conf"


def test_rendered_steps_show_the_file_change_and_the_reboot(fresh: PrepFacts) -> None:
    lines = hostprep.render_steps("dut", hostprep.prep_steps(SPEC, fresh), hostprep.reboot_reason(SPEC, fresh))
    text = "\n".join(lines)
    assert "-isolated_cores=${f:calc_isolated_cores:1}" in text and "+isolated_cores=4-7" in text
    assert "$ tuned-adm profile realtime" in text and "reboot:" in lines[-1]
    assert "isolate_managed_irq" not in text                 # unchanged lines are not shown


def test_verified_facts_for_the_manifest(prepared: PrepFacts) -> None:
    verified = hostprep.verified_facts(prepared)
    assert verified["isolcpus"] == "managed_irq,domain,4-7"
    assert (verified["isolated"], verified["pid1_cpus_allowed"], verified["default_smp_affinity"]) == \
        ("4-7", "0-3", "0-3")
