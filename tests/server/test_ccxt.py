"""Unmodified ccxt ``binanceusdm`` (async and sync) against the server (surface doc §1, §2, §4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import ccxt
import ccxt.async_support as accxt
import pytest
import pytest_asyncio

from adapters.sim.server import ServerHandle
from tests.server.conftest import Http, ThreadedServer, local_ccxt

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


@pytest_asyncio.fixture
async def ex(server: ServerHandle) -> AsyncIterator[Any]:
    client = local_ccxt(accxt, server.base_url, server.api_key, server.api_secret)
    try:
        yield client
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_ccxt_reads_markets_books_marks_funding_and_tiers(ex: Any, http: Http) -> None:
    markets = await ex.load_markets()
    btc = markets[BTC]
    assert (btc["type"], btc["linear"], btc["settle"]) == ("swap", True, "USDT")
    assert btc["precision"] == {"amount": 0.001, "price": 0.1, "base": 1e-08, "quote": 1e-08}
    assert btc["limits"]["cost"]["min"] == 100
    assert await ex.fetch_time() > 1_700_000_000_000
    book = await ex.fetch_order_book(BTC, 5)
    assert len(book["bids"]) == 5
    assert book["bids"][0][0] < book["asks"][0][0]
    assert book["timestamp"] == int((await http.call("GET", "/fapi/v1/time")).headers["X-SIM-TIME"])
    ticker = await ex.fetch_ticker(BTC)
    assert ticker["last"] == 60000
    mark = await ex.fetch_mark_price(BTC)
    assert mark["markPrice"] > 0
    rate = await ex.fetch_funding_rate(BTC)
    assert rate["fundingRate"] == 0.0001
    assert rate["fundingTimestamp"] == 1_767_225_600_000 + 8 * 3_600_000
    await http.control("POST", "advance", {"ms": 2 * 3_600_000})
    history = await ex.fetch_funding_rate_history(ETH)
    assert len(history) == 2
    tiers = await ex.fetch_leverage_tiers()
    assert tiers[BTC][0]["maxLeverage"] == 125
    assert tiers[BTC][0]["maintenanceMarginRate"] == 0.004


@pytest.mark.asyncio
async def test_ccxt_trades_and_reads_the_account(ex: Any, http: Http) -> None:
    await ex.load_markets()
    balance = await ex.fetch_balance()
    assert balance["USDT"]["total"] == 10000
    assert (await ex.set_leverage(10, BTC))["leverage"] == 10
    await ex.set_margin_mode("isolated", ETH)
    with pytest.raises(ccxt.MarginModeAlreadySet):
        await ex.set_margin_mode("isolated", ETH)
    resting = await ex.create_order(BTC, "limit", "buy", 0.002, 59000, {"clientOrderId": "rest-1"})
    assert (resting["status"], resting["clientOrderId"]) == ("open", "rest-1")
    post = await ex.create_order(BTC, "limit", "buy", 0.002, 58000, {"postOnly": True})
    assert post["postOnly"] is True
    assert post["timeInForce"] == "PO"
    market = await ex.create_order(BTC, "market", "buy", 0.01)
    assert (market["status"], market["filled"]) == ("closed", 0.01)
    assert market["average"] > 60000
    ioc = await ex.create_order(
        BTC, "limit", "sell", 0.005, 50000, {"timeInForce": "IOC", "reduceOnly": True}
    )
    assert (ioc["status"], ioc["reduceOnly"]) == ("closed", True)
    fetched = await ex.fetch_order(resting["id"], BTC)
    assert fetched["clientOrderId"] == "rest-1"
    assert {o["id"] for o in await ex.fetch_open_orders(BTC)} == {resting["id"], post["id"]}
    canceled = await ex.cancel_order(resting["id"], BTC)
    assert canceled["status"] == "canceled"
    trades = await ex.fetch_my_trades(BTC)
    assert len(trades) == 2
    assert trades[0]["fee"]["currency"] == "USDT"
    assert trades[0]["fee"]["cost"] > 0
    assert trades[0]["takerOrMaker"] == "taker"
    await ex.create_order(ETH, "market", "buy", 0.5)
    added = await ex.add_margin(ETH, 5)
    assert added["amount"] == 5
    positions = {p["symbol"]: p for p in await ex.fetch_positions([BTC, ETH])}
    assert positions[BTC]["contracts"] == 0.005
    assert positions[BTC]["marginMode"] == "cross"
    assert positions[ETH]["marginMode"] == "isolated"
    assert positions[ETH]["liquidationPrice"] > 0
    assert positions[ETH]["collateral"] > 0
    await http.control("POST", "advance", {"ms": 3_600_000})
    funding = await ex.fetch_funding_history(ETH)
    assert len(funding) == 1
    assert funding[0]["code"] == "USDT"


@pytest.mark.asyncio
async def test_ccxt_sees_binance_errors_as_its_own_classes(
    ex: Any, server: ServerHandle, http: Http
) -> None:
    await ex.load_markets()
    with pytest.raises(ccxt.OrderNotFound):
        await ex.fetch_order("424242", BTC)
    with pytest.raises(ccxt.OrderNotFound):
        await ex.cancel_order("424242", BTC)
    # ccxt maps -4014 (price not on the tick) to BadRequest: neither the body rule (no
    # "PRICE_FILTER" in fapi's message) nor the linear table makes it InvalidOrder.
    with pytest.raises(ccxt.BadRequest, match="-4014"):
        await ex.create_order(BTC, "limit", "buy", 0.002, 59000, {"price": "59000.05"})
    with pytest.raises(ccxt.InvalidOrder, match="-4164"):
        await ex.create_order(BTC, "limit", "buy", 0.001, 59000)
    with pytest.raises(ccxt.InsufficientFunds, match="-2019"):
        await ex.create_order(BTC, "market", "buy", 5)
    stale = local_ccxt(accxt, server.base_url, server.api_key, server.api_secret)
    stale.options["timeDifference"] = 30_000
    wrong = local_ccxt(accxt, server.base_url, server.api_key, "not-the-secret")
    unknown = local_ccxt(accxt, server.base_url, "unknownkey", "whatever")
    try:
        with pytest.raises(ccxt.InvalidNonce):
            await stale.fetch_balance()
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            await wrong.fetch_balance()
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            await unknown.fetch_balance()
    finally:
        await asyncio.gather(stale.close(), wrong.close(), unknown.close())
    await http.control("POST", "advance", {"ms": 60_000})  # a fresh weight window
    await http.control("POST", "rate-limits", {"weight_per_minute": 5})
    await ex.fetch_balance()
    with pytest.raises(ccxt.DDoSProtection, match="429"):
        await ex.fetch_balance()
    with pytest.raises(ccxt.DDoSProtection, match="418"):
        await ex.fetch_balance()


@pytest.mark.asyncio
async def test_ccxt_lost_ack_is_a_network_error_and_the_order_is_found_by_client_id(
    ex: Any, http: Http
) -> None:
    await ex.load_markets()
    await http.control("POST", "faults", {"lost_ack": 1})
    with pytest.raises(ccxt.NetworkError):
        await ex.create_order(BTC, "limit", "buy", 0.002, 59000, {"clientOrderId": "lost-ccxt"})
    found = await ex.fetch_order(None, BTC, {"origClientOrderId": "lost-ccxt"})
    assert found["status"] == "open"


def test_sync_ccxt_against_a_server_in_a_thread(threaded: ThreadedServer) -> None:
    handle = threaded.handle
    ex = local_ccxt(ccxt, handle.base_url, handle.api_key, handle.api_secret)
    ex.load_markets()
    assert ex.fetch_order_book(BTC, 10)["bids"]
    assert ex.fetch_funding_rate(BTC)["markPrice"] > 0
    assert ex.fetch_balance()["USDT"]["free"] > 0
    order = ex.create_order(BTC, "market", "sell", 0.002, None, {"clientOrderId": "sync-1"})
    assert order["clientOrderId"] == "sync-1"
    assert ex.fetch_order(order["id"], BTC)["status"] == "closed"
    (position,) = ex.fetch_positions([BTC])
    assert position["side"] == "short"
    assert position["liquidationPrice"] > 60000
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(order["id"], BTC)
    ex.secret = "wrong"  # noqa: S105 - a deliberately wrong test secret
    with pytest.raises(ccxt.AuthenticationError):
        ex.fetch_balance()


@pytest.mark.asyncio
async def test_sync_ccxt_in_a_worker_thread_while_the_server_runs_in_this_loop(
    server: ServerHandle,
) -> None:
    ex = local_ccxt(ccxt, server.base_url, server.api_key, server.api_secret)

    def work() -> float:
        ex.load_markets()
        return float(ex.fetch_ticker(BTC)["last"])

    assert await asyncio.to_thread(work) == 60000
