"""The rounding rule: parts always add up to the whole (property-tested)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from royalties.money import Money, allocate, allocate_by_weight, format_money, percentage_of


@st.composite
def bps_shares(draw):
    count = draw(st.integers(min_value=1, max_value=8))
    cuts = sorted(
        draw(st.lists(st.integers(1, 9_999), min_size=count - 1, max_size=count - 1, unique=True))
    )
    bounds = [0, *cuts, 10_000]
    return [(f"p{i}", bounds[i + 1] - bounds[i]) for i in range(count)]


@given(amount=st.integers(min_value=-(10**12), max_value=10**12), shares=bps_shares())
def test_allocation_never_creates_or_loses_a_cent(amount, shares):
    parts = allocate(amount, shares)
    assert sum(parts.values()) == amount
    for key, bps in shares:
        exact = amount * bps / 10_000
        assert abs(parts[key] - exact) < 1  # each part is within one minor unit of exact


@given(amount=st.integers(min_value=0, max_value=10**12), shares=bps_shares())
def test_allocation_is_deterministic(amount, shares):
    assert allocate(amount, shares) == allocate(amount, list(shares))


def test_leftover_cents_go_to_the_largest_remainders_then_the_first_listed():
    # 100 cents three ways at 33.33 % each: 33 each, one cent left, to the first.
    assert allocate(100, [("a", 3_333), ("b", 3_333), ("c", 3_334)]) == {"a": 33, "b": 33, "c": 34}
    assert allocate(1, [("a", 5_000), ("b", 5_000)]) == {"a": 1, "b": 0}
    assert allocate(7, [("a", 2_500), ("b", 7_500)]) == {"a": 2, "b": 5}


@given(
    amount=st.integers(min_value=0, max_value=10**12),
    weights=st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=10),
)
def test_weighted_allocation_adds_up(amount, weights):
    parts = allocate_by_weight(amount, [(i, w) for i, w in enumerate(weights)])
    assert sum(parts.values()) == amount


def test_percentages_round_down():
    assert percentage_of(999, 2_000) == 199  # 199.8 → 199
    assert percentage_of(-999, 2_000) == -199
    assert percentage_of(0, 2_000) == 0
    with pytest.raises(ValueError):
        percentage_of(100, 10_001)


def test_shares_must_sum_to_10000():
    with pytest.raises(ValueError):
        allocate(100, [("a", 5_000), ("b", 4_999)])
    with pytest.raises(ValueError):
        allocate(100, [("a", 5_000), ("a", 5_000)])


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(1.5, "USD")
    with pytest.raises(ValueError):
        Money(1, "USD") + Money(1, "EUR")
    assert Money(150, "USD") - Money(50, "USD") == Money(100, "USD")


def test_formatting():
    assert format_money(1_234_567, "USD") == "$12,345.67"
    assert format_money(-50, "EUR") == "-€0.50"
    assert format_money(5, "GBP") == "£0.05"
