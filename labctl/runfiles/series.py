"""Series files (pure, layer "runfiles"): the typed model of a run's ``series.json``.

``collect`` derives it from the raw sample files the on-host sampler wrote
(``<host>/series/samples.raw``): per host, the times of the intervals and one line of values
per (metric, CPU, queue). Metric names carry their unit:

  irqs_per_s                 IRQs per second of one NIC RX queue (queue "rx-N") on one CPU
                             (only where it fired at least once in the window)
  softirqs_per_s.NAME        softirqs per second per CPU (NET_RX, NET_TX, TIMER, ...)
  softnet_per_s.COLUMN       softnet_stat counters per second per CPU (processed, dropped,
                             time_squeeze, received_rps, flow_limit, cpu_collision)
  softnet.COLUMN             softnet_stat queue lengths at the end of the interval (backlog_len, ...)
  cpu_percent.FIELD          /proc/stat time split per CPU in percent (user, system, softirq, ...)
  nic_per_s.STAT             per-queue `ethtool -S` counters per second (queue "rx-N" / "tx-N")

A value is None where a sample's part was missing or did not parse. The file is compact JSON
(it can be large): ``labctl export`` turns it into one long table.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from labctl.runfiles.models import Record, RunFile

SERIES_FILE = "series.json"


class SeriesLine(Record):
    """The values of one metric on one CPU and/or queue, one per interval of the host."""

    metric: str
    cpu: int | None = None
    queue: str | None = None
    values: list[float | None]


class HostSeries(Record):
    """One host's series and what its sampler said about itself."""

    interval: float                       # the asked seconds between samples
    samples: int                          # whole samples in the file
    started: float | None = None          # Unix time of the first sample (the series' time 0)
    times: list[float] = Field(default_factory=list)   # end of each interval, s since time 0
    lines: list[SeriesLine] = Field(default_factory=list)
    complete: bool = True                 # the sampler's end record is there, nothing cut
    truncated: bool = False               # a partial record at the end was dropped
    end_reason: str | None = None         # signal | deadline, from the end record
    sampler_cpu_seconds: float | None = None        # its own CPU time, its commands' included
    sampler_cpu_per_sample: float | None = None     # the same less starting Python, per sample
    read_seconds_mean: float | None = None          # wall time to read one sample's sources
    sources: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)   # parts that failed or did not parse

    def line(self, metric: str, cpu: int | None = None, queue: str | None = None) -> SeriesLine | None:
        return next((line for line in self.lines
                     if line.metric == metric and line.cpu == cpu and line.queue == queue), None)


class SeriesFile(RunFile):
    """series.json: each snapshot host's series over the load window."""

    FILE: ClassVar[str] = SERIES_FILE

    run_id: str
    scenario: str
    hosts: dict[str, HostSeries] = Field(default_factory=dict)
    missing: dict[str, str] = Field(default_factory=dict)    # host -> why it has no series

    def to_json(self) -> str:
        """Compact JSON: a big host's series is many thousands of numbers."""
        return self.model_dump_json() + "\n"
