"""The cascade oracle's inputs and results (:mod:`harness.oracle.cascade` predicts with them):
the shock, one symbol's pre-shock market, and the predicted steps, rounds and cascade.

Frozen records of what a venue reports and what the prediction concludes; importable from
:mod:`harness.oracle.cascade` as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from harness.model import BookSnapshot, Instrument, MarkSnapshot
from harness.oracle._exact import require_finite

__all__ = ["CascadePrediction", "CascadeRound", "MarketInput", "PredictedStep", "Shock"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Shock:
    """Relative index moves per symbol (``-0.05``: the index falls 5 %), applied at once."""

    moves: Mapping[str, Decimal]

    def __post_init__(self) -> None:
        for symbol, move in self.moves.items():
            if require_finite(f"moves[{symbol}]", move) <= -1:
                msg = f"moves[{symbol}]={move} must be > -1 (a price stays positive)"
                raise ValueError(msg)

    @classmethod
    def correlated(
        cls, leader: str, move: Decimal, betas: Mapping[str, Decimal] | None = None
    ) -> Shock:
        """``leader`` moves by ``move``, each follower by ``beta × move``."""
        moves = {leader: move}
        for symbol, beta in (betas or {}).items():
            moves[symbol] = beta * move
        return cls(moves=moves)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketInput:
    """One symbol as the venue shows it before the shock."""

    instrument: Instrument
    book: BookSnapshot
    mark: MarkSnapshot

    @property
    def symbol(self) -> str:
        return self.instrument.symbol


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictedStep:
    """One liquidation step: pool ``(account_id, symbol)`` (symbol ``""``: the cross wallet)
    closes ``close_qty`` of ``position_symbol`` at trigger mark ``mark``."""

    account_id: str
    pool: str
    position_symbol: str
    close_qty: Decimal
    mark: Decimal
    round: int
    generation: int
    causes: frozenset[str] = frozenset()  # whose forced flow, the round before, crossed it


@dataclass(frozen=True, slots=True, kw_only=True)
class CascadeRound:
    """One scan: the marks it ran at, its steps, the forced flow, the symbols whose last price
    that flow moved and where it left ``last``."""

    number: int
    marks: Mapping[str, Decimal]
    steps: tuple[PredictedStep, ...]
    forced_qty: Mapping[str, Decimal]
    moved: frozenset[str]  # symbols whose last price the round's flow moved
    last: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True, kw_only=True)
class CascadePrediction:
    """The predicted cascade of one shock.

    ``liquidated`` lists accounts in the order they are first liquidated (by round; within a
    round by account id); ``borderline`` those whose fate changes within the tolerance;
    ``generation`` maps each liquidated account to its generation; ``shortfall`` is what the
    book and the collateral did not cover (the insurance fund's expected usage), per symbol.
    """

    rounds: tuple[CascadeRound, ...]
    shocked_marks: Mapping[str, Decimal]
    final_marks: Mapping[str, Decimal]
    liquidated: tuple[str, ...]
    generation: Mapping[str, int]
    borderline: frozenset[str] = frozenset()
    forced_volume: Mapping[str, Decimal] = field(default_factory=dict)
    shortfall: Mapping[str, Decimal] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        """The highest generation (0: nobody liquidated)."""
        return max(self.generation.values(), default=0)

    @property
    def certain(self) -> frozenset[str]:
        """Liquidated accounts that are not borderline."""
        return frozenset(self.liquidated) - self.borderline
