"""The parameter controller's control endpoints (PROTOCOL.md "Parameters").

``GET /control/params?symbol=`` the symbol's :class:`~harness.params.ParamState`;
``POST /control/params`` switches the controller on or off and plugs an advisor;
``POST /control/param-signal`` fixes (or releases) one input; ``GET /control/param-audit``
the audit log (``since_ms``, ``symbol`` filter it). Token-gated like every ``/control/`` route;
bad input answers 400 ``-1102``/``-1130``, an unknown symbol ``-1121``. Each route does what the
in-process venue's method of the same purpose does (adapters/sim/venue.py).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from adapters.sim.server.control import (
    _bad,
    _body,
    _missing,
    _query_int,
    _reply,
    _str,
    _symbol,
)
from adapters.sim.server.state import ENGINE

__all__ = ["get_param_audit", "get_params", "set_param_signal", "set_params"]


def _any_decimal(name: str, value: Any) -> Decimal:
    """A decimal string (``NaN``, ``Infinity`` allowed: advisors may answer them) or integer."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        _bad(name, f"{value!r} must be a decimal string")
    try:
        return Decimal(value)
    except InvalidOperation:
        _bad(name, f"{value!r} is not a decimal")


def _script(raw: Any) -> list[dict[str, Decimal]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        _bad("script", "must be a list of {parameter: value} objects")
    steps = []
    for i, step in enumerate(raw):
        if not isinstance(step, dict):
            _bad("script", f"step {i} must be an object of parameter -> decimal string")
        steps.append({str(k): _any_decimal(f"script[{i}].{k}", v) for k, v in step.items()})
    return steps


async def get_params(request: web.Request) -> web.Response:
    """``GET /control/params?symbol=``: values, specs, announcements, last inputs."""
    engine = request.app[ENGINE]
    symbol = request.query.get("symbol") or ""
    if not symbol:
        _missing("symbol")
    engine.instrument(symbol)
    return _reply(request, state=engine.params.state(symbol).to_json())


async def set_params(request: web.Request) -> web.Response:
    """``POST /control/params {"symbol", "enabled"?, "advisor"?, "script"?}``."""
    engine = request.app[ENGINE]
    body = await _body(request)
    symbol = _symbol(engine, body)
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        _bad("enabled", "must be true or false")
    advisor = _str(body, "advisor") if "advisor" in body else "default"
    engine.params.configure(
        symbol, enabled=enabled, advisor=advisor, script=_script(body.get("script"))
    )
    return _reply(request)


async def set_param_signal(request: web.Request) -> web.Response:
    """``POST /control/param-signal {"symbol", "signal", "value"}`` (``null`` releases it)."""
    engine = request.app[ENGINE]
    body = await _body(request)
    symbol = _symbol(engine, body)
    signal = _str(body, "signal")
    if "value" not in body:
        _missing("value")
    raw = body["value"]
    value = None if raw is None else _any_decimal("value", raw)
    engine.params.set_signal(symbol, signal, value)
    return _reply(request)


async def get_param_audit(request: web.Request) -> web.Response:
    """``GET /control/param-audit?since_ms=&symbol=``: the audit log, oldest first."""
    engine = request.app[ENGINE]
    symbol = request.query.get("symbol") or None
    if symbol is not None:
        engine.instrument(symbol)
    entries = engine.params.audit(_query_int(request, "since_ms"), symbol)
    return _reply(request, entries=[e.to_json() for e in entries])
