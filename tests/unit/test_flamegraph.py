"""labctl.reports.flamegraph: SVG structure, colours, escaping, differential graphs (no timing here:
rendering speed is bench/fold.py's business)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

import labctl.reports.flamegraph as flamegraph
from labctl.analysis.fold import FoldOptions, FoldResult, fold_perf_script
from labctl.errors import RunError
from labctl.reports.flamegraph import (
    cpu_differential,
    cpu_flamegraph,
    cpu_subtitle,
    event_label,
    render_differential,
    render_flamegraph,
)
from tests.helpers import fixture

SVG = "{http://www.w3.org/2000/svg}"
RGB = re.compile(r"rgb\((\d+),(\d+),(\d+)\)")


def guest(scenario: str) -> FoldResult:
    text = fixture(f"perf/guest-6.1-tcg.{scenario}.perf_script.txt")
    return fold_perf_script(text, FoldOptions(annotate_kernel=True))


def frames(svg: str) -> list[dict[str, str]]:
    """Each frame: its title, rect attributes and label, from the parsed SVG."""
    root = ET.fromstring(svg.encode())
    group = root.find(f".//{SVG}g[@id='frames']")
    assert group is not None
    out = []
    for g in group.findall(f"{SVG}g"):
        title, rect, text = g.find(f"{SVG}title"), g.find(f"{SVG}rect"), g.find(f"{SVG}text")
        assert title is not None and rect is not None and text is not None
        out.append({"title": title.text or "", "label": text.text or "", **rect.attrib})
    return out


def by_name(svg: str) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for frame in frames(svg):
        found.setdefault(frame["title"].rsplit(" (", 1)[0], []).append(frame)
    return found


def rgb(fill: str) -> tuple[int, int, int]:
    match = RGB.fullmatch(fill)
    assert match, fill
    r, g, b = (int(v) for v in match.groups())
    return r, g, b


SMALL = {"a;b;c": 3, "a;b": 1, "a;d_[k]": 2, "e;b": 4}


def test_guest_flamegraph_is_well_formed_with_titled_frames() -> None:
    result = guest("c_pinned.cpu2")
    svg = cpu_flamegraph(result, 2)
    root = ET.fromstring(svg.encode())
    assert root.tag == f"{SVG}svg"
    names = by_name(svg)
    assert {"all", "swapper", "ksoftirqd/2", "net_rx_action_[k]", "__napi_poll_[k]"} <= names.keys()
    assert names["all"][0]["title"] == "all (197 samples, 100.00%)"
    assert all(re.search(r" \([\d,]+ samples?, \d+\.\d\d%\)$", f["title"]) for f in frames(svg))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "CPU 2" in texts and "CPU 2 — 197 samples, cpu-clock (no PMU)" in texts


def test_script_with_zoom_and_search_is_inline_and_nothing_is_fetched() -> None:
    svg = render_flamegraph(SMALL, title="t")
    root = ET.fromstring(svg.encode())
    scripts = list(root.iter(f"{SVG}script"))
    assert len(scripts) == 1 and "<![CDATA[" in svg
    code = scripts[0].text or ""
    for needle in ("function zoom", "function unzoom", "function search", "prompt(", "Matched: "):
        assert needle in code
    controls = {t.get("id"): t.text for t in root.iter(f"{SVG}text") if t.get("id")}
    assert controls["search"] == "Search" and controls["unzoom"] == "Reset Zoom"
    assert not re.search(r"href|src=|@import|url\(|<link", svg)
    assert svg.count("http://") == 1  # the SVG namespace, which is a name, not a fetch


def test_widths_are_proportional_root_at_the_bottom_children_from_the_left() -> None:
    names = by_name(render_flamegraph(SMALL, title="t", width=1200))  # 1180 px for 10 samples
    (root,), (a,), (e,), (c,) = names["all"], names["a"], names["e"], names["c"]
    assert [float(f["width"]) for f in (root, a, e, c)] == [1180.0, 708.0, 472.0, 354.0]
    assert sorted(float(f["width"]) for f in names["b"]) == [472.0, 472.0]
    assert float(root["y"]) > float(a["y"]) > float(names["b"][0]["y"]) > float(c["y"])
    b_under_a = min(names["b"], key=lambda f: float(f["x"]))
    assert float(c["x"]) == float(b_under_a["x"]) == float(a["x"]) == 10.0
    assert names["e"][0]["title"] == "e (4 samples, 40.00%)"


def test_kernel_and_user_frames_have_different_colour_families() -> None:
    found = by_name(cpu_flamegraph(guest("c_pinned.cpu2"), 2))
    kernel = [rgb(f["fill"]) for name, fs in found.items() if name.endswith("_[k]") for f in fs]
    user = [rgb(f["fill"]) for name, fs in found.items()
            if not name.endswith("_[k]") and not name.startswith("[unknown]") and name != "all"
            for f in fs]
    assert kernel and user
    assert all(b >= 165 and g >= 165 and r <= 110 for r, g, b in kernel)  # blue-green
    assert all(r >= 205 and b <= 55 for r, g, b in user)  # red-yellow


def test_colours_are_deterministic_per_name() -> None:
    one = by_name(render_flamegraph({"x;net_rx_action_[k]": 1, "y": 5}, title="1"))
    two = by_name(render_flamegraph({"z;q;net_rx_action_[k]": 9}, title="2"))
    assert one["net_rx_action_[k]"][0]["fill"] == two["net_rx_action_[k]"][0]["fill"]


def test_tiny_frames_are_pruned_but_counted() -> None:
    stacks = {"big;work": 100_000, "big;tiny": 1}
    names = by_name(render_flamegraph(stacks, title="t", min_width_px=0.1))
    assert "tiny" not in names
    assert names["all"][0]["title"] == "all (100,001 samples, 100.00%)"
    assert names["big"][0]["width"] == "1180.00"
    assert names["work"][0]["title"] == "work (100,000 samples, 100.00%)"


def test_names_are_escaped() -> None:
    nasty = ['operator<<(std::ostream&, "q")', "a&b", "x]]>y", "ctl\x01\x07char", "'quote'"]
    stacks = {";".join(["root", name]): i + 1 for i, name in enumerate(nasty)}
    svg = render_flamegraph(stacks, title="<t&>", subtitle='"s"')
    names = by_name(svg)
    for name in nasty[:3] + nasty[4:]:
        assert name in names
    assert "ctl\ufffd\ufffdchar" in names
    assert "&lt;t&amp;&gt;" in svg and "&lt;&lt;(std::ostream&amp;, &quot;q&quot;)" in svg


def test_labels_are_cut_to_fit_and_empty_when_narrow() -> None:
    long_name = "a_very_long_function_name_that_cannot_fit_in_a_narrow_frame"
    names = by_name(render_flamegraph({long_name: 1, "wide": 20, "x;" + long_name: 1}, title="t"))
    narrow = [f["label"] for f in names[long_name]]
    assert all(label == "" or (label.endswith("..") and len(label) < len(long_name)) for label in narrow)
    assert names["wide"][0]["label"] == "wide"


def test_no_samples_is_an_error_not_an_empty_graph() -> None:
    with pytest.raises(RunError, match="no samples"):
        render_flamegraph({}, title="t")
    with pytest.raises(RunError, match="no samples"):
        render_flamegraph({"a;b": 0}, title="t")


def test_cpu_without_samples_says_why() -> None:
    result = fold_perf_script("")
    with pytest.raises(RunError, match=r"CPU 3: no samples \(no samples\)"):
        cpu_flamegraph(result, 3)
    with pytest.raises(RunError, match="CPU 5: no samples"):
        cpu_flamegraph(guest("c_pinned.cpu2"), 5)


def test_subtitles() -> None:
    assert cpu_subtitle(2, 1234, ["cpu-clock:ppp"]) == "CPU 2 — 1,234 samples, cpu-clock (no PMU)"
    assert cpu_subtitle(-1, 1, ["cycles:P"]) == "no CPU field — 1 sample, cycles:P"
    assert event_label(["task-clock", "cycles"]) == "cycles, task-clock (no PMU)"


# --- differential ---------------------------------------------------------------------------


def test_differential_colours_by_change_of_share() -> None:
    before = {"app;grow": 10, "app;shrink": 50, "app;same": 40}
    after = {"app;grow": 60, "app;shrink": 10, "app;same": 40, "app;new": 90}  # 200 samples
    svg = render_differential(before, after, title="A vs B")
    names = by_name(svg)
    assert "A vs B" in [t.text for t in ET.fromstring(svg.encode()).iter(f"{SVG}text")]
    grow, shrink, new = (rgb(names[n][0]["fill"]) for n in ("grow", "shrink", "new"))
    assert grow[0] == 250 and grow[1] == grow[2] < 250  # red: 10% -> 30%
    assert shrink[2] == 250 and shrink[0] == shrink[1] < 250  # blue: 50% -> 5%
    assert new[0] == 250 and new[1] == 40  # 0% -> 45%: the largest change, fully saturated
    same = rgb(names["same"][0]["fill"])  # 40% -> 20%: bluish, fainter than shrink
    assert same[2] == 250 and same[0] > shrink[0]
    assert names["grow"][0]["title"] == (
        "grow (B: 60 samples, 30.00%; A: 10 samples, 10.00%; +20.00 pp)"
    )
    assert names["app"][0]["width"] == "1180.00"


def test_differential_unchanged_is_white_and_frames_only_in_a_are_not_drawn() -> None:
    names = by_name(render_differential({"a;x": 5, "gone": 5}, {"a;x": 10}, title="t"))
    assert "gone" not in names
    assert names["all"][0]["fill"] == "rgb(250,250,250)"


def test_cpu_differential_of_two_runs() -> None:
    svg = cpu_differential(guest("c_pinned.cpu2"), guest("f_rps_cpu1.cpu2"), 2,
                           name_a="c_pinned", name_b="f_rps_cpu1")
    texts = [t.text or "" for t in ET.fromstring(svg.encode()).iter(f"{SVG}text")]
    assert "CPU 2: c_pinned vs f_rps_cpu1" in texts
    names = by_name(svg)
    assert "get_rps_cpu_[k]" in names  # only in B (RPS): drawn, red
    assert rgb(names["get_rps_cpu_[k]"][0]["fill"])[0] == 250


def test_differential_needs_samples_in_both_runs() -> None:
    with pytest.raises(RunError, match="run A has no samples"):
        render_differential({}, {"a": 1}, title="t")
    with pytest.raises(RunError, match="no samples in B"):
        cpu_differential(guest("c_pinned.cpu2"), fold_perf_script(""), 2)


def test_too_many_frames_raise_the_minimum_width_and_say_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flamegraph, "MAX_FRAMES", 20)
    stacks = {f"root;f{i};g{i}": 1 for i in range(40)} | {"root;big": 400}
    svg = render_flamegraph(stacks, title="t")
    drawn = by_name(svg)
    assert len(frames(svg)) <= 20 and "big" in drawn
    assert drawn["root"][0]["title"] == "root (440 samples, 100.00%)"
    assert "px are not drawn (over 20)" in svg
