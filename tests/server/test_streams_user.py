"""Listen keys and the user-data stream with a raw client (PROTOCOL.md "Streams"): the REST
lifecycle, what the stream carries, expiry on the virtual clock, liquidations."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.sim.server.listen_keys import LISTEN_KEY_TTL_MS
from harness.model import Side
from tests.server.conftest import Http
from tests.server.streamkit import (
    listen_key,
    new_key,
    of_event,
    open_ws,
)
from tests.sim.simkit import market

D = Decimal
BTC = "BTCUSDT"
ETH = "ETHUSDT"
HOUR = 3_600_000


# ----------------------------------------------------------------------------- listen keys
@pytest.mark.asyncio
async def test_listen_key_post_put_delete_as_binance(http: Http) -> None:
    status, headers, body = await listen_key(http)
    assert status == 200
    key = body["listenKey"]
    assert len(key) == 64
    assert key.isalnum()
    assert headers["X-MBX-USED-WEIGHT-1M"] == "1"
    assert (await listen_key(http))[2] == {"listenKey": key}  # alive: the same key
    assert (await listen_key(http, "PUT"))[2] == {"listenKey": key}
    assert (await listen_key(http, "DELETE"))[:3:2] == (200, {})
    assert (await listen_key(http, "PUT"))[::2] == (
        400,
        {"code": -1125, "msg": "This listenKey does not exist."},
    )
    assert (await listen_key(http, "DELETE"))[::2] == (200, {})
    fresh = await new_key(http)
    assert fresh != key
    for bad, code in (("nobody", -2015), ("no-such-format!", -2014)):
        status, _, body = await listen_key(http, "POST", bad)
        assert (status, body["code"]) == (401, code)
    async with http.session.post(http.handle.base_url + "/fapi/v1/listenKey") as resp:
        assert (resp.status, (await resp.json())["code"]) == (401, -2015)
    other = (await http.control("POST", "accounts", {"wallet": "1000"})).body
    assert await new_key(Http(http.session, http.handle, key=other["api_key"])) != fresh


@pytest.mark.asyncio
async def test_user_data_streams_carry_only_the_keys_account_events(http: Http) -> None:
    key = await new_key(http)
    private = await open_ws(http, f"/private/ws?listenKey={key}")
    raw = await open_ws(http, f"/ws/{key}")
    combined = await open_ws(http, f"/stream?streams={key}/btcusdt@aggTrade")
    filtered = await open_ws(http, f"/private/ws?listenKey={key}&events=ACCOUNT_UPDATE")
    await http.handle.streams.wait_until(lambda: http.handle.streams.subscribed(key) == 4)
    other = (await http.control("POST", "accounts", {"wallet": "100000"})).body
    engine = http.handle.engine
    engine.place_order(other["account_id"], market(ETH, Side.BUY, "1"))  # not ours
    leverage = await http.call(
        "POST", "/fapi/v1/leverage", {"symbol": BTC, "leverage": 7}, signed=True
    )
    assert leverage.status == 200
    placed = await http.call(
        "POST",
        "/fapi/v1/order",
        {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.01"},
        signed=True,
        body=True,
    )
    order_id = placed.body["orderId"]
    frames = await private.sync()
    assert [f["e"] for f in frames] == [
        "ACCOUNT_CONFIG_UPDATE",
        "ORDER_TRADE_UPDATE",
        *["ORDER_TRADE_UPDATE"] * (len(frames) - 3),
        "ACCOUNT_UPDATE",
    ]
    assert frames[0]["ac"] == {"s": BTC, "l": 7}
    reports = of_event(frames, "ORDER_TRADE_UPDATE")
    assert (reports[0]["o"]["x"], reports[0]["o"]["i"]) == ("NEW", order_id)
    assert {r["o"]["x"] for r in reports[1:]} == {"TRADE"}
    assert reports[-1]["o"]["X"] == "FILLED"
    assert sum(D(r["o"]["l"]) for r in reports) == D("0.01")
    (update,) = of_event(frames, "ACCOUNT_UPDATE")
    assert update["a"]["m"] == "ORDER"
    (pos,) = update["a"]["P"]
    assert (pos["s"], pos["pa"]) == (BTC, "0.01")
    balance = (await http.call("GET", "/fapi/v3/balance", signed=True)).body
    usdt = next(b for b in balance if b["asset"] == "USDT")
    assert update["a"]["B"][0]["wb"] == usdt["balance"]
    assert await raw.sync() == frames
    wrapped = await combined.sync()
    assert [f["data"] for f in wrapped if f["stream"] == key] == frames
    assert {f["stream"] for f in wrapped} == {key, "btcusdt@aggTrade"}
    assert await filtered.sync() == [update]


@pytest.mark.asyncio
async def test_listen_keys_expire_after_an_hour_of_virtual_time_unless_kept_alive(
    http: Http,
) -> None:
    start = (await http.control("POST", "advance", {"ms": 0})).body["now_ms"]
    key = await new_key(http)
    client = await open_ws(http, f"/ws/{key}")
    await http.control("POST", "advance", {"ms": 30 * 60_000})
    assert (await listen_key(http, "PUT"))[2] == {"listenKey": key}  # now alive until +90 min
    await http.control("POST", "advance", {"ms": 59 * 60_000})  # +89 min
    await http.call("POST", "/fapi/v1/leverage", {"symbol": BTC, "leverage": 9}, signed=True)
    assert [f["e"] for f in await client.sync()] == ["ACCOUNT_CONFIG_UPDATE"]
    await http.control("POST", "advance", {"ms": 60_000})  # +90 min: gone
    (expired,) = await client.sync()
    assert expired == {"e": "listenKeyExpired", "E": start + 90 * 60_000, "listenKey": key}
    await http.call("POST", "/fapi/v1/leverage", {"symbol": BTC, "leverage": 8}, signed=True)
    assert await client.sync() == []  # no more user data on this key
    assert (await listen_key(http, "PUT"))[2]["code"] == -1125
    assert (await client.request("LIST_SUBSCRIPTIONS"))[0]["result"] == []
    late = await open_ws(http, f"/private/ws?listenKey={key}")
    (again,) = await late.sync()
    assert again["e"] == "listenKeyExpired"
    fresh = await new_key(http)
    assert fresh != key
    # An expiry between two events is seen at the first event after it, with its own time.
    fresh_client = await open_ws(http, "/ws")
    await fresh_client.request("SUBSCRIBE", [fresh])
    http.handle.engine.clock.advance(LISTEN_KEY_TTL_MS + 500)  # no HTTP request: events only
    frames = await fresh_client.sync()
    assert frames[0]["E"] == start + 90 * 60_000 + HOUR
    assert [f["e"] for f in frames] == ["listenKeyExpired"]


@pytest.mark.asyncio
async def test_delete_ends_the_user_stream_with_listen_key_expired(http: Http) -> None:
    key = await new_key(http)
    client = await open_ws(http, f"/stream?streams={key}")
    now = (await http.control("POST", "advance", {"ms": 1_500})).body["now_ms"]
    await listen_key(http, "DELETE")
    (frame,) = await client.sync()
    assert frame == {"stream": key, "data": {"e": "listenKeyExpired", "E": now, "listenKey": key}}


# ----------------------------------------------------------------------------- liquidations
@pytest.mark.asyncio
async def test_a_liquidation_reaches_the_public_and_the_private_streams(http: Http) -> None:
    key = await new_key(http)
    private = await open_ws(http, f"/private/ws?listenKey={key}")
    public = await open_ws(http, "/stream?streams=!forceOrder@arr/btcusdt@forceOrder")
    eth_only = await open_ws(http, "/ws/ethusdt@forceOrder")
    for path, params in (
        ("/fapi/v1/marginType", {"symbol": BTC, "marginType": "ISOLATED"}),
        ("/fapi/v1/leverage", {"symbol": BTC, "leverage": 50}),
    ):
        assert (await http.call("POST", path, params, signed=True)).status == 200
    order = {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": "0.05"}
    assert (await http.call("POST", "/fapi/v1/order", order, signed=True, body=True)).status == 200
    (pos,) = (await http.call("GET", "/fapi/v3/positionRisk", signed=True)).body
    lp = D(pos["liquidationPrice"])
    index = D((await http.call("GET", "/fapi/v1/premiumIndex", {"symbol": BTC})).body["indexPrice"])
    move = {
        "symbol": BTC,
        "points": [[0, str(index)], [10_000, str(lp * D("0.98"))]],
        "linear": True,
    }
    await private.sync()
    await http.control("POST", "price-path", move)
    await http.control("POST", "advance", {"ms": 12_000})
    frames = await private.sync()
    events = [f["e"] for f in frames]
    assert events.index("MARGIN_CALL") < events.index("ORDER_TRADE_UPDATE")
    (call,) = of_event(frames, "MARGIN_CALL")
    assert (call["p"][0]["s"], call["p"][0]["mt"], call["p"][0]["pa"]) == (BTC, "ISOLATED", "0.05")
    liquidations = [f["o"] for f in of_event(frames, "ORDER_TRADE_UPDATE")]
    assert liquidations
    assert all(o["x"] == "CALCULATED" and o["o"] == "LIQUIDATION" for o in liquidations)
    assert all(o["c"].startswith("autoclose-") for o in liquidations)
    assert sum(D(o["l"]) for o in liquidations) == D("0.05")
    assert of_event(frames, "ACCOUNT_UPDATE")[-1]["a"]["P"][0]["pa"] in ("0", "0.00", "0.000")
    forced = (await http.call("GET", "/fapi/v1/forceOrders", {"symbol": BTC}, signed=True)).body
    wrapped = await public.sync()
    assert [f["stream"] for f in wrapped] == ["!forceOrder@arr", "btcusdt@forceOrder"] * len(forced)
    first = wrapped[0]["data"]
    assert set(first) == {"e", "E", "o"}  # the public view names no account
    assert (first["o"]["s"], first["o"]["S"], first["o"]["q"]) == (
        BTC,
        "SELL",
        forced[0]["origQty"],
    )
    assert first["o"]["ap"] == forced[0]["avgPrice"]
    assert await eth_only.sync() == []
