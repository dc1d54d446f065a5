"""What the fuzzing found, pinned: each was a -1000 (the server's "unexpected error"), a silent
acceptance, a plain-text answer or a missing header before it was fixed (PROTOCOL.md "Errors")."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator

import pytest

from adapters.sim.server.openapi import MAX_BODY_BYTES
from tests.fuzz.kit import FuzzServer, RawClient, Reply, Request, encode, signed, wall_ms


@pytest.fixture
def client(fuzz_server: FuzzServer) -> Iterator[RawClient]:
    conn = RawClient(fuzz_server.host, fuzz_server.port)
    try:
        yield conn
    finally:
        conn.close()


def _signed(server: FuzzServer, method: str, path: str, pairs: list[tuple[str, str]]) -> Request:
    query = encode([*pairs, ("timestamp", str(wall_ms()))])
    query += b"&signature=" + signed(server.handle.api_secret, query).encode()
    return Request(method, path, query, b"", (("X-MBX-APIKEY", server.handle.api_key.encode()),))


def _refused(reply: Reply) -> tuple[int, int | None]:
    assert reply.headers["Content-Type"].startswith("application/json"), reply
    assert set(reply.json) == {"code", "msg"}, reply
    return reply.status, reply.code


@pytest.mark.parametrize(
    "limit",
    ["²", "٥", "5\n", "9223372036854775808", "-9223372036854775809", "9" * 19],
)
def test_a_limit_that_is_no_64_bit_integer_is_malformed(client: RawClient, limit: str) -> None:
    # "²".isdigit() made the depth weight rule raise (-1000); "5\n" matched ^...$; 19 nines
    # matched the pattern but are no long.
    query = encode([("symbol", "BTCUSDT"), ("limit", limit)])
    assert _refused(client.send(Request("GET", "/fapi/v1/depth", query))) == (400, -1102)


def test_a_body_over_one_mebibyte_is_413_too_many_parameters(client: RawClient) -> None:
    body = b"a=" + b"1" * MAX_BODY_BYTES
    reply = client.send(Request("POST", "/fapi/v1/order", b"", body))
    assert _refused(reply) == (413, -1101)  # was -1000


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_body_not_in_its_content_encoding_is_illegal_characters(
    client: RawClient, encoding: str
) -> None:
    headers = (("Content-Encoding", encoding.encode()),)
    reply = client.send(Request("POST", "/fapi/v1/order", b"", b"not compressed", headers))
    assert _refused(reply) == (400, -1100)  # was -1000
    packed = gzip.compress(b"symbol=NOPE")  # a body in its encoding is read
    headers = (("Content-Encoding", b"gzip"),)
    reply = client.send(Request("POST", "/fapi/v1/listenKey", b"", packed, headers))
    assert _refused(reply) == (401, -2015)


def test_long_query_strings_and_keys_reach_the_venue(client: RawClient) -> None:
    query = encode([(f"p{i}", "1") for i in range(2_000)])  # ~16 KB: over aiohttp's 8190
    assert _refused(client.send(Request("GET", "/fapi/v1/time", query))) == (400, -1101)
    headers = (("X-MBX-APIKEY", b"k" * 20_000),)
    reply = client.send(Request("POST", "/fapi/v1/listenKey", b"", b"", headers))
    assert _refused(reply) == (401, -2014)  # was a plain-text 400 from the HTTP parser


@pytest.mark.parametrize(
    ("path", "params"), [("/fapi/v1/userTrades", True), ("/fapi/v1/aggTrades", False)]
)
def test_a_bad_start_time_is_refused_even_with_from_id(
    fuzz_server: FuzzServer, client: RawClient, path: str, params: bool
) -> None:
    pairs = [("symbol", "BTCUSDT"), ("fromId", "0"), ("startTime", "-5")]
    request = (
        _signed(fuzz_server, "GET", path, pairs) if params else Request("GET", path, encode(pairs))
    )
    assert _refused(client.send(request)) == (400, -1130)  # was accepted, startTime unread


def test_a_405_names_the_methods_the_path_takes(client: RawClient) -> None:
    reply = client.send(Request("PATCH", "/fapi/v1/order"))
    assert _refused(reply) == (405, -1099)
    assert set(reply.headers["Allow"].split(",")) == {"GET", "POST", "DELETE"}


def test_what_is_not_http_is_refused_by_the_http_layer_without_a_5xx(
    fuzz_server: FuzzServer,
) -> None:
    """Raw non-ASCII bytes in the request line never reach the venue: aiohttp's parser answers
    400 (plain text, as Binance's front end would) and closes the connection."""
    for line in ("GET /fapi/v1/depth?symbol=BTCü HTTP/1.1", "GET /fapi/v1/ti me HTTP/1.1"):
        with socket.create_connection((fuzz_server.host, fuzz_server.port), timeout=10) as sock:
            sock.sendall(line.encode() + b"\r\nHost: x\r\n\r\n")
            head = sock.recv(4096).split(b"\r\n", 1)[0]
        assert head.split()[1] == b"400", head


@pytest.mark.parametrize("cid", ["fuzz-cid\n", "fuzz-cid\r\n", "\nfuzz-cid"])
def test_a_client_order_id_with_a_newline_is_illegal_characters(
    fuzz_server: FuzzServer, client: RawClient, cid: str
) -> None:
    # The pattern ^...$ was applied with re.match: "$" matches before a trailing newline, so
    # "fuzz-cid\n" was accepted as a client order id.
    pairs = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.010"),
        ("price", "50000"),
        ("newClientOrderId", cid),
    ]
    reply = client.send(_signed(fuzz_server, "POST", "/fapi/v1/order", pairs))
    assert _refused(reply) == (400, -1100)
