"""Secrets stay secret and safety nets hold (DESIGN.md "Testnet safety"; harness/safety.py).

* A real ``perpcheck run`` on ``sim-http`` (a subprocess, as a user runs it) records every API
  key, secret, control token and request signature the server saw (a recording hook installed
  before the CLI starts); none of them appears in any file the run wrote (results.jsonl,
  run.json, index.html, allure-results/*, anything else under the run's folder and working
  directory) nor in what it printed.
* Production REST and WebSocket hosts are refused without ``--allow-mainnet``, however the URL
  is spelled.
* The control API answers loopback peers only (403 ``-1002`` otherwise, even with the token)
  and only with the token (401 ``-2015``), for every control route, without acting.
* Notional caps refuse an oversize order before anything is sent: the server sees no order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.ccxt_venue._wire import Wire
from adapters.ccxt_venue.clients import binance_client
from adapters.sim.server import ROUTES, KeyRing, create_app
from adapters.sim.server import runner as server_runner
from adapters.sim.venue import open_sim_venue
from harness.errors import Rejected
from harness.model import OrderRequest, OrderType, Side, TimeInForce
from harness.safety import (
    PRODUCTION_HOSTS,
    MainnetRefused,
    NotionalGuard,
    SafeAccount,
    SafetyRefused,
    check_url,
)
from harness.venue import Venue, VenueConfig, open_venue
from tests.fuzz.report import report

D = Decimal

# ----------------------------------------------------------------------------- the run's artifacts
# Runs the CLI with a hook that records every credential the simulator's server issues or checks.
BOOTSTRAP = """
import atexit, json, sys
from adapters.sim.server import app, auth, runner

seen = {"keys": [], "secrets": [], "signatures": [], "tokens": []}
add = auth.KeyRing.add
def recording_add(self, credential):
    seen["keys"].append(credential.api_key)
    seen["secrets"].append(credential.secret)
    return add(self, credential)
auth.KeyRing.add = recording_add
authenticate = app.authenticate
def recording_authenticate(raw, api_key, keys, wall_ms):
    if raw.signature:
        seen["signatures"].append(raw.signature)
    return authenticate(raw, api_key, keys, wall_ms)
app.authenticate = recording_authenticate
create_app = runner.create_app
def recording_create_app(engine, **kwargs):
    seen["tokens"].append(kwargs["control_token"])
    return create_app(engine, **kwargs)
runner.create_app = recording_create_app
atexit.register(lambda: open(sys.argv[1], "w").write(json.dumps(seen)))

from harness.cli import main
sys.exit(main(sys.argv[2:]))
"""


def leaks(secrets: Iterable[str], texts: dict[str, bytes]) -> list[tuple[str, str]]:
    """``(where, secret prefix)`` for each secret found in a text (hex case-insensitively)."""
    found = []
    lowered = {where: text.lower() for where, text in texts.items()}
    for secret in {s for s in secrets if s}:
        needle = secret.encode()
        for where, text in texts.items():
            if needle in text or needle.lower() in lowered[where]:
                found.append((where, secret[:8]))
    return found


def test_the_leak_scanner_finds_a_planted_secret() -> None:
    signature = "3C66" + "ab" * 30
    texts = {"a.json": b'{"x": "...3c66' + b"AB" * 30 + b'..."}', "b.html": b"<p>clean</p>"}
    assert leaks([signature, "unused-secret"], texts) == [("a.json", signature[:8])]


def test_a_sim_http_run_leaks_no_key_secret_token_or_signature(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    script, seen_file = tmp_path / "bootstrap.py", tmp_path / "seen.json"
    script.write_text(BOOTSTRAP)
    argv = ["run", "--venue", "sim-http", "--seed", "5", "-k", "ORD or RATE-001", "-v"]
    argv += ["--defect", "post-only-takes"]  # a failing check: failures print the most detail
    proc = subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, str(script), str(seen_file), *argv],
        cwd=work,
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert b"ORD-004" in proc.stdout  # the run ran and reported its checks
    seen = json.loads(seen_file.read_text())
    assert seen["keys"], "the recording hook saw no API key"
    assert len(seen["secrets"]) == len(seen["keys"])
    assert seen["tokens"], "the recording hook saw no control token"
    assert len(seen["signatures"]) >= 50, "too few signed requests to say anything"
    files = {str(p.relative_to(work)): p.read_bytes() for p in work.rglob("*") if p.is_file()}
    names = {Path(n).name for n in files}
    assert {"results.jsonl", "run.json", "index.html"} <= names, sorted(files)
    assert any("allure-results" in n for n in files), sorted(files)
    texts = {**files, "<stdout>": proc.stdout, "<stderr>": proc.stderr}
    secrets = [*seen["keys"], *seen["secrets"], *seen["tokens"], *seen["signatures"]]
    assert leaks(secrets, texts) == []
    report(
        request.config,
        "secrets",
        f"secrets: {len(set(seen['keys']))} API keys and secrets, {len(set(seen['tokens']))} "
        f"control tokens and {len(set(seen['signatures']))} signatures of a sim-http run looked "
        f"for in {len(files)} files and its output: none found",
    )


# ----------------------------------------------------------------------------- mainnet
@pytest.mark.parametrize("host", sorted(PRODUCTION_HOSTS))
def test_every_production_host_is_refused_without_allow_mainnet_over_rest_and_websocket(
    host: str,
) -> None:
    spellings = [
        f"https://{host}",
        f"https://{host}/fapi/v1/order",
        f"https://{host.upper()}:443/x",
        f"https://{host}.",  # the fully qualified name resolves to the same host
        f"wss://{host}/ws/btcusdt@depth",
        f"ws://{host}:9443/stream?streams=a",
        f"https://user@{host}/",
    ]
    for url in spellings:
        with pytest.raises(MainnetRefused, match="production endpoint"):
            check_url(url)
        check_url(url, allow_mainnet=True)


def test_test_environments_and_loopback_pass() -> None:
    for url in (
        "https://demo-fapi.binance.com/fapi/v1",
        "wss://fstream.binancefuture.com/ws",
        "https://api-testnet.bybit.com",
        "wss://stream-testnet.bybit.com/v5/public/linear",
        "http://127.0.0.1:8080/fapi/v1",
        "ws://127.0.0.1:8080/ws",
        "https://fapi.binance.com.evil.example",  # not the production host
    ):
        check_url(url)


def test_a_binance_client_for_production_is_refused_before_any_request() -> None:
    with pytest.raises(MainnetRefused):
        binance_client(api_key="k", secret="s", wire=Wire())  # noqa: S106 - production URLs


# ----------------------------------------------------------------------------- the control API
PEER_HEADER = "X-Test-Peer"
TOKEN = "control-token-for-tests"  # noqa: S105 - a test token


@web.middleware
async def fake_peer(request: web.Request, handler: Any) -> web.StreamResponse:
    """The peer address the test names (aiohttp's ``clone(remote=...)``), outermost."""
    peer = request.headers.get(PEER_HEADER)
    response: web.StreamResponse = await handler(request.clone(remote=peer) if peer else request)
    return response


@pytest_asyncio.fixture
async def control_client() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], Any]]:
    venue = await open_sim_venue(VenueConfig(seed=3))
    app = create_app(venue.engine, keys=KeyRing(), control_token=TOKEN)
    app.middlewares.insert(0, fake_peer)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, venue.engine
    finally:
        await client.close()


CONTROL_ROUTES = sorted({(r.method, r.path) for r in ROUTES if r.path.startswith("/control/")})
REMOTE_PEERS = ("10.0.0.7", "192.168.1.20", "172.16.0.1", "8.8.8.8", "fe80::1", "::ffff:10.0.0.1")


@pytest.mark.asyncio
async def test_the_control_api_refuses_non_loopback_peers_even_with_the_token(
    control_client: tuple[TestClient[web.Request, web.Application], Any],
) -> None:
    client, engine = control_client
    assert len(CONTROL_ROUTES) >= 20
    before = engine.clock.now_ms()
    for method, path in CONTROL_ROUTES:
        for peer in REMOTE_PEERS:
            headers = {"X-PERPCHECK-TOKEN": TOKEN, PEER_HEADER: peer}
            body = {"ms": 60_000} if path == "/control/advance" else {}
            resp = await client.request(method, path, headers=headers, json=body)
            assert resp.status == 403, (method, path, peer)
            assert (await resp.json())["code"] == -1002
    assert engine.clock.now_ms() == before  # nothing acted


@pytest.mark.asyncio
async def test_the_control_api_refuses_a_wrong_or_missing_token_from_loopback(
    control_client: tuple[TestClient[web.Request, web.Application], Any],
) -> None:
    client, engine = control_client
    before = engine.clock.now_ms()
    for method, path in CONTROL_ROUTES:
        for token in (None, "", "wrong", TOKEN + "x", TOKEN[:-1], TOKEN.upper()):
            headers = {PEER_HEADER: "127.0.0.1"}
            if token is not None:
                headers["X-PERPCHECK-TOKEN"] = token
            body = {"ms": 60_000} if path == "/control/advance" else {}
            resp = await client.request(method, path, headers=headers, json=body)
            assert resp.status == 401, (method, path, token)
            assert (await resp.json())["code"] == -2015
    assert engine.clock.now_ms() == before
    for peer in ("127.0.0.1", "127.9.9.9", "::1"):  # and the right token works from loopback
        headers = {"X-PERPCHECK-TOKEN": TOKEN, PEER_HEADER: peer}
        resp = await client.post("/control/advance", headers=headers, json={"ms": 1_000})
        assert resp.status == 200, await resp.text()
    assert engine.clock.now_ms() == before + 3_000


# ----------------------------------------------------------------------------- notional caps
@pytest_asyncio.fixture
async def counted_sim_http(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Venue, list[tuple[str, str]]]]:
    """Venue ``sim-http`` whose server records every request it receives."""
    seen: list[tuple[str, str]] = []

    @web.middleware
    async def counting(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        seen.append((request.method, request.path))
        return await handler(request)

    create = create_app  # what runner.start_server calls

    def counting_app(engine: Any, **kwargs: Any) -> web.Application:
        app = create(engine, **kwargs)
        app.middlewares.insert(0, counting)
        return app

    monkeypatch.setattr(server_runner, "create_app", counting_app)
    venue = await open_venue("sim-http", VenueConfig(seed=9))
    try:
        yield venue, seen
    finally:
        await venue.close()


def _buy(qty: str, price: str | None = None) -> OrderRequest:
    if price is None:
        return OrderRequest(symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, quantity=D(qty))
    return OrderRequest(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D(qty),
        price=D(price),
        time_in_force=TimeInForce.GTC,
    )


@pytest.mark.asyncio
async def test_notional_caps_refuse_oversize_orders_before_anything_reaches_the_server(
    counted_sim_http: tuple[Venue, list[tuple[str, str]]],
) -> None:
    venue, seen = counted_sim_http

    async def mark_of(symbol: str) -> Decimal:
        return (await venue.mark(symbol)).mark_price

    guard = NotionalGuard(per_order=D(1_000), per_run=D(1_500))
    account = SafeAccount(venue.account(), prefix="pcT-", guard=guard, mark_of=mark_of)
    orders = ("POST", "/fapi/v1/order")

    seen.clear()
    with pytest.raises(SafetyRefused, match="per-order cap 1000"):
        await account.place_order(_buy("0.05", "50000"))  # 2,500 > 1,000
    assert seen == []  # a limit order needs no reference: not one request

    with pytest.raises(SafetyRefused, match="per-order cap 1000"):
        await account.place_order(_buy("1"))  # a market order: priced at the mark
    assert orders not in seen
    assert set(seen) <= {("GET", "/fapi/v1/premiumIndex")}, seen

    seen.clear()
    await account.place_order(_buy("0.018", "50000"))  # 900: admitted, and sent
    assert seen.count(orders) == 1

    seen.clear()
    with pytest.raises(SafetyRefused, match="per-run cap 1500"):
        await account.place_order(_buy("0.014", "50000"))  # 900 + 700 > 1,500
    assert seen == []
    reduce_only = OrderRequest(
        symbol="BTCUSDT",
        side=Side.SELL,
        type=OrderType.LIMIT,
        quantity=D("0.5"),
        price=D("70000"),
        time_in_force=TimeInForce.GTC,
        reduce_only=True,
    )
    seen.clear()
    with pytest.raises(Rejected) as refused:  # reduce-only passes the caps: the venue judges
        await account.place_order(reduce_only)
    assert refused.value.code == -2022  # no position to reduce
    assert seen.count(orders) == 1
