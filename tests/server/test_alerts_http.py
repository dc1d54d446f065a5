"""``GET /control/alerts`` (PROTOCOL.md "Alerts"): the engine's alerts as JSON, filtered."""

from __future__ import annotations

import pytest

from adapters.sim.server import ServerHandle
from adapters.sim.server.alerts import alert_from_json
from harness.alerts import LEVERAGE_CLUSTER
from tests.server.conftest import Http


@pytest.mark.asyncio
async def test_alerts_are_served_as_the_engine_holds_them(http: Http, server: ServerHandle) -> None:
    empty = await http.control("GET", "alerts")
    assert (empty.status, empty.body["alerts"]) == (200, [])
    await http.control("POST", "scenario", {"name": "crowded-long-thin-book"})
    reply = (await http.control("GET", "alerts")).body
    alerts = [alert_from_json(row) for row in reply["alerts"]]
    assert alerts == server.engine.monitor.alerts
    assert [a.detector for a in alerts] == [LEVERAGE_CLUSTER]
    row = reply["alerts"][0]
    assert isinstance(row["statistic"], str)
    assert isinstance(row["evidence"]["accounts"], str)
    later = reply["now_ms"] + 1
    assert (await http.control("GET", f"alerts?since_ms={later}")).body["alerts"] == []
    assert (await http.control("GET", "alerts?symbol=ETHUSDT")).body["alerts"] == []


@pytest.mark.asyncio
async def test_a_malformed_since_is_400(http: Http) -> None:
    bad = await http.control("GET", "alerts?since_ms=yesterday")
    assert (bad.status, bad.body["code"]) == (400, -1130)
