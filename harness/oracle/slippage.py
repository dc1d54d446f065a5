"""Book-walk slippage and a conservative fill price (perp-mechanics.md §14 "forced flow vs depth").

A market order of size ``q`` fills level by level, best first, until ``q`` is filled; its
average price is ``Σ p_i·q_i / Σ q_i``. The conservative fill price used to stress liquidation
math (the guide's "conservative slippage assumptions", DESIGN.md) is the worse of that average and
a floor of ``floor_bps`` away from a reference price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from harness.errors import NoSolution
from harness.model import Side
from harness.oracle._exact import exact, require_finite

__all__ = ["BookWalk", "conservative_fill_price", "slippage_bps", "walk_book"]

_BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class BookWalk:
    """Result of walking one side of a book (§14 "forced flow vs depth").

    ``avg_price``/``worst_price`` are ``None`` when nothing filled; ``complete`` tells whether
    the whole requested quantity filled.
    """

    filled_qty: Decimal
    avg_price: Decimal | None
    worst_price: Decimal | None
    notional: Decimal
    levels_used: int
    complete: bool


def _acceptable(price: Decimal, limit_price: Decimal | None, side: Side | None) -> bool:
    if limit_price is None:
        return True
    return price <= limit_price if side is Side.BUY else price >= limit_price


@exact
def walk_book(
    levels: Sequence[tuple[Decimal, Decimal]],
    quantity: Decimal,
    limit_price: Decimal | None = None,
    *,
    side: Side | None = None,
) -> BookWalk:
    """Fill ``quantity`` against ``levels`` best-first, as a market or limit IOC order (§14).

    Args:
        levels: ``(price, qty)`` best first, as :class:`~harness.model.BookSnapshot` holds
            them: asks ascending for a buy, bids descending for a sell.
        quantity: quantity to fill, ``> 0``.
        limit_price: stop before the first level worse than this price (``None``: no limit).
        side: the taker's side; required with ``limit_price`` (a buy accepts prices
            ``<= limit``, a sell ``>= limit``) and, when given, the order of ``levels`` is
            checked against it.

    Returns:
        Filled quantity, average and worst price, notional, levels touched, completeness.
    """
    if require_finite("quantity", quantity) <= 0:
        msg = f"quantity={quantity} must be > 0"
        raise ValueError(msg)
    if limit_price is not None and side is None:
        msg = "walk_book needs side= with limit_price (which prices are worse depends on it)"
        raise ValueError(msg)
    previous: Decimal | None = None
    for i, (price, qty) in enumerate(levels):
        if (
            require_finite(f"levels[{i}] price", price) <= 0
            or require_finite(f"levels[{i}] qty", qty) <= 0
        ):
            msg = f"levels[{i}]=({price}, {qty}): price and qty must be > 0"
            raise ValueError(msg)
        if previous is not None and side is not None and (price - previous) * side.sign < 0:
            msg = f"levels[{i}] price {price} is better than the level before it; give best first"
            raise ValueError(msg)
        previous = price
    remaining, notional, used = quantity, Decimal(0), 0
    worst: Decimal | None = None
    for price, qty in levels:
        if remaining == 0 or not _acceptable(price, limit_price, side):
            break
        take = min(qty, remaining)
        notional += take * price
        remaining -= take
        worst = price
        used += 1
    filled = quantity - remaining
    return BookWalk(
        filled_qty=filled,
        avg_price=notional / filled if filled else None,
        worst_price=worst,
        notional=notional,
        levels_used=used,
        complete=remaining == 0,
    )


@exact
def slippage_bps(avg_price: Decimal, reference_price: Decimal, side: Side) -> Decimal:
    """Slippage in basis points, positive when worse for the taker (§14).

    Args:
        avg_price: the average fill price.
        reference_price: the price compared with (mid, mark or best), ``> 0``.
        side: the taker's side: a buy is worse above the reference, a sell below.

    Returns:
        ``s·(avg − ref)/ref × 10 000``, exact.
    """
    require_finite("avg_price", avg_price)
    if require_finite("reference_price", reference_price) <= 0:
        msg = f"reference_price={reference_price} must be > 0"
        raise ValueError(msg)
    return side.sign * (avg_price - reference_price) / reference_price * _BPS


@exact
def conservative_fill_price(
    levels: Sequence[tuple[Decimal, Decimal]],
    quantity: Decimal,
    side: Side,
    reference_price: Decimal,
    floor_bps: Decimal,
) -> Decimal:
    """The worse of the book-walk average and ``ref·(1 ± floor_bps/10 000)`` (§14).

    A buy takes the higher of the two, a sell the lower. A book that cannot fill the whole
    quantity gives no conservative price at all: pretending the rest fills at the last level
    would understate the loss, so this raises instead.

    Args:
        levels: the side of the book the order takes, best first.
        quantity: quantity to fill, ``> 0``.
        side: the taker's side.
        reference_price: the reference (mark or mid), ``> 0``.
        floor_bps: minimum slippage assumed, in basis points, ``>= 0``.

    Returns:
        The conservative fill price, exact.

    Raises:
        NoSolution: the book holds less than ``quantity``.
    """
    if require_finite("floor_bps", floor_bps) < 0:
        msg = f"floor_bps={floor_bps} must be >= 0"
        raise ValueError(msg)
    if require_finite("reference_price", reference_price) <= 0:
        msg = f"reference_price={reference_price} must be > 0"
        raise ValueError(msg)
    walk = walk_book(levels, quantity, side=side)
    if not walk.complete or walk.avg_price is None:
        msg = (
            f"the book holds only {walk.filled_qty} of the {quantity} to {side.value.lower()}; "
            "no conservative fill price exists — reduce the quantity or supply a deeper book"
        )
        raise NoSolution(msg)
    floor_price = reference_price * (1 + side.sign * floor_bps / _BPS)
    return (
        max(walk.avg_price, floor_price) if side is Side.BUY else min(walk.avg_price, floor_price)
    )
