"""Index and mark price (perp-mechanics.md §1, §2)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import NoSolution
from harness.oracle import (
    funding_basis_price,
    index_price,
    mark_band,
    mark_price,
    median3,
    moving_average_basis,
)

D = Decimal
HOUR_MS = 3_600_000
prices = st.decimals(
    min_value=D("0.01"), max_value=D(1_000_000), places=2, allow_nan=False, allow_infinity=False
)


def test_index_fixture_drops_the_single_outlier() -> None:
    # §1(c): median 100.5; 130 deviates 29 % > 5 % → weight 0 → (100+101+99)/3 = 100
    assert index_price([D(100), D(101), D(99), D(130)]) == D(100)


def test_index_with_two_outliers_is_the_plain_median() -> None:
    # §1(a): more than one source deviating > 5 % → the plain median of all sources
    assert index_price([D(100), D(101), D(70), D(130)]) == D("100.5")


def test_index_is_the_weighted_mean_without_outliers() -> None:
    got = index_price([D(100), D(102)], weights=[D(3), D(1)])
    assert got == D("100.5")


def test_stale_sources_are_excluded_with_their_weights() -> None:
    assert index_price([D(100), None, D(102)], weights=[D(1), D(5), D(1)]) == D(101)


def test_a_deviation_of_exactly_five_percent_is_not_an_outlier() -> None:
    # median of (95, 100, 100, 105) is 100; 95 and 105 deviate by exactly 5 %, not > 5 %
    assert index_price([D(95), D(100), D(100), D(105)]) == D(100)


def test_index_without_fresh_sources_has_no_value() -> None:
    with pytest.raises(NoSolution, match="stale"):
        index_price([None, None])


def test_index_refuses_mismatched_weights() -> None:
    with pytest.raises(ValueError, match="one weight per source"):
        index_price([D(1), D(2)], weights=[D(1)])


@settings(deadline=None)
@given(st.lists(prices, min_size=2, max_size=7), st.integers(min_value=0, max_value=7))
def test_one_source_spike_beyond_five_percent_never_moves_the_index(
    base: list[Decimal], which: int
) -> None:
    # §1(d): with the 5 % rule a single-source spike cannot move the index once it is an outlier
    # (three sources or more: with two, the median is their mean and no source is "the" outlier)
    sources = [D(1000) + p / 1_000_000 for p in base]  # all within 0.1 % of each other
    sources.append(D(1000))
    spiked = list(sources)
    spiked[which % len(spiked)] = D(5000)
    assert index_price(spiked) == index_price(
        [p for i, p in enumerate(sources) if i != which % len(sources)]
    )


def test_aevo_p1_example_is_2005() -> None:
    # Aevo docs: I = 2000, F = 0.005, τ = 0.5 h, their formula multiplies by hours: T = 1 h
    assert funding_basis_price(D(2000), D("0.005"), HOUR_MS // 2, HOUR_MS) == D(2005)


def test_v1_fixture_flash_print_does_not_drag_the_mark() -> None:
    # §2(c): I = 50 000, F = 0.0001, τ/T = 0.5 ⇒ P1 = 50 002.5; MA basis +10 ⇒ P2 = 50 010;
    # L = 49 000 (flash print) ⇒ M = 50 002.5
    got = mark_price(D(50_000), D("0.0001"), 4 * HOUR_MS, 8 * HOUR_MS, D(10), D(49_000))
    assert (got.p1, got.p2, got.last, got.mark) == (
        D("50002.5"),
        D(50_010),
        D(49_000),
        D("50002.5"),
    )


def test_mark_is_price_2_when_price_1_lt_price_2_lt_contract_price() -> None:
    # Binance/Bybit: "If Price 1 < Price 2 < Contract Price, then take Price 2 as Mark price."
    got = mark_price(D(50_000), D("0.0001"), 4 * HOUR_MS, 8 * HOUR_MS, D(10), D(51_000))
    assert got.p1 < got.p2 < D(51_000)
    assert got.mark == got.p2


def test_mark_before_the_first_trade_is_price_2() -> None:
    got = mark_price(D(50_000), D("0.0001"), 4 * HOUR_MS, 8 * HOUR_MS, D(10), None)
    assert got.mark == got.p2 == D(50_010)
    assert got.last is None


def test_funding_basis_vanishes_at_the_funding_time() -> None:
    # §2(d) V2: M → I as τ → 0
    assert funding_basis_price(D(100), D("0.01"), 0, 8 * HOUR_MS) == D(100)


def test_funding_basis_refuses_a_time_beyond_the_interval() -> None:
    with pytest.raises(ValueError, match="must be in"):
        funding_basis_price(D(100), D("0.01"), 9 * HOUR_MS, 8 * HOUR_MS)


def test_moving_average_basis_is_the_mean_of_mid_minus_index() -> None:
    samples = [(D(99), D(101), D(99)), (D(100), D(102), D(100)), (D(101), D(103), D(98))]
    # bases: 1, 1, 4 → mean 2
    assert moving_average_basis(samples) == D(2)
    with pytest.raises(ValueError, match="at least one"):
        moving_average_basis([])


@settings(deadline=None)
@given(prices, prices, prices)
def test_median_of_three_stays_in_the_p1_p2_band_whatever_the_last_price(
    p1: Decimal, p2: Decimal, last: Decimal
) -> None:
    # §2(d): median(a, b, c) ∈ [min(a, b), max(a, b)] and equals clamp(c, min, max)
    low, high = mark_band(p1, p2)
    m = median3(p1, p2, last)
    assert low <= m <= high
    assert m == min(max(last, low), high)
    assert m == sorted([p1, p2, last])[1]
