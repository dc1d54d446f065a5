"""Faults and a restart from a snapshot: after reconciliation, no duplicate and no orphan order.

Two trader clients (the ccxt ``sim-http`` account, :class:`~harness.backoff.Backoff` for
retries) place seeded orders, each under its own client order id, through a TCP proxy that drops
connections mid-request (before the request reaches the server, half-way through it, or after
the server answered and before the answer reaches the client), while the server itself loses
acknowledgements, answers 5xx bursts and goes into maintenance. Part-way, the server's state is
snapshotted (``POST /control/snapshot``); later the server is stopped (orders keep being sent
into the outage) and a new one is started from the snapshot (``start_server(restore=...)``, what
``perpcheck serve --restore`` does): everything acknowledged after the snapshot is gone. The
clients then reconcile by client order id (:func:`harness.reconcile.reconcile`: look up every
intent; place it again only where the venue says it does not exist), faults still on.

Checked on the restarted engine: every intent is exactly one order (zero duplicates, none
lost), every order of a trader is an intent (zero orphans), the harness's reconciliation says
the same, and each trader's balance and positions reconcile with its trade log (fills, income).
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.ccxt_venue._wire import Wire
from adapters.ccxt_venue.binance import BinanceAccount
from adapters.ccxt_venue.clients import binance_client
from adapters.sim.engine.exchange import Engine
from adapters.sim.engine.snapshot import SnapshotError
from adapters.sim.server import ServerHandle, start_server
from harness.backoff import Backoff
from harness.clock import VirtualClock
from harness.errors import Rejected, Unavailable
from harness.model import ClientOrderId, IncomeType, OrderRequest, OrderType, Side, TimeInForce
from harness.reconcile import Reconciliation, reconcile
from harness.venue import VenueConfig
from tests.fuzz.report import report

D = Decimal
SEED = 1010
INTENTS = 36  # per trader
SNAPSHOT_AT = 24  # the snapshot: what is acknowledged later is lost by the restart
OUTAGE = 3  # intents per trader sent while the server is down
WALLET = D(100_000)
SYMBOLS = ("BTCUSDT", "ETHUSDT")
PREFIX = "rst"
OPEN_LIMITS = {"weight_per_minute": 10**6, "orders_per_10s": 10**6, "orders_per_minute": 10**6}


# ----------------------------------------------------------------------------- the proxy
class DroppingProxy:
    """Loopback TCP proxy, one upstream connection per HTTP request; drops connections.

    Each request's fate is drawn from a seeded generator: ``before`` (closed before anything
    is forwarded), ``partial`` (half the request forwarded, then closed: the server never has a
    whole request), ``after`` (forwarded and answered, the answer thrown away). With the server
    down, every connection is dropped.
    """

    FATES = (("before", 0.04), ("partial", 0.03), ("after", 0.05))

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.upstream: int | None = None
        self.dropping = False
        self.counts: Counter[str] = Counter()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _fate(self) -> str:
        if not self.dropping:
            return "pass"
        draw = self.rng.random()
        for fate, share in self.FATES:
            if draw < share:
                self.counts[fate] += 1
                return fate
            draw -= share
        return "pass"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await _message(reader)) is not None:
                fate = self._fate()
                if fate == "before":
                    break
                answer = await self._forward(request, fate)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _forward(self, request: bytes, fate: str) -> bytes | None:
        if self.upstream is None:
            self.counts["server down"] += 1
            return None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            self.counts["server down"] += 1
            return None
        try:
            if fate == "partial":
                up_writer.write(request[: len(request) // 2])
                await up_writer.drain()
                return None
            up_writer.write(request)
            await up_writer.drain()
            answer = await _message(up_reader)  # None: the server closed it (a lost ack)
            return None if fate == "after" else answer
        finally:
            up_writer.close()


async def _message(reader: asyncio.StreamReader) -> bytes | None:
    """One HTTP/1.1 message (headers and a Content-Length body); None at end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return head + await reader.readexactly(length)


# ----------------------------------------------------------------------------- the clients
@dataclass(slots=True)
class Trader:
    name: str
    account_id: str
    account: BinanceAccount
    backoff: Backoff
    intents: dict[ClientOrderId, OrderRequest] = field(default_factory=dict)
    acked: dict[ClientOrderId, int] = field(default_factory=dict)  # cid -> step acknowledged
    unknown: set[ClientOrderId] = field(default_factory=set)
    refused: set[ClientOrderId] = field(default_factory=set)

    async def send(self, request: OrderRequest, step: int) -> None:
        cid = request.client_order_id
        assert cid is not None
        self.intents[cid] = request
        try:
            await self.backoff.place(self.account, request)
        except Unavailable:
            self.unknown.add(cid)
        except Rejected:
            self.refused.add(cid)
            del self.intents[cid]  # definitely not placed: no longer wanted
        else:
            self.acked[cid] = step


def _intent(rng: random.Random, name: str, n: int, marks: dict[str, Decimal]) -> OrderRequest:
    symbol = rng.choice(SYMBOLS)
    eth = symbol.startswith("ETH")
    qty = D(rng.randint(1, 5)) * (D("0.01") if eth else D("0.001"))
    side = rng.choice(list(Side))
    cid = ClientOrderId(f"{PREFIX}{name}{n}")
    if rng.random() < 0.25:
        return OrderRequest(
            symbol=symbol, side=side, type=OrderType.MARKET, quantity=qty, client_order_id=cid
        )
    tick = D("0.01") if eth else D("0.1")
    price = (marks[symbol] * (1 + D(rng.randint(-30, 30)) / 10_000)).quantize(tick)
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=OrderType.LIMIT,
        quantity=qty,
        price=price,
        time_in_force=TimeInForce.GTC,
        client_order_id=cid,
    )


async def _control(
    session: aiohttp.ClientSession, handle: ServerHandle, path: str, body: Any = None
) -> Any:
    headers = {"X-PERPCHECK-TOKEN": handle.control_token}
    url = f"{handle.base_url}/control/{path}"
    method = "GET" if body is None else "POST"
    async with session.request(method, url, json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _snapshot(session: aiohttp.ClientSession, handle: ServerHandle) -> bytes:
    headers = {"X-PERPCHECK-TOKEN": handle.control_token}
    async with session.post(f"{handle.base_url}/control/snapshot", headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/vnd.perpcheck.snapshot"
        return await resp.read()


# ----------------------------------------------------------------------------- checks
def _assert_exactly_once(engine: Engine, trader: Trader, result: Reconciliation) -> int:
    """Zero duplicates, zero orphans, nothing lost: the venue's orders are the intents."""
    orders = list(engine.accounts[trader.account_id].orders.values())
    per_cid = Counter(r.client_order_id for r in orders)
    duplicates = {cid: n for cid, n in per_cid.items() if n > 1}
    assert not duplicates, f"{trader.name}: client ids with several orders: {duplicates}"
    orphans = sorted(set(per_cid) - set(trader.intents))
    assert not orphans, f"{trader.name}: orders the client does not know: {orphans}"
    wanted = set(trader.intents) - set(result.refused)
    lost = sorted(wanted - set(per_cid))
    assert not lost, f"{trader.name}: intents with no order: {lost}"
    assert result.clean, f"{trader.name}: {result.summary()}"
    assert set(result.orders) == wanted
    return len(orders)


async def _assert_books_balance(trader: Trader) -> int:
    """Positions replay from the fills; the wallet is the sum of the income log."""
    account = trader.account
    fills = [f for s in SYMBOLS for f in await account.fills(s)]
    income = await account.income()
    positions = {p.symbol: p.quantity for p in await account.positions()}
    for symbol in SYMBOLS:
        replayed = sum(
            (f.qty if f.side is Side.BUY else -f.qty for f in fills if f.symbol == symbol), D(0)
        )
        assert positions.get(symbol, D(0)) == replayed, (trader.name, symbol)

    def total(kind: IncomeType) -> Decimal:
        return sum((i.amount for i in income if i.income_type is kind), D(0))

    assert total(IncomeType.REALIZED_PNL) == sum((f.realized_pnl for f in fills), D(0))
    assert total(IncomeType.COMMISSION) == -sum((f.commission for f in fills), D(0))
    assert total(IncomeType.TRANSFER) == WALLET
    balance = await account.balance()
    assert balance.wallet_balance == sum((i.amount for i in income), D(0)), trader.name
    return len(fills)


# ----------------------------------------------------------------------------- the test
@pytest.mark.asyncio
async def test_faults_and_a_restart_leave_no_duplicate_and_no_orphan_order(
    request: pytest.FixtureRequest,
) -> None:
    first = await start_server(VenueConfig(seed=SEED))
    second: ServerHandle | None = None
    proxy = DroppingProxy(SEED)
    proxy.upstream = int(first.base_url.rsplit(":", 1)[1])
    proxy_url = await proxy.start()
    traders: list[Trader] = []
    injected: Counter[str] = Counter()
    try:
        async with aiohttp.ClientSession() as session:
            await _control(session, first, "rate-limits", OPEN_LIMITS)
            for name in ("a", "b"):
                reply = await _control(session, first, "accounts", {"wallet": str(WALLET)})
                ex = binance_client(
                    api_key=reply["api_key"],
                    secret=reply["api_secret"],
                    wire=Wire(),
                    base_url=proxy_url,
                )
                account = BinanceAccount(ex, account_id=reply["account_id"], venue_name="sim-http")
                await account.open_orders()  # markets loaded before any fault
                backoff = Backoff(clock=VirtualClock(), max_attempts=6)
                traders.append(Trader(name, reply["account_id"], account, backoff))
            marks = {s: first.engine.mark(s) for s in SYMBOLS}
            rng = random.Random(SEED)
            proxy.dropping = True

            async def faults(handle: ServerHandle, step: int) -> None:
                plan: dict[int, dict[str, Any]] = {
                    4: {"lost_ack": 3},
                    10: {"error_burst": 4},
                    16: {"maintenance": True},
                    18: {"maintenance": False},
                    28: {"lost_ack": 2},
                    31: {"error_burst": 3},
                }
                if step in plan:
                    await _control(session, handle, "faults", plan[step])
                    for name, value in plan[step].items():
                        injected[name] += value if value is not False else 0

            data = b""
            for step in range(INTENTS):
                await faults(first, step)
                if step == SNAPSHOT_AT:
                    data = await _snapshot(session, first)
                for trader in traders:
                    await trader.send(_intent(rng, trader.name, step, marks), step)
            await first.stop()  # the crash
            proxy.upstream = None
            for step in range(INTENTS, INTENTS + OUTAGE):
                for trader in traders:
                    await trader.send(_intent(rng, trader.name, step, marks), step)
            lost_by_restart = sum(
                1 for t in traders for step in t.acked.values() if step >= SNAPSHOT_AT
            )

            second = await start_server(restore=data)
            assert second.seed == SEED
            proxy.upstream = int(second.base_url.rsplit(":", 1)[1])
            await _control(session, second, "faults", {"lost_ack": 2, "error_burst": 2})
            injected.update({"lost_ack": 2, "error_burst": 2, "restart": 1})
            results: dict[str, Reconciliation] = {}
            for trader in traders:
                for _ in range(5):  # until no intent's outcome is unknown
                    result = await reconcile(
                        trader.account, trader.intents, trader.backoff, prefix=PREFIX
                    )
                    if not result.unknown:
                        break
                results[trader.name] = result
            proxy.dropping = False
            # A last pass without faults places nothing: everything was already there.
            for trader in traders:
                final = await reconcile(
                    trader.account, trader.intents, trader.backoff, prefix=PREFIX
                )
                assert not final.placed, final.summary()
                assert final.clean, final.summary()
                results[trader.name].refused.update(final.refused)
            orders = sum(_assert_exactly_once(second.engine, t, results[t.name]) for t in traders)
            fills = sum([await _assert_books_balance(t) for t in traders])
    finally:
        for trader in traders:
            await trader.account.exchange.close()
        await proxy.stop()
        await first.stop()
        if second is not None:
            await second.stop()
    unknown = sum(len(t.unknown) for t in traders)
    placed = sum(len(r.placed) for r in results.values())
    drops = sum(v for k, v in proxy.counts.items() if k != "server down")
    # The faults had effects: acknowledged orders lost, outcomes unknown, intents placed again.
    assert lost_by_restart > 0
    assert unknown > 0
    assert placed > 0
    assert drops > 0
    report(
        request.config,
        "restart",
        f"faults+restart: {drops} connections dropped mid-request ({dict(proxy.counts)}), "
        f"{injected['lost_ack']} lost acks, {injected['error_burst']} 5xx, "
        f"{injected['maintenance']} maintenance window, 1 restart from a snapshot that lost "
        f"{lost_by_restart} acknowledged orders; {unknown} outcomes unknown to the clients; "
        f"{orders} orders reconciled by client id ({placed} placed again), {fills} fills "
        "balanced; 0 duplicates, 0 orphans",
    )


# ----------------------------------------------------------------------------- the CLI
CLI = [sys.executable, "-m", "harness.cli", "serve"]


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [*CLI, *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.asyncio
async def test_serve_restore_restarts_with_the_snapshots_keys_and_state(tmp_path: Path) -> None:
    handle = await start_server(VenueConfig(seed=77))
    try:
        async with aiohttp.ClientSession() as session:
            await _control(session, handle, "advance", {"ms": 5_000})
            data = await _snapshot(session, handle)
            now = handle.engine.clock.now_ms()
    finally:
        await handle.stop()
    path = tmp_path / "sim.snapshot"
    path.write_bytes(data)
    proc = await asyncio.create_subprocess_exec(
        *CLI, "--restore", str(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert (info["seed"], info["api_key"], info["api_secret"]) == (
            77,
            handle.api_key,
            handle.api_secret,
        )
        headers = {"X-PERPCHECK-TOKEN": info["control_token"]}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{info['base_url']}/control/info", headers=headers) as resp,
        ):
            body = await resp.json()
        assert body["seed"] == 77
        assert body["now_ms"] == now
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert (proc.returncode, err) == (0, b"")


@pytest.mark.parametrize(
    ("content", "args", "needle"),
    [
        (None, [], "cannot read it"),
        (b"not a snapshot", [], "not a perpcheck snapshot"),
        (b"PERPCHECK-SNAPSHOT {}\n", [], "format"),
        (b"", ["--seed", "3"], "drop --seed"),
        (b"", ["--defect", "no-ban", "--balance", "5"], "drop --balance, --defect"),
    ],
    ids=["missing", "foreign", "version", "with-seed", "with-options"],
)
def test_serve_restore_refuses_a_bad_file_in_one_line_with_status_2(
    tmp_path: Path, content: bytes | None, args: list[str], needle: str
) -> None:
    path = tmp_path / "sim.snapshot"
    if content is not None:
        path.write_bytes(content)
    proc = _run_cli("--restore", str(path), *args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


@pytest.mark.asyncio
async def test_restore_refuses_a_configuration_and_an_engine_only_snapshot() -> None:
    from adapters.sim.engine.snapshot import snapshot
    from tests.sim.simkit import make_engine

    with pytest.raises(SnapshotError, match="holds no API keys"):
        await start_server(restore=snapshot(make_engine(1)))
    with pytest.raises(Exception, match="configuration and keys from the snapshot"):
        await start_server(VenueConfig(seed=1), restore=b"")


@pytest.mark.asyncio
async def test_the_snapshot_route_requires_the_control_token() -> None:
    handle = await start_server(VenueConfig(seed=5))
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{handle.base_url}/control/snapshot") as resp,
        ):
            assert resp.status == 401
            assert (await resp.json())["code"] == -2015
    finally:
        await handle.stop()


@pytest.mark.asyncio
async def test_a_snapshot_with_open_streams_leaves_them_behind() -> None:
    """Subscribers (the stream hub) are not carried: the restored engine's bus is idle."""
    from adapters.sim.engine.snapshot import restore

    handle = await start_server(VenueConfig(seed=9))
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{handle.ws_url}/ws/btcusdt@depth@100ms") as ws,
        ):
            await _control(session, handle, "advance", {"ms": 2_000})
            assert handle.engine.events.active
            data = await _snapshot(session, handle)
            await _control(session, handle, "advance", {"ms": 1_000})
            assert not ws.closed  # the snapshot did not disturb the live connection
    finally:
        await handle.stop()
    restored = restore(data)
    assert not restored.events.active
    assert all(book.touched is None for book in restored.books.values())
