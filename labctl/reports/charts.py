"""Reports (pure): small inline SVG charts: spread charts for sweeps, line charts over time.

Spread charts (``spread_chart``): a metric's median and spread against a parameter.

One chart per (swept parameter, metric) in sweep.html: the parameter's values along x (as
categories, in the matrix's order), per cell a dot at the median, a thin bar over the range
(min-max) and a thick one over the interquartile range when there is one; cells that share the
other parameters' values share a colour (legend on top). Each mark carries a ``<title>`` with
the exact values, which a browser shows on hover. Self-contained: no script, no external URL;
every text is escaped here (the SVG enters the page as markup).

Line charts (``line_chart``): values per interval over time (report.html's series, compare's
overlays). One polyline per line, broken where a value is None (a gap, never a 0); x is seconds
since the window start, y starts at 0; axis labels carry the units. Each value has a point
(``circle.pt``, drawn on hover by the page's CSS) whose ``<title>`` holds the line's name, the
time and the exact value; a line may be dashed (run B in a comparison) and marked isolated (its
legend entry gets ``*`` and a blue bar, its points' titles say so). The legend flows under the
plot, one entry per line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 380, 230
LEFT, RIGHT, TOP, BOTTOM = 62, 12, 30, 44
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")
LABEL_CHARS = 16


@dataclass(frozen=True)
class Point:
    category: int                   # index into the chart's categories (x)
    group: int                      # index into its groups (colour)
    median: float
    low: float
    high: float
    q1: float | None
    q3: float | None
    title: str                      # the hover text: exact values


def spread_chart(title: str, categories: Sequence[str], groups: Sequence[str],
                 points: Sequence[Point], show: Callable[[float], str]) -> Markup:
    """The SVG (see the module docstring); `show` formats the y axis' tick values."""
    y0, y1 = _y_range(points)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return TOP + plot_h - (value - y0) / (y1 - y0) * plot_h

    band = plot_w / max(len(categories), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
             'font-family="sans-serif" font-size="10">',
             f"<title>{escape(title)}</title>",
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
             'stroke="#ccc"/>']
    for tick in (y0, (y0 + y1) / 2, y1):
        parts.append(f'<line x1="{LEFT - 3}" x2="{LEFT + plot_w}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" stroke="#e4e4e4"/>'
                     f'<text x="{LEFT - 5}" y="{y(tick) + 3:.1f}" text-anchor="end">'
                     f"{escape(show(tick))}</text>")
    for i, name in enumerate(categories):
        short = name if len(name) <= LABEL_CHARS else name[:LABEL_CHARS - 1] + "…"
        parts.append(f'<text x="{LEFT + band * (i + 0.5):.1f}" y="{TOP + plot_h + 14}" '
                     f'text-anchor="middle"><title>{escape(name)}</title>{escape(short)}</text>')
    parts += _legend(groups)
    for p in points:
        parts.append(_mark(p, LEFT + band * (p.category + _offset(p.group, len(groups))), y,
                           PALETTE[p.group % len(PALETTE)]))
    parts.append("</svg>")
    return Markup("".join(parts))


def _y_range(points: Sequence[Point]) -> tuple[float, float]:
    lows = [p.low for p in points] or [0.0]
    highs = [p.high for p in points] or [1.0]
    low, high = min(0.0, *lows), max(highs)
    if high <= low:
        high = low + (abs(low) or 1.0)
    return low, high + 0.05 * (high - low)


def _offset(group: int, groups: int) -> float:
    """Where a group's marks sit in a category's band (0..1): spread over its middle 60 %."""
    return 0.5 if groups <= 1 else 0.2 + 0.6 * group / (groups - 1)


def _legend(groups: Sequence[str]) -> list[str]:
    if len(groups) <= 1:
        return []
    out, x = [], float(LEFT)
    for i, name in enumerate(groups):
        short = name if len(name) <= LABEL_CHARS else name[:LABEL_CHARS - 1] + "…"
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<g><title>{escape(name)}</title><circle cx="{x + 4:.1f}" cy="12" r="4" '
                   f'fill="{colour}"/><text x="{x + 11:.1f}" y="15">{escape(short)}</text></g>')
        x += 16 + 6 * len(short)
    return out


def _mark(p: Point, x: float, y: Callable[[float], float], colour: str) -> str:
    iqr = ""
    if p.q1 is not None and p.q3 is not None:
        iqr = (f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(p.q1):.1f}" y2="{y(p.q3):.1f}" '
               f'stroke="{colour}" stroke-width="6" stroke-opacity="0.45"/>')
    return (f'<g class="cell"><title>{escape(p.title)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(p.low):.1f}" y2="{y(p.high):.1f}" '
            f'stroke="{colour}" stroke-width="1.5"/>'
            f'<line x1="{x - 4:.1f}" x2="{x + 4:.1f}" y1="{y(p.low):.1f}" y2="{y(p.low):.1f}" '
            f'stroke="{colour}"/><line x1="{x - 4:.1f}" x2="{x + 4:.1f}" y1="{y(p.high):.1f}" '
            f'y2="{y(p.high):.1f}" stroke="{colour}"/>{iqr}'
            f'<circle cx="{x:.1f}" cy="{y(p.median):.1f}" r="3.5" fill="{colour}"/></g>')


# --- line charts over time ------------------------------------------------------------------

LINE_WIDTH, LINE_PLOT_HEIGHT = 560, 180
LINE_LEFT, LINE_RIGHT, LINE_TOP, LINE_AXIS = 70, 14, 26, 36
LEGEND_ROW = 16
ISOLATED_COLOUR = "#2f6fd0"
MAX_POINTS = 900               # hover points per line; a longer line gets one per few intervals


@dataclass(frozen=True)
class Line:
    """One line of a line chart: values at `times` (seconds; None: a gap)."""

    label: str                        # legend and hover text: "CPU2", "rx-0", "total"
    times: Sequence[float]
    values: Sequence[float | None]
    colour: int = 0                   # index into PALETTE
    dashed: bool = False              # e.g. run B over run A
    isolated: bool = False            # an isolated CPU: marked in the legend and the titles
    bold: bool = False                # e.g. the total over the per-worker lines


def line_chart(title: str, lines: Sequence[Line], y_label: str, show: Callable[[float], str],
               x_label: str = "seconds since the window start") -> Markup:
    """An SVG line chart (see the module docstring); `show` formats values (ticks, titles)."""
    x1 = max((t for line in lines for t in line.times), default=1.0) or 1.0
    top = max((v for line in lines for v in line.values if v is not None), default=0.0)
    step = nice_step(top)
    y1 = step * max(math.ceil(top / step - 1e-9), 1)
    plot_w = LINE_WIDTH - LINE_LEFT - LINE_RIGHT
    legend, legend_rows = _line_legend(lines)
    height = LINE_TOP + LINE_PLOT_HEIGHT + LINE_AXIS + legend_rows * LEGEND_ROW + 6

    def x(t: float) -> float:
        return LINE_LEFT + t / x1 * plot_w

    def y(v: float) -> float:
        return LINE_TOP + LINE_PLOT_HEIGHT - v / y1 * LINE_PLOT_HEIGHT

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="line-chart" width="{LINE_WIDTH}" '
             f'height="{height}" viewBox="0 0 {LINE_WIDTH} {height}" role="img" '
             f'aria-label="{escape(title)}" font-family="sans-serif" font-size="10">',
             f"<title>{escape(title)}</title>",
             f'<text x="{LINE_LEFT}" y="15" font-size="12" font-weight="600">{escape(title)}</text>',
             f'<rect x="{LINE_LEFT}" y="{LINE_TOP}" width="{plot_w}" height="{LINE_PLOT_HEIGHT}" '
             'fill="#fafafa" stroke="#ccc"/>']
    parts += _line_axes(x, y, x1, [step * k for k in range(round(y1 / step) + 1)], y_label, x_label,
                        show)
    if not any(v is not None for line in lines for v in line.values):
        parts.append(f'<text class="empty" x="{LINE_LEFT + plot_w / 2:.1f}" '
                     f'y="{LINE_TOP + LINE_PLOT_HEIGHT / 2:.1f}" text-anchor="middle" fill="#666">'
                     "no values in the window</text>")
    for line in lines:
        parts.append(_line_marks(line, x, y, show))
    parts += [f'<g transform="translate(0,{LINE_TOP + LINE_PLOT_HEIGHT + LINE_AXIS})">', *legend,
              "</g></svg>"]
    return Markup("".join(parts))


def nice_step(top: float, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 x 10^n) that covers 0..top in at most `ticks` steps."""
    if top <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(top / ticks))
    return next(base * f for f in (1, 2, 5, 10) if base * f * ticks >= top)


def _line_axes(x: Callable[[float], float], y: Callable[[float], float], x1: float,
               y_ticks: Sequence[float], y_label: str, x_label: str,
               show: Callable[[float], str]) -> list[str]:
    bottom = LINE_TOP + LINE_PLOT_HEIGHT
    parts = []
    for tick in y_ticks:
        parts.append(f'<line x1="{LINE_LEFT - 3}" x2="{x(x1):.1f}" y1="{y(tick):.1f}" '
                     f'y2="{y(tick):.1f}" stroke="#e4e4e4"/><text x="{LINE_LEFT - 5}" '
                     f'y="{y(tick) + 3:.1f}" text-anchor="end">{escape(show(tick))}</text>')
    for tick in _time_ticks(x1):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{bottom}" y2="{bottom + 4}" '
                     f'stroke="#999"/><text x="{x(tick):.1f}" y="{bottom + 14}" '
                     f'text-anchor="middle">{tick:g}</text>')
    middle = LINE_TOP + LINE_PLOT_HEIGHT / 2
    parts.append(f'<text x="{(LINE_LEFT + x(x1)) / 2:.1f}" y="{bottom + 28}" text-anchor="middle" '
                 f'fill="#444">{escape(x_label)}</text>'
                 f'<text x="12" y="{middle:.1f}" text-anchor="middle" fill="#444" '
                 f'transform="rotate(-90 12 {middle:.1f})">{escape(y_label)}</text>')
    return parts


def _time_ticks(end: float) -> list[float]:
    """Round ticks (1, 2, 5 x 10^n seconds apart), at most about 8, from 0 to `end`."""
    step = 1.0
    for factor in (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200):
        step = float(factor)
        if end / step <= 8:
            break
    if end < 1:
        step = 0.1 if end > 0.2 else 0.05
    ticks, t = [], 0.0
    while t <= end + 1e-9:
        ticks.append(round(t, 3))
        t += step
    return ticks


def m4_thinned(points: Sequence[tuple[float, float | None]], column: Callable[[float], int]
               ) -> list[tuple[float, float | None]]:
    """The points a line needs to look exactly as drawn with all of them (M4 aggregation,
    Jugel et al., VLDB 2014): per pixel column the first, the lowest, the highest and the last
    point, in time order; a gap (None) is kept and splits columns. A burst of drops one sample
    long stays visible however long the window."""
    out: list[tuple[float, float | None]] = []
    group: list[tuple[float, float]] = []

    def flush() -> None:
        if len(group) <= 4:
            out.extend(group)
        else:
            keep = {0, len(group) - 1, min(range(len(group)), key=lambda i: group[i][1]),
                    max(range(len(group)), key=lambda i: group[i][1])}
            out.extend(group[i] for i in sorted(keep))
        group.clear()

    for t, v in points:
        if v is None:
            flush()
            out.append((t, None))
        elif group and column(t) != column(group[0][0]):
            flush()
            group.append((t, v))
        else:
            group.append((t, v))
    flush()
    return out


def _line_marks(line: Line, x: Callable[[float], float], y: Callable[[float], float],
                show: Callable[[float], str]) -> str:
    colour = PALETTE[line.colour % len(PALETTE)]
    points = m4_thinned(list(zip(line.times, line.values)), lambda t: int(x(t)))
    path, pen_down, lone = [], False, []
    for i, (t, v) in enumerate(points):
        if v is None:
            pen_down = False
            continue
        path.append(f"{'L' if pen_down else 'M'}{x(t):.1f},{y(v):.1f}")
        alone = not pen_down and (i + 1 >= len(points) or points[i + 1][1] is None)
        if alone:
            lone.append((t, v))
        pen_down = True
    dash = ' stroke-dasharray="6 4"' if line.dashed else ""
    width = 2.6 if line.bold else 1.6
    label = line.label + (" (isolated CPU)" if line.isolated else "")
    out = [f'<g class="line" data-label="{escape(line.label)}"><title>{escape(label)}</title>']
    if path:
        out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" '
                   f'stroke-width="{width}"{dash} stroke-linejoin="round"/>')
    out += [f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2" fill="{colour}"/>' for t, v in lone]
    every = max(1, -(-len(points) // MAX_POINTS))
    for t, v in points[::every]:
        if v is not None:
            out.append(f'<circle class="pt" cx="{x(t):.1f}" cy="{y(v):.1f}" r="4" '
                       f'fill="{colour}" fill-opacity="0"><title>{escape(label)} at {t:g} s: '
                       f"{escape(show(v))}</title></circle>")
    out.append("</g>")
    return "".join(out)


def _line_legend(lines: Sequence[Line]) -> tuple[list[str], int]:
    """The legend entries, flowed in rows under the plot, and the number of rows."""
    out, x, row = [], float(LINE_LEFT), 0
    for line in lines:
        text = line.label + ("*" if line.isolated else "")
        width = 30 + 6 * len(text)
        if x + width > LINE_WIDTH - LINE_RIGHT and x > LINE_LEFT:
            x, row = float(LINE_LEFT), row + 1
        colour = PALETTE[line.colour % len(PALETTE)]
        top = row * LEGEND_ROW
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        iso = (f'<rect x="{x:.1f}" y="{top + 13}" width="{width - 8}" height="2.5" '
               f'fill="{ISOLATED_COLOUR}"/>' if line.isolated else "")
        title = line.label + (" (isolated CPU)" if line.isolated else "")
        out.append(f'<g class="legend{" iso" if line.isolated else ""}"><title>{escape(title)}</title>'
                   f'<line x1="{x:.1f}" x2="{x + 18:.1f}" y1="{top + 6}" y2="{top + 6}" '
                   f'stroke="{colour}" stroke-width="{2.6 if line.bold else 1.8}"{dash}/>'
                   f'<text x="{x + 22:.1f}" y="{top + 10}">{escape(text)}</text>{iso}</g>')
        x += width
    return out, row + 1 if lines else 0
