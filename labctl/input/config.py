"""Loading and validation (pure, reads only the given files): YAML -> model, all errors at once.

Each problem carries file:line:column and the key path. Checks that need a host's facts
(CPU count, isolated CPUs, channel limits) run in `check_against_facts`, still before any
change is made to a host.

Input files are read with bounds: regular files of at most MAX_FILE_BYTES, UTF-8 only (see
labctl.input.yamlpos for the bounds on the YAML itself); at most MAX_PROBLEMS problems are listed.
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
import stat
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import pydantic
from pydantic import BaseModel

from labctl.errors import Problem, ValidationError
from labctl.input.model import (
    SCENARIO_NAME_PATTERN,
    Inventory,
    Rate,
    Scenario,
)
from labctl.input.yamlpos import (
    KeyPath,
    Located,
    line_column,
    load_located,
    shorten,
)

M = TypeVar("M", bound=BaseModel)

MAX_FILE_BYTES = 1 << 20        # 1 MiB per input file; the shipped ones are < 3 KiB
MAX_PROBLEMS = 100              # listed per error; the rest are counted
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


@dataclass(frozen=True)
class Loaded(Generic[M]):
    """A validated model with the positions of the file it came from."""

    model: M
    located: Located
    path: Path
    warnings: list[str] = field(default_factory=list)

    def problem(self, key_path: KeyPath, message: str) -> Problem:
        return self.located.problem(key_path, message)


def load_inventory(path: Path) -> Loaded[Inventory]:
    located = read_located(path)
    model = _validate(Inventory, located)
    problems = inventory_problems(model, located)
    if problems:
        raise invalid(problems)
    return Loaded(model, located, path)


def inventory_problems(inventory: Inventory, located: Located) -> list[Problem]:
    """Checks across an inventory's sections."""
    if not inventory.hosts_share_kernel:
        return []
    return [located.problem(("hosts", name, "prepare"), "provider netns: the lab's hosts share this "
                            "machine's kernel, so irqbalance, tuned and isolated CPUs cannot be "
                            "prepared per host (use the libvirt or ssh provider)", of_key=True)
            for name, host in inventory.hosts.items() if host.prepare is not None]


def load_scenario(path: Path, inventory: Inventory) -> Loaded[Scenario]:
    located = read_located(path)
    refused = sweep_key_problems(located, path)
    if refused:
        raise invalid(refused)
    return scenario_from(located, path, inventory)


SWEEP_KEYS = ("matrix", "repeat", "order", "seed")     # a sweep's own keys (labctl.input.matrix)


def sweep_key_problems(located: Located, path: Path) -> list[Problem]:
    """A file with a sweep's keys is a sweep, which `labctl run` does not run."""
    data = located.data if isinstance(located.data, dict) else {}
    return [located.problem((key,), f"`{key}:` makes this file a sweep: run it with `labctl sweep "
                            f"{path}` (`labctl run` runs one scenario once)", of_key=True)
            for key in SWEEP_KEYS if key in data][:1]


def scenario_from(located: Located, path: Path, inventory: Inventory) -> Loaded[Scenario]:
    """A scenario from its parsed YAML (a file, or one cell of a sweep): the model, the checks
    against the inventory, and its name (the file's name when it has no `name:`)."""
    scenario = _validate(Scenario, located)
    problems = cross_check(scenario, inventory, located) + _name_problems(scenario, path, located)
    if problems:
        raise invalid(problems)
    if scenario.name is None:
        scenario = scenario.model_copy(update={"name": path.stem})
    return Loaded(scenario, located, path)


def _name_problems(scenario: Scenario, path: Path, located: Located) -> list[Problem]:
    """Without `name:`, the file's name names the run (and its work directory on the hosts)."""
    if scenario.name is not None or re.fullmatch(SCENARIO_NAME_PATTERN, path.stem):
        return []
    return [located.problem(("name",), f"no `name:`, and the file name {shorten(repr(path.stem), 60)} "
                            f"cannot name the run (it must match {SCENARIO_NAME_PATTERN}): add "
                            "`name:` or rename the file")]


def invalid(problems: list[Problem]) -> ValidationError:
    """A ValidationError listing at most MAX_PROBLEMS problems, then how many more there are."""
    if len(problems) <= MAX_PROBLEMS:
        return ValidationError(problems)
    ordered = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.path))
    first = ordered[MAX_PROBLEMS]
    more = Problem(first.file, first.line, first.column, first.path,
                   f"... and {len(ordered) - MAX_PROBLEMS} more problems (only the first "
                   f"{MAX_PROBLEMS} are listed)")
    return ValidationError(ordered[:MAX_PROBLEMS] + [more])


def read_located(path: Path) -> Located:
    """An input file's YAML with positions; a file that is no YAML at all is refused here."""
    text = _decode(_read_bytes(path), str(path))
    located = load_located(text, str(path))
    if located.problems and located.data is None:
        raise invalid(located.problems)
    return located


def _read_bytes(path: Path) -> bytes:
    """The file's bytes: a regular file of at most MAX_FILE_BYTES, else a ValidationError.

    Opened non-blocking and checked on the open descriptor, so that a FIFO or a device never
    blocks or streams forever."""
    def refuse(line: int, message: str) -> ValidationError:
        return ValidationError([Problem(str(path), line, 1 if line else 0, "", message)])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise refuse(0, f"cannot read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise refuse(0, "cannot read: not a regular file")
        data = _read_at_most(fd, MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise refuse(0, f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        size = max(info.st_size, len(data))
        raise refuse(1, f"{size} bytes, more than {MAX_FILE_BYTES} bytes: labctl reads at most "
                     "1 MiB per input file")
    return data


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _decode(data: bytes, file: str) -> str:
    """UTF-8 text (a UTF-8 byte order mark is dropped), else a ValidationError that says where."""
    for bom, encoding in _WIDE_BOMS:
        if data.startswith(bom):
            raise ValidationError([Problem(file, 1, 1, "", f"the file is {encoding} (it starts "
                                           f"with a {encoding} byte order mark): save it as UTF-8")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = line_column(data, exc.start)
        raise ValidationError([Problem(file, line, column, "", f"not valid UTF-8: byte "
                                       f"0x{data[exc.start]:02x} ({exc.reason}); save the file "
                                       "as UTF-8")]) from None


def _validate(cls: type[M], located: Located) -> M:
    problems = list(located.problems)
    data = located.data
    if not isinstance(data, dict):
        if not located.is_refused(()):
            problems.append(located.problem((), f"the file must hold a mapping of keys, got {_kind(data)}"))
        raise invalid(problems)
    try:
        model = cls.model_validate(data)
    except pydantic.ValidationError as exc:
        problems += _model_problems(cls, located, exc.errors())
        model = None
    if problems:
        raise invalid(problems)
    assert model is not None
    return model


def _model_problems(cls: type[BaseModel], located: Located, errors: list[Any]) -> list[Problem]:
    """The model's problems, but none about a value the YAML reader already refused."""
    problems = []
    for err in errors:
        if not located.is_refused(_data_path(located.data, err["loc"])[0]):
            problems.append(_problem_from(cls, located, err))
    return problems


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _problem_from(cls: type[BaseModel], located: Located, err: Any) -> Problem:
    path, of_key = _data_path(located.data, err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        return located.problem(path, _unknown_key_message(cls, located.data, path), of_key=True)
    if kind == "missing":
        return located.problem(path[:-1], f"required key {path[-1]!r} is missing")
    message = err["msg"].removeprefix("Value error, ")
    if kind == "string_pattern_mismatch" and of_key:
        return located.problem(path, f"key {shorten(repr(path[-1]), 60)} does not match "
                               f"{err['ctx']['pattern']}", of_key=True)
    if kind == "union_tag_invalid":
        tags = err["ctx"]["expected_tags"].replace("'", "")
        return located.problem(path + ("check",), f"unknown check {err['ctx']['tag']!r}; one of: {tags}")
    shown = shorten(repr(err.get("input")), 60)
    if "input" in err and not isinstance(err["input"], (dict, list)) and "got " not in message:
        message += f", got {shown}"
    container = isinstance(err.get("input"), (dict, list))   # point at its key, not its body
    return located.problem(path, message, of_key=of_key or container)


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[KeyPath, bool]:
    """Map a pydantic error location to the key path in the data.

    Drops what pydantic inserts: the expectation's `check` tag (once, right where a list item
    starts: a key of the same name elsewhere, e.g. a top-level `check: check`, is the user's)
    and union member labels such as "literal['auto']"."""
    path: list[Any] = []
    node, of_key, tag_taken, in_item = data, False, False, False
    for part in loc:
        if part == "[key]":
            of_key = True
        elif (in_item and not tag_taken and isinstance(node, dict) and isinstance(part, str)
              and node.get("check") == part):
            tag_taken = True
        elif _is_label(part) and not (isinstance(node, dict) and part in node):
            continue
        elif isinstance(node, dict) and part in node:
            node, tag_taken, in_item = node[part], False, False
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node, tag_taken, in_item = node[part], False, True
            path.append(part)
        elif isinstance(node, dict):
            path.append(part)       # a missing or unknown key: keep it, stop walking
            break
    return tuple(path), of_key


def _is_label(part: Any) -> bool:
    """A union member's label in a pydantic location: "function-before[...]", "literal['all']"."""
    return isinstance(part, str) and re.fullmatch(r"[a-z-]+\[.*\]|function-after", part, re.DOTALL) is not None


def _unknown_key_message(cls: type[BaseModel], data: Any, path: KeyPath) -> str:
    key = path[-1]
    model = _model_at(cls, data, path[:-1])
    allowed = sorted(_field_names(model)) if model else []
    message = f"unknown key {shorten(repr(key), 60)}"
    swapped = [name for name in allowed if sorted(name) == sorted(str(key))]   # rsp: rps, not rss
    close = swapped[:1] or difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if close:
        message += f"; did you mean {close[0]!r}?"
    elif allowed:
        message += f"; allowed here: {', '.join(allowed)}"
    return message


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_at(cls: type[BaseModel], data: Any, path: KeyPath) -> type[BaseModel] | None:
    annotation: Any = cls
    node = data
    for part in path:
        model = _unwrap(annotation, node)
        if isinstance(model, type) and issubclass(model, BaseModel):
            if part not in model.model_fields:
                return None
            annotation = model.model_fields[part].annotation
        else:
            args = typing.get_args(model)
            annotation = args[-1] if args else Any
        node = node[part] if isinstance(node, (dict, list)) else None
    found = _unwrap(annotation, node)
    return found if isinstance(found, type) and issubclass(found, BaseModel) else None


def _unwrap(annotation: Any, node: Any) -> Any:
    """Strip Annotated/Optional and pick the union member that fits the data."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = _pick_member(typing.get_args(annotation), node)
        else:
            return annotation


def _pick_member(members: tuple[Any, ...], node: Any) -> Any:
    for member in members:
        if isinstance(member, type) and issubclass(member, BaseModel):
            tag = member.model_fields.get("check")
            if tag is None or (isinstance(node, dict) and node.get("check") in typing.get_args(tag.annotation)):
                return member
        elif typing.get_origin(member) in (list, dict) and isinstance(node, (list, dict)):
            return member
    return members[0]


# --------------------------------------------------------------------------- cross checks

def cross_check(scenario: Scenario, inventory: Inventory, located: Located) -> list[Problem]:
    """Host names and roles in the scenario must exist in the inventory."""
    problems: list[Problem] = []
    hosts = inventory.hosts

    def need_host(name: str, where: KeyPath, role: str | None = None) -> None:
        if name not in hosts:
            problems.append(located.problem(where, f"no host {shorten(repr(name), 60)} in the inventory "
                                            f"(hosts: {', '.join(sorted(hosts))})", of_key=True))
        elif role and hosts[name].role != role:
            problems.append(located.problem(where, f"host {name!r} has role {hosts[name].role}, "
                                            f"not {role}"))

    for name in scenario.tuning:
        need_host(name, ("tuning", name))
    if scenario.load:
        need_host(scenario.load.server.host, ("load", "server", "host"))
        need_host(scenario.load.client.host, ("load", "client", "host"))
        if scenario.load.server.host == scenario.load.client.host:
            problems.append(located.problem(("load", "server", "host"),
                                            "client and server must run on different hosts"))
    for i, name in enumerate(scenario.snapshot.hosts):
        need_host(name, ("snapshot", "hosts", i))
    interval = scenario.snapshot.interval      # the default (1 s) is dropped for short windows
    if (scenario.load and interval is not None and "interval" in scenario.snapshot.model_fields_set
            and interval >= scenario.load.client.duration):
        problems.append(located.problem(("snapshot", "interval"), (
            f"the series samples every {interval:g} s: that must be shorter than the load window "
            f"(load.client.duration: {scenario.load.client.duration:g} s)")))
    if scenario.profile is not None:
        need_host(scenario.profile.host, ("profile", "host"))
        if scenario.load is None:
            problems.append(located.problem(("profile",), "profiling records the load window: it "
                                            "needs a `load:` section", of_key=True))
    for i, item in enumerate(scenario.expect):
        host = getattr(item, "host", None)
        if host is not None:
            need_host(host, ("expect", i, "host"))
        if item.check in ("loss", "rate") and scenario.load is None:
            problems.append(located.problem(("expect", i), f"{item.check} needs a `load:` section"))
        elif (isinstance(item, Rate) and item.min_fraction is not None and scenario.load
              and scenario.load.client.rate == "max"):
            problems.append(located.problem(("expect", i, "min_fraction"), (
                "the client sends as fast as it can (rate: max): there is no asked rate to take a "
                "fraction of; give `min` (messages per second) instead")))
    return problems


# --------------------------------------------------------------------------- against host facts
