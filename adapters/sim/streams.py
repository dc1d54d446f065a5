"""The in-process venue's event streams: engine events as :mod:`harness.streams` events.

:class:`SimEventStream` subscribes to the engine's bus (``engine.events``) and keeps, in order,
what a Binance client subscribed to the same streams would receive: for each symbol its
``@markPrice@1s`` marks, ``@aggTrade`` trades, ``@forceOrder`` liquidation orders and (``depth``)
``@depth`` diffs; for the account, its user-data events (``ORDER_TRADE_UPDATE``,
``ACCOUNT_UPDATE``, ``MARGIN_CALL``, ``ACCOUNT_CONFIG_UPDATE``). The engine delivers synchronously,
so every event of a call that has returned is in the next :meth:`~SimEventStream.drain`.

Faults injected with ``set_stream_faults`` pass through the subscriber's own
:class:`~adapters.sim.engine.stream_faults.FaultFilter`, exactly as on the server's sockets; a
dropped connection loses what happens until the next ``drain``, which reconnects and resubscribes
(``reconnects`` counts it), as a WebSocket client does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from adapters.sim.engine.events import (
    AccountUpdate,
    ConfigUpdate,
    DepthDiff,
    EngineEvent,
    ForceOrder,
    MarginCall,
    MarkUpdate,
    OrderUpdate,
    Trade,
)
from adapters.sim.engine.stream_faults import FaultFilter
from harness.streams import (
    AccountEvent,
    ConfigEvent,
    DepthEvent,
    LiquidationOrderEvent,
    MarginCallEvent,
    MarkEvent,
    OrderEvent,
    PositionSnapshot,
    StreamEvent,
    TradeEvent,
)

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = ["SimEventStream", "convert"]

_PRIVATE = (OrderUpdate, AccountUpdate, MarginCall, ConfigUpdate)


def convert(event: EngineEvent) -> StreamEvent | None:
    """The harness event a Binance client would build from ``event``'s frame (None: no frame)."""
    match event:
        case MarkUpdate():
            return MarkEvent(
                symbol=event.symbol,
                mark=event.mark,
                index=event.index,
                estimated_settle=event.estimated_settle,
                funding_rate=event.funding_rate,
                next_funding_ms=event.next_funding_ms,
                time_ms=event.time_ms,
            )
        case Trade():
            return TradeEvent(
                symbol=event.symbol,
                trade_id=event.trade_id,
                price=event.price,
                qty=event.qty,
                buyer_is_maker=event.buyer_is_maker,
                time_ms=event.time_ms,
            )
        case DepthDiff():
            return DepthEvent(
                symbol=event.symbol,
                first_update_id=event.first_update_id,
                final_update_id=event.final_update_id,
                prev_final_update_id=event.prev_final_update_id,
                bids=event.bids,
                asks=event.asks,
                time_ms=event.time_ms,
            )
        case ForceOrder():
            return LiquidationOrderEvent(
                symbol=event.symbol,
                side=event.side,
                quantity=event.quantity,
                price=event.price,
                avg_price=event.avg_price,
                filled_qty=event.filled_qty,
                status=event.status,
                time_ms=event.time_ms,
            )
        case OrderUpdate():
            return OrderEvent(
                symbol=event.symbol,
                order_id=str(event.order_id),
                client_order_id=event.client_order_id,
                side=event.side,
                status=event.status,
                execution_type=event.execution_type.value,
                last_qty=event.last_qty,
                last_price=event.last_price,
                cum_qty=event.cum_qty,
                avg_price=event.avg_price,
                commission=event.commission,
                realized_pnl=event.realized_pnl,
                maker=event.maker,
                trade_id=event.trade_id,
                liquidation=event.liquidation,
                adl=event.adl,
                time_ms=event.time_ms,
            )
        case AccountUpdate():
            usdt = event.balances[0]
            return AccountEvent(
                reason=event.reason.value,
                wallet_balance=usdt.wallet,
                cross_wallet=usdt.cross_wallet,
                balance_change=usdt.balance_change,
                positions=tuple(
                    PositionSnapshot(
                        symbol=p.symbol,
                        quantity=p.qty,
                        entry_price=p.entry,
                        unrealized_pnl=p.upnl,
                        margin_mode=p.margin_mode,
                        isolated_wallet=p.isolated_wallet,
                    )
                    for p in event.positions
                ),
                time_ms=event.time_ms,
            )
        case MarginCall():
            return MarginCallEvent(
                cross_wallet=event.cross_wallet,
                symbols=tuple(p.symbol for p in event.positions),
                time_ms=event.time_ms,
            )
        case ConfigUpdate():
            return ConfigEvent(
                symbol=event.symbol,
                leverage=event.leverage,
                margin_mode=event.margin_mode,
                time_ms=event.time_ms,
            )
    return None


class SimEventStream:
    """Market streams of ``symbols`` and, given ``account_id``, that account's user stream."""

    def __init__(
        self,
        engine: Engine,
        symbols: Sequence[str],
        *,
        account_id: str | None = None,
        depth: bool = False,
    ) -> None:
        for symbol in symbols:
            engine.instrument(symbol)  # ConfigError for an unknown symbol
        self._engine = engine
        self._symbols = frozenset(symbols)
        self._account_id = account_id
        self._depth = depth
        self._buffer: list[StreamEvent] = []
        self._reconnects = 0
        self._closed = False
        self._token: int | None = None
        self._filter: FaultFilter  # set by _connect: a new one per connection
        self._remove_drop = engine.stream_faults.on_drop(self._dropped)
        self._connect()

    def _connect(self) -> None:
        self._filter = self._engine.stream_faults.filter()
        self._token = self._engine.events.subscribe(self._receive)

    def _dropped(self) -> None:
        """The connection was cut: nothing arrives until the next drain reconnects."""
        if self._token is not None:
            self._engine.events.unsubscribe(self._token)
            self._token = None

    def _wanted(self, event: EngineEvent) -> bool:
        if isinstance(event, _PRIVATE):
            return event.account_id == self._account_id
        if event.symbol not in self._symbols:
            return False
        if isinstance(event, DepthDiff):
            return self._depth
        return isinstance(event, (MarkUpdate, Trade, ForceOrder))

    def _receive(self, event: EngineEvent) -> None:
        if self._wanted(event):
            self._deliver(self._filter.feed(event))
        self._deliver(self._filter.release(self._engine.clock.now_ms()))

    def _deliver(self, events: list[EngineEvent]) -> None:
        for event in events:
            converted = convert(event)
            if converted is not None:
                self._buffer.append(converted)

    @property
    def reconnects(self) -> int:
        return self._reconnects

    @property
    def filter(self) -> FaultFilter:
        """This subscriber's fault filter (what the injected faults withheld or swapped)."""
        return self._filter

    async def drain(self) -> list[StreamEvent]:
        """Everything delivered since the last drain, in order; reconnects a dropped stream."""
        if self._closed:
            return []
        self._deliver(self._filter.release(self._engine.clock.now_ms()))
        if self._token is None:
            self._reconnects += 1
            self._connect()
        out, self._buffer = self._buffer, []
        return out

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._dropped()
        self._remove_drop()
