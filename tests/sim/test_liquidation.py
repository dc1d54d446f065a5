"""Liquidation: trigger on mark, bankruptcy-price limit, fee, insurance fund (liquidation.py).

Source: perp-mechanics.md §6 (trigger, bankruptcy price), §5/§8 (liquidation fee, insurance fund).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from adapters.sim.config import default_instruments
from adapters.sim.engine.accounts import AccountState
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.liquidation import LiquidationRecord
from harness.model import IncomeType, MarginMode, OrderStatus, PricePath, Side
from harness.oracle import maintenance_margin
from tests.sim.simkit import BTC, ETH, limit, make_engine, open_position

D = Decimal
UNIT = D("0.00000001")
BTC_BRACKETS = default_instruments()[BTC].instrument.brackets


def _isolated_long(engine: Engine, qty: str = "0.1", leverage: int = 20) -> AccountState:
    acct = engine.create_account(D(10_000))
    open_position(engine, acct, BTC, Side.BUY, qty, mode=MarginMode.ISOLATED, leverage=leverage)
    return acct


def _move(engine: Engine, symbol: str, factor: str, over_ms: int = 0) -> None:
    """Index path from now: to ``factor`` x today's index, as a step or linearly."""
    idx = engine.prices[symbol].index
    target = idx * D(factor)
    points = ((0, idx), (over_ms, target)) if over_ms else ((0, idx), (1, target))
    engine.set_price_path(symbol, PricePath(points=points, linear=bool(over_ms)))


def _equity_minus_mm(qty: Decimal, entry: Decimal, wallet: Decimal, price: Decimal) -> Decimal:
    """Isolated equity minus maintenance at ``price``, maintenance from the oracle."""
    return wallet + qty * (price - entry) - maintenance_margin(BTC_BRACKETS, abs(qty) * price)


def _one_record(engine: Engine) -> LiquidationRecord:
    (record,) = engine.liquidator.records
    return record


def test_isolated_long_is_liquidated_at_the_first_update_where_equity_reaches_maintenance() -> None:
    engine = make_engine(seed=1)
    acct = _isolated_long(engine)
    engine.place_order(acct.account_id, limit(BTC, Side.BUY, "0.002", "50000"))  # gets cancelled
    pos = acct.positions[BTC]
    qty, entry, wallet = pos.qty, pos.entry, pos.isolated_wallet
    lp = engine.ledger.liquidation_price(acct, pos)
    assert lp is not None
    _move(engine, BTC, "0.94", over_ms=100_000)
    marks = []
    while not engine.liquidator.records:
        engine.clock.advance(1000)
        marks.append(engine.mark(BTC))
        assert len(marks) < 100
    record = _one_record(engine)
    trigger = record.trigger_mark
    now = engine.clock.now_ms()
    assert record.time_ms == now
    # The update's mark triggered it (the liquidation's own trades then move the last price
    # and the mark is recomputed, as after any trade).
    assert (now, trigger) in [(t, m) for t, m, _, _ in engine.prices[BTC].history]
    assert _equity_minus_mm(qty, entry, wallet, trigger) <= 0
    assert all(_equity_minus_mm(qty, entry, wallet, m) > 0 for m in marks[:-1])
    assert trigger <= lp < min(marks[:-1])  # the reported LP is where it happens
    assert acct.positions[BTC].qty == 0
    assert acct.positions[BTC].isolated_wallet == 0
    assert [r.status for r in acct.orders.values() if r.type == "LIMIT" and not r.liquidation] == [
        OrderStatus.CANCELED
    ]


def test_book_liquidation_fills_no_worse_than_bankruptcy_and_pays_the_fee_to_the_fund() -> None:
    engine = make_engine(seed=1)
    acct = _isolated_long(engine)
    pos = acct.positions[BTC]
    bankruptcy = pos.entry - pos.isolated_wallet / pos.qty
    wallet_before = acct.wallet_total()
    fund_before = engine.insurance.cross_wallet
    _move(engine, BTC, "0.94", over_ms=100_000)
    engine.clock.advance(100_000)
    record = _one_record(engine)
    fills = [f for f in acct.fills if f.liquidation]
    assert sum((f.qty for f in fills), D(0)) == record.quantity == D("0.1")
    assert record.taken_over_qty == 0
    assert record.bankruptcy_price == bankruptcy.quantize(UNIT)
    assert record.price >= bankruptcy  # the IOC's limit, on the trader's safe side of BP
    assert all(f.price >= bankruptcy for f in fills)
    assert all(f.commission == 0 for f in fills)
    book_notional = sum((f.price * f.qty for f in fills), D(0))
    assert record.avg_price == book_notional / record.filled_qty
    fee = (book_notional * D("0.0015")).quantize(UNIT, rounding=ROUND_HALF_UP)
    assert record.fee == fee
    assert record.shortfall == 0
    realized = sum((f.realized_pnl for f in fills), D(0))
    assert acct.wallet_total() == wallet_before + realized - fee
    assert engine.insurance.cross_wallet - fund_before == fee
    (clear,) = [r for r in acct.income if r.income_type is IncomeType.INSURANCE_CLEAR]
    assert (clear.amount, clear.symbol) == (-fee, BTC)
    assert clear.info == acct.orders[fills[0].order_id].client_order_id


def test_liquidation_fee_is_capped_by_the_collateral_left() -> None:
    engine = make_engine(seed=1)
    acct = _isolated_long(engine)
    pos = acct.positions[BTC]
    bankruptcy = pos.entry - pos.isolated_wallet / pos.qty
    cross_before = acct.cross_wallet
    fund_before = engine.insurance.cross_wallet
    # Step the index to 50 USDT above bankruptcy: the book fills there, leaving ~5 USDT of
    # collateral, less than the 0.15 % fee (~8.56 USDT).
    idx = engine.prices[BTC].index
    engine.set_price_path(BTC, PricePath(points=((0, idx), (1, bankruptcy + 50))))
    engine.clock.advance(1000)
    record = _one_record(engine)
    assert record.taken_over_qty == 0
    assert record.avg_price is not None
    uncapped = (record.avg_price * record.quantity * D("0.0015")).quantize(UNIT, ROUND_HALF_UP)
    assert 0 < record.fee < uncapped
    assert acct.cross_wallet == cross_before  # the fee took exactly what was left
    assert engine.insurance.cross_wallet - fund_before == record.fee


def test_gap_through_bankruptcy_is_taken_over_and_the_trader_loses_only_the_margin() -> None:
    engine = make_engine(seed=1)
    acct = _isolated_long(engine)
    margin = acct.positions[BTC].isolated_wallet
    wallet_before = acct.wallet_total()
    fund_before = engine.insurance.cross_wallet
    engine.market_maker.set_profile(BTC, "thin")
    _move(engine, BTC, "0.88")
    engine.clock.advance(1000)
    record = _one_record(engine)
    assert record.taken_over_qty == record.quantity == D("0.1")
    assert record.filled_qty == 0  # nothing in the book at or above the bankruptcy price
    assert record.shortfall > 0
    assert wallet_before - acct.wallet_total() == margin  # exactly the margin, never more
    assert engine.insurance.cross_wallet - fund_before == record.fee - record.shortfall
    fund_pos = engine.insurance.positions[BTC]
    assert fund_pos.qty == 0  # the fund offloaded what it took over
    takeover = [f for f in acct.fills if f.liquidation]
    assert [f.price for f in takeover] == [record.bankruptcy_price]


def test_cross_liquidation_closes_every_cross_position_and_the_fund_resets_the_wallet() -> None:
    engine = make_engine(seed=1)
    acct = engine.create_account(D(1000))
    open_position(engine, acct, BTC, Side.BUY, "0.5", leverage=50)
    open_position(engine, acct, ETH, Side.SELL, "1", leverage=50)
    fund_before = engine.insurance.cross_wallet
    engine.market_maker.set_profile(BTC, "thin")
    _move(engine, BTC, "0.95")
    engine.clock.advance(1000)
    records = engine.liquidator.records
    assert [(r.symbol, r.margin_mode) for r in records] == [
        (BTC, MarginMode.CROSS),
        (ETH, MarginMode.CROSS),
    ]
    assert {r.time_ms for r in records} == {engine.clock.now_ms()}
    assert acct.open_positions() == []
    assert acct.cross_wallet == 0  # bankrupt: brought back to zero, never left negative
    fees = sum((r.fee for r in records), D(0))
    shortfall = sum((r.shortfall for r in records), D(0))
    assert shortfall > 0
    assert engine.insurance.cross_wallet - fund_before == fees - shortfall


def test_cross_liquidation_above_bankruptcy_keeps_the_rest_for_the_trader() -> None:
    engine = make_engine(seed=1)
    acct = engine.create_account(D(1000))
    open_position(engine, acct, BTC, Side.BUY, "0.25", leverage=50)
    engine.place_order(acct.account_id, limit(ETH, Side.BUY, "0.01", "2500"))  # cancelled too
    _move(engine, BTC, "0.9", over_ms=60_000)
    engine.clock.advance(60_000)
    record = _one_record(engine)
    assert (record.taken_over_qty, record.shortfall) == (D(0), D(0))
    assert record.fee > 0
    assert acct.cross_wallet > 0
    assert acct.open_positions() == []
    assert all(r.status != "NEW" for r in acct.orders.values())


def test_an_account_pushed_under_maintenance_by_a_liquidation_goes_in_the_same_update() -> None:
    # A rests an ask above the market; B is an isolated short. The index jumps 3.3 %: B is
    # liquidated and its closing buy lifts A's stale ask, which leaves A short far below the
    # mark. A must be liquidated at the same update, not a second later.
    engine = make_engine(seed=1)
    a = engine.create_account(D(60))
    engine.set_leverage(a.account_id, ETH, 100)
    engine.place_order(a.account_id, limit(ETH, Side.SELL, "1", "3010"))
    b = engine.create_account(D(1000))
    open_position(engine, b, ETH, Side.SELL, "1", mode=MarginMode.ISOLATED, leverage=50)
    engine.set_price_path(ETH, PricePath(points=((0, D(3000)), (1, D(3100)))))
    engine.clock.advance(1000)
    now = engine.clock.now_ms()
    liquidated = [(r.account_id, r.time_ms) for r in engine.liquidator.records]
    assert liquidated == [(b.account_id, now), (a.account_id, now)]
    assert a.fills[0].order_id == next(iter(a.orders))  # B's liquidation took A's ask
    assert a.open_positions() == []
    assert a.cross_wallet == 0
