"""What a venue answers with when the harness reads it: the book and the mark, the account's
orders, fills, positions and balance, funding info, the liquidation band, liquidation and ADL
events, the insurance fund.

Frozen, venue-neutral records like the rest of :mod:`harness.model`, which re-exports every
one of them: import them from either module. They are built on demand from a venue's state,
never held by the simulator engine (whose snapshots name :mod:`harness.model` classes only).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from harness.model import (
    ZERO,
    ClientOrderId,
    MarginMode,
    OrderId,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

__all__ = [
    "AdlEvent",
    "Balance",
    "BandStep",
    "BookSnapshot",
    "Fill",
    "FundingInfo",
    "InsuranceFund",
    "LiquidationBand",
    "LiquidationEvent",
    "MarkSnapshot",
    "Order",
    "Position",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class BookSnapshot:
    """Bids best (highest) first, asks best (lowest) first; levels are ``(price, qty)``."""

    symbol: str
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    time_ms: int
    update_id: int = 0

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0][0] if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkSnapshot:
    """What the venue publishes for a symbol's mark (Binance ``premiumIndex``)."""

    symbol: str
    mark_price: Decimal
    index_price: Decimal
    last_price: Decimal | None
    last_funding_rate: Decimal
    interest_rate: Decimal
    next_funding_time_ms: int
    time_ms: int
    funding_interval_ms: int = 8 * 3_600_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    order_id: OrderId
    client_order_id: ClientOrderId
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce | None
    price: Decimal | None
    orig_qty: Decimal
    executed_qty: Decimal
    cum_quote: Decimal
    status: OrderStatus
    reduce_only: bool
    time_ms: int
    update_time_ms: int

    @property
    def avg_price(self) -> Decimal | None:
        return self.cum_quote / self.executed_qty if self.executed_qty else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One execution of one of the account's orders (Binance ``userTrades`` row)."""

    trade_id: int
    order_id: OrderId
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    maker: bool
    realized_pnl: Decimal
    time_ms: int
    liquidation: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """A one-way-mode position; ``quantity`` is signed (+ long, - short)."""

    symbol: str
    quantity: Decimal
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    liquidation_price: Decimal | None
    margin_mode: MarginMode
    isolated_wallet: Decimal
    leverage: int
    notional: Decimal
    maint_margin: Decimal
    initial_margin: Decimal

    @property
    def sign(self) -> int:
        return 1 if self.quantity > 0 else -1 if self.quantity < 0 else 0

    @property
    def size(self) -> Decimal:
        return abs(self.quantity)


@dataclass(frozen=True, slots=True, kw_only=True)
class Balance:
    """The account's margin asset; ``margin_balance = wallet_balance + unrealized_pnl``."""

    asset: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal
    unrealized_pnl: Decimal
    margin_balance: Decimal
    available_balance: Decimal
    initial_margin: Decimal
    maint_margin: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingInfo:
    """A symbol's funding parameters as the venue announces them (Binance ``fundingInfo``).

    Rates are per 8 hours before interval scaling (§3(a) 2025 rule: the settled rate is the
    8-hour formula divided by ``8 / interval_hours``). A pending interval change applies from
    ``pending_effective_ms``, announced at ``pending_announced_ms``.
    """

    symbol: str
    interval_hours: int
    interest_rate: Decimal
    clamp: Decimal
    cap: Decimal
    floor: Decimal
    impact_margin_notional: Decimal
    next_funding_time_ms: int
    pending_interval_hours: int | None = None
    pending_effective_ms: int | None = None
    pending_announced_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BandStep:
    """One forced reduction in a liquidation band: at ``mark``, close ``close_qty``."""

    mark: Decimal
    close_qty: Decimal
    remaining_qty: Decimal
    bracket_before: int
    bracket_after: int | None  # None once nothing remains


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationBand:
    """The marks and steps between the first forced reduction and full closure (§13, guide 4).

    Computed for the current position, brackets and collateral, assuming each step fills at its
    trigger mark; ``steps`` are in the order the mark would reach them.
    """

    symbol: str
    quantity: Decimal  # signed, as the position
    steps: tuple[BandStep, ...]

    @property
    def first_mark(self) -> Decimal | None:
        return self.steps[0].mark if self.steps else None

    @property
    def last_mark(self) -> Decimal | None:
        return self.steps[-1].mark if self.steps else None


@dataclass(frozen=True, slots=True, kw_only=True)
class AdlEvent:
    """An auto-deleveraging fill: an opposite position closed at the bankruptcy price (§9)."""

    symbol: str
    side: Side  # the deleveraged account's closing side
    quantity: Decimal
    price: Decimal
    time_ms: int
    own: bool
    rank: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationEvent:
    """A forced order (Binance ``forceOrder``), with what the venue discloses about it.

    ``trigger_mark``, ``bankruptcy_price``, ``fee`` and ``shortfall`` are ``None`` where the venue
    does not publish them.
    """

    symbol: str
    side: Side
    quantity: Decimal
    filled_qty: Decimal
    price: Decimal
    avg_price: Decimal | None
    time_ms: int
    own: bool
    trigger_mark: Decimal | None = None
    bankruptcy_price: Decimal | None = None
    fee: Decimal | None = None
    shortfall: Decimal | None = None
    taken_over_qty: Decimal = ZERO
    partial: bool = False  # the position was reduced, not closed
    adl_qty: Decimal = ZERO  # closed against opposite positions by auto-deleveraging


@dataclass(frozen=True, slots=True, kw_only=True)
class InsuranceFund:
    asset: str
    balance: Decimal
    time_ms: int
