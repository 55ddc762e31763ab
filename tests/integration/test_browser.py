"""report.html, compare.html and sweep.html in a real browser: headless Chromium (Debian's
`chromium`).

The pages are rendered from the fixture runs (tests/fixtures/runs/) with real flame graphs
(tests/fixtures/perf/: f_rps_cpu1 CPUs 1, with its profile numbers, and 2; the differential
c_pinned -> f_rps_cpu1 on CPU 2), sweep.html from the real sweep in progress of
tests/fixtures/sweeps/ (its inline SVG charts), and loaded from files. Chromium is driven over the DevTools protocol through a pipe
(--remote-debugging-pipe: no port at all), in a network namespace of its own when `unshare
--net` works, so it reaches no network. The test fails on any uncaught exception, console error
or error log entry (in the page and in the flame graphs' frames); checks the heatmaps and each
flame graph's SVG in the DOM; clicks a frame of every flame graph (zoom: it must fill the width),
"Reset Zoom", "Search" (answering its prompt) and "Reset Search" with real mouse events; and
saves the pages, full-page screenshots and one of each zoomed flame graph under
$LABCTL_ARTIFACTS (or pytest's tmp_path), printing their paths.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labctl.reports.compare import compare, render_compare_html
from labctl.reports.html import render_html
from labctl.reports.sweep import render_sweep
from labctl.runfiles.series import SeriesFile
from tests.helpers.runs import (
    BASELINE,
    RPS_CPU1,
    guest_differential,
    guest_flamegraph,
    summary,
    with_profile,
)
from tests.helpers.series import chart_series, host_series
from tests.helpers.sweeps import REAL_SWEEP

pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 1400, 3000
MAX_SCREENSHOT_HEIGHT = 16384
SEARCH_TERM = "net_rx_action"
TIMEOUT = 60.0
# Nothing that phones home: no component updates, no sync, no field trials, no translation.
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--disable-field-trial-config", "--no-pings",
    "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
    "--metrics-recording-only", "--mute-audio", "--hide-scrollbars", "--force-color-profile=srgb",
    f"--window-size={WIDTH},{HEIGHT}",
]
# Chromium reads commands on fd 3 and writes replies on fd 4; bash moves our pipes there (dash
# takes single-digit descriptors only).
FD_SHIM = 'eval "exec 3<&$1 4>&$2 $1<&- $2>&-"; shift 2; exec "$@"'


class DevToolsError(RuntimeError):
    pass


class DevTools:
    """A DevTools protocol client over Chromium's pipe (NUL-terminated JSON messages)."""

    def __init__(self, to_chrome: int, from_chrome: int, log: Path):
        self._out, self._in, self._log = to_chrome, from_chrome, log
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.handlers: list[Callable[[dict[str, Any]], None]] = []

    def post(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._out, data):]
        return self._next_id

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = TIMEOUT) -> dict[str, Any]:
        wanted = self.post(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline, method)
            if message.get("id") == wanted:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], since: int,
                 what: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The first event from events[since:] on that matches."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[since:]:
                if predicate(event):
                    return event
            since = len(self.events)
            self._read(deadline, what)

    def pump(self, seconds: float) -> None:
        """Take in whatever arrives for `seconds` (late errors)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self._read(deadline, "")
        except TimeoutError:
            pass

    def _read(self, deadline: float, what: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"DevTools: no answer for {what or 'events'}")
            ready, _, _ = select.select([self._in], [], [], remaining)
            if ready:
                chunk = os.read(self._in, 1 << 20)
                if not chunk:
                    raise DevToolsError(f"chromium closed the pipe (waiting for {what}); its "
                                        f"log:\n{self._log.read_text(errors='replace')[-3000:]}")
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        if "method" in message:
            self.events.append(message)
            for handler in self.handlers:
                handler(message)
        elif "error" in message and "id" in message:
            self.events.append({"method": "labctl.postError", "params": message})
        return message


class Browser:
    """Headless Chromium with one page session; every page error is collected in `errors`."""

    def __init__(self, proc: subprocess.Popen[bytes], devtools: DevTools):
        self.proc, self.devtools = proc, devtools
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.prompt_answers: list[str] = []
        self.dialogs: list[str] = []
        devtools.handlers.append(self._on_event)
        targets = devtools.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session: str = devtools.call("Target.attachToTarget",
                                          {"targetId": page["targetId"], "flatten": True})["sessionId"]
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            devtools.call(method, session=self.session)
        devtools.call("Target.setAutoAttach", {"autoAttach": True, "flatten": True,
                                               "waitForDebuggerOnStart": False}, self.session)
        devtools.call("Emulation.setDeviceMetricsOverride", {
            "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
            self.session)

    def _on_event(self, event: dict[str, Any]) -> None:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append("exception: " + (details.get("exception", {}).get("description")
                                                or details.get("text", "?")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(f"console.{params['type']}: " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Log.entryAdded":
            entry = params["entry"]
            text = f"log {entry['level']} ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}"
            (self.errors if entry["level"] == "error" else self.warnings).append(text)
        elif method == "Page.javascriptDialogOpening":
            self.dialogs.append(f"{params['type']}: {params['message']}")
            answer = self.prompt_answers.pop(0) if self.prompt_answers else ""
            self.devtools.post("Page.handleJavaScriptDialog",
                               {"accept": params["type"] == "prompt" and bool(answer),
                                "promptText": answer}, event.get("sessionId"))
        elif method == "Target.attachedToTarget":   # out-of-process frames: watch them too
            session = params["sessionId"]
            for command in ("Runtime.enable", "Log.enable", "Runtime.runIfWaitingForDebugger"):
                self.devtools.post(command, session=session)
        elif method == "labctl.postError":
            self.errors.append(f"DevTools command failed: {params}")

    def load(self, path: Path) -> None:
        since = len(self.devtools.events)
        result = self.devtools.call("Page.navigate", {"url": path.as_uri()}, self.session)
        assert "errorText" not in result, result
        self.devtools.wait_for(lambda e: e["method"] == "Page.loadEventFired"
                               and e.get("sessionId") == self.session, since, "the load event")
        self.devtools.pump(0.5)

    def evaluate(self, expression: str) -> Any:
        result = self.devtools.call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True}, self.session)
        if "exceptionDetails" in result:
            raise DevToolsError(f"evaluate: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.devtools.call("Input.dispatchMouseEvent", {
                "type": kind, "x": x, "y": y, "button": "none" if kind == "mouseMoved" else "left",
                "clickCount": 0 if kind == "mouseMoved" else 1}, self.session)
        self.devtools.pump(0.2)

    def hover(self, x: float, y: float) -> None:
        self.devtools.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y,
                                                        "button": "none"}, self.session)
        self.devtools.pump(0.2)

    def screenshot(self, path: Path, clip: dict[str, float] | None = None) -> Path:
        if clip is None:
            size = self.devtools.call("Page.getLayoutMetrics", session=self.session)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": max(size["width"], WIDTH),
                    "height": min(size["height"], MAX_SCREENSHOT_HEIGHT)}
        data = self.devtools.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "clip": {**clip, "scale": 1}},
            self.session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.devtools.call("Browser.close", timeout=10)
        except (DevToolsError, TimeoutError, OSError):
            pass


def _network_isolation() -> list[str]:
    """`unshare --net --` when it works here (root, util-linux): Chromium then has no network."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "--", "true"], capture_output=True,
                                  check=False).returncode == 0:
        return [unshare, "--net", "--"]
    return []


def _high_fd(fd: int) -> int:
    """A close-on-exec copy at 10 or above (clear of 3 and 4), the original closed."""
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return copy


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("LABCTL_ARTIFACTS")
    directory = Path(where) if where else tmp_path_factory.mktemp("browser")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def browser(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian package `chromium`; scripts/setup.sh "
                    "installs it)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    log = artifacts / "chromium.log"
    command_read, command_write = os.pipe()
    reply_read, reply_write = os.pipe()
    child_in, child_out = _high_fd(command_read), _high_fd(reply_write)
    argv = [*_network_isolation(), chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
            "about:blank"]
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(["bash", "-c", FD_SHIM, "bash", str(child_in), str(child_out), *argv],
                                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                pass_fds=(child_in, child_out), start_new_session=True)
    os.close(child_in)
    os.close(child_out)
    print(f"\nchromium: {' '.join(argv)} (pid {proc.pid}, log {log})")
    devtools = DevTools(command_write, reply_read, log)
    session = None
    try:
        session = Browser(proc, devtools)
        yield session
    finally:
        if session is not None:
            session.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)     # our own process group (start_new_session)
            proc.wait(timeout=10)
        os.close(command_write)
        os.close(reply_read)


@pytest.fixture(scope="module")
def pages(artifacts: Path) -> dict[str, Path]:
    profiled, graphs = with_profile(summary(RPS_CPU1))              # CPU 1, with its numbers
    graphs["dut"][2] = guest_flamegraph("f_rps_cpu1", 2)
    report = artifacts / "report.html"
    series = SeriesFile(run_id=profiled.run_id, scenario=profiled.scenario,
                        hosts={"dut": chart_series()})
    report.write_text(render_html(profiled, graphs, series))
    compared = artifacts / "compare.html"
    series_a = SeriesFile(run_id="a", scenario="a", hosts={"dut": host_series(
        [1.0, 2.0, 3.0, 4.0], {0: [800.0, 810.0, None, 790.0], 4: [10.0, 12.0, 11.0, 9.0]})})
    compared.write_text(render_compare_html(compare(summary(BASELINE), summary(RPS_CPU1)),
                                            {"dut": {2: guest_differential(2)}}, (series_a, series)))
    swept = artifacts / "sweep.html"
    swept.write_text(render_sweep(REAL_SWEEP)[1])
    print(f"\npages: {report} {compared} {swept}")
    return {"report": report, "compare": compared, "sweep": swept}


DOM_FACTS = """(() => {
  const frames = [...document.querySelectorAll('iframe')];
  return {
    heatmaps: document.querySelectorAll('table.heatmap').length,
    nicHeatmap: document.querySelectorAll('table.heatmap.nic-irqs').length,
    compareHeatmap: document.querySelectorAll('table.heatmap.compare').length,
    isolated: [...document.querySelectorAll('table.heatmap thead th.iso')].map(e => e.textContent),
    scripts: document.scripts.length,
    graphs: frames.map(f => {
      const d = f.contentDocument;
      if (!d) { return null; }
      return {svg: d.querySelectorAll('svg').length, frames: d.querySelectorAll('#frames g').length,
              left: d.documentElement.getAttribute('data-left'),
              width: d.querySelector('svg').getBoundingClientRect().width,
              scripts: d.querySelectorAll('script').length};
    }),
  };
})()"""

# In graph `index`: a frame to zoom into (picked once: the widest one with another frame on its
# row), its page coordinates, and the state of the graph's controls.
GRAPH_STATE = """((index, pick) => {
  const frame = document.querySelectorAll('iframe')[index];
  frame.scrollIntoView({block: 'start'});
  const d = frame.contentDocument, box = frame.getBoundingClientRect();
  const span = +d.documentElement.getAttribute('data-span');
  const at = e => { const r = e.getBoundingClientRect();
                    return [box.left + r.left + r.width / 2, box.top + r.top + r.height / 2]; };
  const groups = [...d.querySelectorAll('#frames g')];
  const rect = g => g.querySelector('rect');
  let target = d.querySelector('[data-labctl-target]');
  if (pick && !target) {   // the widest frame with a neighbour on its row (zoom hides that one)
    const rows = {};
    groups.forEach(g => { const y = rect(g).getAttribute('y'); rows[y] = (rows[y] || 0) + 1; });
    target = groups.filter(g => rows[rect(g).getAttribute('y')] > 1)
                   .sort((a, b) => rect(b).getAttribute('width') - rect(a).getAttribute('width'))[0];
    target.setAttribute('data-labctl-target', '1');
  }
  return {
    span: span,
    target: target ? {name: target.querySelector('title').textContent,
                      width: +rect(target).getAttribute('width'), at: at(rect(target))} : null,
    hidden: groups.filter(g => g.style.display === 'none').length,
    unzoom: {cls: d.getElementById('unzoom').getAttribute('class'), at: at(d.getElementById('unzoom'))},
    search: {text: d.getElementById('search').textContent, at: at(d.getElementById('search'))},
    matched: d.getElementById('matched').textContent,
    highlighted: groups.filter(g => rect(g).getAttribute('fill') === 'rgb(230,0,230)').length,
    clip: {x: box.left + window.scrollX, y: box.top + window.scrollY,
           width: box.width, height: box.height},
  };
})"""


def graph_state(browser: Browser, index: int, pick: bool = False) -> dict[str, Any]:
    state: dict[str, Any] = browser.evaluate(f"{GRAPH_STATE}({index}, {json.dumps(pick)})")
    return state


def exercise_flamegraph(browser: Browser, index: int, shot: Path) -> str:
    """Zoom, reset, search, reset search in graph `index` with real clicks; returns the search's
    "Matched" text."""
    before = graph_state(browser, index, pick=True)
    target = before["target"]
    assert before["unzoom"]["cls"] == "control hide" and before["hidden"] == 0
    browser.click(*target["at"])
    zoomed = graph_state(browser, index)
    assert zoomed["target"]["width"] == pytest.approx(zoomed["span"], abs=0.01), target["name"]
    assert zoomed["unzoom"]["cls"] == "control" and zoomed["hidden"] > 0
    print(f"zoomed into {target['name']!r}: {shot}")
    browser.screenshot(shot, zoomed["clip"])
    browser.click(*zoomed["unzoom"]["at"])
    reset = graph_state(browser, index)
    assert reset["target"]["width"] == pytest.approx(target["width"], abs=0.01)
    assert reset["unzoom"]["cls"] == "control hide" and reset["hidden"] == 0
    browser.prompt_answers.append(SEARCH_TERM)
    browser.click(*reset["search"]["at"])
    found = graph_state(browser, index)
    assert browser.dialogs[-1].startswith("prompt: Search frames")
    assert found["matched"].startswith("Matched: ") and found["highlighted"] > 0, found
    assert found["search"]["text"] == "Reset Search"
    browser.click(*found["search"]["at"])
    cleared = graph_state(browser, index)
    assert cleared["highlighted"] == 0 and cleared["search"]["text"] == "Search"
    matched: str = found["matched"]
    return matched


def check_page(browser: Browser, page: Path, artifacts: Path, name: str, graphs: int) -> None:
    browser.load(page)
    facts = browser.evaluate(DOM_FACTS)
    assert facts["scripts"] == 0                               # the page has no script of its own
    assert facts["heatmaps"] >= 1 and facts["isolated"][:4] == ["CPU4*", "CPU5*", "CPU6*", "CPU7*"]
    assert len(facts["graphs"]) == graphs
    for graph in facts["graphs"]:
        assert graph and graph["svg"] == 1 and graph["frames"] > 10 and graph["scripts"] == 1
        assert graph["left"] == "10" and graph["width"] == 1200
    shot = browser.screenshot(artifacts / f"{name}.png")
    print(f"screenshot: {shot}")
    for index in range(graphs):
        matched = exercise_flamegraph(browser, index, artifacts / f"{name}-flamegraph{index}-zoomed.png")
        print(f"{name} flame graph {index}: search {SEARCH_TERM!r} -> {matched}")
    browser.devtools.pump(0.5)


def test_report_html_in_chromium(browser: Browser, pages: dict[str, Path], artifacts: Path) -> None:
    check_page(browser, pages["report"], artifacts, "report", graphs=2)
    facts = browser.evaluate(DOM_FACTS)
    assert facts["nicHeatmap"] == 1
    charts = check_line_charts(browser, "dut: NET_RX softirqs per second", "CPU4",
                               "CPU4 (isolated CPU) at 2 s: 310/s", artifacts / "report-chart.png")
    assert len(charts) == 6 and charts[0]["iso"] == 0 and charts[1]["iso"] == 1
    assert browser.errors == [], "\n".join(browser.errors)
    print("warnings:", browser.warnings or "none")


def test_compare_html_in_chromium(browser: Browser, pages: dict[str, Path], artifacts: Path) -> None:
    check_page(browser, pages["compare"], artifacts, "compare", graphs=1)
    assert browser.evaluate(DOM_FACTS)["compareHeatmap"] == 1
    charts = check_line_charts(browser, "dut: NET_RX softirqs per second, A vs B", "CPU4 B",
                               "CPU4 B (isolated CPU) at 2 s: 310/s", artifacts / "compare-chart.png")
    assert len(charts) == 2 and charts[0]["dashed"] == 2       # B's CPU0 and CPU4: dashed
    assert browser.errors == [], "\n".join(browser.errors)
    print("warnings:", browser.warnings or "none")


LINE_CHARTS = """(() => [...document.querySelectorAll('figure.chart svg.line-chart')].map(svg => {
  const r = svg.getBoundingClientRect();
  return {title: svg.querySelector('title').textContent, width: r.width, height: r.height,
          lines: svg.querySelectorAll('g.line').length, points: svg.querySelectorAll('circle.pt').length,
          iso: svg.querySelectorAll('g.legend.iso').length,
          dashed: svg.querySelectorAll('g.line path[stroke-dasharray]').length};
}))()"""

# The point of `label` at the second interval in chart `title`: scrolled into view, its centre.
POINT_AT = """((title, label) => {
  const svg = [...document.querySelectorAll('svg.line-chart')]
                .find(s => s.querySelector('title').textContent === title);
  const point = svg.querySelectorAll(`g.line[data-label="${label}"] circle.pt`)[1];
  point.setAttribute('data-labctl-target', '1');
  point.scrollIntoView({block: 'center'});
  const r = point.getBoundingClientRect();
  const box = svg.getBoundingClientRect();
  return {x: r.left + r.width / 2, y: r.top + r.height / 2,
          clip: {x: box.left + window.scrollX, y: box.top + window.scrollY,
                 width: box.width, height: box.height}};
})"""

HOVERED = """(() => {
  const hovered = [...document.querySelectorAll(':hover')].pop();
  return {target: hovered === document.querySelector('[data-labctl-target]'),
          title: hovered.querySelector('title') ? hovered.querySelector('title').textContent : null,
          opacity: getComputedStyle(hovered).fillOpacity};
})()"""


def check_line_charts(browser: Browser, title: str, label: str, expected: str,
                      shot: Path) -> list[dict[str, Any]]:
    """The page's line charts are drawn (inline SVG, sized, lines and points), and a real mouse
    over one point shows it (CSS :hover) with its exact value in its title."""
    charts: list[dict[str, Any]] = browser.evaluate(LINE_CHARTS)
    assert charts and all(c["width"] == 560 and c["height"] > 240 and c["lines"] >= 1
                          and c["points"] >= c["lines"] for c in charts), charts
    assert any(c["title"] == title for c in charts), [c["title"] for c in charts]
    point = browser.evaluate(f"{POINT_AT}({json.dumps(title)}, {json.dumps(label)})")
    assert browser.evaluate(HOVERED)["opacity"] == "0" or not browser.evaluate(HOVERED)["target"]
    browser.hover(point["x"], point["y"])
    hovered = browser.evaluate(HOVERED)
    assert hovered == {"target": True, "title": expected, "opacity": "1"}, hovered
    print(f"hovered {expected!r}: {browser.screenshot(shot, point['clip'])}")
    return charts


SWEEP_FACTS = """(() => {
  const charts = [...document.querySelectorAll('figure.chart svg')];
  return {
    scripts: document.scripts.length,
    charts: charts.map(svg => { const r = svg.getBoundingClientRect();
                                return {width: r.width, height: r.height,
                                        marks: svg.querySelectorAll('g.cell').length}; }),
    titles: [...document.querySelectorAll('figure.chart g.cell > title')].map(e => e.textContent),
    flaky: [...document.querySelectorAll('table.cells td.fail')].map(e => e.textContent),
  };
})()"""


def test_sweep_html_in_chromium(browser: Browser, pages: dict[str, Path], artifacts: Path) -> None:
    """The charts are drawn (inline SVG, sized, a mark per cell whose title carries the exact
    values), the flaky cell is marked, and nothing logs an error."""
    browser.load(pages["sweep"])
    facts = browser.evaluate(SWEEP_FACTS)
    assert facts["scripts"] == 0 and len(facts["charts"]) == 7
    assert all(c["width"] == 380 and c["height"] == 230 and c["marks"] == 2 for c in facts["charts"])
    assert any(t.startswith("cell 1 (rps.rx-0=none): achieved msg/s median 7,104, range "
                            "6,144–8,065") for t in facts["titles"]), facts["titles"]
    assert facts["flaky"] == ["flaky"]
    print(f"screenshot: {browser.screenshot(artifacts / 'sweep.png')}")
    browser.devtools.pump(0.5)
    assert browser.errors == [], "\n".join(browser.errors)


def test_errors_in_the_page_and_in_its_frames_are_caught(browser: Browser, tmp_path: Path) -> None:
    """The error check above is not blind: an exception and a console.error, in the page and in
    a srcdoc frame (where the flame graphs run), all come back."""
    page = tmp_path / "errors.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("labctl-console");'
                    'throw new Error("labctl-page")</script><iframe srcdoc="&lt;script&gt;throw '
                    'new Error(&quot;labctl-frame&quot;)&lt;/script&gt;"></iframe></body></html>')
    browser.load(page)
    found = "\n".join(browser.errors)
    browser.errors.clear()
    for marker in ("console.error: labctl-console", "labctl-page", "labctl-frame"):
        assert marker in found, found
