"""The server's WebSocket market streams and message protocol with a raw client
(PROTOCOL.md "Streams").

Every wait ends on a frame: ``SIM_SYNC`` answers after every frame the server queued before it,
so "everything a finished request or control call caused has arrived" needs no sleeping.
"""

from __future__ import annotations

import asyncio
import json
import random
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from adapters.sim.server import ServerHandle, start_server, streams_connection
from harness.model import Side
from harness.venue import VenueConfig
from tests.server.conftest import Http
from tests.server.streamkit import (
    LocalBook,
    funded_accounts,
    new_key,
    of_event,
    open_ws,
    random_operation,
    rest_book,
    rest_levels,
)
from tests.sim.simkit import limit, market

D = Decimal
BTC = "BTCUSDT"
ETH = "ETHUSDT"


# ----------------------------------------------------------------------------- market streams
@pytest.mark.asyncio
async def test_diff_and_partial_depth_streams_keep_a_book_equal_to_rest_depth(http: Http) -> None:
    engine = http.handle.engine
    accounts = funded_accounts(engine, 3)
    client = await open_ws(
        http, "/stream?streams=btcusdt@depth/ethusdt@depth@100ms/btcusdt@depth5@500ms"
    )
    books = {symbol: LocalBook(await rest_book(http, symbol)) for symbol in (BTC, ETH)}
    rng = random.Random(11)
    for _ in range(10):
        for _ in range(300):
            random_operation(engine, rng, accounts)
        partial = None
        for frame in await client.sync():
            data = frame["data"]
            assert data["e"] == "depthUpdate"
            if frame["stream"] == "btcusdt@depth5@500ms":
                partial = data
            else:
                assert (
                    frame["stream"] == {BTC: "btcusdt@depth", ETH: "ethusdt@depth@100ms"}[data["s"]]
                )
                books[data["s"]].apply(data)
        for symbol, book in books.items():
            rest = await rest_book(http, symbol)
            assert book.last == rest["lastUpdateId"]
            assert book.top(1000) == (rest["bids"], rest["asks"])
        assert partial is not None
        top = await rest_book(http, BTC, 5)
        assert partial["u"] == top["lastUpdateId"]
        assert (rest_levels(partial["b"]), rest_levels(partial["a"])) == (top["bids"], top["asks"])
    assert sum(book.applied for book in books.values()) > 1_500


@pytest.mark.asyncio
async def test_depth_overstated_doubles_stream_quantities_exactly_as_rest_depth_does() -> None:
    handle = await start_server(VenueConfig(seed=7, defects=("depth-overstated",)))
    try:
        async with aiohttp.ClientSession() as session:
            http = Http(session, handle)
            client = await open_ws(http, "/ws/btcusdt@depth")
            await client.request("SUBSCRIBE", ["btcusdt@depth10", "btcusdt@bookTicker"])
            book = LocalBook(await rest_book(http, BTC))
            (acct,) = funded_accounts(handle.engine, 1)
            handle.engine.place_order(acct, market(BTC, Side.BUY, "0.4"))
            handle.engine.place_order(acct, limit(BTC, Side.SELL, "0.3", "60100"))
            frames = await client.sync()
            for frame in frames:
                if frame.get("e") == "depthUpdate" and len(frame["b"]) + len(frame["a"]) != 20:
                    book.apply(frame)
            rest = await rest_book(http, BTC)
            assert book.top(1000) == (rest["bids"], rest["asks"])
            partial = [f for f in frames if f.get("e") == "depthUpdate"][-1]
            top = await rest_book(http, BTC, 10)
            assert (rest_levels(partial["b"]), rest_levels(partial["a"])) == (
                top["bids"],
                top["asks"],
            )
            ticker = of_event(frames, "bookTicker")[-1]
            rest_ticker = (
                await http.call("GET", "/fapi/v1/ticker/bookTicker", {"symbol": BTC})
            ).body
            assert (ticker["B"], ticker["A"]) == (rest_ticker["bidQty"], rest_ticker["askQty"])
            engine_bid = handle.engine.books[BTC].levels(Side.BUY, 1)[0][1]
            assert D(ticker["B"]) == 2 * engine_bid
    finally:
        await handle.stop()


@pytest.mark.asyncio
async def test_trade_agg_trade_and_book_ticker_frames_match_the_rest_views(http: Http) -> None:
    client = await open_ws(http, "/ws")
    reply, _ = await client.request(
        "SUBSCRIBE", ["btcusdt@trade", "btcusdt@aggTrade", "btcusdt@bookTicker", "!bookTicker"]
    )
    assert reply == {"result": None, "id": client.next_id}
    engine = http.handle.engine
    (acct,) = funded_accounts(engine, 1)
    engine.place_order(acct, market(BTC, Side.BUY, "0.5"))  # walks several levels
    engine.place_order(acct, market(ETH, Side.SELL, "1"))
    frames = await client.sync()
    trades, aggs = of_event(frames, "trade"), of_event(frames, "aggTrade")
    assert len(trades) == len(aggs) > 1
    assert {t["s"] for t in trades} == {BTC}
    rest = (await http.call("GET", "/fapi/v1/trades", {"symbol": BTC, "limit": len(trades)})).body
    assert [(t["t"], t["p"], t["q"], t["m"], t["T"]) for t in trades] == [
        (r["id"], r["price"], r["qty"], r["isBuyerMaker"], r["time"]) for r in rest
    ]
    assert [(a["a"], a["f"], a["l"], a["p"], a["q"]) for a in aggs] == [
        (t["t"], t["t"], t["t"], t["p"], t["q"]) for t in trades
    ]
    assert all(t["m"] is False for t in trades)  # the buyer took liquidity
    tickers = of_event(frames, "bookTicker")
    assert [t["s"] for t in tickers] == [BTC, BTC, ETH]  # symbol stream + !bookTicker, then ETH
    last_btc = tickers[1]
    rest_ticker = (await http.call("GET", "/fapi/v1/ticker/bookTicker", {"symbol": BTC})).body
    assert (last_btc["b"], last_btc["B"], last_btc["a"], last_btc["A"], last_btc["u"]) == (
        rest_ticker["bidPrice"],
        rest_ticker["bidQty"],
        rest_ticker["askPrice"],
        rest_ticker["askQty"],
        rest_ticker["lastUpdateId"],
    )


@pytest.mark.asyncio
async def test_mark_price_streams_every_second_and_every_three_and_all_market_arrays(
    http: Http,
) -> None:
    client = await open_ws(
        http,
        "/stream?streams=btcusdt@markPrice/btcusdt@markPrice@1s/!markPrice@arr/!markPrice@arr@1s",
    )
    start = (await http.control("POST", "advance", {"ms": 0})).body["now_ms"]
    assert start % 3_000 == 0
    await http.control("POST", "advance", {"ms": 6_000})
    frames = await client.sync()
    by_stream: dict[str, list[Any]] = {}
    for frame in frames:
        by_stream.setdefault(frame["stream"], []).append(frame["data"])
    one_s = by_stream["btcusdt@markPrice@1s"]
    assert [f["E"] for f in one_s] == [start + 1_000 * i for i in range(1, 7)]
    assert [f["E"] for f in by_stream["btcusdt@markPrice"]] == [start + 3_000, start + 6_000]
    arrays = by_stream["!markPrice@arr@1s"]
    assert [[m["s"] for m in a] for a in arrays] == [[BTC, ETH]] * 6
    assert [a[0]["E"] for a in by_stream["!markPrice@arr"]] == [start + 3_000, start + 6_000]
    assert arrays[-1][0] == one_s[-1]
    index = (await http.call("GET", "/fapi/v1/premiumIndex", {"symbol": BTC})).body
    last = one_s[-1]
    assert (last["e"], last["p"], last["i"], last["r"], last["T"]) == (
        "markPriceUpdate",
        index["markPrice"],
        index["indexPrice"],
        index["lastFundingRate"],
        index["nextFundingTime"],
    )


@pytest.mark.asyncio
async def test_subscribe_unsubscribe_list_and_the_combined_property(http: Http) -> None:
    client = await open_ws(http, "/ws/btcusdt@markPrice@1s")
    reply, _ = await client.request("LIST_SUBSCRIPTIONS")
    assert reply["result"] == ["btcusdt@markPrice@1s"]
    await client.request("SUBSCRIBE", ["ethusdt@markPrice@1s", "btcusdt@markPrice@1s"])
    reply, _ = await client.request("LIST_SUBSCRIPTIONS")
    assert reply["result"] == ["btcusdt@markPrice@1s", "ethusdt@markPrice@1s"]
    await http.control("POST", "advance", {"ms": 1_000})
    raw = await client.sync()
    assert [f["s"] for f in raw] == [BTC, ETH]  # raw frames, unwrapped
    reply, _ = await client.request("UNSUBSCRIBE", ["btcusdt@markPrice@1s", "nothing@here"])
    assert reply["result"] is None
    assert (await client.request("SET_PROPERTY", ["combined", True]))[0]["result"] is None
    assert (await client.request("GET_PROPERTY", ["combined"]))[0]["result"] is True
    await http.control("POST", "advance", {"ms": 1_000})
    wrapped = await client.sync()
    assert [(f["stream"], f["data"]["s"]) for f in wrapped] == [("ethusdt@markPrice@1s", ETH)]
    reply, _ = await client.request("LIST_SUBSCRIPTIONS")
    assert reply["result"] == ["ethusdt@markPrice@1s"]


@pytest.mark.asyncio
async def test_bad_messages_get_binance_errors_and_the_connection_stays_usable(
    http: Http,
) -> None:
    client = await open_ws(http, "/ws")
    cases: list[tuple[str, int]] = [
        ("not json", 3),
        ("[1, 2]", 2),
        ('{"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": -1}', 2),
        ('{"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": true}', 2),
        ('{"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 1.5}', 2),
        ('{"method": "DANCE", "id": 7}', 2),
        ('{"params": [], "id": 7}', 2),
        ('{"method": "SUBSCRIBE", "params": "btcusdt@depth", "id": 7}', 2),
        ('{"method": "SUBSCRIBE", "params": [1], "id": 7}', 2),
        ('{"method": "SUBSCRIBE", "params": ["btcusdt@nothing"], "id": 7}', 2),
        ('{"method": "SUBSCRIBE", "params": ["dogeusdt@depth"], "id": 7}', 2),
        ('{"method": "SUBSCRIBE", "params": ["BTCUSDT@depth"], "id": 7}', 2),
        ('{"method": "SET_PROPERTY", "params": ["speed", true], "id": 7}', 0),
        ('{"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 7}', 1),
        ('{"method": "SET_PROPERTY", "params": "combined", "id": 7}', 2),
        ('{"method": "GET_PROPERTY", "params": ["speed"], "id": 7}', 0),
        ('{"method": "' + "x" * 10_000 + '", "id": 7}', 2),
        ("[" * 50_000, 3),
    ]
    for text, code in cases:
        await client.ws.send_str(text)
        frame = await client.receive()
        assert frame["error"]["code"] == code, (text[:80], frame)
        assert isinstance(frame["error"]["msg"], str)
        assert set(frame) == {"error", "id"}
    await client.ws.send_bytes(b"\x00\x01")
    assert (await client.receive())["error"]["code"] == 3
    too_many = [f"btcusdt@depth{n}" for n in range(1_025)]
    reply, _ = await client.request("SUBSCRIBE", too_many)
    assert reply["error"]["code"] == 2
    reply, _ = await client.request("LIST_SUBSCRIPTIONS")
    assert reply["result"] == []  # nothing half-applied
    await client.send({"method": "LIST_SUBSCRIPTIONS", "id": "text-id"})
    assert (await client.reply_to("text-id"))[0]["result"] == []
    assert await client.sync() == []


@pytest.mark.asyncio
async def test_random_messages_each_get_exactly_one_reply_and_never_close_the_socket(
    http: Http,
) -> None:
    rng = random.Random(3)
    methods = [
        *("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY"),
        *("SIM_SYNC", "subscribe", "", None, 5, ["SUBSCRIBE"], "X" * 60),
    ]
    params: list[Any] = [
        None,
        [],
        ["btcusdt@depth"],
        ["btcusdt@depth", 3],
        ["!markPrice@arr@1s", "ethusdt@depth20@100ms"],
        ["combined", True],
        ["combined"],
        ["combined", 1],
        "btcusdt@depth",
        {"a": 1},
        [None],
        ["x" * 300],
    ]
    ids: list[Any] = [1, 0, 17, "x", None, -1, 1.5, True, 2**64, [1], {"id": 1}]
    client = await open_ws(http, "/ws")
    for _ in range(300):
        shape = rng.random()
        if shape < 0.05:
            text = rng.choice(["", "{", "null", "42", '"s"', "[]", "{]", "\u0000"])
        else:
            message: dict[str, Any] = {}
            for name, pool in (("method", methods), ("params", params), ("id", ids)):
                if rng.random() < 0.9:
                    message[name] = rng.choice(pool)
            text = json.dumps(message)
        await client.ws.send_str(text)
        reply = await client.receive()
        assert isinstance(reply, dict), (text, reply)
        assert "id" in reply, (text, reply)
        assert ("result" in reply) != ("error" in reply), (text, reply)
        if "error" in reply:
            assert reply["error"]["code"] in (0, 1, 2, 3), (text, reply)
    assert not client.ws.closed
    assert await client.sync() == []


@pytest.mark.asyncio
async def test_handshakes_refuse_unknown_stream_names_and_plain_http(http: Http) -> None:
    for path in (
        "/ws/btcusdt@nothing",
        "/ws/dogeusdt@depth",
        "/stream?streams=btcusdt@depth/!nothing",
        "/market/ws/btcusdt@depth@250ms",
        "/private/ws?listenKey=abc&events=BAD-NAME",
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.session.ws_connect(http.handle.ws_url + path)
        assert info.value.status == 400, path
    for path in ("/ws", "/stream", "/public/ws/0"):
        reply = await http.call("GET", path)
        assert (reply.status, reply.body["code"]) == (400, -1102), path
        assert "X-SIM-TIME" in reply.headers
    # ccxt connects to /<area>/ws/<n> and subscribes afterwards: a tag that is not a stream
    for path in ("/public/ws/0", "/market/ws/7", "/ws/anything", "/public/stream"):
        client = await open_ws(http, path)
        assert (await client.request("LIST_SUBSCRIPTIONS"))[0]["result"] == []
        await client.ws.close()


# ----------------------------------------------------------------------------- lifecycle
@pytest.mark.asyncio
async def test_a_client_too_far_behind_is_dropped(
    http: Http, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams_connection, "MAX_PENDING_FRAMES", 5)
    client = await open_ws(http, "/ws/btcusdt@markPrice@1s")
    await http.control("POST", "advance", {"ms": 20_000})  # 20 frames queued in one operation
    assert http.handle.streams.connections == []
    assert (await client.closed()).type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


@pytest.mark.asyncio
async def test_stopping_the_server_closes_every_socket_and_leaves_no_task() -> None:
    handle: ServerHandle = await start_server(VenueConfig(seed=3))
    async with aiohttp.ClientSession() as session:
        http = Http(session, handle)
        key = await new_key(http)
        clients = [
            await open_ws(http, "/ws/btcusdt@markPrice@1s"),
            await open_ws(http, f"/private/ws?listenKey={key}"),
        ]
        await http.control("POST", "advance", {"ms": 2_000})
        listening = handle.engine.events.active
        await handle.stop()
        for client in clients:
            message = await client.closed()
            assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1001)  # going away
        assert (listening, handle.engine.events.active) == (True, False)  # bus unsubscribed
    assert asyncio.all_tasks() == {asyncio.current_task()}
