"""The live view's text (pure): host views -> a per-CPU table that fits a given screen.

`render_live` lays out each host's CPU rows (labctl.analysis.live) in `width` x `height`
characters: columns drop out, least telling first, when the width is short; CPUs go into
side-by-side blocks when the screen is wide and tall lists would not fit; when even that does
not fit, the busiest CPUs are shown and the rest counted. No line is ever longer than `width`
and the text never has more than `height` lines, so a terminal can redraw it in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from labctl.analysis.live import CpuRow, HostView

# (field, heading), most telling first: the first ones stay on a narrow screen
COLUMNS: tuple[tuple[str, str], ...] = (
    ("net_rx", "NET_RX/s"),
    ("softirq_pct", "%sirq"),
    ("irqs", "IRQs/s"),
    ("processed", "proc/s"),
    ("dropped", "drop/s"),
    ("received_rps", "rps/s"),
)
CELL = 9            # characters per value column
CPU_CELL = 5        # "  12*"
GAP = 3             # between side-by-side blocks
MIN_HEIGHT = 3      # a host's title, heading and one row


def number(value: float | None) -> str:
    """A rate in at most 6 characters: 7, 0.4, 812, 12.3k, 4.56M; "-" when unknown."""
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude < 10:
        return "0" if value == 0 else f"{value:.1f}"
    for limit, suffix in ((1e3, ""), (1e6, "k"), (1e9, "M"), (1e12, "G")):
        if magnitude < limit:
            scaled = value / (limit / 1e3) if suffix else value
            return f"{scaled:.0f}{suffix}" if abs(scaled) >= 100 or not suffix else f"{scaled:.1f}{suffix}"
    return f"{value:.1e}"


def _cell(row: CpuRow, field: str) -> str:
    value = getattr(row, field)
    if field == "softirq_pct":
        return "-" if value is None else f"{value:.1f}"
    return number(value)


def _columns(width: int) -> list[tuple[str, str]]:
    fit = max(0, (width - CPU_CELL) // CELL)
    return list(COLUMNS[:fit])


def _block(rows: Sequence[CpuRow], columns: list[tuple[str, str]]) -> list[str]:
    heading = "  CPU" + "".join(f"{title:>{CELL}}" for _, title in columns)
    lines = [heading]
    for row in rows:
        mark = "*" if row.isolated else " "
        lines.append(f"{row.cpu:>4}{mark}" + "".join(f"{_cell(row, f):>{CELL}}" for f, _ in columns))
    return lines


def _activity(row: CpuRow) -> float:
    return sum(v for v in (row.net_rx, row.irqs, row.processed, row.softirq_pct) if v is not None)


def _shown(rows: Sequence[CpuRow], capacity: int) -> tuple[list[CpuRow], int]:
    """All rows if they fit, else the busiest `capacity` (in CPU order) and how many are left."""
    if len(rows) <= capacity:
        return list(rows), 0
    keep = max(0, capacity)
    busiest = sorted(rows, key=lambda r: (-_activity(r), r.cpu))[:keep]
    return sorted(busiest, key=lambda r: r.cpu), len(rows) - keep


def _title(view: HostView) -> str:
    parts = [view.host]
    if view.seconds is not None:
        parts.append(f"last {view.seconds:.2f} s")
    if any(r.isolated for r in view.rows):
        parts.append("* isolated")
    if view.note:
        parts.append(view.note)
    return " | ".join(parts)


def render_host(view: HostView, width: int, height: int) -> list[str]:
    """One host's lines: a title, then its CPU rows in as many blocks as fit."""
    width, height = max(1, width), max(1, height)
    columns = _columns(width)
    lines = [_title(view)]
    if height < 2:
        return [line[:width] for line in lines]
    block_width = CPU_CELL + CELL * len(columns)
    room = height - 2                          # the title and the heading
    fit = max(1, (width + GAP) // (block_width + GAP))
    blocks = min(fit, max(1, math.ceil(len(view.rows) / max(1, room))))   # side by side if needed
    rows, hidden = _shown(view.rows, blocks * room)
    if hidden:
        rows, hidden = _shown(view.rows, blocks * (room - 1))   # a line to say so
    per_block = max(1, math.ceil(len(rows) / blocks)) if rows else 0
    parts = [_block(rows[i:i + per_block], columns) for i in range(0, len(rows), per_block or 1)]
    parts = parts or [_block([], columns)]
    for index in range(max(len(p) for p in parts)):
        cells = [p[index] if index < len(p) else "" for p in parts]
        lines.append((" " * GAP).join(f"{c:<{block_width}}" for c in cells).rstrip())
    if hidden:
        long, short = f"  ... +{hidden} quieter CPUs not shown", f"  +{hidden} CPUs"
        lines.append(long if len(long) <= width else short)
    return [line[:width] for line in lines[:height]]


def render_live(views: Sequence[HostView], width: int, height: int) -> str:
    """Every host's table (in the order given: the DUT first), within width x height."""
    width, height = max(1, width), max(1, height)
    if not views:
        return ""
    lines: list[str] = []
    shares = _heights(views, height)
    for view, share in zip(views, shares):
        if share > 0:
            lines += render_host(view, width, share)
    return "\n".join(lines[:height])


def _heights(views: Sequence[HostView], height: int) -> list[int]:
    """Lines for each host: enough for all its rows where possible, the first host first."""
    wanted = [len(v.rows) + 2 for v in views]
    if sum(wanted) <= height:
        return wanted
    shares = [min(w, MIN_HEIGHT) for w in wanted]
    while sum(shares) > height and any(shares):
        shares[max(i for i, s in enumerate(shares) if s)] = 0     # the last hosts give way
    if not any(shares):
        shares[0] = height                        # a screen shorter than one host's minimum
    spare = height - sum(shares)
    while spare > 0:                              # the rest in turns, one line each
        growing = [i for i, s in enumerate(shares) if s and s < wanted[i]]
        if not growing:
            break
        for i in growing[:spare]:
            shares[i] += 1
        spare -= min(spare, len(growing))
    return shares
