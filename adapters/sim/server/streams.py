"""The server's WebSocket streams: Binance USDⓈ-M market and user data (PROTOCOL.md "Streams").

One :class:`StreamHub` per app holds the listen keys and every open connection
(:mod:`adapters.sim.server.streams_connection`). While a connection is open the hub is
subscribed to the engine's event bus (``engine.events``); each event is handed to every
connection, in the engine's order, synchronously inside the engine operation that produced it.
A connection turns the events it subscribed to into frames (:mod:`.streams_frames`, memoized
here per event) at once, passes them through its own
:class:`~adapters.sim.engine.stream_faults.FaultFilter` and puts what comes out on its queue;
its writer task sends the queue. The bus callback never awaits.

Delayed frames are released at each event and after every HTTP request (the ``pump``
middleware calls :meth:`StreamHub.tick`), and listen keys expire there too, all on the virtual
clock. ``drop_connections`` aborts every socket's transport (the client sees the connection
lost, close code 1006). Server shutdown closes every socket with 1001.

The message protocol is Binance's (``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``,
``SET_PROPERTY``/``GET_PROPERTY`` ``combined``) plus the simulator's ``SIM_SYNC`` barrier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from adapters.sim.engine.events import (
    AccountUpdate,
    BookTicker,
    ConfigUpdate,
    DepthDiff,
    EngineEvent,
    ForceOrder,
    MarginCall,
    MarkUpdate,
    OrderUpdate,
    Trade,
)
from adapters.sim.engine.exchange import Engine
from adapters.sim.server import streams_frames as frames
from adapters.sim.server.listen_keys import ListenKey, ListenKeys
from adapters.sim.server.state import HUB
from adapters.sim.server.streams_connection import MAX_STREAMS, Connection, to_json
from adapters.sim.server.streams_frames import StreamName
from adapters.sim.server.wire import Refused
from harness.errors import Rejected

__all__ = ["MAX_MESSAGE_BYTES", "StreamHub", "combined_stream", "raw_stream"]

log = logging.getLogger("perpcheck.sim.server")

MAX_MESSAGE_BYTES = 64 * 1024  # a client message; larger ones close the socket (1009)
MARK_3S_MS = 3_000  # ``@markPrice`` publishes the updates at multiples of 3 s
_EVENT_NAME = re.compile(r"^[A-Za-z_]{1,40}$")
UserEvent = OrderUpdate | AccountUpdate | MarginCall | ConfigUpdate
MarketEvent = DepthDiff | BookTicker | Trade | MarkUpdate | ForceOrder
Payload = dict[str, Any]


class StreamHub:
    """The app's streams: listen keys, open connections, the bus subscription while any is open."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.keys = ListenKeys()
        self._connections: dict[int, Connection] = {}
        self._next_id = 0
        self._token: int | None = None
        self._memo: dict[str, tuple[Payload, str | None]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._symbols = set(engine.instruments)
        self.symbol_count = len(engine.prices)
        self._remove_drop = engine.stream_faults.on_drop(self.drop_all)

    # ------------------------------------------------------------------ introspection
    @property
    def connections(self) -> list[Connection]:
        """Open connections, oldest first."""
        return list(self._connections.values())

    def subscribed(self, name: str) -> int:
        """How many open connections subscribe to ``name`` (a stream name or a listen key)."""
        return sum(name in c.subs for c in self._connections.values())

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds; it is evaluated whenever connections or their
        subscriptions change (tests and in-process harnesses use it instead of sleeping)."""
        loop = asyncio.get_running_loop()
        while not predicate():
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            await waiter

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ connections
    def _add(self, conn: Connection) -> None:
        if not self._connections:
            self._token = self.engine.events.subscribe(self._on_event)
        self._connections[conn.id] = conn
        self.notify()

    def remove(self, conn: Connection) -> None:
        """Forget ``conn``; the last one leaving unsubscribes the hub from the bus."""
        if self._connections.pop(conn.id, None) is None:
            return
        if not self._connections and self._token is not None:
            self.engine.events.unsubscribe(self._token)
            self._token = None
        self.notify()

    def resolve(self, name: str) -> StreamName | ListenKey | None:
        """A public stream, a listen key the server issued (alive or dead), or None."""
        stream = frames.parse_stream(name, self._symbols)
        if stream is not None:
            return stream
        return self.keys.get(name)

    def drop_all(self) -> None:
        """The ``drop_connections`` fault: every socket's transport is aborted now."""
        for conn in self.connections:
            conn.abort()

    async def shutdown(self) -> None:
        """Close every socket (1001 going away) and stop listening for drops."""
        self._remove_drop()
        closing = [c.close(WSCloseCode.GOING_AWAY) for c in self.connections]
        await asyncio.gather(*closing, return_exceptions=True)
        self.notify()

    # ------------------------------------------------------------------ time
    def _on_event(self, event: EngineEvent) -> None:
        now = self.engine.clock.now_ms()
        self.expire_keys(now)
        self._memo.clear()
        for conn in self.connections:
            conn.on_event(event, now)

    def tick(self) -> None:
        """At the current virtual time: expire listen keys, release delayed frames."""
        if not self._connections:
            return
        now = self.engine.clock.now_ms()
        self.expire_keys(now)
        for conn in self.connections:
            conn.release(now)

    def expire_keys(self, now_ms: int) -> None:
        """Kill the listen keys due at ``now_ms``; their connections get ``listenKeyExpired``."""
        due = self.keys.next_expiry_ms
        if due is None or due > now_ms:
            return
        for key in self.keys.expire(now_ms):
            self.key_gone(key, key.expires_ms)

    def key_gone(self, key: ListenKey, time_ms: int) -> None:
        for conn in self.connections:
            conn.drop_user(key.key, time_ms)

    # ------------------------------------------------------------------ rendering
    def _memoized(self, kind: str, render: Callable[[], Payload]) -> Payload:
        hit = self._memo.get(kind)
        if hit is None:
            hit = (render(), None)
            self._memo[kind] = hit
        return hit[0]

    def raw_text(self, kind: str, payload: Payload) -> str:
        """The frame text of an event's payload of ``kind`` (shared by every raw connection)."""
        hit = self._memo.get(kind)
        if hit is None or hit[0] is not payload:
            return to_json(payload)
        if hit[1] is None:
            hit = (payload, to_json(payload))
            self._memo[kind] = hit
        assert hit[1] is not None  # noqa: S101 - set above
        return hit[1]

    def user_payload(self, event: UserEvent) -> Payload:
        engine = self.engine
        if isinstance(event, OrderUpdate):
            return self._memoized("user", lambda: frames.order_trade_update(event, engine))
        if isinstance(event, AccountUpdate):
            return self._memoized("user", lambda: frames.account_update(event))
        if isinstance(event, MarginCall):
            return self._memoized("user", lambda: frames.margin_call(event))
        return self._memoized("user", lambda: frames.config_update(event))

    def market_payload(self, sub: StreamName, event: MarketEvent) -> tuple[str, Payload] | None:
        """``(kind, payload)`` of ``event`` on stream ``sub``, or None if the stream omits it."""
        kind = sub.kind
        engine = self.engine
        factor = 2 if engine.has("depth-overstated") else 1  # as GET /fapi/v1/depth does
        if isinstance(event, DepthDiff):
            if kind == "depth":
                return kind, self._memoized(kind, lambda: frames.depth_update(event, factor))
            if sub.levels:
                levels = sub.levels
                return kind, self._memoized(
                    kind, lambda: frames.partial_depth(event, engine, levels, factor)
                )
            return None
        if isinstance(event, BookTicker):
            if kind == "bookTicker":
                return kind, self._memoized(kind, lambda: frames.book_ticker(event, factor))
            return None
        if isinstance(event, Trade):
            if kind == "aggTrade":
                return kind, self._memoized(kind, lambda: frames.agg_trade(event))
            if kind == "trade":
                return kind, self._memoized(kind, lambda: frames.trade(event))
            return None
        if isinstance(event, MarkUpdate):
            if not kind.startswith("markPrice"):
                return None
            if not kind.endswith("@1s") and event.time_ms % MARK_3S_MS:
                return None
            return "markPrice", self._memoized("markPrice", lambda: frames.mark_price(event))
        if kind.startswith("forceOrder"):
            return kind, self._memoized("forceOrder", lambda: frames.force_order(event))
        return None

    # ------------------------------------------------------------------ serving
    async def serve(
        self,
        request: web.Request,
        names: Sequence[str],
        *,
        combined: bool,
        listen_key: str | None = None,
        events: frozenset[str] | None = None,
    ) -> web.StreamResponse:
        """Upgrade ``request`` and stream ``names`` (and ``listen_key``) until the socket closes.

        A name that is neither a stream nor a listen key is ignored unless it looks like a
        stream (``@`` or a leading ``!``): ccxt connects to ``/ws/<n>`` and then subscribes.
        """
        self.expire_keys(self.engine.clock.now_ms())
        chosen: list[tuple[str, StreamName | ListenKey]] = []
        for name in names:
            sub = self.resolve(name)
            if sub is not None:
                chosen.append((name, sub))
            elif "@" in name or name.startswith("!"):
                shown = name[:100]
                raise Rejected(
                    -1130, f"Data sent for parameter 'streams' is not valid: no stream '{shown}'."
                )
        ws: web.WebSocketResponse = web.WebSocketResponse(
            autoping=True, compress=False, max_msg_size=MAX_MESSAGE_BYTES
        )
        if not ws.can_prepare(request).ok:
            raise Refused(
                400,
                -1102,
                "Mandatory parameter 'Upgrade: websocket' was not sent, was empty/null, or "
                "malformed: this path serves WebSocket streams.",
            )
        await ws.prepare(request)
        self._next_id += 1
        conn = Connection(self, ws, request, cid=self._next_id, combined=combined, events=events)
        self._add(conn)
        writer = asyncio.create_task(conn.write())
        try:
            for name, sub in chosen:
                conn.add(name, sub)
            if listen_key is not None:
                conn.add(listen_key, self.keys.get(listen_key))
            self.notify()
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    conn.handle_text(message.data)
                elif message.type is WSMsgType.BINARY:
                    conn.error(None, 3, "Invalid JSON: expected a text frame")
                else:
                    break
        except Exception:  # a connection's failure must not reach the error middleware
            log.exception("stream connection %s failed", conn.id)
        finally:
            conn.closed = True
            self.remove(conn)
            writer.cancel()
            try:
                await writer
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close()
        return ws


def _events(request: web.Request) -> frozenset[str] | None:
    """``events=A/B``: the user-data events a private connection wants (Binance's filter)."""
    text = request.query.get("events")
    if text is None:
        return None
    names = frozenset(n for n in text.split("/") if n)
    if not names or not all(_EVENT_NAME.match(n) for n in names):
        raise Rejected(-1130, "Data sent for parameter 'events' is not valid.")
    return names


async def raw_stream(request: web.Request) -> web.StreamResponse:
    """``GET [/public|/market|/private]/ws[/<name>][?listenKey=]``: unwrapped frames."""
    name = request.match_info.get("name")
    return await request.app[HUB].serve(
        request,
        [name] if name else [],
        combined=False,
        listen_key=request.query.get("listenKey") or None,
        events=_events(request),
    )


async def combined_stream(request: web.Request) -> web.StreamResponse:
    """``GET [/public|/market|/private]/stream?streams=a/b/c[&listenKey=]``: wrapped frames."""
    names = [n for n in request.query.get("streams", "").split("/") if n]
    if len(names) > MAX_STREAMS:
        raise Rejected(
            -1130, f"Data sent for parameter 'streams' is not valid: over {MAX_STREAMS}."
        )
    return await request.app[HUB].serve(
        request,
        names,
        combined=True,
        listen_key=request.query.get("listenKey") or None,
        events=_events(request),
    )
