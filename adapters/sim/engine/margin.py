"""Margin arithmetic over leverage brackets: tiers, maintenance, leverage caps, liquidation price.

Pure functions of a symbol's brackets (perp-mechanics.md §4, §6), used by the accounts, the
ledger, the liquidation engine and the monitor; the state they are applied to lives in
engine/accounts.py and engine/positions.py.
"""

from __future__ import annotations

from decimal import Decimal

from harness.model import Bracket

__all__ = ["bracket_at", "liquidation_price", "maint_margin", "max_notional_for_leverage"]

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
