"""Funding: premium index, rate, payment and its compounding (perp-mechanics.md §3).

Sign convention (§0): ``F > 0`` ⇒ longs pay shorts; an account's payment is ``s·Q·P_ref·F``,
positive when the account pays. ``P_ref`` is the venue's documented price: mark (Binance,
BitMEX), oracle (Hyperliquid, dYdX).

:func:`funding_projection` follows an isolated position's wallet through successive settlements
(the testing guide's point 5: small transfers compound into the maintenance buffer, §3(d),
§10 "bound the per-day funding drain").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Literal

from harness.oracle._exact import exact, require_finite
from harness.oracle.liquidation import PositionInput, isolated_liquidation
from harness.oracle.tiers import maintenance_margin

__all__ = [
    "FundingCycle",
    "FundingProjection",
    "average_premium",
    "book_premium",
    "funding_payment",
    "funding_projection",
    "funding_rate",
    "impact_notional",
    "impact_price",
    "premium_index",
    "settled_payment",
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


@exact
def impact_price(levels: Sequence[tuple[Decimal, Decimal]], notional: Decimal) -> Decimal | None:
    """Average fill price of a market order for ``notional`` of quote (§3(a) impact bid/ask).

    The order takes ``levels`` best first, the last one partly: the quantity filled is
    ``Σ q_i`` over the whole levels plus ``(notional − Σ p_i·q_i) / p_last``, and the average
    price is ``notional / quantity``. Use the bids for the impact bid (a market sell) and the
    asks for the impact ask (a market buy).

    Args:
        levels: ``(price, qty)`` best first, as :class:`~harness.model.BookSnapshot` holds them.
        notional: the impact notional, ``> 0``.

    Returns:
        The average price (to the oracle's 50 digits; exact within one level); ``None`` when
        the levels together are worth less than ``notional``.
    """
    if require_finite("notional", notional) <= 0:
        msg = f"notional={notional} must be > 0"
        raise ValueError(msg)
    left, qty = notional, Decimal(0)
    for i, (price, size) in enumerate(levels):
        if (
            require_finite(f"levels[{i}] price", price) <= 0
            or require_finite(f"levels[{i}] qty", size) <= 0
        ):
            msg = f"levels[{i}]=({price}, {size}): price and qty must be > 0"
            raise ValueError(msg)
        if price * size >= left:
            # Within one level the average is that level's price, exactly.
            return price if qty == 0 else notional / (qty + left / price)
        left -= price * size
        qty += size
    return None


@exact
def book_premium(
    bids: Sequence[tuple[Decimal, Decimal]],
    asks: Sequence[tuple[Decimal, Decimal]],
    index: Decimal,
    notional: Decimal,
) -> Decimal:
    """One premium sample from a book: :func:`premium_index` of the impact prices (§3(a)).

    A side too thin to fill ``notional`` has no impact price; it then adds 0 to the sample (its
    ``max(0, …)`` term is taken as 0). Binance does not document this case; it is the reference
    simulator's rule (adapters/sim/engine/funding.py).

    Args:
        bids: bids best (highest) first.
        asks: asks best (lowest) first.
        index: the index price ``I``, ``> 0``.
        notional: the impact notional, ``> 0``.

    Returns:
        The premium as a fraction, exact.
    """
    bid = impact_price(bids, notional)
    ask = impact_price(asks, notional)
    # Without an impact price, use the index itself: its max(0, …) term is then 0.
    return premium_index(index if bid is None else bid, index if ask is None else ask, index)


@exact
def settled_payment(
    signed_qty: Decimal,
    reference_price: Decimal,
    rate: Decimal,
    unit: Decimal,
    rounding: str = ROUND_CEILING,
) -> Decimal:
    """:func:`funding_payment` rounded to the venue's atomic unit (§3(a), §11).

    Args:
        signed_qty: ``s·Q``.
        reference_price: the venue's funding price.
        rate: the settled rate.
        unit: the atomic unit of balances (``1e-8`` USDT), ``> 0``.
        rounding: a :mod:`decimal` rounding mode applied to the signed payment (positive: the
            account pays). ``ROUND_CEILING``: payers round up, receivers down — the venue never
            pays out more than it collects.

    Returns:
        The payment, a multiple of ``unit``; positive when the account pays.
    """
    if require_finite("unit", unit) <= 0:
        msg = f"unit={unit} must be > 0"
        raise ValueError(msg)
    exact_payment = funding_payment(signed_qty, reference_price, rate)
    return (exact_payment / unit).to_integral_value(rounding=rounding) * unit


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingCycle:
    """An isolated position right after one settlement of a :func:`funding_projection`.

    ``payment`` is positive when the position paid; ``equity`` and ``maint_margin`` are at
    ``mark``; ``margin_ratio`` is ``maint_margin / equity`` (Binance's margin ratio, liquidation at
    100 %), ``None`` when equity is not positive; ``liquidation_distance`` is
    ``s·(mark − liquidation_price)``, how far the mark can still move against the position.
    """

    cycle: int
    mark: Decimal
    rate: Decimal
    payment: Decimal
    wallet: Decimal
    equity: Decimal
    maint_margin: Decimal
    margin_ratio: Decimal | None
    liquidation_price: Decimal | None
    liquidation_distance: Decimal | None

    @property
    def liquidatable(self) -> bool:
        """``equity <= maintenance`` (the non-strict trigger, §6)."""
        return self.equity <= self.maint_margin


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingProjection:
    """The cycles of a projection and the first one after which the position is liquidatable."""

    cycles: tuple[FundingCycle, ...]
    cycles_to_liquidation: int | None


def _per_cycle(name: str, value: Decimal | Sequence[Decimal], cycles: int | None) -> list[Decimal]:
    if isinstance(value, Decimal | int):
        if cycles is None:
            msg = f"{name} is one value: give cycles= (or one {name} per cycle)"
            raise ValueError(msg)
        return [require_finite(name, value)] * cycles
    values = [require_finite(f"{name}[{i}]", v) for i, v in enumerate(value)]
    if cycles is not None and len(values) != cycles:
        msg = f"{len(values)} {name} values for cycles={cycles}; give one per cycle"
        raise ValueError(msg)
    return values


@exact
def funding_projection(
    position: PositionInput,
    wallet: Decimal,
    *,
    rate: Decimal | Sequence[Decimal],
    mark: Decimal | Sequence[Decimal],
    cycles: int | None = None,
    unit: Decimal | None = Decimal("0.00000001"),
    rounding: str = ROUND_CEILING,
) -> FundingProjection:
    """Compound an isolated position's funding payments over successive settlements (§3, §6).

    Cycle ``k`` pays ``s·Q·mark_k·rate_k`` (rounded with :func:`settled_payment` unless ``unit``
    is ``None``) out of the isolated wallet, then values the position at ``mark_k``: equity
    ``wallet_k + s·Q·(mark_k − EP)``, maintenance ``MM(Q·mark_k)`` from the tiers, and the
    liquidation price of the new wallet (:func:`isolated_liquidation`, tier at the LP).

    Args:
        position: the isolated position; its ``mark_price`` is ignored.
        wallet: its isolated margin before the first settlement.
        rate: the per-interval rate (``F > 0``: longs pay), constant or one per cycle.
        mark: the mark at each settlement, constant or one per cycle.
        cycles: how many settlements; required when ``rate`` and ``mark`` are both constants,
            else it must match their lengths.
        unit: the venue's atomic unit of balances; ``None`` keeps payments exact.
        rounding: the venue's rounding of the signed payment (see :func:`settled_payment`).

    Returns:
        The cycles and ``cycles_to_liquidation``: the first cycle after whose payment equity is
        at or below maintenance, ``None`` if none within the horizon. Cycles after it are still
        computed (as if the venue did not liquidate), so a chart shows the whole drift.

    Raises:
        NoSolution: a liquidation price lies beyond the last bracket (see
            :func:`isolated_liquidation`).
    """
    require_finite("wallet", wallet)
    if cycles is not None and (isinstance(cycles, bool) or cycles < 0):
        msg = f"cycles={cycles} must be a non-negative integer"
        raise ValueError(msg)
    rates = _per_cycle("rate", rate, cycles)
    marks = _per_cycle("mark", mark, cycles if cycles is not None else len(rates))
    if len(rates) != len(marks):
        msg = f"{len(rates)} rates but {len(marks)} marks; give one of each per cycle"
        raise ValueError(msg)
    if any(m <= 0 for m in marks):
        msg = "every mark must be > 0"
        raise ValueError(msg)
    s, q = position.side.sign, position.quantity
    out: list[FundingCycle] = []
    first: int | None = None
    for k, (f, m) in enumerate(zip(rates, marks, strict=True), start=1):
        if unit is None:
            payment = funding_payment(s * q, m, f)
        else:
            payment = settled_payment(s * q, m, f, unit, rounding)
        wallet -= payment
        equity = wallet + s * q * (m - position.entry_price)
        maint = maintenance_margin(position.brackets, q * m)
        lp = isolated_liquidation(position, wallet).liquidation_price
        cycle = FundingCycle(
            cycle=k,
            mark=m,
            rate=f,
            payment=payment,
            wallet=wallet,
            equity=equity,
            maint_margin=maint,
            margin_ratio=maint / equity if equity > 0 else None,
            liquidation_price=lp,
            liquidation_distance=None if lp is None else s * (m - lp),
        )
        if first is None and cycle.liquidatable:
            first = k
        out.append(cycle)
    return FundingProjection(cycles=tuple(out), cycles_to_liquidation=first)
