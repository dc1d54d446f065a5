"""Request weights of the simulated venue: what each endpoint and venue method costs.

:data:`ENDPOINTS` holds Binance's documented request weight and security per endpoint
(binance-usdm-surface.md §3, §4; the server's route table must match it exactly);
:data:`METHOD_CALLS` maps each in-process Venue/Account method to the call it stands for.
A request's :class:`Cost` is what the gateway (engine/gateway.py) charges on its windows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "ENDPOINTS",
    "METHOD_CALLS",
    "Cost",
    "Endpoint",
    "Params",
    "WeightRule",
    "depth_weight",
    "method_weights",
]

Params = Mapping[str, str]
WeightRule = int | Callable[[Params], int]


@dataclass(frozen=True, slots=True)
class Cost:
    """What one request costs: IP weight, one order on the account's counters, signed or not."""

    weight: int
    orders: bool = False
    signed: bool = False


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint's weight rule and security (surface doc §3 security types, §4 weights)."""

    weight: WeightRule
    signed: bool = False
    orders: bool = False

    def cost(self, params: Params) -> Cost:
        weight = self.weight if isinstance(self.weight, int) else self.weight(params)
        key = (weight, self.orders, self.signed)
        found = _COSTS.get(key)  # Cost is immutable: one per distinct value, shared
        if found is None:
            found = _COSTS[key] = Cost(weight=weight, orders=self.orders, signed=self.signed)
        return found


_COSTS: dict[tuple[int, bool, bool], Cost] = {}


def depth_weight(limit: int) -> int:
    """``GET /fapi/v1/depth``: 2 for limit 5-50, 5 for 100, 10 for 500, 20 for 1000."""
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


def _int_param(params: Params, name: str, default: int) -> int:
    """A weight rule's number: ASCII digits only (``"²".isdigit()``), else the default."""
    text = params.get(name, "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else default


def _depth(params: Params) -> int:
    return depth_weight(_int_param(params, "limit", 500))


def _klines(params: Params) -> int:
    limit = _int_param(params, "limit", 500)
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _by_symbol(with_symbol: int, without: int) -> Callable[[Params], int]:
    def rule(params: Params) -> int:
        return with_symbol if params.get("symbol") else without

    return rule


def _public(weight: WeightRule) -> Endpoint:
    return Endpoint(weight=weight)


def _signed(weight: WeightRule) -> Endpoint:
    return Endpoint(weight=weight, signed=True)


# (method, path) -> weight rule and security; the server's route table must match it exactly.
# fundingRate and fundingInfo share Binance's own 500/5min bucket, not the 1-minute IP weight
# (surface doc §4); that bucket is not simulated, so they cost 0 here.
ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("GET", "/fapi/v1/ping"): _public(1),
    ("GET", "/fapi/v1/time"): _public(1),
    ("GET", "/fapi/v1/exchangeInfo"): _public(1),
    ("GET", "/fapi/v1/depth"): _public(_depth),
    ("GET", "/fapi/v1/ticker/24hr"): _public(_by_symbol(1, 40)),
    ("GET", "/fapi/v1/ticker/bookTicker"): _public(_by_symbol(2, 5)),
    ("GET", "/fapi/v1/ticker/price"): _public(_by_symbol(1, 2)),
    ("GET", "/fapi/v2/ticker/price"): _public(_by_symbol(1, 2)),
    ("GET", "/fapi/v1/premiumIndex"): _public(1),
    ("GET", "/fapi/v1/fundingRate"): _public(0),
    ("GET", "/fapi/v1/fundingInfo"): _public(0),
    ("GET", "/fapi/v1/klines"): _public(_klines),
    ("GET", "/fapi/v1/aggTrades"): _public(20),
    ("GET", "/fapi/v1/trades"): _public(5),
    ("GET", "/fapi/v2/account"): _signed(5),
    ("GET", "/fapi/v3/account"): _signed(5),
    ("GET", "/fapi/v2/balance"): _signed(5),
    ("GET", "/fapi/v3/balance"): _signed(5),
    ("GET", "/fapi/v2/positionRisk"): _signed(5),
    ("GET", "/fapi/v3/positionRisk"): _signed(5),
    ("GET", "/fapi/v1/leverageBracket"): _signed(1),
    ("POST", "/fapi/v1/leverage"): _signed(1),
    ("POST", "/fapi/v1/marginType"): _signed(1),
    ("POST", "/fapi/v1/order"): Endpoint(weight=0, signed=True, orders=True),
    ("GET", "/fapi/v1/order"): _signed(1),
    ("DELETE", "/fapi/v1/order"): _signed(1),
    ("GET", "/fapi/v1/openOrders"): _signed(_by_symbol(1, 40)),
    ("GET", "/fapi/v1/openOrder"): _signed(1),
    ("GET", "/fapi/v1/allOrders"): _signed(5),
    ("DELETE", "/fapi/v1/allOpenOrders"): _signed(1),
    ("GET", "/fapi/v1/userTrades"): _signed(5),
    ("GET", "/fapi/v1/income"): _signed(30),
    ("GET", "/fapi/v1/positionSide/dual"): _signed(30),
    ("POST", "/fapi/v1/positionSide/dual"): _signed(1),
    ("GET", "/fapi/v1/symbolConfig"): _signed(5),
    ("POST", "/fapi/v1/positionMargin"): _signed(1),
    ("GET", "/fapi/v1/commissionRate"): _signed(20),
    ("GET", "/fapi/v1/forceOrders"): _signed(_by_symbol(20, 50)),
    ("POST", "/fapi/v1/algoOrder"): _signed(1),
    ("GET", "/fapi/v1/algoOrder"): _signed(1),
    ("DELETE", "/fapi/v1/algoOrder"): _signed(1),
    ("GET", "/fapi/v1/openAlgoOrders"): _signed(_by_symbol(1, 40)),
    ("GET", "/sim/v1/liquidationBand"): _signed(1),
    # USER_STREAM security: the API key names the account, nothing is signed.
    ("POST", "/fapi/v1/listenKey"): _public(1),
    ("PUT", "/fapi/v1/listenKey"): _public(1),
    ("DELETE", "/fapi/v1/listenKey"): _public(1),
}

# Venue/Account method -> the Binance call it stands for (method, path, example params).
# Methods served by the control API on the HTTP venue (venue-wide liquidations, ADL events,
# the insurance fund) are not venue requests and are not listed: they cost nothing.
_ONE = {"symbol": "BTCUSDT"}
METHOD_CALLS: dict[str, tuple[str, str, Params]] = {
    "instruments": ("GET", "/fapi/v1/exchangeInfo", {}),
    "mark": ("GET", "/fapi/v1/premiumIndex", _ONE),
    "brackets": ("GET", "/fapi/v1/leverageBracket", _ONE),
    "funding_history": ("GET", "/fapi/v1/fundingRate", _ONE),
    "funding_info": ("GET", "/fapi/v1/fundingInfo", {}),
    "place_order": ("POST", "/fapi/v1/order", _ONE),
    "cancel_order": ("DELETE", "/fapi/v1/order", _ONE),
    "get_order": ("GET", "/fapi/v1/order", _ONE),
    "open_orders": ("GET", "/fapi/v1/openOrders", _ONE),
    "open_orders:all": ("GET", "/fapi/v1/openOrders", {}),
    "cancel_all": ("DELETE", "/fapi/v1/allOpenOrders", _ONE),
    "fills": ("GET", "/fapi/v1/userTrades", _ONE),
    "positions": ("GET", "/fapi/v3/positionRisk", {}),
    "balance": ("GET", "/fapi/v3/account", {}),
    "income": ("GET", "/fapi/v1/income", {}),
    "commission_rates": ("GET", "/fapi/v1/commissionRate", _ONE),
    "set_leverage": ("POST", "/fapi/v1/leverage", _ONE),
    "set_margin_mode": ("POST", "/fapi/v1/marginType", _ONE),
    "add_isolated_margin": ("POST", "/fapi/v1/positionMargin", _ONE),
    "liquidation_band": ("GET", "/sim/v1/liquidationBand", _ONE),
    "liquidations": ("GET", "/fapi/v1/forceOrders", _ONE),
    "liquidations:all": ("GET", "/fapi/v1/forceOrders", {}),
    **{
        f"order_book:{limit}": ("GET", "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": str(limit)})
        for limit in (5, 10, 20, 50, 100, 500, 1000)
    },
}

_METHOD_COSTS: dict[str, Cost] = {
    name: ENDPOINTS[(method, path)].cost(params)
    for name, (method, path, params) in METHOD_CALLS.items()
}


def method_weights() -> dict[str, int]:
    """``VenueRules.method_weights``: each Venue/Account method's Binance request weight."""
    return {name: cost.weight for name, cost in _METHOD_COSTS.items()}
