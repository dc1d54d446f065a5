"""Concentration shares, levels and size advice from a book snapshot (DESIGN.md guide point 8).

The oracle's side of ``READ_CONCENTRATION`` (harness/concentration.py defines the terms),
computed from what any venue shows: a :class:`~harness.model.BookSnapshot`, the position as the
venue reports it (its liquidation price included) and the open interest, which the caller sums
from every account's positions (:func:`open_interest`). perp-mechanics.md §14 "forced flow vs
depth": a forced close walks the closing side of the book, so the depth inside the position's
liquidation band is what its own liquidation would consume.

The size advice is found by search, not by formula: the largest multiple of the step whose
book walk (:func:`~harness.oracle.slippage.walk_book`) fills completely with slippage against
the best closing price within the budget. Slippage only grows with size (each further unit
fills at the same or a worse price), so a binary search over step counts finds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from harness.concentration import ConcentrationLevel, ConcentrationThresholds
from harness.model import BookSnapshot, Position, Side
from harness.oracle._exact import exact, require_finite
from harness.oracle.slippage import slippage_bps, walk_book

__all__ = [
    "AdviceExpectation",
    "ConcentrationExpectation",
    "advised_size",
    "band_depth",
    "close_slippage",
    "expected_concentration",
    "level_for",
    "open_interest",
]

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdviceExpectation:
    """The oracle's size advice: ``max_qty`` fits the budget, ``max_qty + step`` does not
    (``next_slippage_bps`` is None when the book cannot fill that much at all)."""

    max_qty: Decimal
    reference_price: Decimal | None
    slippage_bps: Decimal
    next_slippage_bps: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConcentrationExpectation:
    """The oracle's shares and levels for one position."""

    open_interest: Decimal
    oi_share: Decimal
    band_depth: Decimal
    depth_share: Decimal | None
    oi_level: ConcentrationLevel
    depth_level: ConcentrationLevel
    level: ConcentrationLevel


def open_interest(positions: Iterable[Position], symbol: str) -> Decimal:
    """The symbol's open interest: the sum of every long quantity among ``positions``."""
    return sum((p.quantity for p in positions if p.symbol == symbol and p.quantity > 0), ZERO)


def level_for(
    share: Decimal | None, thresholds: Sequence[tuple[ConcentrationLevel, Decimal]]
) -> ConcentrationLevel:
    """The highest level whose threshold ``share`` reaches (thresholds are inclusive);
    ``None`` (no depth at all in the band) is critical."""
    if share is None:
        return ConcentrationLevel.CRITICAL
    best = ConcentrationLevel.NONE
    for level, threshold in thresholds:
        if share >= threshold and level.rank > best.rank:
            best = level
    return best


def _closing_levels(book: BookSnapshot, long: bool) -> tuple[tuple[Decimal, Decimal], ...]:
    """A long closes by selling into the bids; a short by buying from the asks."""
    return book.bids if long else book.asks


@exact
def band_depth(book: BookSnapshot, *, long: bool, liquidation_price: Decimal | None) -> Decimal:
    """Closing-side quantity at prices no worse than ``liquidation_price`` (all of that side
    when there is no liquidation price)."""
    total = ZERO
    for price, qty in _closing_levels(book, long):
        if liquidation_price is not None and (
            price < liquidation_price if long else price > liquidation_price
        ):
            continue
        total += qty
    return total


@exact
def expected_concentration(
    position: Position,
    book: BookSnapshot,
    open_interest: Decimal,
    thresholds: ConcentrationThresholds,
) -> ConcentrationExpectation:
    """Shares and levels of ``position`` (as the venue reports it) against ``book``.

    Args:
        position: the position, with the venue's liquidation price.
        book: the symbol's book at the same moment.
        open_interest: the symbol's open interest (:func:`open_interest` over every account).
        thresholds: the venue's documented thresholds.

    Raises:
        ValueError: the position is flat, or the open interest is smaller than the position.
    """
    size = abs(position.quantity)
    if size == 0:
        msg = f"{position.symbol}: a flat position has no concentration"
        raise ValueError(msg)
    if require_finite("open_interest", open_interest) < size:
        msg = f"open_interest={open_interest} cannot be below the position's size {size}"
        raise ValueError(msg)
    depth = band_depth(
        book, long=position.quantity > 0, liquidation_price=position.liquidation_price
    )
    oi_share = size / open_interest
    depth_share = size / depth if depth > 0 else None
    oi_level = level_for(oi_share, thresholds.oi())
    depth_level = level_for(depth_share, thresholds.depth())
    return ConcentrationExpectation(
        open_interest=open_interest,
        oi_share=oi_share,
        band_depth=depth,
        depth_share=depth_share,
        oi_level=oi_level,
        depth_level=depth_level,
        level=oi_level if oi_level.rank >= depth_level.rank else depth_level,
    )


@exact
def close_slippage(book: BookSnapshot, side: Side, qty: Decimal) -> Decimal | None:
    """Slippage in bps of force-closing a ``side`` position of ``qty`` by walking ``book``
    against the best closing price; ``None`` when the book cannot fill it."""
    levels = _closing_levels(book, side is Side.BUY)
    if not levels:
        return None
    close = side.opposite
    walk = walk_book(levels, qty, side=close)
    if not walk.complete or walk.avg_price is None:
        return None
    return slippage_bps(walk.avg_price, levels[0][0], close)


@exact
def advised_size(
    book: BookSnapshot, side: Side, budget_bps: Decimal, step: Decimal
) -> AdviceExpectation:
    """The largest ``side`` position (a multiple of ``step``) whose forced close stays within
    ``budget_bps`` of slippage against the best closing price (binary search on book walks).

    Args:
        book: the symbol's book (all of its depth that matters).
        side: the position's side (BUY: a long, closed by selling into the bids).
        budget_bps: the slippage budget, ``>= 0``.
        step: the symbol's quantity step, ``> 0``.
    """
    if require_finite("budget_bps", budget_bps) < 0:
        msg = f"budget_bps={budget_bps} must be >= 0"
        raise ValueError(msg)
    if require_finite("step", step) <= 0:
        msg = f"step={step} must be > 0"
        raise ValueError(msg)
    levels = _closing_levels(book, side is Side.BUY)
    reference = levels[0][0] if levels else None
    depth = sum((q for _, q in levels), ZERO)

    def fits(n: int) -> bool:
        if n == 0:
            return True
        slip = close_slippage(book, side, n * step)
        return slip is not None and slip <= budget_bps

    low, high = 0, int(depth / step)  # low fits; nothing beyond the whole side can
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    max_qty = low * step
    slip = close_slippage(book, side, max_qty) if low else ZERO
    return AdviceExpectation(
        max_qty=max_qty,
        reference_price=reference,
        slippage_bps=slip if slip is not None else ZERO,
        next_slippage_bps=close_slippage(book, side, max_qty + step),
    )
