"""The concentration and cascade-lab control endpoints (PROTOCOL.md "Concentration and cascades").

``GET /control/concentration`` one account's concentration and size advice
(``READ_CONCENTRATION``); ``GET /control/population`` every account's wallets and positions, or a
scenario population's (``READ_POPULATION``); ``GET``/``POST /control/liquidation-latency`` the
liquidation engine's latency (``CONTROL_LIQUIDATION_LATENCY``). Token-gated like every
``/control/`` route; bad input answers 400 ``-1102`` (missing) or ``-1130`` (refused), an unknown
symbol ``-1121``. Each route does what the in-process venue's method of the same purpose does
(adapters/sim/venue.py). Positions are ``positionRisk`` v2 rows (the Binance shape the ccxt
adapter already decodes); decimals are strings.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from adapters.sim.engine.cascade import population as population_of
from adapters.sim.server.control import _bad, _body, _int, _missing, _reply
from adapters.sim.server.serialize_account import position_rows
from adapters.sim.server.state import ENGINE
from adapters.sim.server.wire import s
from harness.concentration import Concentration, ConcentrationThresholds
from harness.model import Side

__all__ = [
    "concentration_json",
    "get_concentration",
    "get_liquidation_latency",
    "get_population",
    "set_liquidation_latency",
    "thresholds_json",
]


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else s(value)


def thresholds_json(t: ConcentrationThresholds) -> dict[str, str]:
    return {
        "oi_notice": s(t.oi_notice),
        "oi_warning": s(t.oi_warning),
        "oi_critical": s(t.oi_critical),
        "depth_notice": s(t.depth_notice),
        "depth_warning": s(t.depth_warning),
        "depth_critical": s(t.depth_critical),
    }


def concentration_json(c: Concentration) -> dict[str, Any]:
    a = c.advice
    return {
        "account_id": c.account_id,
        "symbol": c.symbol,
        "quantity": s(c.quantity),
        "mark_price": s(c.mark_price),
        "liquidation_price": _opt(c.liquidation_price),
        "open_interest": s(c.open_interest),
        "oi_share": s(c.oi_share),
        "band_depth": s(c.band_depth),
        "depth_share": _opt(c.depth_share),
        "oi_level": c.oi_level.value,
        "depth_level": c.depth_level.value,
        "level": c.level.value,
        "time_ms": c.time_ms,
        "thresholds": thresholds_json(c.thresholds),
        "advice": {
            "side": a.side.value,
            "budget_bps": s(a.budget_bps),
            "max_qty": s(a.max_qty),
            "reference_price": _opt(a.reference_price),
            "slippage_bps": s(a.slippage_bps),
            "depth_qty": s(a.depth_qty),
        },
    }


def _query_decimal(request: web.Request, name: str, default: Decimal) -> Decimal:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = Decimal(text)
    except InvalidOperation:
        _bad(name, f"{text!r} is not a decimal")
    if not value.is_finite() or value < 0:
        _bad(name, f"{text!r} must be a finite number >= 0")
    return value


async def get_concentration(request: web.Request) -> web.Response:
    """``GET /control/concentration?account_id=&symbol=[&side=BUY|SELL][&budget_bps=10]``."""
    engine = request.app[ENGINE]
    account_id = request.query.get("account_id") or ""
    if not account_id:
        _missing("account_id")
    symbol = request.query.get("symbol") or ""
    if not symbol:
        _missing("symbol")
    engine.instrument(symbol)  # -1121 for an unknown symbol
    if account_id not in engine.accounts:
        _bad("account_id", f"{account_id!r} is not an account of this venue")
    side_text = request.query.get("side")
    side: Side | None = None
    if side_text:
        try:
            side = Side(side_text)
        except ValueError:
            _bad("side", "must be BUY or SELL")
    budget = _query_decimal(request, "budget_bps", Decimal(10))
    report = engine.concentration.report(account_id, symbol, side=side, budget_bps=budget)
    return _reply(request, concentration=concentration_json(report))


async def get_population(request: web.Request) -> web.Response:
    """``GET /control/population[?name=]``: accounts with wallets and positionRisk v2 rows."""
    engine = request.app[ENGINE]
    name = request.query.get("name") or None
    rows = []
    for exposure in population_of(engine, name):
        acct = engine.accounts[exposure.account_id]
        symbols = [p.symbol for p in exposure.positions]
        rows.append(
            {
                "account_id": exposure.account_id,
                "label": exposure.label,
                "exempt": exposure.exempt,
                "wallet_balance": s(exposure.wallet_balance),
                "cross_wallet_balance": s(exposure.cross_wallet_balance),
                "positions": [
                    row
                    for symbol in symbols
                    for row in position_rows(engine, acct, symbol, version=2)
                ],
            }
        )
    return _reply(request, accounts=rows)


async def get_liquidation_latency(request: web.Request) -> web.Response:
    """``GET /control/liquidation-latency``: ``{"ms", "pending"}``."""
    latency = request.app[ENGINE].liquidation_latency
    return _reply(request, ms=latency.latency_ms, pending=latency.pending)


async def set_liquidation_latency(request: web.Request) -> web.Response:
    """``POST /control/liquidation-latency {"ms"}``."""
    ms = _int(await _body(request), "ms")
    request.app[ENGINE].liquidation_latency.set(ms)  # ConfigError -> 400 -1130
    return _reply(request, ms=ms)
