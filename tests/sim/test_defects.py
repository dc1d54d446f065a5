"""Each named defect changes exactly the behaviour it names (adapters/sim/defects.py).

Every test runs the same actions on a clean engine and on one with the defect switched on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import pytest

from adapters.sim.defects import DEFECTS
from adapters.sim.engine.accounts import PositionState
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.gateway import Cost
from harness.errors import RateLimited, Rejected
from harness.model import MarginMode, OrderRequest, PricePath, Side, TimeInForce
from harness.oracle import (
    PositionInput,
    PositionSide,
    isolated_liquidation,
    liquidation_price_at_tier,
)
from harness.venue import RateLimits
from tests.sim.simkit import BTC, ETH, limit, make_engine, market, open_position

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
T = TypeVar("T")


def _both(defect: str, run: Callable[[Engine], T]) -> tuple[T, T]:
    """``run`` on a clean engine and on one with ``defect``; same seed, same actions."""
    return run(make_engine(seed=1)), run(make_engine(seed=1, defects=[defect]))


def _place(req_factory: Callable[[], OrderRequest]) -> Callable[[Engine], object]:
    """Place the order on a fresh account: the order record, or the rejection code."""

    def run(engine: Engine) -> object:
        acct = engine.create_account(D(10_000))
        try:
            return engine.place_order(acct.account_id, req_factory())
        except Rejected as exc:
            return exc.code

    return run


def test_min_notional_off_by_one_rejects_an_order_exactly_at_the_minimum() -> None:
    clean, broken = _both(
        "min-notional-off-by-one", _place(lambda: limit(BTC, BUY, "0.002", "50000"))
    )
    assert getattr(clean, "status", None) == "NEW"
    assert broken == -4164


def test_price_rounded_to_tick_accepts_an_off_tick_price_rounded() -> None:
    clean, broken = _both(
        "price-rounded-to-tick", _place(lambda: limit(BTC, BUY, "0.01", "59000.05"))
    )
    assert clean == -4014
    assert getattr(broken, "price", None) == D("59000.10")


def test_qty_rounded_to_step_accepts_an_off_step_quantity_rounded() -> None:
    clean, broken = _both("qty-rounded-to-step", _place(lambda: limit(BTC, BUY, "0.0105", "59000")))
    assert clean == -1111
    assert getattr(broken, "orig_qty", None) == D("0.011")


def test_post_only_takes_executes_a_crossing_gtx_order() -> None:
    def run(engine: Engine) -> object:
        ask = engine.books[BTC].best_ask()
        assert ask is not None
        return _place(lambda: limit(BTC, BUY, "0.01", ask, TimeInForce.GTX))(engine)

    clean, broken = _both("post-only-takes", run)
    assert clean == -5022
    assert getattr(broken, "status", None) == "FILLED"


def test_ioc_remainder_rests_leaves_the_unfilled_part_on_the_book() -> None:
    def run(engine: Engine) -> tuple[str, int]:
        ((ask, qty),) = engine.books[BTC].levels(SELL, 1)
        acct = engine.create_account(D(10_000))
        req = limit(BTC, BUY, str(qty + D("0.01")), ask, TimeInForce.IOC)
        rec = engine.place_order(acct.account_id, req)
        return rec.status, len(engine.books[BTC].orders_of(acct.account_id))

    clean, broken = _both("ioc-remainder-rests", run)
    assert clean == ("EXPIRED", 0)
    assert broken == ("PARTIALLY_FILLED", 1)


def test_reduce_only_ignored_lets_a_reduce_only_order_open_a_position() -> None:
    clean, broken = _both(
        "reduce-only-ignored", _place(lambda: market(BTC, SELL, "0.01", reduce_only=True))
    )
    assert clean == -2022
    assert getattr(broken, "status", None) == "FILLED"


def test_duplicate_client_id_accepted_keeps_two_orders_under_one_id() -> None:
    def run(engine: Engine) -> list[str]:
        acct = engine.create_account(D(10_000))
        engine.place_order(acct.account_id, limit(BTC, BUY, "0.01", "59000", cid="same"))
        with contextlib.suppress(Rejected):
            engine.place_order(acct.account_id, limit(BTC, BUY, "0.01", "58000", cid="same"))
        return [r.client_order_id for r in acct.orders.values()]

    clean, broken = _both("duplicate-client-id-accepted", run)
    assert clean == ["same"]
    assert broken == ["same", "same"]


def test_maker_charged_taker_fee_charges_a_resting_order_the_taker_rate() -> None:
    def run(engine: Engine) -> Decimal:
        maker, taker = engine.create_account(D(10_000)), engine.create_account(D(10_000))
        bid = engine.books[BTC].best_bid()
        assert bid is not None
        engine.place_order(maker.account_id, limit(BTC, BUY, "0.1", bid + D("0.1")))
        engine.place_order(taker.account_id, market(BTC, SELL, "0.1"))
        (fill,) = maker.fills
        assert fill.maker
        return fill.commission / (fill.price * fill.qty)

    assert _both("maker-charged-taker-fee", run) == (D("0.0002"), D("0.0005"))


def test_realized_pnl_on_mark_books_a_close_at_the_mark() -> None:
    def run(engine: Engine) -> tuple[Decimal, Decimal, Decimal]:
        trader = engine.create_account(D(10_000))
        engine.place_order(trader.account_id, market(BTC, BUY, "0.01"))
        entry = trader.positions[BTC].entry
        mark = engine.prices[BTC].mark
        engine.place_order(trader.account_id, market(BTC, SELL, "0.01"))
        close = trader.fills[-1]
        assert close.price != mark  # the bid, away from the mark: the case tells them apart
        return close.realized_pnl, D("0.01") * (close.price - entry), D("0.01") * (mark - entry)

    (clean, on_fill, _), (broken, _, on_mark) = _both("realized-pnl-on-mark", run)
    assert clean == on_fill
    assert broken == on_mark
    assert clean != broken


def test_fee_on_mark_price_charges_the_notional_at_the_mark() -> None:
    def run(engine: Engine) -> tuple[Decimal, Decimal, Decimal]:
        taker = engine.create_account(D(10_000))
        mark = engine.prices[BTC].mark
        engine.place_order(taker.account_id, market(BTC, BUY, "0.01"))
        (fill,) = taker.fills
        assert fill.price != mark  # the ask, away from the mark: the case tells them apart
        return fill.commission, fill.qty * fill.price * D("0.0005"), fill.qty * mark * D("0.0005")

    (clean, on_fill, _), (broken, _, on_mark) = _both("fee-on-mark-price", run)
    assert clean == on_fill.quantize(D("1E-8"))
    assert broken == on_mark.quantize(D("1E-8"))
    assert clean != broken


def _sweep_bids(engine: Engine) -> None:
    engine.market_maker.set_profile(BTC, "thin")
    whale = engine.create_account(D(1_000_000))
    qty = sum((q for _, q in engine.books[BTC].levels(BUY, 10)), D(0))
    engine.place_order(whale.account_id, market(BTC, SELL, str(qty)))


def test_mark_is_last_publishes_the_last_price_as_the_mark() -> None:
    def run(engine: Engine) -> tuple[Decimal, Decimal]:
        _sweep_bids(engine)
        state = engine.prices[BTC]
        return state.mark, state.last_price

    (clean_mark, last), (broken_mark, broken_last) = _both("mark-is-last", run)
    assert clean_mark > last * D("1.005")
    assert broken_mark == broken_last


def test_mark_lags_index_holds_the_mark_for_four_updates_out_of_five() -> None:
    def run(engine: Engine) -> list[Decimal]:
        engine.set_price_path(BTC, PricePath(points=((0, D(60000)), (1, D(61200)))))
        marks = []
        for _ in range(5):
            engine.clock.advance(1000)
            marks.append(engine.mark(BTC))
        return marks

    clean, broken = _both("mark-lags-index", run)
    assert all(abs(m / D(61200) - 1) < D("0.001") for m in clean)
    assert broken[:4] == [D(60000)] * 4
    assert broken[4] == clean[4]


def test_upnl_on_last_values_positions_at_the_last_price() -> None:
    def run(engine: Engine) -> tuple[Decimal, Decimal, Decimal]:
        acct = engine.create_account(D(10_000))
        open_position(engine, acct, BTC, BUY, "0.1")
        _sweep_bids(engine)
        pos = acct.positions[BTC]
        state = engine.prices[BTC]
        return engine.ledger.figures(pos).upnl, pos.upnl(state.mark), pos.upnl(state.last_price)

    (clean, at_mark, _), (broken, _, at_last) = _both("upnl-on-last", run)
    assert clean == at_mark
    assert broken == at_last
    assert broken < clean - 30


def _lp(engine: Engine, pos: PositionState, *, with_eth: bool = False) -> Decimal | None:
    acct = engine.create_account(D(0))
    acct.cross_wallet = D(3000)
    acct.positions[BTC] = pos
    if with_eth:
        mark = engine.mark(ETH)
        acct.positions[ETH] = PositionState(
            symbol=ETH, margin_mode=MarginMode.CROSS, leverage=20, qty=D(-2), entry=mark - 150
        )
    return engine.ledger.liquidation_price(acct, pos)


def test_entry_tier_for_liquidation_uses_the_tier_of_the_entry_notional() -> None:
    # 0.85 BTC at 60 000 is 51 000 of notional (tier 2); the LP near 57 000 is in tier 1.
    def pos() -> PositionState:
        return PositionState(
            symbol=BTC,
            margin_mode=MarginMode.ISOLATED,
            leverage=20,
            qty=D("0.85"),
            entry=D(60000),
            isolated_wallet=D(2550),
        )

    clean, broken = _both("entry-tier-for-liquidation", lambda e: _lp(e, pos()))
    brackets = make_engine().instruments[BTC].brackets
    quote = isolated_liquidation(
        PositionInput(
            symbol=BTC,
            side=PositionSide.LONG,
            quantity=D("0.85"),
            entry_price=D(60000),
            brackets=brackets,
        ),
        D(2550),
    )
    assert quote.bracket is not None
    assert quote.liquidation_price is not None
    assert quote.bracket.bracket == 1  # tier at the LP notional (entry notional is in tier 2)
    assert clean is not None
    assert abs(clean - quote.liquidation_price) < D("1e-6")
    tier2 = brackets[1]
    wrong = liquidation_price_at_tier(
        PositionSide.LONG, D("0.85"), D(60000), D(2550), tier2.maint_margin_ratio, tier2.cum
    )
    assert broken is not None
    assert abs(broken - wrong) < D("1e-6")
    assert abs(broken - clean) > 1


def test_cross_ignores_other_positions_drops_the_other_symbols_pnl_and_maintenance() -> None:
    def run(engine: Engine) -> tuple[Decimal | None, Decimal | None]:
        def pos() -> PositionState:
            return PositionState(
                symbol=BTC, margin_mode=MarginMode.CROSS, leverage=20, qty=D("0.5"), entry=D(60000)
            )

        return _lp(engine, pos(), with_eth=True), _lp(engine, pos())

    (clean_both, clean_alone), (broken_both, broken_alone) = _both(
        "cross-ignores-other-positions", run
    )
    assert clean_both != clean_alone
    assert broken_both == broken_alone == clean_alone


def _liquidations(engine: Engine) -> int:
    return len(engine.liquidator.records)


def test_liquidate_on_last_liquidates_on_a_last_price_wick_the_mark_ignores() -> None:
    def run(engine: Engine) -> tuple[int, Decimal, Decimal]:
        acct = engine.create_account(D(10_000))
        open_position(engine, acct, BTC, BUY, "0.5", mode=MarginMode.ISOLATED, leverage=125)
        lp = engine.ledger.liquidation_price(acct, acct.positions[BTC])
        assert lp is not None
        _sweep_bids(engine)
        return _liquidations(engine), lp, engine.prices[BTC].last_price

    (clean, lp, last), (broken, _, _) = _both("liquidate-on-last", run)
    assert last < lp  # the wick went through the liquidation price...
    assert clean == 0  # ...but the mark did not
    assert broken == 1


def _isolated_long_moved_to(
    engine: Engine, offset_from_lp: Decimal, step: bool = True
) -> PositionState:
    acct = engine.create_account(D(10_000))
    open_position(engine, acct, BTC, BUY, "0.1", mode=MarginMode.ISOLATED, leverage=20)
    pos = acct.positions[BTC]
    lp = engine.ledger.liquidation_price(acct, pos)
    assert lp is not None
    idx = engine.prices[BTC].index
    end = lp + offset_from_lp
    points = ((0, idx), (1, end)) if step else ((0, idx), (100_000, idx * D("0.94")))
    engine.set_price_path(BTC, PricePath(points=points, linear=not step))
    engine.clock.advance(1000 if step else 100_000)
    return pos


def test_maintenance_halved_in_trigger_liquidates_late() -> None:
    def run(engine: Engine) -> tuple[int, Decimal]:
        pos = _isolated_long_moved_to(engine, D(-50))
        if pos.qty == 0:
            return _liquidations(engine), D(0)
        fig = engine.ledger.figures(pos)
        return _liquidations(engine), (pos.isolated_wallet + fig.upnl) / fig.maint_margin

    (clean, _), (broken, ratio) = _both("maintenance-halved-in-trigger", run)
    assert (clean, broken) == (1, 0)
    assert D("0.5") < ratio <= 1  # at or below maintenance, yet above half of it: kept open


def test_double_liquidation_fee_charges_the_fee_twice() -> None:
    def run(engine: Engine) -> tuple[Decimal, Decimal, Decimal]:
        _isolated_long_moved_to(engine, D(0), step=False)
        (record,) = engine.liquidator.records
        trader = engine.accounts[record.account_id]
        return record.fee, trader.wallet_total(), engine.insurance.cross_wallet

    (fee, clean_wallet, clean_fund), (same_fee, broken_wallet, broken_fund) = _both(
        "double-liquidation-fee", run
    )
    assert fee == same_fee > 0
    assert broken_wallet == clean_wallet - fee
    assert broken_fund == clean_fund + fee


def test_no_insurance_cover_charges_the_deficit_to_the_trader() -> None:
    def run(engine: Engine) -> tuple[Decimal, Decimal, Decimal, str]:
        acct = engine.create_account(D(10_000))
        open_position(engine, acct, BTC, BUY, "0.1", mode=MarginMode.ISOLATED, leverage=20)
        margin = acct.positions[BTC].isolated_wallet
        before = acct.wallet_total()
        engine.market_maker.set_profile(BTC, "thin")
        idx = engine.prices[BTC].index
        engine.set_price_path(BTC, PricePath(points=((0, idx), (1, idx * D("0.88")))))
        engine.clock.advance(1000)
        (record,) = engine.liquidator.records
        liq_order = next(r for r in acct.orders.values() if r.liquidation)
        return before - acct.wallet_total(), margin, record.price, liq_order.type

    (clean_loss, margin, limit_price, clean_type), (broken_loss, _, no_limit, broken_type) = _both(
        "no-insurance-cover", run
    )
    assert clean_loss == margin
    assert (clean_type, limit_price > 0) == ("LIMIT", True)
    assert broken_loss > margin
    assert (broken_type, no_limit) == ("MARKET", D(0))


def test_weight_limit_reached_refused_refuses_the_request_that_reaches_the_limit() -> None:
    def answered(defects: frozenset[str]) -> int:
        gateway = make_engine(seed=3, defects=defects).gateway
        gateway.set_limits(RateLimits(weight_per_minute=10))
        for i in range(6):
            try:
                gateway.enter("ip", Cost(weight=2))
            except RateLimited:
                return i
        return 6

    assert answered(frozenset()) == 5  # 2, 4, ... 10: the fifth reaches the limit and is answered
    assert answered(frozenset({"weight-limit-reached-refused"})) == 4


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_each_defect_has_an_engine_level_test(name: str) -> None:
    """Every defect is exercised by name in a test module of this folder."""
    folder = Path(__file__).parent
    texts = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("test_*.py"))]
    assert any(f'"{name}"' in text for text in texts)
