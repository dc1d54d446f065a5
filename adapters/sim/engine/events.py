"""The engine's event bus: what happened, in order, for whoever listens (the server's streams).

:class:`EventBus` (``engine.events``) calls its subscribers synchronously, in subscription order,
with each event as the engine produces it. With nobody subscribed the engine does not build
events at all (every hook checks :attr:`EventBus.active` first), so an unobserved simulator
runs as fast as before.

Every event is a frozen, slotted, keyword-only dataclass; money, prices and quantities are
:class:`~decimal.Decimal`; ``time_ms`` is the engine's **virtual** time; ``account_id`` is the
account an event is private to, ``None`` for a public one. The engine emits
(:mod:`adapters.sim.engine.publisher` builds them):

* :class:`DepthDiff`: once at the end of every engine operation (a request, a control action, an
  update) that changed a symbol's book. ``bids``/``asks`` hold every level touched since the
  previous diff of that symbol with its new total quantity (0: the level is gone).
  ``first_update_id``/``final_update_id``/``prev_final_update_id`` are Binance's ``U``/``u``/
  ``pu`` over :attr:`OrderBook.update_id <adapters.sim.engine.book.OrderBook.update_id>`, the
  ``lastUpdateId`` of ``GET /fapi/v1/depth``: ``U = pu + 1``, ``u`` = the book's id after the
  operation, and each diff's ``pu`` is the previous diff's ``u``. A snapshot taken between
  operations therefore has ``lastUpdateId`` equal to some diff's ``u`` (or to the id the bus saw
  when it became active), and "apply every diff with ``u > lastUpdateId``, the first having
  ``U <= lastUpdateId + 1 <= u``, each next one ``pu == previous u``" rebuilds the book exactly.
* :class:`BookTicker`: at the same point, when the best bid or ask (price or quantity) changed.
* :class:`Trade`: every trade through the book (one per maker order filled; the aggTrade stream
  publishes each as its own aggregate, first = last = its trade id). Liquidation takeovers and
  ADL transfers are not trades through the book and are not published here.
* :class:`MarkUpdate`: every symbol at every update (1 s); ``@markPrice`` (3 s) takes those at
  multiples of 3 s.
* :class:`ForceOrder`: every liquidation step (private to its account; the public stream omits it).
* :class:`OrderUpdate`: ``NEW`` when an order is accepted, ``TRADE`` per fill, ``CANCELED``,
  ``EXPIRED`` (IOC/FOK remainder, reduce-only with nothing left, self-trade prevention), and
  ``CALCULATED`` per fill of a liquidation order (client id ``autoclose-…``, ``liquidation``) or
  of an auto-deleveraging counter order (client id ``adl-…``, ``adl``), as Binance reports
  liquidation executions. Only trader accounts: the market maker and the insurance fund are not.
* :class:`AccountUpdate`: once per account at the end of every operation that changed its wallet
  or positions, with the balances and every position the operation touched (a closed one with
  quantity 0). ``reason`` is the first cause in that operation (:class:`AccountReason`): a fill
  (``ORDER``; ``ADL`` when the account's first change was being deleveraged), a funding payment,
  a margin transfer, a liquidation fee, a deposit. ``balance_change`` is the wallet change other
  than realized PnL and commission (Binance's ``bc``).
* :class:`MarginCall`: at an update, when the margin ratio (maintenance / margin balance) of an
  account's cross positions, or of one isolated position, reaches :data:`MARGIN_CALL_RATIO`; it
  fires again only after the ratio fell below :data:`MARGIN_CALL_REARM_RATIO` (hysteresis).
* :class:`ConfigUpdate`: leverage or margin mode changed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from harness.model import MarginMode, Side

__all__ = [
    "MARGIN_CALL_RATIO",
    "MARGIN_CALL_REARM_RATIO",
    "AccountReason",
    "AccountUpdate",
    "BalanceRow",
    "BookTicker",
    "ConfigUpdate",
    "DepthDiff",
    "EngineEvent",
    "EventBus",
    "ExecutionType",
    "ForceOrder",
    "MarginCall",
    "MarginCallPosition",
    "MarkUpdate",
    "OrderUpdate",
    "PositionRow",
    "Trade",
]

MARGIN_CALL_RATIO = Decimal("0.8")  # maintenance / margin balance at which a margin call fires
MARGIN_CALL_REARM_RATIO = Decimal("0.7")  # ... and below which the next one may fire

Level = tuple[Decimal, Decimal]


class ExecutionType(enum.StrEnum):
    """Binance ``ORDER_TRADE_UPDATE`` ``x``."""

    NEW = "NEW"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    CALCULATED = "CALCULATED"  # a liquidation or ADL execution


class AccountReason(enum.StrEnum):
    """Binance ``ACCOUNT_UPDATE`` ``m`` (``ADL`` is the simulator's own)."""

    ORDER = "ORDER"
    FUNDING_FEE = "FUNDING_FEE"
    MARGIN_TRANSFER = "MARGIN_TRANSFER"  # isolated margin added or removed (positionMargin)
    INSURANCE_CLEAR = "INSURANCE_CLEAR"  # the liquidation fee
    ADL = "ADL"
    DEPOSIT = "DEPOSIT"


@dataclass(frozen=True, slots=True, kw_only=True)
class DepthDiff:
    """Levels changed since the previous diff of ``symbol`` (``<symbol>@depth``)."""

    account_id: str | None = None
    symbol: str
    first_update_id: int
    final_update_id: int
    prev_final_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BookTicker:
    """The best bid and ask after a change (``<symbol>@bookTicker``); 0 for an empty side."""

    account_id: str | None = None
    symbol: str
    update_id: int
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """A trade through the book (``<symbol>@aggTrade`` / ``@trade``)."""

    account_id: str | None = None
    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    buyer_is_maker: bool
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkUpdate:
    """One symbol's prices at an update (``<symbol>@markPrice@1s``)."""

    account_id: str | None = None
    symbol: str
    mark: Decimal
    index: Decimal
    estimated_settle: Decimal
    funding_rate: Decimal
    next_funding_ms: int
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ForceOrder:
    """One liquidation step (``forceOrder``); ``price`` is the order's limit (0: market)."""

    account_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    avg_price: Decimal | None  # of what went through the book; None if nothing did
    filled_qty: Decimal  # through the book (the rest was taken over or deleveraged)
    status: str
    time_ms: int
    partial: bool  # the position survives the step
    trigger_mark: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderUpdate:
    """An order's execution report (``ORDER_TRADE_UPDATE``)."""

    account_id: str
    symbol: str
    order_id: int
    client_order_id: str
    side: Side
    type: str  # LIMIT / MARKET
    time_in_force: str | None
    price: Decimal  # the limit; 0 for a market order
    orig_qty: Decimal
    status: str  # NEW / PARTIALLY_FILLED / FILLED / CANCELED / EXPIRED
    execution_type: ExecutionType
    last_qty: Decimal
    last_price: Decimal
    cum_qty: Decimal
    avg_price: Decimal | None  # None before the first fill
    commission: Decimal  # of this fill
    realized_pnl: Decimal  # of this fill
    maker: bool
    trade_id: int | None  # None unless a fill
    reduce_only: bool
    liquidation: bool
    adl: bool
    time_ms: int


class BalanceRow(NamedTuple):
    asset: str
    wallet: Decimal  # cross wallet + isolated wallets
    cross_wallet: Decimal
    balance_change: Decimal  # in this operation, except realized PnL and commission


class PositionRow(NamedTuple):
    symbol: str
    qty: Decimal  # signed
    entry: Decimal
    upnl: Decimal  # at the mark, rounded to the balance unit
    margin_mode: MarginMode
    isolated_wallet: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountUpdate:
    """Balances and touched positions after an operation (``ACCOUNT_UPDATE``)."""

    account_id: str
    reason: AccountReason
    balances: tuple[BalanceRow, ...]
    positions: tuple[PositionRow, ...]
    time_ms: int


class MarginCallPosition(NamedTuple):
    symbol: str
    side: Side
    qty: Decimal  # absolute
    margin_mode: MarginMode
    isolated_wallet: Decimal
    mark: Decimal
    upnl: Decimal
    maint_margin: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginCall:
    """Positions whose margin ratio reached :data:`MARGIN_CALL_RATIO` (``MARGIN_CALL``)."""

    account_id: str
    cross_wallet: Decimal
    positions: tuple[MarginCallPosition, ...]
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigUpdate:
    """Leverage or margin mode of a symbol changed (``ACCOUNT_CONFIG_UPDATE``)."""

    account_id: str
    symbol: str
    leverage: int  # in force after the change (Binance always sends ``ac.l``)
    margin_mode: MarginMode | None
    time_ms: int


EngineEvent = (
    DepthDiff
    | BookTicker
    | Trade
    | MarkUpdate
    | ForceOrder
    | OrderUpdate
    | AccountUpdate
    | MarginCall
    | ConfigUpdate
)
Subscriber = Callable[[EngineEvent], None]


class EventBus:
    """Synchronous, in-order delivery of :data:`EngineEvent` to subscribers.

    Args:
        on_active: called with True when the first subscriber arrives and False when the last
            leaves (the engine starts and stops its bookkeeping there).
    """

    __slots__ = ("_next", "_on_active", "_subscribers", "active")

    def __init__(self, on_active: Callable[[bool], None] | None = None) -> None:
        self._subscribers: dict[int, Subscriber] = {}
        self._next = 0
        self._on_active = on_active
        self.active = False  # read by every engine hook: is anybody listening?

    def subscribe(self, callback: Subscriber) -> int:
        """Deliver every later event to ``callback``; returns the token to unsubscribe with."""
        self._next += 1
        self._subscribers[self._next] = callback
        if not self.active:
            self.active = True
            if self._on_active is not None:
                self._on_active(True)
        return self._next

    def unsubscribe(self, token: int) -> None:
        """Stop delivering to the subscriber of ``token`` (an unknown token is ignored)."""
        if self._subscribers.pop(token, None) is not None and not self._subscribers:
            self.active = False
            if self._on_active is not None:
                self._on_active(False)

    def publish(self, event: EngineEvent) -> None:
        """Call every subscriber with ``event``, in subscription order."""
        for callback in list(self._subscribers.values()):
            callback(event)
