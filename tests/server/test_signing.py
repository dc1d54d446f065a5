"""Request signing, keys and parameter parsing (surface doc §3, §5 server-side implications)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from yarl import URL

from adapters.sim.server import sign
from adapters.sim.server.params import _pairs, _unique
from harness.errors import Rejected
from tests.server.conftest import Http, wall_ms

BTC = "BTCUSDT"


def test_official_signature_test_vector() -> None:
    secret = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"  # noqa: S105 - Binance's published test vector
    payload = (
        "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
        "&recvWindow=5000&timestamp=1591702613943"
    )
    assert sign(secret, payload.encode()) == (
        "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
    )


async def _raw(http: Http, method: str, query: str = "", body: str = "") -> tuple[int, object]:
    headers = {"X-MBX-APIKEY": http.key, "Content-Type": "application/x-www-form-urlencoded"}
    url = f"{http.handle.base_url}/fapi/v3/account" + (f"?{query}" if query else "")
    async with http.session.request(method, url, data=body or None, headers=headers) as resp:
        return resp.status, await resp.json()


@pytest.mark.asyncio
async def test_signature_over_query_and_body_concatenated_byte_for_byte(http: Http) -> None:
    query = f"timestamp={wall_ms()}"
    # Signed over query + body with nothing between them (Binance's totalParams).
    body = "recvWindow=10000"
    url = f"{http.handle.base_url}/fapi/v1/order?symbol={BTC}&orderId=1&{query}"
    payload = f"symbol={BTC}&orderId=1&{query}{body}"
    full_body = f"{body}&signature={sign(http.secret, payload.encode()).upper()}"
    headers = {"X-MBX-APIKEY": http.key, "Content-Type": "application/x-www-form-urlencoded"}
    async with http.session.get(url, data=full_body, headers=headers) as resp:
        assert (await resp.json())["code"] == -2013  # authenticated; the order is unknown


@pytest.mark.asyncio
async def test_keeps_the_parameters_order_and_encoding_as_sent(http: Http) -> None:
    # Connector style: timestamp last; a ':' percent-encoded, as urlencode sends it.
    # (yarl would requote %3A to ':' on the way: send the URL exactly as signed.)
    query = f"symbol={BTC}&origClientOrderId=a%3Ab&timestamp={wall_ms()}"
    signature = sign(http.secret, query.encode())
    url = URL(f"{http.handle.base_url}/fapi/v1/order?{query}&signature={signature}", encoded=True)
    async with http.session.get(url, headers={"X-MBX-APIKEY": http.key}) as resp:
        assert (await resp.json())["code"] == -2013


@pytest.mark.asyncio
async def test_a_wrong_signature_is_1022(http: Http) -> None:
    query = f"timestamp={wall_ms()}"
    status, body = await _raw(http, "GET", f"{query}&signature={'0' * 64}")
    assert (status, body) == (
        400,
        {"code": -1022, "msg": "Signature for this request is not valid."},
    )


@pytest.mark.asyncio
async def test_a_missing_signature_or_timestamp_is_1102(http: Http) -> None:
    status, body = await _raw(http, "GET", f"timestamp={wall_ms()}")
    assert status == 400
    assert body == {
        "code": -1102,
        "msg": "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
    }
    query = "recvWindow=5000"
    status, body = await _raw(http, "GET", f"{query}&signature={sign(http.secret, query.encode())}")
    assert isinstance(body, dict)
    assert (status, body["code"]) == (400, -1102)
    assert "'timestamp'" in body["msg"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("offset", "window", "msg"),
    [
        (-6_000, None, "Timestamp for this request is outside of the recvWindow."),
        (-20_000, 10_000, "Timestamp for this request is outside of the recvWindow."),
        (5_000, None, "Timestamp for this request was 1000ms ahead of the server's time."),
    ],
)
async def test_timestamps_outside_the_window_are_1021_against_wall_time(
    http: Http, offset: int, window: int | None, msg: str
) -> None:
    params = {"timestamp": wall_ms() + offset}
    if window is not None:
        params["recvWindow"] = window
    query = urlencode(params)
    status, body = await _raw(http, "GET", f"{query}&signature={sign(http.secret, query.encode())}")
    assert (status, body) == (400, {"code": -1021, "msg": msg})


@pytest.mark.asyncio
async def test_recv_window_over_60000_is_refused(http: Http) -> None:
    query = f"timestamp={wall_ms()}&recvWindow=60001"
    status, body = await _raw(http, "GET", f"{query}&signature={sign(http.secret, query.encode())}")
    assert isinstance(body, dict)
    assert (status, body["code"]) == (400, -1131)


@pytest.mark.asyncio
async def test_missing_unknown_and_malformed_keys_are_401(http: Http) -> None:
    url = f"{http.handle.base_url}/fapi/v3/account?timestamp={wall_ms()}&signature=00"
    for headers, code in (
        ({}, -2015),
        ({"X-MBX-APIKEY": "unknownkey"}, -2015),
        ({"X-MBX-APIKEY": "bad key!"}, -2014),
    ):
        async with http.session.get(url, headers=headers) as resp:
            assert resp.status == 401
            assert (await resp.json())["code"] == code


@pytest.mark.asyncio
async def test_public_endpoints_ignore_an_api_key_header(http: Http) -> None:
    http.extra_headers["X-MBX-APIKEY"] = "whatever"
    reply = await http.call("GET", "/fapi/v1/time")
    assert reply.status == 200


def test_query_wins_over_body_and_duplicates_are_refused() -> None:
    assert _unique(_pairs(b"a=1&b=%3A+x&c=")) == {"a": "1", "b": ": x", "c": ""}
    with pytest.raises(Rejected) as info:
        _unique(_pairs(b"a=1&a=2"))
    assert info.value.code == -1101
    with pytest.raises(Rejected) as bad:
        _pairs(b"a=%ff")
    assert bad.value.code == -1100


@pytest.mark.asyncio
async def test_query_parameter_wins_over_the_same_in_the_body(http: Http) -> None:
    # Both halves signed together; the body says ETHUSDT, the query BTCUSDT: BTCUSDT is used.
    query = f"symbol={BTC}&timestamp={wall_ms()}"
    body = "symbol=ETHUSDT&leverage=7"
    signature = sign(http.secret, (query + body).encode())
    url = f"{http.handle.base_url}/fapi/v1/leverage?{query}"
    headers = {"X-MBX-APIKEY": http.key, "Content-Type": "application/json;charset=utf-8"}
    async with http.session.post(url, data=f"{body}&signature={signature}", headers=headers) as r:
        assert (await r.json())["symbol"] == BTC


@pytest.mark.asyncio
@pytest.mark.parametrize("text", ["true", "TRUE", "True"])
async def test_booleans_are_case_insensitive(http: Http, text: str) -> None:
    reply = await http.call(
        "POST",
        "/fapi/v1/order",
        {"symbol": BTC, "side": "SELL", "type": "MARKET", "quantity": "0.01", "reduceOnly": text},
        signed=True,
    )
    assert reply.body["code"] == -2022  # reduce-only with no position: it was read as true


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("quantity", "code"),
    [("1e-2", -1100), ("-0.01", -1100), ("0.01.0", -1100), ("NaN", -1100), ("0", -4003)],
)
async def test_decimals_are_parsed_from_their_text_only(
    http: Http, quantity: str, code: int
) -> None:
    reply = await http.call(
        "POST",
        "/fapi/v1/order",
        {"symbol": BTC, "side": "BUY", "type": "MARKET", "quantity": quantity},
        signed=True,
        body=True,
    )
    assert reply.body["code"] == code


@pytest.mark.asyncio
async def test_trailing_zeros_and_stripped_forms_are_the_same_number(http: Http) -> None:
    for qty, price in (("0.002", "59000"), ("0.0020", "59000.0"), ("0.002", "59000.00")):
        reply = await http.call(
            "POST",
            "/fapi/v1/order",
            {
                "symbol": BTC,
                "side": "BUY",
                "type": "LIMIT",
                "quantity": qty,
                "price": price,
                "timeInForce": "GTC",
            },
            signed=True,
            body=True,
        )
        assert reply.status == 200, reply.body
