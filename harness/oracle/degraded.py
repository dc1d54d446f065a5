"""Risk math re-run with degraded costs: latency, drift and slippage (testing guide point 7).

"If throttled, assume your strategy changed": when orders reach the book later and fill worse,
the same position is riskier. These functions take the costs the harness *measured* (effective
latency, the market's drift per millisecond while an order was in flight, book-walk slippage)
and recompute the figures a trader sizes by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from harness.model import Side
from harness.oracle._exact import exact
from harness.oracle.liquidation import PositionInput, isolated_liquidation
from harness.oracle.slippage import conservative_fill_price, walk_book

__all__ = [
    "DegradedCosts",
    "degraded_fill_price",
    "expected_liquidation_loss",
    "liquidation_distance",
    "safe_size",
]

_BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class DegradedCosts:
    """Costs measured under given conditions."""

    latency_ms: int  # from sending an order to its execution, as the venue reported it
    drift_per_ms: Decimal  # the mark's signed move per millisecond while an order was in flight
    floor_bps: Decimal  # the conservative floor on top of the book walk


@exact
def degraded_fill_price(
    levels: Sequence[tuple[Decimal, Decimal]],
    quantity: Decimal,
    side: Side,
    reference_price: Decimal,
    costs: DegradedCosts,
) -> Decimal:
    """The conservative fill of ``quantity`` once the book has drifted for ``latency_ms``.

    The book as seen at sending time is shifted by ``drift_per_ms x latency_ms`` (adverse or
    not, as measured) and walked; the result is the worse of that and the reference moved by the
    same drift and ``floor_bps``.
    """
    shift = costs.drift_per_ms * costs.latency_ms
    shifted = [(price + shift, qty) for price, qty in levels]
    return conservative_fill_price(
        shifted, quantity, side, reference_price=reference_price + shift, floor_bps=costs.floor_bps
    )


@exact
def liquidation_distance(position: PositionInput, wallet: Decimal, mark: Decimal) -> Decimal | None:
    """How far the mark may move against an isolated position before liquidation, as a fraction."""
    lp = isolated_liquidation(position, wallet).liquidation_price
    if lp is None:
        return None
    return abs(mark - lp) / mark


@exact
def expected_liquidation_loss(
    position: PositionInput,
    wallet: Decimal,
    *,
    close_slippage: Decimal,
    fee_rate: Decimal,
) -> Decimal | None:
    """Loss of an isolated position liquidated at its liquidation price, closed ``close_slippage``
    (a fraction) worse than that price, with the liquidation fee on the closed notional."""
    lp = isolated_liquidation(position, wallet).liquidation_price
    if lp is None:
        return None
    sign = position.side.sign
    close = lp * (1 - sign * close_slippage)
    return position.quantity * sign * (position.entry_price - close) + fee_rate * (
        position.quantity * close
    )


@exact
def safe_size(
    levels: Sequence[tuple[Decimal, Decimal]],
    side: Side,
    reference_price: Decimal,
    budget_bps: Decimal,
    step: Decimal,
    costs: DegradedCosts,
) -> Decimal:
    """The largest on-step quantity whose degraded fill stays within ``budget_bps`` of reference.

    Zero when even one step breaks the budget. Searches the step grid by bisection over what the
    book can fill at all.
    """
    available = walk_book(levels, Decimal(10) ** 12).filled_qty
    high = (available / step).to_integral_value(rounding=ROUND_FLOOR)
    limit = reference_price * (1 + side.sign * budget_bps / _BPS)

    def fits(n: Decimal) -> bool:
        price = degraded_fill_price(levels, n * step, side, reference_price, costs)
        return price <= limit if side is Side.BUY else price >= limit

    if high < 1 or not fits(Decimal(1)):
        return Decimal(0)
    low = Decimal(1)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return (high if fits(high) else low) * step
