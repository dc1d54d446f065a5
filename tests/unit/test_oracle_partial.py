"""The oracle's partial-liquidation step, band and ADL rank against hand-computed figures.

perp-mechanics.md §7 (variants), §9(c) (the BitMEX ranking fixture), §13.3 (minimal reduction).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.sim.config import BTC_BRACKETS
from harness.model import LiquidationPolicy, LiquidationVariant
from harness.oracle import (
    PositionInput,
    PositionSide,
    adl_rank,
    expected_band,
    step_close_quantity,
)

D = Decimal
STEP = D("0.001")
TIER = LiquidationPolicy(variant=LiquidationVariant.TIER_STEP_DOWN)
FRACTION = LiquidationPolicy(variant=LiquidationVariant.FRACTION)


def _long(qty: str, entry: str = "60000") -> PositionInput:
    return PositionInput(
        symbol="BTCUSDT",
        side=PositionSide.LONG,
        quantity=D(qty),
        entry_price=D(entry),
        brackets=BTC_BRACKETS,
    )


def test_isolated_tier_2_long_steps_to_just_below_the_tier_1_cap() -> None:
    # Long 1 BTC @ 60 000, isolated margin 3 000 (20x). Tier 2 (mmr 0.5 %, cum 50):
    #   LP = (3000 + 50 - 60000) / (0.005 - 1) = 56950 / 0.995 = 57236.18090452...
    #   at LP: E = MM = 57236.1809 x 0.005 - 50 = 236.18090452...
    # The remainder must sit in tier 1: R x LP < 50 000  =>  R < 0.8735713...  =>  R = 0.873.
    #   E' = 0.873 x 236.1809 = 206.1859 > MM' = 0.873 x 57236.1809 x 0.004 = 199.8687
    # so the step closes 1 - 0.873 = 0.127.
    lp = D(56950) / D("0.995")
    assert str(lp)[:14] == "57236.18090452"
    close = step_close_quantity(
        _long("1"),
        price=lp,
        equity=D(3000) + (lp - 60000),
        policy=TIER,
        step_size=STEP,
        isolated=True,
    )
    assert close == D("0.127")


def test_isolated_band_is_the_step_then_the_full_close_of_the_tier_1_remainder() -> None:
    # Step 1 as above. The remainder keeps its share of the margin: 3000 x 0.873 = 2619.
    # Step 2, tier 1 (mmr 0.4 %, cum 0): LP = (2619 - 0.873 x 60000) / (0.873 x 0.004 - 0.873)
    #   = -49761 / -0.869508 = 57228.9156...; in the lowest tier the whole 0.873 goes.
    band = expected_band(_long("1"), wallet=D(3000), policy=TIER, step_size=STEP, isolated=True)
    assert [(s.close_qty, s.remaining_qty, s.bracket_before, s.bracket_after) for s in band] == [
        (D("0.127"), D("0.873"), 2, 1),
        (D("0.873"), D(0), 1, None),
    ]
    assert abs(band[0].mark - D(56950) / D("0.995")) < D("1e-20")
    assert abs(band[1].mark - D(49761) / D("0.869508")) < D("1e-20")
    assert str(band[1].mark)[:11] == "57228.91566"


def test_cross_tier_2_long_step_accounts_for_the_liquidation_fee() -> None:
    # Cross long 2 BTC @ 60 000, wallet 10 000, liquidation fee 0.15 %.
    #   LP = (10000 + 50 - 120000) / (2 x 0.005 - 2) = 109950 / 1.99 = 55251.25628140...
    #   at LP: E = MM = 110502.5126 x 0.005 - 50 = 502.51256...
    # Tier 1 cap: R < 50000 / 55251.2563 = 0.9049567...  =>  R = 0.904, close 1.096:
    #   E - fee = 502.5126 - 0.0015 x 1.096 x 55251.2563 = 411.6795 > MM' = 199.7886
    lp = D(109950) / D("1.99")
    equity = D(10000) + 2 * (lp - 60000)
    close = step_close_quantity(
        _long("2"),
        price=lp,
        equity=equity,
        policy=TIER,
        step_size=STEP,
        isolated=False,
        fee_rate=D("0.0015"),
    )
    assert close == D("1.096")


def test_a_position_in_the_lowest_tier_is_closed_whole() -> None:
    # 0.05 BTC (3 000 notional) is tier 1: no lower tier to step into.
    close = step_close_quantity(
        _long("0.05"),
        price=D(57300),
        equity=D("11.46"),
        policy=TIER,
        step_size=STEP,
        isolated=True,
    )
    assert close == D("0.05")


def test_fraction_slices_a_fifth_rounded_up_to_the_step_unless_cooling_or_small() -> None:
    eth = PositionInput(
        symbol="ETHUSDT",
        side=PositionSide.LONG,
        quantity=D("66.666"),
        entry_price=D(3000),
        brackets=BTC_BRACKETS,
    )
    common = {"price": D(2750), "equity": D(1000), "step_size": STEP, "isolated": False}
    # 0.2 x 66.666 = 13.3332, rounded up to the 0.001 step: 13.334.
    assert step_close_quantity(eth, policy=FRACTION, **common) == D("13.334")  # type: ignore[arg-type]
    assert step_close_quantity(eth, policy=FRACTION, cooling=True, **common) == D("66.666")  # type: ignore[arg-type]
    small = PositionInput(
        symbol="ETHUSDT",
        side=PositionSide.LONG,
        quantity=D(30),
        entry_price=D(3000),
        brackets=BTC_BRACKETS,
    )
    # 30 x 2750 = 82 500 <= the 100 000 slice threshold: the whole position.
    assert step_close_quantity(small, policy=FRACTION, **common) == D(30)  # type: ignore[arg-type]


def test_full_variant_closes_everything() -> None:
    full = LiquidationPolicy(variant=LiquidationVariant.FULL)
    close = step_close_quantity(
        _long("1"), price=D(57000), equity=D(200), policy=full, step_size=STEP, isolated=True
    )
    assert close == D(1)


@pytest.mark.parametrize(
    ("pnl", "entry", "mark_value", "equity", "expected"),
    [
        # BitMEX fixture (§9(c)): entry value 100, mark value 110, bankrupt value 90:
        # PnL% = 10 %, effective leverage = 110 / (110 - 90) = 5.5, rank 0.55.
        (D(10), D(100), D(110), D(20), D("0.55")),
        # The second long: PnL% 20 %, effective leverage 2: rank 0.40, deleveraged later.
        (D(20), D(100), D(120), D(60), D("0.40")),
        # A losing position ranks PnL% / leverage: -10 % / 2 = -0.05.
        (D(-10), D(100), D(90), D(45), D("-0.05")),
    ],
)
def test_adl_rank_reproduces_the_bitmex_ranking(
    pnl: Decimal, entry: Decimal, mark_value: Decimal, equity: Decimal, expected: Decimal
) -> None:
    rank = adl_rank(upnl=pnl, entry_notional=entry, notional=mark_value, equity=equity)
    assert rank == expected
