"""The live view on a terminal (the edge, beside cli.py): redrawn in place with plain ANSI.

`TerminalLive` draws labctl.reports.live's text on stdout, sized to the terminal at each
redraw (a resized window gets a table that fits), and erases it before the next one (cursor up
over the lines it drew, clear to the end of the screen). Progress lines that arrive meanwhile
(stderr, the same terminal) are printed above the table, which is then drawn again below them.
`PipeLive` prints one table per view, for a pipe or a file (`labctl watch | ...`).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from labctl.analysis.live import HostView
from labctl.reports.live import render_live

PIPE_SIZE = (160, 100_000)      # a pipe has no size: wide enough for every column, every CPU


def is_terminal(stream: TextIO) -> bool:
    """A terminal that understands cursor movement (not TERM=dumb)."""
    try:
        return stream.isatty() and os.environ.get("TERM", "") not in ("", "dumb")
    except (AttributeError, ValueError):
        return False


class TerminalLive:
    """Draws each view in place; `wrap` routes progress messages around the table."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout
        self._lock = threading.RLock()
        self._drawn = 0                  # lines of the table now on screen
        self._text = ""

    def show(self, views: list[HostView]) -> None:
        size = shutil.get_terminal_size()
        text = render_live(views, max(1, size.columns - 1), max(1, size.lines - 2))
        with self._lock:
            self._erase()
            self._draw(text)

    def stop(self) -> None:
        """Leave the last table on screen; what follows is printed below it."""
        with self._lock:
            self._drawn, self._text = 0, ""

    def wrap(self, progress: Callable[[str], None]) -> Callable[[str], None]:
        """A progress function that prints above the table and draws it again."""
        def above(message: str) -> None:
            with self._lock:
                text = self._text
                self._erase()
                progress(message)
                if text:
                    self._draw(text)
        return above

    def _erase(self) -> None:
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self.out.flush()
            self._drawn = 0

    def _draw(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
        self._drawn, self._text = text.count("\n") + 1, text


class PipeLive:
    """One table per view, a blank line between: for pipes and files."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def show(self, views: list[HostView]) -> None:
        columns = shutil.get_terminal_size(PIPE_SIZE).columns
        self.out.write(render_live(views, columns, PIPE_SIZE[1]) + "\n\n")
        self.out.flush()

    def stop(self) -> None:
        pass
