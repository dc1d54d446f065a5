"""Accounts, positions and margin as the simulator computes them (perp-mechanics.md §4, §6).

The simulator's own implementation, written independently of ``harness.oracle``. One-way mode:
one signed position per symbol. Cross positions share the cross wallet; an isolated position
holds its margin in its own wallet (``isolated_wallet``), moved out of the cross wallet when the
position grows and back when it shrinks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from harness.model import (
    Bracket,
    IncomeRecord,
    MarginMode,
)

__all__ = [
    "AccountState",
    "FillRecord",
    "OrderRecord",
    "PositionState",
    "bracket_at",
    "liquidation_price",
    "maint_margin",
    "max_notional_for_leverage",
]

ZERO = Decimal(0)


def bracket_at(brackets: tuple[Bracket, ...], notional: Decimal) -> Bracket:
    """The tier whose ``[floor, cap)`` holds ``notional``; the last tier beyond every cap."""
    for b in brackets:
        if notional < b.notional_cap:
            return b
    return brackets[-1]


def maint_margin(brackets: tuple[Bracket, ...], notional: Decimal) -> Decimal:
    b = bracket_at(brackets, notional)
    return notional * b.maint_margin_ratio - b.cum


def max_notional_for_leverage(brackets: tuple[Bracket, ...], leverage: int) -> Decimal:
    """The largest position notional allowed at ``leverage`` (the highest cap that allows it)."""
    allowed = [b.notional_cap for b in brackets if b.initial_leverage >= leverage]
    return max(allowed) if allowed else ZERO


def liquidation_price(
    *,
    sign: int,
    qty: Decimal,
    entry: Decimal,
    brackets: tuple[Bracket, ...],
    wallet: Decimal,
    other_upnl: Decimal = ZERO,
    other_mm: Decimal = ZERO,
    entry_tier: bool = False,
) -> Decimal | None:
    """Price where ``equity == maintenance`` (Binance one-way formula, §6(a)).

    ``LP = (WB - TMM1 + UPNL1 + cum - s*Q*EP) / (Q*mmr - s*Q)``, with the tier taken at the
    notional ``Q * LP`` (each tier is tried; the consistent one wins). ``entry_tier`` is the
    ``entry-tier-for-liquidation`` defect: the tier at the entry notional is used instead.
    Returns None when there is no positive liquidation price.
    """
    numerator_base = wallet - other_mm + other_upnl - sign * qty * entry
    if entry_tier:
        b = bracket_at(brackets, qty * entry)
        lp = (numerator_base + b.cum) / (qty * b.maint_margin_ratio - sign * qty)
        return lp if lp > 0 else None
    for b in brackets:
        lp = (numerator_base + b.cum) / (qty * b.maint_margin_ratio - sign * qty)
        if lp <= 0:
            continue
        if b.notional_floor <= qty * lp < b.notional_cap:
            return lp
    return None


@dataclass(slots=True)
class PositionState:
    symbol: str
    margin_mode: MarginMode
    leverage: int
    qty: Decimal = ZERO  # signed
    entry: Decimal = ZERO
    isolated_wallet: Decimal = ZERO
    update_ms: int = 0

    @property
    def sign(self) -> int:
        return 1 if self.qty > 0 else -1 if self.qty < 0 else 0

    def upnl(self, price: Decimal) -> Decimal:
        return self.qty * (price - self.entry)


@dataclass(slots=True)
class OrderRecord:
    order_id: int
    client_order_id: str
    account_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str | None
    price: Decimal | None
    orig_qty: Decimal
    reduce_only: bool
    time_ms: int
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time_ms: int = 0
    liquidation: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FillRecord:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    maker: bool
    realized_pnl: Decimal
    time_ms: int
    liquidation: bool = False


@dataclass(slots=True)
class AccountState:
    account_id: str
    label: str
    cross_wallet: Decimal
    exempt: bool = False  # market maker and insurance fund: never margin-checked or liquidated
    positions: dict[str, PositionState] = field(default_factory=dict)
    margin_modes: dict[str, MarginMode] = field(default_factory=dict)
    leverages: dict[str, int] = field(default_factory=dict)
    orders: dict[int, OrderRecord] = field(default_factory=dict)
    client_ids: dict[str, int] = field(default_factory=dict)
    fills: list[FillRecord] = field(default_factory=list)
    income: list[IncomeRecord] = field(default_factory=list)
    update_ms: int = 0

    def position(self, symbol: str, default_leverage: int) -> PositionState:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = PositionState(
                symbol=symbol,
                margin_mode=self.margin_modes.get(symbol, MarginMode.CROSS),
                leverage=self.leverages.get(symbol, default_leverage),
            )
            self.positions[symbol] = pos
        return pos

    def open_positions(self) -> list[PositionState]:
        return [p for p in self.positions.values() if p.qty != 0]

    def wallet_total(self) -> Decimal:
        return self.cross_wallet + sum((p.isolated_wallet for p in self.positions.values()), ZERO)
