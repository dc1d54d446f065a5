"""Trading and liquidation fees (perp-mechanics.md §5).

Fees are computed exactly on ``|fill qty| × fill price`` — never on the position's notional —
and rounded only where a venue's rule says, with :func:`round_to_unit` (§11).
"""

from __future__ import annotations

from decimal import Decimal

from harness.oracle._exact import exact, require_finite

__all__ = ["liquidation_fee", "round_to_unit", "trading_fee"]


@exact
def trading_fee(qty: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """``|qty| × price × rate``, exact (§5(a)); a negative ``rate`` is a maker rebate.

    Args:
        qty: filled quantity (sign ignored).
        price: fill price, ``>= 0``.
        rate: fee rate as a fraction.

    Returns:
        The fee, not rounded.
    """
    require_finite("qty", qty)
    require_finite("rate", rate)
    if require_finite("price", price) < 0:
        msg = f"price={price} must be >= 0"
        raise ValueError(msg)
    return abs(qty) * price * rate


@exact
def round_to_unit(amount: Decimal, unit: Decimal, rounding: str) -> Decimal:
    """Round ``amount`` to a multiple of ``unit`` with an explicit ``ROUND_*`` mode (§11).

    Args:
        amount: the exact value.
        unit: the venue's atomic unit (e.g. ``Decimal("0.00000001")``), ``> 0``.
        rounding: one of the :mod:`decimal` rounding constants, e.g. ``ROUND_HALF_UP``.

    Returns:
        ``amount`` rounded to a multiple of ``unit``.
    """
    require_finite("amount", amount)
    if require_finite("unit", unit) <= 0:
        msg = f"unit={unit} must be > 0"
        raise ValueError(msg)
    return (amount / unit).to_integral_value(rounding=rounding) * unit


@exact
def liquidation_fee(
    qty: Decimal, price: Decimal, rate: Decimal, surplus: Decimal | None = None
) -> Decimal:
    """``rate × |qty| × price``, capped at ``max(surplus, 0)`` when given (§5(a), §5(d)).

    The cap is dYdX's: the fee never exceeds what the fill received above the bankruptcy
    quote (``surplus = quote received − bankruptcy quote``), so it cannot make equity negative.
    Binance charges the uncapped fee on the amount liquidated.

    Args:
        qty: liquidated quantity (sign ignored).
        price: fill price of the liquidation, ``>= 0``.
        rate: liquidation fee rate (dYdX ``max_liquidation_fee_ppm``/1e6, Binance per symbol).
        surplus: quote received minus bankruptcy quote, or ``None`` for no cap.

    Returns:
        The fee, exact.
    """
    fee = trading_fee(qty, price, rate)
    if surplus is None:
        return fee
    return min(fee, max(require_finite("surplus", surplus), Decimal(0)))
