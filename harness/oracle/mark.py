"""Index and mark price (perp-mechanics.md §1 and §2, variant V1 "median of three").

``M = median(P1, P2, P3)`` with ``P1 = I·(1 + F_last·τ/T)``, ``P2 = I + MA(basis)`` and
``P3 = L`` (last traded price). Because ``median(a, b, c) = clamp(c, min(a, b), max(a, b))`` the
mark always lies in the band ``[min(P1, P2), max(P1, P2)]`` whatever the last price does (§2(d)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from harness.errors import NoSolution
from harness.oracle._exact import exact, require_finite

__all__ = [
    "MarkBreakdown",
    "funding_basis_price",
    "index_price",
    "mark_band",
    "mark_price",
    "median3",
    "moving_average_basis",
]


def _median(values: Sequence[Decimal]) -> Decimal:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


@exact
def index_price(
    prices: Sequence[Decimal | None],
    weights: Sequence[Decimal] | None = None,
    outlier_threshold: Decimal = Decimal("0.05"),
) -> Decimal:
    """Index from constituent prices with the 5 % outlier rule (§1(a)).

    Sources given as ``None`` are stale and dropped with their weights. Among the fresh ones, a
    source deviates when ``|p − median|/median > outlier_threshold`` (median of all fresh sources,
    unweighted). No deviating source: weighted mean. Exactly one: its weight becomes 0 and the
    others' weighted mean is returned (if the others carry no weight at all, their plain median).
    More than one: the plain median of all fresh sources.

    Args:
        prices: one price per source, ``None`` for a stale source.
        weights: one non-negative weight per source (``None``: equal weights).
        outlier_threshold: relative deviation from the median beyond which a source is an outlier.

    Returns:
        The index price, exact.

    Raises:
        ValueError: lengths differ, a price is not positive or a weight is negative.
        NoSolution: every source is stale, or the fresh sources carry no weight.
    """
    if weights is not None and len(weights) != len(prices):
        msg = f"{len(weights)} weights for {len(prices)} prices; give one weight per source"
        raise ValueError(msg)
    ws = list(weights) if weights is not None else [Decimal(1)] * len(prices)
    fresh: list[tuple[Decimal, Decimal]] = []
    for i, (price, weight) in enumerate(zip(prices, ws, strict=True)):
        require_finite(f"weights[{i}]", weight)
        if weight < 0:
            msg = f"weights[{i}]={weight} must be >= 0"
            raise ValueError(msg)
        if price is None:
            continue
        require_finite(f"prices[{i}]", price)
        if price <= 0:
            msg = f"prices[{i}]={price} must be > 0"
            raise ValueError(msg)
        fresh.append((price, weight))
    if not fresh:
        msg = "every index source is stale; no index can be computed"
        raise NoSolution(msg)
    median = _median([p for p, _ in fresh])
    outliers = [abs(p - median) / median > outlier_threshold for p, _ in fresh]
    if sum(outliers) > 1:
        return median
    kept = [(p, w) for (p, w), out in zip(fresh, outliers, strict=True) if not out]
    total = sum((w for _, w in kept), Decimal(0))
    if total == 0:
        if sum(outliers) == 0:
            msg = "the fresh index sources all have weight 0"
            raise NoSolution(msg)
        return _median([p for p, _ in kept])
    return sum((p * w for p, w in kept), Decimal(0)) / total


@exact
def funding_basis_price(
    index: Decimal, last_funding_rate: Decimal, time_to_funding_ms: int, interval_ms: int
) -> Decimal:
    """``P1 = I·(1 + F_last·τ/T)``, the decaying funding basis (§2(a) V1, V2).

    Args:
        index: index price ``I``.
        last_funding_rate: the last funding rate ``F_last`` for one interval.
        time_to_funding_ms: ``τ``, milliseconds until the next funding, in ``[0, T]``.
        interval_ms: ``T``, the funding interval in milliseconds, ``> 0``.

    Returns:
        ``P1``, exact.
    """
    require_finite("index", index)
    require_finite("last_funding_rate", last_funding_rate)
    if interval_ms <= 0:
        msg = f"interval_ms={interval_ms} must be > 0"
        raise ValueError(msg)
    if not 0 <= time_to_funding_ms <= interval_ms:
        msg = f"time_to_funding_ms={time_to_funding_ms} must be in [0, interval_ms={interval_ms}]"
        raise ValueError(msg)
    return index * (1 + last_funding_rate * Decimal(time_to_funding_ms) / Decimal(interval_ms))


@exact
def moving_average_basis(samples: Sequence[tuple[Decimal, Decimal, Decimal]]) -> Decimal:
    """Mean of ``(bid1 + ask1)/2 − index`` over the window's samples (§2(a) V1 ``P2``, V3).

    Args:
        samples: ``(bid1, ask1, index)`` per sample, equally spaced in time.

    Returns:
        The moving-average basis, exact.
    """
    if not samples:
        msg = "moving_average_basis needs at least one (bid1, ask1, index) sample"
        raise ValueError(msg)
    total = sum(((bid + ask) / 2 - index for bid, ask, index in samples), Decimal(0))
    return total / len(samples)


def median3(a: Decimal, b: Decimal, c: Decimal) -> Decimal:
    """Median of three values, ``= clamp(c, min(a, b), max(a, b))`` (§2(d))."""
    return max(min(a, b), min(max(a, b), c))


def mark_band(p1: Decimal, p2: Decimal) -> tuple[Decimal, Decimal]:
    """``(min(P1, P2), max(P1, P2))``: the V1 mark never leaves this band (§2(d))."""
    return (min(p1, p2), max(p1, p2))


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkBreakdown:
    """The three V1 inputs and the resulting mark (§2(a))."""

    p1: Decimal
    p2: Decimal
    last: Decimal | None
    mark: Decimal


@exact
def mark_price(
    index: Decimal,
    last_funding_rate: Decimal,
    time_to_funding_ms: int,
    interval_ms: int,
    ma_basis: Decimal,
    last_price: Decimal | None,
) -> MarkBreakdown:
    """V1 mark ``median(P1, P2, L)`` (§2(a), Binance/Bybit).

    When no trade has printed yet (``last_price is None``) the mark is ``P2``: the median of
    three is undefined, and ``P2`` is the component built from the venue's own book, which is
    also what the clamp form ``clamp(L, min(P1, P2), max(P1, P2))`` tends to when ``L`` sits at
    the book's mid. This choice is ours (no venue documents the no-trade case); it keeps the mark
    inside the §2(d) band either way.

    Args:
        index: index price ``I``.
        last_funding_rate: ``F_last``.
        time_to_funding_ms: ``τ`` in milliseconds.
        interval_ms: ``T`` in milliseconds.
        ma_basis: the moving-average basis (see :func:`moving_average_basis`).
        last_price: last traded price ``L``, or ``None`` before the first trade.

    Returns:
        ``P1``, ``P2``, ``L`` and the mark.
    """
    p1 = funding_basis_price(index, last_funding_rate, time_to_funding_ms, interval_ms)
    p2 = index + require_finite("ma_basis", ma_basis)
    mark = p2 if last_price is None else median3(p1, p2, require_finite("last_price", last_price))
    return MarkBreakdown(p1=p1, p2=p2, last=last_price, mark=mark)
