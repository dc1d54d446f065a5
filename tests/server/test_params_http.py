"""The parameter controller over HTTP (PROTOCOL.md "Parameters"): routes, refusals, parity."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.sim.server import ServerHandle
from harness.params import AuditEntry, ParamState
from tests.server.conftest import Http

BTC = "BTCUSDT"
D = Decimal


@pytest.mark.asyncio
async def test_state_audit_and_brackets_follow_the_controller(
    http: Http, server: ServerHandle
) -> None:
    reply = await http.control("GET", f"params?symbol={BTC}")
    state = ParamState.from_json(reply.body["state"])
    assert state == server.engine.params.state(BTC)
    assert not state.enabled
    for signal, value in (("volatility", "0.01"), ("concentration", "0.9"), ("oi_to_depth", 50)):
        body = {"symbol": BTC, "signal": signal, "value": value}
        assert (await http.control("POST", "param-signal", body)).status == 200
    script = [{"maint_margin_rate": "0.0047", "funding_cap": "NaN"}]
    set_reply = await http.control(
        "POST", "params", {"symbol": BTC, "advisor": "scripted", "script": script}
    )
    assert set_reply.status == 200
    await http.control("POST", "advance", {"ms": 125_000})
    rows = (await http.control("GET", "param-audit")).body["entries"]
    entries = [AuditEntry.from_json(r) for r in rows]
    assert entries == server.engine.params.audit()
    assert [e.line for e in entries] == server.engine.params.audit_lines()
    assert [(e.param, e.kind) for e in entries] == [
        ("maint_margin_rate", "decision"),
        ("funding_cap", "decision"),
        ("maint_margin_rate", "effective"),
    ]
    brackets = await http.call("GET", "/fapi/v1/leverageBracket", {"symbol": BTC}, signed=True)
    first = brackets.body["brackets"][0]
    assert D(str(first["maintMarginRatio"])) == D("0.0047")
    later = entries[-1].time_ms
    since = (await http.control("GET", f"param-audit?since_ms={later}")).body["entries"]
    assert len(since) == 1
    assert (await http.control("GET", "param-audit?symbol=ETHUSDT")).body["entries"] == []
    released = {"symbol": BTC, "signal": "volatility", "value": None}
    assert (await http.control("POST", "param-signal", released)).status == 200
    assert "volatility" not in server.engine.params.state(BTC).overrides


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("GET", "params", None, -1102),
        ("GET", "params?symbol=XRPUSDT", None, -1121),
        ("POST", "params", {"symbol": BTC, "advisor": "oracle"}, -1130),
        ("POST", "params", {"symbol": BTC, "enabled": "yes"}, -1130),
        ("POST", "params", {"symbol": BTC, "advisor": "scripted", "script": {"a": 1}}, -1130),
        ("POST", "params", {"symbol": BTC, "advisor": "scripted", "script": [[1]]}, -1130),
        ("POST", "params", {"symbol": BTC, "advisor": "scripted", "script": [{"x": "1"}]}, -1130),
        ("POST", "params", {"symbol": BTC, "script": [{"funding_cap": 0.5}]}, -1130),
        ("POST", "params", {"symbol": BTC, "advisor": "nan", "script": [{}]}, -1130),
        ("POST", "param-signal", {"symbol": BTC, "signal": "volatility"}, -1102),
        ("POST", "param-signal", {"symbol": BTC, "signal": "mood", "value": "1"}, -1130),
        ("POST", "param-signal", {"symbol": BTC, "signal": "depth", "value": "-1"}, -1130),
        ("POST", "param-signal", {"symbol": BTC, "signal": "depth", "value": "NaN"}, -1130),
        ("POST", "param-signal", {"symbol": BTC, "signal": "depth", "value": "x"}, -1130),
        ("GET", "param-audit?since_ms=soon", None, -1130),
        ("GET", "param-audit?symbol=XRPUSDT", None, -1121),
    ],
)
async def test_bad_input_is_a_400_never_a_500(
    http: Http, method: str, path: str, body: object, code: int
) -> None:
    reply = await http.control(method, path, body)
    assert (reply.status, reply.body["code"]) == (400, code)
