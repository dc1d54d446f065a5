"""Order endpoints (binance-usdm-surface.md §2.4): place, query, cancel, list.

``POST /fapi/v1/order`` takes ``symbol, side, type, quantity, price, timeInForce, reduceOnly,
newClientOrderId, positionSide, newOrderRespType`` as ccxt and the connectors send them (§6);
parameter refusals use Binance's codes (-1102 missing, -1117 side, -1116 type, -1115
timeInForce, -1106 a price on a market order, -4061 a hedge-mode position side), then the
engine's filters answer with theirs. Stop and take-profit orders (``/fapi/v1/algoOrder``) are
not simulated: 400 -1116 ``Invalid orderType.``

The ``lost_ack`` fault (PROTOCOL.md "Faults") is taken here: the order executes, then
:class:`~adapters.sim.server.wire.LostAck` makes the server close the connection unanswered.
"""

from __future__ import annotations

from aiohttp import web

from adapters.sim.engine.accounts import OrderRecord
from adapters.sim.engine.gateway import INTERNAL_ERROR, Ack
from adapters.sim.server.params import invalid
from adapters.sim.server.serialize_account import order_json
from adapters.sim.server.state import (
    CREDENTIAL,
    account_of,
    engine_of,
    optional_symbol,
    params_of,
    symbol_param,
)
from adapters.sim.server.wire import LostAck, json_response
from harness.errors import Rejected, Unavailable
from harness.model import ClientOrderId, OrderRequest, OrderType, Side, TimeInForce

__all__ = [
    "all_orders",
    "cancel_all",
    "cancel_order",
    "get_order",
    "new_order",
    "open_order",
    "open_orders",
    "unsupported_algo",
]

OPEN = ("NEW", "PARTIALLY_FILLED")
# Value -> member (a dict lookup is several times cheaper than calling the enum class).
_SIDES = {m.value: m for m in Side}
_TYPES = {m.value: m for m in OrderType}
_TIFS = {m.value: m for m in TimeInForce}


def _order_request(request: web.Request, symbol: str) -> OrderRequest:
    params = params_of(request)
    side = _SIDES.get(params.require("side"))
    if side is None:
        raise Rejected(-1117, "Invalid side.")
    kind = _TYPES.get(params.require("type"))
    if kind is None:
        raise Rejected(-1116, "Invalid orderType.")
    quantity = params.decimal("quantity", required=True)
    assert quantity is not None  # noqa: S101 - required
    position_side = params.text("positionSide")
    if position_side in ("LONG", "SHORT"):
        raise Rejected(-4061, "Order's position side does not match user's setting.")
    if position_side not in (None, "BOTH"):
        invalid("positionSide")
    if params.text("newOrderRespType") not in (None, "ACK", "RESULT"):
        invalid("newOrderRespType")
    if params.boolean("closePosition"):
        raise Rejected(-1106, "Parameter 'closePosition' sent when not required.")
    if params.text("priceMatch") not in (None, "NONE"):
        invalid("priceMatch")
    price = params.decimal("price")
    tif: TimeInForce | None = None
    if kind is OrderType.LIMIT:
        if price is None:
            params.require("price")  # raises -1102
        tif = _TIFS.get(params.require("timeInForce"))
        if tif is None:
            raise Rejected(-1115, "Invalid timeInForce.")
    elif price is not None:
        raise Rejected(-1106, "Parameter 'price' sent when not required.")
    cid = params.text("newClientOrderId")
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=kind,
        quantity=quantity,
        price=price,
        time_in_force=tif,
        reduce_only=params.boolean("reduceOnly"),
        client_order_id=None if cid is None else ClientOrderId(cid),
    )


async def new_order(request: web.Request) -> web.Response:
    """``POST /fapi/v1/order`` (0 IP weight, one on each order window)."""
    engine = engine_of(request)
    symbol = symbol_param(request)
    order = _order_request(request, symbol)
    account_id = request[CREDENTIAL].account_id
    rec = engine.place_order(account_id, order)
    ack = engine.gateway.acknowledge(account_id, rec)
    if ack is Ack.LOST:
        raise LostAck
    if ack is Ack.UNAVAILABLE:
        raise Unavailable(INTERNAL_ERROR)
    return json_response(order_json(rec))


def _lookup(request: web.Request) -> tuple[int | None, str | None]:
    params = params_of(request)
    order_id = params.integer("orderId")
    client_id = params.text("origClientOrderId")
    if order_id is None and client_id is None:
        raise Rejected(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    return order_id, client_id


async def get_order(request: web.Request) -> web.Response:
    engine = engine_of(request)
    symbol = symbol_param(request)
    order_id, client_id = _lookup(request)
    rec = engine.get_order(request[CREDENTIAL].account_id, symbol, order_id, client_id)
    return json_response(order_json(rec, with_time=True))


async def cancel_order(request: web.Request) -> web.Response:
    engine = engine_of(request)
    symbol = symbol_param(request)
    order_id, client_id = _lookup(request)
    rec = engine.cancel_order(request[CREDENTIAL].account_id, symbol, order_id, client_id)
    return json_response(order_json(rec))


async def open_order(request: web.Request) -> web.Response:
    """``GET /fapi/v1/openOrder``: one open order; filled or cancelled: -2013."""
    engine = engine_of(request)
    symbol = symbol_param(request)
    order_id, client_id = _lookup(request)
    rec = engine.get_order(request[CREDENTIAL].account_id, symbol, order_id, client_id)
    if rec.status not in OPEN:
        raise Rejected(-2013, "Order does not exist.")
    return json_response(order_json(rec, with_time=True))


def _orders(request: web.Request, symbol: str | None) -> list[OrderRecord]:
    return [r for r in account_of(request).orders.values() if symbol in (None, r.symbol)]


async def open_orders(request: web.Request) -> web.Response:
    symbol = optional_symbol(request)
    rows = [r for r in _orders(request, symbol) if r.status in OPEN]
    return json_response([order_json(r, with_time=True) for r in rows])


async def all_orders(request: web.Request) -> web.Response:
    """``GET /fapi/v1/allOrders``: from ``orderId`` on, else the most recent ``limit``."""
    params = params_of(request)
    symbol = symbol_param(request)
    limit = params.limit(500, 1000)
    rows = _orders(request, symbol)
    start, end = params.integer("startTime", minimum=0), params.integer("endTime", minimum=0)
    rows = [
        r
        for r in rows
        if (start is None or r.time_ms >= start) and (end is None or r.time_ms <= end)
    ]
    from_id = params.integer("orderId", minimum=0)
    if from_id is not None:
        rows = [r for r in rows if r.order_id >= from_id][:limit]
    else:
        rows = rows[-limit:]
    return json_response([order_json(r, with_time=True) for r in rows])


async def cancel_all(request: web.Request) -> web.Response:
    engine = engine_of(request)
    symbol = symbol_param(request)
    engine.cancel_all(request[CREDENTIAL].account_id, symbol)
    return json_response({"code": 200, "msg": "The operation of cancel all open order is done."})


async def unsupported_algo(request: web.Request) -> web.Response:
    """``/fapi/v1/algoOrder`` and ``openAlgoOrders``: no conditional orders in the simulator."""
    raise Rejected(-1116, "Invalid orderType.")
