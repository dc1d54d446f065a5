"""Funding: premium index, rate, payment (perp-mechanics.md §3).

Sign convention (§0): ``F > 0`` ⇒ longs pay shorts; an account's payment is ``s·Q·P_ref·F``,
positive when the account pays. ``P_ref`` is the venue's documented price: mark (Binance,
BitMEX), oracle (Hyperliquid, dYdX).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from harness.oracle._exact import exact, require_finite

__all__ = [
    "average_premium",
    "funding_payment",
    "funding_rate",
    "impact_notional",
    "premium_index",
]

_ZERO = Decimal(0)


@exact
def premium_index(impact_bid: Decimal, impact_ask: Decimal, index: Decimal) -> Decimal:
    """``[max(0, impactBid − I) − max(0, I − impactAsk)] / I`` (§3(a)).

    Args:
        impact_bid: average fill price of a market sell of the impact notional.
        impact_ask: average fill price of a market buy of the impact notional.
        index: index price ``I``, ``> 0``.

    Returns:
        The premium as a fraction, exact.
    """
    for name, value in (("impact_bid", impact_bid), ("impact_ask", impact_ask), ("index", index)):
        require_finite(name, value)
    if index <= 0:
        msg = f"index={index} must be > 0"
        raise ValueError(msg)
    return (max(_ZERO, impact_bid - index) - max(_ZERO, index - impact_ask)) / index


@exact
def impact_notional(imr_at_max_leverage: Decimal, margin: Decimal = Decimal(200)) -> Decimal:
    """Binance impact margin notional ``IMN = 200 USDT / IMR`` at max leverage (§3(a)).

    Args:
        imr_at_max_leverage: initial margin rate at the symbol's max leverage (``1/max_lev``).
        margin: the quote amount of margin, 200 USDT on Binance.

    Returns:
        The impact notional, exact.
    """
    require_finite("imr_at_max_leverage", imr_at_max_leverage)
    require_finite("margin", margin)
    if imr_at_max_leverage <= 0:
        msg = f"imr_at_max_leverage={imr_at_max_leverage} must be > 0"
        raise ValueError(msg)
    return margin / imr_at_max_leverage


@exact
def average_premium(
    samples: Sequence[Decimal], weighting: Literal["time", "linear"] = "time"
) -> Decimal:
    """Average premium ``P̄`` over an interval's samples (§3(a); weighting unconfirmed, §15.3).

    Args:
        samples: premium samples in time order, equally spaced (Binance: one per 5 s).
        weighting: ``"time"`` — plain mean (time-weighted for equal spacing); ``"linear"`` —
            ``Σ i·P_i / Σ i`` with ``i = 1..n``, later samples weighing more.

    Returns:
        ``P̄``, exact.
    """
    if not samples:
        msg = "average_premium needs at least one sample"
        raise ValueError(msg)
    mode: object = weighting
    if mode not in ("time", "linear"):
        msg = f"weighting={weighting!r} must be 'time' or 'linear'"
        raise ValueError(msg)
    if weighting == "linear":
        n = len(samples)
        return sum((i * p for i, p in enumerate(samples, start=1)), _ZERO) / (n * (n + 1) // 2)
    return sum(samples, _ZERO) / len(samples)


@exact
def funding_rate(
    avg_premium: Decimal,
    interest_rate: Decimal,
    clamp: Decimal = Decimal("0.0005"),
    cap: Decimal | None = None,
    floor: Decimal | None = None,
    interval_hours: int = 8,
) -> Decimal:
    """``F = [P̄ + clamp(r − P̄, −c, +c)] / (8/N)``, then capped/floored (§3(a)).

    ``r`` and ``P̄`` are 8-hour quantities; ``N`` is the settlement interval in hours, so an
    hourly contract (Hyperliquid) pays 1/8 of the 8-hour rate each hour.

    Args:
        avg_premium: ``P̄``, the interval's average premium.
        interest_rate: ``r`` per 8 hours (Binance 0.01 %).
        clamp: ``c``, the interest clamp (0.05 %).
        cap: per-symbol maximum rate for one settlement, applied last (``None``: none).
        floor: per-symbol minimum rate for one settlement, applied last (``None``: none).
        interval_hours: ``N``, hours between settlements, ``> 0``.

    Returns:
        The rate for one settlement, exact.
    """
    for name, value in (("avg_premium", avg_premium), ("interest_rate", interest_rate)):
        require_finite(name, value)
    if require_finite("clamp", clamp) < 0:
        msg = f"clamp={clamp} must be >= 0"
        raise ValueError(msg)
    if isinstance(interval_hours, bool) or interval_hours <= 0:
        msg = f"interval_hours={interval_hours} must be a positive integer"
        raise ValueError(msg)
    if cap is not None and floor is not None and require_finite("cap", cap) < floor:
        msg = f"cap={cap} must be >= floor={floor}"
        raise ValueError(msg)
    eight_hour = avg_premium + min(clamp, max(-clamp, interest_rate - avg_premium))
    rate = eight_hour * interval_hours / 8
    if cap is not None:
        rate = min(rate, cap)
    if floor is not None:
        rate = max(rate, floor)
    return rate


@exact
def funding_payment(signed_qty: Decimal, reference_price: Decimal, rate: Decimal) -> Decimal:
    """``payment = s·Q·P_ref·F``; positive means the account pays (§0, §3(a)).

    Args:
        signed_qty: ``s·Q``, positive for a long, negative for a short.
        reference_price: the venue's funding price (mark on Binance, oracle on Hyperliquid).
        rate: the funding rate for this settlement.

    Returns:
        The payment, exact (venues round it at settlement; see §11).
    """
    for name, value in (("signed_qty", signed_qty), ("reference_price", reference_price)):
        require_finite(name, value)
    return signed_qty * reference_price * require_finite("rate", rate)
