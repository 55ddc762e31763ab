"""The load generator's ceiling (pure): what it can deliver in a scenario's mode, and whether a
scenario asks for more than a safe share of it.

A ceiling is measured by `labctl calibrate` (or by `labctl run` the first time it meets a mode
on a lab): the scenario's client, sending as fast as it can for a few seconds to the
scenario's server. It depends on the mode (protocol, payload, workers, flows or a new socket
per message, pinning), not on the rate asked, so it is recorded per mode in the lab state and
copied into every run's manifest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from labctl.cpulist import format_cpulist
from labctl.input.config import Loaded
from labctl.input.model import Load, Scenario

SAFE_SHARE = 0.8            # a paced rate above this share of the ceiling is warned about
CALIBRATION_SECONDS = 5.0
CEILINGS_KEY = "generator_ceilings"     # in LabState.facts: mode key -> Ceiling.to_json()


@dataclass(frozen=True)
class GeneratorMode:
    """How a scenario's client sends: what its ceiling depends on."""

    client_host: str
    server_host: str
    protocol: str
    payload: int
    workers: int
    flows: int | None                # None: a new socket (a new flow) per message
    cpus: str | None

    @property
    def key(self) -> str:
        flows = "new-socket" if self.flows is None else f"{self.flows}-flows"
        return (f"{self.client_host}->{self.server_host}/{self.protocol}/{self.payload}B/"
                f"{self.workers}w/{flows}/cpus={self.cpus or 'any'}")

    def describe(self) -> str:
        flows = "a new socket per message" if self.flows is None else f"{self.flows} flows"
        pinned = f", pinned to CPUs {self.cpus}" if self.cpus else ""
        return (f"{self.protocol.upper()} from {self.client_host} to {self.server_host}, {flows}, "
                f"{self.payload} B, {self.workers} worker(s){pinned}")


def mode_of(load: Load) -> GeneratorMode:
    c = load.client
    return GeneratorMode(c.host, load.server.host, load.server.protocol, c.payload, c.workers,
                         None if c.new_socket_per_message else c.flows,
                         format_cpulist(c.cpus) if c.cpus else None)


@dataclass(frozen=True)
class Ceiling:
    """One calibration: the client's achieved rate sending as fast as it could."""

    mode: str                      # GeneratorMode.key
    description: str               # GeneratorMode.describe()
    rate: float                    # messages per second the client sent
    received_rate: float           # ... and the server received
    worker_rates: list[float]
    seconds: float
    measured_at: str               # UTC, ISO 8601

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ceiling:
        return cls(**data)


def ceiling_from_results(mode: GeneratorMode, client: dict[str, Any], server: dict[str, Any] | None,
                         measured_at: str) -> Ceiling:
    """A Ceiling from the loadgen client's (and server's) result files of a calibration."""
    duration = float(client.get("duration") or 0.0)
    received = int(server.get("received", 0)) if server else 0
    return Ceiling(mode.key, mode.describe(), float(client.get("achieved_rate") or 0.0),
                   received / duration if duration > 0 else 0.0,
                   [round(float(w.get("achieved_rate") or 0.0), 1) for w in client.get("workers", [])],
                   round(duration, 3), measured_at)


def recorded_ceiling(lab_facts: dict[str, Any], load: Load) -> Ceiling | None:
    found = (lab_facts.get(CEILINGS_KEY) or {}).get(mode_of(load).key)
    return Ceiling.from_json(found) if found else None


def ceiling_warning(loaded: Loaded[Scenario], ceiling: Ceiling | None) -> str | None:
    """A warning, with the file:line of the rate, when a paced scenario asks for more than
    SAFE_SHARE of the measured ceiling in its mode."""
    load = loaded.model.load
    if load is None or ceiling is None or load.client.rate == "max":
        return None
    asked = load.client.rate
    if asked <= SAFE_SHARE * ceiling.rate:
        return None
    problem = loaded.problem(("load", "client", "rate"), (
        f"asks {asked} msg/s, {asked / ceiling.rate:.0%} of the load generator's measured ceiling "
        f"of {ceiling.rate:.0f} msg/s in this mode ({ceiling.description}; measured "
        f"{ceiling.measured_at}); above {SAFE_SHARE:.0%} of it the run may end inconclusive "
        "(generator-bound): ask for less, or `rate: max`"))
    return str(problem)


def generator_record(load: Load | None, ceiling: Ceiling | None) -> dict[str, Any] | None:
    """What a run's manifest says about its generator: mode, ceiling, asked share of it."""
    if load is None:
        return None
    mode = mode_of(load)
    asked = load.client.rate
    return {"mode": mode.key, "description": mode.describe(), "asked_rate": asked,
            "ceiling": ceiling.to_json() if ceiling else None,
            "asked_share_of_ceiling": (asked / ceiling.rate if ceiling and ceiling.rate and asked != "max"
                                       else None)}
