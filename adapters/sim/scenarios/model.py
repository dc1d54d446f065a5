"""The frozen records a scenario file decodes into (the format is in the package docstring).

Everything random in a scenario (event jitter, a follower's idiosyncratic noise, a population's
leverages, notionals and wallets) is already drawn here, from the scenario's own seed: the same
file always decodes to the same records. What depends on the market at load time (prices of
relative paths, quantities bought for a notional) is resolved by
:func:`adapters.sim.engine.scenario.apply_scenario`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from harness.model import MarginMode, PricePath, Side

__all__ = [
    "AccountPlan",
    "FeedEvent",
    "Follow",
    "Leg",
    "Population",
    "Scenario",
    "SymbolScenario",
    "WickEvent",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedEvent:
    """At ``at_ms`` after loading, constituent ``feed`` (1-based) stalls or resumes (``stall``)
    and/or starts printing ``offset`` (relative, e.g. ``0.30``) away from the path."""

    at_ms: int
    feed: int
    stall: bool | None = None
    offset: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WickEvent:
    """At ``at_ms`` a trader market-``side``s ``depth_fraction`` × the visible opposite depth."""

    at_ms: int
    side: Side
    depth_fraction: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Follow:
    """How a follower's path was derived from its leader's.

    ``r_F(t) − 1 = beta · (r_L(t) − 1) + ε(t)`` with ``r`` a price over its value at load time
    and ``|ε(t)| ≤ noise_bps / 10⁴`` (``ε(0) = 0``), drawn at the leader's keyframes and every
    ``noise_every_ms``.
    """

    symbol: str
    beta: Decimal
    noise_bps: Decimal
    noise_every_ms: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolScenario:
    """One symbol's part: index path, depth profile, quote skew and timed events.

    ``relative``: the path's prices are multiples of the index at load time.
    """

    path: PricePath
    relative: bool
    depth: str | None = None
    skew_bps: Decimal | None = None
    follows: Follow | None = None
    feed_events: tuple[FeedEvent, ...] = ()
    wicks: tuple[WickEvent, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    """One position an account opens: a ``quantity``, or a ``notional`` at the load-time index."""

    symbol: str
    notional: Decimal | None = None
    quantity: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.notional is None) == (self.quantity is None):
            msg = f"leg {self.symbol}: give exactly one of {self.notional=} and {self.quantity=}"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountPlan:
    """One account of a population: its deposit, its leverage (every leg) and its legs."""

    wallet: Decimal
    leverage: int
    legs: tuple[Leg, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Population:
    """Accounts opened at load time, all on the same ``side`` in ``margin_mode``."""

    name: str
    side: Side
    margin_mode: MarginMode
    symbols: tuple[str, ...]
    accounts: tuple[AccountPlan, ...]

    @property
    def count(self) -> int:
        return len(self.accounts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A named, seeded market situation.

    ``duration_days`` is a hint for checks (e.g. a multi-cycle funding drift); the engine does not
    read it.
    """

    name: str
    description: str
    seed: int
    symbols: dict[str, SymbolScenario]
    populations: tuple[Population, ...] = ()
    duration_days: int | None = None
