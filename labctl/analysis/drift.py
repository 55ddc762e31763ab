"""Drift watchdog (pure): the values a run's tuning set, read back each sample, against the plan.

During the load window the sampler reads back every value the plan set on its host (parts
named `readback:...`, listed in the manifest's `watches`: RPS masks, IRQ affinities, channel
counts, the RSS table, key and function, the flow hash fields). Each sample's text is parsed
by the parser of the plan's own read-back, so "1" and "1-1", or "2" and "00000000,00000002",
are the same CPUs. Any sample whose value is not the
planned one makes the run invalid (irqbalance, a link flap, another tool changed the tuning
under the measurement): a change that later went back to the planned value counts too. A part
that could not be read (the file vanished: its queue or IRQ is gone) is a change to
"unreadable"; a part a sample does not hold at all is not judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from labctl.analysis.expectations import Verdict
from labctl.host import probes
from labctl.host.probes import ProbeOutputError
from labctl.host.samples import Sample, SampleStream
from labctl.plan.dryrun import shown_value
from labctl.runfiles.models import DriftChange, DriftRecord, WatchRecord

MAX_NAMED = 3           # changes named in the verdict's reason


@dataclass(frozen=True)
class Watch:
    """One planned value: its sample part, read-back kind, what it is, the value planned."""

    name: str
    kind: str
    label: str
    expected: Any   # frozenset[int] (mask, cpulist), dict (channels; rss: table, key, hfunc) or str (flow_hash)

    @classmethod
    def of(cls, record: WatchRecord) -> Watch:
        value = record.expected
        if record.kind in ("channels", "rss"):
            expected: Any = dict(value) if isinstance(value, dict) else {}
        elif record.kind == "flow_hash":
            expected = str(value)
        else:
            expected = frozenset(c for c in value if isinstance(c, int)) if isinstance(value, list) else frozenset()
        return cls(record.name, record.kind, record.label, expected)


def watch_record(name: str, kind: str, label: str, expected: Any) -> WatchRecord:
    """The manifest's record of a plan's read-back (CPUs as a sorted list)."""
    value = sorted(expected) if isinstance(expected, (set, frozenset)) else expected
    return WatchRecord(name=name, kind=kind, label=label, expected=value)


def read_value(watch: Watch, text: str, status: int) -> Any:
    """A sample part as the plan's read-back parses it (channels: only those the plan set);
    "unreadable ..." / "unparseable ..." text when it cannot be."""
    if status != 0:
        return f"unreadable (errno/exit {status})"
    try:
        return probes.parse_readback(watch.kind, watch.expected, text)
    except ProbeOutputError:
        return f"unparseable ({text.strip()[:40]!r})"


def host_changes(host: str, watches: Sequence[Watch], stream: SampleStream) -> list[DriftChange]:
    """Every change of a watched value from one sample to the next (the first sample against
    the plan), in sample order."""
    changes: list[DriftChange] = []
    first = stream.samples[0] if stream.samples else None
    for watch in watches:
        previous: Any = watch.expected
        for sample in stream.samples:
            if watch.name not in sample.texts:
                continue
            value = read_value(watch, sample.texts[watch.name], sample.status.get(watch.name, 0))
            if value != previous:
                assert first is not None
                changes.append(_change(host, watch, sample, first, previous, value))
            previous = value
    return sorted(changes, key=lambda c: (c.seconds, c.what))


def _change(host: str, watch: Watch, sample: Sample, first: Sample, before: Any, after: Any) -> DriftChange:
    return DriftChange(host=host, what=watch.label or watch.name, part=watch.name, sample=sample.seq,
                       seconds=round(sample.mono - first.mono, 3),
                       time=datetime.fromtimestamp(sample.time, UTC).isoformat(timespec="milliseconds"),
                       planned=shown_value(watch.expected), before=shown_value(before),
                       after=shown_value(after))


def drift_record(watches: Mapping[str, Sequence[WatchRecord]],
                 streams: Mapping[str, SampleStream], missing: Mapping[str, str]) -> DriftRecord | None:
    """The watchdog's result over the hosts with watched values (None: the plan set none)."""
    if not any(watches.values()):
        return None
    record = DriftRecord()
    for host, records in sorted(watches.items()):
        if not records:
            continue
        stream = streams.get(host)
        if stream is None:
            record.unwatched[host] = missing.get(host, "no sampler ran there: not in snapshot.hosts")
            continue
        watched = [Watch.of(r) for r in records]
        record.watched[host] = len(watched)
        record.samples[host] = len(stream.samples)
        record.changes += host_changes(host, watched, stream)
    return record


def change_text(change: DriftChange) -> str:
    """One change in a sentence."""
    return (f"{change.host}: {change.what} changed from {change.before} to {change.after} at "
            f"{change.seconds:.1f} s into the window (sample {change.sample}, {change.time}; "
            f"planned {change.planned})")


def judged(verdict: Verdict, drift: DriftRecord | None) -> Verdict:
    """Drift beats every other verdict: a run whose tuning changed under it measured something
    else than the scenario (its checks are kept, as measured, but judge nothing)."""
    if drift is None or not drift.changes:
        return verdict
    named = "; ".join(change_text(c) for c in drift.changes[:MAX_NAMED])
    more = len(drift.changes) - MAX_NAMED
    return Verdict("invalid", f"tuning drifted during the load window: {named}"
                   + (f"; and {more} more change(s)" if more > 0 else "")
                   + f" (the checks alone said: {verdict.status})")
