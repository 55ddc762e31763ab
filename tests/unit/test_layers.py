"""The package's layout (pure, reads the source): every module sits in a layer, imports only
from its own layer or lower ones, the pure stages never reach a side-effecting one, the agent
imports nothing of labctl, and no two modules import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import labctl

PACKAGE = Path(labctl.__file__).parent

# lowest first; a module may import its own layer and any layer before it
LAYERS: list[tuple[str, tuple[str, ...], bool]] = [
    # (layer, module prefixes, pure)
    ("base", ("labctl", "labctl.errors", "labctl.cpulist", "labctl.packaged", "labctl.shell"), True),
    ("input", ("labctl.input",), True),
    ("host", ("labctl.host",), True),
    ("plan", ("labctl.plan",), True),
    ("runfiles", ("labctl.runfiles",), True),
    ("analysis", ("labctl.analysis",), True),
    ("reports", ("labctl.reports",), True),
    ("local", ("labctl.local",), False),
    ("transport", ("labctl.transport",), False),
    ("labs", ("labctl.labs",), False),
    ("execution", ("labctl.execution",), False),
    ("runner", ("labctl.runner", "labctl.sweeper"), False),
    ("cli", ("labctl.cli", "labctl.__main__", "labctl.terminal"), False),
]
SIDE_EFFECT_IMPORTS = {"fabric", "paramiko", "invoke", "libvirt", "subprocess", "socket"}
"""Libraries a pure layer must not import (the side effects the design keeps at the edges)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, name: str) -> set[str]:
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def layer_of(name: str) -> int | None:
    best: tuple[int, int] | None = None       # (prefix length, layer index): longest prefix wins
    for index, (_, prefixes, _) in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + ".") and prefix != "labctl":
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), index)
    return None if best is None else best[1]


def labctl_imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    return {imp for imp in imports_of(path, name) if imp in known}


def test_every_module_has_a_layer_and_a_docstring_naming_it() -> None:
    for name, path in modules().items():
        if name.startswith("labctl.agent"):
            continue
        assert layer_of(name) is not None, f"{name} belongs to no layer: add it to LAYERS"
        assert ast.get_docstring(ast.parse(path.read_text())), f"{name} has no docstring"


@pytest.mark.parametrize("name", sorted(modules()))
def test_imports_go_down_never_up(name: str) -> None:
    known = modules()
    path = known[name]
    if name.startswith("labctl.agent"):
        assert not {i for i in imports_of(path, name) if i.split(".")[0] == "labctl"}, \
            "the agent runs alone on lab hosts: it imports nothing of labctl"
        return
    own = layer_of(name)
    assert own is not None
    for imported in labctl_imports(path, name, known):
        if imported.startswith("labctl.agent"):
            continue
        theirs = layer_of(imported)
        assert theirs is not None and theirs <= own, \
            f"{name} ({LAYERS[own][0]}) imports {imported} ({LAYERS[theirs or 0][0]}), a higher layer"
    if LAYERS[own][2]:
        roots = {i.split(".")[0] for i in imports_of(path, name)}
        assert not roots & SIDE_EFFECT_IMPORTS, f"pure {name} imports {roots & SIDE_EFFECT_IMPORTS}"


def test_no_import_circle() -> None:
    known = modules()
    graph = {name: labctl_imports(path, name, known) - {name} for name, path in known.items()}
    # a package's __init__ is imported by its own modules' imports: ignore parent packages
    graph = {name: {d for d in deps if not name.startswith(d + ".")} for name, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                circle = trail[trail.index(dep):] + [dep] if dep in trail else [node, dep]
                pytest.fail("import circle: " + " -> ".join(circle))
            if dep not in state:
                visit(dep, trail + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
