"""Plan actions (pure): the steps a plan is made of, one frozen type per kind of step.

Each type carries only the fields its kind uses. `Action` is their union: the executor
(labctl.execution.executor.Executor._dispatch) and the dry-run rendering
(labctl.plan.dryrun) match on the type, so a type's name finds everything that handles it.
`kind` is the name a step keeps in the printed plan and in the run directory (steps.json,
read by reports): it does not change when a type is renamed.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias

from labctl.host import probes

Kind = Literal["change", "skip", "sleep", "upload", "start", "wait_file", "snapshot",
               "wait_process", "stop", "fetch"]
Phase = Literal["prepare", "tune", "load", "measure", "finish"]


@dataclass(frozen=True)
class Readback:
    """How to verify a change: a command whose output must parse to the expected value.

    The sampler reads the same value back each sample of the load window (the drift
    watchdog): `path` is the file it reads ("": it runs `command`), `name` its part's name,
    `label` what the value is, in a report."""

    command: str
    kind: Literal["mask", "cpulist", "channels", "rss", "flow_hash"]
    expected: Any
    name: str = ""
    label: str = ""
    path: str = ""

    def observed(self, output: str) -> Any:
        """The output parsed by the parser of the probe whose command it is, in the shape of
        `expected` (channels only as far as the plan set them); ProbeOutputError if it does
        not parse."""
        return probes.parse_readback(self.kind, self.expected, output)


@dataclass(frozen=True)
class ActionBase:
    """What every step has: where it runs ("-" for none), its phase, what it does, and
    warnings the planner found (shown in the plan, recorded with the step)."""

    kind: ClassVar[Kind]
    host: str
    phase: Phase
    description: str
    _: KW_ONLY
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change(ActionBase):
    """Run a command that changes the host; `undo` puts it back (journalled before it runs)."""

    kind: ClassVar[Kind] = "change"
    command: str
    undo: str | None = None
    readback: Readback | None = None
    expect_failure: bool = False       # attempted on purpose to record the kernel's answer
    timeout: float = 60.0


@dataclass(frozen=True)
class Skip(ActionBase):
    """A step not taken: the description says why."""

    kind: ClassVar[Kind] = "skip"


@dataclass(frozen=True)
class Sleep(ActionBase):
    """Wait on the control machine (settling, an idle measurement window)."""

    kind: ClassVar[Kind] = "sleep"
    seconds: float


@dataclass(frozen=True)
class Upload(ActionBase):
    """Copy labctl's agent (named by `local`, a path in the package) to `remote`."""

    kind: ClassVar[Kind] = "upload"
    local: str
    remote: str


@dataclass(frozen=True)
class Start(ActionBase):
    """Start a detached process; its command prints the PID, kept under `process`."""

    kind: ClassVar[Kind] = "start"
    command: str
    process: str


@dataclass(frozen=True)
class WaitFile(ActionBase):
    """Wait until a started process creates `path` (its ready file, its output)."""

    kind: ClassVar[Kind] = "wait_file"
    path: str
    process: str
    timeout: float = 60.0


@dataclass(frozen=True)
class WaitProcess(ActionBase):
    """Wait until a started process ends by itself; then `result_file` must exist."""

    kind: ClassVar[Kind] = "wait_process"
    process: str
    result_file: str | None = None
    timeout: float = 60.0


@dataclass(frozen=True)
class Stop(ActionBase):
    """Stop a started process with `signal`, SIGKILL after `timeout`."""

    kind: ClassVar[Kind] = "stop"
    process: str
    timeout: float = 60.0
    signal: str = "TERM"               # the signal that ends the process cleanly
    ended_ok: bool = False             # ended before (a sampler that crashed): a warning only


@dataclass(frozen=True)
class Fetch(ActionBase):
    """Copy `remote` into the run directory, at <host>/`local`."""

    kind: ClassVar[Kind] = "fetch"
    remote: str
    local: str


@dataclass(frozen=True)
class Snapshot(ActionBase):
    """Run every probe in one script; each output goes to <host>/<probe>.`local`."""

    kind: ClassVar[Kind] = "snapshot"
    command: str
    local: str                         # the snapshot's name: before | after
    probes: tuple[tuple[str, str], ...] = ()   # (probe, command), batched in `command`


Action: TypeAlias = (Change | Skip | Sleep | Upload | Start | WaitFile | WaitProcess | Stop
                     | Fetch | Snapshot)


@dataclass(frozen=True)
class Plan:
    run_id: str
    workdir: dict[str, str]            # host -> remote working directory
    actions: tuple[Action, ...] = field(default_factory=tuple)

    def for_phase(self, phase: str) -> list[Action]:
        return [a for a in self.actions if a.phase == phase]
