"""Small builders shared by the simulator engine tests (not a test module)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest

from adapters.sim.config import SimConfig, default_instruments
from adapters.sim.engine.accounts import AccountState
from adapters.sim.engine.exchange import INSURANCE, MARKET_MAKER, Engine
from harness.clock import VirtualClock
from harness.errors import Rejected
from harness.model import (
    ClientOrderId,
    MarginMode,
    OrderRequest,
    OrderType,
    PricePath,
    Side,
    TimeInForce,
)

__all__ = [
    "BTC",
    "ETH",
    "INSURANCE",
    "MARKET_MAKER",
    "clear_quotes",
    "footprint",
    "limit",
    "make_engine",
    "market",
    "open_position",
    "quiet_instruments",
    "random_operation",
    "rejects",
]

D = Decimal
BTC = "BTCUSDT"
ETH = "ETHUSDT"


def quiet_instruments(**instrument_changes: Any) -> dict[str, Any]:
    """Default instruments with noiseless feeds; ``instrument_changes`` apply to BTCUSDT."""
    out = {}
    for symbol, si in default_instruments().items():
        inst = si.instrument
        if symbol == BTC and instrument_changes:
            inst = dataclasses.replace(inst, **instrument_changes)
        out[symbol] = dataclasses.replace(si, instrument=inst, feed_noise_bps=D(0))
    return out


def make_engine(
    seed: int = 1, defects: Iterable[str] = (), *, quiet: bool = False, **config: Any
) -> Engine:
    """An engine on a fresh virtual clock (``quiet``: feeds without noise)."""
    if quiet and "instruments" not in config:
        config["instruments"] = quiet_instruments()
    return Engine(SimConfig(seed=seed, defects=frozenset(defects), **config), VirtualClock())


def market(
    symbol: str,
    side: Side,
    qty: str,
    *,
    reduce_only: bool = False,
    cid: str | None = None,
) -> OrderRequest:
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=OrderType.MARKET,
        quantity=D(qty),
        reduce_only=reduce_only,
        client_order_id=None if cid is None else ClientOrderId(cid),
    )


def limit(
    symbol: str,
    side: Side,
    qty: str,
    price: str | Decimal,
    tif: TimeInForce = TimeInForce.GTC,
    *,
    reduce_only: bool = False,
    cid: str | None = None,
) -> OrderRequest:
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=OrderType.LIMIT,
        quantity=D(qty),
        price=D(price),
        time_in_force=tif,
        reduce_only=reduce_only,
        client_order_id=None if cid is None else ClientOrderId(cid),
    )


def clear_quotes(engine: Engine, symbol: str) -> None:
    """Pull the market maker's quotes (it requotes only when the index moves or it trades)."""
    book = engine.books[symbol]
    for order in book.orders_of(MARKET_MAKER):
        book.remove(order.order_id)


def open_position(
    engine: Engine,
    acct: AccountState,
    symbol: str,
    side: Side,
    qty: str,
    *,
    mode: MarginMode = MarginMode.CROSS,
    leverage: int = 20,
) -> None:
    """Set mode and leverage, then take ``qty`` from the book with a market order."""
    if mode is not MarginMode.CROSS:
        engine.set_margin_mode(acct.account_id, symbol, mode)
    engine.set_leverage(acct.account_id, symbol, leverage)
    rec = engine.place_order(acct.account_id, market(symbol, side, qty))
    assert rec.status == "FILLED", rec


def footprint(engine: Engine, acct: AccountState) -> tuple[object, ...]:
    """Everything a rejected request must leave unchanged."""
    books = tuple(
        (b.update_id, len(b), b.levels(Side.BUY, 1000), b.levels(Side.SELL, 1000))
        for b in engine.books.values()
    )
    positions = tuple(
        (p.symbol, p.qty, p.entry, p.isolated_wallet, p.leverage, p.margin_mode)
        for p in acct.open_positions()
    )
    return (
        engine._order_seq,
        tuple(acct.orders),
        dict(acct.client_ids),
        len(acct.fills),
        len(acct.income),
        acct.cross_wallet,
        positions,
        dict(acct.leverages),
        dict(acct.margin_modes),
        books,
    )


def rejects(engine: Engine, acct: AccountState, req: OrderRequest, code: int) -> Rejected:
    """Assert ``req`` is rejected with ``code`` and leaves no trace; returns the error."""
    before = footprint(engine, acct)
    with pytest.raises(Rejected) as info:
        engine.place_order(acct.account_id, req)
    assert info.value.code == code, info.value
    assert footprint(engine, acct) == before
    return info.value


def random_operation(engine: Engine, rng: random.Random, accounts: list[str]) -> None:
    """One engine operation of random order flow: orders, cancels, time, price moves, depth."""
    symbol = rng.choice((BTC, ETH))
    inst = engine.instruments[symbol]
    mid = engine.prices[symbol].index
    acct = rng.choice(accounts)
    qty = str(inst.step_size * rng.randint(1, 400) * (10 if symbol == ETH else 1))
    kind = rng.random()
    try:
        if kind < 0.45:
            offset = D(rng.randint(-40, 40)) / D(10_000)
            price = (mid * (1 + offset)).quantize(inst.tick_size)
            tif = rng.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.GTX))
            engine.place_order(acct, limit(symbol, rng.choice(list(Side)), qty, price, tif))
        elif kind < 0.55:
            engine.place_order(acct, market(symbol, rng.choice(list(Side)), qty))
        elif kind < 0.75:
            open_ids = [
                r.order_id
                for r in engine.accounts[acct].orders.values()
                if r.status in ("NEW", "PARTIALLY_FILLED") and r.symbol == symbol
            ]
            if open_ids:
                engine.cancel_order(acct, symbol, rng.choice(open_ids), None)
        elif kind < 0.78:
            engine.cancel_all(acct)
        elif kind < 0.95:
            engine.clock.advance(rng.randint(0, 2_500))
        elif kind < 0.97:
            jump = D(rng.randint(-30, 30)) / D(1000)
            engine.set_price_path(
                symbol, PricePath(points=((0, mid), (3_000, mid * (1 + jump))), linear=True)
            )
        else:
            engine.market_maker.set_profile(symbol, rng.choice(("thin", "normal")))
            engine.settle()
    except Rejected:
        pass
