"""Metrics: properties on random buddyinfo tables, checked against independent formulations."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from shrinkd import metrics
from shrinkd.parse import BuddyInfo, ZoneFree, ZoneInfo

# Free-block counts per order: 11, 12 or 14 orders, counts up to what a large zone holds.
tables = st.integers(min_value=11, max_value=14).flatmap(
    lambda n: st.lists(st.integers(min_value=0, max_value=1 << 20), min_size=n, max_size=n)
)
sparse_tables = st.integers(min_value=11, max_value=14).flatmap(
    lambda n: st.lists(st.sampled_from([0, 0, 0, 1, 2, 7, 1000, 123457]), min_size=n, max_size=n)
)
any_table = st.one_of(tables, sparse_tables)


@given(any_table, st.data())
def test_unusable_index_is_the_share_held_in_smaller_blocks(free: list[int], data: st.DataObject) -> None:
    order = data.draw(st.integers(min_value=0, max_value=len(free) - 1))
    total = sum(count * 2**o for o, count in enumerate(free))
    small = sum(count * 2**o for o, count in enumerate(free) if o < order)
    expected = 1000 if total == 0 else int(Fraction(small * 1000, total))  # floor, both non-negative
    assert metrics.unusable_index(free, order) == expected


@given(any_table)
def test_unusable_index_rises_with_order_within_bounds(free: list[int]) -> None:
    values = [metrics.unusable_index(free, o) for o in range(len(free))]
    assert all(0 <= v <= 1000 for v in values)
    assert values == sorted(values)
    assert values[0] == (1000 if sum(free) == 0 else 0)


@given(any_table)
def test_extfrag_index_shape(free: list[int]) -> None:
    values = [metrics.extfrag_index(free, o) for o in range(len(free))]
    if sum(free) == 0:
        assert values == [0] * len(free)
        return
    # -1000 exactly while a block of that order or larger is free, then rising in (-1000, 1000].
    highest = max(o for o, count in enumerate(free) if count)
    assert values[: highest + 1] == [-1000] * (highest + 1)
    rest = values[highest + 1 :]
    assert all(-1000 < v <= 1000 for v in rest)
    assert rest == sorted(rest)


def test_extfrag_index_below_zero_as_the_kernel_computes_it() -> None:
    # One free order-9 block, request order 10: 1000 - (1000 + 512 * 1000 // 1024) // 1.
    assert metrics.extfrag_index([0] * 9 + [1, 0], 10) == -500
    assert metrics.format_index(-500) == "0.-500"


@given(any_table, st.data())
def test_extfrag_index_matches_real_arithmetic_within_rounding(free: list[int], data: st.DataObject) -> None:
    """The kernel's formula, 1 - (1 + free/requested) / blocks, in exact fractions:
    the integer result differs from 1000x it by less than the two truncations can."""
    order = data.draw(st.integers(min_value=0, max_value=len(free) - 1))
    if sum(free) == 0 or any(free[order:]):
        return
    total = sum(count * 2**o for o, count in enumerate(free))
    exact = 1000 * (1 - (1 + Fraction(total, 2**order)) / sum(free))
    assert exact <= metrics.extfrag_index(free, order) < exact + 2


@given(any_table)
def test_extfrag_for_order_is_the_unusable_share_in_percent(free: list[int]) -> None:
    total = sum(count * 2**o for o, count in enumerate(free))
    for order in range(len(free)):
        small = sum(count * 2**o for o, count in enumerate(free) if o < order)
        assert metrics.extfrag_for_order(free, order) == (0 if total == 0 else small * 100 // total)


def test_format_index_prints_as_debugfs() -> None:
    values = (-1000, -1, 0, 7, 744, 1000)
    assert [metrics.format_index(v) for v in values] == ["-1.000", "0.-01", "0.000", "0.007", "0.744", "1.000"]


@given(st.lists(st.tuples(any_table, st.integers(min_value=0, max_value=1 << 22)), min_size=1, max_size=4))
def test_node_score_is_present_weighted_sum(zones: list[tuple[list[int], int]]) -> None:
    width = len(zones[0][0])
    rows = [(free[:width] + [0] * (width - len(free)), present) for free, present in zones]
    buddy = BuddyInfo(tuple(ZoneFree(0, f"Z{i}", tuple(free)) for i, (free, _) in enumerate(rows)))
    info = [ZoneInfo(0, f"Z{i}", 0, 0, 0, 0, present, present, present) for i, (_, present) in enumerate(rows)]
    node_present = sum(present for _, present in rows)
    expected = sum(present * metrics.extfrag_for_order(free, 9) // (node_present + 1) for free, present in rows if present)
    scores = metrics.node_compaction_scores(buddy, info, 9)
    assert scores.get(0, 0) == expected
    assert 0 <= scores.get(0, 0) <= 100


def test_hpage_order_from_hugepagesize() -> None:
    assert metrics.hpage_order(2048, 4096) == 9
    assert metrics.hpage_order(32768, 16384) == 11
    assert metrics.hpage_order(524288, 65536) == 13
    assert metrics.hpage_order(None, 4096) == metrics.DEFAULT_HPAGE_ORDER
