"""Venue-neutral domain types: identifiers, money helpers, enums, instruments and their
brackets, order requests, the income and funding records, price paths.

Every money, price, size and rate is a :class:`~decimal.Decimal` built from ``str`` or ``int``.
Types are frozen; change them with :func:`dataclasses.replace`. Wire formats (JSON, HTTP bodies)
are decoded at the edge (adapters, results) and never reach these types as dicts.

What a venue answers with when read (book, mark, orders, fills, positions, balance, funding
info, liquidation band and events, insurance fund) lives in :mod:`harness.observations` and is
importable from here as well. The types left here are the ones the simulator engine holds:
its snapshots name them by this module's path (adapters/sim/engine/snapshot.py).
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import NewType

__all__ = [
    "ZERO",
    "AdlEvent",
    "Balance",
    "BandStep",
    "BookSnapshot",
    "Bracket",
    "CheckId",
    "ClientOrderId",
    "FeeRates",
    "Fill",
    "FundingEvent",
    "FundingInfo",
    "IncomeRecord",
    "IncomeType",
    "Instrument",
    "InsuranceFund",
    "LiquidationBand",
    "LiquidationEvent",
    "LiquidationPolicy",
    "LiquidationVariant",
    "MarginMode",
    "MarkSnapshot",
    "Order",
    "OrderId",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Position",
    "PricePath",
    "RunId",
    "Side",
    "TimeInForce",
    "dec",
    "quantize_down",
    "quantize_up",
    "tile_brackets",
]

ZERO: Decimal = Decimal(0)  # typed: mypy cannot infer it through the cycle with observations

CheckId = NewType("CheckId", str)
ClientOrderId = NewType("ClientOrderId", str)
OrderId = NewType("OrderId", str)
RunId = NewType("RunId", str)


def dec(value: str | int | Decimal) -> Decimal:
    """Build a Decimal from ``str``/``int`` only; floats are refused (they are not exact)."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        msg = f"money must be built from str or int, got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    return value if isinstance(value, Decimal) else Decimal(value)


def quantize_down(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is ``<= value``."""
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def quantize_up(value: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of ``step`` that is ``>= value``."""
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for a buy (adds to a long), -1 for a sell."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class MarginMode(enum.StrEnum):
    CROSS = "CROSS"
    ISOLATED = "ISOLATED"


class OrderType(enum.StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTX = "GTX"  # post-only: rejected if it would take liquidity


class OrderStatus(enum.StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class IncomeType(enum.StrEnum):
    TRANSFER = "TRANSFER"
    REALIZED_PNL = "REALIZED_PNL"
    COMMISSION = "COMMISSION"
    FUNDING_FEE = "FUNDING_FEE"
    INSURANCE_CLEAR = "INSURANCE_CLEAR"  # liquidation clearance fee, as Binance names it


class LiquidationVariant(enum.StrEnum):
    """How a venue reduces a position below maintenance (perp-mechanics.md §7)."""

    TIER_STEP_DOWN = "tier-step-down"  # Binance/Bybit/OKX: just enough to a lower tier / margin
    FRACTION = "fraction"  # Hyperliquid: fixed slices of large positions, cooldown, backstop
    FULL = "full"  # the whole position at once


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationPolicy:
    """A symbol's partial-liquidation rule and its parameters (§7(a)).

    ``fraction`` slices ``slice_fraction`` of positions whose notional exceeds
    ``slice_min_notional``; within ``cooldown_ms`` after a slice, liquidation orders are for the
    whole position; below ``backstop_ratio`` x maintenance the backstop (insurance fund) takes
    the position over. The other variants ignore these fields.
    """

    variant: LiquidationVariant = LiquidationVariant.FULL
    slice_fraction: Decimal = Decimal("0.2")
    slice_min_notional: Decimal = Decimal(100_000)
    cooldown_ms: int = 30_000
    backstop_ratio: Decimal = Decimal(2) / Decimal(3)

    def __post_init__(self) -> None:
        if not Decimal(0) < self.slice_fraction <= 1:
            msg = f"{self.slice_fraction=} must be in (0, 1]"
            raise ValueError(msg)
        if self.cooldown_ms < 0:
            msg = f"{self.cooldown_ms=} must be >= 0"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bracket:
    """One maintenance tier: notional in ``[notional_floor, notional_cap)``.

    ``cum`` is the maintenance amount that makes maintenance margin continuous across tiers
    (perp-mechanics.md §4(a)).
    """

    bracket: int
    initial_leverage: int
    notional_floor: Decimal
    notional_cap: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal

    def __post_init__(self) -> None:
        if self.bracket < 1:
            msg = f"{self.bracket=} must be >= 1"
            raise ValueError(msg)
        if self.initial_leverage < 1:
            msg = f"{self.initial_leverage=} must be >= 1"
            raise ValueError(msg)
        if not self.notional_floor >= 0:
            msg = f"{self.notional_floor=} must be >= 0"
            raise ValueError(msg)
        if not self.notional_cap > self.notional_floor:
            msg = f"{self.notional_cap=} must be > {self.notional_floor=}"
            raise ValueError(msg)
        if not ZERO <= self.maint_margin_ratio < 1:
            msg = f"{self.maint_margin_ratio=} must be in [0, 1)"
            raise ValueError(msg)

    def contains(self, notional: Decimal) -> bool:
        return self.notional_floor <= notional < self.notional_cap


def tile_brackets(brackets: Sequence[Bracket]) -> tuple[Bracket, ...]:
    """Sort brackets by floor and require them to tile ``[0, last cap)`` (perp-mechanics.md §4).

    Raises:
        ValueError: empty, not starting at 0, or with a gap or overlap between brackets.
    """
    if not brackets:
        msg = "brackets must not be empty"
        raise ValueError(msg)
    ordered = sorted(brackets, key=lambda b: b.notional_floor)
    if ordered[0].notional_floor != 0:
        msg = f"the first bracket starts at {ordered[0].notional_floor}, not 0"
        raise ValueError(msg)
    for lower, upper in itertools.pairwise(ordered):
        if lower.notional_cap != upper.notional_floor:
            msg = (
                f"bracket {lower.bracket} ends at {lower.notional_cap} but bracket "
                f"{upper.bracket} starts at {upper.notional_floor}"
            )
            raise ValueError(msg)
    return tuple(ordered)


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    """A linear perpetual contract and its filters."""

    symbol: str
    base_asset: str
    quote_asset: str
    margin_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_price: Decimal
    max_price: Decimal
    min_notional: Decimal
    brackets: tuple[Bracket, ...]
    liquidation_fee_rate: Decimal | None = None
    funding_interval_hours: int = 8
    liquidation: LiquidationPolicy = field(default_factory=LiquidationPolicy)

    def __post_init__(self) -> None:
        for name in ("tick_size", "step_size", "min_qty", "min_price"):
            if not getattr(self, name) > 0:
                msg = f"{self.symbol}: {name}={getattr(self, name)} must be > 0"
                raise ValueError(msg)
        try:
            object.__setattr__(self, "brackets", tile_brackets(self.brackets))
        except ValueError as exc:
            msg = f"{self.symbol}: {exc}"
            raise ValueError(msg) from None

    def on_tick(self, price: Decimal) -> bool:
        return (price - self.min_price) % self.tick_size == 0

    def on_step(self, qty: Decimal) -> bool:
        return (qty - self.min_qty) % self.step_size == 0

    @property
    def max_leverage(self) -> int:
        return self.brackets[0].initial_leverage


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeRates:
    maker: Decimal
    taker: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    """An order as the harness asks for it.

    Only the structure is validated here; values that break a venue's filters (off tick, below
    the minimum...) must reach the venue so that its rejection can be checked.
    """

    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    reduce_only: bool = False
    client_order_id: ClientOrderId | None = None

    def __post_init__(self) -> None:
        if self.type is OrderType.LIMIT:
            if self.price is None:
                msg = "a LIMIT order needs a price"
                raise ValueError(msg)
            if self.time_in_force is None:
                object.__setattr__(self, "time_in_force", TimeInForce.GTC)
        elif self.price is not None or self.time_in_force is not None:
            msg = "a MARKET order takes neither price nor time_in_force"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomeRecord:
    income_type: IncomeType
    amount: Decimal
    asset: str
    symbol: str
    time_ms: int
    tran_id: int
    info: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingEvent:
    symbol: str
    funding_rate: Decimal
    funding_time_ms: int
    mark_price: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class PricePath:
    """Keyframes ``(offset_ms, price)`` for a symbol's index, from the moment it is applied.

    ``linear`` interpolates between keyframes; otherwise the price steps at each keyframe.
    """

    points: tuple[tuple[int, Decimal], ...]
    linear: bool = False
    name: str = field(default="custom")

    def __post_init__(self) -> None:
        if not self.points:
            msg = "a price path needs at least one point"
            raise ValueError(msg)
        offsets = [t for t, _ in self.points]
        if offsets != sorted(offsets) or offsets[0] < 0:
            msg = f"price path offsets must be non-negative and ascending, got {offsets}"
            raise ValueError(msg)
        if any(p <= 0 for _, p in self.points):
            msg = "price path prices must be > 0"
            raise ValueError(msg)

    @classmethod
    def steps(cls, prices: Sequence[Decimal], every_ms: int, *, name: str = "steps") -> PricePath:
        return cls(points=tuple((i * every_ms, p) for i, p in enumerate(prices)), name=name)

    def price_at(self, offset_ms: int) -> Decimal:
        points = self.points
        if offset_ms <= points[0][0]:
            return points[0][1]
        for (t0, p0), (t1, p1) in itertools.pairwise(points):
            if offset_ms < t1:
                if not self.linear:
                    return p0
                return p0 + (p1 - p0) * Decimal(offset_ms - t0) / Decimal(t1 - t0)
        return points[-1][1]

    @property
    def duration_ms(self) -> int:
        return self.points[-1][0]


# Re-exported (listed in ``__all__``) so that ``harness.model`` stays the one place to import any
# domain type from. Imported last: harness.observations imports the names defined above.
from harness.observations import (  # noqa: E402 - after the names harness.observations imports
    AdlEvent,
    Balance,
    BandStep,
    BookSnapshot,
    Fill,
    FundingInfo,
    InsuranceFund,
    LiquidationBand,
    LiquidationEvent,
    MarkSnapshot,
    Order,
    Position,
)
