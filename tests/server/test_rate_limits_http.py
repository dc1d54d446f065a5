"""Rate limits over HTTP: headers, 429 -1003 at the exact boundary, -1015, 418 (surface doc §4)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import Http

BTC = "BTCUSDT"


def _order(cid: str) -> dict[str, Any]:
    return {
        "symbol": BTC,
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "0.002",
        "price": "59000",
        "timeInForce": "GTC",
        "newClientOrderId": cid,
    }


@pytest.mark.asyncio
async def test_every_venue_response_carries_the_used_weight(http: Http) -> None:
    ping = await http.call("GET", "/fapi/v1/ping")
    assert ping.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    depth = await http.call("GET", "/fapi/v1/depth", {"symbol": BTC, "limit": 100})
    assert depth.headers["X-MBX-USED-WEIGHT-1M"] == "6"
    refused = await http.call("GET", "/fapi/v1/depth", {"symbol": "NOPE"})
    assert refused.status == 400
    assert refused.headers["X-MBX-USED-WEIGHT-1M"] == "16"  # refused by the venue, still charged
    account = await http.call("GET", "/fapi/v3/account", signed=True)
    assert account.headers["X-MBX-USED-WEIGHT-1M"] == "21"
    assert "X-MBX-ORDER-COUNT-10S" not in account.headers
    control = await http.control("GET", "info")
    assert "X-MBX-USED-WEIGHT-1M" not in control.headers
    assert "X-SIM-TIME" in control.headers


@pytest.mark.asyncio
async def test_order_responses_carry_the_order_counts(http: Http) -> None:
    first = await http.call("POST", "/fapi/v1/order", _order("c-1"), signed=True, body=True)
    assert first.headers["X-MBX-ORDER-COUNT-10S"] == first.headers["X-MBX-ORDER-COUNT-1M"] == "1"
    assert first.headers["X-MBX-USED-WEIGHT-1M"] == "0"  # a new order costs no IP weight
    rejected = await http.call(
        "POST", "/fapi/v1/order", {**_order("c-2"), "price": "59000.05"}, signed=True, body=True
    )
    assert rejected.body["code"] == -4014
    assert rejected.headers["X-MBX-ORDER-COUNT-10S"] == "2"


@pytest.mark.asyncio
async def test_429_1003_exactly_past_the_weight_limit_with_retry_after(http: Http) -> None:
    assert (await http.control("POST", "rate-limits", {"weight_per_minute": 10})).status == 200
    for i in range(5):
        reply = await http.call("GET", "/fapi/v1/depth", {"symbol": BTC, "limit": 5})
        assert reply.status == 200
        assert reply.headers["X-MBX-USED-WEIGHT-1M"] == str(2 * (i + 1))
    limited = await http.call("GET", "/fapi/v1/ping")
    assert limited.status == 429
    assert limited.body["code"] == -1003
    assert "10 requests per minute" in limited.body["msg"]
    assert limited.headers["Retry-After"] == "60"
    assert limited.headers["X-MBX-USED-WEIGHT-1M"] == "10"
    order = await http.call("POST", "/fapi/v1/order", _order("free"), signed=True, body=True)
    assert order.status == 418  # sent inside Retry-After: banned, whatever the endpoint
    assert order.body["code"] == -1003
    assert "banned until" in order.body["msg"]
    assert order.headers["Retry-After"] == "120"
    assert (await http.control("POST", "advance", {"ms": 119_000})).status == 200
    still = await http.call("GET", "/fapi/v1/time")
    assert (still.status, still.headers["Retry-After"]) == (418, "1")
    await http.control("POST", "advance", {"ms": 1_000})
    assert (await http.call("GET", "/fapi/v1/time")).status == 200


@pytest.mark.asyncio
async def test_advancing_the_virtual_clock_frees_the_window(http: Http) -> None:
    await http.control("POST", "rate-limits", {"weight_per_minute": 5})
    assert (await http.call("GET", "/fapi/v3/account", signed=True)).status == 200
    limited = await http.call("GET", "/fapi/v1/ping")
    assert limited.status == 429
    await http.control("POST", "advance", {"ms": int(limited.headers["Retry-After"]) * 1000})
    again = await http.call("GET", "/fapi/v3/account", signed=True)
    assert (again.status, again.headers["X-MBX-USED-WEIGHT-1M"]) == (200, "5")


@pytest.mark.asyncio
async def test_1015_for_the_order_window_independent_of_weight(http: Http) -> None:
    await http.control("POST", "rate-limits", {"orders_per_10s": 3})
    for i in range(3):
        reply = await http.call("POST", "/fapi/v1/order", _order(f"w-{i}"), signed=True, body=True)
        assert reply.status == 200
    refused = await http.call("POST", "/fapi/v1/order", _order("w-3"), signed=True, body=True)
    assert refused.status == 429
    assert refused.body == {
        "code": -1015,
        "msg": "Too many new orders; current limit is 3 orders per TEN_SECONDS.",
    }
    assert refused.headers["X-MBX-USED-WEIGHT-1M"] == "0"
    assert refused.headers["X-MBX-ORDER-COUNT-10S"] == "3"
    reads = await http.call("GET", "/fapi/v1/openOrders", {"symbol": BTC}, signed=True)
    assert (reads.status, len(reads.body)) == (200, 3)  # reads go on while orders wait
    await http.control("POST", "advance", {"ms": int(refused.headers["Retry-After"]) * 1000})
    later = await http.call("POST", "/fapi/v1/order", _order("w-4"), signed=True, body=True)
    assert later.status == 200


@pytest.mark.asyncio
async def test_limits_are_read_and_tightened_through_the_control_api(http: Http) -> None:
    assert (await http.control("GET", "rate-limits")).body | {"now_ms": 0} == {
        "weight_per_minute": 2400,
        "orders_per_10s": 300,
        "orders_per_minute": 1200,
        "ban_ms": 120_000,
        "now_ms": 0,
    }
    await http.control("POST", "rate-limits", {"orders_per_minute": 7, "ban_ms": 5_000})
    after = (await http.control("GET", "rate-limits")).body
    assert (after["orders_per_minute"], after["ban_ms"], after["weight_per_minute"]) == (
        7,
        5_000,
        2400,
    )
    info = (await http.call("GET", "/fapi/v1/exchangeInfo")).body
    assert [r["limit"] for r in info["rateLimits"]] == [2400, 7, 300]


@pytest.mark.asyncio
async def test_an_account_opened_by_control_counts_on_its_own_seat(http: Http) -> None:
    opened = (await http.control("POST", "accounts", {"wallet": "1000"})).body
    other = Http(http.session, http.handle, key=opened["api_key"], secret=opened["api_secret"])
    await http.control("POST", "rate-limits", {"weight_per_minute": 5})
    assert (await http.call("GET", "/fapi/v3/account", signed=True)).status == 200
    theirs = await other.call("GET", "/fapi/v3/account", signed=True)
    assert (theirs.status, theirs.headers["X-MBX-USED-WEIGHT-1M"]) == (200, "5")
    assert (await http.call("GET", "/fapi/v1/ping")).status == 429
