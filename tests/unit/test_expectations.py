"""Expectations: each check kind against measured deltas, passing, failing and at the edges."""

from __future__ import annotations

import json
from typing import Any

import pytest

from labctl.analysis.expectations import ExpectationResult, evaluate, share_of, verdict
from labctl.input.model import Scenario

LOAD = {"client": {"rate": 100, "duration": 1}}


def check(expectation: dict[str, Any], measured: dict[str, Any]) -> ExpectationResult:
    scenario = Scenario.model_validate({"load": LOAD, "expect": [expectation]})
    return evaluate(scenario, measured)[0]      # a paced load may add the implicit rate check


def host(**data: Any) -> dict[str, Any]:
    return {"hosts": {"dut": data}}


NET_RX = host(softirqs={"NET_RX": {0: 10, 1: 90, 2: 0, 3: 0}, "NET_TX": {0: 0, 1: 0}})


# --------------------------------------------------------------------------- softirq_share

@pytest.mark.parametrize("bounds,passed,bound", [
    ({"min": 0.9}, True, ">= 90%"),
    ({"min": 0.91}, False, ">= 91%"),
    ({"max": 0.9}, True, "<= 90%"),
    ({"max": 0.5}, False, "<= 50%"),
    ({"min": 0.5, "max": 0.95}, True, ">= 50% and <= 95%"),
    ({"min": 0.95, "max": 1.0}, False, ">= 95% and <= 100%"),
])
def test_softirq_share(bounds: dict[str, float], passed: bool, bound: str) -> None:
    result = check({"check": "softirq_share", "cpus": 1, **bounds}, NET_RX)
    assert (result.passed, result.bound, result.measured) == (passed, bound, "90.0% of 100")
    assert result.description == "dut NET_RX on CPUs 1"
    assert result.check == "softirq_share"


def test_softirq_share_other_softirq_and_cpu_set() -> None:
    measured = host(softirqs={"NET_TX": {0: 1, 1: 1, 2: 2}})
    result = check({"check": "softirq_share", "softirq": "NET_TX", "cpus": "1-2", "min": 0.75},
                   measured)
    assert result.passed and result.measured == "75.0% of 4"
    assert result.description == "dut NET_TX on CPUs 1-2"


@pytest.mark.parametrize("bounds,passed", [
    ({"min": 0.5}, False), ({"max": 0.05}, True), ({"min": 0.0, "max": 0.5}, True),
    ({"min": 0.1, "max": 0.5}, False),
])
def test_zero_total_passes_only_upper_bounds(bounds: dict[str, float], passed: bool) -> None:
    result = check({"check": "softirq_share", "cpus": 1, **bounds},
                   host(softirqs={"NET_RX": {0: 0, 1: 0}}))
    assert result.passed is passed
    assert result.measured == "none counted (dut NET_RX)"


@pytest.mark.parametrize("measured", [{}, {"hosts": {}}, host(), host(softirqs={"TIMER": {0: 5}})])
def test_softirq_share_missing_data_counts_as_zero(measured: dict[str, Any]) -> None:
    assert not check({"check": "softirq_share", "cpus": 1, "min": 0.1}, measured).passed
    assert check({"check": "softirq_share", "cpus": 1, "max": 0.1}, measured).passed


def test_other_host() -> None:
    measured = {"hosts": {"dut": {"softirqs": {"NET_RX": {0: 1}}},
                          "loadgen": {"softirqs": {"NET_RX": {1: 1}}}}}
    result = check({"check": "softirq_share", "host": "loadgen", "cpus": 1, "min": 1.0}, measured)
    assert result.passed and result.description == "loadgen NET_RX on CPUs 1"


# --------------------------------------------------------------------------- softnet_share

SOFTNET = host(softnet={0: {"processed": 30, "received_rps": 0},
                        1: {"processed": 70, "received_rps": 69},
                        2: {"processed": 0}})       # a kernel without the column: missing key


@pytest.mark.parametrize("expectation,passed,measured", [
    ({"column": "processed", "cpus": 1, "min": 0.7}, True, "70.0% of 100"),
    ({"column": "processed", "cpus": 0, "min": 0.5}, False, "30.0% of 100"),
    ({"column": "received_rps", "cpus": 1, "min": 0.99}, True, "100.0% of 69"),
    ({"column": "received_rps", "cpus": 0, "max": 0.05}, True, "0.0% of 69"),
    ({"column": "dropped", "cpus": 0, "max": 0.0}, True, "none counted (dut softnet dropped)"),
    ({"column": "dropped", "cpus": 0, "min": 0.0}, True, "none counted (dut softnet dropped)"),
    ({"column": "time_squeeze", "cpus": 0, "min": 0.01}, False, "none counted (dut softnet time_squeeze)"),
])
def test_softnet_share(expectation: dict[str, Any], passed: bool, measured: str) -> None:
    result = check({"check": "softnet_share", **expectation}, SOFTNET)
    assert (result.passed, result.measured) == (passed, measured)


# --------------------------------------------------------------------------- irq_confined

IRQS = host(nic_irqs=[
    {"queue": 0, "irq": "37", "name": "virtio1-input.0", "per_cpu": {1: 0, 2: 6294, 3: 0}},
    {"queue": 1, "irq": "39", "name": "virtio1-input.1", "per_cpu": {1: 0, 2: 6, 3: 5750}},
    {"queue": 2, "irq": "41", "name": "virtio1-input.2", "per_cpu": {1: 0, 2: 0, 3: 0}},
])


@pytest.mark.parametrize("expectation,passed,measured", [
    ({"queues": ["rx-0"], "cpus": 2}, True, "100.0% of 6294"),
    ({"queues": ["rx-1"], "cpus": 3}, False, "99.9% of 5756"),
    ({"queues": ["rx-1"], "cpus": 3, "min_share": 0.99}, True, "99.9% of 5756"),
    ({"queues": "all", "cpus": "2-3"}, True, "100.0% of 12050"),
    ({"cpus": 2, "min_share": 0.5}, True, "52.3% of 12050"),
    ({"queues": ["rx-2"], "cpus": 2}, False, "none counted (dut NIC RX IRQs (rx-2))"),
    ({"queues": ["rx-7"], "cpus": 2, "min_share": 0.0}, True, "none counted (dut NIC RX IRQs (rx-7))"),
])
def test_irq_confined(expectation: dict[str, Any], passed: bool, measured: str) -> None:
    result = check({"check": "irq_confined", **expectation}, IRQS)
    assert (result.passed, result.measured) == (passed, measured)


def test_irq_confined_nic_without_irqs_fails() -> None:
    result = check({"check": "irq_confined", "cpus": 1, "min_share": 0.0}, host(nic_irqs=[]))
    assert not result.passed
    assert result.measured == "this NIC has no IRQs" and result.bound == ">= 0%"
    assert result.description == "dut NIC RX IRQs (all queues) on CPUs 1"


# --------------------------------------------------------------------------- loss, rate

def lg(**data: Any) -> dict[str, Any]:
    return {"loadgen": {"sent": 1000, "received": 990, "loss": 0.01, "asked_rate": 2000,
                        "achieved_rate": 1990.4, **data}}


@pytest.mark.parametrize("maximum,passed", [(0.01, True), (0.02, True), (0.009, False), (0.0, False)])
def test_loss(maximum: float, passed: bool) -> None:
    result = check({"check": "loss", "max": maximum}, lg())
    assert result.passed is passed
    assert result.measured == "1.00% (990 of 1000 received)"
    assert result.bound == f"<= {maximum:.2%}"


def test_zero_loss() -> None:
    assert check({"check": "loss", "max": 0.0}, lg(received=1000, loss=0.0)).passed


@pytest.mark.parametrize("measured", [{}, {"loadgen": None}, lg(loss=None)])
def test_loss_without_loadgen_results_fails(measured: dict[str, Any]) -> None:
    result = check({"check": "loss", "max": 1.0}, measured)
    assert not result.passed and result.measured == "no loadgen results"


@pytest.mark.parametrize("fraction,passed", [(0.99, True), (0.995, True), (0.996, False), (1.0, False)])
def test_rate(fraction: float, passed: bool) -> None:
    result = check({"check": "rate", "min_fraction": fraction}, lg())
    assert result.passed is passed
    assert result.measured == "1990/s of 2000/s (99.5%)"


@pytest.mark.parametrize("measured", [{}, {"loadgen": None}])
def test_rate_without_loadgen_results_fails(measured: dict[str, Any]) -> None:
    result = check({"check": "rate", "min_fraction": 0.0}, measured)
    assert not result.passed and result.measured == "no loadgen results"
    assert result.subject == "generator"


@pytest.mark.parametrize("measured", [lg(asked_rate=None), lg(asked_rate=0)])
def test_rate_fraction_without_an_asked_rate_fails(measured: dict[str, Any]) -> None:
    result = check({"check": "rate", "min_fraction": 0.0}, measured)
    assert not result.passed and result.measured == "1990/s, no asked rate (as fast as it can)"


@pytest.mark.parametrize("minimum,passed", [(1990, True), (1990.4, True), (1991, False)])
def test_rate_minimum_in_messages_per_second(minimum: float, passed: bool) -> None:
    result = check({"check": "rate", "min": minimum}, lg(asked_rate=None))
    assert result.passed is passed and result.subject == "generator"
    assert result.measured == "1990/s (as fast as it can)" and result.bound == f">= {minimum:g}/s"


def test_rate_required_judges_the_experiment_not_the_generator() -> None:
    result = check({"check": "rate", "min_fraction": 0.999, "required": True}, lg())
    assert not result.passed and result.subject == "dut" and result.bound.endswith("(required)")


def test_rate_needs_a_bound() -> None:
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="min_fraction .* or min"):
        Scenario.model_validate({"load": LOAD, "expect": [{"check": "rate"}]})


def test_a_paced_load_without_a_rate_check_gets_the_implicit_one() -> None:
    scenario = Scenario.model_validate({"load": LOAD, "expect": [{"check": "loss", "max": 0.05}]})
    loss, implicit = evaluate(scenario, lg(achieved_rate=1500.0))
    assert loss.passed and not implicit.passed and implicit.subject == "generator"
    assert implicit.description.endswith("(implicit)") and implicit.bound == ">= 90% of asked"
    as_fast = Scenario.model_validate({"load": {"client": {"rate": "max", "duration": 1}},
                                       "expect": [{"check": "loss", "max": 0.05}]})
    assert len(evaluate(as_fast, lg(asked_rate=None))) == 1


# --------------------------------------------------------------------------- verdict

def _result(passed: bool, subject: str = "dut") -> ExpectationResult:
    return ExpectationResult("x", "what", "1990/s of 2000/s (99.5%)", "b", passed, subject)


@pytest.mark.parametrize("results,status", [
    ([_result(True), _result(True, "generator")], "passed"),
    ([_result(True), _result(False, "generator")], "inconclusive"),
    ([_result(False), _result(False, "generator")], "failed"),
    ([_result(False), _result(True, "generator")], "failed"),
    ([], "passed"),
])
def test_verdict(results: list[ExpectationResult], status: str) -> None:
    assert verdict(results).status == status


def test_an_inconclusive_verdict_says_why_with_the_ceiling() -> None:
    judged = verdict([_result(True), _result(False, "generator")], {"sent": 16340}, ceiling=1712.4)
    assert judged.reason == ("generator-bound: 1990/s of 2000/s (99.5%); every DUT check passed (1/1) "
                             "on the 16340 messages actually sent; the generator's measured ceiling "
                             "in this mode: 1712 msg/s")
    failed = verdict([_result(False), _result(False, "generator")])
    assert failed.reason == "1 of 1 DUT check(s) failed (and the load generator fell short: 1990/s of 2000/s (99.5%))"


# --------------------------------------------------------------------------- rps_mask

RPS = host(rps_after={0: "1", 1: "1", 2: ""})


@pytest.mark.parametrize("expectation,passed,measured,bound", [
    ({"queue": "rx-0", "equals": 1}, True, "rx-0: 1", "== 1"),
    ({"queue": "rx-0", "equals": "1-2"}, False, "rx-0: 1", "== 1-2"),
    ({"queue": "rx-2", "equals": "none"}, True, "rx-2: none", "== none"),
    ({"queue": "rx-2", "equals": 1}, False, "rx-2: none", "== 1"),
    ({"queue": "rx-5", "equals": "none"}, False, "rx-5: missing", "== none"),
    ({"queue": "all", "equals": 1}, False, "rx-0: 1, rx-1: 1, rx-2: none", "== 1"),
])
def test_rps_mask(expectation: dict[str, Any], passed: bool, measured: str, bound: str) -> None:
    result = check({"check": "rps_mask", **expectation}, RPS)
    assert (result.passed, result.measured, result.bound) == (passed, measured, bound)
    assert result.description == f"dut read-back RPS mask of {expectation['queue']}"


def test_rps_mask_all_with_every_queue_equal() -> None:
    measured = host(rps_after={0: "1", 1: "1"})
    assert check({"check": "rps_mask", "queue": "all", "equals": 1}, measured).passed
    off = host(rps_after={0: "", 1: "", 2: "", 3: ""})
    result = check({"check": "rps_mask", "queue": "all", "equals": "none"}, off)
    assert result.passed and result.measured == "rx-0: none, rx-1: none, rx-2: none, rx-3: none"


def test_rps_mask_all_with_no_queues_fails() -> None:
    result = check({"check": "rps_mask", "queue": "all", "equals": "none"}, host(rps_after={}))
    assert not result.passed and result.measured == "no queues"
    assert not check({"check": "rps_mask", "queue": "all", "equals": "none"}, {}).passed


# --------------------------------------------------------------------------- the whole list

def test_evaluate_keeps_order_and_results_are_json() -> None:
    scenario = Scenario.model_validate({"load": LOAD, "expect": [
        {"check": "loss", "max": 0.1}, {"check": "softirq_share", "cpus": 1, "min": 0.5},
        {"check": "rps_mask", "queue": "rx-0", "equals": 1}]})
    results = evaluate(scenario, {**NET_RX, **lg()} | {"hosts": {"dut": {**NET_RX["hosts"]["dut"],
                                                                        **RPS["hosts"]["dut"]}}})
    assert [r.check for r in results] == ["loss", "softirq_share", "rps_mask", "rate"]   # + implicit
    assert all(r.passed for r in results)
    data = json.loads(json.dumps([r.to_json() for r in results]))
    assert set(data[0]) == {"check", "description", "measured", "bound", "passed", "subject"}
    assert evaluate(Scenario.model_validate({}), {}) == []


def test_share_of() -> None:
    assert share_of({0: 1, 1: 3}, frozenset({1})) == (0.75, 4)
    assert share_of({}, frozenset({1})) == (0.0, 0)


# --------------------------------------------------------------------------- queue_irqs, softirq_follows_irqs

TWO_QUEUES = host(nic_irqs=[{"queue": 0, "per_cpu": {0: 300, 2: 3}}, {"queue": 1, "per_cpu": {4: 700}},
                      {"queue": 2, "per_cpu": {}}, {"queue": 3, "per_cpu": {}}],
            softirqs={"NET_RX": {0: 280, 1: 5, 2: 1, 4: 690, 6: 24}})


@pytest.mark.parametrize("queues, bounds, passed, measured", [
    (["rx-0", "rx-1"], {"min": 0.99}, True, "100.0% of 1003 (rx-0 303, rx-1 700, rx-2 0, rx-3 0)"),
    (["rx-1"], {"min": 0.1}, True, "69.8% of 1003"),
    (["rx-2", "rx-3"], {"min": 0.1}, False, "0.0% of 1003"),
    (["rx-2", "rx-3"], {"max": 0.0}, True, "0.0% of 1003"),
])
def test_queue_irqs(queues: list[str], bounds: dict[str, float], passed: bool, measured: str) -> None:
    result = check({"check": "queue_irqs", "queues": queues, **bounds}, TWO_QUEUES)
    assert result.passed is passed and result.measured.startswith(measured)
    assert result.description == f"dut NIC RX IRQs taken by {', '.join(queues)}"


def test_queue_irqs_without_irqs() -> None:
    assert not check({"check": "queue_irqs", "queues": ["rx-0"], "min": 0.5}, host(nic_irqs=[])).passed
    assert check({"check": "queue_irqs", "queues": ["rx-0"], "max": 0.5}, host()).passed


def test_softirq_follows_irqs_ignores_a_stray_irq() -> None:
    result = check({"check": "softirq_follows_irqs", "min": 0.95}, TWO_QUEUES)
    assert result.description == "dut NET_RX on the CPUs that took the NIC's IRQs (0,4)"   # CPU 2: 3 of 1003
    assert result.measured == "97.0% of 1000" and result.passed


def test_softirq_follows_irqs_with_rps_cpus_and_bounds() -> None:
    result = check({"check": "softirq_follows_irqs", "also_cpus": 1, "min": 0.975}, TWO_QUEUES)
    assert result.description.endswith("(0,4) + 1") and result.measured == "97.5% of 1000" and result.passed
    assert not check({"check": "softirq_follows_irqs", "max": 0.5}, TWO_QUEUES).passed
    empty = check({"check": "softirq_follows_irqs", "min": 0.1}, host(nic_irqs=[], softirqs={}))
    assert not empty.passed and empty.measured == "no NIC RX IRQs counted"
