"""Property tests of labctl.cpulist (CPU lists "0-3,6" and masks "ff,00000000")."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from labctl.cpulist import (
    CpuListError,
    format_cpulist,
    format_mask,
    parse_cpulist,
    parse_mask,
)

MAX_CPU = 255
cpu_sets = st.frozensets(st.integers(min_value=0, max_value=MAX_CPU), max_size=64)
dense_sets = st.integers(min_value=0, max_value=MAX_CPU).flatmap(
    lambda top: st.frozensets(st.integers(0, top), min_size=0, max_size=top + 1)
)


def mask_value(cpus: frozenset[int]) -> int:
    return sum(1 << cpu for cpu in cpus)


# ------------------------------------------------------------------------- lists


@given(cpu_sets | dense_sets)
@example(frozenset())
@example(frozenset(range(256)))
def test_cpulist_round_trip(cpus: frozenset[int]) -> None:
    assert parse_cpulist(format_cpulist(cpus)) == cpus


@given(cpu_sets)
def test_format_cpulist_is_canonical(cpus: frozenset[int]) -> None:
    """Ascending, disjoint, non-adjacent ranges: the form the kernel prints."""
    text = format_cpulist(cpus)
    bounds: list[tuple[int, int]] = []
    for part in text.split(",") if text else []:
        first, _, last = part.partition("-")
        bounds.append((int(first), int(last or first)))
        assert not last or int(last) > int(first)
    for (_, previous_hi), (lo, _) in zip(bounds, bounds[1:]):
        assert lo > previous_hi + 1


@given(st.lists(st.tuples(st.integers(0, MAX_CPU), st.integers(0, 16)), max_size=12))
def test_parse_cpulist_any_order_and_overlap(ranges: list[tuple[int, int]]) -> None:
    text = ",".join(f"{lo}-{lo + width}" if width else str(lo) for lo, width in ranges)
    expected = {cpu for lo, width in ranges for cpu in range(lo, lo + width + 1)}
    assert parse_cpulist(text) == expected


@given(
    st.integers(0, 200), st.integers(0, 55), st.integers(1, 16).flatmap(
        lambda group: st.tuples(st.integers(0, group), st.just(group))
    )
)
def test_parse_cpulist_stride_groups(lo: int, width: int, used_group: tuple[int, int]) -> None:
    used, group = used_group
    hi = lo + width
    expected = {cpu for cpu in range(lo, hi + 1) if (cpu - lo) % group < used}
    assert parse_cpulist(f"{lo}-{hi}:{used}/{group}") == expected


def test_parse_cpulist_kernel_examples() -> None:
    assert parse_cpulist("0-1023:2/256") == {0, 1, 256, 257, 512, 513, 768, 769}
    assert parse_cpulist("4-7\n") == {4, 5, 6, 7}
    assert parse_cpulist(" 1 , 3-4 ") == {1, 3, 4}
    assert parse_cpulist("") == frozenset()


@pytest.mark.parametrize(
    "text", ["3-1", "a", "1-", "-1", "1,,2", "1-3:3/2", "0-7:1/0", "0x3", "1 2"]
)
def test_parse_cpulist_errors(text: str) -> None:
    with pytest.raises(CpuListError):
        parse_cpulist(text)


# ------------------------------------------------------------------------- masks


@given(cpu_sets | dense_sets)
@example(frozenset())
@example(frozenset({31, 32}))
def test_mask_round_trip(cpus: frozenset[int]) -> None:
    assert parse_mask(format_mask(cpus)) == cpus


@given(cpu_sets)
def test_mask_value_and_32_bit_groups(cpus: frozenset[int]) -> None:
    text = format_mask(cpus)
    groups = text.split(",")
    assert int("".join(groups), 16) == mask_value(cpus)
    assert all(len(group) == 8 for group in groups[1:])
    assert 1 <= len(groups[0]) <= 8
    assert len(groups) == max(1, -(-mask_value(cpus).bit_length() // 32))
    assert len(groups) == 1 or groups[0].lstrip("0")  # the shortest form: no all-zero lead group


@given(cpu_sets, st.integers(1, 512))
def test_mask_padded_like_the_kernel(cpus: frozenset[int], extra: int) -> None:
    """With ncpus the kernel prints ceil(ncpus/4) hex digits, in 32-bit groups from the right."""
    ncpus = max(cpus, default=0) + extra
    text = format_mask(cpus, ncpus=ncpus)
    groups = text.split(",")
    assert len("".join(groups)) == -(-ncpus // 4)
    assert all(len(group) == 8 for group in groups[1:])
    assert len(groups) == -(-ncpus // 32)
    assert parse_mask(text) == cpus


@pytest.mark.parametrize(
    "cpus,ncpus,expected",
    [
        ({39}, None, "80,00000000"),
        (set(range(32, 40)), None, "ff,00000000"),
        ({0}, None, "1"),
        (set(), None, "0"),
        (set(), 8, "00"),  # an 8-CPU guest's empty rps_cpus
        ({1}, 8, "02"),
        ({0, 1, 2, 3}, 8, "0f"),
        (set(), 2, "0"),  # this 2-CPU machine's rps_cpus reads "0"
        ({0, 1}, 2, "3"),  # and its smp_affinity "3"
        ({0}, 40, "00,00000001"),
        ({0}, 64, "00000000,00000001"),
        ({0}, 33, "0,00000001"),
    ],
)
def test_format_mask_examples(cpus: set[int], ncpus: int | None, expected: str) -> None:
    assert format_mask(cpus, ncpus=ncpus) == expected


def test_masks_read_back_in_the_reference_run() -> None:
    """Read-backs of the guest (tests/fixtures/README.md: e_rps_isolated_writes)."""
    assert parse_mask("42") == {1, 6} and parse_mask("02") == {1}
    assert parse_mask("ff") - {4, 5, 6, 7} == parse_mask("0f")
    assert parse_mask("0x0f") == {0, 1, 2, 3}
    assert parse_mask("ff,ffffffff") == set(range(40))


@pytest.mark.parametrize("text", ["", ",", "0x", "xyz", "ff 00", "f,g"])
def test_parse_mask_errors(text: str) -> None:
    with pytest.raises(CpuListError):
        parse_mask(text)


def test_format_mask_negative_cpu() -> None:
    with pytest.raises(CpuListError):
        format_mask({-1})


def test_parse_mask_short_groups_are_32_bits_each() -> None:
    # the kernel's bitmap_parse reads '1,1' as CPUs 0 and 32
    assert parse_mask("1,1") == {0, 32}
    assert parse_mask("80,00000000") == {39}


def test_parse_mask_rejects_long_groups_between_commas() -> None:
    with pytest.raises(CpuListError):
        parse_mask("1,123456789")


def test_format_cpulist_negative_cpu() -> None:
    with pytest.raises(CpuListError):
        format_cpulist({-1})


@pytest.mark.parametrize("text", ["0-99999999999", "8192", "0-" + "9" * 5000, "0" * 5000 + "1", "1,8192-8193"])
def test_max_cpu_is_checked_before_any_range_is_expanded(text: str) -> None:
    with pytest.raises(CpuListError, match="at most 8191"):
        parse_cpulist(text, max_cpu=8191)


def test_max_cpu_itself_is_fine() -> None:
    assert len(parse_cpulist("0-8191", max_cpu=8191)) == 8192
