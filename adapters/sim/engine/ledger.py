"""Cash and margin bookkeeping: positions on fills, income records, margin figures.

Balances stay in the margin asset's atomic unit (1e-8 USDT): realized PnL is rounded half-even,
isolated margin taken from the cross wallet is rounded up and margin released back is rounded
down (the venue never lends the trader a fraction of a unit). Entry prices keep full precision.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal
from typing import TYPE_CHECKING

from adapters.sim.engine.accounts import (
    AccountState,
    PositionState,
    bracket_at,
    liquidation_price,
    maint_margin,
)
from adapters.sim.engine.decimals import same_as
from adapters.sim.engine.decimals import total as shared_total
from adapters.sim.engine.records import new_income
from harness.model import IncomeType, MarginMode

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adapters.sim.engine.exchange import Engine

__all__ = ["Ledger", "MarginFigures"]

ZERO = Decimal(0)
# A bound on the relative error of one rounding at 28 digits, with a wide margin (it is 5e-28).
_ROUNDING = Decimal("1e-26")
_MANY = 10**6
_ROUNDINGS = _MANY * _ROUNDING  # the bound for fewer than a million roundings
_CROSS = MarginMode.CROSS


class MarginFigures:
    """A position's margin figures at the venue's risk price."""

    __slots__ = ("bracket", "initial_margin", "maint_margin", "notional", "price", "upnl")

    def __init__(self, engine: Engine, pos: PositionState) -> None:
        inst = engine.instruments[pos.symbol]
        self.price = engine.risk_price(pos.symbol)
        self.upnl = pos.upnl(self.price)
        self.notional = pos.qty * self.price
        self.maint_margin = maint_margin(inst.brackets, abs(self.notional))
        self.initial_margin = abs(self.notional) / pos.leverage
        self.bracket = bracket_at(inst.brackets, abs(self.notional))


class Ledger:
    """Wallet and position arithmetic of the simulated exchange."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tran_seq = 0

    def income(
        self, acct: AccountState, kind: IncomeType, amount: Decimal, symbol: str, info: str
    ) -> None:
        if self.engine.events.active:
            self.engine.publisher.income(acct, kind, amount, symbol)
        self._tran_seq += 1
        acct.income.append(
            new_income(
                kind, amount, "USDT", symbol, self.engine.clock.now_ms(), self._tran_seq, info
            )
        )

    def incomes(
        self,
        kind: IncomeType,
        symbol: str,
        info: str,
        rows: Iterable[tuple[AccountState, Decimal]],
    ) -> None:
        """:meth:`income` for each ``(account, amount)`` of ``rows``, in order (a settlement's
        payments: one record per position, so the loop is kept tight)."""
        engine = self.engine
        publish = engine.publisher.income if engine.events.active else None
        now = engine.clock.now_ms()
        seq = self._tran_seq
        for acct, amount in rows:
            if publish is not None:
                publish(acct, kind, amount, symbol)
            seq += 1
            acct.income.append(new_income(kind, amount, "USDT", symbol, now, seq, info))
        self._tran_seq = seq

    def update_position(
        self, acct: AccountState, pos: PositionState, signed_qty: Decimal, price: Decimal
    ) -> Decimal:
        """Apply a fill of ``signed_qty`` at ``price``; returns the realized PnL."""
        q = self.engine.quantum
        q0 = pos.qty
        # Decimals kept are shared with equal ones held (engine/decimals.py), but in reference.
        share = not self.engine.reference
        if q0 == 0 or (q0 > 0) == (signed_qty > 0):
            new = shared_total(q0, signed_qty) if share else q0 + signed_qty
            entry = (abs(q0) * pos.entry + abs(signed_qty) * price) / abs(new)
            pos.entry = same_as(entry, price) if q0 == 0 and share else entry
            pos.qty = new
            self._lock_isolated(acct, pos, abs(signed_qty) * price)
            return ZERO
        close = min(abs(signed_qty), abs(q0))
        sign = 1 if q0 > 0 else -1
        exit_price = price
        if self.engine._realized_on_mark:  # the defect: booked at the mark, not the fill
            exit_price = self.engine.prices[pos.symbol].mark
        realized = (sign * close * (exit_price - pos.entry)).quantize(q, rounding=ROUND_HALF_EVEN)
        if pos.margin_mode is MarginMode.ISOLATED:
            # The closed part takes its share of the isolated margin with it, and its PnL goes to
            # the wallet: the part that stays keeps exactly its share, so its margin ratio is
            # unchanged by the reduction (a loss on the closed part never eats the remainder's
            # margin).
            if close == abs(q0):
                release = pos.isolated_wallet
            else:
                release = (pos.isolated_wallet * close / abs(q0)).quantize(q, rounding=ROUND_DOWN)
            pos.isolated_wallet -= release
            acct.cross_wallet += release + realized
        else:
            acct.cross_wallet += realized
        pos.qty = q0 - sign * close
        if pos.qty == 0:
            pos.entry = ZERO
        leftover = abs(signed_qty) - close
        if leftover > 0:
            pos.qty = (1 if signed_qty > 0 else -1) * leftover
            pos.entry = price
            self._lock_isolated(acct, pos, leftover * price)
        return realized

    def _lock_isolated(self, acct: AccountState, pos: PositionState, notional: Decimal) -> None:
        if pos.margin_mode is not MarginMode.ISOLATED or acct.exempt:
            return
        margin = (notional / pos.leverage).quantize(self.engine.quantum, rounding=ROUND_UP)
        acct.cross_wallet -= margin
        pos.isolated_wallet += margin

    # ------------------------------------------------------------------ margin views
    def figures(self, pos: PositionState) -> MarginFigures:
        return MarginFigures(self.engine, pos)

    def cross_positions(self, acct: AccountState) -> list[PositionState]:
        return [p for p in acct.open_positions() if p.margin_mode is MarginMode.CROSS]

    def cross_equity_and_mm(self, acct: AccountState) -> tuple[Decimal, Decimal]:
        equity = acct.cross_wallet
        mm = ZERO
        for pos in self.cross_positions(acct):
            fig = self.figures(pos)
            equity += fig.upnl
            mm += fig.maint_margin
        return equity, mm

    def open_order_margin(self, acct: AccountState) -> Decimal:
        total = ZERO
        for rec in acct.orders.values():
            if rec.status in ("NEW", "PARTIALLY_FILLED") and not rec.reduce_only and rec.price:
                pos = acct.positions.get(rec.symbol)
                leverage = pos.leverage if pos else self.engine.config.default_leverage
                total += (rec.orig_qty - rec.executed_qty) * rec.price / leverage
        return total

    def available_balance(self, acct: AccountState) -> Decimal:
        available = acct.cross_wallet
        for pos in self.cross_positions(acct):
            fig = self.figures(pos)
            available += fig.upnl - fig.initial_margin
        return available - self.open_order_margin(acct)

    def available_at_least(self, acct: AccountState, amount: Decimal) -> bool:
        """``available_balance(acct) >= amount``, mostly without walking the open orders.

        The open orders' margin is taken from the account's exact open notional per symbol
        (engine/accounts.py) divided by the symbol's leverage: it differs from the order-by-order
        sum of :meth:`open_order_margin` only by the roundings of that sum (28 digits, at most
        one per order and addition). When the comparison is decided by more than a bound on
        those roundings, that is its answer; within it, the available balance is computed.
        """
        engine = self.engine
        if engine.reference or acct.exempt:
            return self.available_balance(acct) >= amount
        available = acct._cross
        prices = engine.prices
        on_last = engine._upnl_on_last
        for pos in acct.positions.values():
            qty = pos._qty
            if qty != 0 and pos._mode is _CROSS:
                state = prices[pos.symbol]
                price = state.last_price if on_last else state.mark  # engine.risk_price
                available += qty * (price - pos._entry) - abs(qty * price) / pos.leverage
        margin = ZERO
        if acct.open_total:
            default = engine.config.default_leverage
            positions = acct.positions
            for symbol, notional in acct.open_notional.items():
                if notional:
                    held = positions.get(symbol)
                    margin += notional / (held.leverage if held else default)
        room = available - margin - amount
        roundings = acct.open_total + len(acct.open_notional) + 10
        scale = abs(available) + margin + abs(amount)
        bound = scale * (_ROUNDINGS if roundings < _MANY else roundings * _ROUNDING)
        if room > bound:
            return True
        if room < -bound:
            return False
        return self.available_balance(acct) >= amount

    def liquidation_price(self, acct: AccountState, pos: PositionState) -> Decimal | None:
        """The liquidation price the venue reports for ``pos`` (its own formula, §6)."""
        inst = self.engine.instruments[pos.symbol]
        entry_tier = self.engine.has("entry-tier-for-liquidation")
        other_upnl = ZERO
        other_mm = ZERO
        if pos.margin_mode is MarginMode.ISOLATED:
            wallet = pos.isolated_wallet
        else:
            wallet = acct.cross_wallet
            if not self.engine.has("cross-ignores-other-positions"):
                for other in self.cross_positions(acct):
                    if other is not pos:
                        fig = self.figures(other)
                        other_upnl += fig.upnl
                        other_mm += fig.maint_margin
        return liquidation_price(
            sign=pos.sign,
            qty=abs(pos.qty),
            entry=pos.entry,
            brackets=inst.brackets,
            wallet=wallet,
            other_upnl=other_upnl,
            other_mm=other_mm,
            entry_tier=entry_tier,
        )
