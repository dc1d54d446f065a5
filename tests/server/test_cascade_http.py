"""The concentration and cascade-lab control endpoints (PROTOCOL.md "Concentration and cascades"):
what they serve equals the in-process views, and bad input is a 400, never a 500."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.ccxt_venue.cascade_wire import account_liquidation, concentration, exposure
from adapters.sim.engine.cascade import population
from adapters.sim.server import ServerHandle
from harness.model import Side
from tests.server.conftest import Http

BTC = "BTCUSDT"


@pytest.mark.asyncio
async def test_concentration_is_served_as_the_engine_reports_it(
    http: Http, server: ServerHandle
) -> None:
    engine = server.engine
    account_id = server.account_id
    reply = await http.control(
        "GET", f"concentration?account_id={account_id}&symbol={BTC}&side=SELL&budget_bps=7.5"
    )
    assert reply.status == 200
    served = concentration(reply.body["concentration"])
    expected = engine.concentration.report(
        account_id, BTC, side=Side.SELL, budget_bps=Decimal("7.5")
    )
    assert served == expected
    assert isinstance(reply.body["concentration"]["advice"]["max_qty"], str)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("symbol=BTCUSDT", -1102),
        ("account_id={acct}", -1102),
        ("account_id=nobody&symbol=BTCUSDT", -1130),
        ("account_id={acct}&symbol=NOPE", -1121),
        ("account_id={acct}&symbol=BTCUSDT&side=UP", -1130),
        ("account_id={acct}&symbol=BTCUSDT&budget_bps=-1", -1130),
        ("account_id={acct}&symbol=BTCUSDT&budget_bps=abc", -1130),
        ("account_id={acct}&symbol=BTCUSDT&budget_bps=NaN", -1130),
    ],
)
@pytest.mark.asyncio
async def test_bad_concentration_queries_are_400(
    http: Http, server: ServerHandle, query: str, code: int
) -> None:
    reply = await http.control("GET", "concentration?" + query.format(acct=server.account_id))
    assert (reply.status, reply.body["code"]) == (400, code)


@pytest.mark.asyncio
async def test_population_and_liquidations_are_served_as_the_engine_holds_them(
    http: Http, server: ServerHandle
) -> None:
    assert (await http.control("POST", "scenario", {"name": "latency-cohort"})).status == 200
    reply = (await http.control("GET", "population?name=cohort")).body
    served = [exposure(row) for row in reply["accounts"]]
    assert served == population(server.engine, "cohort")
    everyone = (await http.control("GET", "population")).body["accounts"]
    assert {r["account_id"] for r in reply["accounts"]} < {r["account_id"] for r in everyone}
    unknown = await http.control("GET", "population?name=nope")
    assert (unknown.status, unknown.body["code"]) == (400, -1130)
    index = server.engine.prices[BTC].index
    path = {"symbol": BTC, "points": [[0, format(index * Decimal("0.9"), "f")]]}
    assert (await http.control("POST", "price-path", path)).status == 200
    await http.control("POST", "advance", {"ms": 2_000})
    rows = (await http.control("GET", "liquidations")).body["liquidations"]
    hits = [account_liquidation(r) for r in rows]
    assert {h.account_id for h in hits} == {a.account_id for a in served}
    assert all(h.event.trigger_mark is not None for h in hits)


@pytest.mark.asyncio
async def test_liquidation_latency_is_set_and_read_back(http: Http, server: ServerHandle) -> None:
    assert (await http.control("GET", "liquidation-latency")).body["ms"] == 0
    assert (await http.control("POST", "liquidation-latency", {"ms": 2_000})).status == 200
    assert (await http.control("GET", "liquidation-latency")).body["ms"] == 2_000
    assert server.engine.liquidation_latency.latency_ms == 2_000
    for body, code in (
        ({}, -1102),
        ({"ms": -1}, -1130),
        ({"ms": "2000"}, -1130),
        ({"ms": 3_600_001}, -1130),
        ({"ms": 1.5}, -1130),
    ):
        bad = await http.control("POST", "liquidation-latency", body)
        assert (bad.status, bad.body["code"]) == (400, code), body
