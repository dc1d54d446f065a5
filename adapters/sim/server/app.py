"""The simulator as a Binance USDⓈ-M venue over HTTP: the app factory and its route table.

:data:`ROUTES` is the whole surface (PROTOCOL.md): Binance's ``/fapi`` endpoints
(binance-usdm-surface.md §7), its WebSocket streams (:mod:`adapters.sim.server.streams`), the
sim-only ``/sim/v1`` endpoints, the ``/control`` API, and ``/openapi.json``, the OpenAPI
description of the ``/fapi`` and ``/sim`` routes (:mod:`adapters.sim.server.openapi`). Three
stages wrap every handler, in one middleware (:func:`errors`; a middleware per stage costs a
coroutine frame and a call through aiohttp's chain each, on every request):

* :func:`errors` (outermost): nothing escapes as a 500 or as HTML. Binance refusals become
  ``{code, msg}`` with Binance's status (400, 401 for keys, 429/418 with ``Retry-After``, 503
  ``-1001`` for the deliberate faults); an unknown route is 404 ``-1099``, a wrong method 405
  ``-1099``; an unexpected exception is logged and answered 400 ``-1000``. Every response
  carries ``X-SIM-TIME`` (virtual ms) and, for venue requests, ``X-MBX-USED-WEIGHT-1M`` (and the
  order counts on order placements).
* pump: after the handler, the stream hub's ``tick`` (virtual time may have moved:
  listen keys expire, delayed stream frames go out).
* :func:`gate`: for a ``/fapi`` or ``/sim`` route, parse the parameters, pass the engine's
  :class:`~adapters.sim.engine.gateway.Gateway` (ban, faults, weight), authenticate a signed
  request, count an order placement, apply the latency fault; for ``/control``, check the peer
  and the token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.gateway import ENDPOINTS
from adapters.sim.server import (
    account,
    alerts,
    control,
    listen_keys,
    market,
    openapi,
    streams,
    trading,
)
from adapters.sim.server.auth import API_KEY_HEADER, KeyRing, authenticate, check_control
from adapters.sim.server.cascade_control import (
    get_concentration,
    get_liquidation_latency,
    get_population,
    set_liquidation_latency,
)
from adapters.sim.server.openapi import MAX_BODY_BYTES
from adapters.sim.server.param_control import (
    get_param_audit,
    get_params,
    set_param_signal,
    set_params,
)
from adapters.sim.server.params import UNREADABLE, read_request
from adapters.sim.server.state import (
    CLIENT,
    CREDENTIAL,
    ENGINE,
    HUB,
    INFO,
    KEYS,
    PARAMS,
    TOKEN,
    USAGE,
    WALL,
    ServerInfo,
)
from adapters.sim.server.wire import LostAck, Refused, error_response
from adapters.sim.venue import SIM_VERSION
from harness.clock import Clock, WallClock
from harness.errors import Banned, ConfigError, RateLimited, Rejected, Unavailable
from harness.venue import RateUsage

__all__ = ["ROUTES", "create_app"]

log = logging.getLogger("perpcheck.sim.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AUTH_CODES = frozenset({-2014, -2015, -1002})
INTERNAL_ERROR = "Internal error; unable to process your request. Please try again."
MAX_LINE_BYTES = 65_536  # request line and header lines (aiohttp's default is 8190)


def _get(path: str, handler: Handler) -> web.RouteDef:
    return web.get(path, handler, allow_head=False)


ROUTES: list[web.RouteDef] = [
    # Binance public market data (surface doc §2.1, §2.2)
    _get("/fapi/v1/ping", market.ping),
    _get("/fapi/v1/time", market.server_time),
    _get("/fapi/v1/exchangeInfo", market.exchange_info),
    _get("/fapi/v1/depth", market.depth),
    _get("/fapi/v1/ticker/24hr", market.ticker_24hr),
    _get("/fapi/v1/ticker/bookTicker", market.book_ticker),
    _get("/fapi/v1/ticker/price", market.price_ticker),
    _get("/fapi/v2/ticker/price", market.price_ticker),
    _get("/fapi/v1/premiumIndex", market.premium_index),
    _get("/fapi/v1/fundingRate", market.funding_rate),
    _get("/fapi/v1/fundingInfo", market.funding_info),
    _get("/fapi/v1/klines", market.klines),
    _get("/fapi/v1/aggTrades", market.agg_trades),
    _get("/fapi/v1/trades", market.trades),
    # Binance signed: account, positions, settings (§2.3)
    _get("/fapi/v2/account", account.account_info),
    _get("/fapi/v3/account", account.account_info),
    _get("/fapi/v2/balance", account.balance),
    _get("/fapi/v3/balance", account.balance),
    _get("/fapi/v2/positionRisk", account.position_risk),
    _get("/fapi/v3/positionRisk", account.position_risk),
    _get("/fapi/v1/leverageBracket", account.leverage_bracket),
    web.post("/fapi/v1/leverage", account.set_leverage),
    web.post("/fapi/v1/marginType", account.set_margin_type),
    _get("/fapi/v1/positionSide/dual", account.position_mode),
    web.post("/fapi/v1/positionSide/dual", account.set_position_mode),
    _get("/fapi/v1/symbolConfig", account.symbol_config),
    web.post("/fapi/v1/positionMargin", account.position_margin),
    _get("/fapi/v1/commissionRate", account.commission_rate),
    _get("/fapi/v1/userTrades", account.user_trades),
    _get("/fapi/v1/income", account.income),
    _get("/fapi/v1/forceOrders", account.force_orders),
    # Binance signed: orders (§2.4); conditional orders are refused (-1116)
    web.post("/fapi/v1/order", trading.new_order),
    _get("/fapi/v1/order", trading.get_order),
    web.delete("/fapi/v1/order", trading.cancel_order),
    _get("/fapi/v1/openOrders", trading.open_orders),
    _get("/fapi/v1/openOrder", trading.open_order),
    _get("/fapi/v1/allOrders", trading.all_orders),
    web.delete("/fapi/v1/allOpenOrders", trading.cancel_all),
    web.post("/fapi/v1/algoOrder", trading.unsupported_algo),
    _get("/fapi/v1/algoOrder", trading.unsupported_algo),
    web.delete("/fapi/v1/algoOrder", trading.unsupported_algo),
    _get("/fapi/v1/openAlgoOrders", trading.unsupported_algo),
    # Binance user-data stream keys (USER_STREAM: API key, no signature)
    web.post("/fapi/v1/listenKey", listen_keys.new_listen_key),
    web.put("/fapi/v1/listenKey", listen_keys.keepalive_listen_key),
    web.delete("/fapi/v1/listenKey", listen_keys.close_listen_key),
    # Sim-only, signed like /fapi
    _get("/sim/v1/liquidationBand", account.liquidation_band),
    # The OpenAPI description of the /fapi and /sim routes above (public, not charged)
    _get("/openapi.json", openapi.openapi_json),
    # WebSocket streams (PROTOCOL.md "Streams"): raw /ws, combined /stream, under Binance's
    # /public, /market and /private prefixes too (aliases: every stream is served on each)
    *(
        route
        for prefix in ("", "/public", "/market", "/private")
        for route in (
            _get(f"{prefix}/ws", streams.raw_stream),
            _get(f"{prefix}/ws/{{name}}", streams.raw_stream),
            _get(f"{prefix}/stream", streams.combined_stream),
        )
    ),
    # Control API: loopback peers with the token
    web.post("/control/advance", control.advance),
    web.post("/control/price-path", control.price_path),
    web.post("/control/depth-profile", control.depth_profile),
    web.post("/control/scenario", control.scenario),
    _get("/control/scenarios", control.scenario_list),
    web.post("/control/accounts", control.create_account),
    _get("/control/insurance-fund", control.get_insurance_fund),
    web.post("/control/insurance-fund", control.set_insurance_fund),
    web.post("/control/funding-interval", control.funding_interval),
    web.post("/control/quote-skew", control.quote_skew),
    _get("/control/liquidations", control.liquidations),
    _get("/control/adl", control.adl),
    _get("/control/rate-limits", control.rate_limits),
    web.post("/control/rate-limits", control.set_rate_limits),
    _get("/control/faults", control.faults),
    web.post("/control/faults", control.set_faults),
    _get("/control/stream-faults", control.stream_faults),
    web.post("/control/stream-faults", control.set_stream_faults),
    _get("/control/info", control.info),
    web.post("/control/snapshot", control.snapshot),
    _get("/control/params", get_params),
    web.post("/control/params", set_params),
    web.post("/control/param-signal", set_param_signal),
    _get("/control/param-audit", get_param_audit),
    _get("/control/concentration", get_concentration),
    _get("/control/population", get_population),
    _get("/control/liquidation-latency", get_liquidation_latency),
    web.post("/control/liquidation-latency", set_liquidation_latency),
    _get("/control/alerts", alerts.alerts),
]


def _stamp(request: web.Request, response: web.StreamResponse) -> None:
    if response.prepared:  # a WebSocket: its handshake went out long ago
        return
    engine = request.app[ENGINE]
    response.headers["X-SIM-TIME"] = str(engine.clock.now_ms())
    client = request.get(CLIENT)
    if client is None:
        return
    usage: RateUsage | None = request.get(USAGE)
    if usage is None:
        credential = request.get(CREDENTIAL)
        placing = request.method == "POST" and request.path == "/fapi/v1/order"
        account_id = credential.account_id if credential is not None and placing else None
        usage = engine.gateway.usage(client, account_id)
    response.headers["X-MBX-USED-WEIGHT-1M"] = str(usage.used_weight_1m or 0)
    if usage.order_count_10s is not None:
        response.headers["X-MBX-ORDER-COUNT-10S"] = str(usage.order_count_10s)
        response.headers["X-MBX-ORDER-COUNT-1M"] = str(usage.order_count_1m or 0)


def _retry(response: web.Response, seconds: object) -> web.Response:
    if seconds is not None:
        response.headers["Retry-After"] = str(seconds)
    return response


def _http_error(exc: web.HTTPException) -> web.Response:
    if exc.status == 404:
        return error_response(-1099, "Not found: no such endpoint.", 404)
    if exc.status == 405:
        response = error_response(-1099, "Method not allowed for this endpoint.", 405)
        if "Allow" in exc.headers:  # RFC 9110: a 405 names the methods the path takes
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    if exc.status == 413:  # a body over client_max_size: too many parameters to read
        return error_response(
            -1101, f"Request body too large; at most {MAX_BODY_BYTES} bytes.", 413
        )
    status = exc.status if 400 <= exc.status < 500 else 400
    return error_response(-1000, exc.reason or "Bad request.", status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every outcome as Binance JSON with its status; never a 500 (module docstring).

    Inside it, the pump stage, then :func:`gate`.
    """
    try:
        try:
            response = await gate(request, handler)
        finally:
            request.app[HUB].tick()  # the pump stage
    except LostAck:
        # The lost_ack fault: the order executed; close the connection so no answer leaves.
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=204)
    except Banned as exc:
        response = _retry(error_response(exc.code or -1003, str(exc), 418), exc.retry_after)
    except RateLimited as exc:
        response = _retry(error_response(exc.code or -1003, str(exc), 429), exc.retry_after)
    except Unavailable:
        response = error_response(-1001, INTERNAL_ERROR, 503)
    except Rejected as exc:
        response = error_response(exc.code, exc.msg, 401 if exc.code in AUTH_CODES else 400)
    except Refused as exc:
        response = error_response(exc.code, exc.msg, exc.status)
    except ConfigError as exc:
        response = error_response(-1130, str(exc), 400)
    except web.HTTPException as exc:
        response = _http_error(exc)
    except Exception:  # the error middleware's job: nothing escapes as a 500
        log.exception("unexpected error serving %s %s", request.method, request.path)
        response = error_response(
            -1000, "An unknown error occured while processing the request.", 400
        )
    if request.get(UNREADABLE):
        response.force_close()  # say so: the connection cannot carry another request
    _stamp(request, response)
    return response


async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The venue's front door for /fapi and /sim routes; the control API's gate."""
    info = request.match_info
    if info.http_exception is not None:
        return await handler(request)
    canonical = info.route.resource.canonical if info.route.resource is not None else ""
    if canonical.startswith("/control/"):
        check_control(request, request.app[TOKEN])
        return await handler(request)
    endpoint = ENDPOINTS.get((request.method, canonical))
    if endpoint is None:
        return await handler(request)
    gateway = request.app[ENGINE].gateway
    keys = request.app[KEYS]
    named = keys.get(request.headers.get(API_KEY_HEADER))
    client = named.seat if named is not None and named.seat else (request.remote or "unknown")
    request[CLIENT] = client
    raw = await read_request(request)
    request[PARAMS] = raw.params
    cost = endpoint.cost(raw.params)
    request[USAGE] = gateway.enter(client, cost)
    if endpoint.signed:
        wall = request.app[WALL].now_ms()
        credential = authenticate(raw, request.headers.get(API_KEY_HEADER), keys, wall)
        request[CREDENTIAL] = credential
        if endpoint.orders:
            del request[USAGE]  # a refused order is stamped with the counts it saw
            request[USAGE] = gateway.enter_order(client, credential.account_id)
        gateway.delay(cost)
    return await handler(request)


def create_app(
    engine: Engine,
    *,
    keys: KeyRing,
    control_token: str,
    wall_clock: Clock | None = None,
    info: ServerInfo | None = None,
) -> web.Application:
    """The HTTP venue over ``engine`` (which keeps running on its own virtual clock).

    Args:
        engine: the simulated exchange; its gateway is shared with any in-process venue.
        keys: API keys and the accounts they act on (``POST /control/accounts`` adds more).
        control_token: the ``X-PERPCHECK-TOKEN`` the control API requires.
        wall_clock: the clock request timestamps are checked against (default: the real time).
        info: what ``GET /control/info`` reports.
    """
    app = web.Application(
        middlewares=[errors],  # with pump and gate inside (module docstring)
        client_max_size=MAX_BODY_BYTES,
        # Long query strings and API keys reach the venue (-1101, -2014) instead of the HTTP
        # parser's plain-text 400 at 8190 bytes.
        handler_args={"max_line_size": MAX_LINE_BYTES, "max_field_size": MAX_LINE_BYTES},
    )
    app[ENGINE] = engine
    app[KEYS] = keys
    app[TOKEN] = control_token
    app[WALL] = wall_clock or WallClock()
    app[INFO] = info or ServerInfo(version=SIM_VERSION)
    app[HUB] = streams.StreamHub(engine)
    app.on_shutdown.append(_close_streams)
    app.add_routes(ROUTES)
    return app


async def _close_streams(app: web.Application) -> None:
    await app[HUB].shutdown()
