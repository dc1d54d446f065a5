"""The engine's instrument table and what it derives from the tier tables, kept per version.

:class:`Instruments` is the engine's ``symbol -> Instrument`` dict with a ``version`` that every
change moves (dynamic parameters replace an instrument to change its tiers): what is derived from
the tables (the trigger index's tier rows, the liquidation scan's last inputs) is rebuilt when it
moves. :func:`max_notional` remembers the position cap of a tier table and leverage.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from adapters.sim.engine.accounts import max_notional_for_leverage
from harness.model import Bracket, Instrument

__all__ = ["Instruments", "max_notional"]

# (id of a tier table, leverage) -> (the table, its cap); holding the table keeps its id unique.
_MAX_NOTIONAL: dict[tuple[int, int], tuple[tuple[Bracket, ...], Decimal]] = {}
_CACHE_SIZE = 1024


def max_notional(brackets: tuple[Bracket, ...], leverage: int) -> Decimal:
    """:func:`max_notional_for_leverage`, remembered per tier table and leverage."""
    key = (id(brackets), leverage)
    found = _MAX_NOTIONAL.get(key)
    if found is None or found[0] is not brackets:
        if len(_MAX_NOTIONAL) > _CACHE_SIZE:  # tier tables replaced many times: start over
            _MAX_NOTIONAL.clear()
        found = _MAX_NOTIONAL[key] = (brackets, max_notional_for_leverage(brackets, leverage))
    return found[1]


class Instruments(dict[str, Instrument]):
    """The engine's instruments by symbol; ``version`` counts the changes."""

    version = 0

    def __setitem__(self, symbol: str, inst: Instrument) -> None:
        super().__setitem__(symbol, inst)
        self.version += 1

    def __delitem__(self, symbol: str) -> None:
        super().__delitem__(symbol)
        self.version += 1

    def update(self, *args: Any, **kwargs: Instrument) -> None:
        super().update(*args, **kwargs)
        self.version += 1

    def pop(self, *args: Any) -> Any:
        self.version += 1
        return super().pop(*args)

    def setdefault(self, symbol: str, inst: Instrument) -> Instrument:
        self.version += 1
        return super().setdefault(symbol, inst)

    def clear(self) -> None:
        super().clear()
        self.version += 1
