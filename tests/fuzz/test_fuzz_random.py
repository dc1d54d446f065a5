"""Anything at all, judged by the published description: no 5xx, every refusal documented.

Where tests/fuzz/test_fuzz_classes.py sends one defect at a time, this sends many at once:
documented and invented parameter names, values of every type (unicode, control characters,
huge and negative integers, exponents, empty), parameters repeated, in the query or the body,
signed, unsigned, wrongly signed or stale, with the account's key, none, an unknown or a
malformed one, to the described endpoints, other methods on them and unknown paths. The oracle
is ``GET /openapi.json`` as the server publishes it: each refusal's code must be one the
description lists for that endpoint and status (404/405 ``-1099`` off the surface).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import FuzzStats, check_invariants, scaled, server_settings
from tests.fuzz.kit import FuzzServer, RawClient, Request, encode, signed, wall_ms

EXAMPLES = 100
BATCH = 40
MINIMUM = 3_600
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
UNKNOWN_PATHS = ("/fapi/v1/nothing", "/fapi/v9/order", "/sim/v1/x", "/fapi/v1/order/1", "/")

wild_values = st.one_of(
    st.text(max_size=16),
    st.integers(-(10**30), 10**30).map(str),
    st.integers(-5, 2000).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "true", "FALSE", "null", "[]", "{}", "9" * 40, "-0", "0.000000001"]),
    st.sampled_from(["BTCUSDT", "ETHUSDT", "BUY", "SELL", "LIMIT", "MARKET", "GTC", "1m"]),
)


@pytest.fixture(scope="module")
def description(fuzz_server: FuzzServer) -> dict[str, Any]:
    client = RawClient(fuzz_server.host, fuzz_server.port)
    try:
        reply = client.send(Request("GET", "/openapi.json"))
    finally:
        client.close()
    assert reply.status == 200
    doc: dict[str, Any] = reply.json
    return doc


def _documented(doc: dict[str, Any], method: str, path: str, status: int) -> set[int] | None:
    """The codes the description lists; None when the route is not described."""
    op = doc["paths"].get(path, {}).get(method.lower())
    if op is None:
        return None
    response = op["responses"].get(str(status))
    if response is None:
        return set()
    schema = response["content"]["application/json"]["schema"]
    return set(schema["allOf"][1]["properties"]["code"]["enum"])


@st.composite
def requests(draw: st.DrawFn, doc: dict[str, Any], key: str, secret: str) -> Request:
    described = [(m.upper(), p) for p, ops in doc["paths"].items() for m in ops]
    roll = draw(st.integers(0, 19))
    if roll < 17:
        method, path = draw(st.sampled_from(described))
    elif roll < 19:
        method = draw(st.sampled_from(METHODS))
        path = draw(st.sampled_from(sorted(doc["paths"])))
    else:
        method, path = draw(st.sampled_from(METHODS)), draw(st.sampled_from(UNKNOWN_PATHS))
    op = doc["paths"].get(path, {}).get(method.lower(), {})
    names = [p["name"] for p in op.get("parameters", ())] or ["symbol"]
    name = st.one_of(st.sampled_from(names), st.sampled_from(names), st.text(max_size=6))
    pairs = draw(st.lists(st.tuples(name, wild_values), max_size=8))
    signing = draw(st.sampled_from(["valid", "valid", "valid", "none", "garbage", "stale"]))
    if signing != "none":
        stamp = wall_ms() - (3_600_000 if signing == "stale" else 0)
        pairs = [("timestamp", str(stamp)), *pairs]
    query = encode(pairs)
    if signing != "none":
        signature = signed(secret, query) if signing in ("valid", "stale") else "0" * 64
        query += b"&signature=" + signature.encode()
    headers: tuple[tuple[str, bytes], ...] = ()
    who = draw(st.sampled_from(["key", "key", "key", "none", "unknown", "malformed"]))
    if who != "none":
        value = {"key": key, "unknown": "nobody", "malformed": "not a key!"}[who]
        headers = (("X-MBX-APIKEY", value.encode()),)
    if method != "GET" and draw(st.booleans()):
        return Request(method, path, b"", query, headers)
    return Request(method, path, query, b"", headers)


def _check(
    doc: dict[str, Any], request: Request, status: int, headers: dict[str, str], body: Any
) -> None:
    assert status < 500, (request, status, body)
    if status == 405:  # RFC 9110: the methods the path takes
        allowed = {m.upper() for m in doc["paths"].get(request.path, {})}
        assert set(headers.get("Allow", "").split(",")) >= allowed, (request, headers)
    if status < 400:
        return
    assert isinstance(body, dict), (request, status, body)
    assert set(body) == {"code", "msg"}, (request, body)
    assert isinstance(body["code"], int), (request, body)
    assert isinstance(body["msg"], str), (request, body)
    codes = _documented(doc, request.method, request.path, status)
    if codes is None:  # off the surface: unknown path or method
        assert (status, body["code"]) in {(404, -1099), (405, -1099)}, (request, body)
    else:
        assert body["code"] in codes, (
            f"{request.method} {request.path} answered {status} {body}; "
            f"the description lists {sorted(codes)}",
            request,
        )


@server_settings(EXAMPLES)
@given(data=st.data())
def test_random_requests_get_no_5xx_and_only_documented_codes(
    fuzz_server: FuzzServer,
    fuzz_stats: FuzzStats,
    description: dict[str, Any],
    data: st.DataObject,
) -> None:
    handle = fuzz_server.handle
    strategy = requests(description, handle.api_key, handle.api_secret)
    client = RawClient(fuzz_server.host, fuzz_server.port)
    started = time.monotonic()
    try:
        for _ in range(BATCH):
            request = data.draw(strategy)
            reply = client.send(request)
            fuzz_stats.count("random", reply.status, reply.code)
            body = reply.json if reply.json is not None or not reply.raw else json.loads(reply.raw)
            _check(description, request, reply.status, reply.headers, body)
    finally:
        client.close()
        fuzz_stats.seconds += time.monotonic() - started
    check_invariants(fuzz_server)


def test_the_random_fuzz_sent_its_share(fuzz_stats: FuzzStats) -> None:
    if not fuzz_stats.sent["random"]:
        pytest.skip("runs after test_random_requests_get_no_5xx_and_only_documented_codes")
    assert fuzz_stats.sent["random"] >= scaled(MINIMUM)
