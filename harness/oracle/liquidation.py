"""Liquidation and bankruptcy prices, linear contracts, one-way mode (perp-mechanics.md §6).

Binance USDⓈ-M one-way formula (§6(a)), isolated being the special case ``TMM₁ = UPNL₁ = 0``::

    LP = (WB − TMM₁ + UPNL₁ + cum_B − s·Q·EP) / (Q·mmr_B − s·Q)

with ``mmr_B``, ``cum_B`` those of the bracket holding the notional **at the liquidation price**,
``Q·LP`` — a fixed point. It is the root of ``g(P) = E(P) − MM(Q·P)`` where
``E(P) = WB − TMM₁ + UPNL₁ + s·Q·(P − EP)``. On bracket ``k``, ``g`` is linear with slope
``Q·(s − mmr_k)``: positive for a long and negative for a short since ``0 ≤ mmr_k < 1``. With a
continuous ``MM`` (a consistent ``cum`` column, §4) ``g`` is therefore strictly monotone on
``[0, ∞)`` and has at most one root, so at most one bracket yields a candidate inside itself:
:func:`isolated_liquidation` tries every bracket and keeps that one. Containment is tested
exactly by cross-multiplication (no rounded quotient), so a root sitting exactly on a floor
belongs to the upper bracket only (brackets are ``[floor, cap)``).

If the table's ``cum`` column is inconsistent, ``MM`` jumps and several brackets may contain
their own candidate; the quote then takes the first price the mark would reach coming from the
entry side: the highest for a long, the lowest for a short (conservative, deterministic).

No root at a positive price — a long that stays above maintenance down to price 0, or a short
below maintenance at every price — gives ``liquidation_price=None`` (Binance shows "--").
:class:`~harness.errors.NoSolution` is raised only when the root lies at a notional no bracket
covers (beyond the last cap) or an inconsistent table leaves no consistent bracket.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from harness.errors import NoSolution
from harness.model import Bracket
from harness.oracle._exact import exact, require_finite
from harness.oracle.tiers import maintenance_margin, require_contiguous

__all__ = [
    "LiquidationQuote",
    "PositionInput",
    "PositionSide",
    "cross_liquidation",
    "equity_at",
    "isolated_liquidation",
    "liquidation_price_at_tier",
    "maintenance_at",
]


class PositionSide(enum.StrEnum):
    """Direction of a one-way-mode position."""

    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        """``s``: +1 for a long, −1 for a short (§0)."""
        return 1 if self is PositionSide.LONG else -1

    @classmethod
    def parse(cls, value: str | int) -> PositionSide:
        """``'long'``/``'short'`` (any case) or ``+1``/``−1``."""
        if isinstance(value, int) and not isinstance(value, bool) and value in (1, -1):
            return cls.LONG if value == 1 else cls.SHORT
        if isinstance(value, str) and value.lower() in ("long", "short"):
            return cls(value.lower())
        msg = f"side={value!r} must be 'long', 'short', +1 or -1"
        raise ValueError(msg)


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionInput:
    """One position as the oracle needs it.

    ``side`` may be given as a :class:`PositionSide`, ``'long'``/``'short'`` or ``±1``;
    ``brackets`` are sorted by floor and must tile ``[0, last cap)``. ``mark_price`` is used for
    the position's contribution to *other* symbols' cross liquidation price (its own price is the
    unknown); ``None`` means "at the entry price".
    """

    symbol: str
    side: PositionSide
    quantity: Decimal
    entry_price: Decimal
    brackets: tuple[Bracket, ...]
    mark_price: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", PositionSide.parse(self.side))
        if not self.symbol:
            msg = "symbol must not be empty"
            raise ValueError(msg)
        for name in ("quantity", "entry_price", "mark_price"):
            value = getattr(self, name)
            if value is None:
                continue
            value = require_finite(name, value)
            if not value > 0:
                hint = " (the side gives the sign)" if name == "quantity" else ""
                msg = f"{self.symbol}: {name}={value} must be > 0{hint}"
                raise ValueError(msg)
            object.__setattr__(self, name, value)
        try:
            object.__setattr__(self, "brackets", require_contiguous(self.brackets))
        except ValueError as exc:
            msg = f"{self.symbol}: {exc}"
            raise ValueError(msg) from None

    @property
    def signed_quantity(self) -> Decimal:
        """``s·Q``."""
        return self.side.sign * self.quantity

    @property
    def reference_mark(self) -> Decimal:
        """The mark this position is valued at for other symbols' cross LP (entry if unset)."""
        return self.entry_price if self.mark_price is None else self.mark_price


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationQuote:
    """The oracle's liquidation and bankruptcy price for one position (§6).

    ``liquidation_price`` is ``None`` when there is none at a positive price ("--");
    ``bracket``, ``maint_margin_ratio`` and ``cum`` are then ``None`` too. Otherwise ``bracket``
    is the tier holding ``quantity × liquidation_price``. ``bankruptcy_price`` is the price at
    which equity is 0, ``None`` when that is not positive.
    """

    symbol: str
    side: PositionSide
    quantity: Decimal
    entry_price: Decimal
    liquidation_price: Decimal | None
    bankruptcy_price: Decimal | None
    bracket: Bracket | None
    maint_margin_ratio: Decimal | None
    cum: Decimal | None


@exact
def liquidation_price_at_tier(
    side: PositionSide,
    quantity: Decimal,
    entry_price: Decimal,
    wallet: Decimal,
    maint_margin_ratio: Decimal,
    cum: Decimal,
    other_maintenance: Decimal = Decimal(0),
    other_upnl: Decimal = Decimal(0),
) -> Decimal:
    """The Binance one-way formula with a given tier, no fixed point (§6(a)).

    ``LP = (WB − TMM₁ + UPNL₁ + cum − s·Q·EP) / (Q·mmr − s·Q)``. Use it to reproduce published
    examples that state their ``mmr`` and ``cum``; :func:`isolated_liquidation` and
    :func:`cross_liquidation` choose the tier themselves.

    Args:
        side: position side.
        quantity: ``Q > 0``.
        entry_price: ``EP``.
        wallet: ``WB`` (cross wallet, or the isolated position's margin).
        maint_margin_ratio: ``mmr`` of the tier.
        cum: the tier's maintenance amount.
        other_maintenance: ``TMM₁``, maintenance of all other positions (0 when isolated).
        other_upnl: ``UPNL₁``, unrealized PnL of all other positions (0 when isolated).

    Returns:
        The raw formula value; it may be ``<= 0`` (then there is no liquidation price).
    """
    s = PositionSide.parse(side).sign
    numerator = wallet - other_maintenance + other_upnl + cum - s * quantity * entry_price
    return numerator / (quantity * maint_margin_ratio - s * quantity)


def _contains_ratio(bracket: Bracket, quantity: Decimal, num: Decimal, den: Decimal) -> bool:
    """Exactly: ``0 < num/den`` and ``floor <= quantity·num/den < cap``."""
    if den > 0:
        return (
            num > 0 and bracket.notional_floor * den <= quantity * num < bracket.notional_cap * den
        )
    return num < 0 and bracket.notional_floor * den >= quantity * num > bracket.notional_cap * den


def _solve(position: PositionInput, base: Decimal) -> tuple[Decimal, Bracket] | None:
    """Root of ``g(P) = base + s·Q·(P − EP) − MM(Q·P)`` at ``P > 0``.

    ``base = WB − TMM₁ + UPNL₁``; ``None`` when no root is positive.
    """
    s, q, ep = position.side.sign, position.quantity, position.entry_price
    found: list[tuple[Decimal, Bracket]] = []
    for bracket in position.brackets:
        num = base + bracket.cum - s * q * ep
        den = q * bracket.maint_margin_ratio - s * q
        if _contains_ratio(bracket, q, num, den):
            found.append((num / den, bracket))
    if found:
        pick = max if s > 0 else min
        return pick(found, key=lambda pair: pair[0])
    # g(0) with MM(0) = −cum of the first bracket; g rises for a long and falls for a short.
    g0 = base - s * q * ep + position.brackets[0].cum
    if (s > 0 and g0 >= 0) or (s < 0 and g0 <= 0):
        return None
    last = position.brackets[-1]
    cap = last.notional_cap
    g_cap = base + s * (cap - q * ep) - (cap * last.maint_margin_ratio - last.cum)
    if (s > 0 and g_cap < 0) or (s < 0 and g_cap > 0):
        msg = (
            f"{position.symbol}: the liquidation price lies where the notional reaches the last "
            f"bracket's cap {cap} or beyond, a position the venue would not hold; use a smaller "
            "quantity or less margin"
        )
    else:
        msg = (
            f"{position.symbol}: no bracket is consistent at the liquidation price because the "
            "bracket table's cum column is inconsistent (see check_cum); fix the table"
        )
    raise NoSolution(msg)


def _quote(
    position: PositionInput, wallet: Decimal, other_mm: Decimal, other_upnl: Decimal
) -> LiquidationQuote:
    solved = _solve(position, wallet - other_mm + other_upnl)
    bankruptcy = position.entry_price - (wallet + other_upnl) / position.signed_quantity
    lp, bracket = (None, None) if solved is None else solved
    return LiquidationQuote(
        symbol=position.symbol,
        side=position.side,
        quantity=position.quantity,
        entry_price=position.entry_price,
        liquidation_price=lp,
        bankruptcy_price=bankruptcy if bankruptcy > 0 else None,
        bracket=bracket,
        maint_margin_ratio=None if bracket is None else bracket.maint_margin_ratio,
        cum=None if bracket is None else bracket.cum,
    )


@exact
def isolated_liquidation(position: PositionInput, wallet: Decimal) -> LiquidationQuote:
    """Isolated liquidation and bankruptcy price (§6(a), ``TMM₁ = UPNL₁ = 0``).

    Bankruptcy price: long ``EP − WB/Q``, short ``EP + WB/Q``.

    Args:
        position: the isolated position.
        wallet: its isolated margin (``isolatedWallet``).

    Returns:
        The quote; ``liquidation_price`` is ``None`` when there is none at a positive price.

    Raises:
        NoSolution: the root lies beyond the last bracket's cap, or the table is inconsistent.
    """
    return _quote(position, require_finite("wallet", wallet), Decimal(0), Decimal(0))


@exact
def cross_liquidation(
    positions: Sequence[PositionInput], wallet: Decimal
) -> list[LiquidationQuote]:
    """Cross-margin liquidation and bankruptcy prices, one per position (§6(a)).

    For position ``B`` the others contribute ``UPNL₁ = Σ s·Q·(M − EP)`` and
    ``TMM₁ = Σ MM(Q·M)`` at their own marks (entry price when unset); ``B``'s tier is taken at
    ``Q_B·LP_B``. Bankruptcy price: ``E = 0`` with the others at their marks,
    ``BP = EP − (WB + UPNL₁)/(s·Q)``.

    Args:
        positions: the account's cross positions, one per symbol (one-way mode).
        wallet: the cross wallet balance ``WB``.

    Returns:
        One quote per position, in the order given.

    Raises:
        ValueError: two positions share a symbol.
        NoSolution: a root lies beyond a last bracket's cap, or another position's notional at
            its mark is beyond its own brackets.
    """
    require_finite("wallet", wallet)
    symbols = [p.symbol for p in positions]
    duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
    if duplicates:
        msg = f"one-way mode holds one position per symbol; got several for {', '.join(duplicates)}"
        raise ValueError(msg)
    mm = [_maintenance_of(p, p.reference_mark) for p in positions]
    upnl = [p.signed_quantity * (p.reference_mark - p.entry_price) for p in positions]
    total_mm, total_upnl = sum(mm, Decimal(0)), sum(upnl, Decimal(0))
    return [
        _quote(p, wallet, total_mm - mm[i], total_upnl - upnl[i]) for i, p in enumerate(positions)
    ]


def _maintenance_of(position: PositionInput, price: Decimal) -> Decimal:
    try:
        return maintenance_margin(position.brackets, position.quantity * price)
    except NoSolution as exc:
        msg = f"{position.symbol}: {exc}"
        raise NoSolution(msg) from None


def _price_of(position: PositionInput, prices: Mapping[str, Decimal]) -> Decimal:
    return prices.get(position.symbol, position.reference_mark)


@exact
def equity_at(
    positions: Sequence[PositionInput], wallet: Decimal, prices: Mapping[str, Decimal]
) -> Decimal:
    """Account equity ``WB + Σ s·Q·(P − EP)`` at the given prices (§0, §6(a) ``E``).

    Args:
        positions: the positions sharing ``wallet``.
        wallet: wallet balance.
        prices: price per symbol; a missing symbol is valued at its mark (or entry).

    Returns:
        The equity, exact.
    """
    return wallet + sum(
        (p.signed_quantity * (_price_of(p, prices) - p.entry_price) for p in positions),
        Decimal(0),
    )


@exact
def maintenance_at(positions: Sequence[PositionInput], prices: Mapping[str, Decimal]) -> Decimal:
    """Total maintenance ``Σ MM(Q·P)`` at the given prices, each with its own tier (§4(a)).

    Args:
        positions: the positions.
        prices: price per symbol; a missing symbol is valued at its mark (or entry).

    Returns:
        The maintenance margin, exact.
    """
    return sum((_maintenance_of(p, _price_of(p, prices)) for p in positions), Decimal(0))
