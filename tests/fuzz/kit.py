"""A server in a background thread with a movable wall clock, and a byte-exact HTTP client.

The fuzz tests send requests as bytes (duplicate parameters, invalid UTF-8, 1 MiB bodies,
malformed API keys) over loopback and read the answers with :mod:`http.client`'s parser. The
server's wall clock (request signing) is the real one plus an offset the test can move, so a
replayed request can be made stale without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

from adapters.sim.server import ServerHandle, sign, start_server
from harness.venue import RateLimits, VenueConfig
from tests.fuzz.invariants import FillLog

__all__ = [
    "FuzzServer",
    "RawClient",
    "Reply",
    "Request",
    "ShiftedWallClock",
    "encode",
    "signed",
    "wall_ms",
]

T = TypeVar("T")
OPEN_LIMITS = RateLimits(weight_per_minute=10**12, orders_per_10s=10**12, orders_per_minute=10**12)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class ShiftedWallClock:
    """The real wall clock plus ``offset_ms`` (the server checks request timestamps on it)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return wall_ms() + self.offset_ms

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FuzzServer:
    """The simulator's HTTP server on ``127.0.0.1:0`` in its own thread and event loop."""

    def __init__(self, config: VenueConfig, *, open_limits: bool = True) -> None:
        self.clock = ShiftedWallClock()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.handle: ServerHandle = self.run(
            start_server(config, host="127.0.0.1", port=0, wall_clock=self.clock)
        )
        engine = self.handle.engine
        self.fills = self.call(lambda: FillLog(engine))  # before any traffic
        self.host, port = self.handle.base_url.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        if open_limits:  # fuzzing is about answers, not about the 2400/min weight limit
            self.call(lambda: self.handle.engine.gateway.set_limits(OPEN_LIMITS))

    def run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=60)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (engine state is only touched there)."""

        async def inside() -> T:
            return fn()

        result: T = self.run(inside())
        return result

    def close(self) -> None:
        self.run(self.handle.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


def encode(pairs: Iterable[tuple[str, str]]) -> bytes:
    """``k=v&...`` percent-encoded as UTF-8 (duplicates and any text kept as given)."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs).encode()


def signed(secret: str, query: bytes, body: bytes = b"") -> str:
    """The signature of a request whose query and body are these bytes (signature excluded)."""
    return sign(secret, query + body)


@dataclass(frozen=True, slots=True)
class Request:
    """One request exactly as it goes on the wire."""

    method: str
    path: str
    query: bytes = b""
    body: bytes = b""
    headers: tuple[tuple[str, bytes], ...] = ()

    def target(self) -> bytes:
        return self.path.encode() + (b"?" + self.query if self.query else b"")

    def wire(self, host: str) -> bytes:
        lines = [
            self.method.encode() + b" " + self.target() + b" HTTP/1.1",
            b"Host: " + host.encode(),
        ]
        lines += [name.encode() + b": " + value for name, value in self.headers]
        if self.body or self.method in ("POST", "PUT", "DELETE"):
            lines.append(b"Content-Length: " + str(len(self.body)).encode())
        if self.body:
            lines.append(b"Content-Type: application/x-www-form-urlencoded")
        return b"\r\n".join(lines) + b"\r\n\r\n" + self.body


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    raw: bytes
    json: Any = field(default=None)

    @property
    def code(self) -> int | None:
        body = self.json
        return body.get("code") if isinstance(body, dict) and self.status >= 400 else None


class RawClient:
    """A keep-alive HTTP/1.1 connection sending :class:`Request` bytes as they are."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self.sent = 0

    def _connect(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), timeout=30)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def send(self, request: Request) -> Reply:
        sock = self._connect()
        # The server may answer early (413) and close: its answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request.wire(f"{self.host}:{self.port}"))
        response = http.client.HTTPResponse(sock, method=request.method)
        try:
            response.begin()
            raw = response.read()
        finally:
            if response.will_close:
                self.close()
        self.sent += 1
        headers = dict(response.getheaders())
        content_type = headers.get("Content-Type", "")
        body = json.loads(raw) if raw and content_type.startswith("application/json") else None
        return Reply(response.status, headers, raw, body)
