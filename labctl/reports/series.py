"""The series in report.md (pure): a short section on what each host's sampler took.

Samples and interval, the sampler's own cost (from its end record: os.times() of itself and
of the commands it ran), NET_RX per second on the busy CPUs (mean and peak over the
intervals), and a warning when a sample file was cut short (the series then holds the whole
samples before the cut), and the load generator's messages per second (labctl.analysis.loadseries).
"""

from __future__ import annotations

from labctl.analysis.loadseries import RECEIVED, SENT
from labctl.analysis.series import busy_cpus
from labctl.runfiles.series import HostSeries, SeriesFile

MAX_BUSY = 8


def render_series_markdown(series: SeriesFile | None, shared_kernel: bool = False) -> str:
    """The "Series" section ("" when the run took none)."""
    if series is None or not (series.hosts or series.missing):
        return ""
    lines = ["", "## Series", ""]
    for host, data in sorted(series.hosts.items()):
        lines += _host_lines(host, data)
    for host, why in sorted(series.missing.items()):
        lines.append(f"- **{host}: no series** ({why})")
    if shared_kernel:
        lines.append("- On this lab /proc/softirqs, /proc/stat and softnet_stat are host-wide: "
                     "other traffic on the machine is in the series too.")
    lines += ["", f"Every value is in `{SeriesFile.FILE}`; `labctl export RUN --format csv` "
              "gives one long table for pandas.", ""]
    return "\n".join(lines)


def _host_lines(host: str, data: HostSeries) -> list[str]:
    span = data.times[-1] if data.times else 0.0
    if not data.samples:             # the load generator's counts alone (labctl.analysis.loadseries)
        return [f"- **{host}**: no sampler; the load generator's counts per {data.interval:g} s "
                f"({len(data.times)} intervals over {span:.1f} s)", *_load_lines(data)]
    lines = [f"- **{host}**: {data.samples} samples every {data.interval:g} s "
             f"({len(data.times)} intervals over {span:.1f} s)" + _cost(data)]
    if not data.complete:
        lines.append(f"  - **the sample file was cut short** (the sampler did not end cleanly: "
                     f"killed or crashed?): the series keeps the {data.samples} whole samples "
                     "before the cut")
    busy = busy_cpus(data)
    if busy:
        cells = "; ".join(f"CPU {cpu}: mean {mean:,.0f}, peak {peak:,.0f}"
                          for cpu, mean, peak in busy[:MAX_BUSY])
        lines.append(f"  - NET_RX per second on the busy CPUs: {cells}")
    if data.problems:
        lines.append(f"  - {len(data.problems)} part(s) missing or unreadable, first: "
                     f"{data.problems[0]}")
    return lines + _load_lines(data)


def _load_lines(data: HostSeries) -> list[str]:
    """The load generator's total per second on this host: mean and lowest/highest interval."""
    out = []
    for metric, what in ((SENT, "sent"), (RECEIVED, "received")):
        total = data.line(metric)
        numbers = [v for v in (total.values if total else []) if v is not None]
        if numbers:
            out.append(f"  - messages {what} per second (`{metric}`, all workers): mean "
                       f"{sum(numbers) / len(numbers):,.0f}, lowest {min(numbers):,.0f}, "
                       f"highest {max(numbers):,.0f}")
    return out


def _cost(data: HostSeries) -> str:
    if data.sampler_cpu_seconds is None or data.sampler_cpu_per_sample is None:
        return "; the sampler's own CPU time is unknown (no end record)"
    text = (f"; the sampler used {data.sampler_cpu_seconds:.2f} s of CPU, starting Python "
            f"included ({data.sampler_cpu_per_sample * 1000:.1f} ms per sample, its commands included)")
    if data.read_seconds_mean is not None:
        text += f", {data.read_seconds_mean * 1000:.1f} ms to read a sample"
    return text
