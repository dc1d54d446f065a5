"""Funding (perp-mechanics.md §3) and fees (§5)."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.oracle import (
    average_premium,
    book_premium,
    funding_payment,
    funding_rate,
    impact_notional,
    impact_price,
    liquidation_fee,
    premium_index,
    round_to_unit,
    trading_fee,
)

D = Decimal


def test_hyperliquid_example_rate_is_095_percent_and_hourly_payment_118_75() -> None:
    # §3(c) Hyperliquid funding.md: r = 0.01 %, impact bid 10 100, spot 10 000, long 10 BTC.
    premium = premium_index(D(10_100), D(10_150), D(10_000))
    assert premium == D("0.01")
    assert funding_rate(premium, D("0.0001")) == D("0.0095")  # 1 % − 0.05 %
    hourly = funding_rate(premium, D("0.0001"), interval_hours=1)
    assert hourly == D("0.0011875")
    # paid on the oracle price, by the long: 10 × 10 000 × 0.0011875
    assert funding_payment(D(10), D(10_000), hourly) == D("118.75")


def test_bitmex_example_long_pays_005_xbt() -> None:
    # §3(c) BitMEX: quote 1.00 %/day, base 0.25 %/day ⇒ I = (1.00 % − 0.25 %)/3 = 0.25 %;
    # |I − P| ≤ 0.05 % so F = I; position value 15 000 × 1/750 = 20 XBT ⇒ 0.05 XBT, long pays.
    interest = (D("0.01") - D("0.0025")) / 3
    rate = funding_rate(interest, interest)
    assert rate == D("0.0025")
    assert funding_payment(D(1), D(15_000) / D(750), rate) == D("0.05")
    # closing at 800: PnL = 15 000 × (1/750 − 1/800) = 15 000 × 50/(750 × 800) = 1.25 XBT
    assert D(15_000) * (D(800) - D(750)) / (D(750) * D(800)) == D("1.25")


def test_binance_impact_margin_notional_for_20x_is_4000() -> None:
    # §3(c): BNBUSDT max 20× ⇒ IMR 5 % ⇒ IMN = 200/5 % = 4 000 USDT
    assert impact_notional(D("0.05")) == D(4000)


def test_dydx_hourly_tick_payment_is_0625() -> None:
    # §3(c): F_8h = 0.01 %, oracle 50 000, one hourly tick ⇒ 0.0001 × 3600/28800 × 50 000
    rate = funding_rate(D(0), D("0.0001"), interval_hours=1)
    assert funding_payment(D(1), D(50_000), rate) == D("0.625")


def test_rate_equals_interest_when_premium_is_within_the_clamp() -> None:
    # §3(d): |r − P̄| ≤ 0.05 % ⇒ F = r
    assert funding_rate(D("0.0003"), D("0.0001")) == D("0.0001")
    assert funding_rate(D("-0.0004"), D("0.0001")) == D("0.0001")


def test_cap_and_floor_apply_after_the_interval_scaling() -> None:
    assert funding_rate(D("0.05"), D("0.0001"), cap=D("0.003")) == D("0.003")
    assert funding_rate(D("-0.05"), D("0.0001"), floor=D("-0.003")) == D("-0.003")
    # a 4-hourly contract divides the 8-hour formula by 2 (§3(a), Binance since 2025-09-18)
    # P̄ = 0.2 %: 0.2 % + clamp(0.01 % − 0.2 %) = 0.15 % per 8 h ⇒ 0.075 % per 4 h
    assert funding_rate(D("0.002"), D("0.0001"), interval_hours=4) == D("0.00075")


def test_average_premium_weightings() -> None:
    samples = [D("0.001"), D("0.004")]
    assert average_premium(samples) == D("0.0025")
    # Σ i·P_i / Σ i = (1 × 0.001 + 2 × 0.004)/3
    assert average_premium(samples, weighting="linear") == D("0.003")


def test_premium_is_zero_while_index_is_inside_the_impact_spread() -> None:
    assert premium_index(D(99), D(101), D(100)) == 0
    assert premium_index(D(95), D(98), D(100)) == D("-0.02")


@settings(deadline=None)
@given(
    st.decimals(
        min_value=D("0.001"), max_value=D(1000), places=3, allow_nan=False, allow_infinity=False
    ),
    st.decimals(
        min_value=D(1), max_value=D(100_000), places=2, allow_nan=False, allow_infinity=False
    ),
    st.decimals(
        min_value=D("-0.01"), max_value=D("0.01"), places=6, allow_nan=False, allow_infinity=False
    ),
)
def test_funding_is_zero_sum_and_signed_by_the_rate(
    qty: Decimal, price: Decimal, rate: Decimal
) -> None:
    # §3(d): conservation between equal long and short, sign (F > 0 ⇒ long pays), proportionality
    long_pays = funding_payment(qty, price, rate)
    short_pays = funding_payment(-qty, price, rate)
    assert long_pays + short_pays == 0
    assert (long_pays > 0) == (rate > 0)
    assert funding_payment(2 * qty, price, rate) == 2 * long_pays


def test_dydx_liquidation_fee_is_749985_below_the_surplus_cap() -> None:
    # §5(c): fill 4 999.9, bankruptcy quote 4 501 ⇒ surplus 498.9; 1.5 % × 4 999.9 = 74.9985
    surplus = D("4999.9") - D(4501)
    assert liquidation_fee(D(1), D("4999.9"), D("0.015"), surplus=surplus) == D("74.9985")


def test_liquidation_fee_never_exceeds_the_surplus() -> None:
    # §5(d): a surplus-capped fee cannot make equity negative
    assert liquidation_fee(D(1), D("4999.9"), D("0.015"), surplus=D(10)) == D(10)
    assert liquidation_fee(D(1), D("4999.9"), D("0.015"), surplus=D(-5)) == 0
    assert liquidation_fee(D(-2), D(100), D("0.0125")) == D("2.5")


def test_trading_fee_is_exact_on_fill_qty_times_price() -> None:
    # §5(a): |qty| × price × rate, no rounding; rounding is a separate, explicit step
    fee = trading_fee(D("-0.003"), D("60000.1"), D("0.0004"))
    assert fee == D("0.0720001200")
    assert round_to_unit(fee, D("0.00000001"), ROUND_HALF_UP) == D("0.07200012")
    assert round_to_unit(D("0.125"), D("0.01"), ROUND_DOWN) == D("0.12")
    with pytest.raises(ValueError, match="unit"):
        round_to_unit(fee, D(0), ROUND_HALF_UP)


def test_impact_price_walks_the_notional_through_the_levels() -> None:
    # 2 @ 3010 = 6 020, then 6 000 more at 3000 = 2: 12 020 for 4 ⇒ 3005.
    bids = [(D(3010), D(2)), (D(3000), D(10))]
    assert impact_price(bids, D(12_020)) == D(3005)
    assert impact_price(bids, D(6_020)) == D(3010)  # exactly the first level
    assert impact_price(bids, D(36_021)) is None  # the levels hold 36 020


def test_book_premium_reproduces_the_hyperliquid_one_percent_premium() -> None:
    # §3(c): impact bid 10 100 against spot 10 000 ⇒ 1 %; an impact ask above the index adds 0.
    bids = [(D(10_100), D(10))]
    asks = [(D(10_150), D(10))]
    assert book_premium(bids, asks, D(10_000), D(20_000)) == D("0.01")
    discount = book_premium([(D(9_890), D(10))], [(D(9_900), D(10))], D(10_000), D(20_000))
    assert discount == D("-0.01")


def test_book_premium_ignores_a_side_too_thin_for_the_impact_notional() -> None:
    thin_bids = [(D(10_100), D(1))]  # worth 10 100 < 20 000
    assert book_premium(thin_bids, [(D(10_150), D(10))], D(10_000), D(20_000)) == 0


@pytest.mark.parametrize(
    ("levels", "notional", "message"),
    [
        ([(D(0), D(1))], D(1), "price and qty must be > 0"),
        ([(D(1), D(-1))], D(1), "price and qty must be > 0"),
        ([(D(1), D(1))], D(0), "notional=0 must be > 0"),
    ],
)
def test_impact_price_refuses_bad_input(
    levels: list[tuple[Decimal, Decimal]], notional: Decimal, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        impact_price(levels, notional)
