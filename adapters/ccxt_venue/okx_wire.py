"""OKX v5 wire bodies to harness domain types, contract sizes, and OKX's error dialect."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from adapters.ccxt_venue._wire import call, dec, dec_or_none, retry_after
from harness.errors import AuthError, RateLimited, Rejected, Unavailable, VenueError
from harness.model import (
    ClientOrderId,
    Fill,
    MarginMode,
    Order,
    OrderId,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)

__all__ = [
    "AUTH_CODES",
    "BUSY_CODES",
    "DEFAULT_SYMBOLS",
    "RATE_CODES",
    "SWAP",
    "Contracts",
    "data_of",
    "first_of",
    "harness_symbol",
    "inst_id",
    "okx_dialect",
    "order",
]

ZERO = Decimal(0)
SWAP = {"instType": "SWAP"}
AUTH_CODES = frozenset({50100, 50101, 50102, 50103, 50104, 50105, 50106, 50107, 50111, 50112})
AUTH_CODES = AUTH_CODES | {50113, 50114}
BUSY_CODES = frozenset({50001, 50004, 50013, 50026})  # unavailable / timeout / busy / system
RATE_CODES = frozenset({50011, 50061})
DEFAULT_SYMBOLS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP")
OKX_CLAMP = Decimal("0.0005")  # documented interest clamp (±0.05 %), not published per contract
_ORD_TYPE = {
    "limit": (OrderType.LIMIT, TimeInForce.GTC),
    "post_only": (OrderType.LIMIT, TimeInForce.GTX),
    "fok": (OrderType.LIMIT, TimeInForce.FOK),
    "ioc": (OrderType.LIMIT, TimeInForce.IOC),
}
ORD_TYPE_OUT = {tif: name for name, (_, tif) in _ORD_TYPE.items()}
_STATE = {
    "live": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "mmp_canceled": OrderStatus.CANCELED,
}


def okx_dialect(
    status: int, headers: Mapping[str, str], body: str, response: Any
) -> VenueError | None:
    """OKX's verdicts: ``code`` "0" is success; per-order ``sCode`` wins over the envelope's
    "1"/"2"; 50011/50061 and HTTP 429 are rate limits; 501xx are authentication; 5xx and
    50001/50004/50013/50026 are :class:`Unavailable`; anything else is ``Rejected``."""
    raw = response.get("code") if isinstance(response, Mapping) else None
    code = int(raw) if raw not in (None, "") else None
    msg = str(response.get("msg", "")) if isinstance(response, Mapping) else ""
    if code in (1, 2) and isinstance(response, Mapping):
        for item in response.get("data") or ():
            if str(item.get("sCode", "0")) != "0":
                code, msg = int(item["sCode"]), str(item.get("sMsg", ""))
                break
    text = f"{code}: {msg}" if code is not None else f"HTTP {status}: {body[:200]}"
    if status == 429 or code in RATE_CODES:
        return RateLimited(text, retry_after(headers), code)
    if status >= 500 or code in BUSY_CODES:
        return Unavailable(text)
    if code is not None and code != 0:
        if code in AUTH_CODES or status == 401:
            return AuthError(text)
        return Rejected(code, msg)
    if status == 401:
        return AuthError(text)
    if status >= 400:
        return Unavailable(text)
    return None


def inst_id(symbol: str) -> str:
    """The OKX instrument id of a harness symbol: ``BTCUSDT`` -> ``BTC-USDT-SWAP``.

    The suites name instruments as Binance and Bybit do (``BTCUSDT``); this adapter trades OKX's
    USDT-margined linear swaps, whose ids are ``<base>-USDT-SWAP``. An OKX id (it has a ``-``)
    passes through unchanged, and so does anything else: OKX refuses an id it does not list
    (51001, "Instrument ID does not exist").
    """
    if "-" not in symbol and symbol.endswith("USDT") and len(symbol) > len("USDT"):
        return f"{symbol[: -len('USDT')]}-USDT-SWAP"
    return symbol


def harness_symbol(inst: str) -> str:
    """The harness symbol of an OKX swap id: ``BTC-USDT-SWAP`` -> ``BTCUSDT`` (others unchanged)."""
    base, _, rest = inst.partition("-")
    quote, _, kind = rest.partition("-")
    return f"{base}{quote}" if kind == "SWAP" and base and quote else inst


def data_of(raw: Any) -> list[Any]:
    return list(raw.get("data") or ()) if isinstance(raw, Mapping) else []


def first_of(raw: Any, what: str) -> Mapping[str, Any]:
    rows = data_of(raw)
    if not rows:
        raise Rejected(51001, f"{what} not found")  # OKX: "Instrument ID does not exist"
    first: Mapping[str, Any] = rows[0]
    return first


class Contracts:
    """``ctVal`` per instrument, loaded once: the size of one contract in base units."""

    def __init__(self, exchange: Any) -> None:
        self._exchange = exchange
        self._rows: dict[str, Mapping[str, Any]] = {}

    async def load(self) -> dict[str, Mapping[str, Any]]:
        raw = await call(self._exchange.publicGetPublicInstruments(dict(SWAP)))
        self._rows = {str(r["instId"]): r for r in data_of(raw)}
        return self._rows

    async def ct_val(self, symbol: str) -> Decimal:
        """``ctVal`` of ``symbol`` (a harness symbol or an OKX id)."""
        inst = inst_id(symbol)
        if inst not in self._rows:
            await self.load()
        if inst not in self._rows:
            raise Rejected(51001, "Instrument ID does not exist.")
        return dec(self._rows[inst]["ctVal"], "ctVal")


def order(row: Mapping[str, Any], ct_val: Decimal) -> Order:
    """A ``/api/v5/trade/order`` or ``orders-pending`` row, sizes converted to base units."""
    kind, tif = _ORD_TYPE.get(str(row.get("ordType")), (OrderType.MARKET, None))
    status = _STATE.get(str(row.get("state")), OrderStatus.NEW)
    if status is OrderStatus.CANCELED and tif in (TimeInForce.IOC, TimeInForce.FOK):
        status = OrderStatus.EXPIRED
    filled = dec(row.get("accFillSz") or 0, "accFillSz") * ct_val
    avg = dec_or_none(row.get("avgPx"), "avgPx") or ZERO
    return Order(
        order_id=OrderId(str(row["ordId"])),
        client_order_id=ClientOrderId(str(row.get("clOrdId", ""))),
        symbol=harness_symbol(str(row["instId"])),
        side=Side(str(row["side"]).upper()),
        type=kind,
        time_in_force=tif,
        price=dec_or_none(row.get("px"), "px") if kind is OrderType.LIMIT else None,
        orig_qty=dec(row["sz"], "sz") * ct_val,
        executed_qty=filled,
        cum_quote=filled * avg,
        status=status,
        reduce_only=str(row.get("reduceOnly", "false")).lower() == "true",
        time_ms=int(row.get("cTime") or 0),
        update_time_ms=int(row.get("uTime") or row.get("cTime") or 0),
    )


def fill(r: Mapping[str, Any], ct_val: Decimal) -> Fill:
    """A ``/api/v5/trade/fills`` row; OKX's ``fee`` is negative for a charge."""
    qty = dec(r["fillSz"], "fillSz") * ct_val
    price = dec(r["fillPx"], "fillPx")
    return Fill(
        trade_id=int(r["tradeId"]),
        order_id=OrderId(str(r["ordId"])),
        symbol=harness_symbol(str(r["instId"])),
        side=Side(str(r["side"]).upper()),
        price=price,
        qty=qty,
        quote_qty=qty * price,
        commission=-dec(r.get("fee") or 0, "fee"),
        commission_asset=str(r.get("feeCcy", "")),
        maker=r.get("execType") == "M",
        realized_pnl=dec(r.get("fillPnl") or 0, "fillPnl"),
        time_ms=int(r["ts"]),
    )


def position(r: Mapping[str, Any], ct_val: Decimal) -> Position:
    """An ``/api/v5/account/positions`` row (net mode: ``pos`` signed, in contracts)."""
    qty = dec(r["pos"], "pos") * ct_val
    mark = dec(r["markPx"], "markPx")
    isolated = r.get("mgnMode") == "isolated"
    return Position(
        symbol=harness_symbol(str(r["instId"])),
        quantity=qty,
        entry_price=dec(r["avgPx"], "avgPx"),
        mark_price=mark,
        unrealized_pnl=dec(r.get("upl") or 0, "upl"),
        liquidation_price=dec_or_none(r.get("liqPx"), "liqPx") or None,
        margin_mode=MarginMode.ISOLATED if isolated else MarginMode.CROSS,
        isolated_wallet=dec(r.get("margin") or 0, "margin") if isolated else ZERO,
        leverage=int(dec(r.get("lever") or 0, "lever")),
        notional=qty * mark,
        maint_margin=dec(r.get("mmr") or 0, "mmr"),
        initial_margin=dec(r.get("imr") or 0, "imr"),
    )
