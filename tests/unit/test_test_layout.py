"""The tests' own layout: tests/unit holds only tests that need no root, no namespace and no
daemon; tests/integration only tests marked ``pytest.mark.integration``; and no test module
imports another one (what tests share lives in tests/helpers/). Read from the sources (ast)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
KINDS = ("unit", "integration")


def python_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def modules_in(kind: str) -> list[Path]:
    return sorted((TESTS / kind).glob("test_*.py"))


def relative(path: Path) -> str:
    return str(path.relative_to(TESTS.parent))


def imported_modules(tree: ast.Module) -> list[str]:
    """Every module an import names (``from a.b import c`` names a.b and a.b.c); relative
    imports as written, dots first."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names += [base] + [f"{base.rstrip('.')}.{alias.name}" if node.module else base + alias.name
                               for alias in node.names]
    return names


def is_test_module(name: str) -> bool:
    """tests.unit.test_x, tests.integration.test_x, or a relative .test_x."""
    parts = name.lstrip(".").split(".")
    if name.startswith("."):
        return any(part.startswith("test_") for part in parts)
    return parts[0] == "tests" and len(parts) > 2 and parts[1] in KINDS and parts[2].startswith("test_")


def is_integration_mark(node: ast.AST) -> bool:
    """``pytest.mark.integration`` (or ``mark.integration``)."""
    return (isinstance(node, ast.Attribute) and node.attr == "integration"
            and isinstance(node.value, ast.Attribute) and node.value.attr == "mark")


def mark_aliases(tree: ast.Module) -> set[str]:
    """Module-level names bound to the integration mark (``integration = pytest.mark.integration``)."""
    return {target.id for node in tree.body if isinstance(node, ast.Assign) and is_integration_mark(node.value)
            for target in node.targets if isinstance(target, ast.Name)}


def marks_whole_module(tree: ast.Module) -> bool:
    """``pytestmark = pytest.mark.integration`` (alone or in a list)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            return any(is_integration_mark(v) for v in values)
    return False


def unmarked_tests(tree: ast.Module) -> list[str]:
    """Test functions of a module whose every test must carry the integration mark, without it."""
    if marks_whole_module(tree):
        return []
    aliases = mark_aliases(tree)

    def marked(decorator: ast.expr) -> bool:
        return is_integration_mark(decorator) or (isinstance(decorator, ast.Name) and decorator.id in aliases)

    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
            and not any(marked(d) for d in node.decorator_list)]


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


@pytest.mark.parametrize("path", python_files(TESTS), ids=relative)
def test_no_test_module_imports_another(path: Path) -> None:
    found = [name for name in imported_modules(parse(path)) if is_test_module(name)]
    assert not found, f"{relative(path)} imports test modules {found}: move what they share to tests/helpers/"


@pytest.mark.parametrize("path", modules_in("unit"), ids=relative)
def test_no_integration_test_in_unit(path: Path) -> None:
    marks = [node.lineno for node in ast.walk(parse(path))
             if isinstance(node, ast.Attribute) and is_integration_mark(node)]
    assert not marks, f"{relative(path)}: integration mark at lines {marks}: move those tests to tests/integration/"


@pytest.mark.parametrize("path", modules_in("integration"), ids=relative)
def test_every_test_in_integration_is_marked(path: Path) -> None:
    unmarked = unmarked_tests(parse(path))
    assert not unmarked, f"{relative(path)}: {unmarked} are not integration tests: move them to tests/unit/"


def test_the_checks_see_what_they_look_for() -> None:
    """The checks themselves, on small sources (else a broken check passes everything)."""
    assert is_test_module("tests.unit.test_plan") and is_test_module("tests.integration.test_netns_lab")
    assert is_test_module(".test_plan") and not is_test_module("tests.helpers.plans")
    assert any(is_test_module(n) for n in imported_modules(ast.parse("from tests.unit import test_plan")))
    assert any(is_test_module(n) for n in imported_modules(ast.parse("from . import test_plan")))
    marked = ast.parse("import pytest\n@pytest.mark.integration\ndef test_a(): pass\n")
    assert any(is_integration_mark(n) for n in ast.walk(marked)) and not unmarked_tests(marked)
    aliased = ast.parse("integration = pytest.mark.integration\n@integration\ndef test_a(): pass\n"
                        "def test_b(): pass\n")
    assert unmarked_tests(aliased) == ["test_b"]
    assert not unmarked_tests(ast.parse("pytestmark = [pytest.mark.integration]\ndef test_a(): pass\n"))
    assert len(modules_in("unit")) > 20 and len(modules_in("integration")) > 5
