"""Binance USDⓈ-M event streams over WebSocket (venues ``sim-http`` and ``binanceusdm-demo``).

A :class:`BinanceEventStream` holds one WebSocket: Binance's combined stream
``/stream?streams=<sym>@markPrice@1s/<sym>@aggTrade/<sym>@forceOrder[/<sym>@depth@100ms]``,
plus the account's listen key as one more stream name when it follows an account (Binance lets
a user-data stream share a combined connection), so every frame, market or private, arrives in
the order the venue sent it. A reader task parses each frame with exact decimals and turns it
into a :mod:`harness.streams` event (:func:`convert`) as it arrives. The converters
and :func:`stream_names` live in :mod:`adapters.ccxt_venue.stream_frames` and stay importable
from here.

``drain()`` returns every event received since the previous drain, in arrival order:

* on ``sim-http`` (``sim_sync``), after a barrier: it sends ``{"method": "SIM_SYNC", "id": n}``
  and waits for the reply, which the server sends after every frame it had queued for the
  connection before, so everything caused by a request or control call that has returned is
  there (except what the ``delay_ms`` fault still holds back, as the venue would);
* on ``binanceusdm-demo`` there is no such barrier: it reads for ``drain_ms`` of wall time and
  returns what has arrived. An event the venue published just before may come in a later drain.

A connection the venue closed (the ``drop_connections`` fault, a network failure) is re-opened at
the next drain: a new connection, the same streams, the listen key asked for again (``POST``
returns the account's active key, or a new one if it is gone), and ``reconnects`` goes up.
Events published while disconnected are lost, as on the wire. A listen key is kept alive with
``PUT`` once 30 minutes of the venue's clock have passed since it was created or last kept
alive: at a drain, and on ``sim-http``, whose clock is virtual and may jump hours in one call,
also before every step of at most 30 minutes the venue's clock takes while a stream with a key
is open (:meth:`BinanceEventStream.keep_alive`). After ``listenKeyExpired`` the stream
reconnects with a new key. Wall-clock timeouts below are failure guards only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.ccxt_venue._wire import call, decimal_json
from adapters.ccxt_venue.stream_frames import (
    account_event,
    config_event,
    convert,
    depth_event,
    liquidation_order_event,
    margin_call_event,
    mark_event,
    order_event,
    stream_names,
    trade_event,
)
from harness.clock import Clock
from harness.errors import ConfigError, Rejected, Unavailable, VenueError
from harness.streams import StreamEvent

__all__ = [
    "KEEPALIVE_MS",
    "BinanceEventStream",
    "ListenKeys",
    "StreamSettings",
    "account_event",
    "config_event",
    "convert",
    "depth_event",
    "liquidation_order_event",
    "margin_call_event",
    "mark_event",
    "order_event",
    "stream_names",
    "trade_event",
]

KEEPALIVE_MS = 30 * 60_000  # Binance: a listen key lives 60 min after its last keepalive
NO_SUCH_KEY = -1125  # "This listenKey does not exist."
CONNECT_TIMEOUT_S = 10.0  # failure guards, never a way of waiting for the venue
REPLY_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
SYNC_ATTEMPTS = 3


# ---------------------------------------------------------------------------- the stream


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSettings:
    """Where a venue's streams are and how ``drain()`` knows it has everything.

    ``url``: the WebSocket base (``ws://127.0.0.1:<port>``, ``wss://fstream.binancefuture.com``);
    ``sim_sync``: the server answers ``SIM_SYNC`` (the simulator only); ``drain_ms``: without it,
    how long a drain reads; ``asset``: the margin asset whose balance account updates report;
    ``on_time``: told the virtual time of each ``SIM_SYNC`` reply (the venue's clock).
    """

    url: str
    sim_sync: bool = False
    drain_ms: int = 500
    asset: str = "USDT"
    on_time: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        if self.drain_ms < 0:
            msg = f"{self.drain_ms=} must be >= 0"
            raise ConfigError(msg)


class ListenKeys:
    """An account's user-data listen key over its ccxt client (``/fapi/v1/listenKey``, signed
    with the API key only) and how many open streams use it: the last one to close deletes it
    (Binance keeps one key per account, so deleting it would end every stream of the account)."""

    def __init__(self, exchange: Any) -> None:
        self._exchange = exchange
        self.users = 0

    async def create(self) -> str:
        """The account's active key (its life extended), or a new one."""
        reply = await call(self._exchange.fapiPrivatePostListenKey({}))
        return str(reply["listenKey"])

    async def keepalive(self, key: str) -> None:
        await call(self._exchange.fapiPrivatePutListenKey({"listenKey": key}))

    async def delete(self, key: str) -> None:
        await call(self._exchange.fapiPrivateDeleteListenKey({"listenKey": key}))


class _ConnectionLost(Exception):  # noqa: N818 - an internal signal, not an error to report
    """The WebSocket closed before answering a request."""


class BinanceEventStream:
    """The :class:`~harness.streams.EventStream` of a Binance-dialect venue (module docstring).

    Open it with :meth:`open`; ``clock`` is the venue's (virtual on ``sim-http``) and times the
    listen key's keepalive; ``on_close`` is called once when the stream closes.
    """

    def __init__(
        self,
        settings: StreamSettings,
        names: Sequence[str],
        *,
        clock: Clock,
        keys: ListenKeys | None = None,
        on_close: Callable[[BinanceEventStream], None] | None = None,
    ) -> None:
        self._settings = settings
        self._names = list(names)
        self._clock = clock
        self._keys = keys
        self._on_close = on_close
        self._session = aiohttp.ClientSession()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Mapping[str, Any]]] = {}
        self._next_id = 0
        self._events: list[StreamEvent] = []
        self._failure: VenueError | None = None
        self._key: str | None = None
        self._key_ms = 0
        self._key_expired = False
        self._reconnects = 0
        self._closed = False
        if keys is not None:
            keys.users += 1

    @classmethod
    async def open(
        cls,
        settings: StreamSettings,
        names: Sequence[str],
        *,
        clock: Clock,
        keys: ListenKeys | None = None,
        on_close: Callable[[BinanceEventStream], None] | None = None,
    ) -> BinanceEventStream:
        """Connect and subscribe; on ``sim-http``, return once the server is sending."""
        stream = cls(settings, names, clock=clock, keys=keys, on_close=on_close)
        try:
            await stream._connect()
            if settings.sim_sync:
                await stream._sync()
        except BaseException:
            await stream.close()
            raise
        return stream

    @property
    def reconnects(self) -> int:
        return self._reconnects

    @property
    def listen_key(self) -> str | None:
        """The user-data stream's current key (``None`` without an account)."""
        return self._key

    async def drain(self) -> list[StreamEvent]:
        """Every event received since the previous drain, in arrival order (module docstring).

        Raises:
            VenueError: the venue sent a frame that is not a valid event (raised once; the
                valid events are returned by the next drain); ``Unavailable`` if the venue
                cannot be reached.
        """
        if self._closed:
            msg = "drain() on a closed event stream; open a new one with venue.stream(...)"
            raise ConfigError(msg)
        await self.keep_alive()
        if self._settings.sim_sync:
            await self._sync()
        else:
            await self._ensure_connected()
            await asyncio.sleep(self._settings.drain_ms / 1000)
        if self._key_expired:
            await self._reconnect()
            if self._settings.sim_sync:
                await self._sync()  # the server sends on the new connection from here on
        if self._failure is not None:  # the events received stay for the next drain
            failure, self._failure = self._failure, None
            raise failure
        events, self._events = self._events, []
        return events

    async def close(self) -> None:
        """Close the connection, release the listen key and the HTTP session (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._disconnect()
            if self._keys is not None:
                self._keys.users -= 1
                if self._keys.users == 0 and self._key is not None:
                    # On failure the key expires on its own; nothing else depends on it.
                    with contextlib.suppress(VenueError):
                        await self._keys.delete(self._key)
        finally:
            await self._session.close()
            if self._on_close is not None:
                self._on_close(self)

    # ------------------------------------------------------------------ connection

    async def _connect(self) -> None:
        names = list(self._names)
        if self._keys is not None:
            self._key = await self._keys.create()
            self._key_ms = self._clock.now_ms()
            self._key_expired = False
            names.append(self._key)
        url = self._settings.url.rstrip("/") + "/stream"
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                ws = await self._session.ws_connect(url, params={"streams": "/".join(names)})
        except aiohttp.WSServerHandshakeError as exc:
            msg = f"the venue refused the streams {names} at {url}: HTTP {exc.status} {exc.message}"
            if 400 <= exc.status < 500:
                raise ConfigError(msg) from None
            raise Unavailable(msg) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            msg = f"cannot open the event stream at {url}: {exc or type(exc).__name__}"
            raise Unavailable(msg) from None
        self._ws = ws
        self._reader = asyncio.create_task(self._read(ws), name=f"perpcheck-stream {url}")

    async def _disconnect(self) -> None:
        ws, reader = self._ws, self._reader
        self._ws, self._reader = None, None
        if reader is not None:
            reader.cancel()
            await asyncio.wait([reader])
        if ws is not None:
            # A peer that is gone cannot answer the close; the connection is released anyway.
            with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await ws.close()

    async def _reconnect(self) -> None:
        await self._disconnect()
        await self._connect()
        self._reconnects += 1

    @property
    def _connected(self) -> bool:
        ws, reader = self._ws, self._reader
        return ws is not None and not ws.closed and reader is not None and not reader.done()

    async def _ensure_connected(self) -> None:
        if not self._connected:
            await self._reconnect()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._receive(msg.data)
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    break
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(_ConnectionLost())
            self._pending.clear()

    def _receive(self, text: str) -> None:
        try:
            message = decimal_json(text)
        except ValueError:
            self._fail(VenueError(f"the venue sent a stream frame that is not JSON: {text[:200]}"))
            return
        if not isinstance(message, dict):
            return
        if "id" in message and ("result" in message or "error" in message):
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(message)
            return
        payload = message.get("data", message) if "stream" in message else message
        if not isinstance(payload, dict):
            return
        if payload.get("e") == "listenKeyExpired":
            self._key_expired = True
            return
        try:
            event = convert(payload, self._settings.asset)
        except VenueError as exc:
            self._fail(exc)
            return
        if event is not None:
            self._events.append(event)

    def _fail(self, error: VenueError) -> None:
        if self._failure is None:
            self._failure = error

    async def _request(self, method: str) -> Mapping[str, Any]:
        """Send ``{"method", "id"}`` and wait for the reply with that id."""
        ws = self._ws
        if ws is None or not self._connected:
            raise _ConnectionLost
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await ws.send_str(json.dumps({"method": method, "id": request_id}))
            async with asyncio.timeout(REPLY_TIMEOUT_S):
                reply = await future
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise _ConnectionLost from exc
        except TimeoutError:
            msg = f"the venue did not answer {method} within {REPLY_TIMEOUT_S} s"
            raise Unavailable(msg) from None
        finally:
            self._pending.pop(request_id, None)
        if reply.get("error"):
            msg = f"the venue refused {method}: {reply['error']}"
            raise Unavailable(msg)
        return reply

    async def _sync(self) -> None:
        """The ``SIM_SYNC`` barrier, reconnecting if the connection is (or goes) down."""
        for _ in range(SYNC_ATTEMPTS):
            try:
                await self._ensure_connected()
                reply = await self._request("SIM_SYNC")
            except _ConnectionLost:
                continue
            result = reply.get("result")
            if self._settings.on_time is not None and isinstance(result, dict):
                self._settings.on_time(int(result["now_ms"]))
            return
        msg = f"the event stream lost its connection {SYNC_ATTEMPTS} times in one drain"
        raise Unavailable(msg)

    async def keep_alive(self) -> None:
        """``PUT`` the listen key if 30 minutes of the venue's clock passed since it was last
        created or kept alive (at each drain; ``sim-http`` also calls it before its clock moves,
        in steps of at most :data:`KEEPALIVE_MS`, so that no key expires inside a long advance).
        """
        if self._keys is None or self._key is None or self._key_expired:
            return
        now = self._clock.now_ms()
        if now - self._key_ms < KEEPALIVE_MS:
            return
        try:
            await self._keys.keepalive(self._key)
        except Rejected as exc:
            if exc.code != NO_SUCH_KEY:
                raise
            self._key_expired = True  # reconnect with a new key after this drain's reading
            return
        self._key_ms = now
