"""YAML with positions (pure): data plus the file line/column of every key and value.

PyYAML's composer keeps a mark on every node; we construct plain Python data from the node
tree ourselves so that each key path maps to where it was written. Duplicate keys, which
YAML silently lets win last, are reported as problems.

Only plain YAML is read: mappings, lists, strings, numbers, booleans, null (and dates, which
no field accepts). Other tags are problems, never constructed. Bounded work whatever the
input: at most MAX_NODES nodes (aliases expanded, so an alias bomb stops there) and
MAX_DEPTH levels of nesting; a recursive alias is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from labctl.errors import Problem

KeyPath = tuple[Any, ...]

MAX_NODES = 10_000          # the shipped files have ~100
MAX_DEPTH = 64              # ... and ~6 levels
MAX_MESSAGE = 300           # characters of one problem's message
MAX_PATH_PART = 40          # characters of one key in a printed key path

_YAML = "tag:yaml.org,2002:"
PLAIN_TAGS = frozenset(_YAML + t for t in ("str", "int", "float", "bool", "null", "timestamp",
                                            "map", "seq"))


@dataclass
class Located:
    """Parsed YAML document with positions (1-based line and column).

    ``refused`` holds the paths of values not constructed (a refused tag, an unreadable
    scalar): their problem is already in ``problems``.
    """

    file: str
    data: Any
    values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    refused: set[KeyPath] = field(default_factory=set)

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
        return Problem(self.file, line, column, format_path(path), shorten(message, MAX_MESSAGE))

    def is_refused(self, path: KeyPath) -> bool:
        """True if the value at path, or one of its ancestors, was refused."""
        return any(path[:n] in self.refused for n in range(len(path) + 1))


def format_path(path: KeyPath) -> str:
    """('tuning', 'dut', 'rps', 'rx-0') -> 'tuning.dut.rps.rx-0'; list indexes as [N].

    Keys are shown on one line: unprintable characters escaped, long keys shortened."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _path_part(str(part))
    return out


def _path_part(text: str) -> str:
    if not text.isprintable():
        text = repr(text)[1:-1]
    return shorten(text, MAX_PATH_PART)


def shorten(text: str, limit: int) -> str:
    """text, cut to at most limit characters (ending in '...' when cut)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def line_column(text: str | bytes, index: int) -> tuple[int, int]:
    """1-based line and column of text[index]."""
    newline: Any = b"\n" if isinstance(text, bytes) else "\n"
    line_start = text.rfind(newline, 0, index) + 1
    return text.count(newline, 0, index) + 1, index - line_start + 1


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class Refused(Exception):
    """Input read no further: too many nodes, too deep, a recursive alias."""

    def __init__(self, mark: yaml.Mark | None, message: str):
        super().__init__(message)
        self.mark, self.message = mark, message


class _Loader(yaml.SafeLoader):
    """SafeLoader that stops composing past MAX_NODES nodes or MAX_DEPTH levels, and refuses
    merge keys (<<) that would make a mapping of more than MAX_NODES entries."""

    def __init__(self, text: str):
        super().__init__(text)
        self.composed = 0
        self.depth = 0
        self.flattening: set[int] = set()
        self.expanded_sizes: dict[int, int] = {}   # id(mapping node) -> entries merges give it

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.composed += 1
        self.depth += 1
        try:
            if self.composed > MAX_NODES:
                raise Refused(self._next_mark(), f"more than {MAX_NODES} YAML nodes "
                              f"(labctl reads at most {MAX_NODES})")
            if self.depth > MAX_DEPTH:
                raise Refused(self._next_mark(), f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def _next_mark(self) -> yaml.Mark:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        mark: yaml.Mark = event.start_mark
        return mark

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        if id(node) in self.expanded_sizes:             # flattened and checked already
            return
        if len(self.flattening) >= MAX_DEPTH:       # merges of merges of merges...
            raise Refused(node.start_mark, f"merge keys (<<) nested deeper than {MAX_DEPTH} levels")
        self.flattening.add(id(node))
        try:
            merged = sum(self.expanded_sizes[id(sub)] for sub in self._merged(node))
        finally:
            self.flattening.discard(id(node))
        # Counted as merges expand without de-duplication: PyYAML >= 6.0.3 drops repeated
        # keys while merging (and so defuses the bomb itself), older ones do not. The same
        # file is then refused with every PyYAML, not accepted on one machine only.
        expanded = merged + len(node.value)
        if expanded > MAX_NODES:
            raise Refused(node.start_mark, f"merge keys (<<) make a mapping of more than "
                          f"{MAX_NODES} entries (an alias bomb?)")
        self.expanded_sizes[id(node)] = expanded
        super().flatten_mapping(node)

    def _merged(self, node: yaml.MappingNode) -> list[yaml.MappingNode]:
        """The mappings node merges, each flattened (and so checked) first."""
        found = []
        for key_node, value_node in node.value:
            if key_node.tag != _YAML + "merge":
                continue
            items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for sub in items:
                if isinstance(sub, yaml.MappingNode) and id(sub) not in self.flattening:
                    self.flatten_mapping(sub)
                    found.append(sub)
        return found


def load_located(text: str, file: str) -> Located:
    """Parse one YAML document; syntax errors and refused input become problems, not exceptions."""
    located = Located(file=file, data=None)
    loader = None
    try:
        loader = _Loader(text)          # checks every character first
        node = loader.get_single_node()
        if node is not None:
            located.data = _Builder(loader, located).build(node, ())
    except Refused as exc:
        located.data = None
        line, column = (exc.mark.line + 1, exc.mark.column + 1) if exc.mark else (1, 1)
        located.problems.append(Problem(file, line, column, "", exc.message))
    except yaml.MarkedYAMLError as exc:
        located.data = None
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        why = exc.problem or exc.context or "not YAML"
        located.problems.append(Problem(file, line, column, "", shorten(f"YAML syntax: {why}", MAX_MESSAGE)))
    except yaml.reader.ReaderError as exc:
        located.data = None
        located.problems.append(_unprintable(text, file, exc))
    finally:
        if loader is not None:
            loader.dispose()
    return located


def _unprintable(text: str, file: str, exc: yaml.reader.ReaderError) -> Problem:
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    line, column = line_column(text, exc.position)
    return Problem(file, line, column, "", f"unprintable character U+{code:04X}: not allowed in "
                   "YAML (a binary or UTF-16 file?)")


class _Builder:
    """Plain Python data from a composed node tree, counting every node it visits (an alias
    is visited again each time it is used)."""

    def __init__(self, loader: _Loader, located: Located):
        self.loader, self.located = loader, located
        self.visited = 0
        self.active: set[int] = set()           # nodes being built: seeing one again is a cycle

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self._count(node, path)
        self.located.values[path] = _mark(node)
        if node.tag not in PLAIN_TAGS:
            return self._refuse(node, path, f"YAML tag {_tag(node.tag)!r} is not allowed "
                                "(labctl reads plain YAML: mappings, lists, strings, numbers, booleans)")
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def _count(self, node: yaml.Node, path: KeyPath) -> None:
        self.visited += 1
        if id(node) in self.active:
            raise Refused(node.start_mark, "an alias refers to itself (a recursive structure)")
        if self.visited > MAX_NODES:
            raise Refused(node.start_mark, f"more than {MAX_NODES} YAML nodes once aliases are "
                          "expanded (an alias bomb?)")
        if len(path) > MAX_DEPTH:
            raise Refused(node.start_mark, f"nested deeper than {MAX_DEPTH} levels once aliases "
                          "are expanded")

    def _refuse(self, node: yaml.Node, path: KeyPath, message: str) -> None:
        line, column = _mark(node)
        self.located.problems.append(Problem(self.located.file, line, column, format_path(path),
                                             shorten(message, MAX_MESSAGE)))
        self.located.refused.add(path)

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        # PyYAML's scalar constructors raise ValueError, KeyError, AttributeError... on values
        # their tag cannot take (!!bool maybe, a 5000-digit int, 2024-13-45)
        except Exception as exc:
            why = f": {str(exc).split(':')[0]}" if type(exc) is ValueError else ""
            return self._refuse(node, path, f"cannot read {shorten(node.value, 40)!r} as "
                                f"{_tag(node.tag)}{why}")

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any]:
        explicit = len(node.value) - sum(k.tag == _YAML + "merge" for k, _ in node.value)
        self.loader.flatten_mapping(node)        # puts merged (<<: *anchor) pairs first
        merged = len(node.value) - explicit
        result: dict[Any, Any] = {}
        written: set[Any] = set()               # keys written in this mapping itself
        for index, (key_node, value_node) in enumerate(node.value):
            key = self._key(key_node, path)
            if key is None:
                continue
            if index >= merged and key in written:   # overriding a merged key is fine
                line, column = _mark(key_node)
                self.located.problems.append(
                    Problem(self.located.file, line, column, format_path(path + (key,)),
                            "duplicate key (YAML would silently keep only the last one)"))
            if index >= merged:
                written.add(key)
            self.located.keys[path + (key,)] = _mark(key_node)
            result[key] = self.build(value_node, path + (key,))
        return result

    def _key(self, node: yaml.Node, path: KeyPath) -> str | int | float | bool | None:
        """A mapping key, or None (a problem recorded) when it is not a plain scalar."""
        self._count(node, path)
        key = None
        if isinstance(node, yaml.ScalarNode) and node.tag in PLAIN_TAGS:
            try:
                key = self.loader.construct_object(node, deep=True)
            except Exception:        # as in _scalar: an unreadable key is not a plain scalar
                key = None
        if not isinstance(key, (str, int, float, bool)):
            self.located.problems.append(self.located.problem(path, "mapping keys must be plain scalars"))
            return None
        return key


def _tag(tag: str) -> str:
    """'tag:yaml.org,2002:python/name:os.system' -> '!!python/name:os.system'."""
    return shorten("!!" + tag.removeprefix(_YAML) if tag.startswith(_YAML) else tag, 60)
