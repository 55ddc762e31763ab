"""Run files (pure, layer "runfiles"): typed models of the JSON files of a run directory.

``manifest.json`` (Manifest), ``steps.json`` (StepsRecord), ``restore.json`` (Journal) and
``summary.json`` (Summary). Each file carries ``schema_version``; files written before it
existed are version 1 and are migrated on load; a file of a newer version is refused with one
RunError naming the file, its version and the versions this labctl reads.

CPU-indexed maps are ``dict[int, ...]`` here, once: JSON's string keys are validated into ints,
so no reader normalises keys again. Every model accepts (and writes back) keys it does not
name, so a file stays readable by the labctl that wrote it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from labctl import __version__
from labctl.errors import RunError

SCHEMA_VERSION = 2
READABLE_VERSIONS = range(1, SCHEMA_VERSION + 1)
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

JsonObject = dict[str, JsonValue]
Migration = Callable[[JsonObject], JsonObject]


class Record(BaseModel):
    """A part of a run file: unknown keys are kept (and written back), named ones typed."""

    model_config = ConfigDict(extra="allow")


# --- shared parts -----------------------------------------------------------------------------


class StepRecord(Record):
    """One executed (or restore) step, as the executor's StepResult."""

    index: int
    host: str
    kind: str
    description: str
    status: str          # ok | failed | skipped | refused-as-expected | not-run | pending
    output: str = ""
    observed: str | None = None
    seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list)


class OutcomeRecord(Record):
    """Where and why a run stopped (status "completed" for a whole run), and its restore."""

    status: str = "unknown"
    phase: str | None = None
    step: str | None = None
    host: str | None = None
    checkpoint: str | None = None
    reason: str | None = None
    restore: str | None = None
    ended: str | None = None
    restored_later: list[StepRecord] | None = None


class NicFactsRecord(Record):
    interface: str | None = None
    driver: str | None = None
    device: str | None = None
    rx_queues: int | None = None
    channels_current: dict[str, int | None] = Field(default_factory=dict)


class HostFactsRecord(Record):
    """A host's facts as read before the run (labctl.host.facts.HostFacts.to_json)."""

    kernel: str = "?"
    cpus_online: str = ""
    isolated: str = ""
    tuned_profile: str | None = None
    irqbalance: str = "?"
    shared_kernel: bool = False
    sysctls: dict[str, str | None] = Field(default_factory=dict)
    nic: NicFactsRecord = Field(default_factory=NicFactsRecord)


class RebootRecord(Record):
    method: str = "?"
    reason: str = ""
    seconds: float = 0.0


class SysctlChange(Record):
    before: JsonValue = None
    after: JsonValue = None


class VerifiedRecord(Record):
    """What a host's preparation verified on the host afterwards."""

    tuned_profile: str | None = None
    irqbalance: str | None = None
    isolcpus: str | None = None
    pid1_cpus_allowed: str | None = None
    default_smp_affinity: str | None = None


class PreparationRecord(Record):
    """A host's preparation (tuned, irqbalance, isolated CPUs) as verified after it."""

    verified: VerifiedRecord = Field(default_factory=VerifiedRecord)
    reboot: RebootRecord | None = None
    sysctl_changes: dict[str, SysctlChange] = Field(default_factory=dict)


class CeilingRecord(Record):
    """The generator's measured ceiling (labctl.plan.generator.Ceiling)."""

    mode: str = ""
    description: str = ""
    rate: float
    received_rate: float = 0.0
    worker_rates: list[float] = Field(default_factory=list)
    seconds: float = 0.0
    measured_at: str = "?"


class GeneratorRecord(Record):
    mode: str = ""
    description: str = ""
    asked_rate: int | float | str | None = None     # a number of msg/s, or "max"
    ceiling: CeilingRecord | None = None
    asked_share_of_ceiling: float | None = None


class ProfilePlan(Record):
    host: str
    frequency: int
    cpus: list[int]


# --- manifest.json ----------------------------------------------------------------------------


class InputFileRecord(Record):
    path: str
    model: JsonObject


class ScenarioFileRecord(InputFileRecord):
    text: str = ""


class LabRecord(Record):
    name: str
    provider: str
    facts: JsonObject = Field(default_factory=dict)


class RunFile(Record):
    """A JSON file of a run directory, with its schema version."""

    FILE: ClassVar[str] = ""
    MIGRATIONS: ClassVar[dict[int, Migration]] = {}     # from version N to N + 1
    OMITTED_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()

    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        """The file's text: indented JSON, as a person reads it."""
        omitted = {name for name in self.OMITTED_WHEN_NONE if getattr(self, name) is None}
        return self.model_dump_json(indent=2, exclude=omitted or None) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "") -> Self:
        """The file from its text: an older version migrated, a newer one refused."""
        where = source or cls.FILE
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RunError(f"{where} is not valid JSON ({exc}); {_readable()}") from None
        if not isinstance(data, dict):
            raise RunError(f"{where}: not a labctl run file (a JSON object); {_readable()}")
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version not in READABLE_VERSIONS:
            newer = isinstance(version, int) and version > SCHEMA_VERSION
            raise RunError(f"{where} has schema_version {version!r}"
                           + (" (written by a newer labctl)" if newer else "") + f"; {_readable()}")
        for step in range(version, SCHEMA_VERSION):
            data = cls.MIGRATIONS.get(step, _same)(data)
        data["schema_version"] = SCHEMA_VERSION
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            path = ".".join(str(p) for p in first["loc"])
            raise RunError(f"{where} (schema_version {version}) is not a run file this labctl "
                           f"reads: {path}: {first['msg']} ({exc.error_count()} problem(s)); "
                           f"{_readable()}") from None


def _readable() -> str:
    return (f"this labctl ({__version__}) reads schema versions "
            f"{READABLE_VERSIONS.start} to {READABLE_VERSIONS.stop - 1}")


def _same(data: JsonObject) -> JsonObject:
    return data


class WatchRecord(Record):
    """A value the plan set on a host that the sampler reads back each sample (drift watchdog):
    its part in the sample file, read-back kind (mask | cpulist | channels | rss | flow_hash),
    what it is, and the planned value (CPUs as a sorted list; channels as {name: count}; rss as
    {table, key, hfunc}, the parts the plan set; flow_hash as its letters)."""

    name: str
    kind: str
    label: str
    expected: JsonValue


class Manifest(RunFile):
    """manifest.json: what a run is (inputs, lab, facts, plan) and how it ended."""

    FILE = "manifest.json"
    OMITTED_WHEN_NONE = frozenset({"facts"})       # no "facts": the run stopped before reading them

    run_id: str
    labctl_version: str
    started: str
    inventory: InputFileRecord
    scenario: ScenarioFileRecord
    lab: LabRecord
    outcome: OutcomeRecord | None = None
    generator: GeneratorRecord | None = None
    facts: dict[str, HostFactsRecord] | None = None
    preparation: dict[str, PreparationRecord] = Field(default_factory=dict)
    profile: ProfilePlan | None = None
    warnings: list[str] = Field(default_factory=list)
    plan: list[JsonObject] = Field(default_factory=list)
    watches: dict[str, list[WatchRecord]] = Field(default_factory=dict)
    controller_pid: int | None = None   # labctl's own PID: on a shared kernel, not a neighbour


# --- steps.json -------------------------------------------------------------------------------


class StepsRecord(RunFile):
    """steps.json: every step the executor ran, the restore, and where it stopped."""

    FILE = "steps.json"

    steps: list[StepRecord] = Field(default_factory=list)
    restore: list[StepRecord] = Field(default_factory=list)
    interrupted: str | None = None
    error: str | None = None
    signal: str | None = None
    stopped_at: dict[str, str | None] | None = None
    pending_restore: list[str] = Field(default_factory=list)


# --- restore.json -----------------------------------------------------------------------------


class UndoRecord(Record):
    host: str
    command: str
    description: str
    tuning: bool


class ProcessRecord(Record):
    host: str
    pid: int
    match: str = ""          # text its command line holds (PIDs get reused)


class Journal(RunFile):
    """restore.json: what a run must still put back, and the processes it must stop."""

    FILE = "restore.json"

    undo: list[UndoRecord] = Field(default_factory=list)
    processes: dict[str, ProcessRecord] = Field(default_factory=dict)
    kept: list[UndoRecord] = Field(default_factory=list)


# --- summary.json -----------------------------------------------------------------------------


class NicIrqRow(Record):
    """One RX queue of the NIC: its IRQ's delta per CPU."""

    queue: int
    irq: str
    name: str
    per_cpu: dict[int, int] = Field(default_factory=dict)


class UnmappedIrqRow(Record):
    """One of the NIC's vectors that names no queue (or a driver labctl does not know): its
    IRQ's delta per CPU, by IRQ name."""

    irq: str
    name: str = ""
    why: str = ""
    per_cpu: dict[int, int] = Field(default_factory=dict)


class AffinityRecord(Record):
    smp: str = "?"
    effective: str | None = None


class HostAnalysis(Record):
    """A host's per-CPU deltas over the window (labctl.analysis.perhost.analyse_host)."""

    cpus: list[int] = Field(default_factory=list)
    isolated: list[int] = Field(default_factory=list)
    shared_kernel: bool = False
    nic_irqs: list[NicIrqRow] = Field(default_factory=list)
    nic_unmapped_irqs: list[UnmappedIrqRow] = Field(default_factory=list)
    softirqs: dict[str, dict[int, int]] = Field(default_factory=dict)
    softirq_counters: dict[str, dict[str, dict[int, int]]] = Field(default_factory=dict)
    softnet: dict[int, dict[str, int]] = Field(default_factory=dict)
    cpu_percent: dict[int, dict[str, float]] = Field(default_factory=dict)
    nic_queues: dict[str, dict[str, int]] = Field(default_factory=dict)
    rx_queue_packets: dict[str, int] = Field(default_factory=dict)   # "rx-0" -> packets (driver's counters)
    irq_affinity: dict[int, AffinityRecord] = Field(default_factory=dict)
    rps_before: dict[int, str] = Field(default_factory=dict)
    rps_after: dict[int, str] = Field(default_factory=dict)


class ServerWorker(Record):
    pid: int | None = None
    last_cpu: int | None = None
    cpu_time_user: float = 0.0
    cpu_time_system: float = 0.0


class ClientWorker(Record):
    pid: int | None = None
    rate: int | float | None = None
    achieved_rate: int | float | None = None
    sent: int | None = None
    errors: int | None = None


class LoadSummary(Record):
    """Asked vs achieved rate and loss (labctl.analysis.perhost.loadgen_summary)."""

    protocol: str | None = None
    asked_rate: int | float | str | None = None
    achieved_rate: float = 0.0
    duration: float | None = None
    sent: int | None = None
    received: int | None = None
    client_errors: int | None = None
    server_socket_drops: int | None = None
    loss: float | None = None
    server_workers: list[ServerWorker] = Field(default_factory=list)
    client_workers: list[ClientWorker] = Field(default_factory=list)


class ExpectationRecord(Record):
    check: str = ""
    description: str = ""
    measured: str = ""
    bound: str = ""
    passed: bool = False
    subject: str = "dut"            # dut | generator (a shortfall: inconclusive, not failed)


class VerdictRecord(Record):
    status: str                     # passed | failed | inconclusive | invalid
    reason: str


class DriftChange(Record):
    """A read-back that changed during the load window: on which host, what, in which sample
    (seconds after the window's first sample; the sample's UTC time), from what to what."""

    host: str
    what: str
    part: str
    sample: int
    seconds: float
    time: str
    planned: str
    before: str
    after: str


class DriftRecord(Record):
    """The drift watchdog's result: per host how many planned values were read back in how
    many samples, every change, and hosts whose values could not be watched (and why)."""

    watched: dict[str, int] = Field(default_factory=dict)
    samples: dict[str, int] = Field(default_factory=dict)
    changes: list[DriftChange] = Field(default_factory=list)
    unwatched: dict[str, str] = Field(default_factory=dict)


class NeighbourRecord(Record):
    """A process outside the run that used a host's CPUs during the window."""

    pid: int
    name: str
    cpu_seconds: float
    share: float                 # of one CPU over the interval between the snapshots
    last_cpu: int


class NeighboursRecord(Record):
    """The neighbour check: its threshold (share of one CPU), per host how many processes it
    compared and the neighbours it found, and hosts it could not check (and why)."""

    threshold: float
    checked: dict[str, int] = Field(default_factory=dict)
    found: dict[str, list[NeighbourRecord]] = Field(default_factory=dict)
    unchecked: dict[str, str] = Field(default_factory=dict)


class ServerPlacement(Record):
    host: str
    cpus: list[int] | None = None
    workers: int | None = None


class ProfileCpu(Record):
    samples: int = 0
    frames: dict[str, float] = Field(default_factory=dict)
    folded: str | None = None        # file names in the run directory
    flamegraph: str | None = None


class ProfileSummary(Record):
    host: str
    frequency: int | None = None
    cpus: list[int] = Field(default_factory=list)
    event: str | None = None
    software_clock: bool = False
    diagnostics: list[str] = Field(default_factory=list)
    per_cpu: dict[int, ProfileCpu] = Field(default_factory=dict)


def _summary_v1_to_v2(data: JsonObject) -> JsonObject:
    """Early summaries held the manifest's {"name", "facts"} as "lab"."""
    lab = data.get("lab")
    if isinstance(lab, dict):
        facts = lab.get("facts")
        data = dict(data, lab=str(lab.get("name", "?")))
        if "lab_facts" not in data and isinstance(facts, dict):
            data["lab_facts"] = facts
    return data


class Summary(RunFile):
    """summary.json: a run's measurements and checks, rebuilt by `labctl collect`."""

    FILE = "summary.json"
    MIGRATIONS = {1: _summary_v1_to_v2}

    run_id: str = "?"
    scenario: str = "?"
    description: str = ""
    lab: str = "?"
    provider: str = "?"
    lab_facts: JsonObject = Field(default_factory=dict)
    labctl_version: str = "?"
    started: str = "?"
    keep_tuning: bool = False
    facts: dict[str, HostFactsRecord] = Field(default_factory=dict)
    preparation: dict[str, PreparationRecord] = Field(default_factory=dict)
    server: ServerPlacement | None = None
    window_seconds: float = 0.0
    expectations: list[ExpectationRecord] = Field(default_factory=list)
    verdict: VerdictRecord | None = None
    drift: DriftRecord | None = None
    neighbours: NeighboursRecord | None = None
    generator: GeneratorRecord | None = None
    loadgen: LoadSummary | None = None
    hosts: dict[str, HostAnalysis] = Field(default_factory=dict)
    profile: ProfileSummary | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    restore: list[StepRecord] = Field(default_factory=list)
    interrupted: str | None = None
    error: str | None = None
    outcome: OutcomeRecord | None = None
    warnings: list[str] = Field(default_factory=list)


# --- JSON Schemas -----------------------------------------------------------------------------


def summary_schema() -> JsonObject:
    """The JSON Schema of summary.json."""
    return {"$schema": JSON_SCHEMA_DIALECT, **Summary.model_json_schema()}


def run_schema() -> JsonObject:
    """One JSON Schema for a run directory's own files: an object whose properties are the
    file names (manifest.json, steps.json, restore.json), each with its schema."""
    files: list[type[RunFile]] = [Manifest, StepsRecord, Journal]
    defs: JsonObject = {}
    for model in files:
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        nested = schema.pop("$defs", {})
        if isinstance(nested, dict):
            defs.update(nested)
        defs[model.__name__] = schema
    return {"$schema": JSON_SCHEMA_DIALECT, "title": "labctl run directory", "type": "object",
            "properties": {m.FILE: {"$ref": f"#/$defs/{m.__name__}"} for m in files},
            "required": [Manifest.FILE], "$defs": defs}
