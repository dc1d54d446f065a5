"""Order-entry filters, in the order and with the codes Binance USDⓈ-M uses.

Every failure raises :class:`~harness.errors.Rejected` with the venue's code and message
(binance-usdm-surface.md §4); nothing is ever rounded silently unless a named defect says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

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


class _Filters:
    """What the fast path of :func:`validate_order` needs of an instrument, computed once."""

    __slots__ = (
        "good_limit_qty",
        "good_market_qty",
        "good_price",
        "inst",
        "price_on_tick_is_precise",
        "qty_on_step_is_precise",
    )

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        # Values that passed every filter on them (a value's verdict depends on its value only:
        # range, step, and decimals after normalizing): a repeated value is not re-checked.
        self.good_limit_qty: set[Decimal] = set()
        self.good_market_qty: set[Decimal] = set()
        self.good_price: set[Decimal] = set()
        # A multiple of the step above the minimum has no more decimals than the two of them:
        # when both fit the published precision, a quantity on its step can never exceed it.
        self.qty_on_step_is_precise = max(
            decimals_of(inst.min_qty), decimals_of(inst.step_size)
        ) <= _precision(inst.step_size)
        self.price_on_tick_is_precise = max(
            decimals_of(inst.min_price), decimals_of(inst.tick_size)
        ) <= _precision(inst.tick_size)


# id of an instrument -> its filters (which hold the instrument, so the id stays unique).
_FILTERS: dict[int, _Filters] = {}
_CACHE_SIZE = 1024
_GOOD_SIZE = 4096  # values remembered per filter set (then it starts over)


def _on_grid(test: Callable[[Decimal], bool], value: Decimal) -> bool | None:
    """``test(value)``, or None when the remainder cannot be computed at 28 digits."""
    try:
        return test(value)
    except InvalidOperation:
        return None


def _filters(inst: Instrument) -> _Filters:
    found = _FILTERS.get(id(inst))
    if found is None or found.inst is not inst:
        if len(_FILTERS) > _CACHE_SIZE:  # instruments replaced many times: start over
            _FILTERS.clear()
        found = _FILTERS[id(inst)] = _Filters(inst)
    return found


def _check_qty(inst: Instrument, filters: _Filters, qty: Decimal, max_qty: Decimal) -> None:
    """The quantity filters, in the venue's order (``qty > 0``)."""
    # In range and on its step (a precise step): the precision check cannot fail (_Filters),
    # and the step test is the one the checks below would make anyway.
    on_step = None
    if filters.qty_on_step_is_precise and inst.min_qty <= qty <= max_qty:
        on_step = _on_grid(inst.on_step, qty)
    if not on_step and decimals_of(qty) > _precision(inst.step_size):
        raise Rejected(-1111, "Precision is over the maximum defined for this asset.")
    if qty < inst.min_qty:
        raise Rejected(-4004, "Quantity less than min quantity.")
    if qty > max_qty:
        raise Rejected(-4005, "Quantity greater than max quantity.")
    if not (inst.on_step(qty) if on_step is None else on_step):
        raise Rejected(-4023, "Qty not increased by step size.")


def _check_price(inst: Instrument, filters: _Filters, price: Decimal) -> None:
    """The price filters after the sign check, in the venue's order (``price > 0``)."""
    on_tick = None
    if filters.price_on_tick_is_precise and inst.min_price <= price <= inst.max_price:
        on_tick = _on_grid(inst.on_tick, price)
    if not on_tick and decimals_of(price) > _precision(inst.tick_size):
        raise Rejected(-1111, "Precision is over the maximum defined for this asset.")
    if price < inst.min_price:
        raise Rejected(-4013, "Price less than min price.")
    if price > inst.max_price:
        raise Rejected(-4002, "Price greater than max price.")
    if not (inst.on_tick(price) if on_tick is None else on_tick):
        raise Rejected(-4014, "Price not increased by tick size.")


def validate_order(
    inst: Instrument,
    req: OrderRequest,
    *,
    reference_price: Decimal,
    round_price: bool = False,
    round_qty: bool = False,
    min_notional_inclusive: bool = False,
    remember: bool = True,
) -> tuple[Decimal | None, Decimal]:
    """Check an order against the symbol's filters; returns ``(price, quantity)``.

    ``reference_price`` (the mark) values a MARKET order for the minimum-notional filter.
    The ``round_*`` and ``min_notional_inclusive`` flags are the named defects
    ``price-rounded-to-tick``, ``qty-rounded-to-step`` and ``min-notional-off-by-one``.
    ``remember``: a quantity or price that passed its filters is remembered per instrument and
    not checked again (its verdict depends on its value only); False checks every time.
    """
    filters = _filters(inst)
    qty = req.quantity
    if qty <= 0:
        raise Rejected(-4003, "Quantity less than zero.")
    if round_qty:
        qty = (qty / inst.step_size).to_integral_value(rounding=ROUND_HALF_UP) * inst.step_size
    market = req.type is OrderType.MARKET
    good = filters.good_market_qty if market else filters.good_limit_qty
    if not remember or qty not in good:  # (qty > 0 here: no NaN reaches the set)
        _check_qty(inst, filters, qty, inst.market_max_qty if market else inst.max_qty)
        if len(good) >= _GOOD_SIZE:
            good.clear()
        good.add(qty)
    price = req.price
    if not market:
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
        good = filters.good_price
        if not remember or price not in good:
            _check_price(inst, filters, price)
            if len(good) >= _GOOD_SIZE:
                good.clear()
            good.add(price)
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
    # fullmatch: ``$`` also matches before a trailing newline, so ``match`` took "id\n".
    if cid is not None and not CLIENT_ID_PATTERN.fullmatch(cid):
        raise Rejected(
            -1100,
            "Illegal characters found in parameter 'newClientOrderId'; legal range is "
            f"'{CLIENT_ID_PATTERN.pattern}'.",
        )
    return price, qty
