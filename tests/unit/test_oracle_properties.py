"""Property tests of the tier and liquidation invariants (perp-mechanics.md §4(d), §6(d))."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.model import Bracket
from harness.oracle import (
    PositionInput,
    PositionSide,
    bracket_for,
    cross_liquidation,
    equity_at,
    isolated_liquidation,
    liquidation_price_at_tier,
    maintenance_at,
    maintenance_margin,
    parse_binance_brackets,
)

D = Decimal
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TABLES_2024 = parse_binance_brackets((FIXTURES / "binance_brackets_btcusdt.json").read_bytes())
TABLES_2021 = parse_binance_brackets(
    (FIXTURES / "binance_brackets_2021_faq_example.json").read_bytes()
)
BTC = TABLES_2024["BTCUSDT"]
TABLES = [TABLES_2024["BTCUSDT"], TABLES_2024["ETHUSDT"], *TABLES_2021.values()]
EPS = D("1e-30")


def _decimals(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False
    )


notionals = _decimals("0", "1799999999.99", 2)
quantities = _decimals("0.001", "100", 3)
prices = _decimals("100", "100000", 2)
sides = st.sampled_from([PositionSide.LONG, PositionSide.SHORT])
tables = st.sampled_from(TABLES)


def _position(
    side: PositionSide, qty: Decimal, entry: Decimal, brackets: tuple[Bracket, ...]
) -> PositionInput:
    return PositionInput(
        symbol="SYM", side=side, quantity=qty, entry_price=entry, brackets=brackets
    )


@settings(deadline=None)
@given(notionals, notionals)
def test_maintenance_is_continuous_and_non_decreasing_in_notional(a: Decimal, b: Decimal) -> None:
    # §4(d): MM is continuous, piecewise linear, non-decreasing. Lipschitz with the largest rate
    # (so no jump) and growing at least at the smallest rate (so never decreasing).
    low, high = min(a, b), max(a, b)
    rise = maintenance_margin(BTC, high) - maintenance_margin(BTC, low)
    assert (high - low) * BTC[0].maint_margin_ratio <= rise
    assert rise <= (high - low) * BTC[-1].maint_margin_ratio


@settings(deadline=None)
@given(sides, quantities, prices, tables, _decimals("0", "2", 4), _decimals("0", "2", 4))
def test_isolated_liquidation_price_is_monotone_in_wallet(
    side: PositionSide,
    qty: Decimal,
    entry: Decimal,
    brackets: tuple[Bracket, ...],
    f1: Decimal,
    f2: Decimal,
) -> None:
    # §6(d): more margin ⇒ a long's LP is lower (or gone), a short's LP is higher
    position = _position(side, qty, entry, brackets)
    less, more = sorted((f1 * qty * entry, f2 * qty * entry))
    lp_less = isolated_liquidation(position, less).liquidation_price
    lp_more = isolated_liquidation(position, more).liquidation_price
    if side is PositionSide.LONG:
        assert lp_less is not None or lp_more is None
        assert lp_more is None or lp_less is None or lp_more <= lp_less
    else:
        assert lp_less is not None
        assert lp_more is not None
        assert lp_more >= lp_less


@settings(deadline=None)
@given(sides, quantities, prices, tables, st.integers(min_value=1, max_value=125))
def test_equity_equals_maintenance_at_the_liquidation_price_in_the_bracket_of_q_lp(
    side: PositionSide, qty: Decimal, entry: Decimal, brackets: tuple[Bracket, ...], lev: int
) -> None:
    # §6(d) LP identity and tier fixed point; the fixed point is unique (§6(a) derivation): every
    # bracket whose own candidate lies inside it yields the same price.
    position = _position(side, qty, entry, brackets)
    wallet = qty * entry / lev
    quote = isolated_liquidation(position, wallet)
    lp = quote.liquidation_price
    assume(lp is not None)
    assert lp is not None
    assert quote.bracket is not None
    assert quote.bracket.contains(qty * lp)
    assert quote.bracket == bracket_for(brackets, qty * lp)
    prices_at_lp = {"SYM": lp}
    gap = equity_at([position], wallet, prices_at_lp) - maintenance_at([position], prices_at_lp)
    assert abs(gap) <= EPS * max(D(1), qty * lp)
    candidates = [
        liquidation_price_at_tier(side, qty, entry, wallet, b.maint_margin_ratio, b.cum)
        for b in brackets
    ]
    consistent = [
        c
        for c, b in zip(candidates, brackets, strict=True)
        if c > 0 and b.notional_floor - EPS <= qty * c < b.notional_cap + EPS
    ]
    assert consistent
    assert all(abs(c - lp) <= EPS * lp for c in consistent)


@settings(deadline=None)
@given(sides, quantities, prices, tables, st.integers(min_value=2, max_value=125))
def test_bankruptcy_liquidation_entry_are_ordered_when_opened_with_im_above_mm(
    side: PositionSide, qty: Decimal, entry: Decimal, brackets: tuple[Bracket, ...], lev: int
) -> None:
    # §6(d) ordering: long BP < LP < EP, short BP > LP > EP, for a position opened at a leverage
    # the entry bracket allows (so IM = N/lev > MM(N)); the margin is exactly IM.
    allowed = bracket_for(brackets, qty * entry).initial_leverage
    assume(allowed >= 2)
    position = _position(side, qty, entry, brackets)
    quote = isolated_liquidation(position, qty * entry / min(lev, allowed))
    lp, bp = quote.liquidation_price, quote.bankruptcy_price
    assert lp is not None
    assert bp is not None
    if side is PositionSide.LONG:
        assert bp < lp < entry
    else:
        assert entry < lp < bp


@settings(deadline=None)
@given(quantities, prices, quantities, prices, prices, prices)
def test_cross_liquidation_price_moves_with_another_symbols_mark(
    qty: Decimal, entry: Decimal, other_qty: Decimal, other_entry: Decimal, m1: Decimal, m2: Decimal
) -> None:
    # §6(d) cross coupling: a lower mark of another long lowers the shared equity, so the long's
    # LP rises; the same position isolated does not move at all.
    assume(m1 != m2)
    high, low = max(m1, m2), min(m1, m2)
    btc = _position(PositionSide.LONG, qty, entry, TABLES_2024["BTCUSDT"])
    eth = replace(
        _position(PositionSide.LONG, other_qty, other_entry, TABLES_2024["ETHUSDT"]), symbol="ETH"
    )
    wallet = qty * entry / 20 + other_qty * other_entry / 20
    at_high = cross_liquidation([btc, replace(eth, mark_price=high)], wallet)[0]
    at_low = cross_liquidation([btc, replace(eth, mark_price=low)], wallet)[0]
    assume(at_high.liquidation_price is not None)
    assert at_high.liquidation_price is not None
    assert at_low.liquidation_price is not None
    assert at_low.liquidation_price > at_high.liquidation_price
    isolated = isolated_liquidation(replace(btc, mark_price=high), wallet)
    assert isolated == isolated_liquidation(replace(btc, mark_price=low), wallet)
