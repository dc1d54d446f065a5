"""Faults over HTTP (PROTOCOL.md "Faults"): latency, lost ack, 503 bursts, maintenance, deplete."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from adapters.sim.server import start_server
from harness.venue import VenueConfig
from tests.server.conftest import Http

BTC = "BTCUSDT"


def _order(cid: str, **extra: Any) -> dict[str, Any]:
    return {
        "symbol": BTC,
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "0.002",
        "price": "59000",
        "timeInForce": "GTC",
        "newClientOrderId": cid,
        **extra,
    }


@pytest.mark.asyncio
async def test_latency_executes_the_order_that_much_later_in_virtual_time(http: Http) -> None:
    await http.control("POST", "faults", {"latency_ms": 2_500})
    sent = int((await http.call("GET", "/fapi/v1/ping")).headers["X-SIM-TIME"])
    order = await http.call("POST", "/fapi/v1/order", _order("slow"), signed=True, body=True)
    assert order.body["updateTime"] == sent + 2_500
    assert int(order.headers["X-SIM-TIME"]) == sent + 2_500
    public = await http.call("GET", "/fapi/v1/ping")
    assert int(public.headers["X-SIM-TIME"]) == sent + 2_500  # public requests are not delayed


@pytest.mark.asyncio
async def test_lost_ack_executes_then_closes_the_connection(http: Http) -> None:
    await http.control("POST", "faults", {"lost_ack": 1})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await http.call("POST", "/fapi/v1/order", _order("lost"), signed=True, body=True)
    assert (await http.control("GET", "faults")).body["lost_ack"] == 0
    found = await http.call(
        "GET", "/fapi/v1/order", {"symbol": BTC, "origClientOrderId": "lost"}, signed=True
    )
    assert (found.status, found.body["status"]) == (200, "NEW")
    again = await http.call("POST", "/fapi/v1/order", _order("lost"), signed=True, body=True)
    assert again.body["code"] == -4116  # resending blindly duplicates the client id


@pytest.mark.asyncio
async def test_a_refused_order_does_not_lose_an_ack(http: Http) -> None:
    await http.control("POST", "faults", {"lost_ack": 1})
    refused = await http.call(
        "POST", "/fapi/v1/order", _order("bad", price="1"), signed=True, body=True
    )
    assert refused.body["code"] == -4013
    assert (await http.control("GET", "faults")).body["lost_ack"] == 1


@pytest.mark.asyncio
async def test_error_burst_answers_503_and_executes_nothing(http: Http) -> None:
    await http.control("POST", "faults", {"error_burst": 2})
    for cid in ("b-1", "b-2"):
        reply = await http.call("POST", "/fapi/v1/order", _order(cid), signed=True, body=True)
        assert (reply.status, reply.body) == (
            503,
            {
                "code": -1001,
                "msg": "Internal error; unable to process your request. Please try again.",
            },
        )
    after = await http.call("GET", "/fapi/v1/openOrders", {"symbol": BTC}, signed=True)
    assert (after.status, after.body) == (200, [])
    assert after.headers["X-MBX-USED-WEIGHT-1M"] == "1"  # the 503s charged nothing


@pytest.mark.asyncio
async def test_maintenance_answers_503_until_switched_off(http: Http) -> None:
    await http.control("POST", "faults", {"maintenance": True})
    for method, path in (("GET", "/fapi/v1/time"), ("GET", "/fapi/v3/account")):
        reply = await http.call(method, path, signed=path.endswith("account"))
        assert (reply.status, reply.body["code"]) == (503, -1001)
    assert (await http.control("GET", "faults")).body["maintenance"] is True
    assert (await http.control("GET", "info")).status == 200  # control is not the venue
    await http.control("POST", "faults", {"maintenance": False})
    assert (await http.call("GET", "/fapi/v1/time")).status == 200


@pytest.mark.asyncio
async def test_deplete_removes_a_fraction_of_one_side(http: Http) -> None:
    def depth(body: dict[str, Any], side: str) -> Decimal:
        return sum((Decimal(q) for _, q in body[side]), Decimal(0))

    before = (await http.call("GET", "/fapi/v1/depth", {"symbol": BTC, "limit": 1000})).body
    reply = await http.control(
        "POST", "faults", {"deplete": {"symbol": BTC, "side": "SELL", "fraction": "0.75"}}
    )
    assert reply.status == 200
    after = (await http.call("GET", "/fapi/v1/depth", {"symbol": BTC, "limit": 1000})).body
    assert depth(after, "bids") == depth(before, "bids")
    assert depth(after, "asks") <= depth(before, "asks") / 4 + Decimal("0.05")
    assert (await http.control("GET", "faults")).body["deplete"] is None


@pytest.mark.asyncio
async def test_gateway_defects_apply_over_http_too() -> None:
    defects = ("429-without-retry-after", "maintenance-executes-orders", "transact-time-at-receipt")
    async with (
        await start_server(VenueConfig(seed=7, defects=defects)) as handle,
        aiohttp.ClientSession() as session,
    ):
        http = Http(session, handle)
        await http.control("POST", "rate-limits", {"weight_per_minute": 1})
        await http.call("GET", "/fapi/v1/ping")
        limited = await http.call("GET", "/fapi/v1/ping")
        assert limited.status == 429
        assert "Retry-After" not in limited.headers
        await http.control("POST", "rate-limits", {"weight_per_minute": 2400})
        await http.control("POST", "advance", {"ms": 60_000})
        await http.control("POST", "faults", {"maintenance": True, "latency_ms": 1_000})
        sent = int((await http.control("GET", "info")).headers["X-SIM-TIME"])
        reply = await http.call("POST", "/fapi/v1/order", _order("m-1"), signed=True, body=True)
        assert reply.status == 503
        await http.control("POST", "faults", {"maintenance": False, "latency_ms": 0})
        found = await http.call(
            "GET", "/fapi/v1/order", {"symbol": BTC, "origClientOrderId": "m-1"}, signed=True
        )
        assert found.body["status"] == "NEW"  # executed although the answer was a 503
        assert found.body["updateTime"] == sent  # the receipt time, not the execution time
