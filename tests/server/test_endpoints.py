"""Every Binance endpoint answers in Binance's shape (surface doc §2), with PROTOCOL.md extras."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from adapters.sim.engine.gateway import ENDPOINTS
from adapters.sim.server import ROUTES
from tests.server.conftest import Http

BTC = "BTCUSDT"
D = Decimal


def _is_decimal_text(value: object) -> bool:
    return isinstance(value, str) and Decimal(value) is not None


async def _buy(http: Http, qty: str = "0.01", **extra: Any) -> dict[str, Any]:
    reply = await http.call(
        "POST",
        "/fapi/v1/order",
        {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": qty, **extra},
        signed=True,
        body=True,
    )
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


def test_the_route_table_and_the_weight_table_cover_each_other() -> None:
    routed = {(r.method, r.path) for r in ROUTES if r.path.startswith(("/fapi/", "/sim/"))}
    assert routed == set(ENDPOINTS)


@pytest.mark.asyncio
async def test_exchange_info_lists_perpetuals_with_filters_and_extras(http: Http) -> None:
    body = (await http.call("GET", "/fapi/v1/exchangeInfo")).body
    assert [r["limit"] for r in body["rateLimits"]] == [2400, 1200, 300]
    sym = next(s for s in body["symbols"] if s["symbol"] == BTC)
    assert sym["contractType"] == "PERPETUAL"
    assert (sym["status"], sym["marginAsset"], sym["pricePrecision"]) == ("TRADING", "USDT", 2)
    filters = {f["filterType"]: f for f in sym["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.10"
    assert filters["LOT_SIZE"]["stepSize"] == "0.001"
    assert filters["MIN_NOTIONAL"]["notional"] == "100"
    assert sym["orderTypes"] == ["LIMIT", "MARKET"]
    assert sym["fundingIntervalHours"] == 8
    assert sym["liquidationPolicy"]["variant"] == "tier-step-down"
    assert isinstance(sym["liquidationPolicy"]["cooldownMs"], int)


@pytest.mark.asyncio
async def test_time_is_wall_and_depth_carries_virtual_times(http: Http) -> None:
    now = (await http.call("GET", "/fapi/v1/time")).body["serverTime"]
    depth = await http.call("GET", "/fapi/v1/depth", {"symbol": BTC, "limit": 5})
    virtual = int(depth.headers["X-SIM-TIME"])
    assert now > virtual  # the virtual clock starts at 2026-01-01
    body = depth.body
    assert set(body) == {"lastUpdateId", "E", "T", "bids", "asks"}
    assert body["E"] == body["T"] == virtual
    assert len(body["bids"]) == len(body["asks"]) == 5
    bids = [D(p) for p, _ in body["bids"]]
    asks = [D(p) for p, _ in body["asks"]]
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert bids[0] < asks[0]


@pytest.mark.asyncio
async def test_premium_index_and_funding_endpoints(http: Http) -> None:
    one = (await http.call("GET", "/fapi/v1/premiumIndex", {"symbol": BTC})).body
    assert {"markPrice", "indexPrice", "lastFundingRate", "nextFundingTime", "time"} <= set(one)
    assert _is_decimal_text(one["lastPrice"])
    assert one["fundingIntervalMs"] == 8 * 3_600_000
    every = (await http.call("GET", "/fapi/v1/premiumIndex")).body
    assert [r["symbol"] for r in every] == ["BTCUSDT", "ETHUSDT"]
    await http.control("POST", "advance", {"ms": 3_600_000})
    rates = (await http.call("GET", "/fapi/v1/fundingRate", {"symbol": "ETHUSDT"})).body
    assert len(rates) == 1
    assert set(rates[0]) == {"symbol", "fundingRate", "fundingTime", "markPrice"}
    info = (await http.call("GET", "/fapi/v1/fundingInfo")).body
    eth = next(r for r in info if r["symbol"] == "ETHUSDT")
    assert (eth["fundingIntervalHours"], eth["adjustedFundingRateCap"]) == (1, "0.0075")
    assert eth["pendingIntervalHours"] is None
    assert {"interestRate", "interestClamp", "impactMarginNotional", "nextFundingTime"} <= set(eth)


@pytest.mark.asyncio
async def test_tickers_trades_and_klines_follow_the_public_trades(http: Http) -> None:
    await _buy(http, "0.05")
    ticker = (await http.call("GET", "/fapi/v1/ticker/24hr", {"symbol": BTC})).body
    assert ticker["count"] >= 1
    assert D(ticker["volume"]) == D("0.05")
    price = (await http.call("GET", "/fapi/v2/ticker/price", {"symbol": BTC})).body
    assert price["price"] == ticker["lastPrice"]
    book = (await http.call("GET", "/fapi/v1/ticker/bookTicker", {"symbol": BTC})).body
    assert D(book["bidPrice"]) < D(book["askPrice"])
    agg = (await http.call("GET", "/fapi/v1/aggTrades", {"symbol": BTC})).body
    assert agg[-1]["m"] is False  # the taker bought
    trades = (await http.call("GET", "/fapi/v1/trades", {"symbol": BTC, "limit": 1})).body
    assert trades[0]["id"] == agg[-1]["a"]
    await http.control("POST", "advance", {"ms": 120_000})
    candles = (
        await http.call("GET", "/fapi/v1/klines", {"symbol": BTC, "interval": "1m", "limit": 3})
    ).body
    assert len(candles) == 3
    first = candles[0]
    assert len(first) == 12
    assert D(first[5]) == D("0.05")  # the trade's minute
    assert candles[1][5] == "0"  # no trades: previous close, zero volume
    assert candles[1][1] == candles[1][4] == first[4]
    bad = await http.call("GET", "/fapi/v1/klines", {"symbol": BTC, "interval": "7m"})
    assert (bad.status, bad.body["code"]) == (400, -1120)


@pytest.mark.asyncio
async def test_leverage_brackets_are_numbers_not_strings(http: Http) -> None:
    every = (await http.call("GET", "/fapi/v1/leverageBracket", signed=True)).body
    assert [r["symbol"] for r in every] == ["BTCUSDT", "ETHUSDT"]
    one = (await http.call("GET", "/fapi/v1/leverageBracket", {"symbol": BTC}, signed=True)).body
    first = one["brackets"][0]
    assert first == {
        "bracket": 1,
        "initialLeverage": 125,
        "notionalCap": 50000,
        "notionalFloor": 0,
        "maintMarginRatio": 0.004,
        "cum": 0,
    }
    assert one["brackets"][1]["cum"] == 50


@pytest.mark.asyncio
async def test_order_object_and_queries(http: Http) -> None:
    placed = (
        await http.call(
            "POST",
            "/fapi/v1/order",
            {
                "symbol": BTC,
                "side": "BUY",
                "type": "LIMIT",
                "quantity": "0.002",
                "price": "59000",
                "timeInForce": "GTC",
                "newClientOrderId": "x-1:a/b",
                "newOrderRespType": "RESULT",
            },
            signed=True,
            body=True,
        )
    ).body
    assert "time" not in placed
    assert (placed["status"], placed["clientOrderId"], placed["origQty"]) == (
        "NEW",
        "x-1:a/b",
        "0.002",
    )
    assert (placed["positionSide"], placed["cumQuote"], placed["avgPrice"]) == ("BOTH", "0", "0")
    assert placed["reduceOnly"] is False
    got = (
        await http.call(
            "GET", "/fapi/v1/order", {"symbol": BTC, "origClientOrderId": "x-1:a/b"}, signed=True
        )
    ).body
    assert got["orderId"] == placed["orderId"]
    assert got["time"] == got["updateTime"]
    listed = (await http.call("GET", "/fapi/v1/openOrders", {"symbol": BTC}, signed=True)).body
    assert [o["orderId"] for o in listed] == [placed["orderId"]]
    single = await http.call(
        "GET", "/fapi/v1/openOrder", {"symbol": BTC, "orderId": placed["orderId"]}, signed=True
    )
    assert single.body["orderId"] == placed["orderId"]
    gone = (
        await http.call(
            "DELETE", "/fapi/v1/order", {"symbol": BTC, "orderId": placed["orderId"]}, signed=True
        )
    ).body
    assert gone["status"] == "CANCELED"
    again = await http.call(
        "DELETE", "/fapi/v1/order", {"symbol": BTC, "orderId": placed["orderId"]}, signed=True
    )
    assert (again.status, again.body) == (400, {"code": -2011, "msg": "Unknown order sent."})
    closed = await http.call(
        "GET", "/fapi/v1/openOrder", {"symbol": BTC, "orderId": placed["orderId"]}, signed=True
    )
    assert closed.body["code"] == -2013
    history = (await http.call("GET", "/fapi/v1/allOrders", {"symbol": BTC}, signed=True)).body
    assert history[-1]["status"] == "CANCELED"
    done = (await http.call("DELETE", "/fapi/v1/allOpenOrders", {"symbol": BTC}, signed=True)).body
    assert done["code"] == 200


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"side": "HOLD", "type": "MARKET", "quantity": "0.01"}, -1117),
        ({"side": "BUY", "type": "STOP_MARKET", "quantity": "0.01"}, -1116),
        ({"side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "59000"}, -1102),
        (
            {"side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "1", "timeInForce": "X"},
            -1115,
        ),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.01", "price": "59000"}, -1106),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.01", "positionSide": "LONG"}, -4061),
        ({"side": "BUY", "type": "MARKET"}, -1102),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.0011"}, -1111),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.001"}, -4164),
    ],
)
async def test_order_refusals_carry_binance_codes(
    http: Http, params: dict[str, str], code: int
) -> None:
    reply = await http.call("POST", "/fapi/v1/order", {"symbol": BTC, **params}, signed=True)
    assert (reply.status, reply.body["code"]) == (400, code)
    assert isinstance(reply.body["msg"], str)


@pytest.mark.asyncio
async def test_conditional_orders_are_refused_as_an_invalid_order_type(http: Http) -> None:
    for method, path in (
        ("POST", "/fapi/v1/algoOrder"),
        ("GET", "/fapi/v1/algoOrder"),
        ("DELETE", "/fapi/v1/algoOrder"),
        ("GET", "/fapi/v1/openAlgoOrders"),
    ):
        reply = await http.call(method, path, {"symbol": BTC}, signed=True)
        assert (reply.status, reply.body) == (400, {"code": -1116, "msg": "Invalid orderType."})


@pytest.mark.asyncio
async def test_position_risk_v3_and_v2_shapes(http: Http) -> None:
    await _buy(http)
    v3 = (await http.call("GET", "/fapi/v3/positionRisk", signed=True)).body
    assert [p["symbol"] for p in v3] == [BTC]  # v3: only positions (and symbols with orders)
    row = v3[0]
    assert row["positionAmt"] == "0.01"
    assert {"leverage", "marginType", "isolated", "maxNotionalValue"}.isdisjoint(row)
    for key in ("entryPrice", "markPrice", "unRealizedProfit", "liquidationPrice", "notional"):
        assert _is_decimal_text(row[key]), key
    assert row["isolatedMargin"] == "0"
    v2 = (await http.call("GET", "/fapi/v2/positionRisk", signed=True)).body
    assert [p["symbol"] for p in v2] == ["BTCUSDT", "ETHUSDT"]  # v2: every symbol
    assert (v2[0]["leverage"], v2[0]["marginType"], v2[0]["isolated"]) == ("20", "cross", False)
    assert v2[1]["positionAmt"] == "0"


@pytest.mark.asyncio
async def test_account_v3_balance_and_symbol_config(http: Http) -> None:
    await _buy(http)
    account = (await http.call("GET", "/fapi/v3/account", signed=True)).body
    (asset,) = account["assets"]
    assert asset["asset"] == "USDT"
    assert asset["updateTime"] > 0  # ccxt skips an asset whose updateTime is 0
    assert D(account["totalMaintMargin"]) > 0
    assert [p["symbol"] for p in account["positions"]] == [BTC]
    assert "unrealizedProfit" in account["positions"][0]
    v2 = (await http.call("GET", "/fapi/v2/account", signed=True)).body
    assert v2["canTrade"] is True
    assert v2["totalWalletBalance"] == account["totalWalletBalance"]
    (bal,) = (await http.call("GET", "/fapi/v3/balance", signed=True)).body
    assert bal["balance"] == asset["walletBalance"]
    config = (await http.call("GET", "/fapi/v1/symbolConfig", {"symbol": BTC}, signed=True)).body
    assert config == [
        {
            "symbol": BTC,
            "marginType": "CROSSED",
            "isAutoAddMargin": "false",
            "leverage": 20,
            "maxNotionalValue": "100000000",
        }
    ]
    mode = (await http.call("GET", "/fapi/v1/positionSide/dual", signed=True)).body
    assert mode == {"dualSidePosition": False}
    hedge = await http.call(
        "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"}, signed=True
    )
    assert hedge.status == 400
    same = await http.call(
        "POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "false"}, signed=True
    )
    assert same.body["code"] == -4059


@pytest.mark.asyncio
async def test_user_trades_income_and_commission(http: Http) -> None:
    order = await _buy(http)
    (trade,) = (await http.call("GET", "/fapi/v1/userTrades", {"symbol": BTC}, signed=True)).body
    assert trade["orderId"] == order["orderId"]
    assert (trade["buyer"], trade["maker"], trade["liquidation"]) == (True, False, False)
    assert D(trade["commission"]) == (D(trade["quoteQty"]) * D("0.0005")).quantize(D("1e-8"))
    income = (
        await http.call("GET", "/fapi/v1/income", {"incomeType": "COMMISSION"}, signed=True)
    ).body
    assert [(r["incomeType"], r["income"]) for r in income] == [
        ("COMMISSION", "-" + trade["commission"])
    ]
    assert income[0]["tradeId"] == str(trade["id"])
    rates = (await http.call("GET", "/fapi/v1/commissionRate", {"symbol": BTC}, signed=True)).body
    assert rates == {
        "symbol": BTC,
        "makerCommissionRate": "0.0002",
        "takerCommissionRate": "0.0005",
    }
    bad = await http.call("GET", "/fapi/v1/income", {"incomeType": "NOPE"}, signed=True)
    assert bad.body["code"] == -1130


@pytest.mark.asyncio
async def test_isolated_margin_liquidation_orders_and_band(http: Http) -> None:
    assert (
        await http.call(
            "POST", "/fapi/v1/marginType", {"symbol": BTC, "marginType": "ISOLATED"}, signed=True
        )
    ).body == {"code": 200, "msg": "success"}
    again = await http.call(
        "POST", "/fapi/v1/marginType", {"symbol": BTC, "marginType": "ISOLATED"}, signed=True
    )
    assert again.body == {"code": -4046, "msg": "No need to change margin type."}
    lev = await http.call("POST", "/fapi/v1/leverage", {"symbol": BTC, "leverage": 50}, signed=True)
    assert lev.body == {"leverage": 50, "maxNotionalValue": "12000000", "symbol": BTC}
    await _buy(http, "0.05")
    added = await http.call(
        "POST",
        "/fapi/v1/positionMargin",
        {"symbol": BTC, "amount": "1.5", "type": 1},
        signed=True,
    )
    assert added.body == {
        "amount": 1.5,
        "code": 200,
        "msg": "Successfully modify position margin.",
        "type": 1,
    }
    # More digits than the balance quantum can hold at 28 (found by the fuzzer: was a 500).
    for amount in ("9" * 20 + "." + "9" * 9, "1.000000001"):
        huge = await http.call(
            "POST",
            "/fapi/v1/positionMargin",
            {"symbol": BTC, "amount": amount, "type": 1},
            signed=True,
        )
        assert (huge.status, huge.body["code"]) == (400, -1102), amount
    band = (await http.call("GET", "/sim/v1/liquidationBand", {"symbol": BTC}, signed=True)).body
    assert band["quantity"] == "0.05"
    assert band["steps"][0]["bracketBefore"] == 1
    assert band["steps"][-1]["bracketAfter"] is None
    (pos,) = (await http.call("GET", "/fapi/v3/positionRisk", signed=True)).body
    assert D(pos["isolatedWallet"]) > 0
    lp = D(pos["liquidationPrice"])
    index = D((await http.call("GET", "/fapi/v1/premiumIndex", {"symbol": BTC})).body["indexPrice"])
    path = {"symbol": BTC, "points": [[0, str(index)], [1_000, str(lp * D("0.98"))]]}
    assert (await http.control("POST", "price-path", path)).status == 200
    await http.control("POST", "advance", {"ms": 5_000})
    forced = (await http.call("GET", "/fapi/v1/forceOrders", {"symbol": BTC}, signed=True)).body
    assert forced
    first = forced[0]
    assert first["clientOrderId"].startswith("autoclose-")
    assert first["origQty"] == "0.05"
    for key in ("triggerMark", "bankruptcyPrice", "fee", "shortfall", "takenOverQty", "adlQty"):
        assert _is_decimal_text(first[key]), key
    assert first["filledInBook"] == first["executedQty"]
    trades = (await http.call("GET", "/fapi/v1/userTrades", {"symbol": BTC}, signed=True)).body
    assert any(t["liquidation"] for t in trades)
    everyone = (await http.control("GET", "liquidations")).body["liquidations"]
    assert everyone[0]["account_id"] == http.handle.account_id
    assert everyone[0]["origQty"] == "0.05"
