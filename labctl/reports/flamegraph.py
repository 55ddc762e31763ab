"""Flame graphs (pure): folded stacks -> one self-contained SVG (no network, no external files).

Classic layout (root at the bottom, children above their parent, siblings in name order, width
proportional to samples), as Brendan Gregg's flamegraph.pl draws it, with its small inline
script: click a frame to zoom to it, "Reset Zoom" to go back, "Search" highlights frames
matching a regular expression and shows the share of samples they cover. Every frame has a
``<title>`` with its name, samples and percentage. Colours are a hash of the name, so the same
function has the same colour in every graph: kernel frames (``_[k]``, see labctl.analysis.fold) blue-
green, other frames red-yellow, ``[unknown]`` grey. Frames narrower than ``min_width_px`` are
not drawn; their samples still count in their parents' widths and in every percentage. Should
that still leave more than MAX_FRAMES frames, the minimum width doubles until it does not, and
the graph says so under its title.

Stacks are laid out from a sorted list of paths with prefix sums rather than a tree of nodes:
a frame's samples are one contiguous run of paths, found by binary search, so frames too
narrow to draw cost one step each and the stacks below them are never visited (100,000
distinct stacks render in about 0.2 s).

The differential graph (as flamegraph.pl on difffolded.pl output) takes its widths from run B
and colours each frame by the change of its share of samples from A to B: red = more in B,
blue = less, white = no change, the strongest change drawn fully saturated.

A graph with no samples is never drawn: RunError says why.
"""

from __future__ import annotations

import html
import re
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from typing import NamedTuple

from labctl.analysis.fold import KERNEL_SUFFIX, UNKNOWN_SYMBOL, FoldResult, event_base
from labctl.errors import RunError

WIDTH = 1200
MIN_WIDTH_PX = 0.1
FRAME_HEIGHT = 16
FONT_SIZE = 12
CHAR_WIDTH = FONT_SIZE * 0.59  # Verdana's average glyph width
PAD_SIDE = 10
PAD_TOP = 60
PAD_BOTTOM = 34
ROOT_NAME = "all"
# Zooming tells a frame's descendants from its neighbours by position: coordinates are written
# with 2 decimals, so frames must stay well wider than that rounding.
SMALLEST_MIN_WIDTH_PX = 0.1
# More frames make an SVG browsers crawl through (~200 bytes each): the minimum width grows.
MAX_FRAMES = 50_000

# Separators that sort below every character a frame name can hold: a frame's descendants
# ("a;b" + _SEP + ...) come first, then its own stack ("a;b" + _END), and nothing else until
# "a;b" + _AFTER; children are thus drawn from their parent's left edge, as flamegraph.pl does.
_SEP, _END, _AFTER = "\x01", "\x02", "\x03"
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class _StackIndex:
    """Stacks as sorted paths (see _SEP): a frame's samples, its own stack and every stack
    through it, are one contiguous run of paths."""

    paths: list[str]
    before: list[int]  # before[i]: samples of paths[:i]

    @classmethod
    def of(cls, stacks: Mapping[str, int]) -> _StackIndex:
        merged: dict[str, int] = {}
        for stack, count in stacks.items():
            if count > 0:
                path = _path(stack)
                merged[path] = merged.get(path, 0) + count
        paths = sorted(merged)
        return cls(paths, [0, *accumulate(merged[path] for path in paths)])

    @property
    def total(self) -> int:
        return self.before[-1]

    def run_end(self, frame_path: str, start: int, end: int) -> int:
        """Index after the run of `frame_path` in paths[start:end]."""
        return bisect_left(self.paths, frame_path + _AFTER, start, end)

    def samples(self, frame_path: str) -> int:
        start = bisect_left(self.paths, frame_path + _SEP)
        return self.before[self.run_end(frame_path, start, len(self.paths))] - self.before[start]


class _Frame(NamedTuple):
    name: str
    path: str
    depth: int
    start: int  # samples to the left of the frame
    samples: int


# fill colour and the details shown after the name in a frame's title
_Describe = Callable[[_Frame], tuple[str, str]]


def render_flamegraph(
    stacks: Mapping[str, int],
    *,
    title: str,
    subtitle: str = "",
    width: int = WIDTH,
    min_width_px: float = MIN_WIDTH_PX,
) -> str:
    """SVG flame graph of folded stacks (stack -> samples); RunError if there are no samples."""
    index = _StackIndex.of(stacks)
    if index.total <= 0:
        raise RunError(f"flame graph {title!r}: no samples to draw")
    total = index.total

    def describe(frame: _Frame) -> tuple[str, str]:
        share = 100.0 * frame.samples / total
        return _fill(frame.name), f"{_samples(frame.samples)}, {share:.2f}%"

    frames, note = _frames(index, _span(width), min_width_px)
    return _svg(frames, total, describe, title, [subtitle, note], width)


def render_differential(
    before: Mapping[str, int],
    after: Mapping[str, int],
    *,
    title: str,
    subtitle: str = "",
    width: int = WIDTH,
    min_width_px: float = MIN_WIDTH_PX,
) -> str:
    """SVG of run B (`after`) coloured by each frame's change of share from run A (`before`)."""
    index_a, index_b = _StackIndex.of(before), _StackIndex.of(after)
    for run, index in (("A", index_a), ("B", index_b)):
        if index.total <= 0:
            raise RunError(f"differential flame graph {title!r}: run {run} has no samples")
    total_a, total_b = index_a.total, index_b.total
    frames, note = _frames(index_b, _span(width), min_width_px)
    in_a = {f.path: index_a.samples(f.path) if f.depth else total_a for f in frames}
    largest = max(abs(f.samples / total_b - in_a[f.path] / total_a) for f in frames)

    def describe(frame: _Frame) -> tuple[str, str]:
        samples_a = in_a[frame.path]
        share_a, share_b = 100.0 * samples_a / total_a, 100.0 * frame.samples / total_b
        delta = share_b - share_a
        text = (f"B: {_samples(frame.samples)}, {share_b:.2f}%; "
                f"A: {_samples(samples_a)}, {share_a:.2f}%; {delta:+.2f} pp")
        return _diff_fill(delta / 100.0, largest), text

    legend = (f"widths: B ({_samples(total_b)}); colour: red = larger share of samples in B, "
              f"blue = smaller (A: {_samples(total_a)}); frames only in A are not drawn")
    return _svg(frames, total_b, describe, title, [subtitle, legend, note], width)


def event_label(events: Iterable[str]) -> str:
    """``cpu-clock (no PMU)`` for perf's software clock fallback; other events as named."""
    labels = []
    for event in sorted(events):
        base = event_base(event)
        labels.append(f"{base} (no PMU)" if base in ("cpu-clock", "task-clock") else event)
    return ", ".join(labels)


def cpu_subtitle(cpu: int, samples: int, events: Iterable[str]) -> str:
    """``CPU 2 — 1,234 samples, cpu-clock (no PMU)``."""
    where = "no CPU field" if cpu < 0 else f"CPU {cpu}"
    label = event_label(events)
    return f"{where} — {_samples(samples)}" + (f", {label}" if label else "")


def cpu_flamegraph(result: FoldResult, cpu: int, *, title: str = "") -> str:
    """The flame graph of one CPU of a fold; RunError (with the fold's diagnostics) if empty."""
    stacks = result.stacks.get(cpu, {})
    if not stacks:
        raise RunError(f"CPU {cpu}: no samples{_reasons(result)}")
    subtitle = cpu_subtitle(cpu, result.samples[cpu], result.events)
    return render_flamegraph(stacks, title=title or f"CPU {cpu}", subtitle=subtitle)


def cpu_differential(
    run_a: FoldResult, run_b: FoldResult, cpu: int, *, name_a: str = "A", name_b: str = "B"
) -> str:
    """Differential flame graph of one CPU in two runs (widths from B), titled ``A vs B``."""
    for name, run in ((name_a, run_a), (name_b, run_b)):
        if not run.stacks.get(cpu):
            raise RunError(f"CPU {cpu}: no samples in {name}{_reasons(run)}")
    subtitle = (f"CPU {cpu} — A = {name_a}: {_samples(run_a.samples[cpu])}; "
                f"B = {name_b}: {_samples(run_b.samples[cpu])}, {event_label(run_b.events)}")
    return render_differential(
        run_a.stacks[cpu], run_b.stacks[cpu],
        title=f"CPU {cpu}: {name_a} vs {name_b}", subtitle=subtitle,
    )


def _samples(count: int) -> str:
    return f"{count:,} sample" + ("" if count == 1 else "s")


def _reasons(result: FoldResult) -> str:
    return f" ({'; '.join(result.diagnostics)})" if result.diagnostics else ""


# --- frames -------------------------------------------------------------------------------


def _path(stack: str) -> str:
    if _XML_INVALID.search(stack):  # also clears our separators out of names
        stack = _XML_INVALID.sub("\ufffd", stack)
    return stack.replace(";", _SEP) + _END


def _span(width: int) -> int:
    return max(width - 2 * PAD_SIDE, 1)


def _frames(index: _StackIndex, span: int, min_width_px: float) -> tuple[list[_Frame], str]:
    """Frames to draw, and a note if the minimum width had to grow to keep the SVG usable."""
    min_width = max(min_width_px, SMALLEST_MIN_WIDTH_PX)
    while True:
        frames = _frames_wider_than(index, min_width * index.total / span)
        if frames is not None:
            break
        min_width *= 2
    if min_width <= max(min_width_px, SMALLEST_MIN_WIDTH_PX):
        return frames, ""
    return frames, f"frames narrower than {min_width:.2g} px are not drawn (over {MAX_FRAMES:,})"


def _frames_wider_than(index: _StackIndex, threshold: float) -> list[_Frame] | None:
    """Frames of at least `threshold` samples, each parent before its children; None if
    there are more than MAX_FRAMES.

    A frame's children are found by walking its run of paths one child's run at a time
    (a binary search each), so frames too narrow to draw cost one step and no descent.
    """
    frames = [_Frame(ROOT_NAME, "", 0, 0, index.total)]
    pending = [(frames[0], 0, len(index.paths))]
    while pending:
        parent, start, end = pending.pop()
        for path, name_at, first, after in _children(index, parent, start, end):
            left = index.before[first]
            samples = index.before[after] - left
            if samples >= threshold:
                frame = _Frame(path[name_at:], path, parent.depth + 1, left, samples)
                frames.append(frame)
                descendants = after - (index.paths[after - 1] == path + _END)
                if first < descendants:
                    pending.append((frame, first, descendants))
        if len(frames) > MAX_FRAMES:
            return None
    return frames


def _children(
    index: _StackIndex, parent: _Frame, start: int, end: int
) -> Iterator[tuple[str, int, int, int]]:
    """(path, where its name starts, first, after) of each child in paths[start:end]."""
    paths = index.paths
    name_at = len(parent.path) + 1 if parent.depth else 0
    first = start
    while first < end:
        path = paths[first]
        name_end = path.find(_SEP, name_at)
        child = path[:-1] if name_end < 0 else path[:name_end]
        after = index.run_end(child, first, end)
        yield child, name_at, first, after
        first = after


# --- colours --------------------------------------------------------------------------------


def _hash_parts(name: str) -> tuple[float, float, float]:
    """Three numbers in [0, 1) from the name: the same name gets the same colour everywhere."""
    value = zlib.crc32(name.encode("utf-8", "surrogatepass"))
    return (value & 0x3FF) / 1024, ((value >> 10) & 0x3FF) / 1024, ((value >> 20) & 0x3FF) / 1024


@cache
def _fill(name: str) -> str:
    v1, v2, v3 = _hash_parts(name)
    if name == ROOT_NAME or name.startswith(UNKNOWN_SYMBOL):
        grey = 190 + int(40 * v1)
        return f"rgb({grey},{grey},{grey})"
    if name.endswith(KERNEL_SUFFIX):
        return f"rgb({50 + int(60 * v1)},{165 + int(55 * v2)},{165 + int(55 * v3)})"
    return f"rgb({205 + int(50 * v3)},{int(230 * v1)},{int(55 * v2)})"


def _diff_fill(delta: float, largest: float) -> str:
    strength = min(abs(delta) / largest, 1.0) if largest > 0 else 0.0
    faded = int(round(250 - 210 * strength))
    return f"rgb(250,{faded},{faded})" if delta > 0 else f"rgb({faded},{faded},250)"


# --- SVG ------------------------------------------------------------------------------------


def _xml(text: str) -> str:
    return html.escape(_XML_INVALID.sub("\ufffd", text), quote=True)


def _label(name: str, width: float) -> str:
    fits = int((width - 6) / CHAR_WIDTH)
    if fits < 3:
        return ""
    return name if len(name) <= fits else name[: fits - 2] + ".."


def _svg(
    frames: list[_Frame],
    total: int,
    describe: _Describe,
    title: str,
    subtitles: list[str],
    width: int,
) -> str:
    span = _span(width)
    scale = span / total
    height = PAD_TOP + FRAME_HEIGHT * (max(f.depth for f in frames) + 1) + PAD_BOTTOM
    bottom = height - PAD_BOTTOM - FRAME_HEIGHT
    escaped: dict[str, str] = {}
    body = []
    for frame in frames:
        name = escaped.get(frame.name) or escaped.setdefault(frame.name, _xml(frame.name))
        fill, details = describe(frame)
        x, w = PAD_SIDE + frame.start * scale, frame.samples * scale
        y = bottom - frame.depth * FRAME_HEIGHT
        label = _label(frame.name, w)
        body.append(
            f'<g><title>{name} ({details})</title><rect x="{x:.2f}" y="{y}" width="{w:.2f}" '
            f'height="{FRAME_HEIGHT - 1}" fill="{fill}" rx="2"/><text x="{x + 3:.2f}" '
            f'y="{y + FRAME_HEIGHT - 4.5}">{name if label == frame.name else _xml(label)}'
            "</text></g>"
        )
    return "".join([
        _head(width, height, span, title, [s for s in subtitles if s]),
        '<g id="frames">', "\n".join(body), "</g>\n",
        f"<script type=\"text/ecmascript\"><![CDATA[{_SCRIPT}]]></script>\n</svg>\n",
    ])


def _head(width: int, height: int, span: int, title: str, subtitles: list[str]) -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" data-left="{PAD_SIDE}" '
        f'data-span="{span}" data-char="{CHAR_WIDTH:.3f}">',
        f"<style>{_STYLE}</style>",
        f'<rect width="{width}" height="{height}" fill="#f8f8f4"/>',
        f'<text id="title" x="{width / 2:.0f}" y="22" text-anchor="middle">{_xml(title)}</text>',
    ]
    for index, subtitle in enumerate(subtitles):
        y = 40 + 14 * index
        lines.append(f'<text class="sub" x="{width / 2:.0f}" y="{y}" text-anchor="middle">'
                     f"{_xml(subtitle)}</text>")
    lines += [
        f'<text id="unzoom" class="control hide" x="{PAD_SIDE}" y="22">Reset Zoom</text>',
        f'<text id="search" class="control" x="{width - PAD_SIDE}" y="22" '
        f'text-anchor="end">Search</text>',
        f'<text id="matched" x="{width - PAD_SIDE}" y="{height - 12}" text-anchor="end"> </text>',
        f'<text id="details" x="{PAD_SIDE}" y="{height - 12}"> </text>',
    ]
    return "\n".join(lines) + "\n"


_STYLE = (
    "text{font-family:Verdana,sans-serif;font-size:12px;fill:#000}"
    "#title{font-size:17px}.sub{font-size:12px;fill:#444}"
    "#frames text{pointer-events:none}#frames rect{stroke:#f8f8f4;stroke-width:0.5}"
    "#frames g:hover rect{stroke:#000;stroke-width:0.5}"
    ".control{cursor:pointer;fill:#036;text-decoration:underline}.hide{display:none}"
)

_SCRIPT = r"""
(function () {
  var svg = document.documentElement;
  var frames = document.getElementById('frames');
  var groups = frames.getElementsByTagName('g');
  var details = document.getElementById('details');
  var unzoomButton = document.getElementById('unzoom');
  var searchButton = document.getElementById('search');
  var matched = document.getElementById('matched');
  var left = +svg.getAttribute('data-left'), span = +svg.getAttribute('data-span');
  var charWidth = +svg.getAttribute('data-char'), fudge = 0.02, searching = false;

  function titleOf(g) { return g.getElementsByTagName('title')[0].textContent; }
  function nameOf(g) { var t = titleOf(g); return t.slice(0, t.lastIndexOf(' (')); }
  function rectOf(g) { return g.getElementsByTagName('rect')[0]; }
  function original(r, key) {
    var value = r.getAttribute('data-' + key);
    if (value === null) { value = r.getAttribute(key); r.setAttribute('data-' + key, value); }
    return +value;
  }
  function place(g, x, w) {
    var r = rectOf(g), text = g.getElementsByTagName('text')[0], name = nameOf(g);
    var fits = Math.floor((w - 6) / charWidth);
    r.setAttribute('x', x.toFixed(2)); r.setAttribute('width', w.toFixed(2));
    text.setAttribute('x', (x + 3).toFixed(2));
    if (fits < 3) { text.textContent = ''; }
    else { text.textContent = name.length <= fits ? name : name.slice(0, fits - 2) + '..'; }
  }
  function zoom(target) {
    var t = rectOf(target);
    var x0 = original(t, 'x'), w0 = original(t, 'width'), y0 = original(t, 'y');
    var scale = span / w0;
    for (var i = 0; i < groups.length; i++) {
      var g = groups[i], r = rectOf(g);
      var x = original(r, 'x'), w = original(r, 'width'), y = original(r, 'y');
      if (y > y0 && x <= x0 + fudge && x + w >= x0 + w0 - fudge) {
        g.style.display = ''; place(g, left, span);
      } else if (y <= y0 && x >= x0 - fudge && x + w <= x0 + w0 + fudge) {
        g.style.display = ''; place(g, left + (x - x0) * scale, w * scale);
      } else {
        g.style.display = 'none';
      }
    }
    unzoomButton.setAttribute('class', 'control');
  }
  function unzoom() {
    for (var i = 0; i < groups.length; i++) {
      var g = groups[i], r = rectOf(g);
      g.style.display = '';
      if (r.getAttribute('data-x') !== null) { place(g, original(r, 'x'), original(r, 'width')); }
    }
    unzoomButton.setAttribute('class', 'control hide');
  }
  function search(term) {
    var pattern = null, spans = [];
    if (term) {
      try { pattern = new RegExp(term); } catch (e) {
        alert('Not a regular expression: ' + term);
        return;
      }
    }
    for (var i = 0; i < groups.length; i++) {
      var g = groups[i], r = rectOf(g), saved = r.getAttribute('data-fill');
      if (saved !== null) { r.setAttribute('fill', saved); r.removeAttribute('data-fill'); }
      if (pattern && i > 0 && pattern.test(nameOf(g))) {
        r.setAttribute('data-fill', r.getAttribute('fill'));
        r.setAttribute('fill', 'rgb(230,0,230)');
        spans.push([original(r, 'x'), original(r, 'x') + original(r, 'width')]);
      }
    }
    spans.sort(function (a, b) { return a[0] - b[0]; });
    var covered = 0, end = -Infinity;
    for (var j = 0; j < spans.length; j++) {
      var start = Math.max(spans[j][0], end);
      if (spans[j][1] > start) { covered += spans[j][1] - start; end = spans[j][1]; }
    }
    searching = !!pattern;
    matched.textContent = pattern
      ? 'Matched: ' + (100 * covered / span).toFixed(1) + '% (' + term + ')' : ' ';
    searchButton.textContent = pattern ? 'Reset Search' : 'Search';
  }
  frames.addEventListener('click', function (e) {
    var g = e.target.parentNode;
    if (g && g.tagName === 'g') { zoom(g); }
  });
  frames.addEventListener('mouseover', function (e) {
    var g = e.target.parentNode;
    if (g && g.tagName === 'g') { details.textContent = titleOf(g); }
  });
  unzoomButton.addEventListener('click', unzoom);
  searchButton.addEventListener('click', function () {
    if (searching) { search(''); return; }
    var term = prompt('Search frames (regular expression)', '');
    if (term) { search(term); }
  });
})();
"""
