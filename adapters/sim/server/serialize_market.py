"""Market-data bodies in Binance's shapes (binance-usdm-surface.md §2.1, §2.2, §2.3 brackets).

Field names and types as the surface doc lists them: decimals as strings, ids and times as
integers, ``leverageBracket`` figures as numbers. Times are the engine's virtual milliseconds.
Simulator extras (PROTOCOL.md "Binance endpoints ... and the extras they carry") are camelCase
fields Binance does not use: ``fundingIntervalHours``, ``liquidationPolicy``, ``lastPrice``,
``fundingIntervalMs``, the ``fundingInfo`` parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from adapters.sim.engine.exchange import Engine, PublicTrade
from adapters.sim.server.wire import s
from harness.model import Bracket, FundingEvent, FundingInfo, Instrument, Side
from harness.venue import RateLimits

__all__ = [
    "KLINE_INTERVALS",
    "agg_trade",
    "book_ticker",
    "brackets_json",
    "depth_json",
    "exchange_info",
    "funding_info_json",
    "funding_rate_json",
    "klines",
    "premium_index",
    "price_ticker",
    "ticker_24hr",
    "trade_json",
]

ZERO = Decimal(0)
DAY_MS = 86_400_000
PERPETUAL_DELIVERY = 4_133_404_800_000  # Binance's delivery date of a perpetual (2100-12-25)
ONBOARD_MS = 1_569_398_400_000
PERCENT = Decimal("0.0001")
KLINE_INTERVALS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}


def _places(step: Decimal) -> int:
    exponent = step.as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


def _symbol(engine: Engine, inst: Instrument) -> dict[str, Any]:
    policy = inst.liquidation
    first = inst.brackets[0]
    return {
        "symbol": inst.symbol,
        "pair": inst.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": PERPETUAL_DELIVERY,
        "onboardDate": ONBOARD_MS,
        "status": "TRADING",
        "maintMarginPercent": s((first.maint_margin_ratio * 100).quantize(PERCENT)),
        "requiredMarginPercent": s((Decimal(100) / first.initial_leverage).quantize(PERCENT)),
        "baseAsset": inst.base_asset,
        "quoteAsset": inst.quote_asset,
        "marginAsset": inst.margin_asset,
        "pricePrecision": _places(inst.tick_size),
        "quantityPrecision": _places(inst.step_size),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": s(inst.liquidation_fee_rate or ZERO),
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": s(inst.min_price),
                "maxPrice": s(inst.max_price),
                "tickSize": s(inst.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": s(inst.min_qty),
                "maxQty": s(inst.max_qty),
                "stepSize": s(inst.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": s(inst.min_qty),
                "maxQty": s(inst.market_max_qty),
                "stepSize": s(inst.step_size),
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": s(inst.min_notional)},
        ],
        # Stop and take-profit orders are not simulated: ccxt refuses them client-side.
        "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        "fundingIntervalHours": engine.prices[inst.symbol].funding_interval_ms // 3_600_000,
        "liquidationPolicy": {
            "variant": policy.variant.value,
            "sliceFraction": s(policy.slice_fraction),
            "sliceMinNotional": s(policy.slice_min_notional),
            "cooldownMs": policy.cooldown_ms,
            "backstopRatio": s(policy.backstop_ratio),
        },
    }


def exchange_info(engine: Engine, limits: RateLimits, server_time_ms: int) -> dict[str, Any]:
    """``GET /fapi/v1/exchangeInfo``; ``rateLimits`` shows the limits in force."""
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": limits.weight_per_minute,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": limits.orders_per_minute,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": limits.orders_per_10s,
            },
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [_symbol(engine, inst) for inst in engine.instruments.values()],
    }


def brackets_json(symbol: str, brackets: Iterable[Bracket]) -> dict[str, Any]:
    """One ``GET /fapi/v1/leverageBracket`` entry; the figures are JSON numbers, as Binance's."""
    return {
        "symbol": symbol,
        "notionalCoef": Decimal("1.0"),
        "brackets": [
            {
                "bracket": b.bracket,
                "initialLeverage": b.initial_leverage,
                "notionalCap": b.notional_cap,
                "notionalFloor": b.notional_floor,
                "maintMarginRatio": b.maint_margin_ratio,
                "cum": b.cum,
            }
            for b in brackets
        ],
    }


def depth_json(engine: Engine, symbol: str, limit: int) -> dict[str, Any]:
    """``GET /fapi/v1/depth``: bids descending, asks ascending, ``E``/``T`` virtual time."""
    book = engine.books[symbol]
    factor = 2 if engine.has("depth-overstated") else 1  # as SimVenue.order_book publishes it
    now = engine.clock.now_ms()
    return {
        "lastUpdateId": book.update_id,
        "E": now,
        "T": now,
        "bids": [[s(p), s(q * factor)] for p, q in book.levels(Side.BUY, limit)],
        "asks": [[s(p), s(q * factor)] for p, q in book.levels(Side.SELL, limit)],
    }


def premium_index(engine: Engine, symbol: str) -> dict[str, Any]:
    """``GET /fapi/v1/premiumIndex`` plus ``lastPrice`` and ``fundingIntervalMs``."""
    state = engine.prices[symbol]
    return {
        "symbol": symbol,
        "markPrice": s(state.mark),
        "indexPrice": s(state.index),
        "estimatedSettlePrice": s(state.index),
        "lastFundingRate": s(state.last_funding_rate),
        "interestRate": s(state.interest_rate),
        "nextFundingTime": state.next_funding_ms,
        "time": engine.clock.now_ms(),
        "lastPrice": s(state.last_price),
        "fundingIntervalMs": state.funding_interval_ms,
    }


def funding_rate_json(event: FundingEvent) -> dict[str, Any]:
    """One ``GET /fapi/v1/fundingRate`` row."""
    return {
        "symbol": event.symbol,
        "fundingRate": s(event.funding_rate),
        "fundingTime": event.funding_time_ms,
        "markPrice": s(event.mark_price),
    }


def funding_info_json(info: FundingInfo) -> dict[str, Any]:
    """One ``GET /fapi/v1/fundingInfo`` row with the simulator's funding parameters."""
    return {
        "symbol": info.symbol,
        "adjustedFundingRateCap": s(info.cap),
        "adjustedFundingRateFloor": s(info.floor),
        "fundingIntervalHours": info.interval_hours,
        "disclaimer": False,
        "interestRate": s(info.interest_rate),
        "interestClamp": s(info.clamp),
        "impactMarginNotional": s(info.impact_margin_notional),
        "nextFundingTime": info.next_funding_time_ms,
        "pendingIntervalHours": info.pending_interval_hours,
        "pendingEffectiveTime": info.pending_effective_ms,
        "pendingAnnouncedTime": info.pending_announced_ms,
    }


def ticker_24hr(engine: Engine, symbol: str) -> dict[str, Any]:
    """``GET /fapi/v1/ticker/24hr`` over the public trades of the last 24 virtual hours."""
    now = engine.clock.now_ms()
    last = engine.prices[symbol].last_price
    trades = [t for t in engine.tape[symbol] if t.time_ms > now - DAY_MS]
    volume = sum((t.qty for t in trades), ZERO)
    quote = sum((t.qty * t.price for t in trades), ZERO)
    open_ = trades[0].price if trades else last
    change = last - open_
    return {
        "symbol": symbol,
        "priceChange": s(change),
        "priceChangePercent": s((change / open_ * 100).quantize(Decimal("0.001"))),
        "weightedAvgPrice": s((quote / volume).quantize(Decimal("0.00000001")) if volume else last),
        "lastPrice": s(last),
        "lastQty": s(trades[-1].qty if trades else ZERO),
        "openPrice": s(open_),
        "highPrice": s(max((t.price for t in trades), default=last)),
        "lowPrice": s(min((t.price for t in trades), default=last)),
        "volume": s(volume),
        "quoteVolume": s(quote),
        "openTime": now - DAY_MS,
        "closeTime": now,
        "firstId": trades[0].trade_id if trades else -1,
        "lastId": trades[-1].trade_id if trades else -1,
        "count": len(trades),
    }


def book_ticker(engine: Engine, symbol: str) -> dict[str, Any]:
    """``GET /fapi/v1/ticker/bookTicker``: best bid and ask with their quantities."""
    bids = engine.books[symbol].levels(Side.BUY, 1)
    asks = engine.books[symbol].levels(Side.SELL, 1)
    factor = 2 if engine.has("depth-overstated") else 1
    bid, bid_qty = bids[0] if bids else (ZERO, ZERO)
    ask, ask_qty = asks[0] if asks else (ZERO, ZERO)
    return {
        "symbol": symbol,
        "bidPrice": s(bid),
        "bidQty": s(bid_qty * factor),
        "askPrice": s(ask),
        "askQty": s(ask_qty * factor),
        "time": engine.clock.now_ms(),
        "lastUpdateId": engine.books[symbol].update_id,
    }


def price_ticker(engine: Engine, symbol: str) -> dict[str, Any]:
    """``GET /fapi/v1|v2/ticker/price``: the last traded price."""
    return {
        "symbol": symbol,
        "price": s(engine.prices[symbol].last_price),
        "time": engine.clock.now_ms(),
    }


def agg_trade(t: PublicTrade) -> dict[str, Any]:
    """One ``GET /fapi/v1/aggTrades`` row (every trade is its own aggregate)."""
    return {
        "a": t.trade_id,
        "p": s(t.price),
        "q": s(t.qty),
        "f": t.trade_id,
        "l": t.trade_id,
        "T": t.time_ms,
        "m": t.buyer_maker,
    }


def trade_json(t: PublicTrade) -> dict[str, Any]:
    """One ``GET /fapi/v1/trades`` row."""
    return {
        "id": t.trade_id,
        "price": s(t.price),
        "qty": s(t.qty),
        "quoteQty": s(t.price * t.qty),
        "time": t.time_ms,
        "isBuyerMaker": t.buyer_maker,
    }


def klines(
    engine: Engine,
    symbol: str,
    interval_ms: int,
    *,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
) -> list[list[Any]]:
    """``GET /fapi/v1/klines`` from the public trades since the engine started.

    A candle without trades repeats the previous close with zero volume, as Binance's do.
    """
    now = engine.clock.now_ms()
    state = engine.prices[symbol]
    genesis = state.history[0][0] if state.history else now
    end = min(end_ms if end_ms is not None else now, now)
    if start_ms is not None:
        first = max(start_ms, genesis)
        first -= first % interval_ms
    else:
        latest = end - end % interval_ms
        first = max(latest - (limit - 1) * interval_ms, genesis - genesis % interval_ms)
    trades = list(engine.tape[symbol])
    before = [t for t in trades if t.time_ms < first]
    opening = state.history[0][3] if state.history else state.last_price
    close = before[-1].price if before else opening
    out: list[list[Any]] = []
    opened = first
    i = len(before)
    while opened <= end and len(out) < limit:
        closes = opened + interval_ms
        bucket: list[PublicTrade] = []
        while i < len(trades) and trades[i].time_ms < closes:
            bucket.append(trades[i])
            i += 1
        prices = [t.price for t in bucket] or [close]
        volume = sum((t.qty for t in bucket), ZERO)
        quote = sum((t.qty * t.price for t in bucket), ZERO)
        buy = [t for t in bucket if not t.buyer_maker]
        out.append(
            [
                opened,
                s(prices[0]),
                s(max(prices)),
                s(min(prices)),
                s(prices[-1]),
                s(volume),
                closes - 1,
                s(quote),
                len(bucket),
                s(sum((t.qty for t in buy), ZERO)),
                s(sum((t.qty * t.price for t in buy), ZERO)),
                "0",
            ]
        )
        close = prices[-1]
        opened = closes
    return out
