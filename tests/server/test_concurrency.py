"""Many clients at once, asyncio tasks and threads: nothing lost, duplicated or one-sided.

The server runs on its own thread and event loop (127.0.0.1:0, seed fixed, rate limits opened:
this is about correctness under concurrency, not throttling). Eight trader accounts are driven
at the same time, four by asyncio tasks over aiohttp and four by threads over raw sockets, each
placing limit and market orders around the mark, cancelling, amending (cancel and replace under
a new client order id) and querying, for a fixed number of operations each, while a ninth task
moves virtual time. Two more clients, a task and a thread, share one account and race to place
the same client order ids and then to cancel the same orders. Afterwards virtual time runs past
a funding settlement.

The checks do not depend on the interleaving:

* every acknowledged order is listed by ``allOrders`` exactly once and found by ``GET order``
  by id and by client id; nothing is listed that no client was acknowledged; client ids are
  unique; a raced client id was accepted once (``-4116`` otherwise), a raced cancel succeeded
  once (``-2011`` otherwise);
* every user trade has its counter-side in the engine (one maker, one taker, opposite sides,
  same price and quantity) and is on the public tape;
* per account, ``totalWalletBalance`` = deposit + realized PnL - commissions + funding, from
  ``userTrades`` and ``income`` (and = the sum of the income log, the deposit included);
  ``positionAmt`` and ``entryPrice`` replay from ``userTrades`` alone, and each trade's
  ``realizedPnl`` is what the replay realizes;
* the engine's invariants hold (tests/fuzz/invariants.py: conservation, orders vs book).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

import aiohttp
import pytest
from yarl import URL

from adapters.sim.server import sign
from harness.venue import VenueConfig
from tests.fuzz.invariants import assert_engine_consistent
from tests.fuzz.kit import FuzzServer, RawClient, Request, encode, wall_ms
from tests.fuzz.report import report

D = Decimal
SEED = 4242
ASYNC_TRADERS = 4
THREAD_TRADERS = 4
OPERATIONS = 60  # per trader
RACED_IDS = 30
WALLET = D(50_000)
DEFAULT_DEPOSIT = D(10_000)  # the server's first account (not traded here)
TIMEOUT_S = 120
ALLOWED_ORDER_REFUSALS = {-2019, -2027, -4164}  # margin, position cap, min notional


@dataclass(frozen=True, slots=True)
class Trader:
    account_id: str
    key: str
    secret: str


@dataclass(slots=True)
class Log:
    """What one client was told."""

    acked: dict[str, int] = field(default_factory=dict)  # client order id -> order id
    cancelled: set[int] = field(default_factory=set)
    codes: Counter[int] = field(default_factory=Counter)
    requests: int = 0


def _query(trader: Trader, params: Mapping[str, str]) -> bytes:
    query = encode([*params.items(), ("timestamp", str(wall_ms())), ("recvWindow", "30000")])
    return query + b"&signature=" + sign(trader.secret, query).encode()


class AsyncClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, trader: Trader) -> None:
        self.session, self.base_url, self.trader = session, base_url, trader

    async def call(self, method: str, path: str, params: Mapping[str, str]) -> tuple[int, Any]:
        url = URL(f"{self.base_url}{path}?{_query(self.trader, params).decode()}", encoded=True)
        headers = {"X-MBX-APIKEY": self.trader.key}
        timeout = aiohttp.ClientTimeout(total=30)
        async with self.session.request(method, url, headers=headers, timeout=timeout) as resp:
            return resp.status, await resp.json(content_type=None)


class ThreadClient:
    def __init__(self, server: FuzzServer, trader: Trader) -> None:
        self.conn = RawClient(server.host, server.port)
        self.trader = trader

    def call(self, method: str, path: str, params: Mapping[str, str]) -> tuple[int, Any]:
        headers = (("X-MBX-APIKEY", self.trader.key.encode()),)
        reply = self.conn.send(Request(method, path, _query(self.trader, params), b"", headers))
        return reply.status, reply.json


# ----------------------------------------------------------------------------- the script
@dataclass(slots=True)
class Script:
    """One trader's operations, drawn from its own seeded generator."""

    name: str
    rng: random.Random
    marks: dict[str, Decimal]
    ticks: dict[str, Decimal]
    steps: dict[str, Decimal]
    log: Log = field(default_factory=Log)
    seq: int = 0
    open: dict[str, tuple[str, int]] = field(default_factory=dict)  # cid -> (symbol, order id)

    def cid(self) -> str:
        self.seq += 1
        return f"{self.name}-{self.seq}"

    def order(self) -> dict[str, str]:
        symbol = self.rng.choice(sorted(self.marks))
        side = self.rng.choice(["BUY", "SELL"])
        lots = self.rng.randint(1, 8)
        qty = self.steps[symbol] * lots * (10 if symbol.startswith("ETH") else 1)
        params = {"symbol": symbol, "side": side, "quantity": format(qty, "f")}
        if self.rng.random() < 0.2:
            return {**params, "type": "MARKET", "newClientOrderId": self.cid()}
        offset = D(self.rng.randint(-40, 40)) / 10_000  # within 0.4 % of the mark: some cross
        price = (self.marks[symbol] * (1 + offset) / self.ticks[symbol]).to_integral_value(
            ROUND_DOWN
        ) * self.ticks[symbol]
        return {
            **params,
            "type": "LIMIT",
            "price": format(price, "f"),
            "timeInForce": "GTC",
            "newClientOrderId": self.cid(),
        }

    def placed(self, params: Mapping[str, str], status: int, body: Any) -> None:
        self.log.requests += 1
        if status == 200:
            self.log.acked[body["clientOrderId"]] = body["orderId"]
            assert body["clientOrderId"] == params["newClientOrderId"], body
            if body["status"] in ("NEW", "PARTIALLY_FILLED"):
                self.open[body["clientOrderId"]] = (params["symbol"], body["orderId"])
        else:
            assert (status, body["code"]) in {(400, c) for c in ALLOWED_ORDER_REFUSALS}, body
            self.log.codes[body["code"]] += 1

    def cancelled(self, cid: str, status: int, body: Any) -> None:
        self.log.requests += 1
        self.open.pop(cid, None)
        if status == 200:
            self.log.cancelled.add(body["orderId"])
            assert body["status"] == "CANCELED", body
        else:  # filled in the meantime by someone else's order
            assert (status, body["code"]) == (400, -2011), body
            self.log.codes[-2011] += 1

    def next_action(self) -> tuple[str, str | None]:
        roll = self.rng.random()
        cid = self.rng.choice(sorted(self.open)) if self.open else None
        if cid is None or roll < 0.5:
            return "place", None
        if roll < 0.7:
            return "cancel", cid
        if roll < 0.9:
            return "amend", cid
        return "query", cid


async def _drive_async(client: AsyncClient, script: Script) -> None:
    for _ in range(OPERATIONS):
        action, cid = script.next_action()
        if action in ("cancel", "amend", "query") and cid is not None:
            symbol, _ = script.open[cid]
            ref = {"symbol": symbol, "origClientOrderId": cid}
            if action == "query":
                status, body = await client.call("GET", "/fapi/v1/order", ref)
                script.log.requests += 1
                assert status == 200, body
                continue
            script.cancelled(cid, *await client.call("DELETE", "/fapi/v1/order", ref))
            if action == "cancel":
                continue
        params = script.order()
        script.placed(params, *await client.call("POST", "/fapi/v1/order", params))


def _drive_thread(client: ThreadClient, script: Script) -> None:
    try:
        for _ in range(OPERATIONS):
            action, cid = script.next_action()
            if action in ("cancel", "amend", "query") and cid is not None:
                symbol, _ = script.open[cid]
                ref = {"symbol": symbol, "origClientOrderId": cid}
                if action == "query":
                    status, body = client.call("GET", "/fapi/v1/order", ref)
                    script.log.requests += 1
                    assert status == 200, body
                    continue
                script.cancelled(cid, *client.call("DELETE", "/fapi/v1/order", ref))
                if action == "cancel":
                    continue
            params = script.order()
            script.placed(params, *client.call("POST", "/fapi/v1/order", params))
    finally:
        client.conn.close()


# ----------------------------------------------------------------------------- the race
def _race_order(i: int, mark: Decimal, tick: Decimal) -> dict[str, str]:
    """A bid 10 % under the mark: it rests, so the race is about the id alone."""
    price = (mark * D("0.9") / tick).to_integral_value(ROUND_DOWN) * tick
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "0.002",
        "price": format(price, "f"),
        "timeInForce": "GTC",
        "newClientOrderId": f"race-{i}",
    }


async def _race_async(client: AsyncClient, orders: list[dict[str, str]], log: Log) -> None:
    for params in orders:
        status, body = await client.call("POST", "/fapi/v1/order", params)
        _raced(log, status, body, -4116)
    for params in orders:
        ref = {"symbol": "BTCUSDT", "origClientOrderId": params["newClientOrderId"]}
        status, body = await client.call("DELETE", "/fapi/v1/order", ref)
        _raced(log, status, body, -2011)


def _race_thread(client: ThreadClient, orders: list[dict[str, str]], log: Log) -> None:
    try:
        for params in reversed(orders):  # from the other end: the two meet in the middle
            _raced(log, *client.call("POST", "/fapi/v1/order", params), -4116)
        for params in reversed(orders):
            ref = {"symbol": "BTCUSDT", "origClientOrderId": params["newClientOrderId"]}
            _raced(log, *client.call("DELETE", "/fapi/v1/order", ref), -2011)
    finally:
        client.conn.close()


def _raced(log: Log, status: int, body: Any, lost: int) -> None:
    log.requests += 1
    if status == 200:
        if body["status"] == "CANCELED":
            log.cancelled.add(body["orderId"])
        else:
            log.acked[body["clientOrderId"]] = body["orderId"]
    else:
        assert (status, body["code"]) == (400, lost), body
        log.codes[lost] += 1


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def server() -> Iterator[FuzzServer]:
    srv = FuzzServer(VenueConfig(seed=SEED))
    try:
        yield srv
    finally:
        srv.close()


async def _control(
    session: aiohttp.ClientSession, server: FuzzServer, method: str, path: str, body: Any = None
) -> Any:
    headers = {"X-PERPCHECK-TOKEN": server.handle.control_token}
    url = f"{server.handle.base_url}/control/{path}"
    async with session.request(method, url, json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _open_account(session: aiohttp.ClientSession, server: FuzzServer, label: str) -> Trader:
    reply = await _control(
        session, server, "POST", "accounts", {"wallet": str(WALLET), "label": label}
    )
    return Trader(reply["account_id"], reply["api_key"], reply["api_secret"])


async def _clock(session: aiohttp.ClientSession, server: FuzzServer, stop: asyncio.Event) -> int:
    """Move virtual time while the traders trade (marks move, the market maker requotes)."""
    steps = 0
    while not stop.is_set() and steps < 200:
        await _control(session, server, "POST", "advance", {"ms": 250})
        steps += 1
        await asyncio.sleep(0.005)
    return steps


# ----------------------------------------------------------------------------- the checks
def _replay(trades: list[dict[str, Any]], quantum: Decimal) -> tuple[Decimal, Decimal]:
    """Position quantity and entry from the trades alone (perp-mechanics: average entry on
    increase, realized PnL on reduction, the entry reset on a flip); each trade's realizedPnl
    must be what the replay realizes."""
    qty, entry = D(0), D(0)
    for t in trades:
        signed = D(t["qty"]) * (1 if t["side"] == "BUY" else -1)
        price = D(t["price"])
        realized = D(0)
        if qty == 0 or (qty > 0) == (signed > 0):
            new = qty + signed
            entry = (abs(qty) * entry + abs(signed) * price) / abs(new)
            qty = new
        else:
            close = min(abs(signed), abs(qty))
            sign_ = 1 if qty > 0 else -1
            realized = (sign_ * close * (price - entry)).quantize(quantum, ROUND_HALF_EVEN)
            qty -= sign_ * close
            if qty == 0:
                entry = D(0)
            leftover = abs(signed) - close
            if leftover > 0:
                qty, entry = (1 if signed > 0 else -1) * leftover, price
        assert D(t["realizedPnl"]) == realized, t
    return qty, entry


async def _reconcile(
    client: AsyncClient, trader: Trader, logs: list[Log], symbols: list[str], quantum: Decimal
) -> dict[str, int]:
    acked = {cid: oid for log in logs for cid, oid in log.acked.items()}
    listed: list[dict[str, Any]] = []
    trades: dict[str, list[dict[str, Any]]] = {}
    for symbol in symbols:
        status, rows = await client.call(
            "GET", "/fapi/v1/allOrders", {"symbol": symbol, "limit": "1000"}
        )
        assert status == 200, rows
        assert len(rows) < 1000
        listed += rows
        status, trades[symbol] = await client.call(
            "GET", "/fapi/v1/userTrades", {"symbol": symbol, "limit": "1000"}
        )
        assert status == 200
        assert len(trades[symbol]) < 1000
    ids = [r["orderId"] for r in listed]
    cids = [r["clientOrderId"] for r in listed]
    assert len(ids) == len(set(ids)), "an order is listed twice"
    assert len(cids) == len(set(cids)), "a client order id names two orders"
    assert sorted(ids) == sorted(acked.values()), "lost or phantom orders"
    by_id = {r["orderId"]: r for r in listed}
    for cid, order_id in acked.items():
        assert by_id[order_id]["clientOrderId"] == cid
        symbol = by_id[order_id]["symbol"]
        for ref in ({"orderId": str(order_id)}, {"origClientOrderId": cid}):
            status, body = await client.call("GET", "/fapi/v1/order", {"symbol": symbol, **ref})
            assert status == 200, body
            assert (body["orderId"], body["clientOrderId"]) == (order_id, cid)
    for log in logs:
        for order_id in log.cancelled:
            assert by_id[order_id]["status"] == "CANCELED"
    status, income = await client.call("GET", "/fapi/v1/income", {"limit": "1000"})
    assert status == 200
    assert len(income) < 1000
    kinds = Counter(r["incomeType"] for r in income)
    assert set(kinds) <= {"TRANSFER", "REALIZED_PNL", "COMMISSION", "FUNDING_FEE"}, kinds
    all_trades = [t for rows in trades.values() for t in rows]
    realized = sum((D(t["realizedPnl"]) for t in all_trades), D(0))
    commission = sum((D(t["commission"]) for t in all_trades), D(0))
    funding = sum((D(r["income"]) for r in income if r["incomeType"] == "FUNDING_FEE"), D(0))

    def total(kind: str) -> Decimal:
        return sum((D(r["income"]) for r in income if r["incomeType"] == kind), D(0))

    assert total("TRANSFER") == WALLET  # the deposit
    assert total("REALIZED_PNL") == realized
    assert total("COMMISSION") == -commission
    status, account = await client.call("GET", "/fapi/v2/account", {})
    assert status == 200
    wallet = D(account["totalWalletBalance"])
    assert wallet == WALLET + realized - commission + funding
    assert wallet == sum((D(r["income"]) for r in income), D(0))
    status, positions = await client.call("GET", "/fapi/v2/positionRisk", {})
    assert status == 200
    for row in positions:
        qty, entry = _replay(trades[row["symbol"]], quantum)
        assert D(row["positionAmt"]) == qty, row
        assert D(row["entryPrice"]) == entry, row
    return {"orders": len(ids), "trades": len(all_trades), "funding": kinds["FUNDING_FEE"]}


def _assert_trades_are_two_sided(server: FuzzServer, traders: list[Trader]) -> int:
    """Every trade of ours: one maker and one taker fill, opposite sides, same price and
    quantity, and the trade on the public tape."""
    engine = server.handle.engine
    ours = {t.account_id for t in traders}

    def collect() -> tuple[dict[tuple[str, int], list[tuple[str, Any]]], dict[Any, Any]]:
        tape = {(s, t.trade_id): t for s in engine.instruments for t in engine.tape[s]}
        return server.fills.trades(), tape

    fills, tape = server.call(collect)
    checked = 0
    for key, pair in fills.items():
        if not any(owner in ours for owner, _ in pair):
            continue
        assert len(pair) == 2, (key, pair)
        (_, a), (_, b) = pair
        assert {a.side, b.side} == {"BUY", "SELL"}, pair
        assert {a.maker, b.maker} == {False, True}, pair
        assert (a.price, a.qty) == (b.price, b.qty), pair
        public = tape.get(key)
        assert public is not None, key
        assert (public.price, public.qty) == (a.price, a.qty), key
        checked += 1
    return checked


@pytest.mark.asyncio
async def test_concurrent_clients_lose_nothing_duplicate_nothing_and_reconcile(
    server: FuzzServer, request: pytest.FixtureRequest
) -> None:
    engine = server.handle.engine
    symbols = sorted(engine.instruments)
    marks = server.call(lambda: {s: engine.mark(s) for s in symbols})
    ticks = {s: engine.instruments[s].tick_size for s in symbols}
    steps = {s: engine.instruments[s].step_size for s in symbols}
    async with aiohttp.ClientSession() as session:
        traders = [
            await _open_account(session, server, f"t{i}")
            for i in range(ASYNC_TRADERS + THREAD_TRADERS)
        ]
        shared = await _open_account(session, server, "shared")
        scripts = [
            Script(f"c{i}", random.Random(SEED + i), marks, ticks, steps)
            for i in range(len(traders))
        ]
        race = [_race_order(i, marks["BTCUSDT"], ticks["BTCUSDT"]) for i in range(RACED_IDS)]
        race_logs = [Log(), Log()]
        stop = asyncio.Event()
        clock = asyncio.create_task(_clock(session, server, stop))
        work = [
            *(
                _drive_async(AsyncClient(session, server.handle.base_url, t), s)
                for t, s in zip(traders[:ASYNC_TRADERS], scripts[:ASYNC_TRADERS], strict=True)
            ),
            *(
                asyncio.to_thread(_drive_thread, ThreadClient(server, t), s)
                for t, s in zip(traders[ASYNC_TRADERS:], scripts[ASYNC_TRADERS:], strict=True)
            ),
            _race_async(AsyncClient(session, server.handle.base_url, shared), race, race_logs[0]),
            asyncio.to_thread(_race_thread, ThreadClient(server, shared), race, race_logs[1]),
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*work), TIMEOUT_S)
        finally:
            stop.set()
            clock_steps = await clock
        # Past the next funding settlement: positions pay or receive funding.
        next_funding = server.call(lambda: engine.funding.info(symbols[0]).next_funding_time_ms)
        now = server.call(engine.clock.now_ms)
        await _control(session, server, "POST", "advance", {"ms": next_funding - now + 1_000})

        # The race: each client id accepted once, each raced order cancelled once.
        accepted = Counter(cid for log in race_logs for cid in log.acked)
        assert accepted == Counter({p["newClientOrderId"]: 1 for p in race})
        assert sum(log.codes[-4116] for log in race_logs) == RACED_IDS
        assert sum(len(log.cancelled) for log in race_logs) == RACED_IDS
        assert sum(log.codes[-2011] for log in race_logs) == RACED_IDS

        quantum = engine.quantum
        counts: Counter[str] = Counter()
        for trader, script in zip(traders, scripts, strict=True):
            client = AsyncClient(session, server.handle.base_url, trader)
            counts.update(await _reconcile(client, trader, [script.log], symbols, quantum))
        race_client = AsyncClient(session, server.handle.base_url, shared)
        counts.update(await _reconcile(race_client, shared, race_logs, symbols, quantum))
    assert counts["trades"] > 50, "too few fills to say anything"
    assert counts["funding"] > 0, "no position paid funding"
    two_sided = _assert_trades_are_two_sided(server, [*traders, shared])
    deposits = DEFAULT_DEPOSIT + WALLET * (len(traders) + 1)
    invariants = server.call(lambda: assert_engine_consistent(engine, deposits, server.fills))
    sent = sum(s.log.requests for s in scripts) + sum(log.requests for log in race_logs)
    report(
        request.config,
        "concurrency",
        f"concurrency: {len(traders) + 2} clients ({ASYNC_TRADERS + 1} asyncio tasks, "
        f"{THREAD_TRADERS + 1} threads) sent {sent:,} order requests while time moved "
        f"{clock_steps} steps; {counts['orders']:,} orders reconciled, {counts['trades']:,} "
        f"trades ({two_sided:,} checked two-sided), {counts['funding']} funding payments; "
        f"engine: {invariants['orders']:,} orders, {invariants['trades']:,} trades consistent",
    )
