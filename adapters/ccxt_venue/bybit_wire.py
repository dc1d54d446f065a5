"""Bybit v5 wire bodies to harness domain types, and Bybit's error dialect.

Pure functions over the Decimal-parsed JSON the ccxt client received.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from adapters.ccxt_venue._wire import dec, dec_or_none, header, retry_after
from harness.errors import AuthError, Banned, RateLimited, Rejected, Unavailable, VenueError
from harness.model import (
    Bracket,
    ClientOrderId,
    IncomeRecord,
    IncomeType,
    Instrument,
    LiquidationPolicy,
    LiquidationVariant,
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
    "LINEAR",
    "RATE_CODES",
    "brackets",
    "bybit_dialect",
    "first_row",
    "instrument",
    "order",
    "position",
    "result_of",
    "rows_of",
]

ZERO = Decimal(0)
LINEAR = {"category": "linear"}
AUTH_CODES = frozenset({10002, 10003, 10004, 10005, 10007, 33004})
BUSY_CODES = frozenset({10000, 10016})  # server timeout / internal error: status unknown
RATE_CODES = frozenset({10006, 10018})  # per-UID and per-IP request limits
BYBIT_INTEREST = Decimal("0.0001")  # documented fixed interest per 8 h (0.03 % a day)
TIF_OUT = {TimeInForce.GTX: "PostOnly"}
_TIF_IN = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
_STATUS = {
    "New": OrderStatus.NEW,
    "Untriggered": OrderStatus.NEW,
    "Created": OrderStatus.NEW,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELED,
    "PartiallyFilledCanceled": OrderStatus.CANCELED,
    "Deactivated": OrderStatus.CANCELED,
    "Rejected": OrderStatus.REJECTED,
}


def bybit_dialect(
    status: int, headers: Mapping[str, str], body: str, response: Any
) -> VenueError | None:
    """Bybit's verdicts: ``retCode`` 0 is success; 10006/10018 and HTTP 429 are rate limits
    (retry after ``X-Bapi-Limit-Reset-Timestamp``); HTTP 403 is the 10-minute IP ban; key,
    signature and timestamp codes are :class:`AuthError`; 5xx and 10000/10016 are
    :class:`Unavailable`; any other code is ``Rejected(retCode, retMsg)``."""
    code = response.get("retCode") if isinstance(response, Mapping) else None
    msg = str(response.get("retMsg", "")) if isinstance(response, Mapping) else body[:200]
    text = f"{code}: {msg}" if code is not None else f"HTTP {status}: {body[:200]}"
    if status == 403:
        return Banned(text, Decimal(600))  # "access too frequent": IP banned for 10 minutes
    if status >= 500 or (code is not None and int(code) in BUSY_CODES):
        return Unavailable(text)
    if status == 429 or (code is not None and int(code) in RATE_CODES):
        return RateLimited(text, _reset_after(headers, response), int(code) if code else None)
    if code is not None and int(code) != 0:
        if int(code) in AUTH_CODES or status == 401:
            return AuthError(text)
        return Rejected(int(code), msg)
    if status == 401:
        return AuthError(text)
    if status >= 400:
        return Unavailable(text)
    return None


def _reset_after(headers: Mapping[str, str], response: Any) -> Decimal | None:
    reset = header(headers, "X-Bapi-Limit-Reset-Timestamp")
    now = response.get("time") if isinstance(response, Mapping) else None
    if reset is None or now is None:
        return retry_after(headers)
    return max(Decimal(int(reset) - int(now)) / 1000, ZERO)


def result_of(raw: Any) -> Any:
    return raw.get("result", {}) if isinstance(raw, Mapping) else {}


def rows_of(raw: Any) -> list[Any]:
    return list(result_of(raw).get("list", ()))


def first_row(raw: Any, what: str) -> Mapping[str, Any]:
    """The first row of a ``result.list``; an empty list is Bybit's "no such symbol" answer
    (10001 on an unknown symbol; a listed symbol always has a row)."""
    rows = rows_of(raw)
    if not rows:
        raise Rejected(10001, f"{what} not found")
    first: Mapping[str, Any] = rows[0]
    return first


def brackets(rows: list[Mapping[str, Any]]) -> tuple[Bracket, ...]:
    """A symbol's ``/v5/market/risk-limit`` rows as brackets: each tier's floor is the previous
    tier's ``riskLimitValue``; ``cum`` is ``mmDeduction``, or the recurrence where blank."""
    out: list[Bracket] = []
    floor, cum, prev_mmr = ZERO, ZERO, ZERO
    for i, row in enumerate(sorted(rows, key=lambda r: int(r["id"])), start=1):
        mmr = dec(row["maintenanceMargin"], "maintenanceMargin")
        published = dec_or_none(row.get("mmDeduction"), "mmDeduction")
        cum = published if published is not None else cum + floor * (mmr - prev_mmr)
        cap = dec(row["riskLimitValue"], "riskLimitValue")
        out.append(
            Bracket(
                bracket=i,
                initial_leverage=int(dec(row["maxLeverage"], "maxLeverage")),
                notional_floor=floor,
                notional_cap=cap,
                maint_margin_ratio=mmr,
                cum=cum,
            )
        )
        floor, prev_mmr = cap, mmr
    return tuple(out)


def instrument(row: Mapping[str, Any], tiers: tuple[Bracket, ...]) -> Instrument:
    """An ``/v5/market/instruments-info`` row (``category=linear``)."""
    price, lot = row.get("priceFilter", {}), row.get("lotSizeFilter", {})
    return Instrument(
        symbol=str(row["symbol"]),
        base_asset=str(row.get("baseCoin", "")),
        quote_asset=str(row.get("quoteCoin", "")),
        margin_asset=str(row.get("settleCoin", row.get("quoteCoin", ""))),
        tick_size=dec(price["tickSize"], "tickSize"),
        step_size=dec(lot["qtyStep"], "qtyStep"),
        min_qty=dec(lot["minOrderQty"], "minOrderQty"),
        max_qty=dec(lot["maxOrderQty"], "maxOrderQty"),
        market_max_qty=dec(lot.get("maxMktOrderQty", lot["maxOrderQty"]), "maxMktOrderQty"),
        min_price=dec(price["minPrice"], "minPrice"),
        max_price=dec(price["maxPrice"], "maxPrice"),
        min_notional=dec(lot.get("minNotionalValue", 0), "minNotionalValue"),
        brackets=tiers,
        funding_interval_hours=int(row.get("fundingInterval", 480)) // 60,
        liquidation=LiquidationPolicy(variant=LiquidationVariant.TIER_STEP_DOWN),
    )


def order(row: Mapping[str, Any]) -> Order:
    """An ``/v5/order/realtime`` or ``/v5/order/history`` row."""
    kind = OrderType.LIMIT if row.get("orderType") == "Limit" else OrderType.MARKET
    tif_raw = str(row.get("timeInForce", "GTC"))
    tif = TimeInForce.GTX if tif_raw == "PostOnly" else _TIF_IN.get(tif_raw, TimeInForce.GTC)
    status = _STATUS.get(str(row.get("orderStatus")), OrderStatus.NEW)
    if status is OrderStatus.CANCELED and tif in (TimeInForce.IOC, TimeInForce.FOK):
        status = OrderStatus.EXPIRED  # an IOC/FOK remainder, as Binance names it
    return Order(
        order_id=OrderId(str(row["orderId"])),
        client_order_id=ClientOrderId(str(row.get("orderLinkId", ""))),
        symbol=str(row["symbol"]),
        side=Side(str(row["side"]).upper()),
        type=kind,
        time_in_force=tif if kind is OrderType.LIMIT else None,
        price=dec_or_none(row.get("price"), "price") if kind is OrderType.LIMIT else None,
        orig_qty=dec(row["qty"], "qty"),
        executed_qty=dec(row.get("cumExecQty") or 0, "cumExecQty"),
        cum_quote=dec(row.get("cumExecValue") or 0, "cumExecValue"),
        status=status,
        reduce_only=bool(row.get("reduceOnly", False)),
        time_ms=int(row.get("createdTime", 0)),
        update_time_ms=int(row.get("updatedTime", row.get("createdTime", 0))),
    )


def position(row: Mapping[str, Any]) -> Position:
    """A ``/v5/position/list`` row (one-way mode); ``liqPrice`` blank means none."""
    sign = Decimal(1) if row.get("side") == "Buy" else Decimal(-1)
    qty = sign * dec(row["size"], "size")
    mark = dec(row["markPrice"], "markPrice")
    isolated = str(row.get("tradeMode", "0")) == "1"
    wallet = dec(row.get("positionBalance") or 0, "positionBalance")
    return Position(
        symbol=str(row["symbol"]),
        quantity=qty,
        entry_price=dec(row["avgPrice"], "avgPrice"),
        mark_price=mark,
        unrealized_pnl=dec(row.get("unrealisedPnl") or 0, "unrealisedPnl"),
        liquidation_price=dec_or_none(row.get("liqPrice"), "liqPrice") or None,
        margin_mode=MarginMode.ISOLATED if isolated else MarginMode.CROSS,
        isolated_wallet=wallet if isolated else ZERO,
        leverage=int(dec(row.get("leverage") or 0, "leverage")),
        notional=qty * mark,
        maint_margin=dec(row.get("positionMM") or 0, "positionMM"),
        initial_margin=dec(row.get("positionIM") or 0, "positionIM"),
    )


def income_records(row: Mapping[str, Any], asset: str) -> list[IncomeRecord]:
    """A ``/v5/account/transaction-log`` row as income: funding settlements, a trade's realized
    PnL and its fee (two records), transfers; other types are not the harness's."""
    kind = row.get("type")
    amounts: list[tuple[IncomeType, Decimal]] = []
    if kind == "SETTLEMENT":
        amounts.append((IncomeType.FUNDING_FEE, dec(row["change"], "change")))
    elif kind in ("TRADE", "LIQUIDATION"):
        amounts.append((IncomeType.REALIZED_PNL, dec(row.get("cashFlow") or 0, "cashFlow")))
        amounts.append((IncomeType.COMMISSION, -dec(row.get("fee") or 0, "fee")))
    elif kind in ("TRANSFER_IN", "TRANSFER_OUT"):
        amounts.append((IncomeType.TRANSFER, dec(row["change"], "change")))
    return [
        IncomeRecord(
            income_type=t,
            amount=a,
            asset=asset,
            symbol=str(row.get("symbol", "")),
            time_ms=int(row["transactionTime"]),
            tran_id=zlib.crc32(str(row.get("id", "")).encode()),  # Bybit ids are strings
            info=str(kind),
        )
        for t, a in amounts
        if a
    ]
