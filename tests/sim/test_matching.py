"""Matching, fills, fees, PnL and isolated margin (adapters/sim/engine/exchange.py, ledger.py).

The market maker's quotes are pulled so that each test builds the exact book it needs.
Source: perp-mechanics.md §5 (fees), §11 (rounding).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from adapters.sim.engine.accounts import AccountState
from adapters.sim.engine.exchange import Engine
from harness.model import IncomeType, MarginMode, Side, TimeInForce
from harness.oracle import round_to_unit, trading_fee
from tests.sim.simkit import BTC, ETH, clear_quotes, limit, make_engine, market

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
UNIT = D("0.00000001")
MAKER, TAKER = D("0.0002"), D("0.0005")


def _venue(*symbols: str) -> tuple[Engine, AccountState, AccountState, AccountState]:
    """An engine with empty books for ``symbols``, a trader and two makers."""
    engine = make_engine()
    for symbol in symbols or (BTC,):
        clear_quotes(engine, symbol)
    trader, m1, m2 = (engine.create_account(D(100_000)) for _ in range(3))
    return engine, trader, m1, m2


def _rest(engine: Engine, acct: AccountState, side: Side, qty: str, price: str) -> int:
    rec = engine.place_order(acct.account_id, limit(BTC, side, qty, price))
    assert rec.status == "NEW"
    return rec.order_id


def _asks(engine: Engine, m1: AccountState, m2: AccountState) -> list[int]:
    return [
        _rest(engine, m1, SELL, "0.1", "60000"),
        _rest(engine, m2, SELL, "0.1", "60000"),
        _rest(engine, m1, SELL, "0.2", "60010"),
        _rest(engine, m2, SELL, "0.5", "60020"),
    ]


def _fills(acct: AccountState) -> list[tuple[Decimal, Decimal]]:
    return [(f.price, f.qty) for f in acct.fills]


def test_marketable_gtc_limit_walks_levels_in_priority_and_rests_the_remainder() -> None:
    engine, trader, m1, m2 = _venue()
    ids = _asks(engine, m1, m2)
    rec = engine.place_order(trader.account_id, limit(BTC, BUY, "0.5", "60010"))
    assert [f.order_id for f in m1.fills + m2.fills] == [ids[0], ids[2], ids[1]]
    assert [f.trade_id for f in m1.fills] == [1, 3]  # m1's 60000 ask traded first
    assert _fills(trader) == [(D(60000), D("0.1")), (D(60000), D("0.1")), (D(60010), D("0.2"))]
    assert (rec.status, rec.executed_qty, rec.cum_quote) == ("PARTIALLY_FILLED", D("0.4"), D(24002))
    book = engine.books[BTC]
    assert book.levels(BUY, 5) == ((D(60010), D("0.1")),)
    assert book.levels(SELL, 5) == ((D(60020), D("0.5")),)
    assert book.get(rec.order_id) is not None
    pos = trader.positions[BTC]
    assert (pos.qty, pos.entry) == (D("0.4"), D(60005))  # average entry over the walk
    assert [m1.orders[i].status for i in ids[::2]] == ["FILLED", "FILLED"]
    assert all(f.maker for f in m1.fills + m2.fills)
    assert not any(f.maker for f in trader.fills)


def test_ioc_limit_walks_levels_and_expires_the_remainder() -> None:
    engine, trader, m1, m2 = _venue()
    _asks(engine, m1, m2)
    rec = engine.place_order(trader.account_id, limit(BTC, BUY, "0.5", "60010", TimeInForce.IOC))
    assert (rec.status, rec.executed_qty) == ("EXPIRED", D("0.4"))
    assert engine.books[BTC].levels(BUY, 5) == ()
    assert engine.books[BTC].get(rec.order_id) is None


def test_market_order_takes_all_it_can_and_expires_the_rest() -> None:
    engine, trader, m1, m2 = _venue()
    _asks(engine, m1, m2)
    rec = engine.place_order(trader.account_id, market(BTC, BUY, "1.0"))
    assert (rec.status, rec.executed_qty) == ("EXPIRED", D("0.9"))
    assert engine.books[BTC].levels(SELL, 5) == ()
    assert engine.books[BTC].levels(BUY, 5) == ()
    assert engine.prices[BTC].last_price == D(60020)


def test_fully_filled_order_is_filled_and_never_rests() -> None:
    engine, trader, m1, m2 = _venue()
    _asks(engine, m1, m2)
    rec = engine.place_order(trader.account_id, limit(BTC, BUY, "0.2", "60100"))
    assert (rec.status, rec.executed_qty) == ("FILLED", D("0.2"))
    assert engine.books[BTC].levels(BUY, 5) == ()


def test_self_trade_expires_the_resting_order_and_matching_continues() -> None:
    engine, trader, m1, _ = _venue()
    own = _rest(engine, trader, SELL, "0.1", "60000")
    other = _rest(engine, m1, SELL, "0.1", "60000")
    rec = engine.place_order(trader.account_id, limit(BTC, BUY, "0.1", "60000"))
    assert trader.orders[own].status == "EXPIRED"
    assert engine.books[BTC].get(own) is None
    assert m1.orders[other].status == "FILLED"
    assert rec.status == "FILLED"
    assert [f.order_id for f in trader.fills] == [rec.order_id]  # never a fill with itself


def test_commission_is_qty_times_price_times_rate_rounded_half_up() -> None:
    # 0.009 x 3000.01 = 27.00009: taker 0.013500045 and maker 0.005400018 before rounding.
    engine, trader, m1, _ = _venue(ETH)
    engine.place_order(m1.account_id, limit(ETH, SELL, "0.009", "3000.01"))
    engine.place_order(trader.account_id, market(ETH, BUY, "0.009"))
    (taker,), (maker,) = trader.fills, m1.fills
    assert taker.commission == D("0.01350005")  # half-even would give 0.01350004
    assert maker.commission == D("0.00540002")
    for fill, rate in ((taker, TAKER), (maker, MAKER)):
        expected = round_to_unit(trading_fee(fill.qty, fill.price, rate), UNIT, ROUND_HALF_UP)
        assert fill.commission == expected


def test_commission_is_debited_and_recorded_as_negative_income() -> None:
    engine, trader, m1, _ = _venue()
    _rest(engine, m1, SELL, "0.1", "60000")
    engine.place_order(trader.account_id, market(BTC, BUY, "0.1"))
    (fill,) = trader.fills
    assert fill.commission == D(3)
    assert trader.cross_wallet == D(100_000) - D(3)
    assert m1.cross_wallet == D(100_000) - D("1.2")
    (income,) = [r for r in trader.income if r.income_type is IncomeType.COMMISSION]
    assert (income.amount, income.symbol, income.info) == (D(-3), BTC, str(fill.trade_id))


def test_deposit_is_recorded_as_transfer_income() -> None:
    engine = make_engine()
    acct = engine.create_account(D("1234.5"))
    (income,) = acct.income
    assert (income.income_type, income.amount, income.info) == (
        IncomeType.TRANSFER,
        D("1234.5"),
        "deposit",
    )
    assert engine.create_account(D(0)).income == []


def test_realized_pnl_on_reduce_and_on_flip_uses_the_average_entry() -> None:
    engine, trader, m1, m2 = _venue()
    ids = _asks(engine, m1, m2)
    engine.place_order(trader.account_id, limit(BTC, BUY, "0.4", "60010", TimeInForce.IOC))
    engine.cancel_order(m2.account_id, BTC, ids[3], None)  # clear the book: 0.4 @ 60005 held
    _rest(engine, m1, BUY, "0.1", "60100")
    engine.place_order(trader.account_id, market(BTC, SELL, "0.1"))
    assert trader.fills[-1].realized_pnl == D("9.5")  # 0.1 x (60100 - 60005)
    _rest(engine, m2, BUY, "0.5", "60050")
    engine.place_order(trader.account_id, market(BTC, SELL, "0.5"))  # closes 0.3, opens 0.2
    assert trader.fills[-1].realized_pnl == D("13.5")  # 0.3 x (60050 - 60005), flip part none
    pos = trader.positions[BTC]
    assert (pos.qty, pos.entry) == (D("-0.2"), D(60050))
    pnl = [r.amount for r in trader.income if r.income_type is IncomeType.REALIZED_PNL]
    assert pnl == [D("9.5"), D("13.5")]
    commissions = sum((f.commission for f in trader.fills), D(0))
    assert trader.cross_wallet == D(100_000) + D(23) - commissions


def test_realized_pnl_is_rounded_half_even_to_the_unit() -> None:
    engine, trader, m1, m2 = _venue()
    _rest(engine, m1, SELL, "0.1", "60000")
    _rest(engine, m2, SELL, "0.2", "60000.1")
    engine.place_order(trader.account_id, market(BTC, BUY, "0.3"))
    entry = trader.positions[BTC].entry
    assert entry == (D(6000) + D("12000.02")) / D("0.3")  # 60000.0666...
    _rest(engine, m1, BUY, "0.1", "60001")
    engine.place_order(trader.account_id, market(BTC, SELL, "0.1"))
    exact = D("0.1") * (D(60001) - entry)
    assert trader.fills[-1].realized_pnl == exact.quantize(UNIT, rounding=ROUND_HALF_EVEN)
    assert trader.fills[-1].realized_pnl == D("0.09333333")


def test_isolated_margin_moves_out_on_open_and_back_on_close() -> None:
    engine, trader, m1, m2 = _venue()
    aid = trader.account_id
    engine.set_margin_mode(aid, BTC, MarginMode.ISOLATED)
    engine.set_leverage(aid, BTC, 3)
    _rest(engine, m1, SELL, "0.007", "60000.1")
    engine.place_order(aid, market(BTC, BUY, "0.007"))
    pos = trader.positions[BTC]
    margin = (D("0.007") * D("60000.1") / 3).quantize(UNIT, rounding=ROUND_CEILING)
    assert margin == D("140.00023334")  # 140.000233... rounded up, never down
    assert pos.isolated_wallet == margin
    fee_open = trader.fills[-1].commission
    assert trader.cross_wallet == D(100_000) - margin - fee_open
    assert trader.wallet_total() == D(100_000) - fee_open

    _rest(engine, m2, BUY, "0.003", "60100.1")
    engine.place_order(aid, market(BTC, SELL, "0.003"))  # realizes +0.3 into the cross wallet
    release = (margin * 3 / 7).quantize(UNIT, rounding=ROUND_DOWN)
    assert pos.isolated_wallet == margin - release  # the remainder keeps exactly its share
    _rest(engine, m2, BUY, "0.004", "59900.1")
    engine.place_order(aid, market(BTC, SELL, "0.004"))  # realizes -0.4, releases the rest
    assert (pos.qty, pos.isolated_wallet) == (D(0), D(0))
    fees = sum((f.commission for f in trader.fills), D(0))
    assert trader.cross_wallet == D(100_000) - fees + D("0.3") - D("0.4")


def test_isolated_flip_locks_margin_for_the_new_side_only() -> None:
    engine, trader, m1, m2 = _venue()
    aid = trader.account_id
    engine.set_margin_mode(aid, BTC, MarginMode.ISOLATED)
    engine.set_leverage(aid, BTC, 7)
    _rest(engine, m1, SELL, "0.004", "60000")
    engine.place_order(aid, market(BTC, BUY, "0.004"))
    _rest(engine, m2, BUY, "0.006", "60000.3")
    engine.place_order(aid, market(BTC, SELL, "0.006"))
    pos = trader.positions[BTC]
    assert (pos.qty, pos.entry) == (D("-0.002"), D("60000.3"))
    assert pos.isolated_wallet == (D("0.002") * D("60000.3") / 7).quantize(
        UNIT, rounding=ROUND_CEILING
    )
    fees = sum((f.commission for f in trader.fills), D(0))
    realized = D("0.004") * D("0.3")
    assert trader.wallet_total() == D(100_000) - fees + realized
