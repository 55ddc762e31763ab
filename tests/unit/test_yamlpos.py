"""YAML with positions: line/column of every key and value, duplicates and syntax errors."""

from __future__ import annotations

import pytest

from labctl.errors import Problem
from labctl.input.yamlpos import format_path, load_located

DOC = """\
# a comment
tuning:
  dut:
    rps:
      rx-0: 1
      all: "0-3"
    irq_affinity: {rx-1: 2}
expect:
  - check: loss
    max: 0.1
  - {check: rate, min_fraction: 0.9}
list_of_lists:
  - [a, b]
"""


@pytest.fixture(scope="module")
def located():
    return load_located(DOC, "s.yaml")


def test_data_is_plain_python(located) -> None:
    assert located.problems == []
    assert located.data == {
        "tuning": {"dut": {"rps": {"rx-0": 1, "all": "0-3"}, "irq_affinity": {"rx-1": 2}}},
        "expect": [{"check": "loss", "max": 0.1}, {"check": "rate", "min_fraction": 0.9}],
        "list_of_lists": [["a", "b"]],
    }


@pytest.mark.parametrize("path,key,value", [
    (("tuning",), (2, 1), (3, 3)),
    (("tuning", "dut"), (3, 3), (4, 5)),
    (("tuning", "dut", "rps"), (4, 5), (5, 7)),
    (("tuning", "dut", "rps", "rx-0"), (5, 7), (5, 13)),
    (("tuning", "dut", "rps", "all"), (6, 7), (6, 12)),
    (("tuning", "dut", "irq_affinity"), (7, 5), (7, 19)),
    (("tuning", "dut", "irq_affinity", "rx-1"), (7, 20), (7, 26)),
    (("expect", 0, "check"), (9, 5), (9, 12)),
    (("expect", 0, "max"), (10, 5), (10, 10)),
    (("expect", 1, "min_fraction"), (11, 19), (11, 33)),
])
def test_positions_of_keys_and_values(located, path, key, value) -> None:
    assert located.keys[path] == key
    assert located.values[path] == value
    assert located.position(path, of_key=True) == key
    assert located.position(path) == value


def test_positions_of_list_items(located) -> None:
    assert located.values[("expect", 0)] == (9, 5)
    assert located.values[("expect", 1)] == (11, 5)
    assert located.values[("list_of_lists", 0, 1)] == (13, 9)
    assert ("expect", 0) not in located.keys            # list items have no key
    assert located.position(("expect", 1), of_key=True) == (11, 5)


def test_root_position(located) -> None:
    assert located.values[()] == (2, 1)


def test_unwritten_path_falls_back_to_nearest_ancestor(located) -> None:
    assert located.position(("tuning", "dut", "rps", "rx-9")) == (5, 7)          # rps's value
    assert located.position(("tuning", "dut", "channels", "combined"), of_key=True) == (3, 3)
    assert located.position(("nosuch", "deeper")) == located.values[()]


def test_problem_is_located(located) -> None:
    problem = located.problem(("tuning", "dut", "rps", "rx-0"), "bad", of_key=True)
    assert problem == Problem("s.yaml", 5, 7, "tuning.dut.rps.rx-0", "bad")
    assert str(problem) == "s.yaml:5:7: tuning.dut.rps.rx-0: bad"


def test_duplicate_keys_reported_at_the_second_key() -> None:
    located = load_located("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\na: 4\n", "d.yaml")
    assert located.data == {"a": 4, "b": {"c": 3, "d": 2}}          # YAML keeps the last
    assert [(p.line, p.column, p.path) for p in located.problems] == [(5, 3, "b.c"), (6, 1, "a")]
    assert all("duplicate key" in p.message for p in located.problems)


def test_non_scalar_key_is_a_problem() -> None:
    located = load_located("a:\n  [1, 2]: x\n  ok: y\n", "k.yaml")
    assert located.data == {"a": {"ok": "y"}}
    assert [(p.line, p.path, p.message) for p in located.problems] == [
        (2, "a", "mapping keys must be plain scalars")]


@pytest.mark.parametrize("text,line,column,words", [
    ("tuning: [\n", 2, 1, "YAML syntax"),
    ("a: 1\n  b: 2\n", 2, 4, "mapping values are not allowed"),
    ("a:\n\t- 1\n", 2, 1, "found character '\\t'"),
    ("a: 'open\n", 2, 1, "found unexpected end of stream"),
    ("a: 1\n---\nb: 2\n", 2, 1, "found another document"),
    ("a: *nowhere\n", 1, 4, "found undefined alias"),
])
def test_syntax_errors_are_located_problems(text: str, line: int, column: int, words: str) -> None:
    located = load_located(text, "bad.yaml")
    assert len(located.problems) == 1
    problem = located.problems[0]
    assert (problem.file, problem.line, problem.column, problem.path) == ("bad.yaml", line, column, "")
    assert problem.message.startswith("YAML syntax: ")
    assert words in problem.message


def test_empty_document() -> None:
    located = load_located("# nothing\n", "e.yaml")
    assert located.data is None and located.problems == []
    assert located.position(("anything",)) == (1, 1)


def test_anchors_and_aliases_are_constructed() -> None:
    located = load_located("base: &b {rx-0: 1}\ndut: *b\n", "a.yaml")
    assert located.data == {"base": {"rx-0": 1}, "dut": {"rx-0": 1}}
    assert located.problems == []
    assert located.keys[("dut",)] == (2, 1)


def test_merge_key_without_override() -> None:
    located = load_located("base: &b {rps: {all: 1}}\ndut:\n  <<: *b\n  channels: 2\n", "m.yaml")
    assert located.data["dut"] == {"rps": {"all": 1}, "channels": 2}
    assert located.problems == []


def test_merge_key_override_is_not_a_duplicate() -> None:
    located = load_located("base: &b {rps: 1, irqbalance: stop}\ndut:\n  <<: *b\n  rps: 2\n", "m.yaml")
    assert located.data["dut"] == {"rps": 2, "irqbalance": "stop"}
    assert located.problems == []


@pytest.mark.parametrize("path,text", [
    ((), ""),
    (("tuning", "dut", "rps", "rx-0"), "tuning.dut.rps.rx-0"),
    (("expect", 0, "min"), "expect[0].min"),
    ((0,), "[0]"),
    (("a", 1, 2, "b"), "a[1][2].b"),
    (("snapshot", "probes", 1), "snapshot.probes[1]"),
])
def test_format_path(path: tuple, text: str) -> None:
    assert format_path(path) == text


def test_format_path_keeps_one_line_and_short_keys() -> None:
    assert format_path(("hosts", "dut\nid", "x")) == "hosts.dut\\nid.x"
    assert format_path(("k" * 100,)) == "k" * 37 + "..."


def test_refused_tag_leaves_a_hole_and_a_problem() -> None:
    located = load_located("a: !!python/name:os.system\nb: [!x 1, 2]\nc: 3\n", "t.yaml")
    assert located.data == {"a": None, "b": [None, 2], "c": 3}
    assert [(p.line, p.path) for p in located.problems] == [(1, "a"), (2, "b[0]")]
    assert all("YAML tag" in p.message for p in located.problems)
    assert located.is_refused(("a",)) and located.is_refused(("b", 0, "deeper"))
    assert not located.is_refused(("b", 1)) and not located.is_refused(("c",))


@pytest.mark.parametrize("text,words", [
    ("a: &a [*a]\n", "refers to itself"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcde", "bcdef")), "an alias bomb"),
    ("a: " + "[" * 100 + "]" * 100 + "\n", "nested deeper than 64 levels"),
    ("a: !!int x\n", "cannot read 'x' as !!int"),
    ("a: b\x00\n", "unprintable character U+0000"),
])
def test_bounded_and_refused_input(text: str, words: str) -> None:
    located = load_located(text, "r.yaml")
    assert any(words in p.message for p in located.problems), located.problems
