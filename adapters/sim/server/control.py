"""The control API under ``/control/`` (PROTOCOL.md "Control API").

Loopback peers with the server's token only (checked by the middleware in
:mod:`adapters.sim.server.app`). Bodies are JSON objects; decimals are JSON strings (or
integers), never floats; bad input answers 400 ``-1102`` (missing/malformed) or ``-1130`` (a
value the simulator refuses). Every reply carries ``now_ms``, the virtual time. Each route does
what the in-process :class:`~adapters.sim.venue.SimControl` method of the same name does.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from aiohttp import web

from adapters.sim import scenarios
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.liquidation import LiquidationRecord
from adapters.sim.engine.scenario import apply_scenario
from adapters.sim.engine.snapshot import SnapshotError
from adapters.sim.engine.snapshot import snapshot as take_snapshot
from adapters.sim.server.auth import Credential, KeyRing
from adapters.sim.server.serialize_account import force_order_json
from adapters.sim.server.state import ENGINE, HUB, INFO, KEYS
from adapters.sim.server.wire import json_response, s
from harness.errors import ConfigError, Rejected
from harness.model import PricePath, Side
from harness.venue import Capability, Faults, RateLimits, StreamFaults

__all__ = [
    "adl",
    "advance",
    "create_account",
    "depth_profile",
    "faults",
    "funding_interval",
    "get_insurance_fund",
    "info",
    "liquidations",
    "price_path",
    "quote_skew",
    "rate_limits",
    "scenario",
    "scenario_list",
    "server_snapshot",
    "set_faults",
    "set_insurance_fund",
    "set_rate_limits",
    "set_stream_faults",
    "snapshot",
    "snapshot_keys",
    "stream_faults",
]


def _missing(name: str) -> NoReturn:
    """Refuse with -1102: a mandatory field is missing, empty or malformed."""
    raise Rejected(-1102, f"Mandatory field '{name}' was not sent, was empty/null, or malformed.")


def _bad(name: str, why: str) -> NoReturn:
    """Refuse with -1130: a field's value is one the simulator does not take."""
    raise Rejected(-1130, f"Data sent for field '{name}' is not valid: {why}.")


_DECODER = json.JSONDecoder(parse_float=Decimal)  # one for all requests


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = _DECODER.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise Rejected(-1102, "The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise Rejected(-1102, "The body must be a JSON object.")
    return body


def _int(body: dict[str, Any], name: str, *, minimum: int = 0) -> int:
    value = body.get(name)
    if value is None:
        _missing(name)
    if isinstance(value, bool) or not isinstance(value, int):
        _bad(name, f"{value!r} is not an integer")
    if value < minimum:
        _bad(name, f"{value} is below {minimum}")
    return value


def _dec(body: dict[str, Any], name: str) -> Decimal:
    """A decimal given as a JSON string or integer (a float is refused: money is exact)."""
    value = body.get(name)
    if value is None:
        _missing(name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        _bad(name, f"{value!r} must be a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        _bad(name, f"{value!r} is not a decimal")
    if not number.is_finite():
        _bad(name, f"{value!r} is not finite")
    return number


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        _missing(name)
    return value


def _symbol(engine: Engine, body: dict[str, Any]) -> str:
    symbol = _str(body, "symbol")
    engine.instrument(symbol)  # -1121 for an unknown symbol
    return symbol


def _query_int(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if not text:
        return None
    if not text.isdigit() or len(text) > 18:
        _bad(name, f"{text!r} is not a non-negative integer")
    return int(text)


def _reply(request: web.Request, **fields: Any) -> web.Response:
    return json_response({**fields, "now_ms": request.app[ENGINE].clock.now_ms()})


async def advance(request: web.Request) -> web.Response:
    """``POST /control/advance {"ms"}``: move virtual time, processing every event."""
    ms = _int(await _body(request), "ms")
    request.app[ENGINE].clock.advance(ms)
    return _reply(request)


async def price_path(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    body = await _body(request)
    symbol = _symbol(engine, body)
    points = body.get("points")
    if not isinstance(points, list) or not points:
        _missing("points")
    parsed = []
    for point in points:
        if not isinstance(point, list) or len(point) != 2:
            _bad("points", 'each point is [offset_ms, "price"]')
        parsed.append((_int({"offset": point[0]}, "offset"), _dec({"price": point[1]}, "price")))
    linear = body.get("linear", False)
    if not isinstance(linear, bool):
        _bad("linear", "must be true or false")
    try:
        path = PricePath(points=tuple(parsed), linear=linear, name=str(body.get("name", "custom")))
    except ValueError as exc:
        _bad("points", str(exc))
    engine.set_price_path(symbol, path)
    return _reply(request)


async def depth_profile(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    body = await _body(request)
    symbol = _symbol(engine, body)
    engine.market_maker.set_profile(symbol, _str(body, "profile"))
    engine.settle()
    return _reply(request)


async def scenario(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    name = _str(await _body(request), "name")
    apply_scenario(engine, scenarios.load(name))
    engine.settle()
    request.app[INFO].scenario = name
    return _reply(request)


async def scenario_list(request: web.Request) -> web.Response:
    rows = [{"name": n, "description": d} for n, d in sorted(scenarios.catalog().items())]
    return _reply(request, scenarios=rows)


async def create_account(request: web.Request) -> web.Response:
    """``POST /control/accounts``: a funded account with its own key (and rate-limit seat)."""
    engine = request.app[ENGINE]
    body = await _body(request)
    wallet = _dec(body, "wallet")
    label = body.get("label", "")
    if not isinstance(label, str):
        _bad("label", "must be a string")
    if wallet < 0:
        _bad("wallet", "must be >= 0")
    acct = engine.create_account(wallet, label)
    keys: KeyRing = request.app[KEYS]
    credential = keys.issue(acct.account_id, seat=acct.account_id)
    return _reply(
        request,
        account_id=acct.account_id,
        api_key=credential.api_key,
        api_secret=credential.secret,
    )


async def get_insurance_fund(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    now = engine.clock.now_ms()
    return _reply(request, asset="USDT", balance=s(engine.insurance.cross_wallet), time_ms=now)


async def set_insurance_fund(request: web.Request) -> web.Response:
    balance = _dec(await _body(request), "balance")
    if balance < 0:
        _bad("balance", "must be >= 0")
    request.app[ENGINE].insurance.cross_wallet = balance
    return _reply(request)


async def funding_interval(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    body = await _body(request)
    symbol = _symbol(engine, body)
    engine.funding.schedule_interval(symbol, _int(body, "hours"), _int(body, "effective_ms"))
    return _reply(request)


async def quote_skew(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    body = await _body(request)
    symbol = _symbol(engine, body)
    engine.market_maker.set_skew(symbol, _dec(body, "bps"))
    engine.settle()
    return _reply(request)


def _filter(request: web.Request, symbol: str, time_ms: int) -> bool:
    wanted = request.query.get("symbol") or None
    since = _query_int(request, "since_ms")
    return wanted in (None, symbol) and (since is None or time_ms >= since)


def _liquidation(rec: LiquidationRecord) -> dict[str, Any]:
    return {"account_id": rec.account_id, **force_order_json(rec, None)}


async def liquidations(request: web.Request) -> web.Response:
    """``GET /control/liquidations``: every account's forced orders (``forceOrders`` rows)."""
    records = request.app[ENGINE].liquidator.records
    rows = [_liquidation(r) for r in records if _filter(request, r.symbol, r.time_ms)]
    return _reply(request, liquidations=rows)


async def adl(request: web.Request) -> web.Response:
    rows = [
        {
            "account_id": r.account_id,
            "symbol": r.symbol,
            "side": r.side,
            "quantity": s(r.quantity),
            "price": s(r.price),
            "time_ms": r.time_ms,
            "rank": s(r.rank),
        }
        for r in request.app[ENGINE].liquidator.adl_records
        if _filter(request, r.symbol, r.time_ms)
    ]
    return _reply(request, adl=rows)


def _limits_json(limits: RateLimits) -> dict[str, Any]:
    return {
        "weight_per_minute": limits.weight_per_minute,
        "orders_per_10s": limits.orders_per_10s,
        "orders_per_minute": limits.orders_per_minute,
        "ban_ms": limits.ban_ms,
    }


async def rate_limits(request: web.Request) -> web.Response:
    return _reply(request, **_limits_json(request.app[ENGINE].gateway.limits))


async def set_rate_limits(request: web.Request) -> web.Response:
    """``POST /control/rate-limits``: fields not given keep their current value."""
    gateway = request.app[ENGINE].gateway
    body = await _body(request)
    current = _limits_json(gateway.limits)
    unknown = sorted(set(body) - set(current))
    if unknown:
        _bad(unknown[0], f"unknown field; known: {', '.join(current)}")
    changed = {name: _int(body, name) for name in body}
    gateway.set_limits(dataclasses.replace(gateway.limits, **changed))
    return _reply(request)


def _faults_json(f: Faults) -> dict[str, Any]:
    deplete = None
    if f.deplete is not None:
        symbol, side, fraction = f.deplete
        deplete = {"symbol": symbol, "side": side.value, "fraction": s(fraction)}
    return {
        "latency_ms": f.latency_ms,
        "lost_ack": f.lost_ack,
        "error_burst": f.error_burst,
        "maintenance": f.maintenance,
        "deplete": deplete,
    }


async def faults(request: web.Request) -> web.Response:
    return _reply(request, **_faults_json(request.app[ENGINE].gateway.faults))


async def set_faults(request: web.Request) -> web.Response:
    """``POST /control/faults``: fields not given keep their value; ``deplete`` acts at once."""
    gateway = request.app[ENGINE].gateway
    body = await _body(request)
    current = gateway.faults
    known = _faults_json(current)
    unknown = sorted(set(body) - set(known))
    if unknown:
        _bad(unknown[0], f"unknown field; known: {', '.join(known)}")
    fields: dict[str, Any] = {
        name: _int(body, name) for name in ("latency_ms", "lost_ack", "error_burst") if name in body
    }
    if "maintenance" in body:
        if not isinstance(body["maintenance"], bool):
            _bad("maintenance", "must be true or false")
        fields["maintenance"] = body["maintenance"]
    deplete = body.get("deplete")
    if deplete is not None:
        if not isinstance(deplete, dict):
            _bad("deplete", 'must be {"symbol", "side", "fraction"}')
        try:
            side = Side(_str(deplete, "side"))
        except ValueError:
            _bad("side", "must be BUY or SELL")
        fields["deplete"] = (_str(deplete, "symbol"), side, _dec(deplete, "fraction"))
    try:
        gateway.set_faults(dataclasses.replace(current, **fields))
    except ConfigError as exc:
        raise Rejected(-1130, str(exc)) from None
    return _reply(request)


def _stream_faults_json(engine: Engine) -> dict[str, Any]:
    state = engine.stream_faults
    f = state.faults
    return {
        "drop_connections": False,  # acts at once (``drops`` counts them)
        "delay_ms": f.delay_ms,
        "reorder": f.reorder,
        "gap_symbol": f.gap_symbol,
        "drops": state.drops,
    }


async def stream_faults(request: web.Request) -> web.Response:
    """``GET /control/stream-faults``: the faults last set on the WebSocket streams."""
    return _reply(request, **_stream_faults_json(request.app[ENGINE]))


async def set_stream_faults(request: web.Request) -> web.Response:
    """``POST /control/stream-faults``: any subset of the fields.

    ``delay_ms`` keeps its value when not given; the one-shot faults (``drop_connections``,
    ``reorder``, ``gap_symbol``) act only when given (PROTOCOL.md "Streams").
    """
    engine = request.app[ENGINE]
    body = await _body(request)
    known = ("drop_connections", "delay_ms", "reorder", "gap_symbol")
    unknown = sorted(set(body) - set(known))
    if unknown:
        _bad(unknown[0], f"unknown field; known: {', '.join(known)}")
    drop = body.get("drop_connections", False)
    if not isinstance(drop, bool):
        _bad("drop_connections", "must be true or false")
    delay = _int(body, "delay_ms") if "delay_ms" in body else engine.stream_faults.faults.delay_ms
    reorder = _int(body, "reorder") if "reorder" in body else 0
    gap = body.get("gap_symbol")
    if gap is not None:
        if not isinstance(gap, str) or not gap:
            _bad("gap_symbol", "must be a symbol or null")
        engine.instrument(gap)  # -1121 for an unknown symbol
    faults = StreamFaults(drop_connections=drop, delay_ms=delay, reorder=reorder, gap_symbol=gap)
    try:
        engine.stream_faults.set(faults)
    except ValueError as exc:
        raise Rejected(-1130, str(exc)) from None
    request.app[HUB].tick()  # delay switched off: what it held goes out now
    return _reply(request)


async def info(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    server = request.app[INFO]
    return _reply(
        request,
        seed=engine.config.seed,
        defects=sorted(engine.defects),
        scenario=server.scenario,
        capabilities=sorted(c.value for c in Capability),
        version=server.version,
    )


# ---------------------------------------------------------------------- snapshots
SNAPSHOT_TYPE = "application/vnd.perpcheck.snapshot"


def server_snapshot(engine: Engine, keys: KeyRing, scenario: str | None) -> bytes:
    """The engine's snapshot (adapters/sim/engine/snapshot.py) with what the server adds: its
    API keys (so clients keep their credentials across a restart) and the scenario's name.
    """
    rows = [[c.api_key, c.secret, c.account_id, c.seat] for c in keys.credentials()]
    return take_snapshot(engine, extra={"keys": rows, "scenario": scenario})


def snapshot_keys(extra: Any) -> tuple[KeyRing, Credential, str | None]:
    """The key ring, the first account's credential and the scenario of a server snapshot.

    Raises:
        SnapshotError: the snapshot is not a server's (no keys, or malformed ones).
    """
    rows = extra.get("keys") if isinstance(extra, dict) else None
    scenario = extra.get("scenario") if isinstance(extra, dict) else None
    if not isinstance(rows, list) or not rows or not isinstance(scenario, str | None):
        msg = "not a server snapshot: it holds no API keys (take it with POST /control/snapshot)"
        raise SnapshotError(msg)
    keys = KeyRing()
    try:
        added = [keys.add(Credential(*row)) for row in rows]
    except (TypeError, ValueError) as exc:
        msg = f"corrupt server snapshot: bad API key row ({exc})"
        raise SnapshotError(msg) from None
    first = next((c for c in added if c.seat is None), added[0])
    return keys, first, scenario


async def snapshot(request: web.Request) -> web.Response:
    """``POST /control/snapshot``: the whole simulator state as a snapshot file (binary body).

    ``perpcheck serve --restore FILE`` starts a server from it: same market, accounts, orders,
    keys and virtual time; WebSocket connections and listen keys are not carried. The file holds
    the accounts' API secrets.
    """
    app = request.app
    data = server_snapshot(app[ENGINE], app[KEYS], app[INFO].scenario)
    now = app[ENGINE].clock.now_ms()
    return web.Response(
        body=data,
        content_type=SNAPSHOT_TYPE,
        headers={"X-SIM-SNAPSHOT-TIME": str(now), "Cache-Control": "no-store"},
    )
