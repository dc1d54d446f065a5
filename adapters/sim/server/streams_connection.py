"""One WebSocket connection of the stream hub (PROTOCOL.md "Streams").

A :class:`Connection` holds its subscriptions (public streams by name, listen keys as
:class:`UserStream`), its own :class:`~adapters.sim.engine.stream_faults.FaultFilter`, an
:class:`asyncio.Queue` of frame texts and the writer task that sends it. The hub hands it every
engine event synchronously (:meth:`Connection.on_event`): the frames are rendered at once (so a
delayed frame shows the state at its event, not at its release), the event goes through the
fault filter, and whatever comes out is queued; nothing awaits. Client messages (Binance's
``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS``/``SET_PROPERTY``/``GET_PROPERTY`` and the
simulator's ``SIM_SYNC``) are answered through the same queue, so a reply follows every frame
queued before its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from aiohttp import web

from adapters.sim.engine.events import (
    AccountUpdate,
    ConfigUpdate,
    EngineEvent,
    MarginCall,
    OrderUpdate,
)
from adapters.sim.server import streams_frames as frames
from adapters.sim.server.listen_keys import ListenKey
from adapters.sim.server.streams_frames import StreamName
from adapters.sim.server.wire import s

if TYPE_CHECKING:
    from adapters.sim.server.streams import StreamHub

__all__ = [
    "MAX_PENDING_FRAMES",
    "MAX_STREAMS",
    "USER_EVENTS",
    "Connection",
    "Subscription",
    "UserStream",
]

log = logging.getLogger("perpcheck.sim.server")

MAX_STREAMS = 1024  # per connection, as Binance
MAX_PENDING_FRAMES = 1_000_000  # a client this far behind is dropped (Binance drops slow readers)
CLOSE_TIMEOUT_S = 1  # server shutdown: how long a socket's close handshake may take
ARRAYS = frozenset({"markPrice@arr", "markPrice@arr@1s"})  # one frame per update, all symbols
USER_EVENTS = {
    OrderUpdate: "ORDER_TRADE_UPDATE",
    AccountUpdate: "ACCOUNT_UPDATE",
    MarginCall: "MARGIN_CALL",
    ConfigUpdate: "ACCOUNT_CONFIG_UPDATE",
}
Payload = dict[str, Any]


@dataclass(frozen=True, slots=True)
class UserStream:
    """A listen key subscribed on a connection: the account's private events."""

    key: str
    account_id: str


Subscription = StreamName | UserStream


class Batch(NamedTuple):
    """One symbol's part of an all-market array frame (``!markPrice@arr``)."""

    stream: str
    time_ms: int
    payload: Payload


Item = str | Batch


def to_json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=_decimal)


def _decimal(value: object) -> str:
    if isinstance(value, Decimal):
        return s(value)
    msg = f"cannot write {type(value).__name__} in a frame"
    raise TypeError(msg)


def _valid_id(value: object) -> bool:
    """Binance: an unsigned integer; strings and null are taken as well (Binance spot does)."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value < 2**63
    return isinstance(value, str) and len(value) <= 64


class Connection:
    """One WebSocket: its subscriptions, fault filter, queue and writer."""

    def __init__(
        self,
        hub: StreamHub,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        cid: int,
        combined: bool,
        events: frozenset[str] | None,
    ) -> None:
        self.hub = hub
        self.ws = ws
        self.id = cid
        self.combined = combined  # frames wrapped {"stream", "data"} (/stream, SET_PROPERTY)
        self.events = events  # user events wanted (``events=`` on the URL); None: all
        self.subs: dict[str, Subscription] = {}
        self.filter = hub.engine.stream_faults.filter()
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False
        self._transport = request.transport
        self._pending: dict[int, tuple[EngineEvent, list[Item]]] = {}
        self._batches: dict[str, list[Batch]] = {}
        self._methods: dict[str, Callable[[object, object], None]] = {
            "SUBSCRIBE": self._subscribe,
            "UNSUBSCRIBE": self._unsubscribe,
            "LIST_SUBSCRIPTIONS": self._list,
            "SET_PROPERTY": self._set_property,
            "GET_PROPERTY": self._get_property,
            "SIM_SYNC": self._sync,
        }

    # ------------------------------------------------------------------ output
    async def write(self) -> None:
        """The writer task: send the queue in order until told to stop or the socket fails."""
        while True:
            text = await self.queue.get()
            if text is None:
                return
            try:
                await self.ws.send_str(text)
            except Exception:  # the socket is going away: nothing left to send to
                log.debug("stream connection %s: send failed", self.id, exc_info=True)
                return

    def put(self, text: str) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= MAX_PENDING_FRAMES:
            log.warning(
                "stream connection %s is %d frames behind: dropped", self.id, MAX_PENDING_FRAMES
            )
            self.abort()
            return
        self.queue.put_nowait(text)

    def _text(self, stream: str, payload: Any) -> str:
        if self.combined:
            return to_json({"stream": stream, "data": payload})
        return to_json(payload)

    def reply(self, req_id: object, result: Any) -> None:
        self.put(to_json({"result": result, "id": req_id}))

    def error(self, req_id: object, code: int, msg: str) -> None:
        self.put(to_json({"error": {"code": code, "msg": msg}, "id": req_id}))

    # ------------------------------------------------------------------ events
    def on_event(self, event: EngineEvent, now_ms: int) -> None:
        """The bus callback's share for this connection: convert, filter, enqueue."""
        if self.closed:
            return
        try:
            items = self._items(event)
            if items:
                flt = self.filter
                withheld = flt.withheld
                self._pending[id(event)] = (event, items)
                out = flt.feed(event)
                if flt.withheld != withheld:  # a gap fault swallowed it
                    self._pending.pop(id(event), None)
                self._emit(out)
            self._emit(self.filter.release(now_ms))
        except Exception:  # never into the engine's operation
            log.exception("stream connection %s failed on %s", self.id, type(event).__name__)
            self.abort()

    def release(self, now_ms: int) -> None:
        if self.closed:
            return
        try:
            self._emit(self.filter.release(now_ms))
        except Exception:
            log.exception("stream connection %s failed releasing frames", self.id)
            self.abort()

    def _items(self, event: EngineEvent) -> list[Item]:
        hub = self.hub
        items: list[Item] = []
        if isinstance(event, OrderUpdate | AccountUpdate | MarginCall | ConfigUpdate):
            if self.events is not None and USER_EVENTS[type(event)] not in self.events:
                return items
            for name, sub in self.subs.items():
                if isinstance(sub, UserStream) and sub.account_id == event.account_id:
                    payload = hub.user_payload(event)
                    items.append(
                        self._text(name, payload)
                        if self.combined
                        else hub.raw_text("user", payload)
                    )
            return items
        for name, sub in self.subs.items():
            if isinstance(sub, UserStream) or sub.symbol not in (None, event.symbol):
                continue
            rendered = hub.market_payload(sub, event)
            if rendered is None:
                continue
            kind, payload = rendered
            if sub.kind in ARRAYS:
                items.append(Batch(name, event.time_ms, payload))
            elif self.combined:
                items.append(self._text(name, payload))
            else:
                items.append(hub.raw_text(kind, payload))
        return items

    def _emit(self, events: list[EngineEvent]) -> None:
        for event in events:
            entry = self._pending.pop(id(event), None)
            if entry is None or entry[0] is not event:
                continue
            for item in entry[1]:
                if isinstance(item, str):
                    self.put(item)
                else:
                    self._batch(item)

    def _batch(self, item: Batch) -> None:
        batch = self._batches.setdefault(item.stream, [])
        if batch and batch[0].time_ms != item.time_ms:
            self._flush_batch(item.stream)
            batch = self._batches.setdefault(item.stream, [])
        batch.append(item)
        if len(batch) >= self.hub.symbol_count:
            self._flush_batch(item.stream)

    def _flush_batch(self, stream: str) -> None:
        batch = self._batches.pop(stream, [])
        if batch:
            self.put(self._text(stream, [b.payload for b in batch]))

    # ------------------------------------------------------------------ subscriptions
    def add(self, name: str, sub: StreamName | ListenKey | None) -> None:
        """Subscribe ``name``; a listen key that is not alive gets ``listenKeyExpired`` at once."""
        if isinstance(sub, StreamName):
            self.subs[name] = sub
        elif sub is not None and sub.alive:
            self.subs[name] = UserStream(sub.key, sub.account_id)
        else:
            now = self.hub.engine.clock.now_ms()
            self.put(self._text(name, frames.listen_key_expired(name, now)))

    def drop_user(self, key: str, time_ms: int) -> None:
        """The key died: ``listenKeyExpired``, and no more user data for it."""
        if isinstance(self.subs.get(key), UserStream):
            del self.subs[key]
            self.put(self._text(key, frames.listen_key_expired(key, time_ms)))
            self.hub.notify()

    # ------------------------------------------------------------------ closing
    def abort(self) -> None:
        """Cut the connection as a network failure would (no close frame)."""
        self.closed = True
        self.hub.remove(self)
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.abort()

    async def close(self, code: int) -> None:
        """Close with ``code`` (server shutdown), giving the handshake a bounded time."""
        self.closed = True
        self.hub.remove(self)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code), CLOSE_TIMEOUT_S)

    # ------------------------------------------------------------------ messages
    def handle_text(self, data: str) -> None:
        """One client message (Binance's request/response protocol)."""
        try:
            message = json.loads(data)
        except (ValueError, RecursionError) as exc:
            self.error(None, 3, f"Invalid JSON: {str(exc)[:200]}")
            return
        if not isinstance(message, dict):
            self.error(None, 2, "Invalid request: a request is a JSON object")
            return
        req_id = message.get("id")
        if not _valid_id(req_id):
            self.error(None, 2, "Invalid request: request ID must be an unsigned integer")
            return
        method = message.get("method")
        handler = self._methods.get(method) if isinstance(method, str) else None
        if handler is None:
            shown = str(method)[:40] if method is not None else "missing field `method`"
            self.error(
                req_id,
                2,
                f"Invalid request: unknown variant {shown}, expected one of "
                + ", ".join(self._methods),
            )
            return
        handler(req_id, message.get("params"))

    def _names(self, req_id: object, params: object) -> list[str] | None:
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            self.error(req_id, 2, "Invalid request: params must be an array of stream names")
            return None
        if len(params) > MAX_STREAMS:
            self.error(req_id, 2, f"Invalid request: at most {MAX_STREAMS} streams per request")
            return None
        return params

    def _subscribe(self, req_id: object, params: object) -> None:
        names = self._names(req_id, params)
        if names is None:
            return
        self.hub.expire_keys(self.hub.engine.clock.now_ms())
        chosen: list[tuple[str, StreamName | ListenKey]] = []
        for name in names:
            sub = self.hub.resolve(name)
            if sub is None:
                self.error(req_id, 2, f"Invalid request: invalid stream name '{name[:100]}'")
                return
            chosen.append((name, sub))
        added = {name for name, _ in chosen if name not in self.subs}
        if len(self.subs) + len(added) > MAX_STREAMS:
            self.error(req_id, 2, f"Invalid request: at most {MAX_STREAMS} streams per connection")
            return
        self.reply(req_id, None)
        for name, sub in chosen:
            self.add(name, sub)
        self.hub.notify()

    def _unsubscribe(self, req_id: object, params: object) -> None:
        names = self._names(req_id, params)
        if names is None:
            return
        for name in names:
            self.subs.pop(name, None)
            self._batches.pop(name, None)
        self.reply(req_id, None)
        self.hub.notify()

    def _list(self, req_id: object, params: object) -> None:
        self.reply(req_id, list(self.subs))

    def _set_property(self, req_id: object, params: object) -> None:
        if not isinstance(params, list) or len(params) != 2 or not isinstance(params[0], str):
            self.error(req_id, 2, 'Invalid request: params must be ["combined", true|false]')
        elif params[0] != "combined":
            self.error(req_id, 0, "Unknown property")
        elif not isinstance(params[1], bool):
            self.error(req_id, 1, "Invalid value type: expected Boolean")
        else:
            self.combined = params[1]
            self.reply(req_id, None)

    def _get_property(self, req_id: object, params: object) -> None:
        if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], str):
            self.error(req_id, 2, 'Invalid request: params must be ["combined"]')
        elif params[0] != "combined":
            self.error(req_id, 0, "Unknown property")
        else:
            self.reply(req_id, self.combined)

    def _sync(self, req_id: object, params: object) -> None:
        """``SIM_SYNC``: answered after every frame queued before it (held ones excepted)."""
        self.hub.tick()
        self.reply(req_id, {"now_ms": self.hub.engine.clock.now_ms()})
