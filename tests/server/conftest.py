"""Fixtures for the HTTP venue: a server in the test's loop, or in a thread for sync clients."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from yarl import URL

from adapters.sim.server import ServerHandle, sign, start_server
from harness.venue import VenueConfig

__all__ = ["Http", "Reply", "ThreadedServer", "local_ccxt", "wall_ms"]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any


@dataclass(slots=True)
class Http:
    """A raw client for the server: signs like ccxt (timestamp first, recvWindow, signature)."""

    session: aiohttp.ClientSession
    handle: ServerHandle
    key: str = ""
    secret: str = ""
    extra_headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.key = self.key or self.handle.api_key
        self.secret = self.secret or self.handle.api_secret

    def signed_query(self, params: Mapping[str, Any], *, timestamp: int | None = None) -> str:
        query = urlencode({"timestamp": timestamp or wall_ms(), **params, "recvWindow": 10000})
        return f"{query}&signature={sign(self.secret, query.encode())}"

    async def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        signed: bool = False,
        body: bool = False,
    ) -> Reply:
        """``body``: send the (signed) parameters as a form body, as ccxt does for POST."""
        params = dict(params or {})
        text = self.signed_query(params) if signed else urlencode(params)
        headers = {"X-MBX-APIKEY": self.key} if signed else {}
        headers.update(self.extra_headers)
        url = self.handle.base_url + path
        data = None
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = text
        elif text:
            url += "?" + text
        # encoded=True: send the query exactly as signed (yarl would requote %3A to ':').
        target = URL(url, encoded=True)
        async with self.session.request(method, target, data=data, headers=headers) as resp:
            payload = await resp.json(content_type=None)
            return Reply(resp.status, dict(resp.headers), payload)

    async def control(self, method: str, path: str, body: Any = None) -> Reply:
        headers = {"X-PERPCHECK-TOKEN": self.handle.control_token}
        url = self.handle.base_url + "/control/" + path
        async with self.session.request(method, url, json=body, headers=headers) as resp:
            return Reply(resp.status, dict(resp.headers), await resp.json(content_type=None))


def local_ccxt(module: Any, base_url: str, api_key: str, secret: str, **options: Any) -> Any:
    """ccxt ``binanceusdm`` pointed at the server, as the surface doc §1 snippet does."""
    ex = module.binanceusdm(
        {
            "apiKey": api_key,
            "secret": secret,
            "enableRateLimit": False,
            "options": {
                "fetchCurrencies": False,
                "fetchMargins": False,
                "fetchMarkets": {"types": ["linear"]},
                "adjustForTimeDifference": False,
                **options,
            },
        }
    )
    for k, v in list(ex.urls["api"].items()):
        if isinstance(v, str):
            path = v.split("binance.com", 1)[-1] if "binance.com" in v else ""
            ex.urls["api"][k] = base_url + path
    ex.exceptions["exact"].update(ex.exceptions["linear"]["exact"])
    return ex


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ServerHandle]:
    handle = await start_server(VenueConfig(seed=7))
    try:
        yield handle
    finally:
        await handle.stop()


@pytest_asyncio.fixture
async def http(server: ServerHandle) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(session, server)


class ThreadedServer:
    """A server on its own loop in a background thread, for synchronous clients."""

    def __init__(self, config: VenueConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.handle: ServerHandle = self.run(start_server(config))

    def run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=30)

    def close(self) -> None:
        self.run(self.handle.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def threaded() -> Iterator[ThreadedServer]:
    server = ThreadedServer(VenueConfig(seed=11))
    try:
        yield server
    finally:
        server.close()
