"""Stream names and event payloads in Binance USDⓈ-M's websocket dialect (PROTOCOL.md "Streams").

Pure functions from engine events (:mod:`adapters.sim.engine.events`) to the JSON objects
Binance pushes, with the field names ccxt.pro ``binanceusdm`` reads (``ccxt/pro/binance.py``):
decimals as strings, times in virtual ms. :func:`parse_stream` checks a stream name a client
asks for; :class:`StreamName` says which events feed it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from adapters.sim.engine.events import (
    AccountUpdate,
    BookTicker,
    ConfigUpdate,
    DepthDiff,
    ForceOrder,
    MarginCall,
    MarkUpdate,
    OrderUpdate,
    Trade,
)
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.views import open_order_notional
from adapters.sim.server.wire import s
from harness.model import MarginMode, Side

__all__ = [
    "StreamName",
    "account_update",
    "agg_trade",
    "book_ticker",
    "config_update",
    "depth_update",
    "force_order",
    "listen_key_expired",
    "margin_call",
    "mark_price",
    "order_trade_update",
    "parse_stream",
    "partial_depth",
    "trade",
]

ZERO = Decimal(0)
_SYMBOL_STREAM = re.compile(
    r"^(?P<symbol>[a-z0-9]+)@(?P<kind>aggTrade|trade|bookTicker|forceOrder"
    r"|markPrice(?:@1s)?|depth(?P<levels>5|10|20)?(?:@(?:100|500)ms)?)$"
)
_ALL_STREAMS = frozenset({"!bookTicker", "!forceOrder@arr", "!markPrice@arr", "!markPrice@arr@1s"})


@dataclass(frozen=True, slots=True)
class StreamName:
    """A public stream: ``kind`` is the name without the symbol (``depth``, ``markPrice@1s``...).

    ``symbol`` is the exchange symbol (upper case) or None for an all-market stream.
    """

    name: str
    symbol: str | None
    kind: str
    levels: int = 0  # partial book depth: 5, 10 or 20


def parse_stream(name: str, symbols: set[str]) -> StreamName | None:
    """The stream ``name`` asks for, or None if it is not one this server publishes.

    Names are Binance's: the symbol in lower case, ``@depth``/``@depth@100ms``/``@depth@500ms``
    (diffs), ``@depth5``/``10``/``20`` (optionally ``@100ms``/``@500ms``: partial books),
    ``@aggTrade``, ``@trade``, ``@bookTicker``, ``@markPrice``/``@markPrice@1s``,
    ``@forceOrder``, and ``!bookTicker``, ``!markPrice@arr[@1s]``, ``!forceOrder@arr``.
    """
    if name in _ALL_STREAMS:
        return StreamName(name=name, symbol=None, kind=name[1:])
    match = _SYMBOL_STREAM.match(name)
    if match is None or match["symbol"].upper() not in symbols:
        return None
    kind = match["kind"]
    levels = int(match["levels"]) if match["levels"] else 0
    if kind.startswith("depth"):
        kind = f"depth{levels}" if levels else "depth"
    return StreamName(name=name, symbol=match["symbol"].upper(), kind=kind, levels=levels)


def _levels(levels: tuple[tuple[Decimal, Decimal], ...], factor: int) -> list[list[str]]:
    return [[s(price), s(qty * factor)] for price, qty in levels]


def depth_update(ev: DepthDiff, factor: int = 1) -> dict[str, Any]:
    """``<symbol>@depth`` (diff): ``U``/``u``/``pu`` chain over ``lastUpdateId`` of ``/depth``.

    ``factor`` is the ``depth-overstated`` defect's, applied as ``GET /fapi/v1/depth`` does.
    """
    return {
        "e": "depthUpdate",
        "E": ev.time_ms,
        "T": ev.time_ms,
        "s": ev.symbol,
        "U": ev.first_update_id,
        "u": ev.final_update_id,
        "pu": ev.prev_final_update_id,
        "b": _levels(ev.bids, factor),
        "a": _levels(ev.asks, factor),
    }


def partial_depth(ev: DepthDiff, engine: Engine, levels: int, factor: int = 1) -> dict[str, Any]:
    """``<symbol>@depth<levels>``: the top ``levels`` of the book as it stands after ``ev``."""
    book = engine.books[ev.symbol]
    return {
        **depth_update(ev, factor),
        "b": _levels(book.levels(Side.BUY, levels), factor),
        "a": _levels(book.levels(Side.SELL, levels), factor),
    }


def agg_trade(ev: Trade) -> dict[str, Any]:
    """``<symbol>@aggTrade``: every trade is its own aggregate (first = last = its id)."""
    return {
        "e": "aggTrade",
        "E": ev.time_ms,
        "a": ev.trade_id,
        "s": ev.symbol,
        "p": s(ev.price),
        "q": s(ev.qty),
        "f": ev.trade_id,
        "l": ev.trade_id,
        "T": ev.time_ms,
        "m": ev.buyer_is_maker,
    }


def trade(ev: Trade) -> dict[str, Any]:
    """``<symbol>@trade``."""
    return {
        "e": "trade",
        "E": ev.time_ms,
        "T": ev.time_ms,
        "s": ev.symbol,
        "t": ev.trade_id,
        "p": s(ev.price),
        "q": s(ev.qty),
        "X": "MARKET",
        "m": ev.buyer_is_maker,
    }


def book_ticker(ev: BookTicker, factor: int = 1) -> dict[str, Any]:
    """``<symbol>@bookTicker`` / ``!bookTicker``; ``u`` is the book's update id."""
    return {
        "e": "bookTicker",
        "u": ev.update_id,
        "s": ev.symbol,
        "b": s(ev.bid),
        "B": s(ev.bid_qty * factor),
        "a": s(ev.ask),
        "A": s(ev.ask_qty * factor),
        "T": ev.time_ms,
        "E": ev.time_ms,
    }


def mark_price(ev: MarkUpdate) -> dict[str, Any]:
    """``<symbol>@markPrice[@1s]``: ``p`` mark, ``i`` index, ``P`` estimated settle price,
    ``r`` funding rate, ``T`` next funding time (as ``premiumIndex``)."""
    return {
        "e": "markPriceUpdate",
        "E": ev.time_ms,
        "s": ev.symbol,
        "p": s(ev.mark),
        "i": s(ev.index),
        "P": s(ev.estimated_settle),
        "r": s(ev.funding_rate),
        "T": ev.next_funding_ms,
    }


def force_order(ev: ForceOrder) -> dict[str, Any]:
    """``<symbol>@forceOrder`` / ``!forceOrder@arr`` (no account: the public view)."""
    return {
        "e": "forceOrder",
        "E": ev.time_ms,
        "o": {
            "s": ev.symbol,
            "S": ev.side.value,
            "o": "LIMIT" if ev.price else "MARKET",
            "f": "IOC",
            "q": s(ev.quantity),
            "p": s(ev.price),
            "ap": s(ev.avg_price if ev.avg_price is not None else ZERO),
            "X": ev.status,
            "l": s(ev.filled_qty),
            "z": s(ev.filled_qty),
            "T": ev.time_ms,
        },
    }


def order_trade_update(ev: OrderUpdate, engine: Engine) -> dict[str, Any]:
    """``ORDER_TRADE_UPDATE``; a liquidation order has type ``LIQUIDATION`` (as Binance's)."""
    acct = engine.accounts[ev.account_id]
    kind = "LIQUIDATION" if ev.liquidation else ev.type
    order: dict[str, Any] = {
        "s": ev.symbol,
        "c": ev.client_order_id,
        "S": ev.side.value,
        "o": kind,
        "f": ev.time_in_force or "GTC",
        "q": s(ev.orig_qty),
        "p": s(ev.price),
        "ap": s(ev.avg_price if ev.avg_price is not None else ZERO),
        "sp": "0",
        "x": ev.execution_type.value,
        "X": ev.status,
        "i": ev.order_id,
        "l": s(ev.last_qty),
        "z": s(ev.cum_qty),
        "L": s(ev.last_price),
        "T": ev.time_ms,
        "t": ev.trade_id or 0,
        "b": s(open_order_notional(acct, ev.symbol, Side.BUY)),
        "a": s(open_order_notional(acct, ev.symbol, Side.SELL)),
        "m": ev.maker,
        "R": ev.reduce_only,
        "wt": "CONTRACT_PRICE",
        "ot": kind,
        "ps": "BOTH",
        "cp": False,
        "rp": s(ev.realized_pnl),
        "pP": False,
        "si": 0,
        "ss": 0,
        "V": "EXPIRE_MAKER",
        "pm": "NONE",
        "gtd": 0,
    }
    if ev.commission:  # Binance: "will not push if no commission"
        order["N"] = "USDT"
        order["n"] = s(ev.commission)
    return {"e": "ORDER_TRADE_UPDATE", "E": ev.time_ms, "T": ev.time_ms, "o": order}


def account_update(ev: AccountUpdate) -> dict[str, Any]:
    """``ACCOUNT_UPDATE``: ``m`` reason, ``B`` balances, ``P`` the positions the change touched."""
    return {
        "e": "ACCOUNT_UPDATE",
        "E": ev.time_ms,
        "T": ev.time_ms,
        "a": {
            "m": ev.reason.value,
            "B": [
                {
                    "a": b.asset,
                    "wb": s(b.wallet),
                    "cw": s(b.cross_wallet),
                    "bc": s(b.balance_change),
                }
                for b in ev.balances
            ],
            "P": [
                {
                    "s": p.symbol,
                    "pa": s(p.qty),
                    "ep": s(p.entry),
                    "bep": s(p.entry),
                    "up": s(p.upnl),
                    "mt": "isolated" if p.margin_mode is MarginMode.ISOLATED else "cross",
                    "iw": s(p.isolated_wallet),
                    "ps": "BOTH",
                    "ma": "USDT",
                }
                for p in ev.positions
            ],
        },
    }


def margin_call(ev: MarginCall) -> dict[str, Any]:
    """``MARGIN_CALL``: ``cw`` cross wallet and the positions at risk."""
    return {
        "e": "MARGIN_CALL",
        "E": ev.time_ms,
        "cw": s(ev.cross_wallet),
        "p": [
            {
                "s": p.symbol,
                "ps": "BOTH",
                "pa": s(p.qty if p.side is Side.BUY else -p.qty),
                "mt": "ISOLATED" if p.margin_mode is MarginMode.ISOLATED else "CROSSED",
                "iw": s(p.isolated_wallet),
                "mp": s(p.mark),
                "up": s(p.upnl),
                "mm": s(p.maint_margin),
            }
            for p in ev.positions
        ],
    }


def config_update(ev: ConfigUpdate) -> dict[str, Any]:
    """``ACCOUNT_CONFIG_UPDATE`` ``ac: {s, l}``; a margin-mode change adds ``marginType``."""
    ac: dict[str, Any] = {"s": ev.symbol, "l": ev.leverage}
    if ev.margin_mode is not None:
        ac["marginType"] = "ISOLATED" if ev.margin_mode is MarginMode.ISOLATED else "CROSSED"
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": ev.time_ms, "T": ev.time_ms, "ac": ac}


def listen_key_expired(listen_key: str, time_ms: int) -> dict[str, Any]:
    """``listenKeyExpired``: no more user data on this key."""
    return {"e": "listenKeyExpired", "E": time_ms, "listenKey": listen_key}
