"""Concentration warnings and size advice, as the simulated venue publishes them.

The simulator's own computation (it never calls ``harness.oracle``), on demand, from the live
book and positions (harness/concentration.py defines the shares and levels):

* open interest: the sum of every account's long quantity in the symbol (market maker and
  insurance fund included: they hold open interest too);
* the depth in a position's liquidation band: the resting quantity on its closing side at prices
  no worse than its published liquidation price (rounded as published), or the whole side when
  it has none;
* levels by :data:`DOCUMENTED_THRESHOLDS` (PROTOCOL.md "Concentration"): a share at or above a
  threshold reaches its level, and no depth in the band is critical;
* size advice: walking the closing side level by level, the largest quantity on the step grid
  whose average fill is no more than ``budget_bps`` of the best price away from it. Within a
  level ``w`` worse than the best price (in price units), after ``Q`` filled with ``W`` total
  worseness, the average ``(W + (q − Q)·w) / q <= B`` (the budget in price units) holds for the
  whole level while ``w <= B``, and otherwise up to ``q = (Q·w − W) / (w − B)`` when that ends
  inside the level (the closed form; the oracle searches instead).

Named defects: ``concentration-thresholds-off`` applies every threshold 20 % above the documented
one; ``size-advice-ignores-depth`` advises from the top of the book only, as if the whole side
rested at the best price.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from harness.concentration import (
    REFERENCE_THRESHOLDS,
    Concentration,
    ConcentrationLevel,
    ConcentrationThresholds,
    SizeAdvice,
)
from harness.errors import ConfigError
from harness.model import Side, quantize_down

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = ["DOCUMENTED_THRESHOLDS", "ConcentrationMonitor"]

ZERO = Decimal(0)
BPS = Decimal(10_000)
#: The thresholds the simulator documents (PROTOCOL.md "Concentration").
DOCUMENTED_THRESHOLDS = REFERENCE_THRESHOLDS
_SHIFT = Decimal("1.2")  # concentration-thresholds-off: each threshold 20 % too high


def _level(
    share: Decimal | None, table: tuple[tuple[ConcentrationLevel, Decimal], ...]
) -> ConcentrationLevel:
    if share is None:
        return ConcentrationLevel.CRITICAL
    for level, threshold in table:
        if share >= threshold:
            return level
    return ConcentrationLevel.NONE


class ConcentrationMonitor:
    """Shares, levels and size advice for any account and symbol of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def applied_thresholds(self) -> ConcentrationThresholds:
        """The thresholds levels are computed with (the documented ones, unless defective)."""
        t = DOCUMENTED_THRESHOLDS
        if not self.engine.has("concentration-thresholds-off"):
            return t
        return ConcentrationThresholds(
            oi_notice=t.oi_notice * _SHIFT,
            oi_warning=t.oi_warning * _SHIFT,
            oi_critical=t.oi_critical * _SHIFT,
            depth_notice=t.depth_notice * _SHIFT,
            depth_warning=t.depth_warning * _SHIFT,
            depth_critical=t.depth_critical * _SHIFT,
        )

    def open_interest(self, symbol: str) -> Decimal:
        """The sum of every account's long quantity in ``symbol``."""
        total = ZERO
        for acct in self.engine.accounts.values():
            pos = acct.positions.get(symbol)
            if pos is not None and pos.qty > 0:
                total += pos.qty
        return total

    def report(
        self, account_id: str, symbol: str, *, side: Side | None, budget_bps: Decimal
    ) -> Concentration:
        """The account's concentration in ``symbol``; the advice is for its position's side
        (``side`` when it has none; BUY when neither is given)."""
        engine = self.engine
        engine.instrument(symbol)  # -1121 for an unknown symbol
        acct = engine.accounts.get(account_id)
        if acct is None:
            msg = f"unknown account {account_id!r}"
            raise ConfigError(msg)
        pos = acct.positions.get(symbol)
        qty = pos.qty if pos is not None else ZERO
        position_side = Side.BUY if qty > 0 else Side.SELL if qty < 0 else None
        advice = self.advise(symbol, position_side or side or Side.BUY, budget_bps)
        thresholds = self.applied_thresholds
        oi = self.open_interest(symbol)
        lp: Decimal | None
        depth_share: Decimal | None
        if pos is None or qty == 0:
            # Flat: nothing to close, no liquidation price, every level NONE.
            lp, band, oi_share, depth_share = None, ZERO, ZERO, ZERO
            oi_level = depth_level = ConcentrationLevel.NONE
            qty = ZERO
        else:
            raw_lp = engine.ledger.liquidation_price(acct, pos)
            lp = None if raw_lp is None else engine.round_balance(raw_lp)
            size = abs(qty)
            band = self.band_depth(symbol, long=qty > 0, liquidation_price=lp)
            oi_share = size / oi
            depth_share = size / band if band > 0 else None
            oi_level = _level(oi_share, thresholds.oi())
            depth_level = _level(depth_share, thresholds.depth())
        return Concentration(
            account_id=account_id,
            symbol=symbol,
            quantity=qty,
            mark_price=engine.mark(symbol),
            liquidation_price=lp,
            open_interest=oi,
            oi_share=oi_share,
            band_depth=band,
            depth_share=depth_share,
            oi_level=oi_level,
            depth_level=depth_level,
            level=max(oi_level, depth_level, key=lambda lv: lv.rank),
            advice=advice,
            time_ms=engine.clock.now_ms(),
            thresholds=DOCUMENTED_THRESHOLDS,
        )

    def band_depth(self, symbol: str, *, long: bool, liquidation_price: Decimal | None) -> Decimal:
        """Closing-side quantity at prices no worse than ``liquidation_price``."""
        book = self.engine.books[symbol]
        total = ZERO
        for price, qty in book.levels(Side.BUY if long else Side.SELL, 1_000_000):
            if liquidation_price is not None and (
                price < liquidation_price if long else price > liquidation_price
            ):
                break
            total += qty
        return total

    def advise(self, symbol: str, side: Side, budget_bps: Decimal) -> SizeAdvice:
        """The largest ``side`` position whose forced close stays within ``budget_bps``."""
        if not budget_bps.is_finite() or budget_bps < 0:
            msg = f"budget_bps={budget_bps} must be a finite number >= 0"
            raise ConfigError(msg)
        engine = self.engine
        step = engine.instrument(symbol).step_size
        # The forced close of a long sells into the bids; of a short, buys from the asks.
        levels = engine.books[symbol].levels(Side.BUY if side is Side.BUY else Side.SELL, 1_000_000)
        depth = sum((q for _, q in levels), ZERO)
        if not levels:
            return SizeAdvice(
                symbol=symbol,
                side=side,
                budget_bps=budget_bps,
                max_qty=ZERO,
                reference_price=None,
                slippage_bps=ZERO,
                depth_qty=ZERO,
            )
        best = levels[0][0]
        if engine.has("size-advice-ignores-depth"):
            max_qty = quantize_down(depth, step)
            return SizeAdvice(
                symbol=symbol,
                side=side,
                budget_bps=budget_bps,
                max_qty=max_qty,
                reference_price=best,
                slippage_bps=ZERO,
                depth_qty=depth,
            )
        budget = budget_bps * best / BPS  # in price units per unit of quantity
        filled = worse = ZERO  # quantity and total worseness (qty x price distance) so far
        limit = ZERO
        for price, qty in levels:
            w = best - price if side is Side.BUY else price - best
            if w > budget:
                cap = (filled * w - worse) / (w - budget)
                if cap < filled + qty:
                    limit = max(cap, filled)
                    break
            filled += qty
            worse += qty * w
            limit = filled
        max_qty = quantize_down(limit, step)
        return SizeAdvice(
            symbol=symbol,
            side=side,
            budget_bps=budget_bps,
            max_qty=max_qty,
            reference_price=best,
            slippage_bps=self._slippage(levels, max_qty, best, side),
            depth_qty=depth,
        )

    @staticmethod
    def _slippage(
        levels: tuple[tuple[Decimal, Decimal], ...], qty: Decimal, best: Decimal, side: Side
    ) -> Decimal:
        """What closing ``qty`` costs against ``best``, in bps (positive: worse)."""
        if qty <= 0:
            return ZERO
        left, notional = qty, ZERO
        for price, level_qty in levels:
            take = min(left, level_qty)
            notional += take * price
            left -= take
            if left <= 0:
                break
        avg = notional / (qty - left)
        worse = best - avg if side is Side.BUY else avg - best
        return worse / best * BPS
