"""The control API (PROTOCOL.md "Control API"): every route, its gate and its refusals."""

from __future__ import annotations

from decimal import Decimal
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from adapters.sim.server.auth import check_control, is_loopback
from adapters.sim.server.wire import Refused
from tests.server.conftest import Http

BTC = "BTCUSDT"


@pytest.mark.asyncio
async def test_every_reply_carries_the_virtual_time_and_advance_moves_it(http: Http) -> None:
    start = (await http.control("GET", "info")).body["now_ms"]
    moved = await http.control("POST", "advance", {"ms": 1_500})
    assert moved.body == {"now_ms": start + 1_500}
    assert moved.headers["X-SIM-TIME"] == str(start + 1_500)


@pytest.mark.asyncio
async def test_info_names_seed_defects_scenario_capabilities(http: Http) -> None:
    info = (await http.control("GET", "info")).body
    assert (info["seed"], info["defects"], info["scenario"]) == (7, [], None)
    assert "CONTROL_FAULTS" in info["capabilities"]
    names = [s["name"] for s in (await http.control("GET", "scenarios")).body["scenarios"]]
    assert "steady" in names
    assert (await http.control("POST", "scenario", {"name": "thin-book"})).status == 200
    assert (await http.control("GET", "info")).body["scenario"] == "thin-book"
    unknown = await http.control("POST", "scenario", {"name": "nope"})
    assert (unknown.status, unknown.body["code"]) == (400, -1130)


@pytest.mark.asyncio
async def test_price_path_depth_profile_and_quote_skew(http: Http) -> None:
    path = {"symbol": BTC, "points": [[0, "60000"], [10_000, "66000"]], "linear": True}
    assert (await http.control("POST", "price-path", path)).status == 200
    await http.control("POST", "advance", {"ms": 10_000})
    index = (await http.call("GET", "/fapi/v1/premiumIndex", {"symbol": BTC})).body["indexPrice"]
    assert Decimal(index) > Decimal(65_000)
    thin = await http.control("POST", "depth-profile", {"symbol": BTC, "profile": "thin"})
    assert thin.status == 200
    depth = (await http.call("GET", "/fapi/v1/depth", {"symbol": BTC, "limit": 50})).body
    assert len(depth["bids"]) == 3
    assert (await http.control("POST", "quote-skew", {"symbol": BTC, "bps": "25"})).status == 200


@pytest.mark.asyncio
async def test_accounts_get_their_own_working_keys(http: Http) -> None:
    opened = (await http.control("POST", "accounts", {"wallet": "2500.5", "label": "b"})).body
    assert opened["account_id"] == "acct-2"
    other = Http(http.session, http.handle, key=opened["api_key"], secret=opened["api_secret"])
    (bal,) = (await other.call("GET", "/fapi/v3/balance", signed=True)).body
    assert bal["balance"] == "2500.5"


@pytest.mark.asyncio
async def test_insurance_fund_funding_interval_liquidations_and_adl(http: Http) -> None:
    fund = (await http.control("GET", "insurance-fund")).body
    assert (fund["asset"], fund["balance"]) == ("USDT", "1000000")
    await http.control("POST", "insurance-fund", {"balance": "0"})
    assert (await http.control("GET", "insurance-fund")).body["balance"] == "0"
    scheduled = await http.control(
        "POST",
        "funding-interval",
        {"symbol": BTC, "hours": 4, "effective_ms": 1_767_225_600_000 + 8 * 3_600_000},
    )
    assert scheduled.status == 200
    info = (await http.call("GET", "/fapi/v1/fundingInfo")).body
    assert next(r for r in info if r["symbol"] == BTC)["pendingIntervalHours"] == 4
    assert (await http.control("GET", f"liquidations?symbol={BTC}&since_ms=0")).body[
        "liquidations"
    ] == []
    assert (await http.control("GET", "adl")).body["adl"] == []


@pytest.mark.asyncio
async def test_faults_keep_the_fields_not_given(http: Http) -> None:
    await http.control("POST", "faults", {"latency_ms": 100, "error_burst": 2})
    await http.control("POST", "faults", {"latency_ms": 0})
    faults = (await http.control("GET", "faults")).body
    assert (faults["latency_ms"], faults["error_burst"], faults["lost_ack"]) == (0, 2, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("advance", {}, -1102),
        ("advance", {"ms": -1}, -1130),
        ("advance", {"ms": 1.5}, -1130),
        ("advance", [1], -1102),
        ("price-path", {"symbol": BTC, "points": [[10, "1"], [0, "2"]]}, -1130),
        ("price-path", {"symbol": "NOPE", "points": [[0, "1"]]}, -1121),
        ("depth-profile", {"symbol": BTC, "profile": "deep"}, -1130),
        ("accounts", {"wallet": 10.5}, -1130),
        ("accounts", {"wallet": "-1"}, -1130),
        ("insurance-fund", {"balance": "abc"}, -1130),
        ("funding-interval", {"symbol": BTC, "hours": 3, "effective_ms": 0}, -1130),
        ("rate-limits", {"weight_per_minute": "10"}, -1130),
        ("rate-limits", {"burst": 1}, -1130),
        ("faults", {"maintenance": "yes"}, -1130),
        ("faults", {"deplete": {"symbol": BTC, "side": "UP", "fraction": "0.5"}}, -1130),
        ("faults", {"deplete": {"symbol": BTC, "side": "BUY", "fraction": "1.5"}}, -1130),
    ],
)
async def test_bad_bodies_are_400_with_a_code(
    http: Http, path: str, body: object, code: int
) -> None:
    reply = await http.control("POST", path, body)
    assert (reply.status, reply.body["code"]) == (400, code)
    assert isinstance(reply.body["msg"], str)


@pytest.mark.asyncio
async def test_a_body_that_is_not_json_is_400(http: Http) -> None:
    headers = {"X-PERPCHECK-TOKEN": http.handle.control_token}
    url = f"{http.handle.base_url}/control/advance"
    async with http.session.post(url, data=b"{not json", headers=headers) as resp:
        assert (resp.status, (await resp.json())["code"]) == (400, -1102)


@pytest.mark.asyncio
async def test_a_wrong_or_missing_token_is_401(http: Http) -> None:
    url = f"{http.handle.base_url}/control/info"
    for headers in ({}, {"X-PERPCHECK-TOKEN": "wrong"}):
        async with http.session.get(url, headers=headers) as resp:
            assert resp.status == 401
            assert (await resp.json())["code"] == -2015


def _request_from(peer: str, token: str = "t") -> object:  # noqa: S107 - a test token
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 50000) if name == "peername" else default
    )
    return make_mocked_request(
        "GET", "/control/info", headers={"X-PERPCHECK-TOKEN": token}, transport=transport
    )


def test_a_non_loopback_peer_is_refused_403_even_with_the_token() -> None:
    with pytest.raises(Refused) as info:
        check_control(_request_from("192.168.1.20"), "t")  # type: ignore[arg-type]
    assert (info.value.status, info.value.code) == (403, -1002)
    check_control(_request_from("127.0.0.1"), "t")  # type: ignore[arg-type]
    check_control(_request_from("::1"), "t")  # type: ignore[arg-type]
    with pytest.raises(Refused) as wrong:
        check_control(_request_from("127.0.0.1", "x"), "t")  # type: ignore[arg-type]
    assert wrong.value.status == 401


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.8.9.10")
    assert is_loopback("::1")
    assert not is_loopback("10.0.0.1")
    assert not is_loopback(None)
    assert not is_loopback("not an address")
