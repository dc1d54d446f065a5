"""How much of a position a liquidation step closes, and the band of steps ahead.

The simulator's own arithmetic (perp-mechanics.md §7, §13.3), independent of the oracle.

A step leaves a remainder ``R``; with the remainder's notional ``R x P`` in tier ``j`` the
margin after the step is restored when ``alpha_j x R + beta_j > 0``, linear in ``R`` within a tier:

* isolated: the remainder keeps its share of the isolated margin, so its equity is
  ``R/Q x E``; maintenance is ``R x P x mmr_j - cum_j``:
  ``alpha_j = E/Q - P x mmr_j``, ``beta_j = cum_j``;
* cross: closing at the mark leaves equity unchanged except for the liquidation fee
  ``f x (Q - R) x P``; the other positions keep their maintenance ``MM_o``:
  ``alpha_j = P x (f - mmr_j)``, ``beta_j = E - MM_o - f x Q x P + cum_j``.

A step goes *down* the tiers (Bybit/BitMEX "a size to bring the position value below a lower
tier"): the remainder must land in a lower tier than the position's, the highest lower tier that
restores margin, and just below that tier's cap. A position in the lowest tier is closed whole.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from harness.model import Bracket

__all__ = ["below", "largest_safe_remainder", "tier_index"]

ZERO = Decimal(0)


def below(x: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of ``step`` strictly below ``x``."""
    return ((x / step).to_integral_value(rounding=ROUND_CEILING) - 1) * step


def tier_index(brackets: tuple[Bracket, ...], notional: Decimal) -> int:
    for i, b in enumerate(brackets):
        if notional < b.notional_cap:
            return i
    return len(brackets) - 1


def largest_safe_remainder(
    *,
    qty: Decimal,
    price: Decimal,
    step: Decimal,
    brackets: tuple[Bracket, ...],
    coefficients: Callable[[Bracket], tuple[Decimal, Decimal]],
    lowest_first: bool = False,
) -> Decimal | None:
    """The largest on-step remainder ``0 < R < qty`` in a lower tier that restores margin.

    Tiers below the position's own are tried from the highest down, so the first feasible
    remainder is the largest; None means close everything. ``lowest_first`` is the
    ``step-down-skips-tiers`` defect: the lowest feasible tier is taken instead.
    """
    top = tier_index(brackets, qty * price)
    tiers = range(top) if lowest_first else range(top - 1, -1, -1)
    ceiling = qty - step
    for j in tiers:
        b = brackets[j]
        alpha, beta = coefficients(b)
        low = b.notional_floor / price
        candidate = min(below(b.notional_cap / price, step), ceiling)
        if alpha < 0:
            candidate = min(candidate, below(-beta / alpha, step))
        candidate = (candidate / step).to_integral_value(rounding=ROUND_FLOOR) * step
        if candidate <= 0 or candidate < low:
            continue
        if alpha * candidate + beta > 0:
            return candidate
    return None
