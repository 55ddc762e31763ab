"""Sweeps (pure, layer "input"): a scenario with a matrix, expanded into cells, each validated.

A sweep file is a scenario plus its own keys: ``matrix:`` (dotted path of a scenario field ->
list of values), ``repeat:`` (runs per cell, default 1), ``order:`` (sequential or shuffled)
and ``seed:`` (of the shuffle). Each cell is the scenario with one value per path put in:
a YAML null removes the key (and a mapping the removal leaves empty, so that
``tuning.dut.channels.combined: [null, 2]`` means "channels left alone" and "2 channels"); any
other value is the field's own (``none`` is RPS off for an RPS mask, as in a scenario).

Every cell is validated by the scenario's own model and checks, with the positions of the
matrix entry where a value came from: a problem a cell's values cause names the cell and
points at the value in the matrix; a problem of the scenario itself is reported once.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
import random
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from labctl.cpulist import format_cpulist
from labctl.errors import Problem, ValidationError
from labctl.input.config import (
    SWEEP_KEYS,
    Loaded,
    invalid,
    read_located,
    scenario_from,
)
from labctl.input.model import Inventory, Scenario
from labctl.input.yamlpos import KeyPath, Located, format_path, shorten

MAX_CELLS = 1000            # more only when the user says so (--allow-large)
HARD_MAX_CELLS = 100_000    # not even then: each cell is validated and planned before the first runs
MAX_REPEAT = 1000
Order = Literal["sequential", "shuffled"]
_PART = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


@dataclass(frozen=True)
class Axis:
    """One matrix entry: the field's path (as written and parsed) and its values."""

    path: str
    parts: KeyPath
    values: list[Any]
    line: int
    column: int


@dataclass(frozen=True)
class Cell:
    """One combination of values, as a validated scenario."""

    index: int                          # 1..n, in matrix order
    choice: tuple[int, ...]             # the index of its value in each axis
    values: dict[str, Any]              # matrix path -> value
    label: str
    scenario: Loaded[Scenario]


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file: its axes, settings and every cell."""

    path: Path
    text: str
    axes: list[Axis]
    repeat: int
    order: Order
    seed: int | None
    cells: list[Cell]
    located: Located                    # the file as read (positions of the matrix entries)

    @property
    def name(self) -> str:
        name = self.cells[0].scenario.model.name
        assert name
        return name

    def relocated(self, path: Path) -> Sweep:
        """The same sweep, its cells' scenarios read from ``path`` (the sweep directory's copy),
        so that each run's manifest names the file as the sweep keeps it."""
        cells = [replace(c, scenario=replace(c.scenario, path=path)) for c in self.cells]
        return replace(self, cells=cells)


@dataclass
class _Settings:
    axes: list[Axis] = field(default_factory=list)
    repeat: int = 1
    order: Order = "sequential"
    seed: int | None = None


def load_sweep(path: Path, inventory: Inventory, allow_large: bool = False,
               name: str | None = None) -> Sweep:
    """A sweep file, every cell validated (all problems at once). ``name`` names the
    scenario when the file has no ``name:`` (a resumed sweep's copy is not named after it)."""
    located = read_located(path)
    if located.problems:
        raise invalid(located.problems)
    if not isinstance(located.data, dict):
        scenario_from(located, path, inventory)     # refuses it, with the usual message
        raise AssertionError("a file that is no mapping is refused")
    settings, problems = _settings(located, allow_large)
    if problems:
        raise invalid(problems)
    base = {k: v for k, v in located.data.items() if k not in SWEEP_KEYS}
    if name is not None and "name" not in base:
        base["name"] = name
    cells = _cells(located, base, settings.axes, path, inventory)
    text = path.read_text(encoding="utf-8-sig")
    return Sweep(path, text, settings.axes, settings.repeat, settings.order, settings.seed, cells,
                 located)


NO_MATRIX = "(no matrix)"


# --------------------------------------------------------------------------- the sweep's keys

def _settings(located: Located, allow_large: bool) -> tuple[_Settings, list[Problem]]:
    data: dict[str, Any] = located.data
    settings, problems = _Settings(), list[Problem]()
    if "matrix" in data:
        settings.axes, problems = _axes(located, data["matrix"], allow_large)
    repeat = data.get("repeat", 1)
    if not _is_int(repeat) or not 1 <= repeat <= MAX_REPEAT:
        problems.append(located.problem(("repeat",), f"runs per cell: a whole number from 1 to "
                                        f"{MAX_REPEAT}, got {shorten(repr(repeat), 40)}"))
    else:
        settings.repeat = repeat
    order = data.get("order", "sequential")
    if order not in ("sequential", "shuffled"):
        problems.append(located.problem(("order",), f"sequential or shuffled, got {shorten(repr(order), 40)}"))
    else:
        settings.order = order
    seed = data.get("seed")
    if seed is not None and (not _is_int(seed) or not 0 <= seed < 2**63):
        problems.append(located.problem(("seed",), f"the shuffle's seed: a whole number >= 0, got "
                                        f"{shorten(repr(seed), 40)}"))
    elif seed is not None and order != "shuffled":
        problems.append(located.problem(("seed",), "a seed orders a shuffled sweep: add "
                                        "`order: shuffled` or remove `seed:`", of_key=True))
    else:
        settings.seed = seed
    return settings, problems


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _axes(located: Located, matrix: Any, allow_large: bool) -> tuple[list[Axis], list[Problem]]:
    if not isinstance(matrix, dict) or not matrix:
        what = "an empty matrix" if matrix in ({}, None) else f"not a mapping ({type(matrix).__name__})"
        return [], [located.problem(("matrix",), f"{what}: give field paths and their values, e.g. "
                                    "`load.client.rate: [1000, 4000]` (or remove `matrix:` to run "
                                    "the scenario `repeat` times as one cell)", of_key=True)]
    axes, problems = [], []
    for key, values in matrix.items():
        where = ("matrix", key)
        line, column = located.position(where, of_key=True)
        parts, why = parse_path(key) if isinstance(key, str) else (None, "a matrix path is a string")
        why = why or (_path_problem(parts, located.data) if parts is not None else None)
        if why:
            problems.append(located.problem(where, why, of_key=True))
        elif not isinstance(values, list) or not values:
            problems.append(located.problem(where, "an empty list of values" if values == [] else
                                            "a list of values, e.g. [1, 2, 4]"))
        else:
            problems += _duplicate_values(located, where, values)
            assert parts is not None
            axes.append(Axis(str(key), parts, values, line, column))
    problems += _overlaps(located, axes) + _size_problems(located, axes, allow_large)
    return axes, problems


def parse_path(text: str) -> tuple[KeyPath | None, str | None]:
    """'tuning.dut.rps.rx-0' -> ('tuning', 'dut', 'rps', 'rx-0'); 'expect[0].min' ->
    ('expect', 0, 'min'). Returns (None, why) for a path that cannot be parsed."""
    parts: list[Any] = []
    for piece in text.split("."):
        match = _PART.fullmatch(piece.strip())
        if not match:
            return None, (f"matrix path {shorten(repr(text), 60)}: not a dotted path of fields "
                          "(e.g. tuning.dut.rps.rx-0, expect[0].min)")
        parts.append(match.group(1))
        parts += [int(i) for i in re.findall(r"\[(\d+)\]", match.group(2))]
    return tuple(parts), None


def _duplicate_values(located: Located, where: KeyPath, values: list[Any]) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for i, value in enumerate(values):
        key = _value_key(value)
        if key in seen:
            problems.append(located.problem(where + (i,), f"the value {shorten(key, 40)} is listed "
                                            "twice (repeat: runs a cell several times)"))
        seen.add(key)
    return problems


def _value_key(value: Any) -> str:
    """A value's identity for comparison: 1 and true differ, key order does not matter."""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except TypeError:               # keys of mixed types (1 and "a") cannot be sorted
        return json.dumps(value, default=str)


def _overlaps(located: Located, axes: list[Axis]) -> list[Problem]:
    problems = []
    for a, b in itertools.combinations(axes, 2):
        shorter, longer = sorted((a.parts, b.parts), key=len)
        if longer[:len(shorter)] == shorter:
            problems.append(located.problem(("matrix", b.path), f"overlaps the matrix path {a.path!r}: "
                                            "one field, one entry", of_key=True))
    return problems


def _size_problems(located: Located, axes: list[Axis], allow_large: bool) -> list[Problem]:
    size = math.prod(len(a.values) for a in axes)
    if size > HARD_MAX_CELLS or (size > MAX_CELLS and not allow_large):
        limit = (f"more than {HARD_MAX_CELLS}, even with --allow-large" if size > HARD_MAX_CELLS
                 else f"more than {MAX_CELLS}: say --allow-large if you mean it")
        shape = " x ".join(str(len(a.values)) for a in axes)
        return [located.problem(("matrix",), f"{size} cells ({shape}), {limit}", of_key=True)]
    return []


# --------------------------------------------------------------------------- paths in the model

def _path_problem(parts: KeyPath, data: Any) -> str | None:
    """Why a parsed path names no field of a scenario (None: it names one)."""
    if parts[0] in SWEEP_KEYS:
        return f"{parts[0]!r} is the sweep's own key, not a scenario field"
    annotation: Any = Scenario
    node = data
    for depth, part in enumerate(parts):
        where = format_path(parts[:depth]) or "a scenario"
        kind = _unwrap(annotation, node)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names = {f.alias or n: f for n, f in kind.model_fields.items()}
            if part not in names:
                return _no_field(parts, where, part, sorted(names))
            annotation = names[part].annotation
        elif typing.get_origin(kind) is dict and isinstance(part, str):
            annotation = typing.get_args(kind)[1]
        elif typing.get_origin(kind) is list and isinstance(part, int):
            count = len(node) if isinstance(node, list) else 0
            if part >= count:
                return (f"matrix path {format_path(parts)!r}: {where} has no item [{part}] "
                        f"(it has {count}); a path can only change an item the scenario has")
            annotation = typing.get_args(kind)[0]
        else:
            return (f"matrix path {format_path(parts)!r} names no field: {where} is a value, "
                    f"it has no {'item' if isinstance(part, int) else 'field'} {part!r}")
        node = _child(node, part)
    return None


def _no_field(parts: KeyPath, where: str, part: Any, allowed: list[str]) -> str:
    message = f"matrix path {format_path(parts)!r} names no field: {where} has no {part!r}"
    close = difflib.get_close_matches(str(part), allowed, n=1, cutoff=0.6)
    return message + (f"; did you mean {close[0]!r}?" if close else f"; it has: {', '.join(allowed)}")


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return None


def _unwrap(annotation: Any, node: Any) -> Any:
    """Annotated/Optional stripped; of a union, the member that can hold the data (a model by
    its `check` tag, else the first model, else the first container)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [m for m in typing.get_args(annotation) if m is not type(None)]
            annotation = _member(members, node)
        else:
            return annotation


def _member(members: list[Any], node: Any) -> Any:
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    check = node.get("check") if isinstance(node, dict) else None
    tagged = [m for m in models if "check" in m.model_fields
              and check in typing.get_args(m.model_fields["check"].annotation)]
    containers = [m for m in members if typing.get_origin(m) in (dict, list)]
    return (tagged or models or containers or members)[0]


# --------------------------------------------------------------------------- cells

def cell_choices(axes: Sequence[Axis]) -> list[tuple[int, ...]]:
    """Every combination, as an index into each axis's values; the first axis varies slowest
    (matrix order)."""
    return list(itertools.product(*(range(len(a.values)) for a in axes)))


def cell_values(axes: Sequence[Axis], choice: tuple[int, ...]) -> dict[str, Any]:
    return {a.path: a.values[i] for a, i in zip(axes, choice)}


def cell_label(values: dict[str, Any]) -> str:
    """'rps.rx-0=1, channels.combined=2': each path by its last two parts (whole where two
    would read the same), each value as written."""
    short = {p: ".".join(p.split(".")[-2:]) for p in values}
    clash = {s for s in short.values() if list(short.values()).count(s) > 1}
    return ", ".join(f"{p if short[p] in clash else short[p]}={value_text(v)}"
                     for p, v in values.items()) or NO_MATRIX


def value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def with_value(data: dict[str, Any], parts: KeyPath, value: Any) -> tuple[dict[str, Any], list[KeyPath]]:
    """``data`` with ``value`` at ``parts`` (a copy), and the mappings made to hold it. None
    removes the key, and any mapping the removal leaves empty."""
    result = copy.deepcopy(data)
    node: Any = result
    created: list[KeyPath] = []
    chain = [result]
    for depth, part in enumerate(parts[:-1]):
        child = _child(node, part)
        if (child is None and value is None) or not _holds(node, part):
            return result, []       # nothing there to remove; or the scenario's own problem there
        if not isinstance(child, (dict, list)):
            child = {}
            node[part] = child
            created.append(parts[:depth + 1])
        node = child
        chain.append(node)
    leaf = parts[-1]
    if not _holds(node, leaf):
        return result, []
    if value is not None:
        node[leaf] = copy.deepcopy(value)
    elif isinstance(node, dict):
        node.pop(leaf, None)
        _prune(chain, parts)
    else:
        node[leaf] = None
    return result, created


def _holds(node: Any, part: Any) -> bool:
    """``node[part]`` can be set: a key of a mapping, an existing item of a list."""
    if isinstance(node, list):
        return isinstance(part, int) and 0 <= part < len(node)
    return isinstance(node, dict)


def _prune(chain: list[Any], parts: KeyPath) -> None:
    for depth in range(len(chain) - 1, 0, -1):
        if chain[depth] != {} or not isinstance(chain[depth - 1], dict):
            return
        chain[depth - 1].pop(parts[depth - 1], None)


def _cells(located: Located, base: dict[str, Any], axes: list[Axis], path: Path,
           inventory: Inventory) -> list[Cell]:
    cells, outcomes = [], []
    for index, choice in enumerate(cell_choices(axes), 1):
        try:
            loaded = scenario_from(_cell_located(located, base, axes, choice), path, inventory)
            values = cell_values(axes, choice)
            cells.append(Cell(index, choice, values, cell_label(values), loaded))
        except ValidationError as exc:
            outcomes.append(CellProblems(index, choice, exc.problems))
    problems = cell_problems(outcomes, len(cells) + len(outcomes), axes, located)
    if problems:
        raise invalid(problems)
    return cells


def _cell_located(located: Located, base: dict[str, Any], axes: list[Axis],
                  choice: tuple[int, ...]) -> Located:
    """The cell's data, with the base file's positions, except where the matrix put a value:
    there (and in the mappings made to hold it) the matrix value's own position."""
    data = base
    positions, keys = dict(located.values), dict(located.keys)
    for axis, index in zip(axes, choice):
        data, created = with_value(data, axis.parts, axis.values[index])
        for table in (positions, keys):
            for p in [p for p in table if p[:len(axis.parts)] == axis.parts]:
                del table[p]
        source = ("matrix", axis.path, index)
        at_value = located.values.get(source, (axis.line, axis.column))
        for p in [*created, axis.parts]:
            positions[p], keys[p] = at_value, (axis.line, axis.column)
        for table, into in ((located.values, positions), (located.keys, keys)):
            for p, pos in table.items():
                if p[:3] == source and len(p) > 3:
                    into[axis.parts + p[3:]] = pos
    return Located(located.file, data, positions, keys)


# --------------------------------------------------------------------------- problems of cells

@dataclass(frozen=True)
class CellProblems:
    """The problems of one cell (by its index and its choice of each axis's values)."""

    index: int
    choice: tuple[int, ...]
    problems: list[Problem]


def cell_problems(outcomes: Sequence[CellProblems], count: int, axes: Sequence[Axis],
                  located: Located) -> list[Problem]:
    """The problems of ``count`` cells, once each: one that every cell has, at a place no matrix
    value decides, is the scenario's own (as it is); any other names its cells by their values
    and points at the matrix value it comes from."""
    seen: dict[Problem, list[CellProblems]] = {}
    for outcome in outcomes:
        for problem in dict.fromkeys(outcome.problems):
            seen.setdefault(problem, []).append(outcome)
    result = []
    for problem, cells in seen.items():
        axis = _axis_of(problem, axes, every_cell=len(cells) == count)
        if axis is None and len(cells) == count:
            result.append(problem)
            continue
        if axis is not None and not _inside_matrix(problem, located, axis):
            index = cells[0].choice[list(axes).index(axis)]
            line, column = located.values.get(("matrix", axis.path, index), (axis.line, axis.column))
            problem = replace(problem, line=line, column=column)
        text = _cells_text([(c.index, cell_values(axes, c.choice)) for c in cells], count)
        result.append(replace(problem, message=f"{text}: {problem.message}"))
    return list(dict.fromkeys(result))


def _axis_of(problem: Problem, axes: Sequence[Axis], every_cell: bool) -> Axis | None:
    """The matrix entry a problem's key path lies under (or above, unless every cell has the
    problem: then it is the enclosing section's own); the first in matrix order."""
    for axis in axes:
        path = format_path(axis.parts)
        if not problem.path:
            continue
        if path == problem.path or problem.path.startswith((path + ".", path + "[")):
            return axis
        if not every_cell and path.startswith((problem.path + ".", problem.path + "[")):
            return axis
    return None


def _inside_matrix(problem: Problem, located: Located, axis: Axis) -> bool:
    return any(p[:2] == ("matrix", axis.path) and pos == (problem.line, problem.column)
               for table in (located.values, located.keys) for p, pos in table.items())


def _cells_text(cells: list[tuple[int, dict[str, Any]]], count: int) -> str:
    """'cell 3 of 6 (rps.rx-0=abc, ...)', 'cells 3-4 of 6 (the first: ...)'."""
    first, values = cells[0]
    if len(cells) == 1:
        return f"cell {first} of {count} ({cell_label(values)})"
    which = "every cell" if len(cells) == count else f"cells {format_cpulist([i for i, _ in cells])} of {count}"
    return f"{which} (the first: {cell_label(values)})"


# --------------------------------------------------------------------------- run order

def run_order(cells: int, repeat: int, order: Order, seed: int | None) -> list[tuple[int, int]]:
    """(cell index, repetition) pairs in the order they run. Sequential: repetition 1 of every
    cell in matrix order, then repetition 2, ... (a sweep stopped halfway has every cell
    measured alike, and a slow drift of the machine spreads over all cells). Shuffled: every
    pair in a random order from ``seed``, each cell's repetitions numbered as they come."""
    if order == "sequential":
        return [(c, r) for r in range(1, repeat + 1) for c in range(1, cells + 1)]
    if seed is None:
        raise ValueError("a shuffled order needs its seed")
    slots = [c for _ in range(repeat) for c in range(1, cells + 1)]
    random.Random(seed).shuffle(slots)
    counted: dict[int, int] = {}
    result = []
    for c in slots:
        counted[c] = counted.get(c, 0) + 1
        result.append((c, counted[c]))
    return result


def is_sweep(path: Path) -> bool:
    """The file holds a sweep's keys (a YAML problem is left to the loader that reports it)."""
    try:
        data = read_located(path).data
    except ValidationError:
        return False
    return isinstance(data, dict) and any(key in data for key in SWEEP_KEYS)


# --------------------------------------------------------------------------- JSON Schema

def sweep_json_schema() -> dict[str, Any]:
    """`labctl schema sweep`: a scenario's JSON Schema plus the sweep's own keys (what
    load_sweep checks; the values a path takes are the field's own, checked per cell)."""
    schema = Scenario.model_json_schema()
    schema["title"] = "Sweep"
    schema["properties"] = {**schema["properties"], **{
        "matrix": {"type": "object", "minProperties": 1,
                   "description": "dotted path of a scenario field (e.g. tuning.dut.rps.rx-0, "
                                  "expect[0].min) -> its values; null removes the key",
                   "additionalProperties": {"type": "array", "minItems": 1}},
        "repeat": {"type": "integer", "minimum": 1, "maximum": MAX_REPEAT, "default": 1,
                   "description": "runs per cell"},
        "order": {"enum": ["sequential", "shuffled"], "default": "sequential"},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1,
                 "description": "the shuffle's seed (order: shuffled); recorded when labctl picks it"},
    }}
    return schema
