"""What a cascade lab reads of a simulated venue: every account's exposure (venue-neutral).

A real venue shows a trader only their own account; a simulator's control side can show the whole
population (``READ_POPULATION``), which is what the cascade oracle (:mod:`harness.oracle.cascade`)
needs to predict who a shock liquidates: each account's wallets and positions exactly as the
venue reports them (the same :class:`~harness.model.Position` figures as ``Account.positions``),
and afterwards whom each liquidation step hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from harness.model import LiquidationEvent, MarginMode, Position

__all__ = ["AccountExposure", "AccountLiquidation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountExposure:
    """One account's collateral and open positions.

    ``wallet_balance`` is the whole wallet (cross wallet plus isolated margins);
    ``cross_wallet_balance`` is the pool the account's cross positions share. ``exempt``
    accounts (the venue's market maker, its insurance fund) are never margin-checked or
    liquidated; they still hold open interest.
    """

    account_id: str
    label: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal
    positions: tuple[Position, ...]
    exempt: bool = False

    def cross_positions(self) -> tuple[Position, ...]:
        return tuple(p for p in self.positions if p.margin_mode is MarginMode.CROSS)

    def isolated_positions(self) -> tuple[Position, ...]:
        return tuple(p for p in self.positions if p.margin_mode is MarginMode.ISOLATED)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountLiquidation:
    """A liquidation step with the account it hit (the control side names it; the public
    ``forceOrder`` feed does not)."""

    account_id: str
    event: LiquidationEvent
