"""CPU sets (pure): kernel CPU-list syntax ("0-3,6") and hex masks ("ff,00000000") both ways."""

from __future__ import annotations

import re

_RANGE = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+)/(\d+))?)?$")


class CpuListError(ValueError):
    """A CPU list or mask that cannot be parsed."""


def parse_cpulist(text: str, max_cpu: int | None = None) -> frozenset[int]:
    """Parse the kernel's list format: "0-3,6", "" (empty set), "0-7:2/4" (groups).

    With ``max_cpu``, a CPU number above it is an error found before any range is expanded
    (so "0-99999999999" costs nothing)."""
    text = text.strip()
    if not text:
        return frozenset()
    cpus: set[int] = set()
    for part in text.split(","):
        match = _RANGE.match(part.strip())
        if not match:
            raise CpuListError(f"not a CPU list element: {_shown(part)} (use e.g. 0-3,6)")
        first, last, used, group = match.groups()
        if max_cpu is not None:
            _check_at_most(max_cpu, first, last)
        lo = int(first)
        hi = int(last) if last is not None else lo
        if hi < lo:
            raise CpuListError(f"descending CPU range: {_shown(part)}")
        if used is None:
            cpus.update(range(lo, hi + 1))
            continue
        used_n, group_n = int(used), int(group)
        if group_n == 0 or used_n > group_n:
            raise CpuListError(f"bad CPU range group: {_shown(part)}")
        cpus.update(c for c in range(lo, hi + 1) if (c - lo) % group_n < used_n)
    return frozenset(cpus)


def _check_at_most(max_cpu: int, *numbers: str | None) -> None:
    for digits in numbers:
        # length first: int() of thousands of digits is refused by Python itself
        if digits is not None and (len(digits) > 20 or int(digits) > max_cpu):
            raise CpuListError(f"CPU numbers are at most {max_cpu}")


def _shown(part: str) -> str:
    text = repr(part.strip())
    return text if len(text) <= 40 else text[:37] + "..."


def format_cpulist(cpus: frozenset[int] | set[int] | list[int]) -> str:
    """Format a CPU set the way the kernel does in *_list files: "0-3,6"."""
    out: list[str] = []
    ordered = sorted(set(cpus))
    if ordered and ordered[0] < 0:
        raise CpuListError(f"negative CPU number: {ordered[0]}")
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def parse_mask(text: str) -> frozenset[int]:
    """Parse a hex CPU mask; comma-separated groups are 32 bits each ("1,00000001" = CPUs 0, 32)."""
    cleaned = text.strip()
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    groups = cleaned.split(",")
    if not all(re.fullmatch(r"[0-9a-fA-F]{1,8}", g) for g in groups) or (
            len(groups) == 1 and not groups[0]):
        if len(groups) == 1 and re.fullmatch(r"[0-9a-fA-F]+", cleaned):
            groups = [cleaned]          # one long group without commas: plain hex
        else:
            raise CpuListError(f"not a hex CPU mask: {text.strip()!r} (32-bit groups: ff,00000000)")
    value = 0
    for group in groups:
        value = (value << (32 if len(groups) > 1 else 0)) | int(group, 16)
    return frozenset(bit for bit in range(value.bit_length()) if value >> bit & 1)


def format_mask(cpus: frozenset[int] | set[int] | list[int], ncpus: int | None = None) -> str:
    """Format a CPU set as the kernel prints masks: 32-bit hex groups joined by commas.

    With ``ncpus`` the mask is padded like the kernel's for that many CPUs ("00" for 8 CPUs,
    "00,00000001" for 40); without it, the shortest form ("1", "ff,00000000").
    """
    value = 0
    for cpu in cpus:
        if cpu < 0:
            raise CpuListError(f"negative CPU number: {cpu}")
        value |= 1 << cpu
    width = (ncpus + 3) // 4 if ncpus else max(1, (value.bit_length() + 3) // 4)
    digits = f"{value:0{width}x}"
    groups: list[str] = []
    while len(digits) > 8:
        groups.insert(0, digits[-8:])
        digits = digits[:-8]
    groups.insert(0, digits)
    return ",".join(groups)
