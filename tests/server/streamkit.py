"""Helpers for the WebSocket stream tests (not a test module): a raw client with the
``SIM_SYNC`` barrier, a local order book kept by Binance's recipe, random order flow."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp

from adapters.sim.engine.exchange import Engine
from tests.server.conftest import Http
from tests.sim.simkit import random_operation

__all__ = [
    "GUARD_S",
    "LocalBook",
    "WsClient",
    "funded_accounts",
    "listen_key",
    "new_key",
    "of_event",
    "open_ws",
    "random_operation",
    "rest_book",
    "rest_levels",
]

D = Decimal
GUARD_S = 10.0  # a failure guard only: every wait below ends on a frame, never on time


@dataclass(slots=True)
class WsClient:
    """A raw client: frames as JSON, in arrival order; ``sync`` is the SIM_SYNC barrier."""

    ws: aiohttp.ClientWebSocketResponse
    next_id: int = 1000
    buffered: list[Any] = field(default_factory=list)

    async def receive(self) -> Any:
        if self.buffered:
            return self.buffered.pop(0)
        message = await asyncio.wait_for(self.ws.receive(), GUARD_S)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)

    async def send(self, message: Any) -> None:
        await self.ws.send_str(json.dumps(message))

    async def request(self, method: str, params: Any = None) -> tuple[Any, list[Any]]:
        """Send a request; its reply and the frames that came before it."""
        self.next_id += 1
        req_id = self.next_id
        message: dict[str, Any] = {"method": method, "id": req_id}
        if params is not None:
            message["params"] = params
        await self.send(message)
        return await self.reply_to(req_id)

    async def reply_to(self, req_id: object) -> tuple[Any, list[Any]]:
        frames: list[Any] = []
        while True:
            frame = await self.receive()
            replied = isinstance(frame, dict) and ("result" in frame or "error" in frame)
            if replied and frame.get("id") == req_id:
                return frame, frames
            frames.append(frame)

    async def sync(self) -> list[Any]:
        """Every frame queued before now (held by a delay/reorder fault excepted)."""
        reply, frames = await self.request("SIM_SYNC")
        assert isinstance(reply["result"]["now_ms"], int), reply
        return frames

    async def closed(self) -> aiohttp.WSMessage:
        """Wait for the server to end the connection (every frame before it is skipped)."""
        while True:
            message = await asyncio.wait_for(self.ws.receive(), GUARD_S)
            if message.type is not aiohttp.WSMsgType.TEXT:
                return message


async def open_ws(http: Http, path: str) -> WsClient:
    ws = await http.session.ws_connect(http.handle.ws_url + path, autoclose=True)
    return WsClient(ws)


def rest_levels(rows: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(D(p), D(q)) for p, q in rows]


async def rest_book(http: Http, symbol: str, limit_: int = 1000) -> dict[str, Any]:
    """``GET /fapi/v1/depth`` as decimals: ``lastUpdateId``, ``bids``, ``asks``."""
    body = (await http.call("GET", "/fapi/v1/depth", {"symbol": symbol, "limit": limit_})).body
    return {
        "lastUpdateId": body["lastUpdateId"],
        "bids": rest_levels(body["bids"]),
        "asks": rest_levels(body["asks"]),
    }


class LocalBook:
    """A client's book: a REST snapshot, then ``depthUpdate`` frames by Binance's futures recipe
    (drop ``u < lastUpdateId``; the first applied has ``U <= lastUpdateId <= u`` or
    ``pu == lastUpdateId``; every next one ``pu ==`` the previous ``u``)."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.last: int = snapshot["lastUpdateId"]
        self.bids = dict(snapshot["bids"])
        self.asks = dict(snapshot["asks"])
        self.synced = False
        self.applied = 0

    def apply(self, frame: dict[str, Any]) -> None:
        if frame["u"] < self.last:
            return
        if self.synced:
            assert frame["pu"] == self.last, (frame["U"], frame["u"], frame["pu"], self.last)
        else:
            assert frame["U"] <= self.last <= frame["u"] or frame["pu"] == self.last
            self.synced = True
        for side, rows in ((self.bids, frame["b"]), (self.asks, frame["a"])):
            for price, qty in rest_levels(rows):
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        self.last = frame["u"]
        self.applied += 1

    def top(self, n: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids = sorted(self.bids.items(), reverse=True)[:n]
        asks = sorted(self.asks.items())[:n]
        return bids, asks


def funded_accounts(engine: Engine, n: int) -> list[str]:
    accounts = [engine.create_account(D(10**9)).account_id for _ in range(n)]
    for acct in accounts:
        for symbol in engine.instruments:
            engine.set_leverage(acct, symbol, 5)
    return accounts


async def listen_key(http: Http, method: str = "POST", key: str | None = None) -> Any:
    """``/fapi/v1/listenKey`` with only the API key: ``(status, headers, body)``."""
    headers = {"X-MBX-APIKEY": key or http.key}
    url = http.handle.base_url + "/fapi/v1/listenKey"
    async with http.session.request(method, url, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.json()


async def new_key(http: Http) -> str:
    status, _, body = await listen_key(http)
    assert status == 200, body
    key: str = body["listenKey"]
    return key


def of_event(frames: list[Any], event: str) -> list[Any]:
    return [f for f in frames if isinstance(f, dict) and f.get("e") == event]
