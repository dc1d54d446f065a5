"""Binance's official ``binance-futures-connector`` (``UMFutures``) against the server (§5a)."""

from __future__ import annotations

import pytest
from binance.error import ClientError
from binance.um_futures import UMFutures

from tests.server.conftest import ThreadedServer

BTC = "BTCUSDT"


@pytest.fixture(scope="module")
def client(threaded: ThreadedServer) -> UMFutures:
    handle = threaded.handle
    return UMFutures(key=handle.api_key, secret=handle.api_secret, base_url=handle.base_url)


def test_connector_reads_public_market_data(client: UMFutures) -> None:
    assert client.time()["serverTime"] > 1_700_000_000_000
    info = client.exchange_info()
    assert {s["symbol"] for s in info["symbols"]} == {"BTCUSDT", "ETHUSDT"}
    depth = client.depth(BTC, limit=10)
    assert len(depth["bids"]) == 10
    assert client.mark_price(BTC)["symbol"] == BTC


def test_connector_places_queries_and_cancels_with_params_in_the_query(client: UMFutures) -> None:
    placed = client.new_order(
        symbol=BTC,
        side="BUY",
        type="LIMIT",
        quantity=0.002,
        price=59000,
        timeInForce="GTC",
        reduceOnly="False",
        newClientOrderId="conn-1",
    )
    assert placed["status"] == "NEW"
    queried = client.query_order(BTC, origClientOrderId="conn-1")
    assert queried["orderId"] == placed["orderId"]
    canceled = client.cancel_order(BTC, origClientOrderId="conn-1", recvWindow=6000)
    assert canceled["status"] == "CANCELED"
    client.new_order(symbol=BTC, side="SELL", type="MARKET", quantity=0.003)
    (position,) = client.get_position_risk(symbol=BTC)
    assert position["positionAmt"] == "-0.003"
    account = client.account()
    assert account["assets"][0]["asset"] == "USDT"
    assert [p["symbol"] for p in account["positions"]] == [BTC]


def test_connector_raises_client_error_with_the_binance_code(client: UMFutures) -> None:
    with pytest.raises(ClientError) as info:
        client.new_order(symbol=BTC, side="BUY", type="LIMIT", quantity=0.002, timeInForce="GTC")
    assert (info.value.status_code, info.value.error_code) == (400, -1102)
    with pytest.raises(ClientError) as unknown:
        client.query_order(BTC, orderId=987654)
    assert unknown.value.error_code == -2013
