"""Property-based fuzzing of the loaders (labctl.input.config.load_inventory / load_scenario).

Whatever a file holds (arbitrary text or bytes, YAML-ish token soup, or the shipped
inventories and scenarios with keys dropped, values replaced by random scalars, lists and
mappings, random keys inserted), loading it either returns a model or raises
ValidationError whose problems each name the file, a line >= 0 and a one-line message.
Never any other exception. Bounded: LABCTL_FUZZ_EXAMPLES examples per test (default 300).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.errors import ValidationError
from labctl.input.config import Loaded, load_inventory, load_scenario
from labctl.input.matrix import is_sweep, load_sweep
from labctl.input.model import Inventory
from tests.helpers import ROOT

INVENTORY_FILES = [ROOT / "inventory.yaml", ROOT / "inventories" / "netns.yaml"]
SCENARIO_FILES = sorted((ROOT / "scenarios").glob("*.yaml"))
NETNS_INVENTORY: Inventory = load_inventory(INVENTORY_FILES[1]).model
VM_INVENTORY: Inventory = load_inventory(INVENTORY_FILES[0]).model

FUZZ = settings(max_examples=int(os.environ.get("LABCTL_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])

# words the models know, so that random keys and values often reach deep validation
WORDS = ["lab", "provider", "netns", "libvirt", "ssh", "hosts", "dut", "loadgen", "role",
         "interface", "data_address", "address", "port", "user", "key", "known_hosts", "vm",
         "vcpus", "memory_mib", "prepare", "irqbalance", "tuned", "profile", "isolated_cores",
         "variables", "queues", "uri", "image", "name", "description", "tuning", "channels",
         "combined", "rx", "tx", "irq_affinity", "rps", "all", "rx-0", "rx-1", "rx-01", "load",
         "server", "client", "rate", "duration", "cpus", "snapshot", "probes", "expect", "check",
         "loss", "rate", "softirq_share", "softnet_share", "irq_confined", "queue_irqs",
         "rps_mask", "min", "max", "equals", "queue", "column", "softirq", "NET_RX", "host",
         "frequency", "auto", "keep_tuning", "settle", "none", "off", "stop"]
ODD_STRINGS = ["0-3", "7-3", "0-99999999999", "1,,2", "-1", "$(id)", "a;b", "`id`", "x\ny",
               "'", '"', "\t", "198.18.0.1/24", "fe80::1%eth0/64", "../..", "", " ", "\x00",
               "\x1b[31m", "9" * 50, "0-7:2/0", "\u202e", "ß", "rx-" + "9" * 30]

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(WORDS + ODD_STRINGS),
    st.text(max_size=30))
KEYS = st.one_of(st.sampled_from(WORDS), st.text(max_size=15), st.integers(-5, 5), st.booleans())
VALUES = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)), max_leaves=12)
TOKENS = st.lists(st.sampled_from(
    WORDS + ODD_STRINGS + [":", ": ", " ", "  ", "\n", "\n  ", "- ", "[", "]", "{", "}", ",", "&a ",
                           "*a", "<<: ", "!!str ", "!!python/object:os.system ", "!x ", "? ", "|",
                           ">", "#", "~", "null", ".nan", "1e999", "---", "...", "%YAML 1.1",
                           "\ufeff", "&b [*a, *a]", "0x1F", "0o17", "2024-02-30"]),
    max_size=60).map("".join)


def assert_loads_or_refuses(load: Callable[[Path], Loaded[Any]], path: Path) -> None:
    try:
        loaded = load(path)
    except ValidationError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == str(path)
            assert isinstance(problem.line, int) and problem.line >= 0
            assert isinstance(problem.column, int) and problem.column >= 0
            assert isinstance(problem.message, str) and problem.message.strip()
            assert "\n" not in str(problem) and "\r" not in str(problem), str(problem)
        return
    assert loaded.path == path and loaded.model is not None


def _both_loaders(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    assert_loads_or_refuses(load_inventory, path)
    assert_loads_or_refuses(lambda p: load_scenario(p, NETNS_INVENTORY), path)
    assert_loads_or_refuses(lambda p: load_scenario(p, VM_INVENTORY), path)


@FUZZ
@given(text=st.text(max_size=2000))
def test_arbitrary_text(tmp_path: Path, text: str) -> None:
    _both_loaders(tmp_path / "fuzz.yaml", text.encode())


@FUZZ
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    _both_loaders(tmp_path / "fuzz.yaml", data)


@FUZZ
@given(text=TOKENS)
def test_yaml_token_soup(tmp_path: Path, text: str) -> None:
    _both_loaders(tmp_path / "fuzz.yaml", text.encode())


# --------------------------------------------------------------------------- mutations

def _containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every mapping and list in a document, the root included."""
    if isinstance(node, dict):
        children = node.items()
    elif isinstance(node, list):
        children = enumerate(node)
    else:
        return []
    found = [path]
    for key, child in children:
        found += _containers(child, path + (key,))
    return found


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def mutate(doc: Any, data: st.DataObject) -> Any:
    """One random edit: drop a key or item, replace a value, insert a key or item."""
    paths = _containers(doc)
    if not paths:
        return data.draw(VALUES)
    target = _at(doc, data.draw(st.sampled_from(paths)))
    operation = data.draw(st.sampled_from(["drop", "replace", "insert", "root"]))
    if operation == "root":
        return data.draw(VALUES) if data.draw(st.integers(0, 9)) == 0 else doc
    slots = list(target) if isinstance(target, dict) else list(range(len(target)))
    if operation == "insert" or not slots:
        if isinstance(target, dict):
            target[data.draw(KEYS)] = data.draw(VALUES)
        else:
            target.insert(data.draw(st.integers(0, len(target))), data.draw(VALUES))
    elif operation == "drop":
        del target[data.draw(st.sampled_from(slots))]
    else:
        target[data.draw(st.sampled_from(slots))] = data.draw(VALUES)
    return doc


def _mutated_text(source: Path, data: st.DataObject) -> str:
    doc = copy.deepcopy(yaml.safe_load(source.read_text()))
    for _ in range(data.draw(st.integers(1, 5))):
        doc = mutate(doc, data)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=data.draw(st.booleans()))


@FUZZ
@given(data=st.data())
def test_mutated_inventories(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(_mutated_text(data.draw(st.sampled_from(INVENTORY_FILES)), data))
    assert_loads_or_refuses(load_inventory, path)


@FUZZ
@given(data=st.data())
def test_mutated_scenarios(tmp_path: Path, data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(SCENARIO_FILES))
    inventory = NETNS_INVENTORY if source.name.startswith("netns_") else VM_INVENTORY
    path = tmp_path / "scenario.yaml"
    path.write_text(_mutated_text(source, data))
    assert_loads_or_refuses(lambda p: scenario_or_sweep(p, inventory), path)


def scenario_or_sweep(path: Path, inventory: Inventory) -> Loaded[Any]:
    """A scenario file, or a sweep file's first cell (every cell validated)."""
    return load_sweep(path, inventory).cells[0].scenario if is_sweep(path) else load_scenario(path, inventory)


@pytest.mark.parametrize("source", SCENARIO_FILES + INVENTORY_FILES, ids=lambda p: p.name)
def test_unmutated_files_load(source: Path) -> None:
    """The mutations start from valid files (else the fuzzing would only ever test refusal)."""
    if source in INVENTORY_FILES:
        assert load_inventory(source).model
    else:
        inventory = NETNS_INVENTORY if source.name.startswith("netns_") else VM_INVENTORY
        assert scenario_or_sweep(source, inventory).model
