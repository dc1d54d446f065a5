"""The parameter controller's inputs (engine/params.py), measured from the engine's state.

Every update the controller records one index return; at each decision it measures:

* ``volatility``: root mean square of the last :data:`VOL_WINDOW` one-update index returns;
* ``open_interest``: the sum of all long positions (base units);
* ``concentration``: the largest trader's position over the open interest (the house market
  maker and the insurance fund are counted in the open interest, never as the largest);
* ``depth``: the quote notional resting within ±:data:`DEPTH_BAND` of the mid, both sides;
* ``oi_to_depth``: open interest × mark / depth (:data:`SIGNAL_CEILING` on an empty book).

A control call may override any input; derived inputs follow the overrides. Ratios are rounded
half-even to 12 decimals, notionals to 8, so that the audit log reads the same on every replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from harness.model import Side

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = ["DEPTH_BAND", "SIGNAL_CEILING", "VOL_WINDOW", "book_depth", "measure"]

VOL_WINDOW = 60
DEPTH_BAND = Decimal("0.01")
SIGNAL_CEILING = Decimal(10**9)
ZERO = Decimal(0)
_RATIO_UNIT = Decimal("1e-12")
_NOTIONAL_UNIT = Decimal("1e-8")


def book_depth(engine: Engine, symbol: str) -> Decimal:
    """Quote notional resting within ±:data:`DEPTH_BAND` of the mid (0 on a one-sided book)."""
    book = engine.books[symbol]
    bid, ask = book.best_bid(), book.best_ask()
    if bid is None or ask is None:
        return ZERO
    mid = (bid + ask) / 2
    low, high = mid * (1 - DEPTH_BAND), mid * (1 + DEPTH_BAND)
    total = ZERO
    for side in (Side.BUY, Side.SELL):
        n = 16
        while True:
            levels = book.levels(side, n)
            inside = [(p, q) for p, q in levels if low <= p <= high]
            if len(levels) < n or len(inside) < len(levels):
                break
            n *= 4
        total += sum((p * q for p, q in inside), ZERO)
    return total


def measure(
    engine: Engine, symbol: str, returns: Iterable[Decimal], overrides: Mapping[str, Decimal]
) -> dict[str, Decimal]:
    """The inputs of one decision for ``symbol`` (module docstring)."""
    window = list(returns)
    if "volatility" in overrides:
        vol = overrides["volatility"]
    elif window:
        vol = (sum((r * r for r in window), ZERO) / len(window)).sqrt()
    else:
        vol = ZERO
    longs, largest = ZERO, ZERO
    for acct in engine.accounts.values():
        pos = acct.positions.get(symbol)
        if pos is None or pos.qty == 0:
            continue
        longs += max(pos.qty, ZERO)
        if not acct.exempt:
            largest = max(largest, abs(pos.qty))
    oi = overrides.get("open_interest", longs)
    conc = overrides.get("concentration", largest / oi if oi else ZERO)
    depth = overrides["depth"] if "depth" in overrides else book_depth(engine, symbol)
    if "oi_to_depth" in overrides:
        ratio = overrides["oi_to_depth"]
    elif depth:
        ratio = min(oi * engine.prices[symbol].mark / depth, SIGNAL_CEILING)
    else:
        ratio = SIGNAL_CEILING if oi else ZERO
    return {
        "volatility": vol.quantize(_RATIO_UNIT, rounding=ROUND_HALF_EVEN),
        "open_interest": oi,
        "concentration": conc.quantize(_RATIO_UNIT, rounding=ROUND_HALF_EVEN),
        "depth": depth.quantize(_NOTIONAL_UNIT, rounding=ROUND_HALF_EVEN),
        "oi_to_depth": ratio.quantize(_RATIO_UNIT, rounding=ROUND_HALF_EVEN),
    }
