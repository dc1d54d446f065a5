"""Signed account endpoints (binance-usdm-surface.md §2.3; §7 checklist; PROTOCOL.md extras).

Account, balance and positions (v2 and v3 shapes), leverage brackets, leverage, margin type,
position mode (one-way only), symbol configuration, isolated margin, commission rates, user
trades, income, the account's forced orders, and the sim-only liquidation band.
"""

from __future__ import annotations

from aiohttp import web

from adapters.sim.engine.accounts import max_notional_for_leverage
from adapters.sim.server import serialize_account as ser
from adapters.sim.server.market import window
from adapters.sim.server.params import invalid
from adapters.sim.server.serialize_market import brackets_json
from adapters.sim.server.state import (
    CREDENTIAL,
    account_of,
    engine_of,
    optional_symbol,
    params_of,
    symbol_param,
)
from adapters.sim.server.wire import json_response, s
from harness.errors import Rejected
from harness.model import IncomeType, MarginMode

__all__ = [
    "account_info",
    "balance",
    "commission_rate",
    "force_orders",
    "income",
    "leverage_bracket",
    "liquidation_band",
    "position_margin",
    "position_mode",
    "position_risk",
    "set_leverage",
    "set_margin_type",
    "set_position_mode",
    "symbol_config",
    "user_trades",
]

MARGIN_TYPES = {"ISOLATED": MarginMode.ISOLATED, "CROSSED": MarginMode.CROSS}


def _version(request: web.Request) -> int:
    return 2 if request.path.startswith("/fapi/v2/") else 3


async def account_info(request: web.Request) -> web.Response:
    """``GET /fapi/v2|v3/account``."""
    body = ser.account_json(engine_of(request), account_of(request), version=_version(request))
    return json_response(body)


async def balance(request: web.Request) -> web.Response:
    """``GET /fapi/v2|v3/balance``."""
    return json_response(ser.balance_rows(engine_of(request), account_of(request)))


async def position_risk(request: web.Request) -> web.Response:
    """``GET /fapi/v2|v3/positionRisk`` (ccxt sends no symbol and filters itself)."""
    symbol = optional_symbol(request)
    rows = ser.position_rows(
        engine_of(request), account_of(request), symbol, version=_version(request)
    )
    return json_response(rows)


async def leverage_bracket(request: web.Request) -> web.Response:
    """``GET /fapi/v1/leverageBracket``: an array, or one object when asked for one symbol."""
    engine = engine_of(request)
    symbol = optional_symbol(request)
    if symbol is not None:
        return json_response(brackets_json(symbol, engine.instruments[symbol].brackets))
    return json_response([brackets_json(sym, i.brackets) for sym, i in engine.instruments.items()])


async def set_leverage(request: web.Request) -> web.Response:
    """``POST /fapi/v1/leverage`` → ``{leverage, maxNotionalValue, symbol}``."""
    engine = engine_of(request)
    inst = engine.instruments[symbol_param(request)]
    leverage = params_of(request).integer("leverage", required=True)
    assert leverage is not None  # noqa: S101 - required
    done = engine.set_leverage(request[CREDENTIAL].account_id, inst.symbol, leverage)
    return json_response(
        {
            "leverage": done,
            "maxNotionalValue": s(max_notional_for_leverage(inst.brackets, done)),
            "symbol": inst.symbol,
        }
    )


async def set_margin_type(request: web.Request) -> web.Response:
    """``POST /fapi/v1/marginType``; already set: -4046 (ccxt MarginModeAlreadySet)."""
    engine = engine_of(request)
    inst = engine.instruments[symbol_param(request)]
    mode = MARGIN_TYPES.get(params_of(request).require("marginType").upper())
    if mode is None:
        invalid("marginType")
    engine.set_margin_mode(request[CREDENTIAL].account_id, inst.symbol, mode)
    return json_response({"code": 200, "msg": "success"})


async def position_mode(request: web.Request) -> web.Response:
    """``GET /fapi/v1/positionSide/dual``: always one-way."""
    return json_response({"dualSidePosition": False})


async def set_position_mode(request: web.Request) -> web.Response:
    """``POST /fapi/v1/positionSide/dual``: one-way only (hedge mode is not simulated)."""
    params = params_of(request)
    params.require("dualSidePosition")
    if params.boolean("dualSidePosition"):
        raise Rejected(-1130, "Hedge mode is not simulated; dualSidePosition must be false.")
    raise Rejected(-4059, "No need to change position side.")


async def symbol_config(request: web.Request) -> web.Response:
    engine = engine_of(request)
    acct = account_of(request)
    symbol = optional_symbol(request)
    symbols = [symbol] if symbol else list(engine.instruments)
    return json_response([ser.symbol_config(engine, acct, sym) for sym in symbols])


async def position_margin(request: web.Request) -> web.Response:
    """``POST /fapi/v1/positionMargin``: ``type`` 1 adds to, 2 takes from an isolated position."""
    engine = engine_of(request)
    params = params_of(request)
    inst = engine.instruments[symbol_param(request)]
    amount = params.decimal("amount", required=True)
    kind = params.integer("type", required=True)
    assert amount is not None  # noqa: S101 - required
    if kind not in (1, 2):
        invalid("type")
    if params.text("positionSide") not in (None, "BOTH"):
        raise Rejected(-4061, "Order's position side does not match user's setting.")
    signed = amount if kind == 1 else -amount
    engine.add_isolated_margin(request[CREDENTIAL].account_id, inst.symbol, signed)
    return json_response(
        {"amount": amount, "code": 200, "msg": "Successfully modify position margin.", "type": kind}
    )


async def commission_rate(request: web.Request) -> web.Response:
    engine = engine_of(request)
    inst = engine.instruments[symbol_param(request)]
    fees = engine.config.instruments[inst.symbol].fees
    return json_response(
        {
            "symbol": inst.symbol,
            "makerCommissionRate": s(fees.maker),
            "takerCommissionRate": s(fees.taker),
        }
    )


async def user_trades(request: web.Request) -> web.Response:
    """``GET /fapi/v1/userTrades``: from ``fromId`` or ``startTime`` on, else the last ``limit``."""
    params = params_of(request)
    symbol = symbol_param(request)
    limit = params.limit(500, 1000)
    fills = [f for f in account_of(request).fills if f.symbol == symbol]
    order_id = params.integer("orderId")
    if order_id is not None:
        fills = [f for f in fills if f.order_id == order_id]
    from_id = params.integer("fromId", minimum=0)
    # Read (and so checked) even when fromId decides: a bad time is refused either way.
    start, end = params.integer("startTime", minimum=0), params.integer("endTime", minimum=0)
    if from_id is not None:
        chosen = [f for f in fills if f.trade_id >= from_id][:limit]
    else:
        chosen = window(fills, lambda f: f.time_ms, start=start, end=end, limit=limit)
    return json_response([ser.user_trade(f) for f in chosen])


async def income(request: web.Request) -> web.Response:
    """``GET /fapi/v1/income`` (limit default 100, max 1000)."""
    params = params_of(request)
    symbol = optional_symbol(request)
    kind_text = params.text("incomeType")
    try:
        kind = None if kind_text is None else IncomeType(kind_text)
    except ValueError:
        invalid("incomeType")
    records = [
        r
        for r in account_of(request).income
        if kind in (None, r.income_type) and symbol in (None, r.symbol)
    ]
    chosen = window(
        records,
        lambda r: r.time_ms,
        start=params.integer("startTime", minimum=0),
        end=params.integer("endTime", minimum=0),
        limit=params.limit(100, 1000),
    )
    return json_response([ser.income_json(r) for r in chosen])


async def force_orders(request: web.Request) -> web.Response:
    """``GET /fapi/v1/forceOrders``: the account's liquidation orders, oldest first."""
    engine = engine_of(request)
    params = params_of(request)
    acct = account_of(request)
    symbol = optional_symbol(request)
    close_type = params.text("autoCloseType")
    if close_type not in (None, "LIQUIDATION", "ADL"):
        invalid("autoCloseType")
    # Each liquidation step of the account is one of its liquidation orders, in the same order.
    orders = sorted((r for r in acct.orders.values() if r.liquidation), key=lambda r: r.order_id)
    records = [r for r in engine.liquidator.records if r.account_id == acct.account_id]
    paired = [
        (rec, orders[i] if i < len(orders) else None)
        for i, rec in enumerate(records)
        if symbol in (None, rec.symbol) and close_type != "ADL"
    ]
    chosen = window(
        paired,
        lambda p: p[0].time_ms,
        start=params.integer("startTime", minimum=0),
        end=params.integer("endTime", minimum=0),
        limit=params.limit(50, 100),
    )
    return json_response([ser.force_order_json(rec, order) for rec, order in chosen])


async def liquidation_band(request: web.Request) -> web.Response:
    """``GET /sim/v1/liquidationBand?symbol=`` (sim only)."""
    engine = engine_of(request)
    symbol = symbol_param(request)
    band = engine.liquidator.band(account_of(request), symbol)
    return json_response(ser.band_json(symbol, band))
