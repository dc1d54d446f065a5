"""Concentration shares, levels and size advice in the engine (engine/concentration.py).

The book is built by hand (the maker's quotes pulled, a bidder's resting orders put in), so every
figure below is worked out in the test's docstring; each named defect is shown to change exactly
what it names.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.sim.engine.accounts import AccountState
from adapters.sim.engine.concentration import DOCUMENTED_THRESHOLDS
from adapters.sim.engine.exchange import Engine
from harness.concentration import ConcentrationLevel
from harness.errors import ConfigError
from harness.model import BookSnapshot, MarginMode, Side
from harness.oracle.concentration import advised_size
from tests.sim.simkit import BTC, clear_quotes, limit, make_engine, market

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
NONE, NOTICE = ConcentrationLevel.NONE, ConcentrationLevel.NOTICE


def _hand_book(engine: Engine) -> AccountState:
    """Bids 60000 x 1, 59940 x 2, 59880 x 3 (0, 10 and 20 bp under the best); one ask 60010 x 20
    that the test's accounts buy from, so the bids never trade."""
    clear_quotes(engine, BTC)
    bidder = engine.create_account(D(10**9), "bidder")
    for price, qty in (("60000", "1"), ("59940", "2"), ("59880", "3")):
        engine.place_order(bidder.account_id, limit(BTC, BUY, qty, price))
    seller = engine.create_account(D(10**9), "seller")
    engine.place_order(seller.account_id, limit(BTC, SELL, "20", "60010"))
    return seller


def _long(engine: Engine, qty: str, *, isolated: bool = True) -> AccountState:
    acct = engine.create_account(D(1_000_000))
    if isolated:
        engine.set_margin_mode(acct.account_id, BTC, MarginMode.ISOLATED)
    engine.set_leverage(acct.account_id, BTC, 20)
    rec = engine.place_order(acct.account_id, market(BTC, BUY, qty))
    assert (rec.status, rec.cum_quote) == ("FILLED", D(qty) * 60010)
    return acct


def test_shares_and_levels_of_a_position_at_the_open_interest_notice_threshold() -> None:
    """A crowd long of 9.5 and ours of 0.5 make open interest 10: our share is 0.05, exactly the
    documented notice threshold (inclusive). Our 20x isolated long's liquidation price is about
    4.6 % under 60010, below every bid, so the band holds all 6 BTC of bids: depth share
    0.5 / 6 = 1/12, under the 0.25 depth notice."""
    engine = make_engine(quiet=True)
    _hand_book(engine)
    _long(engine, "9.5", isolated=False)
    ours = _long(engine, "0.5")
    report = engine.concentration.report(ours.account_id, BTC, side=None, budget_bps=D(5))
    assert report.quantity == D("0.5")
    assert report.open_interest == D(10)
    assert report.oi_share == D("0.05")
    assert report.band_depth == D(6)
    assert report.depth_share == D("0.5") / D(6)
    assert (report.oi_level, report.depth_level, report.level) == (NOTICE, NONE, NOTICE)
    assert report.liquidation_price is not None
    assert report.liquidation_price < D(59880)
    assert report.thresholds == DOCUMENTED_THRESHOLDS


def test_concentration_thresholds_off_reports_no_warning_at_the_documented_threshold() -> None:
    """The "concentration-thresholds-off" defect applies 0.06 instead of the documented 0.05:
    the same position, exactly at 0.05 of open interest, gets no notice."""
    levels = []
    for defects in ((), ("concentration-thresholds-off",)):
        engine = make_engine(quiet=True, defects=defects)
        _hand_book(engine)
        _long(engine, "9.5", isolated=False)
        ours = _long(engine, "0.5")
        report = engine.concentration.report(ours.account_id, BTC, side=None, budget_bps=D(5))
        levels.append(report.oi_level)
        assert report.thresholds == DOCUMENTED_THRESHOLDS  # it documents the right ones
    assert levels == [NOTICE, NONE]


def test_band_depth_stops_at_the_liquidation_price_and_a_flat_account_gets_advice() -> None:
    """Bids 60000 x 1, 59940 x 2, 59880 x 3: a long liquidated at 59940 has 3 BTC in its band,
    one without a liquidation price all 6. A flat account asking about a short gets its advice
    against the asks: the seller's 60010 x 19.5 left after our 0.5 bought."""
    engine = make_engine(quiet=True)
    _hand_book(engine)
    _long(engine, "0.5")
    assert engine.concentration.band_depth(BTC, long=True, liquidation_price=D(59940)) == D(3)
    assert engine.concentration.band_depth(BTC, long=True, liquidation_price=None) == D(6)
    flat = engine.create_account(D(1_000_000))
    short = engine.concentration.report(flat.account_id, BTC, side=SELL, budget_bps=D(5))
    assert (short.quantity, short.band_depth, short.level) == (D(0), D(0), NONE)
    assert short.advice.side is SELL
    assert short.advice.reference_price == D(60010)
    assert short.advice.depth_qty == D("19.5")


@pytest.mark.parametrize(
    ("budget", "expected"), [("0", "1"), ("5", "2"), ("10", "4"), ("100", "6")]
)
def test_size_advice_is_the_largest_long_whose_close_fits_the_budget(
    budget: str, expected: str
) -> None:
    """Bids 60000 x 1, 59940 x 2, 59880 x 3; budget B bps of 60000 = 6·B USDT a unit on average.
    5 bp (30 USDT): the second level is 60 worse, so (1·60 − 0)/(60 − 30) = 2 units average
    exactly 59970, 5 bp. 10 bp (60): both first levels fit (3 units, average 59960), the third
    is 120 worse: (3·120 − 120)/(120 − 60) = 4 units average 59940, 10 bp. 0 bp: the best level
    only. 100 bp: the whole side, 6."""
    engine = make_engine(quiet=True)
    _hand_book(engine)
    advice = engine.concentration.advise(BTC, BUY, D(budget))
    assert advice.max_qty == D(expected)
    assert advice.reference_price == D(60000)
    assert advice.slippage_bps <= D(budget)
    book = engine.books[BTC]
    snapshot = BookSnapshot(
        symbol=BTC, bids=book.levels(BUY, 100), asks=book.levels(SELL, 100), time_ms=0
    )
    assert advised_size(snapshot, BUY, D(budget), D("0.001")).max_qty == advice.max_qty


def test_size_advice_ignores_depth_advises_the_whole_side_as_if_at_the_best_bid() -> None:
    """The "size-advice-ignores-depth" defect: 6 BTC advised for a 5 bp budget (clean: 2)."""
    out = []
    for defects in ((), ("size-advice-ignores-depth",)):
        engine = make_engine(quiet=True, defects=defects)
        _hand_book(engine)
        out.append(engine.concentration.advise(BTC, BUY, D(5)))
    assert [a.max_qty for a in out] == [D(2), D(6)]
    assert out[1].slippage_bps == 0


def test_bad_budget_and_unknown_account_are_refused() -> None:
    engine = make_engine(quiet=True)
    with pytest.raises(ConfigError, match="budget_bps"):
        engine.concentration.advise(BTC, BUY, D(-1))
    with pytest.raises(ConfigError, match="budget_bps"):
        engine.concentration.advise(BTC, BUY, D("NaN"))
    with pytest.raises(ConfigError, match="unknown account"):
        engine.concentration.report("nobody", BTC, side=None, budget_bps=D(5))
