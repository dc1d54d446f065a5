"""The parameter table of the Binance surface the server serves (``/fapi`` and ``/sim`` routes).

One :class:`Operation` per ``(method, path)`` of the route table (:data:`~adapters.sim.server.app.
ROUTES`): the parameters each handler reads, with their wire type, whether they are required,
the values taken and the code a value outside them gets, and the refusals only that endpoint
gives. :mod:`adapters.sim.server.openapi` turns it, with the route table and the gateway's
:data:`~adapters.sim.engine.gateway.ENDPOINTS` (weights, which endpoints are signed), into the
OpenAPI description served at ``GET /openapi.json``; the fuzz tests (``tests/fuzz``) build their
requests and expected codes from it. A test keeps the table and the route table identical.

Codes that come from reading parameters at all (binance-usdm-surface.md §4, PROTOCOL.md
"Errors") are derived, not listed: -1100/-1101 for every endpoint, -1102 where something is
required or an integer is read, -1130 for values outside a range or a set, -1121 where a symbol
is read, and the signing refusals (-2014/-2015, -1102, -1131, -1022, -1021) of signed endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from adapters.sim.server.serialize_market import KLINE_INTERVALS
from harness.model import IncomeType

__all__ = [
    "CLIENT_ID_PATTERN",
    "OPERATIONS",
    "Kind",
    "Operation",
    "Param",
    "Shape",
]

CLIENT_ID_PATTERN = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"  # engine/orders.py, Binance's newClientOrderId


class Kind(Enum):
    """How a parameter is read (params.py) and what a malformed value gets."""

    SYMBOL = "symbol"  # a listed symbol; anything else -1121
    INTEGER = "integer"  # ^-?[0-9]{1,19}$; malformed -1102, outside [minimum, maximum] -1130
    DECIMAL = "decimal"  # ^([0-9]{1,20})(\.[0-9]{1,20})?$; anything else -1100
    BOOLEAN = "boolean"  # true/false in any case; anything else -1130
    ENUM = "enum"  # one of ``values``; anything else ``invalid_code``
    TEXT = "text"  # any text (``pattern`` documents what the engine takes)


class Shape(Enum):
    """What a 200 answer is."""

    OBJECT = "object"
    ARRAY = "array"
    EITHER = "object or array"  # one symbol: an object; no symbol: an array of every symbol


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter an endpoint reads."""

    name: str
    kind: Kind
    required: bool = False
    values: tuple[str, ...] = ()  # ENUM: the values taken (case-insensitive if ``any_case``)
    invalid_code: int = -1130  # ENUM/BOOLEAN: the code of a value outside ``values``
    any_case: bool = False
    refused: tuple[tuple[str, int], ...] = ()  # values read but refused with their own code
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    description: str = ""

    @property
    def bad_format_code(self) -> int | None:
        """The code of a value that cannot be read as this kind at all (None: any text reads)."""
        return {Kind.INTEGER: -1102, Kind.DECIMAL: -1100}.get(self.kind)


@dataclass(frozen=True, slots=True)
class Operation:
    """One endpoint: what it does, reads, answers, and refuses on its own account."""

    summary: str
    tag: str
    shape: Shape
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()  # endpoint-specific refusals (400), besides the derived ones
    one_of: tuple[str, ...] = ()  # at least one of these must be sent (-1102)
    api_key: bool = False  # USER_STREAM: the API key names the account, nothing is signed

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        msg = f"{self.summary!r} reads no parameter {name!r}"
        raise KeyError(msg)


# ----------------------------------------------------------------------------- parameters
def _symbol(*, required: bool) -> Param:
    return Param("symbol", Kind.SYMBOL, required=required, description="A listed symbol.")


SYMBOL = _symbol(required=True)
SYMBOL_OPT = _symbol(required=False)
START = Param("startTime", Kind.INTEGER, minimum=0, description="Virtual ms, inclusive.")
END = Param("endTime", Kind.INTEGER, minimum=0, description="Virtual ms, inclusive.")
FROM_ID = Param("fromId", Kind.INTEGER, minimum=0, description="The first trade id returned.")


def _limit(default: int, maximum: int) -> Param:
    return Param(
        "limit",
        Kind.INTEGER,
        minimum=1,
        maximum=maximum,
        description=f"Rows returned (default {default}).",
    )


ORDER_ID = Param("orderId", Kind.INTEGER, description="The venue's order id.")
ORIG_CLIENT_ID = Param("origClientOrderId", Kind.TEXT, description="The client order id.")
LOOKUP = (ORDER_ID, ORIG_CLIENT_ID)
WINDOW = (START, END)
FILTER_CODES = (-4003, -1111, -4004, -4005, -4023, -4001, -4013, -4002, -4014, -4164)
ORDER_PARAMS = (
    SYMBOL,
    Param("side", Kind.ENUM, required=True, values=("BUY", "SELL"), invalid_code=-1117),
    Param("type", Kind.ENUM, required=True, values=("LIMIT", "MARKET"), invalid_code=-1116),
    Param("quantity", Kind.DECIMAL, required=True, description="On the symbol's step."),
    Param("price", Kind.DECIMAL, description="LIMIT only (required there, -1106 on MARKET)."),
    Param(
        "timeInForce",
        Kind.ENUM,
        values=("GTC", "IOC", "FOK", "GTX"),
        invalid_code=-1115,
        description="LIMIT only (required there); GTX is post-only.",
    ),
    Param("reduceOnly", Kind.BOOLEAN),
    Param(
        "newClientOrderId",
        Kind.TEXT,
        pattern=CLIENT_ID_PATTERN,
        description="Unique per account (-4116); outside the pattern -1100.",
    ),
    Param(
        "positionSide",
        Kind.ENUM,
        values=("BOTH",),
        refused=(("LONG", -4061), ("SHORT", -4061)),
        description="One-way mode only: LONG/SHORT -4061, anything else -1130.",
    ),
    Param("newOrderRespType", Kind.ENUM, values=("ACK", "RESULT")),
    Param("closePosition", Kind.BOOLEAN, refused=(("true", -1106),), description="true -1106."),
    Param("priceMatch", Kind.ENUM, values=("NONE",)),
)
ORDER_ERRORS = (
    -1117,
    -1116,
    -1115,
    -1106,
    -4061,
    *FILTER_CODES,
    -1100,
    -4116,
    -2022,
    -5022,
    -5021,
    -2027,
    -2019,
)
INCOME_TYPES = tuple(t.value for t in IncomeType)


def _public(summary: str, shape: Shape, *params: Param, errors: tuple[int, ...] = ()) -> Operation:
    return Operation(summary=summary, tag="market", shape=shape, params=params, errors=errors)


def _account(summary: str, shape: Shape, *params: Param, errors: tuple[int, ...] = ()) -> Operation:
    return Operation(summary=summary, tag="account", shape=shape, params=params, errors=errors)


def _trade(
    summary: str,
    shape: Shape,
    *params: Param,
    errors: tuple[int, ...] = (),
    one_of: tuple[str, ...] = (),
) -> Operation:
    return Operation(
        summary=summary, tag="trade", shape=shape, params=params, errors=errors, one_of=one_of
    )


def _user_stream(summary: str, *, errors: tuple[int, ...] = ()) -> Operation:
    return Operation(
        summary=summary, tag="user-stream", shape=Shape.OBJECT, errors=errors, api_key=True
    )


_ALGO = "Conditional orders are not simulated: always -1116 Invalid orderType."
_O, _A, _E = Shape.OBJECT, Shape.ARRAY, Shape.EITHER

#: ``(method, path) -> Operation`` for every ``/fapi`` and ``/sim`` route of the server.
OPERATIONS: dict[tuple[str, str], Operation] = {
    # -- public market data (surface doc §2.1, §2.2)
    ("GET", "/fapi/v1/ping"): _public("Test connectivity", _O),
    ("GET", "/fapi/v1/time"): _public("Server (wall) time, which signing is checked against", _O),
    ("GET", "/fapi/v1/exchangeInfo"): _public("Symbols, filters and rate limits", _O),
    ("GET", "/fapi/v1/depth"): _public("Order book", _O, SYMBOL, _limit(500, 1000)),
    ("GET", "/fapi/v1/ticker/24hr"): _public("24 h statistics", _E, SYMBOL_OPT),
    ("GET", "/fapi/v1/ticker/bookTicker"): _public("Best bid and ask", _E, SYMBOL_OPT),
    ("GET", "/fapi/v1/ticker/price"): _public("Last price", _E, SYMBOL_OPT),
    ("GET", "/fapi/v2/ticker/price"): _public("Last price", _E, SYMBOL_OPT),
    ("GET", "/fapi/v1/premiumIndex"): _public("Mark, index and funding", _E, SYMBOL_OPT),
    ("GET", "/fapi/v1/fundingRate"): _public(
        "Settled funding rates", _A, SYMBOL_OPT, *WINDOW, _limit(100, 1000)
    ),
    ("GET", "/fapi/v1/fundingInfo"): _public("Funding caps, floors and intervals", _A),
    ("GET", "/fapi/v1/klines"): _public(
        "Candles",
        _A,
        SYMBOL,
        Param(
            "interval",
            Kind.ENUM,
            required=True,
            values=tuple(KLINE_INTERVALS),
            invalid_code=-1120,
        ),
        *WINDOW,
        _limit(500, 1500),
    ),
    ("GET", "/fapi/v1/aggTrades"): _public(
        "Aggregate trades", _A, SYMBOL, FROM_ID, *WINDOW, _limit(500, 1000)
    ),
    ("GET", "/fapi/v1/trades"): _public("Recent trades", _A, SYMBOL, _limit(500, 1000)),
    # -- signed: account, positions, settings (§2.3)
    ("GET", "/fapi/v2/account"): _account("Account (v2 shape)", _O),
    ("GET", "/fapi/v3/account"): _account("Account (v3 shape)", _O),
    ("GET", "/fapi/v2/balance"): _account("Balances", _A),
    ("GET", "/fapi/v3/balance"): _account("Balances", _A),
    ("GET", "/fapi/v2/positionRisk"): _account("Positions (v2 shape)", _A, SYMBOL_OPT),
    ("GET", "/fapi/v3/positionRisk"): _account("Positions (v3 shape)", _A, SYMBOL_OPT),
    ("GET", "/fapi/v1/leverageBracket"): _account("Leverage brackets", _E, SYMBOL_OPT),
    ("POST", "/fapi/v1/leverage"): _account(
        "Set the leverage",
        _O,
        SYMBOL,
        Param("leverage", Kind.INTEGER, required=True, description="1 to the symbol's maximum."),
        errors=(-4028, -2027, -2028),
    ),
    ("POST", "/fapi/v1/marginType"): _account(
        "Set the margin mode",
        _O,
        SYMBOL,
        Param(
            "marginType", Kind.ENUM, required=True, values=("ISOLATED", "CROSSED"), any_case=True
        ),
        errors=(-4046, -4047, -4048),
    ),
    ("GET", "/fapi/v1/positionSide/dual"): _account("Position mode (always one-way)", _O),
    ("POST", "/fapi/v1/positionSide/dual"): _account(
        "Set the position mode: false -4059 (already), true -1130 (hedge mode is not simulated)",
        _O,
        Param("dualSidePosition", Kind.BOOLEAN, required=True, refused=(("true", -1130),)),
        errors=(-4059,),
    ),
    ("GET", "/fapi/v1/symbolConfig"): _account("Leverage and margin mode", _A, SYMBOL_OPT),
    ("POST", "/fapi/v1/positionMargin"): _account(
        "Move isolated margin: type 1 adds, 2 removes",
        _O,
        SYMBOL,
        Param("amount", Kind.DECIMAL, required=True, description="At most the balance decimals."),
        Param("type", Kind.INTEGER, required=True, minimum=1, maximum=2),
        Param("positionSide", Kind.ENUM, values=("BOTH",), invalid_code=-4061),
        errors=(-2024, -4050, -4051, -4061, -1102),
    ),
    ("GET", "/fapi/v1/commissionRate"): _account("Maker and taker rates", _O, SYMBOL),
    ("GET", "/fapi/v1/userTrades"): _account(
        "The account's trades", _A, SYMBOL, ORDER_ID, FROM_ID, *WINDOW, _limit(500, 1000)
    ),
    ("GET", "/fapi/v1/income"): _account(
        "Income history",
        _A,
        SYMBOL_OPT,
        Param("incomeType", Kind.ENUM, values=INCOME_TYPES),
        *WINDOW,
        _limit(100, 1000),
    ),
    ("GET", "/fapi/v1/forceOrders"): _account(
        "The account's liquidation orders",
        _A,
        SYMBOL_OPT,
        Param("autoCloseType", Kind.ENUM, values=("LIQUIDATION", "ADL")),
        *WINDOW,
        _limit(50, 100),
    ),
    # -- signed: orders (§2.4)
    ("POST", "/fapi/v1/order"): _trade("New order", _O, *ORDER_PARAMS, errors=ORDER_ERRORS),
    ("GET", "/fapi/v1/order"): _trade(
        "Query an order",
        _O,
        SYMBOL,
        *LOOKUP,
        errors=(-2013,),
        one_of=("orderId", "origClientOrderId"),
    ),
    ("DELETE", "/fapi/v1/order"): _trade(
        "Cancel an order",
        _O,
        SYMBOL,
        *LOOKUP,
        errors=(-2011,),
        one_of=("orderId", "origClientOrderId"),
    ),
    ("GET", "/fapi/v1/openOrders"): _trade("Open orders", _A, SYMBOL_OPT),
    ("GET", "/fapi/v1/openOrder"): _trade(
        "Query an open order",
        _O,
        SYMBOL,
        *LOOKUP,
        errors=(-2013,),
        one_of=("orderId", "origClientOrderId"),
    ),
    ("GET", "/fapi/v1/allOrders"): _trade(
        "All orders",
        _A,
        SYMBOL,
        Param("orderId", Kind.INTEGER, minimum=0, description="The first order id returned."),
        *WINDOW,
        _limit(500, 1000),
    ),
    ("DELETE", "/fapi/v1/allOpenOrders"): _trade("Cancel every open order", _O, SYMBOL),
    ("POST", "/fapi/v1/algoOrder"): _trade(_ALGO, _O, errors=(-1116,)),
    ("GET", "/fapi/v1/algoOrder"): _trade(_ALGO, _O, errors=(-1116,)),
    ("DELETE", "/fapi/v1/algoOrder"): _trade(_ALGO, _O, errors=(-1116,)),
    ("GET", "/fapi/v1/openAlgoOrders"): _trade(_ALGO, _A, errors=(-1116,)),
    # -- user-data stream keys (USER_STREAM: the API key only)
    ("POST", "/fapi/v1/listenKey"): _user_stream("Open (or extend) the account's listen key"),
    ("PUT", "/fapi/v1/listenKey"): _user_stream("Extend the live listen key", errors=(-1125,)),
    ("DELETE", "/fapi/v1/listenKey"): _user_stream("Close the listen key"),
    # -- sim-only, signed
    ("GET", "/sim/v1/liquidationBand"): Operation(
        summary="The position's liquidation steps (sim only)",
        tag="sim",
        shape=_O,
        params=(SYMBOL,),
    ),
}
