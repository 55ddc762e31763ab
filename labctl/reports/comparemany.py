"""Reports (pure): any number of runs, or a sweep's cells, compared like with like.

compare_many() takes columns (name, title, summaries): a run is a column of one summary, a
sweep cell a column of its repetitions' summaries (each value then the median over them). The
first column is the baseline; the others are shown relative to it (labctl.reports.likeforlike:
rates per second, costs per 1,000 packets, per-CPU shares beside the raw counts), with the
expectations of every column (a cell: how many of its repetitions passed each check).
Two runs keep their own fuller comparison (labctl.reports.compare: per-CPU B-A, differential
flame graphs), which carries the same like-for-like table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from labctl.reports import html as hr
from labctl.reports.html import Block, Cell, Facts, Note, Page, Section, Table
from labctl.reports.likeforlike import LikeForLike, like_for_like, render_section, render_text
from labctl.reports.markdown import table
from labctl.runfiles.models import Summary

Column = tuple[str, str, Sequence[Summary]]


@dataclass(frozen=True)
class CheckRow:
    """One expectation (check, description, occurrence) across the columns."""

    check: str
    description: str
    passed: list[int | None]          # per column: repetitions that passed it (None: not checked)
    checked: list[int]                # per column: repetitions that checked it


@dataclass(frozen=True)
class ManyComparison:
    names: list[str]
    titles: list[str]
    checks: list[CheckRow]
    like_for_like: LikeForLike


def compare_many(columns: Sequence[Column]) -> ManyComparison:
    """The columns side by side; the first is the baseline."""
    return ManyComparison([n for n, _, _ in columns], [t for _, t, _ in columns],
                          _checks(columns), like_for_like(columns))


def _checks(columns: Sequence[Column]) -> list[CheckRow]:
    keys: list[tuple[str, str, int]] = []
    counts: dict[tuple[str, str, int], list[list[int]]] = {}
    for i, (_, _, summaries) in enumerate(columns):
        for s in summaries:
            seen: dict[tuple[str, str], int] = {}
            for e in s.expectations:
                n = seen[(e.check, e.description)] = seen.get((e.check, e.description), -1) + 1
                key = (e.check, e.description, n)
                if key not in counts:
                    keys.append(key)
                    counts[key] = [[0, 0] for _ in columns]
                counts[key][i][0] += e.passed
                counts[key][i][1] += 1
    return [CheckRow(check, what, [c[0] if c[1] else None for c in counts[(check, what, n)]],
                     [c[1] for c in counts[(check, what, n)]]) for check, what, n in keys]


def _result(row: CheckRow, i: int) -> str:
    passed, checked = row.passed[i], row.checked[i]
    if passed is None:
        return "-"
    if checked == 1:
        return "PASS" if passed else "FAIL"
    return f"{passed}/{checked} pass"


def render_many_text(c: ManyComparison) -> str:
    out = ["# labctl compare", ""]
    out += [f"- {n}: {t}" for n, t in zip(c.names, c.titles)]
    out += [f"- {c.names[0]} is the baseline: the others are shown relative to it.", ""]
    out += ["## Expectations", ""]
    if c.checks:
        out += [table(["check", "what", *c.names],
                      [[r.check, r.description, *(_result(r, i) for i in range(len(c.names)))]
                       for r in c.checks]), ""]
    else:
        out += ["none in any run", ""]
    out += render_text(c.like_for_like)
    return "\n".join(out).rstrip() + "\n"


def render_many_html(c: ManyComparison) -> str:
    checks: Section
    if c.checks:
        rows = [[Cell(r.check), Cell(r.description)]
                + [Cell(_result(r, i), _class(r, i)) for i in range(len(c.names))] for r in c.checks]
        checks = Section("expectations", "Expectations", [Table(
            [Cell("check"), Cell("what")] + [Cell(n, title=t) for n, t in zip(c.names, c.titles)],
            rows, "expectations")])
    else:
        checks = Section("expectations", "Expectations", [Note("none in any run", "muted")])
    lead: list[Block] = [Facts(list(zip(c.names, c.titles))),
            Note(f"{c.names[0]} is the baseline: the others are shown relative to it.", "muted")]
    return hr.render_page(Page(f"labctl compare: {len(c.names)} columns", lead,
                               [checks, render_section(c.like_for_like)]))


def _class(row: CheckRow, i: int) -> str:
    passed, checked = row.passed[i], row.checked[i]
    if passed is None:
        return "muted"
    return "pass" if passed == checked else "fail" if passed == 0 else "warn"
