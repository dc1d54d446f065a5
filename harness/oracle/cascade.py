"""The predicted liquidation cascade of a shock (perp-mechanics.md §14; DESIGN.md guide point 9).

Independent of the simulator: it reads only what a venue reports (every account's wallets and
positions, books, marks, instruments) and the published rules (§2 mark, §4 tiers, §6 trigger,
§7 step sizes). :mod:`harness.oracle.exposure` builds the graphs around it; latency is in
:mod:`harness.oracle.latency`.

**Prediction** (:func:`predict_cascade`), in rounds like a venue's liquidation scan:

1. The shock moves each symbol's index: ``I' = I·(1 + move)``. The book is assumed to move with
   it (every level's price scaled by ``I'/I``: the venue's makers requote around the index).
2. The mark follows the venue's published rule (§2 V1): ``median(P1, P2, last)`` with
   ``P1 = I'·(1 + F·τ/T)``, and ``P2 = I' + MA(basis)`` where the moving average of
   ``basis_samples`` samples had held ``mid − I`` before the shock (a settled market) and takes
   one new sample from the moved book. ``last`` stays at its pre-shock value until forced flow
   trades.
3. Each round, every pool (an account's cross wallet with its cross positions, or one isolated
   position) at or below maintenance at the current marks (non-strict, §6) takes one step sized
   by the symbol's published rule (§7, :func:`~harness.oracle.partial.step_close_quantity`); a
   cross pool reduces its largest position first. Shared cross collateral is what makes a fall
   of one symbol liquidate positions in another.
4. The round's forced closes, summed per symbol and side, walk the (remaining) book; the last
   price becomes the worst level reached, which moves the mark within ``[P1, P2]``. The part the
   book fills is realized at the walk's average price, the rest at each pool's bankruptcy price
   (the insurance fund's takeover), less the liquidation fee.
5. Rounds repeat until no pool crosses. An account's **generation** is 1 if the shock alone
   crossed it, else one more than the highest generation among the accounts whose forced flow,
   in the round before, moved a symbol it holds; the cascade's **depth** is the highest
   generation.

Margins near the line are fragile to any error in the mark model, so :func:`predict_cascade`
also runs the prediction with the post-shock index ``tolerance_bps`` higher and lower: an
account liquidated in some of the three runs but not all is ``borderline``.

:func:`move_for_mark` inverts the mark model: the index move that puts the post-shock mark at a
given price (to aim a shock just past a liquidation price).

Layout: the inputs and results (:class:`Shock`, :class:`MarketInput`, :class:`CascadePrediction`
...) are in :mod:`harness.oracle.cascade_types`, the round-by-round scan in
:mod:`harness.oracle._cascade_rounds`; this module holds the entry points and re-exports the
types, so ``from harness.oracle.cascade import ...`` gives the whole public API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from harness.cascade import AccountExposure
from harness.model import Position
from harness.oracle._cascade_rounds import ZERO, _run, _shocked
from harness.oracle._exact import exact, require_finite
from harness.oracle.cascade_types import (
    CascadePrediction,
    CascadeRound,
    MarketInput,
    PredictedStep,
    Shock,
)

__all__ = [
    "CascadePrediction",
    "CascadeRound",
    "MarketInput",
    "PredictedStep",
    "Shock",
    "move_for_mark",
    "positions_of",
    "predict_cascade",
]

_BPS = Decimal(10_000)


@exact
def predict_cascade(
    population: Sequence[AccountExposure],
    markets: Mapping[str, MarketInput],
    shock: Shock,
    *,
    basis_samples: int = 30,
    non_strict: bool = True,
    tolerance_bps: Decimal = Decimal(5),
) -> CascadePrediction:
    """Predict which accounts ``shock`` liquidates, in which order and generation.

    Args:
        population: every account that could be liquidated, as the venue reports it (exempt
            accounts are skipped).
        markets: each symbol the population holds: instrument, book and mark before the shock.
        shock: the index moves.
        basis_samples: the venue's mark basis window (``VenueRules.mark_basis_samples``).
        non_strict: liquidation at ``equity <= maintenance`` (else ``<``), as the venue rules.
        tolerance_bps: accounts whose fate differs with the post-shock index this much higher
            or lower are reported ``borderline``.

    Returns:
        The prediction at the shock as given, with ``borderline`` filled in.
    """
    if require_finite("tolerance_bps", tolerance_bps) < 0:
        msg = f"tolerance_bps={tolerance_bps} must be >= 0"
        raise ValueError(msg)
    main = _run(population, markets, shock, basis_samples, non_strict)
    if tolerance_bps == 0:
        return main
    fates = [frozenset(main.liquidated)]
    for sign in (1, -1):
        nudged = Shock(
            moves={
                s: (1 + shock.moves.get(s, ZERO)) * (1 + sign * tolerance_bps / _BPS) - 1
                for s in markets
            }
        )
        fates.append(
            frozenset(_run(population, markets, nudged, basis_samples, non_strict).liquidated)
        )
    every = frozenset.intersection(*fates)
    some = frozenset.union(*fates)
    return CascadePrediction(
        rounds=main.rounds,
        shocked_marks=main.shocked_marks,
        final_marks=main.final_marks,
        liquidated=main.liquidated,
        generation=main.generation,
        borderline=some - every,
        forced_volume=main.forced_volume,
        shortfall=main.shortfall,
    )


@exact
def move_for_mark(market: MarketInput, target: Decimal, *, basis_samples: int = 30) -> Decimal:
    """The index move after which the mark (before any forced flow) is ``target``, by the same
    mark model as :func:`predict_cascade` (bisection; the mark rises with the index)."""
    if require_finite("target", target) <= 0:
        msg = f"target={target} must be > 0"
        raise ValueError(msg)
    low, high = Decimal("-0.99"), Decimal(10)
    for _ in range(200):
        mid = (low + high) / 2
        if _shocked(market, mid, basis_samples).mark() < target:
            low = mid
        else:
            high = mid
    return high


def positions_of(population: Iterable[AccountExposure]) -> list[Position]:
    """Every position of ``population`` (to sum open interest from)."""
    return [p for acct in population for p in acct.positions]
