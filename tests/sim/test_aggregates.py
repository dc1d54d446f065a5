"""Incremental aggregates equal what they summarize, and the shortcuts built on them decide alike.

The engine keeps running totals so that order entry never walks a whole book or a whole order
history: per price level the resting and young quantities (engine/book.py), per account and
symbol the open orders' notional and count (engine/accounts.py). These tests recompute each total
from scratch after random order flow, and check the decisions made from them (the margin check,
order filters, the matchable walk) against the direct computations they replace.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.sim.engine.accounts import OPEN_STATUSES
from adapters.sim.engine.book import OrderBook, RestingOrder
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.orders import CLIENT_ID_PATTERN, decimals_of, validate_order
from harness.errors import Rejected
from harness.model import Instrument, OrderRequest, OrderType, Side, TimeInForce
from tests.sim.simkit import BTC, ETH, limit, make_engine, random_operation

D = Decimal
BUY, SELL = Side.BUY, Side.SELL


def _flow(seed: int, steps: int) -> tuple[Engine, list[str]]:
    engine = make_engine(seed=seed)
    ids = [engine.create_account(D(50_000)).account_id for _ in range(6)]
    rng = random.Random(seed)
    for _ in range(steps):
        random_operation(engine, rng, ids)
    return engine, ids


def test_level_totals_equal_the_sum_of_their_orders_after_random_flow() -> None:
    for seed in (1, 2, 3):
        engine, _ = _flow(seed, 400)
        now = engine.clock.now_ms()
        for book in engine.books.values():
            book.age(now - 60_000)
            for levels in (book._bids, book._asks):
                for level in levels.values():
                    assert level.qty == sum((o.remaining for o in level), D(0))
                    young = sum((o.remaining for o in level if o.young), D(0))
                    assert level.young_qty == young
                    for order in level:
                        owner = engine.accounts[order.account_id]
                        placed = owner.orders[order.order_id].time_ms
                        assert order.young == (not owner.exempt and placed > now - 60_000)
            assert book.best_bid() == (book.levels(BUY, 1)[0][0] if book._bids else None)
            assert book.best_ask() == (book.levels(SELL, 1)[0][0] if book._asks else None)


def test_open_order_aggregates_equal_the_open_orders_after_random_flow() -> None:
    for seed in (4, 5):
        engine, ids = _flow(seed, 400)
        for account_id in ids:
            acct = engine.accounts[account_id]
            open_orders = [r for r in acct.orders.values() if r.status in OPEN_STATUSES]
            assert acct.open_total == len(open_orders)
            for symbol in (BTC, ETH):
                mine = [r for r in open_orders if r.symbol == symbol]
                assert acct.open_counts.get(symbol, 0) == len(mine)
                notional = sum(
                    (
                        (r.orig_qty - r.executed_qty) * r.price
                        for r in mine
                        if r.price and not r.reduce_only
                    ),
                    D(0),
                )
                assert acct.open_notional.get(symbol, D(0)) == notional


@settings(max_examples=80, deadline=None)
@given(
    orders=st.lists(
        st.tuples(st.integers(1, 400), st.integers(1, 900), st.sampled_from((1, 3, 7, 20, 125))),
        max_size=30,
    ),
    wallet=st.integers(0, 200_000),
    nudge=st.integers(-3, 3),
)
def test_the_margin_check_from_aggregates_answers_as_the_full_computation(
    orders: list[tuple[int, int, int]], wallet: int, nudge: int
) -> None:
    engine = make_engine(seed=3, quiet=True)
    acct = engine.create_account(D(wallet))
    eth = acct.position(ETH, 7)  # a cross position: its PnL and margin count too
    eth.qty, eth.entry = D("0.37"), D("2999.13")
    for units, offset, leverage in orders:
        pos = acct.position(BTC, 20)
        pos.leverage = leverage  # leverages that do not divide evenly make the sums round
        price = D(59_000) - D(offset) / 10
        engine.new_record(
            acct,
            symbol=BTC,
            side=BUY,
            type_=OrderType.LIMIT,
            qty=D(units) / 1000,
            price=price,
            tif=TimeInForce.GTC,
        )
    available = engine.ledger.available_balance(acct)
    for amount in (available, available + D(nudge) / 10**20, available * 2, D(0), D(-1)):
        assert engine.ledger.available_at_least(acct, amount) == (available >= amount)


def _validate_reference(inst: Instrument, req: OrderRequest, reference: Decimal) -> object:
    """The order filters in their order, as a direct transcription of Binance's (the fast path
    of validate_order skips a precision test it can prove passes)."""
    qty = req.quantity
    if qty <= 0:
        return -4003
    if decimals_of(qty) > max(-int(inst.step_size.as_tuple().exponent), 0):
        return -1111
    if qty < inst.min_qty:
        return -4004
    if qty > (inst.market_max_qty if req.type is OrderType.MARKET else inst.max_qty):
        return -4005
    if not inst.on_step(qty):
        return -4023
    price = req.price
    if req.type is OrderType.LIMIT:
        assert price is not None
        if price <= 0:
            return -4001
        if decimals_of(price) > max(-int(inst.tick_size.as_tuple().exponent), 0):
            return -1111
        if price < inst.min_price:
            return -4013
        if price > inst.max_price:
            return -4002
        if not inst.on_tick(price):
            return -4014
    if not req.reduce_only and (price if price is not None else reference) * qty < (
        inst.min_notional
    ):
        return -4164
    cid = req.client_order_id
    if cid is not None and not CLIENT_ID_PATTERN.match(cid):
        return -1100
    return (price, qty)


@settings(max_examples=300, deadline=None)
@given(
    qty=st.decimals(min_value=D("-1"), max_value=D("2000"), places=5, allow_nan=False),
    price=st.decimals(min_value=D("-1"), max_value=D("5000000"), places=3, allow_nan=False),
    market=st.booleans(),
)
def test_order_filters_reject_with_the_same_code_in_the_same_order(
    qty: Decimal, price: Decimal, market: bool
) -> None:
    engine = make_engine()
    inst = engine.instruments[BTC]
    if market:
        req = OrderRequest(symbol=BTC, side=BUY, type=OrderType.MARKET, quantity=qty)
    else:
        req = OrderRequest(symbol=BTC, side=BUY, type=OrderType.LIMIT, quantity=qty, price=price)
    expected = _validate_reference(inst, req, D(60_000))
    try:
        got: object = validate_order(inst, req, reference_price=D(60_000))
    except Rejected as exc:
        got = exc.code
    assert got == expected


@pytest.mark.parametrize(
    ("qty", "price", "code"),
    [("1E+40", "60000", -4005), ("0.001", "1E+40", -4002), ("1E-40", "60000", -1111)],
)
def test_huge_values_are_rejected_by_range_not_by_an_arithmetic_error(
    qty: str, price: str, code: int
) -> None:
    engine = make_engine()
    acct = engine.create_account(D(1_000))
    with pytest.raises(Rejected) as info:
        engine.place_order(acct.account_id, limit(BTC, BUY, qty, price))
    assert info.value.code == code


def test_a_walk_sees_each_level_as_it_was_reached_while_fills_remove_orders() -> None:
    book = OrderBook(BTC)
    for i in range(60):
        book.add(RestingOrder(i, f"acct-{i % 3}", SELL, D(100 + i // 40), D(1)))
    seen = []
    for order in book.iter_matchable(BUY, None):
        seen.append(order.order_id)
        if order.order_id % 2 == 0:
            book.reduce(order, D(1))  # filled: leaves the level while it is being walked
    assert seen == list(range(60))
    assert [o.order_id for o in book.iter_matchable(BUY, None)] == list(range(1, 60, 2))


def test_the_old_depth_floor_never_exceeds_the_old_depth_it_bounds() -> None:
    rng = random.Random(8)
    book = OrderBook(BTC)
    live: list[RestingOrder] = []
    for step in range(3_000):
        if live and rng.random() < 0.45:
            order = live.pop(rng.randrange(len(live)))
            if rng.random() < 0.5:
                book.remove(order.order_id)
            else:
                part = min(order.remaining, D(rng.randint(1, 5)))
                book.reduce(order, part)
                if book.get(order.order_id) is not None:
                    live.append(order)
        else:
            order = RestingOrder(
                step, "a", BUY, D(1000 - rng.randint(0, 40)), D(rng.randint(1, 9)), step, True
            )
            book.add(order)
            live.append(order)
        book.age(step - 50)
        if step % 97 == 0:
            old = D(0)
            for price, level in book.band(BUY, D(960)):
                old += price * (level.qty - level.young_qty)
                if old >= 5_000:
                    book.set_old_floor(BUY, price, old)
                    break
        floor = book.old_floor(BUY, D(960))
        if floor is not None:
            truth = sum((p * (lv.qty - lv.young_qty) for p, lv in book.band(BUY, D(960))), D(0))
            assert floor <= truth
