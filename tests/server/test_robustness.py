"""Nothing escapes as a 500 or as HTML: unknown routes, wrong methods, bugs, and a fuzz."""

from __future__ import annotations

import http.client
import json
import logging
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sim.engine.gateway import ENDPOINTS
from adapters.sim.server import ROUTES, sign
from adapters.sim.server import serialize_market as ser
from tests.server.conftest import Http, ThreadedServer, wall_ms


@pytest.mark.asyncio
async def test_an_unknown_route_is_404_json_with_a_code(http: Http) -> None:
    for path in ("/fapi/v1/nope", "/", "/control/nope", "/sapi/v1/capital/config/getall"):
        reply = await http.call("GET", path)
        assert (reply.status, reply.body["code"]) == (404, -1099)
        assert reply.headers["Content-Type"].startswith("application/json")


@pytest.mark.asyncio
async def test_a_wrong_method_is_405_json_with_a_code(http: Http) -> None:
    for method, path in (("PUT", "/fapi/v1/order"), ("POST", "/fapi/v1/time")):
        reply = await http.call(method, path)
        assert (reply.status, reply.body["code"]) == (405, -1099)


@pytest.mark.asyncio
async def test_an_unexpected_exception_is_logged_and_answered_400_1000(
    http: Http, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> dict[str, Any]:
        msg = "a bug"
        raise RuntimeError(msg)

    monkeypatch.setattr(ser, "exchange_info", broken)
    with caplog.at_level(logging.ERROR, logger="perpcheck.sim.server"):
        reply = await http.call("GET", "/fapi/v1/exchangeInfo")
    assert (reply.status, reply.body["code"]) == (400, -1000)
    assert "a bug" in caplog.text


# ----------------------------------------------------------------------------- fuzz
PATHS = [
    *sorted({r.path for r in ROUTES}),
    "/fapi/v9/nothing",
    "/fapi/v1/order/extra",
    "/control/everything",
]
NAMES = [
    "symbol",
    "side",
    "type",
    "quantity",
    "price",
    "timeInForce",
    "reduceOnly",
    "newClientOrderId",
    "orderId",
    "origClientOrderId",
    "limit",
    "startTime",
    "endTime",
    "fromId",
    "leverage",
    "marginType",
    "amount",
    "incomeType",
    "interval",
    "recvWindow",
    "timestamp",
    "dualSidePosition",
    "positionSide",
    "autoCloseType",
    "newOrderRespType",
]
WORDS = [
    "BTCUSDT",
    "ETHUSDT",
    "BUY",
    "SELL",
    "LIMIT",
    "MARKET",
    "GTC",
    "IOC",
    "FOK",
    "GTX",
    "true",
    "FALSE",
    "ISOLATED",
    "CROSSED",
    "1",
    "2",
    "1m",
    "0.001",
    "60000",
    "FUNDING_FEE",
]
words = st.sampled_from(WORDS)
values = st.one_of(
    words,
    words,
    words,
    st.integers(-(10**25), 10**25).map(str),
    st.integers(0, 2000).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    st.text(max_size=20),
    st.just(""),
    st.just("9" * 300),
    st.just("ü∂\u0000"),
)
names = st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES), st.text(max_size=8))
# Plausible requests reach deep into the handlers (orders that trade, settings that change).
plausible = st.fixed_dictionaries(
    {"symbol": st.sampled_from(["BTCUSDT", "ETHUSDT"])},
    optional={
        "side": st.sampled_from(["BUY", "SELL"]),
        "type": st.sampled_from(["LIMIT", "MARKET"]),
        "quantity": st.sampled_from(["0.001", "0.002", "0.05", "0.5", "3", "0.0015", "0"]),
        "price": st.sampled_from(["59000", "60000.1", "61000", "3000", "2990.01", "1"]),
        "timeInForce": st.sampled_from(["GTC", "IOC", "FOK", "GTX"]),
        "reduceOnly": st.sampled_from(["true", "false"]),
        "newClientOrderId": st.sampled_from(["a", "b", "c-1", "x" * 40]),
        "orderId": st.integers(0, 200).map(str),
        "leverage": st.integers(0, 130).map(str),
        "marginType": st.sampled_from(["ISOLATED", "CROSSED", "isolated"]),
        "amount": st.sampled_from(["1", "5.5", "100000"]),
        "type_": values,
        "limit": st.sampled_from(["5", "100", "1000", "0", "5000"]),
    },
).map(lambda d: {("type" if k == "type_" else k): v for k, v in d.items()})
orders = st.fixed_dictionaries(
    {
        "symbol": st.sampled_from(["BTCUSDT", "ETHUSDT"]),
        "side": st.sampled_from(["BUY", "SELL"]),
        "type": st.sampled_from(["LIMIT", "MARKET"]),
        "quantity": st.sampled_from(["0.002", "0.05", "0.5", "3", "0.0015"]),
    },
    optional={
        "price": st.sampled_from(["59000", "60000.1", "61000", "3000", "2990.01"]),
        "timeInForce": st.sampled_from(["GTC", "IOC", "FOK", "GTX"]),
        "reduceOnly": st.sampled_from(["true", "false"]),
        "newClientOrderId": st.sampled_from(["a", "b", "c-1"]),
    },
)
params = st.one_of(st.dictionaries(names, values, max_size=7), plausible, orders)
# Mostly the route table's own method and path (so handlers run), sometimes anything at all.
routes = st.sampled_from([(r.method, r.path) for r in ROUTES])
anything = st.tuples(
    st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"]), st.sampled_from(PATHS)
)
target = st.tuples(st.integers(0, 9), routes, anything).map(lambda t: t[1] if t[0] < 8 else t[2])
generic = st.tuples(
    target,
    params,
    st.sampled_from(["valid", "valid", "valid", "valid-upper", "garbage", "none"]),
    st.booleans(),
    st.sampled_from(["key", "key", "key", "none", "unknown"]),
)
# A quarter are well-signed order placements, so that orders trade and move the market.
order_flow = st.tuples(
    st.just(("POST", "/fapi/v1/order")), orders, st.just("valid"), st.booleans(), st.just("key")
)
one_request = st.tuples(st.integers(0, 3), generic, order_flow).map(
    lambda t: t[2] if t[0] == 0 else t[1]
)


def _encode(items: dict[str, str]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in items.items())


def _send(
    conn: http.client.HTTPConnection, handle: Any, req: tuple[Any, ...]
) -> tuple[int, http.client.HTTPMessage, str]:
    (method, path), items, signing, in_body, key = req
    text = _encode(items)
    if signing != "none":
        text = f"{text}&timestamp={wall_ms()}" if text else f"timestamp={wall_ms()}"
        signature = sign(handle.api_secret, text.encode()) if signing.startswith("valid") else "zz"
        text += f"&signature={signature.upper() if signing == 'valid-upper' else signature}"
    headers = {"X-PERPCHECK-TOKEN": "wrong"}
    if key == "key":
        headers["X-MBX-APIKEY"] = handle.api_key
    elif key == "unknown":
        headers["X-MBX-APIKEY"] = "nobody"
    body = None
    url = path
    if in_body and method != "GET":
        body = text.encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif text:
        url = f"{path}?{text}"
    conn.request(method, url, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.headers, resp.read().decode("utf-8")


@pytest.fixture(scope="module")
def fuzz_server(threaded: ThreadedServer) -> ThreadedServer:
    async def open_limits() -> None:
        gateway = threaded.handle.engine.gateway
        from harness.venue import RateLimits

        gateway.set_limits(
            RateLimits(weight_per_minute=10**9, orders_per_10s=10**9, orders_per_minute=10**9)
        )

    threaded.run(open_limits())
    return threaded


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(one_request, min_size=30, max_size=40))
def test_random_malformed_requests_never_get_a_5xx_and_always_json(
    fuzz_server: ThreadedServer, batch: list[tuple[Any, ...]]
) -> None:
    handle = fuzz_server.handle
    netloc = urlsplit(handle.base_url).netloc
    conn = http.client.HTTPConnection(netloc, timeout=10)
    try:
        for req in batch:
            status, headers, text = _send(conn, handle, req)
            assert status < 500, (req, status, text)
            assert headers["Content-Type"].startswith("application/json"), (req, headers)
            assert "X-SIM-TIME" in headers
            if req[0] in ENDPOINTS:  # a venue route: its weight is published, even on refusals
                assert "X-MBX-USED-WEIGHT-1M" in headers, (req, status, text)
            body = json.loads(text)
            if status >= 400:
                assert isinstance(body["code"], int), (req, body)
                assert isinstance(body["msg"], str), (req, body)
                assert body["code"] != -1000, (req, body)  # -1000: the server hit a bug
    finally:
        conn.close()
    engine = handle.engine
    for symbol in engine.instruments:
        net = sum(
            (a.positions[symbol].qty for a in engine.accounts.values() if symbol in a.positions),
            Decimal(0),
        )
        assert net == 0, symbol
