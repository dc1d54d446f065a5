"""Unmodified ccxt.pro ``binanceusdm`` against the server's streams (PROTOCOL.md "Streams").

Only its URLs change: REST as tests/server/test_ccxt.py does, ``urls['api']['ws']['linear']``
to ``ws://127.0.0.1:<port>/ws`` (ccxt then uses ``/public/ws/<n>``, ``/market/ws/<n>`` and
``/private/ws?listenKey=``). Waits end on the server's state or ccxt's caches, never on time.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
import ccxt.pro as ccxtpro
import pytest
import pytest_asyncio

from adapters.sim.engine.events import DepthDiff
from adapters.sim.server import ServerHandle
from harness.model import Side
from tests.server.conftest import Http, local_ccxt
from tests.server.streamkit import GUARD_S, funded_accounts, random_operation, rest_book
from tests.sim.simkit import limit, market

D = Decimal
T = TypeVar("T")
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


@pytest_asyncio.fixture
async def pro(server: ServerHandle) -> AsyncIterator[Any]:
    ex = local_ccxt(ccxtpro, server.base_url, server.api_key, server.api_secret)
    ex.urls["api"]["ws"]["linear"] = server.ws_url + "/ws"
    try:
        await ex.load_markets()
        yield ex
    finally:
        await ex.close()


async def until(predicate: Callable[[], bool]) -> None:
    """Yield to the loop until ``predicate()`` holds (ccxt applies frames in its own tasks)."""

    async def spin() -> None:
        for _ in itertools.count():
            if predicate():
                return
            await asyncio.sleep(0)

    await asyncio.wait_for(spin(), GUARD_S)


async def guarded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, GUARD_S)


async def subscribed(server: ServerHandle, name: str) -> None:
    hub = server.streams
    await guarded(hub.wait_until(lambda: hub.subscribed(name) > 0))


async def user_stream_open(server: ServerHandle) -> None:
    hub = server.streams

    def ready() -> bool:
        key = hub.keys.alive_for(server.account_id)
        return key is not None and hub.subscribed(key.key) > 0

    await guarded(hub.wait_until(ready))


def _floats(levels: list[tuple[Decimal, Decimal]]) -> list[list[float]]:
    return [[float(p), float(q)] for p, q in levels]


@pytest.mark.asyncio
async def test_watch_order_book_stays_identical_to_rest_depth_through_thousands_of_updates(
    pro: Any, server: ServerHandle, http: Http
) -> None:
    engine = server.engine
    accounts = funded_accounts(engine, 3)
    diffs: list[DepthDiff] = []
    token = engine.events.subscribe(lambda e: diffs.append(e) if isinstance(e, DepthDiff) else None)
    books = {symbol: asyncio.ensure_future(pro.watch_order_book(symbol)) for symbol in (BTC, ETH)}
    for task in books.values():
        await guarded(task)  # resolves once ccxt applied its REST snapshot
    assert server.streams.subscribed("btcusdt@depth@100ms") == 1
    rng = random.Random(5)
    compared = 0
    for _ in range(8):
        for _ in range(500):
            random_operation(engine, rng, accounts)
        for symbol, exchange_id in ((BTC, "BTCUSDT"), (ETH, "ETHUSDT")):
            rest = await rest_book(http, exchange_id)
            local = pro.orderbooks[symbol]
            await until(lambda: local["nonce"] == rest["lastUpdateId"])  # noqa: B023
            book = local.limit()
            assert book["bids"] == _floats(rest["bids"])
            assert book["asks"] == _floats(rest["asks"])
            compared += len(book["bids"]) + len(book["asks"])
    engine.events.unsubscribe(token)
    assert len(diffs) > 2_000  # every one went through ccxt's U/u/pu checks
    assert compared > 200


@pytest.mark.asyncio
async def test_a_gap_fault_surfaces_in_ccxt_as_a_checksum_error(
    pro: Any, server: ServerHandle, http: Http
) -> None:
    (acct,) = funded_accounts(server.engine, 1)
    await guarded(pro.watch_order_book(BTC))
    await http.control("POST", "stream-faults", {"gap_symbol": "BTCUSDT"})
    for price in ("59000", "59001"):
        server.engine.place_order(acct, limit("BTCUSDT", Side.BUY, "0.01", price))
    with pytest.raises(ccxt.ChecksumError):
        await guarded(pro.watch_order_book(BTC))


@pytest.mark.asyncio
async def test_watch_trades_and_bids_asks(pro: Any, server: ServerHandle, http: Http) -> None:
    trades_task = asyncio.ensure_future(pro.watch_trades(BTC))
    ticker_task = asyncio.ensure_future(pro.watch_bids_asks([BTC]))
    await subscribed(server, "btcusdt@trade")
    await subscribed(server, "btcusdt@bookTicker")
    (acct,) = funded_accounts(server.engine, 1)
    server.engine.place_order(acct, market("BTCUSDT", Side.SELL, "0.3"))
    trades = await guarded(trades_task)
    rest = await pro.fetch_trades(BTC, limit=20)
    by_id = {t["id"]: t for t in rest}
    assert trades
    for trade in trades:
        twin = by_id[trade["id"]]
        assert (trade["price"], trade["amount"], trade["side"]) == (
            twin["price"],
            twin["amount"],
            "sell",
        )
        assert trade["timestamp"] == twin["timestamp"]
    tickers = await guarded(ticker_task)
    rest_ticker = (await http.call("GET", "/fapi/v1/ticker/bookTicker", {"symbol": "BTCUSDT"})).body
    assert tickers[BTC]["bid"] == float(rest_ticker["bidPrice"])
    assert tickers[BTC]["ask"] == float(rest_ticker["askPrice"])


@pytest.mark.asyncio
async def test_watch_mark_price_and_mark_prices(pro: Any, server: ServerHandle, http: Http) -> None:
    one = asyncio.ensure_future(pro.watch_mark_price(BTC))
    await subscribed(server, "btcusdt@markPrice@1s")
    await http.control("POST", "advance", {"ms": 1_000})
    ticker = await guarded(one)
    index = (await http.call("GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"})).body
    assert ticker["symbol"] == BTC
    assert ticker["markPrice"] == float(index["markPrice"])
    assert ticker["indexPrice"] == float(index["indexPrice"])
    assert ticker["timestamp"] == index["time"]
    every = asyncio.ensure_future(pro.watch_mark_prices())
    await subscribed(server, "!markPrice@arr@1s")
    await http.control("POST", "advance", {"ms": 1_000})
    marks = await guarded(every)
    assert set(marks) == {BTC, ETH}
    eth = (await http.call("GET", "/fapi/v1/premiumIndex", {"symbol": "ETHUSDT"})).body
    assert marks[ETH]["markPrice"] == float(eth["markPrice"])


@pytest.mark.asyncio
async def test_watch_orders_my_trades_balance_and_positions(pro: Any, server: ServerHandle) -> None:
    snapshot = await guarded(pro.watch_positions([BTC]))  # ccxt's REST snapshot, no socket yet
    assert snapshot == []
    orders = asyncio.ensure_future(pro.watch_orders(BTC))
    fills = asyncio.ensure_future(pro.watch_my_trades(BTC))
    balance = asyncio.ensure_future(pro.watch_balance())
    positions = asyncio.ensure_future(pro.watch_positions([BTC]))
    await user_stream_open(server)
    placed = await pro.create_order(BTC, "market", "buy", 0.01)
    first = await guarded(orders)
    assert first[0]["id"] == placed["id"]
    await until(lambda: pro.orders.hashmap[BTC][placed["id"]]["status"] == "closed")
    streamed = pro.orders.hashmap[BTC][placed["id"]]
    fetched = await pro.fetch_order(placed["id"], BTC)
    assert (streamed["filled"], streamed["average"], streamed["side"]) == (
        fetched["filled"],
        fetched["average"],
        "buy",
    )
    mine = await guarded(fills)
    rest_fills = {t["id"]: t for t in await pro.fetch_my_trades(BTC)}
    for fill in mine:
        twin = rest_fills[fill["id"]]
        assert (fill["order"], fill["price"], fill["amount"]) == (
            placed["id"],
            twin["price"],
            twin["amount"],
        )
        assert fill["fee"]["cost"] == twin["fee"]["cost"]
    wallet = await guarded(balance)
    rest_balance = await pro.fetch_balance()
    assert wallet["USDT"]["total"] == rest_balance["USDT"]["total"]
    (position,) = await guarded(positions)
    (rest_position,) = [p for p in await pro.fetch_positions([BTC]) if p["contracts"]]
    assert (position["symbol"], position["side"], position["contracts"]) == (BTC, "long", 0.01)
    assert position["entryPrice"] == rest_position["entryPrice"]


@pytest.mark.asyncio
async def test_watch_liquidations_and_my_liquidations(
    pro: Any, server: ServerHandle, http: Http
) -> None:
    public = asyncio.ensure_future(pro.watch_liquidations(BTC))
    # ccxt 4.5.90's watch_my_liquidations does not set up the balance cache its ACCOUNT_UPDATE
    # handler needs (KeyError 'linear' stalls its socket); any other user-data watch does.
    balance = asyncio.ensure_future(pro.watch_balance())
    private = asyncio.ensure_future(pro.watch_my_liquidations(BTC))
    await subscribed(server, "btcusdt@forceOrder")
    await user_stream_open(server)
    await pro.set_margin_mode("isolated", BTC)
    await pro.set_leverage(50, BTC)
    await pro.create_order(BTC, "market", "buy", 0.05)
    (position,) = [p for p in await pro.fetch_positions([BTC]) if p["contracts"]]
    lp = D(str(position["liquidationPrice"]))
    index = D(
        (await http.call("GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"})).body["indexPrice"]
    )
    path = {"symbol": "BTCUSDT", "points": [[0, str(index)], [10_000, str(lp * D("0.98"))]]}
    await http.control("POST", "price-path", {**path, "linear": True})
    await http.control("POST", "advance", {"ms": 12_000})
    (seen,) = await guarded(public)
    (mine,) = await guarded(private)
    forced = (
        await http.call("GET", "/fapi/v1/forceOrders", {"symbol": "BTCUSDT"}, signed=True)
    ).body
    # The public view: what went through the book (forceOrders executedQty/avgPrice).
    assert (seen["symbol"], seen["side"]) == (BTC, "sell")
    assert (seen["contracts"], seen["price"]) == (
        float(forced[0]["executedQty"]),
        float(forced[0]["avgPrice"]),
    )
    assert seen["contracts"] == 0.05
    assert (mine["symbol"], mine["side"], mine["contracts"]) == (BTC, "sell", 0.05)
    assert mine["info"]["c"].startswith("autoclose-")
    assert (await guarded(balance))["USDT"]["total"] > 0


@pytest.mark.asyncio
async def test_drop_connections_is_a_network_error_and_ccxt_reconnects(
    pro: Any, server: ServerHandle, http: Http
) -> None:
    waiting = asyncio.ensure_future(pro.watch_mark_price(BTC))
    await subscribed(server, "btcusdt@markPrice@1s")
    await http.control("POST", "stream-faults", {"drop_connections": True})
    with pytest.raises(ccxt.NetworkError):
        await guarded(waiting)
    again = asyncio.ensure_future(pro.watch_mark_price(BTC))
    await subscribed(server, "btcusdt@markPrice@1s")
    now = (await http.control("POST", "advance", {"ms": 1_000})).body["now_ms"]
    assert (await guarded(again))["timestamp"] == now
