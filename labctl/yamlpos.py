"""YAML with positions (pure): data plus the file line/column of every key and value.

PyYAML's composer keeps a mark on every node; we construct plain Python data from the node
tree ourselves so that each key path maps to where it was written. Duplicate keys, which
YAML silently lets win last, are reported as problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from labctl.errors import Problem

KeyPath = tuple[Any, ...]


@dataclass
class Located:
    """Parsed YAML document with positions (1-based line and column)."""

    file: str
    data: Any
    values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def position(self, path: KeyPath, *, of_key: bool = False) -> tuple[int, int]:
        """Best position for a path: the exact node, else its nearest written ancestor."""
        table = self.keys if of_key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))

    def problem(self, path: KeyPath, message: str, *, of_key: bool = False) -> Problem:
        line, column = self.position(path, of_key=of_key)
        return Problem(self.file, line, column, format_path(path), message)


def format_path(path: KeyPath) -> str:
    """('tuning', 'dut', 'rps', 'rx-0') -> 'tuning.dut.rps.rx-0'; list indexes as [N]."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load_located(text: str, file: str) -> Located:
    """Parse one YAML document; syntax errors become problems instead of exceptions."""
    located = Located(file=file, data=None)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            located.data = _construct(loader, node, (), located)
            located.values[()] = _mark(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        located.problems.append(Problem(file, line, column, "", f"YAML syntax: {exc.problem}"))
    finally:
        loader.dispose()
    return located


def _construct(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, located: Located) -> Any:
    located.values[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        explicit = len(node.value) - sum(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value)
        loader.flatten_mapping(node)        # puts merged (<<: *anchor) pairs first
        merged = len(node.value) - explicit
        result: dict[Any, Any] = {}
        written: set[Any] = set()          # keys written in this mapping itself
        for index, (key_node, value_node) in enumerate(node.value):
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                located.problems.append(located.problem(path, "mapping keys must be plain scalars"))
                continue
            if index >= merged and key in written:   # overriding a merged key is fine
                line, column = _mark(key_node)
                located.problems.append(
                    Problem(located.file, line, column, format_path(path + (key,)),
                            "duplicate key (YAML would silently keep only the last one)"))
            if index >= merged:
                written.add(key)
            located.keys[path + (key,)] = _mark(key_node)
            result[key] = _construct(loader, value_node, path + (key,), located)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, path + (i,), located) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
