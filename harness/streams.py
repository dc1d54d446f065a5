"""Venue event streams: what a trader learns as it happens (marks, fills, liquidations, funding).

Venue-neutral types for the events a venue pushes, the :class:`EventStream` protocol a venue
returns from ``Venue.stream(...)`` (capability ``READ_STREAMS``), and :class:`LocalBook`, which
keeps an order book from a snapshot plus diff-depth events the way Binance documents it and
notices when the sequence breaks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol, TypeVar, runtime_checkable

from harness.model import BookSnapshot, Fill, MarginMode, Side

__all__ = [
    "AccountEvent",
    "ConfigEvent",
    "DepthEvent",
    "EventStream",
    "FillRecord",
    "FillRecorder",
    "LiquidationOrderEvent",
    "LocalBook",
    "MarginCallEvent",
    "MarkEvent",
    "OrderEvent",
    "PositionSnapshot",
    "StreamEvent",
    "SyncedBook",
    "TradeEvent",
    "as_account_sees",
    "select",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkEvent:
    """``<symbol>@markPrice@1s``: mark, index, estimated settle price, funding."""

    symbol: str
    mark: Decimal
    index: Decimal
    estimated_settle: Decimal
    funding_rate: Decimal
    next_funding_ms: int
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeEvent:
    """``<symbol>@aggTrade``."""

    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    buyer_is_maker: bool
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DepthEvent:
    """``<symbol>@depth``: levels changed since the previous event; qty 0 removes a level.

    ``first_update_id``/``final_update_id`` are Binance's ``U``/``u`` and
    ``prev_final_update_id`` its ``pu``: consecutive events chain ``pu == previous u``.
    """

    symbol: str
    first_update_id: int
    final_update_id: int
    prev_final_update_id: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationOrderEvent:
    """``<symbol>@forceOrder``: a liquidation order, anyone's (no account on the public stream)."""

    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    avg_price: Decimal | None
    filled_qty: Decimal
    status: str
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEvent:
    """``ORDER_TRADE_UPDATE`` on the account's user stream."""

    symbol: str
    order_id: str
    client_order_id: str
    side: Side
    status: str
    execution_type: str  # NEW, TRADE, CANCELED, EXPIRED, CALCULATED
    last_qty: Decimal
    last_price: Decimal
    cum_qty: Decimal
    avg_price: Decimal | None
    commission: Decimal
    realized_pnl: Decimal
    maker: bool
    trade_id: int | None
    liquidation: bool
    adl: bool
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionSnapshot:
    symbol: str
    quantity: Decimal
    entry_price: Decimal
    unrealized_pnl: Decimal
    margin_mode: MarginMode
    isolated_wallet: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountEvent:
    """``ACCOUNT_UPDATE``: balances and positions after a change, with its reason."""

    reason: str  # ORDER, FUNDING_FEE, ISOLATED_MARGIN, INSURANCE_CLEAR, ADL, ...
    wallet_balance: Decimal
    cross_wallet: Decimal
    balance_change: Decimal
    positions: tuple[PositionSnapshot, ...]
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginCallEvent:
    """``MARGIN_CALL``: the account's positions near maintenance."""

    cross_wallet: Decimal
    symbols: tuple[str, ...]
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigEvent:
    """``ACCOUNT_CONFIG_UPDATE``: leverage or margin mode changed."""

    symbol: str
    leverage: int | None
    margin_mode: MarginMode | None
    time_ms: int


StreamEvent = (
    MarkEvent
    | TradeEvent
    | DepthEvent
    | LiquidationOrderEvent
    | OrderEvent
    | AccountEvent
    | MarginCallEvent
    | ConfigEvent
)


@runtime_checkable
class EventStream(Protocol):
    """Events of some symbols (and optionally one account's user stream), in arrival order.

    ``drain()`` returns what arrived since the last drain; on a simulator, every event caused by
    a control call or request that has returned is there. ``reconnects`` counts the times the
    stream reconnected and resubscribed after losing its connection.
    """

    async def drain(self) -> list[StreamEvent]: ...

    @property
    def reconnects(self) -> int: ...

    async def close(self) -> None: ...


class _OwnClientIds:
    """An event stream whose order events carry client ids as one account shows them."""

    def __init__(self, stream: EventStream, seen: Callable[[str], str]) -> None:
        self._stream = stream
        self._seen = seen

    async def drain(self) -> list[StreamEvent]:
        seen = self._seen
        return [
            replace(e, client_order_id=seen(e.client_order_id)) if isinstance(e, OrderEvent) else e
            for e in await self._stream.drain()
        ]

    @property
    def reconnects(self) -> int:
        return self._stream.reconnects

    async def close(self) -> None:
        await self._stream.close()


def as_account_sees(stream: EventStream, account: object | None) -> EventStream:
    """``stream`` with its order events' client ids as ``account`` shows them.

    The harness hands checks an account that names orders for the venue differently from how
    the check named them (harness.safety: the run's prefix). Its REST answers are translated
    back; a venue's ``stream(account=...)`` passes its stream through here so that the user
    stream agrees with them. An account without ``client_id_seen`` gets ``stream`` itself.
    """
    seen = getattr(account, "client_id_seen", None)
    return stream if seen is None else _OwnClientIds(stream, seen)


_Levels = tuple[tuple[Decimal, Decimal], ...]


class LocalBook:
    """An order book kept from a REST snapshot plus diff-depth events (Binance's recipe).

    Drop events with ``u <= lastUpdateId``; the first applied must have
    ``U <= lastUpdateId + 1 <= u``; each next must have ``pu == previous u``. A break is a gap:
    the book is marked out of sync (``gaps`` counts them) until :meth:`resync` loads a new
    snapshot.
    """

    def __init__(self, snapshot: BookSnapshot) -> None:
        self.symbol = snapshot.symbol
        self.gaps = 0
        self.applied = 0
        self._load(snapshot)

    def _load(self, snapshot: BookSnapshot) -> None:
        self.bids: dict[Decimal, Decimal] = dict(snapshot.bids)
        self.asks: dict[Decimal, Decimal] = dict(snapshot.asks)
        self.last_update_id = snapshot.update_id
        self._previous_u: int | None = None
        self.in_sync = True

    def apply(self, event: DepthEvent) -> bool:
        """Apply one event; False if it was stale or broke the sequence (book out of sync)."""
        if not self.in_sync or event.symbol != self.symbol:
            return False
        if event.final_update_id <= self.last_update_id:
            return False  # already in the snapshot
        if self._previous_u is None:
            if not event.first_update_id <= self.last_update_id + 1 <= event.final_update_id:
                self._break()
                return False
        elif event.prev_final_update_id != self._previous_u:
            self._break()
            return False
        for side, levels in ((self.bids, event.bids), (self.asks, event.asks)):
            for price, qty in levels:
                if qty == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self._previous_u = event.final_update_id
        self.last_update_id = event.final_update_id
        self.applied += 1
        return True

    def _break(self) -> None:
        self.gaps += 1
        self.in_sync = False

    def resync(self, snapshot: BookSnapshot) -> None:
        self._load(snapshot)

    def top(self, depth: int) -> tuple[_Levels, _Levels]:
        bids = tuple(sorted(self.bids.items(), key=lambda kv: -kv[0])[:depth])
        asks = tuple(sorted(self.asks.items(), key=lambda kv: kv[0])[:depth])
        return bids, asks

    def differences(self, snapshot: BookSnapshot) -> list[str]:
        """Where this book and ``snapshot`` disagree, over the snapshot's depth."""
        depth = max(len(snapshot.bids), len(snapshot.asks))
        bids, asks = self.top(depth)
        out: list[str] = []
        for name, mine, theirs in (("bid", bids, snapshot.bids), ("ask", asks, snapshot.asks)):
            for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
                if a != b:
                    out.append(
                        f"{name} level {i + 1}: local {a[1]} @ {a[0]} vs venue {b[1]} @ {b[0]}"
                    )
            if len(mine) != len(theirs):
                out.append(f"{name} levels: local {len(mine)} vs venue {len(theirs)}")
        return out


class SyncedBook:
    """A :class:`LocalBook` kept in sync the way a careful client does.

    Feed it every drained batch (:meth:`feed`): diff events are applied; on a sequence break the
    book reloads a snapshot (``snapshot()``, e.g. ``venue.order_book(symbol, 1000)``) and goes on;
    after the stream reconnected (its ``reconnects`` grew) it reloads too, since whatever was
    published while it was away is lost. ``resyncs`` records why each reload happened.
    """

    def __init__(
        self,
        stream: EventStream,
        symbol: str,
        snapshot: Callable[[], Awaitable[BookSnapshot]],
    ) -> None:
        self.stream = stream
        self.symbol = symbol
        self._snapshot = snapshot
        self._reconnects = stream.reconnects
        self.book: LocalBook | None = None
        self.resyncs: list[str] = []

    async def start(self) -> LocalBook:
        """Load the first snapshot (after the stream is open, as Binance's recipe says)."""
        self.book = LocalBook(await self._snapshot())
        self._reconnects = self.stream.reconnects
        return self.book

    async def feed(self, events: Sequence[StreamEvent]) -> None:
        book = self.book or await self.start()
        if self.stream.reconnects != self._reconnects:
            self._reconnects = self.stream.reconnects
            book.resync(await self._snapshot())
            self.resyncs.append("reconnected")
        for event in events:
            if not isinstance(event, DepthEvent) or event.symbol != self.symbol:
                continue
            if not book.apply(event) and not book.in_sync:
                book.resync(await self._snapshot())
                self.resyncs.append(
                    f"sequence break at U={event.first_update_id} pu={event.prev_final_update_id}"
                )


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One execution as a trader records it, from the stream or from REST."""

    order_id: str
    trade_id: int
    qty: Decimal
    price: Decimal
    source: str  # "stream" or "rest"


class FillRecorder:
    """The account's executions from its user stream, completed over REST after a reconnect.

    Executions are keyed by (order id, trade id): a fill seen twice counts once. After the stream
    reconnected, :meth:`reconcile` asks ``fills(since_ms)`` for what was published while it was
    away; ``duplicates`` counts stream reports of an execution already recorded.
    """

    def __init__(self, stream: EventStream, fills: Callable[[int], Awaitable[list[Fill]]]) -> None:
        self.stream = stream
        self._fills = fills
        self._reconnects = stream.reconnects
        self.records: dict[tuple[str, int], FillRecord] = {}
        self.duplicates = 0
        self.recovered = 0
        self._last_ms = 0

    async def feed(self, events: Sequence[StreamEvent], since_ms: int) -> None:
        for event in events:
            if not isinstance(event, OrderEvent) or event.trade_id is None or not event.last_qty:
                continue
            key = (event.order_id, event.trade_id)
            if key in self.records:
                self.duplicates += 1
                continue
            self.records[key] = FillRecord(
                event.order_id, event.trade_id, event.last_qty, event.last_price, "stream"
            )
        if self.stream.reconnects != self._reconnects:
            self._reconnects = self.stream.reconnects
            await self.reconcile(since_ms)

    async def reconcile(self, since_ms: int) -> None:
        for fill in await self._fills(since_ms):
            key = (str(fill.order_id), fill.trade_id)
            if key not in self.records:
                self.records[key] = FillRecord(key[0], key[1], fill.qty, fill.price, "rest")
                self.recovered += 1


E = TypeVar("E")


def select(
    events: Sequence[StreamEvent], kind: type[E], where: Callable[[E], bool] | None = None
) -> list[E]:
    """The events of one kind (and matching ``where``), in order."""
    return [e for e in events if isinstance(e, kind) and (where is None or where(e))]
