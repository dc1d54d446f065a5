"""Binance USDⓈ-M stream frames as :mod:`harness.streams` events: one converter per event type
(``markPriceUpdate``, ``aggTrade``, ``depthUpdate``, ``forceOrder``, ``ORDER_TRADE_UPDATE``,
``ACCOUNT_UPDATE``, ``MARGIN_CALL``, ``ACCOUNT_CONFIG_UPDATE``), :func:`convert` to dispatch a
payload, and :func:`stream_names` for a combined stream's names.

Pure decoding with exact decimals, no I/O; the WebSocket that reads the frames is
:class:`~adapters.ccxt_venue.streams.BinanceEventStream`, and both functions stay importable
from :mod:`adapters.ccxt_venue.streams`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from adapters.ccxt_venue._wire import dec
from adapters.ccxt_venue.binance_wire import margin_mode
from harness.errors import VenueError
from harness.model import Side
from harness.streams import (
    AccountEvent,
    ConfigEvent,
    DepthEvent,
    LiquidationOrderEvent,
    MarginCallEvent,
    MarkEvent,
    OrderEvent,
    PositionSnapshot,
    StreamEvent,
    TradeEvent,
)

__all__ = [
    "account_event",
    "config_event",
    "convert",
    "depth_event",
    "liquidation_order_event",
    "margin_call_event",
    "mark_event",
    "order_event",
    "stream_names",
    "trade_event",
]


def _side(value: object) -> Side:
    return Side(str(value))


def _price_or_none(value: object, what: str) -> Decimal | None:
    """An average price: Binance sends ``"0"`` while nothing has filled."""
    price = dec(value, what)
    return None if price == 0 else price


def _levels(rows: Sequence[Sequence[object]]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((dec(price, "price"), dec(qty, "qty")) for price, qty in rows)


def _time(d: Mapping[str, Any]) -> int:
    """The venue's time of the change: ``T`` (transaction time) when sent, else ``E``."""
    return int(d["T"] if "T" in d else d["E"])


def mark_event(d: Mapping[str, Any]) -> MarkEvent:
    """``markPriceUpdate`` (``T`` there is the next funding time)."""
    return MarkEvent(
        symbol=str(d["s"]),
        mark=dec(d["p"], "p"),
        index=dec(d["i"], "i"),
        estimated_settle=dec(d["P"], "P"),
        funding_rate=dec(d["r"], "r"),
        next_funding_ms=int(d["T"]),
        time_ms=int(d["E"]),
    )


def trade_event(d: Mapping[str, Any]) -> TradeEvent:
    """``aggTrade``: the aggregate's id ``a``."""
    return TradeEvent(
        symbol=str(d["s"]),
        trade_id=int(d["a"]),
        price=dec(d["p"], "p"),
        qty=dec(d["q"], "q"),
        buyer_is_maker=bool(d["m"]),
        time_ms=_time(d),
    )


def depth_event(d: Mapping[str, Any]) -> DepthEvent:
    """``depthUpdate``: ``U``/``u``/``pu`` and the changed levels, passed through as sent."""
    return DepthEvent(
        symbol=str(d["s"]),
        first_update_id=int(d["U"]),
        final_update_id=int(d["u"]),
        prev_final_update_id=int(d["pu"]),
        bids=_levels(d["b"]),
        asks=_levels(d["a"]),
        time_ms=_time(d),
    )


def liquidation_order_event(d: Mapping[str, Any]) -> LiquidationOrderEvent:
    """``forceOrder``: the order in ``o``; ``z`` is the quantity filled so far."""
    o = d["o"]
    return LiquidationOrderEvent(
        symbol=str(o["s"]),
        side=_side(o["S"]),
        quantity=dec(o["q"], "q"),
        price=dec(o["p"], "p"),
        avg_price=_price_or_none(o["ap"], "ap"),
        filled_qty=dec(o["z"], "z"),
        status=str(o["X"]),
        time_ms=_time(o),
    )


def order_event(d: Mapping[str, Any]) -> OrderEvent:
    """``ORDER_TRADE_UPDATE``.

    A liquidation order has type ``LIQUIDATION`` and client id ``autoclose-…``; an
    auto-deleveraging order has client id ``adl_autoclose`` (Binance) or ``adl-…`` (the
    simulator). ``n`` (commission) is absent when there is none; ``t`` is 0 (or -1) without a
    fill.
    """
    o = d["o"]
    cid = str(o.get("c", ""))
    adl = cid.startswith(("adl_", "adl-"))
    liquidation = not adl and (o.get("o") == "LIQUIDATION" or cid.startswith("autoclose-"))
    trade_id = int(o.get("t") or 0)
    return OrderEvent(
        symbol=str(o["s"]),
        order_id=str(o["i"]),
        client_order_id=cid,
        side=_side(o["S"]),
        status=str(o["X"]),
        execution_type=str(o["x"]),
        last_qty=dec(o["l"], "l"),
        last_price=dec(o["L"], "L"),
        cum_qty=dec(o["z"], "z"),
        avg_price=_price_or_none(o.get("ap", "0"), "ap"),
        commission=dec(o.get("n", "0"), "n"),
        realized_pnl=dec(o.get("rp", "0"), "rp"),
        maker=bool(o.get("m", False)),
        trade_id=trade_id if trade_id > 0 else None,
        liquidation=liquidation,
        adl=adl,
        time_ms=_time(d),
    )


def account_event(d: Mapping[str, Any], asset: str = "USDT") -> AccountEvent | None:
    """``ACCOUNT_UPDATE``: the reason ``m`` as sent; the balances of ``asset``'s row of ``B``
    (``None`` when the update does not carry that asset: it says nothing about this wallet)."""
    a = d["a"]
    row = next((b for b in a.get("B", ()) if b.get("a") == asset), None)
    if row is None:
        return None
    positions = tuple(
        PositionSnapshot(
            symbol=str(p["s"]),
            quantity=dec(p["pa"], "pa"),
            entry_price=dec(p["ep"], "ep"),
            unrealized_pnl=dec(p["up"], "up"),
            margin_mode=margin_mode(p.get("mt", "cross")),
            isolated_wallet=dec(p.get("iw", "0"), "iw"),
        )
        for p in a.get("P", ())
    )
    return AccountEvent(
        reason=str(a["m"]),
        wallet_balance=dec(row["wb"], "wb"),
        cross_wallet=dec(row["cw"], "cw"),
        balance_change=dec(row.get("bc", "0"), "bc"),
        positions=positions,
        time_ms=_time(d),
    )


def margin_call_event(d: Mapping[str, Any]) -> MarginCallEvent:
    """``MARGIN_CALL``: the cross wallet and the symbols of the positions at risk."""
    return MarginCallEvent(
        cross_wallet=dec(d["cw"], "cw"),
        symbols=tuple(str(p["s"]) for p in d.get("p", ())),
        time_ms=int(d["E"]),
    )


def config_event(d: Mapping[str, Any]) -> ConfigEvent | None:
    """``ACCOUNT_CONFIG_UPDATE`` ``ac`` (a symbol's leverage; the simulator adds
    ``marginType``); ``None`` for ``ai`` (multi-assets mode, no symbol)."""
    ac = d.get("ac")
    if ac is None:
        return None
    mode = ac.get("marginType")
    return ConfigEvent(
        symbol=str(ac["s"]),
        leverage=None if ac.get("l") is None else int(ac["l"]),
        margin_mode=None if mode is None else margin_mode(mode),
        time_ms=_time(d),
    )


_CONVERTERS: Mapping[str, Callable[[Mapping[str, Any]], StreamEvent | None]] = {
    "markPriceUpdate": mark_event,
    "aggTrade": trade_event,
    "depthUpdate": depth_event,
    "forceOrder": liquidation_order_event,
    "ORDER_TRADE_UPDATE": order_event,
    "MARGIN_CALL": margin_call_event,
    "ACCOUNT_CONFIG_UPDATE": config_event,
}


def convert(payload: Mapping[str, Any], asset: str = "USDT") -> StreamEvent | None:
    """One Binance event payload (``data`` of a combined-stream frame) as a harness event.

    ``None`` for what the harness has no type for (``listenKeyExpired``, ``TRADE_LITE``,
    ``bookTicker``...) and for account updates without ``asset``.

    Raises:
        VenueError: a field the event needs is missing or not a number (names it).
    """
    kind = str(payload.get("e", ""))
    try:
        if kind == "ACCOUNT_UPDATE":
            return account_event(payload, asset)
        converter = _CONVERTERS.get(kind)
        return None if converter is None else converter(payload)
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"the venue sent a {kind} event without a valid {exc}: {dict(payload)}"
        raise VenueError(msg) from None


def stream_names(symbols: Sequence[str], *, depth: bool = False) -> list[str]:
    """Binance's stream names for ``symbols`` (lower-cased exchange ids)."""
    kinds = ["markPrice@1s", "aggTrade", "forceOrder"] + (["depth@100ms"] if depth else [])
    return [f"{symbol.lower()}@{kind}" for symbol in symbols for kind in kinds]
