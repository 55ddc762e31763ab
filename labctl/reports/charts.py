"""Reports (pure): small inline SVG charts of a metric's median and spread against a parameter.

One chart per (swept parameter, metric) in sweep.html: the parameter's values along x (as
categories, in the matrix's order), per cell a dot at the median, a thin bar over the range
(min-max) and a thick one over the interquartile range when there is one; cells that share the
other parameters' values share a colour (legend on top). Each mark carries a ``<title>`` with
the exact values, which a browser shows on hover. Self-contained: no script, no external URL;
every text is escaped here (the SVG enters the page as markup).
"""

from __future__ import annotations

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
