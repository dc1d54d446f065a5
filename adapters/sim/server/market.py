"""Public market-data endpoints (binance-usdm-surface.md §2.1, §2.2; §7 checklist).

Parameters and defaults as Binance's: ``depth`` limit default 500 (any 1-1000 is served and
weighed by Binance's rule), ``fundingRate`` limit default 100 max 1000 (the most recent without
``startTime``), ``klines`` limit default 500 max 1500, ``aggTrades``/``trades`` default 500 max
1000. Without ``symbol``, ``ticker/*`` and ``premiumIndex`` answer an array of every symbol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from adapters.sim.engine.exchange import Engine
from adapters.sim.server import serialize_market as ser
from adapters.sim.server.state import WALL, engine_of, optional_symbol, params_of, symbol_param
from adapters.sim.server.wire import json_response
from harness.errors import Rejected

__all__ = [
    "agg_trades",
    "book_ticker",
    "depth",
    "exchange_info",
    "funding_info",
    "funding_rate",
    "klines",
    "ping",
    "premium_index",
    "price_ticker",
    "server_time",
    "ticker_24hr",
    "trades",
    "window",
]

T = TypeVar("T")


def window(
    rows: Sequence[T],
    time_of: Callable[[T], int],
    *,
    start: int | None,
    end: int | None,
    limit: int,
) -> list[T]:
    """Rows in ``[start, end]``: the first ``limit`` from ``start``, else the last ``limit``."""
    chosen = [
        r
        for r in rows
        if (start is None or time_of(r) >= start) and (end is None or time_of(r) <= end)
    ]
    return chosen[:limit] if start is not None else chosen[-limit:]


def _per_symbol(
    request: web.Request, render: Callable[[Engine, str], dict[str, Any]]
) -> web.Response:
    engine = engine_of(request)
    symbol = optional_symbol(request)
    if symbol is not None:
        return json_response(render(engine, symbol))
    return json_response([render(engine, sym) for sym in engine.instruments])


async def ping(request: web.Request) -> web.Response:
    return json_response({})


async def server_time(request: web.Request) -> web.Response:
    """``GET /fapi/v1/time``: the **wall** clock, which request signing is checked against."""
    return json_response({"serverTime": request.app[WALL].now_ms()})


async def exchange_info(request: web.Request) -> web.Response:
    engine = engine_of(request)
    return json_response(
        ser.exchange_info(engine, engine.gateway.limits, request.app[WALL].now_ms())
    )


async def depth(request: web.Request) -> web.Response:
    symbol = symbol_param(request)
    limit = params_of(request).limit(500, 1000)
    return json_response(ser.depth_json(engine_of(request), symbol, limit))


async def ticker_24hr(request: web.Request) -> web.Response:
    return _per_symbol(request, ser.ticker_24hr)


async def book_ticker(request: web.Request) -> web.Response:
    return _per_symbol(request, ser.book_ticker)


async def price_ticker(request: web.Request) -> web.Response:
    return _per_symbol(request, ser.price_ticker)


async def premium_index(request: web.Request) -> web.Response:
    return _per_symbol(request, ser.premium_index)


async def funding_rate(request: web.Request) -> web.Response:
    engine = engine_of(request)
    params = params_of(request)
    symbol = optional_symbol(request)
    events = [
        e
        for sym in ([symbol] if symbol else engine.instruments)
        for e in engine.funding.history(sym)
    ]
    events.sort(key=lambda e: (e.funding_time_ms, e.symbol))
    chosen = window(
        events,
        lambda e: e.funding_time_ms,
        start=params.integer("startTime", minimum=0),
        end=params.integer("endTime", minimum=0),
        limit=params.limit(100, 1000),
    )
    return json_response([ser.funding_rate_json(e) for e in chosen])


async def funding_info(request: web.Request) -> web.Response:
    engine = engine_of(request)
    return json_response(
        [ser.funding_info_json(engine.funding.info(s)) for s in engine.instruments]
    )


async def klines(request: web.Request) -> web.Response:
    engine = engine_of(request)
    params = params_of(request)
    symbol = symbol_param(request)
    interval = params.require("interval")
    if interval not in ser.KLINE_INTERVALS:
        raise Rejected(-1120, "Invalid interval.")
    rows = ser.klines(
        engine,
        symbol,
        ser.KLINE_INTERVALS[interval],
        start_ms=params.integer("startTime", minimum=0),
        end_ms=params.integer("endTime", minimum=0),
        limit=params.limit(500, 1500),
    )
    return json_response(rows)


async def agg_trades(request: web.Request) -> web.Response:
    engine = engine_of(request)
    params = params_of(request)
    symbol = symbol_param(request)
    limit = params.limit(500, 1000)
    tape = list(engine.tape[symbol])
    from_id = params.integer("fromId", minimum=0)
    # Read (and so checked) even when fromId decides: a bad time is refused either way.
    start, end = params.integer("startTime", minimum=0), params.integer("endTime", minimum=0)
    if from_id is not None:
        chosen = [t for t in tape if t.trade_id >= from_id][:limit]
    else:
        chosen = window(tape, lambda t: t.time_ms, start=start, end=end, limit=limit)
    return json_response([ser.agg_trade(t) for t in chosen])


async def trades(request: web.Request) -> web.Response:
    engine = engine_of(request)
    symbol = symbol_param(request)
    limit = params_of(request).limit(500, 1000)
    return json_response([ser.trade_json(t) for t in list(engine.tape[symbol])[-limit:]])
