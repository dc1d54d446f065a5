"""Concentration warnings and size advice as a venue publishes them (venue-neutral types).

The testing guide (DESIGN.md point 8): concentration warnings are a sizing input, because a
position that is large against the market makes a cascade likelier even at unchanged leverage.
Two shares measure it, per account and symbol:

* **open-interest share**: ``|Q| / OI``, the position against the symbol's open interest (the sum
  of every long position, which equals the sum of every short);
* **depth share**: ``|Q| / D``, the position against ``D``, the resting quantity on its closing
  side (bids for a long, asks for a short) at prices no worse than its liquidation price — the
  depth its own forced close would have to walk inside its liquidation band. With no depth there
  the share is undefined (``None``) and the level is critical.

Each share maps to a :class:`ConcentrationLevel` by the venue's documented
:class:`ConcentrationThresholds` (a share at or above a threshold reaches its level); the
position's level is the higher of the two. The **size advice** is the largest position whose
forced close, walking the current book's closing side, averages no more than a slippage budget
(in bps) away from the best price on that side.

A venue with ``READ_CONCENTRATION`` implements :class:`ConcentrationSource` next to the
:class:`~harness.venue.Venue` protocol (a protocol of its own, so that venues without it, the
testnets, need not implement it); checks call :func:`read_concentration`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, runtime_checkable

from harness.errors import Missing
from harness.model import Side

__all__ = [
    "REFERENCE_THRESHOLDS",
    "Concentration",
    "ConcentrationLevel",
    "ConcentrationSource",
    "ConcentrationThresholds",
    "SizeAdvice",
    "read_concentration",
]


class ConcentrationLevel(enum.StrEnum):
    """Warning levels, lowest first; compare them by :attr:`rank`."""

    NONE = "none"
    NOTICE = "notice"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {level: i for i, level in enumerate(ConcentrationLevel)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ConcentrationThresholds:
    """The shares at which each level starts (inclusive), as the venue documents them.

    Defaults are the reference simulator's documented values (PROTOCOL.md "Concentration"): 5 %,
    15 % and 30 % of open interest; 25 %, 50 % and 100 % of the depth in the liquidation band
    (100 %: the forced close alone would walk through the liquidation price).
    """

    oi_notice: Decimal = Decimal("0.05")
    oi_warning: Decimal = Decimal("0.15")
    oi_critical: Decimal = Decimal("0.30")
    depth_notice: Decimal = Decimal("0.25")
    depth_warning: Decimal = Decimal("0.50")
    depth_critical: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        for kind in ("oi", "depth"):
            values = [getattr(self, f"{kind}_{n}") for n in ("notice", "warning", "critical")]
            if not all(v.is_finite() and v > 0 for v in values) or values != sorted(set(values)):
                msg = f"{kind} thresholds {values} must be positive and strictly ascending"
                raise ValueError(msg)

    def oi(self) -> tuple[tuple[ConcentrationLevel, Decimal], ...]:
        """``(level, threshold)`` for the open-interest share, highest first."""
        return (
            (ConcentrationLevel.CRITICAL, self.oi_critical),
            (ConcentrationLevel.WARNING, self.oi_warning),
            (ConcentrationLevel.NOTICE, self.oi_notice),
        )

    def depth(self) -> tuple[tuple[ConcentrationLevel, Decimal], ...]:
        """``(level, threshold)`` for the depth share, highest first."""
        return (
            (ConcentrationLevel.CRITICAL, self.depth_critical),
            (ConcentrationLevel.WARNING, self.depth_warning),
            (ConcentrationLevel.NOTICE, self.depth_notice),
        )


REFERENCE_THRESHOLDS = ConcentrationThresholds()


@dataclass(frozen=True, slots=True, kw_only=True)
class SizeAdvice:
    """The largest position on ``side`` (BUY: a long) whose forced close fits the budget.

    ``reference_price`` is the best price on the closing side when advised; ``slippage_bps`` is
    what closing ``max_qty`` would cost against it by walking the book (0 when ``max_qty`` is 0);
    ``depth_qty`` is all the closing-side quantity the venue saw.
    """

    symbol: str
    side: Side
    budget_bps: Decimal
    max_qty: Decimal
    reference_price: Decimal | None
    slippage_bps: Decimal
    depth_qty: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Concentration:
    """One account's concentration in one symbol, with the size advice (``READ_CONCENTRATION``).

    ``quantity`` is the signed position (0: none, and then both shares are 0 and the levels
    ``NONE``). ``band_depth`` is the closing-side quantity at prices no worse than
    ``liquidation_price`` (the whole side when there is none); ``depth_share`` is ``None`` when
    that is 0 while a position is open.
    """

    account_id: str
    symbol: str
    quantity: Decimal
    mark_price: Decimal
    liquidation_price: Decimal | None
    open_interest: Decimal
    oi_share: Decimal
    band_depth: Decimal
    depth_share: Decimal | None
    oi_level: ConcentrationLevel
    depth_level: ConcentrationLevel
    level: ConcentrationLevel
    advice: SizeAdvice
    time_ms: int
    thresholds: ConcentrationThresholds = field(default_factory=ConcentrationThresholds)

    @property
    def headroom(self) -> Decimal:
        """The sizing input: how much the position may still grow on the advice's side before
        its forced close would exceed the budget (the whole advice when flat)."""
        held = self.quantity if self.advice.side is Side.BUY else -self.quantity
        return max(self.advice.max_qty - max(held, Decimal(0)), Decimal(0))


@runtime_checkable
class ConcentrationSource(Protocol):
    """A venue that publishes concentration levels and size advice (``READ_CONCENTRATION``)."""

    async def concentration(
        self,
        account_id: str,
        symbol: str,
        *,
        side: Side | None = None,
        budget_bps: Decimal = Decimal(10),
    ) -> Concentration:
        """The account's concentration in ``symbol`` now; the advice is for its position's side
        (``side`` when flat, else BUY) within ``budget_bps`` of forced-close slippage."""
        ...


async def read_concentration(
    venue: object,
    account_id: str,
    symbol: str,
    *,
    side: Side | None = None,
    budget_bps: Decimal = Decimal(10),
) -> Concentration:
    """``venue.concentration(...)``.

    Raises:
        Missing: the venue publishes no concentration (it is not a :class:`ConcentrationSource`).
    """
    if not isinstance(venue, ConcentrationSource):
        msg = f"{getattr(venue, 'name', venue)} publishes no concentration (READ_CONCENTRATION)"
        raise Missing(msg)
    return await venue.concentration(account_id, symbol, side=side, budget_bps=budget_bps)
