"""Binance USDⓈ-M wire bodies to harness domain types, and Binance's error dialect.

Pure functions over the Decimal-parsed JSON the ccxt client received (see ``_wire.install``).
The simulator's extras (PROTOCOL.md: ``liquidationPolicy``, ``fundingIntervalHours``,
``lastPrice``, ``liquidation``, the forceOrder disclosure fields...) are read when present and
treated as "not published" when absent, as on the real venue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.ccxt_venue._wire import dec, dec_or_none, retry_after
from harness.errors import AuthError, Banned, RateLimited, Rejected, Unavailable, VenueError
from harness.model import (
    Balance,
    BandStep,
    BookSnapshot,
    Bracket,
    ClientOrderId,
    Fill,
    FundingEvent,
    Instrument,
    LiquidationBand,
    LiquidationEvent,
    LiquidationPolicy,
    LiquidationVariant,
    MarginMode,
    MarkSnapshot,
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
    "balance",
    "band",
    "binance_dialect",
    "book",
    "brackets_by_symbol",
    "fill",
    "funding_event",
    "instrument",
    "liquidation",
    "mark",
    "order",
    "position",
]

ZERO = Decimal(0)
HOUR_MS = 3_600_000

#: Codes Binance uses for key, signature, permission and timestamp refusals.
AUTH_CODES = frozenset({-1002, -1021, -1022, -2014, -2015})


def binance_dialect(
    status: int, headers: Mapping[str, str], body: str, response: Any
) -> VenueError | None:
    """A failed Binance response as a harness error (``None``: a success, let ccxt go on).

    429 → :class:`RateLimited` and 418 → :class:`Banned`, both with ``Retry-After``; 5xx (and a
    4xx without a Binance ``code``, e.g. a 404) → :class:`Unavailable`; key/signature/timestamp
    codes and 401/403 → :class:`AuthError`; every other ``{"code", "msg"}`` → ``Rejected``.
    A 2xx body carrying a code other than 0/200 is a refusal too, as ccxt treats it.
    """
    code, msg = _code_msg(response)
    text = msg if code is not None else f"HTTP {status}: {body[:200]}"  # the code is kept apart
    if status == 418:
        return Banned(text, retry_after(headers), code)
    if status == 429:
        return RateLimited(text, retry_after(headers), code)
    if status >= 500 or status == 408:
        return Unavailable(text)
    if code is not None and code not in (0, 200):
        if code in AUTH_CODES or status in (401, 403):
            return AuthError(f"{code}: {msg}")
        return Rejected(code, msg)
    if status in (401, 403):
        return AuthError(text)
    if status >= 400:
        return Unavailable(text)
    return None


def _code_msg(response: Any) -> tuple[int | None, str]:
    if not isinstance(response, Mapping):
        return None, ""
    raw = response.get("code")
    if isinstance(raw, bool) or raw is None:
        return None, ""
    try:
        code = int(raw)
    except (TypeError, ValueError):
        return None, ""
    return code, str(response.get("msg", ""))


def _filters(sym: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(f.get("filterType")): f for f in sym.get("filters", ())}


def _policy(raw: Mapping[str, Any] | None) -> LiquidationPolicy:
    if not raw:
        return LiquidationPolicy(variant=LiquidationVariant.TIER_STEP_DOWN)  # Binance's rule
    default = LiquidationPolicy()
    return LiquidationPolicy(
        variant=LiquidationVariant(str(raw.get("variant", default.variant.value))),
        slice_fraction=dec(raw.get("sliceFraction", default.slice_fraction), "sliceFraction"),
        slice_min_notional=dec(
            raw.get("sliceMinNotional", default.slice_min_notional), "sliceMinNotional"
        ),
        cooldown_ms=int(raw.get("cooldownMs", default.cooldown_ms)),
        backstop_ratio=dec(raw.get("backstopRatio", default.backstop_ratio), "backstopRatio"),
    )


def brackets_by_symbol(raw: Any) -> dict[str, tuple[Bracket, ...]]:
    """``GET /fapi/v1/leverageBracket`` (a list, or one object when asked for one symbol)."""
    rows = raw if isinstance(raw, list) else [raw]
    out: dict[str, tuple[Bracket, ...]] = {}
    for row in rows:
        out[str(row["symbol"])] = tuple(
            Bracket(
                bracket=int(b["bracket"]),
                initial_leverage=int(b["initialLeverage"]),
                notional_floor=dec(b["notionalFloor"], "notionalFloor"),
                notional_cap=dec(b["notionalCap"], "notionalCap"),
                maint_margin_ratio=dec(b["maintMarginRatio"], "maintMarginRatio"),
                cum=dec(b.get("cum", 0), "cum"),
            )
            for b in row.get("brackets", ())
        )
    return out


def instrument(
    sym: Mapping[str, Any], brackets: tuple[Bracket, ...], funding_interval_hours: int = 8
) -> Instrument:
    """One ``exchangeInfo.symbols[]`` entry with its brackets."""
    f = _filters(sym)
    price, lot = f.get("PRICE_FILTER", {}), f.get("LOT_SIZE", {})
    market_lot = f.get("MARKET_LOT_SIZE", lot)
    hours = sym.get("fundingIntervalHours")
    return Instrument(
        symbol=str(sym["symbol"]),
        base_asset=str(sym.get("baseAsset", "")),
        quote_asset=str(sym.get("quoteAsset", "")),
        margin_asset=str(sym.get("marginAsset", sym.get("quoteAsset", ""))),
        tick_size=dec(price.get("tickSize"), "tickSize"),
        step_size=dec(lot.get("stepSize"), "stepSize"),
        min_qty=dec(lot.get("minQty"), "minQty"),
        max_qty=dec(lot.get("maxQty"), "maxQty"),
        market_max_qty=dec(market_lot.get("maxQty"), "MARKET_LOT_SIZE.maxQty"),
        min_price=dec(price.get("minPrice"), "minPrice"),
        max_price=dec(price.get("maxPrice"), "maxPrice"),
        min_notional=dec(f.get("MIN_NOTIONAL", {}).get("notional", 0), "MIN_NOTIONAL"),
        brackets=brackets,
        liquidation_fee_rate=dec_or_none(sym.get("liquidationFee"), "liquidationFee"),
        funding_interval_hours=int(hours) if hours is not None else funding_interval_hours,
        liquidation=_policy(sym.get("liquidationPolicy")),
    )


def tradable(sym: Mapping[str, Any]) -> bool:
    """A perpetual that is trading (real venues also list delivery and delisted contracts)."""
    return sym.get("contractType", "PERPETUAL") == "PERPETUAL" and sym.get("status", "TRADING") in (
        "TRADING",
    )


def _levels(rows: Iterable[Any]) -> tuple[tuple[Decimal, Decimal], ...]:
    """``[price, qty, ...]`` rows as decimals; a row that is not two numeric strings is read by
    :func:`dec` (which names the field it refuses). A depth answer has up to 2,000 of them."""
    out: list[tuple[Decimal, Decimal]] = []
    for p, q, *_ in rows:
        if type(p) is str and type(q) is str:
            try:
                out.append((Decimal(p), Decimal(q)))
                continue
            except InvalidOperation:
                pass
        out.append((dec(p, "price"), dec(q, "qty")))
    return tuple(out)


def book(symbol: str, raw: Mapping[str, Any]) -> BookSnapshot:
    """``GET /fapi/v1/depth``; the snapshot time is the output time ``E`` (else ``T``)."""
    return BookSnapshot(
        symbol=symbol,
        bids=_levels(raw.get("bids", ())),
        asks=_levels(raw.get("asks", ())),
        time_ms=int(raw.get("E", raw.get("T", 0))),
        update_id=int(raw.get("lastUpdateId", 0)),
    )


def mark(raw: Mapping[str, Any], last_price: Decimal | None) -> MarkSnapshot:
    """``GET /fapi/v1/premiumIndex?symbol=``; ``fundingIntervalMs`` is a simulator extra."""
    interval = raw.get("fundingIntervalMs")
    return MarkSnapshot(
        symbol=str(raw["symbol"]),
        mark_price=dec(raw["markPrice"], "markPrice"),
        index_price=dec(raw["indexPrice"], "indexPrice"),
        last_price=last_price,
        last_funding_rate=dec(raw.get("lastFundingRate", 0), "lastFundingRate"),
        interest_rate=dec(raw.get("interestRate", 0), "interestRate"),
        next_funding_time_ms=int(raw.get("nextFundingTime", 0)),
        time_ms=int(raw.get("time", 0)),
        funding_interval_ms=int(interval) if interval is not None else 8 * HOUR_MS,
    )


def order(raw: Mapping[str, Any]) -> Order:
    """An order object (POST/GET/DELETE ``/fapi/v1/order``, ``openOrders``)."""
    kind = OrderType(str(raw["type"]))
    limit = kind is OrderType.LIMIT
    price = dec_or_none(raw.get("price"), "price")
    update = int(raw.get("updateTime", raw.get("time", 0)))
    return Order(
        order_id=OrderId(str(raw["orderId"])),
        client_order_id=ClientOrderId(str(raw.get("clientOrderId", ""))),
        symbol=str(raw["symbol"]),
        side=Side(str(raw["side"])),
        type=kind,
        # Binance shows market orders as GTC with price 0: the harness says "none".
        time_in_force=TimeInForce(str(raw["timeInForce"])) if limit else None,
        price=price if limit else None,
        orig_qty=dec(raw["origQty"], "origQty"),
        executed_qty=dec(raw.get("executedQty", 0), "executedQty"),
        cum_quote=dec(raw.get("cumQuote", 0), "cumQuote"),
        status=OrderStatus(str(raw["status"])),
        reduce_only=bool(raw.get("reduceOnly", False)),
        time_ms=int(raw.get("time", update)),
        update_time_ms=update,
    )


def fill(raw: Mapping[str, Any], liquidation: bool) -> Fill:
    """A ``GET /fapi/v1/userTrades`` row."""
    return Fill(
        trade_id=int(raw["id"]),
        order_id=OrderId(str(raw["orderId"])),
        symbol=str(raw["symbol"]),
        side=Side(str(raw["side"])),
        price=dec(raw["price"], "price"),
        qty=dec(raw["qty"], "qty"),
        quote_qty=dec(raw["quoteQty"], "quoteQty"),
        commission=dec(raw.get("commission", 0), "commission"),
        commission_asset=str(raw.get("commissionAsset", "")),
        maker=bool(raw.get("maker", False)),
        realized_pnl=dec(raw.get("realizedPnl", 0), "realizedPnl"),
        time_ms=int(raw["time"]),
        liquidation=liquidation,
    )


def margin_mode(raw: object) -> MarginMode:
    """Binance ``marginType`` (``CROSSED``/``cross``/``ISOLATED``/``isolated``)."""
    return MarginMode.ISOLATED if str(raw).upper() == "ISOLATED" else MarginMode.CROSS


def position(raw: Mapping[str, Any], config: Mapping[str, Any] | None) -> Position:
    """A ``GET /fapi/v3/positionRisk`` row with the symbol's ``symbolConfig`` row.

    Leverage and margin type come from ``symbolConfig`` (v3 positionRisk has neither), else from
    v2-style fields on the row; ``liquidationPrice`` ``"0"`` means none.
    """
    cfg = config or {}
    isolated_wallet = dec(raw.get("isolatedWallet", 0), "isolatedWallet")
    if "marginType" in cfg or "marginType" in raw:
        mode = margin_mode(cfg.get("marginType", raw.get("marginType")))
    else:
        mode = MarginMode.ISOLATED if isolated_wallet else MarginMode.CROSS
    lp = dec(raw.get("liquidationPrice", 0), "liquidationPrice")
    return Position(
        symbol=str(raw["symbol"]),
        quantity=dec(raw["positionAmt"], "positionAmt"),
        entry_price=dec(raw["entryPrice"], "entryPrice"),
        mark_price=dec(raw["markPrice"], "markPrice"),
        unrealized_pnl=dec(raw.get("unRealizedProfit", 0), "unRealizedProfit"),
        liquidation_price=lp if lp else None,
        margin_mode=mode,
        isolated_wallet=isolated_wallet,
        leverage=int(cfg.get("leverage", raw.get("leverage", 0))),
        notional=dec(raw.get("notional", 0), "notional"),
        maint_margin=dec(raw.get("maintMargin", 0), "maintMargin"),
        # v3 ``initialMargin`` includes the open orders' margin; the position's own is apart.
        initial_margin=dec(
            raw.get("positionInitialMargin", raw.get("initialMargin", 0)), "positionInitialMargin"
        ),
    )


def balance(raw: Mapping[str, Any], asset: str) -> Balance:
    """The ``asset`` entry of ``GET /fapi/v3/account``."""
    for row in raw.get("assets", ()):
        if row.get("asset") == asset:
            return Balance(
                asset=asset,
                wallet_balance=dec(row["walletBalance"], "walletBalance"),
                cross_wallet_balance=dec(row["crossWalletBalance"], "crossWalletBalance"),
                unrealized_pnl=dec(row["unrealizedProfit"], "unrealizedProfit"),
                margin_balance=dec(row["marginBalance"], "marginBalance"),
                available_balance=dec(row["availableBalance"], "availableBalance"),
                initial_margin=dec(row["initialMargin"], "initialMargin"),
                maint_margin=dec(row["maintMargin"], "maintMargin"),
            )
    return Balance(
        asset=asset,
        wallet_balance=ZERO,
        cross_wallet_balance=ZERO,
        unrealized_pnl=ZERO,
        margin_balance=ZERO,
        available_balance=ZERO,
        initial_margin=ZERO,
        maint_margin=ZERO,
    )


def funding_event(raw: Mapping[str, Any]) -> FundingEvent:
    """A ``GET /fapi/v1/fundingRate`` row."""
    return FundingEvent(
        symbol=str(raw["symbol"]),
        funding_rate=dec(raw["fundingRate"], "fundingRate"),
        funding_time_ms=int(raw["fundingTime"]),
        mark_price=dec(raw.get("markPrice", 0), "markPrice"),
    )


def liquidation(raw: Mapping[str, Any], own: bool) -> LiquidationEvent:
    """A forced order (``GET /fapi/v1/forceOrders`` row or a control-API record).

    The disclosure fields (``triggerMark``, ``bankruptcyPrice``, ``fee``, ``shortfall``,
    ``takenOverQty``, ``adlQty``, ``partial``) are simulator extras; absent, they are unknown.
    """
    avg = dec_or_none(raw.get("avgPrice"), "avgPrice")
    return LiquidationEvent(
        symbol=str(raw["symbol"]),
        side=Side(str(raw["side"])),
        quantity=dec(raw["origQty"], "origQty"),
        filled_qty=dec(raw.get("executedQty", 0), "executedQty"),
        price=dec(raw["price"], "price"),
        avg_price=avg if avg else None,
        time_ms=int(raw.get("time", raw.get("updateTime", 0))),
        own=own,
        trigger_mark=dec_or_none(raw.get("triggerMark"), "triggerMark"),
        bankruptcy_price=dec_or_none(raw.get("bankruptcyPrice"), "bankruptcyPrice"),
        fee=dec_or_none(raw.get("fee"), "fee"),
        shortfall=dec_or_none(raw.get("shortfall"), "shortfall"),
        taken_over_qty=dec(raw.get("takenOverQty", 0), "takenOverQty"),
        partial=bool(raw.get("partial", False)),
        adl_qty=dec(raw.get("adlQty", 0), "adlQty"),
    )


def band(raw: Mapping[str, Any]) -> LiquidationBand | None:
    """``GET /sim/v1/liquidationBand`` (simulator only); no steps and no quantity: no position."""
    steps = tuple(
        BandStep(
            mark=dec(s["mark"], "mark"),
            close_qty=dec(s["closeQty"], "closeQty"),
            remaining_qty=dec(s["remainingQty"], "remainingQty"),
            bracket_before=int(s["bracketBefore"]),
            bracket_after=None if s.get("bracketAfter") is None else int(s["bracketAfter"]),
        )
        for s in raw.get("steps", ())
    )
    if "quantity" not in raw and not steps:
        return None
    return LiquidationBand(
        symbol=str(raw["symbol"]), quantity=dec(raw.get("quantity", 0), "quantity"), steps=steps
    )
