"""Partial-liquidation targets, the liquidation band, ADL ranking (perp-mechanics.md §7, §9, §13).

The expected values the PLQ checks judge a venue by, computed from the venue's published rule
(:class:`~harness.model.LiquidationPolicy`) with the oracle's own tier and liquidation-price
functions — never the simulator's.

Step size by variant (§7(a), §13.3):

* ``tier-step-down``: the remainder must land in a lower tier than the position's own — the
  highest lower tier in which margin is restored (equity > maintenance after the step, filled at
  the trigger mark) — with as much left as possible; a position in the lowest tier, or one no
  lower tier saves, is closed whole (Bybit/BitMEX: "a size to bring the position value below a
  lower tier").
* ``fraction``: ``slice_fraction`` of the position (rounded up to the step) when its notional
  exceeds ``slice_min_notional`` and no slice happened within the cooldown; otherwise all of it
  (Hyperliquid).
* ``full``: all of it.

After a step an isolated remainder keeps its share of the isolated margin (equity scales with
the remainder); a cross account keeps its equity less the liquidation fee on the closed notional.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from harness.model import LiquidationPolicy, LiquidationVariant
from harness.oracle._exact import exact
from harness.oracle.liquidation import PositionInput, cross_liquidation, isolated_liquidation
from harness.oracle.tiers import bracket_for, maintenance_margin

__all__ = [
    "BandStepExpectation",
    "adl_rank",
    "expected_band",
    "step_close_quantity",
]


def _tier(position: PositionInput, qty: Decimal, price: Decimal) -> int:
    return bracket_for(position.brackets, qty * price).bracket


def _restored(
    remainder: Decimal,
    *,
    position: PositionInput,
    price: Decimal,
    equity: Decimal,
    isolated: bool,
    others_mm: Decimal,
    fee_rate: Decimal,
) -> bool:
    """Is margin restored with ``remainder`` left after closing the rest at ``price``?"""
    qty = position.quantity
    maintenance = maintenance_margin(position.brackets, remainder * price)
    if isolated:
        return equity * remainder / qty > maintenance
    fee = fee_rate * (qty - remainder) * price
    return equity - fee > others_mm + maintenance


@exact
def step_close_quantity(
    position: PositionInput,
    *,
    price: Decimal,
    equity: Decimal,
    policy: LiquidationPolicy,
    step_size: Decimal,
    isolated: bool,
    others_mm: Decimal = Decimal(0),
    fee_rate: Decimal = Decimal(0),
    cooling: bool = False,
) -> Decimal:
    """How much a liquidation step at ``price`` should close under ``policy`` (§7, §13.3).

    Args:
        position: the position before the step (``quantity`` is its absolute size).
        price: the trigger mark, at which the step is assumed to fill.
        equity: isolated: the position's equity (isolated margin + UPNL); cross: the account's
            cross equity.
        policy: the venue's partial-liquidation rule for the symbol.
        step_size: the symbol's quantity step.
        isolated: isolated (True) or cross (False) margin.
        others_mm: cross only: maintenance of the account's other positions.
        fee_rate: cross only: liquidation fee rate charged on the closed notional.
        cooling: fraction only: a slice happened within the cooldown.

    Returns:
        The quantity to close, on the step grid.
    """
    qty = position.quantity
    if policy.variant is LiquidationVariant.FULL:
        return qty
    if policy.variant is LiquidationVariant.FRACTION:
        if cooling or qty * price <= policy.slice_min_notional:
            return qty
        slices = (qty * policy.slice_fraction / step_size).to_integral_value(ROUND_CEILING)
        return min(slices * step_size, qty)

    def ok(n: Decimal) -> bool:
        return _restored(
            n * step_size,
            position=position,
            price=price,
            equity=equity,
            isolated=isolated,
            others_mm=others_mm,
            fee_rate=fee_rate,
        )

    own = _tier(position, qty, price)
    ordered = sorted(position.brackets, key=lambda b: b.notional_floor)
    for bracket in reversed([b for b in ordered if b.bracket < own]):
        # Remainders in this tier, as step counts n with n * step * price in [floor, cap).
        low = (bracket.notional_floor / price / step_size).to_integral_value(ROUND_CEILING)
        high = (bracket.notional_cap / price / step_size).to_integral_value(ROUND_CEILING) - 1
        high = min(high, (qty / step_size).to_integral_value(ROUND_FLOOR) - 1)
        low = max(low, Decimal(1))
        if high < low:
            continue
        if ok(high):
            return qty - high * step_size
        if not ok(low):
            continue
        # Within a tier the margin surplus is linear in the remainder: bisect for the largest
        # remainder that still restores it.
        good, bad = low, high
        while bad - good > 1:
            mid = (good + bad) // 2
            good, bad = (mid, bad) if ok(mid) else (good, mid)
        return qty - good * step_size
    return qty


@dataclass(frozen=True, slots=True, kw_only=True)
class BandStepExpectation:
    mark: Decimal
    close_qty: Decimal
    remaining_qty: Decimal
    bracket_before: int
    bracket_after: int | None


@exact
def expected_band(
    position: PositionInput,
    *,
    wallet: Decimal,
    policy: LiquidationPolicy,
    step_size: Decimal,
    isolated: bool,
    fee_rate: Decimal = Decimal(0),
    others: Sequence[PositionInput] = (),
    quantum: Decimal = Decimal("1e-8"),
) -> list[BandStepExpectation]:
    """The liquidation band: each step's trigger mark and size until nothing remains (§13).

    Each step triggers at the liquidation price of what remains (tier at the liquidation
    notional), fills at that mark, and is sized by :func:`step_close_quantity`. An isolated
    remainder keeps its share of the margin (rounded down to ``quantum``, as venues never lend
    a fraction of a unit); a cross account's wallet takes the realized PnL less the fee. A fraction
    step due at a mark no further than the previous step's comes at once, inside the cooldown.

    Args:
        position: the position (entry, size, brackets).
        wallet: isolated margin, or the cross wallet balance.
        policy: the symbol's partial-liquidation rule.
        step_size: the symbol's quantity step.
        isolated: isolated or cross margin.
        fee_rate: liquidation fee rate on the closed notional.
        others: cross only: the account's other positions, valued at their marks.
        quantum: the balance unit.

    Returns:
        The steps in the order the mark reaches them.
    """
    sign = position.side.sign
    remaining = position.quantity
    steps: list[BandStepExpectation] = []
    others_mm = sum(
        (maintenance_margin(o.brackets, o.quantity * o.reference_mark) for o in others), Decimal(0)
    )
    others_upnl = sum(
        (o.signed_quantity * (o.reference_mark - o.entry_price) for o in others), Decimal(0)
    )
    while remaining > 0 and len(steps) < 100:
        current = PositionInput(
            symbol=position.symbol,
            side=position.side,
            quantity=remaining,
            entry_price=position.entry_price,
            brackets=position.brackets,
        )
        if isolated:
            quote = isolated_liquidation(current, wallet)
        else:
            quote = cross_liquidation([current, *others], wallet)[0]
        mark = quote.liquidation_price
        if mark is None:
            break
        equity = wallet + others_upnl + sign * remaining * (mark - position.entry_price)
        cooling = bool(steps) and sign * (mark - steps[-1].mark) >= 0
        close = step_close_quantity(
            current,
            price=mark,
            equity=equity,
            policy=policy,
            step_size=step_size,
            isolated=isolated,
            others_mm=others_mm,
            fee_rate=fee_rate,
            cooling=cooling,
        )
        after = remaining - close
        steps.append(
            BandStepExpectation(
                mark=mark,
                close_qty=close,
                remaining_qty=after,
                bracket_before=_tier(position, remaining, mark),
                bracket_after=_tier(position, after, mark) if after else None,
            )
        )
        if isolated:
            wallet = (wallet * after / remaining / quantum).to_integral_value(ROUND_FLOOR) * quantum
        else:
            wallet += sign * close * (mark - position.entry_price) - fee_rate * close * mark
        remaining = after
    return steps


@exact
def adl_rank(
    *, upnl: Decimal, entry_notional: Decimal, notional: Decimal, equity: Decimal
) -> Decimal:
    """ADL ranking of one position, highest deleveraged first (§9(a), BitMEX form).

    ``PnL% = UPNL / |entry notional|``, effective leverage = |notional| / equity; a profitable
    position ranks ``PnL% x leverage``, a losing one ``PnL% / leverage``.
    """
    pnl_pct = upnl / abs(entry_notional)
    leverage = abs(notional) / equity if equity > 0 else Decimal(10) ** 9
    return pnl_pct * leverage if pnl_pct > 0 else pnl_pct / leverage
