"""What the parameter controller's values do to the engine (engine/params.py), and its specs.

Values become the brackets the engine uses for initial margin, maintenance margin and
liquidation, and the funding cap the funding engine clamps with (perp-mechanics.md §4, §10):

* ``maint_margin_rate`` ``m``: every tier's rate is its base rate × ``m / m₁`` (``m₁`` the base
  first-tier rate), at most :data:`MMR_CEILING`; ``cum`` follows from the recurrence, so
  maintenance stays continuous.
* ``max_leverage`` ``L``: every tier's leverage is ``floor(base × L / L₁)``, at least 1 and at
  most ``floor(1 / rate)`` (initial margin never below maintenance).
* ``max_notional`` ``N``: every floor and cap is its base × ``N / N₁`` (integers, rounded down;
  the factor at least :data:`MIN_NOTIONAL_FACTOR`, so the tiers stay distinct).
* ``funding_cap`` ``c``: cap ``c``, floor ``base floor × c / base cap``.

The ceilings and floors are structural limits of the table, not guardrails: the guardrails keep
values far inside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

from harness.model import Bracket
from harness.params import ParamSpec

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = [
    "COOLING_MS",
    "LEAD_MS",
    "MIN_NOTIONAL_FACTOR",
    "MMR_CEILING",
    "base_values",
    "build_specs",
    "install",
    "scaled_brackets",
]

MMR_CEILING = Decimal("0.9")
MIN_NOTIONAL_FACTOR = Decimal("0.001")
LEAD_MS = 120_000  # a change is announced two minutes before it takes effect
COOLING_MS = 300_000  # and the next one may be announced five minutes after it
_RATE_TICK = Decimal("0.000001")
_ONE = Decimal(1)

# name -> (lower, upper, max step) as multiples of the base value, tick, direction, signal,
# tighten at, relax at (perp-mechanics.md §10; the thresholds are the simulator's fixtures).
_RULES: dict[str, tuple[Decimal, Decimal, Decimal, Decimal, int, str, Decimal, Decimal]] = {
    "maint_margin_rate": (
        _ONE,
        Decimal("1.5"),
        Decimal("0.25"),
        _RATE_TICK,
        1,
        "volatility",
        Decimal("0.001"),
        Decimal("0.0004"),
    ),
    "max_leverage": (
        Decimal("0.25"),
        _ONE,
        Decimal("0.25"),
        _ONE,
        -1,
        "volatility",
        Decimal("0.001"),
        Decimal("0.0004"),
    ),
    "max_notional": (
        Decimal("0.25"),
        _ONE,
        Decimal("0.25"),
        _ONE,
        -1,
        "concentration",
        Decimal("0.5"),
        Decimal("0.3"),
    ),
    "funding_cap": (
        Decimal("0.5"),
        Decimal(2),
        Decimal("0.5"),
        _RATE_TICK,
        1,
        "oi_to_depth",
        Decimal(5),
        Decimal(2),
    ),
}


def base_values(brackets: tuple[Bracket, ...], funding_cap: Decimal) -> dict[str, Decimal]:
    """The published base value of each parameter."""
    first = brackets[0]
    return {
        "maint_margin_rate": first.maint_margin_ratio,
        "max_leverage": Decimal(first.initial_leverage),
        "max_notional": first.notional_cap,
        "funding_cap": funding_cap,
    }


def build_specs(symbol: str, base: Mapping[str, Decimal]) -> dict[str, ParamSpec]:
    """Each parameter's guardrail constants from its base value (the table :data:`_RULES`)."""
    specs = {}
    for name, (lo, hi, step, tick, direction, signal, tighten, relax) in _RULES.items():
        value = base[name]
        specs[name] = ParamSpec(
            symbol=symbol,
            name=name,
            base=value,
            lower=(value * lo).quantize(tick, rounding=ROUND_CEILING),
            upper=(value * hi).quantize(tick, rounding=ROUND_FLOOR),
            max_step=max((value * step).quantize(tick, rounding=ROUND_FLOOR), tick),
            tick=tick,
            direction=direction,
            signal=signal,
            tighten_at=tighten,
            relax_at=relax,
            cooling_ms=COOLING_MS,
            lead_ms=LEAD_MS,
        )
    return specs


def scaled_brackets(
    base: tuple[Bracket, ...], values: Mapping[str, Decimal]
) -> tuple[Bracket, ...]:
    """The bracket table for ``values`` (module docstring)."""
    first = base[0]
    mmr_num, mmr_den = values["maint_margin_rate"], first.maint_margin_ratio
    lev_num, lev_den = values["max_leverage"], Decimal(first.initial_leverage)
    cap_num = max(values["max_notional"], first.notional_cap * MIN_NOTIONAL_FACTOR)
    cap_den = first.notional_cap
    floors = [(b.notional_floor * cap_num / cap_den).to_integral_value(ROUND_DOWN) for b in base]
    caps = [*floors[1:], (base[-1].notional_cap * cap_num / cap_den).to_integral_value(ROUND_DOWN)]
    out: list[Bracket] = []
    cum = Decimal(0)
    prev = Decimal(0)
    for i, b in enumerate(base):
        rate = min(b.maint_margin_ratio * mmr_num / mmr_den, MMR_CEILING)
        lev = (b.initial_leverage * lev_num / lev_den).to_integral_value(ROUND_FLOOR)
        lev = max(_ONE, min(lev, (_ONE / rate).to_integral_value(ROUND_FLOOR) if rate else lev))
        if i:
            cum += floors[i] * (rate - prev)
        out.append(
            Bracket(
                bracket=b.bracket,
                initial_leverage=int(lev),
                notional_floor=floors[i],
                notional_cap=caps[i],
                maint_margin_ratio=rate,
                cum=cum,
            )
        )
        prev = rate
    return tuple(out)


def install(
    engine: Engine,
    symbol: str,
    base: tuple[Bracket, ...],
    base_cap: Decimal,
    base_floor: Decimal,
    values: Mapping[str, Decimal],
) -> None:
    """Make ``values`` the ones the engine uses for ``symbol`` from now on."""
    inst = engine.instruments[symbol]
    engine.instruments[symbol] = replace(inst, brackets=scaled_brackets(base, values))
    # FundingEngine has no setter for its per-symbol cap; the slot is the one it clamps with.
    slot = engine.funding._symbols[symbol]
    cap = values["funding_cap"]
    slot.cap = cap
    slot.floor = base_floor * cap / base_cap
