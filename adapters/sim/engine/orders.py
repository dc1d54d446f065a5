"""Order-entry filters, in the order and with the codes Binance USDⓈ-M uses.

Every failure raises :class:`~harness.errors.Rejected` with the venue's code and message
(binance-usdm-surface.md §4); nothing is ever rounded silently unless a named defect says so.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from harness.errors import Rejected
from harness.model import Instrument, OrderRequest, OrderType

__all__ = ["CLIENT_ID_PATTERN", "decimals_of", "validate_order"]

CLIENT_ID_PATTERN = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


def decimals_of(value: Decimal) -> int:
    """Number of decimal places a value needs (``0.10`` -> 1, ``59000`` -> 0)."""
    exponent = value.normalize().as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


def _precision(step: Decimal) -> int:
    """Decimal places the venue accepts for a filter step as published (``0.10`` -> 2)."""
    exponent = step.as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


def validate_order(
    inst: Instrument,
    req: OrderRequest,
    *,
    reference_price: Decimal,
    round_price: bool = False,
    round_qty: bool = False,
    min_notional_inclusive: bool = False,
) -> tuple[Decimal | None, Decimal]:
    """Check an order against the symbol's filters; returns ``(price, quantity)``.

    ``reference_price`` (the mark) values a MARKET order for the minimum-notional filter.
    The ``round_*`` and ``min_notional_inclusive`` flags are the named defects
    ``price-rounded-to-tick``, ``qty-rounded-to-step`` and ``min-notional-off-by-one``.
    """
    qty = req.quantity
    if qty <= 0:
        raise Rejected(-4003, "Quantity less than zero.")
    if round_qty:
        qty = (qty / inst.step_size).to_integral_value(rounding=ROUND_HALF_UP) * inst.step_size
    if decimals_of(qty) > _precision(inst.step_size):
        raise Rejected(-1111, "Precision is over the maximum defined for this asset.")
    if qty < inst.min_qty:
        raise Rejected(-4004, "Quantity less than min quantity.")
    max_qty = inst.market_max_qty if req.type is OrderType.MARKET else inst.max_qty
    if qty > max_qty:
        raise Rejected(-4005, "Quantity greater than max quantity.")
    if not inst.on_step(qty):
        raise Rejected(-4023, "Qty not increased by step size.")

    price = req.price
    if req.type is OrderType.LIMIT:
        assert price is not None  # noqa: S101 - OrderRequest guarantees it for LIMIT
        if price <= 0:
            raise Rejected(-4001, "Price less than 0.")
        if round_price:
            price = inst.min_price + (
                ((price - inst.min_price) / inst.tick_size).to_integral_value(
                    rounding=ROUND_HALF_UP
                )
                * inst.tick_size
            )
        if decimals_of(price) > _precision(inst.tick_size):
            raise Rejected(-1111, "Precision is over the maximum defined for this asset.")
        if price < inst.min_price:
            raise Rejected(-4013, "Price less than min price.")
        if price > inst.max_price:
            raise Rejected(-4002, "Price greater than max price.")
        if not inst.on_tick(price):
            raise Rejected(-4014, "Price not increased by tick size.")

    if not req.reduce_only:
        notional = (price if price is not None else reference_price) * qty
        too_small = (
            notional <= inst.min_notional
            if min_notional_inclusive
            else notional < inst.min_notional
        )
        if too_small:
            minimum = format(inst.min_notional.normalize(), "f")
            raise Rejected(
                -4164,
                f"Order's notional must be no smaller than {minimum} "
                "(unless you choose reduce only).",
            )

    cid = req.client_order_id
    if cid is not None and not CLIENT_ID_PATTERN.match(cid):
        raise Rejected(
            -1100,
            "Illegal characters found in parameter 'newClientOrderId'; legal range is "
            f"'{CLIENT_ID_PATTERN.pattern}'.",
        )
    return price, qty
