"""Concentration shares, levels and size advice from a book (harness/oracle/concentration.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from harness.concentration import (
    REFERENCE_THRESHOLDS,
    Concentration,
    ConcentrationLevel,
    ConcentrationThresholds,
    SizeAdvice,
)
from harness.model import BookSnapshot, MarginMode, Position, Side
from harness.oracle.concentration import (
    advised_size,
    band_depth,
    close_slippage,
    expected_concentration,
    level_for,
    open_interest,
)

D = Decimal
L = ConcentrationLevel
BOOK = BookSnapshot(
    symbol="BTCUSDT",
    bids=((D(60000), D(1)), (D(59940), D(2)), (D(59880), D(3))),
    asks=((D(60010), D(2)),),
    time_ms=0,
)


def _long(qty: str, lp: str | None) -> Position:
    return Position(
        symbol="BTCUSDT",
        quantity=D(qty),
        entry_price=D(60010),
        mark_price=D(60005),
        unrealized_pnl=D(0),
        liquidation_price=None if lp is None else D(lp),
        margin_mode=MarginMode.ISOLATED,
        isolated_wallet=D(100),
        leverage=20,
        notional=D(0),
        maint_margin=D(0),
        initial_margin=D(0),
    )


@pytest.mark.parametrize(
    ("share", "level"),
    [
        (D("0.0499"), L.NONE),
        (D("0.05"), L.NOTICE),
        (D("0.1499"), L.NOTICE),
        (D("0.15"), L.WARNING),
        (D("0.30"), L.CRITICAL),
        (D(3), L.CRITICAL),
        (None, L.CRITICAL),
    ],
)
def test_a_share_reaches_a_level_at_its_threshold(share: Decimal | None, level: L) -> None:
    assert level_for(share, REFERENCE_THRESHOLDS.oi()) is level


def test_thresholds_must_ascend() -> None:
    with pytest.raises(ValueError, match="strictly ascending"):
        ConcentrationThresholds(oi_notice=D("0.2"), oi_warning=D("0.15"))


def test_depth_share_counts_the_bids_down_to_the_liquidation_price() -> None:
    """A long of 1.5 liquidated at 59940: bids at 60000 and 59940 hold 3, share 0.5 (warning);
    open interest 10 makes 0.15 (warning)."""
    exp = expected_concentration(_long("1.5", "59940"), BOOK, D(10), REFERENCE_THRESHOLDS)
    assert exp.band_depth == D(3)
    assert exp.depth_share == D("0.5")
    assert exp.oi_share == D("0.15")
    assert (exp.oi_level, exp.depth_level, exp.level) == (L.WARNING, L.WARNING, L.WARNING)
    assert band_depth(BOOK, long=True, liquidation_price=None) == D(6)
    assert band_depth(BOOK, long=False, liquidation_price=D(60005)) == D(0)


def test_no_depth_in_the_band_is_critical() -> None:
    exp = expected_concentration(_long("0.1", "60001"), BOOK, D(100), REFERENCE_THRESHOLDS)
    assert (exp.band_depth, exp.depth_share, exp.level) == (D(0), None, L.CRITICAL)


def test_open_interest_sums_the_longs() -> None:
    short = _long("-2", None)
    assert open_interest([_long("1.5", None), _long("0.5", None), short], "BTCUSDT") == D(2)


def test_a_flat_position_or_too_little_open_interest_is_refused() -> None:
    with pytest.raises(ValueError, match="flat"):
        expected_concentration(_long("0", None), BOOK, D(1), REFERENCE_THRESHOLDS)
    with pytest.raises(ValueError, match="open_interest"):
        expected_concentration(_long("2", None), BOOK, D(1), REFERENCE_THRESHOLDS)


def test_size_advice_on_hand_worked_numbers() -> None:
    """5 bp of 60000 is 30 a unit: 1 at 60000 and 1 at 59940 average 59970, exactly 5 bp; a
    third unit at 59940 averages 59960 (6.67 bp). A short closes into the 2 asks: 0 bp."""
    advice = advised_size(BOOK, Side.BUY, D(5), D("0.001"))
    assert advice.max_qty == D(2)
    assert advice.slippage_bps == D(5)
    assert advice.next_slippage_bps is not None
    assert advice.next_slippage_bps > D(5)
    assert advised_size(BOOK, Side.SELL, D(5), D("0.001")).max_qty == D(2)
    assert close_slippage(BOOK, Side.SELL, D("2.001")) is None  # more than the asks hold


def test_size_advice_refuses_a_negative_budget() -> None:
    with pytest.raises(ValueError, match="budget_bps"):
        advised_size(BOOK, Side.BUY, D(-1), D("0.001"))


def test_headroom_is_what_the_advice_leaves_above_the_position() -> None:
    """Advice 2 for a long: a long of 0.5 may grow by 1.5; a long of 3 by nothing; a short (its
    advice is for the other side) leaves the whole advice."""
    advice = SizeAdvice(
        symbol="BTCUSDT",
        side=Side.BUY,
        budget_bps=D(5),
        max_qty=D(2),
        reference_price=D(60000),
        slippage_bps=D(5),
        depth_qty=D(6),
    )

    def report(qty: str) -> Concentration:
        return Concentration(
            account_id="a",
            symbol="BTCUSDT",
            quantity=D(qty),
            mark_price=D(60000),
            liquidation_price=None,
            open_interest=D(10),
            oi_share=D(0),
            band_depth=D(0),
            depth_share=D(0),
            oi_level=L.NONE,
            depth_level=L.NONE,
            level=L.NONE,
            advice=advice,
            time_ms=0,
        )

    assert [report(q).headroom for q in ("0.5", "3", "-1")] == [D("1.5"), D(0), D(2)]
