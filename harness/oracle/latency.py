"""What liquidation-engine latency costs the insurance fund (perp-mechanics.md §8, §14).

A liquidation engine acts some time after an account crosses maintenance; meanwhile the market
moves on. On a falling index every second of latency lets the mark fall further past a crossed
long's bankruptcy price, and what the book then pays below it is the insurance fund's loss.
:func:`expected_latency_cost` predicts when each position of a population crosses, when its
step executes and what the fund loses, for a given index path and latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from harness.cascade import AccountExposure
from harness.model import PricePath
from harness.oracle._exact import exact
from harness.oracle.cascade import MarketInput
from harness.oracle.tiers import maintenance_margin

__all__ = ["LatencyExpectation", "LatencyStep", "expected_latency_cost"]

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyStep:
    """One position's expected liquidation under a liquidation-engine latency."""

    account_id: str
    quantity: Decimal  # signed
    bankruptcy_price: Decimal
    crossed_ms: int
    executed_ms: int
    mark: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyExpectation:
    """The expected liquidations of one run and what the insurance fund loses on them."""

    latency_ms: int
    steps: tuple[LatencyStep, ...]
    shortfall: Decimal


@exact
def expected_latency_cost(
    population: Sequence[AccountExposure],
    market: MarketInput,
    path: PricePath,
    *,
    start_ms: int,
    latency_ms: int,
    update_interval_ms: int = 1_000,
    horizon_ms: int = 60_000,
) -> LatencyExpectation:
    """What a liquidation engine acting ``latency_ms`` after each crossing costs the insurance
    fund while the index follows ``path`` from ``start_ms`` (§8, §14 "Mark inertia").

    Model: the population's isolated positions in ``market``'s symbol, each closed whole by its
    first step (the lowest tier, or the full variant); the mark is the path's index at each
    update (the basis and funding terms of §2 V1 are a basis point or two); a position crosses at
    the first update whose mark puts its equity at or below maintenance, and its step executes
    ``latency_ms`` later, on the marks last published then. The steps executing together form one
    batch: if the best bid (ask for shorts) then — the book's half spread away from the mark —
    is no worse than the batch's most conservative bankruptcy price, the book takes it; otherwise
    the fund takes each position over at its bankruptcy price and sells it at that best price,
    and loses ``max(Σ q·(BP − fill), 0)`` (gains within the batch offset losses).

    Args:
        population: the accounts, as the venue reports them.
        market: the symbol's instrument, book (for the half spread) and mark before the run.
        path: the index path, offsets from ``start_ms``.
        start_ms: when the path started.
        latency_ms: the liquidation-engine latency.
        update_interval_ms: the venue's mark update interval.
        horizon_ms: how far past ``start_ms`` to look.

    Returns:
        The expected steps and the fund's shortfall.
    """
    symbol = market.symbol
    brackets = market.instrument.brackets
    book = market.book
    half_spread = ZERO
    if book.mid is not None and book.best_bid is not None:
        half_spread = (book.mid - book.best_bid) / book.mid
    first = (start_ms // update_interval_ms + 1) * update_interval_ms
    updates = list(range(first, start_ms + horizon_ms + 1, update_interval_ms))

    def mark_at(t: int) -> Decimal:
        published = max(u for u in [start_ms, *updates] if u <= t)
        return path.price_at(published - start_ms)

    steps = []
    for acct in population:
        if acct.exempt:
            continue
        for pos in acct.isolated_positions():
            if pos.symbol != symbol or pos.quantity == 0:
                continue
            size = abs(pos.quantity)
            for t in updates:
                mark = path.price_at(t - start_ms)
                equity = pos.isolated_wallet + pos.quantity * (mark - pos.entry_price)
                if equity <= maintenance_margin(brackets, size * mark):
                    executed = t + latency_ms
                    steps.append(
                        LatencyStep(
                            account_id=acct.account_id,
                            quantity=pos.quantity,
                            bankruptcy_price=pos.entry_price - pos.isolated_wallet / pos.quantity,
                            crossed_ms=t,
                            executed_ms=executed,
                            mark=mark_at(executed),
                        )
                    )
                    break
    total = ZERO
    for executed in sorted({s.executed_ms for s in steps}):
        for sign in (1, -1):
            batch = [
                s for s in steps if s.executed_ms == executed and (s.quantity > 0) == (sign > 0)
            ]
            if not batch:
                continue
            fill = batch[0].mark * (1 - sign * half_spread)
            limit = max(sign * s.bankruptcy_price for s in batch)
            if sign * fill >= limit:
                continue  # the book takes the whole batch above every bankruptcy price
            loss = sum((abs(s.quantity) * sign * (s.bankruptcy_price - fill) for s in batch), ZERO)
            total += max(loss, ZERO)
    return LatencyExpectation(
        latency_ms=latency_ms,
        steps=tuple(sorted(steps, key=lambda s: (s.executed_ms, s.account_id))),
        shortfall=total,
    )
