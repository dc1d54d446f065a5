"""Full liquidation on mark, through the book, with the liquidation fee and the insurance fund.

Rules (perp-mechanics.md §5, §6, §8, §13):

* Trigger: margin balance <= maintenance margin at the **mark** (non-strict), per isolated
  position, or for the whole cross bucket.
* The trader's open orders are cancelled (on the symbol for isolated, all for cross).
* A reduce-only IOC order for the whole position is sent to the book with the bankruptcy price as
  its limit (rounded to the tick on the trader's safe side), so no fill is worse than bankruptcy.
* Whatever the book does not take, the insurance fund takes over at the bankruptcy price and
  offloads at once into the book; its loss on that is the liquidation's *shortfall*.
* Liquidation fee = rate x liquidated notional (fill price x qty), capped by the collateral left
  after the close (the trader never goes below zero because of the fee); paid to the fund.
* A deficit (collateral below zero) is covered by the insurance fund; the trader ends at zero.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from adapters.sim.engine.accounts import AccountState, OrderRecord, PositionState, maint_margin
from harness.model import (
    IncomeType,
    MarginMode,
    OrderType,
    Side,
    TimeInForce,
    quantize_down,
    quantize_up,
)

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = ["LiquidationEngine", "LiquidationRecord"]

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationRecord:
    account_id: str
    symbol: str
    side: str
    margin_mode: MarginMode
    quantity: Decimal
    filled_qty: Decimal
    price: Decimal
    avg_price: Decimal | None
    time_ms: int
    trigger_mark: Decimal
    bankruptcy_price: Decimal
    fee: Decimal
    shortfall: Decimal
    taken_over_qty: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class AdlRecord:
    account_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    time_ms: int
    rank: Decimal


class LiquidationEngine:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.records: list[LiquidationRecord] = []
        self.adl_records: list[AdlRecord] = []

    def band(self, acct: AccountState, symbol: str) -> LiquidationBand | None:
        """The liquidation band of ``acct``'s position in ``symbol`` (being built)."""
        return None

    def _trigger_price(self, symbol: str) -> Decimal:
        state = self.engine.prices[symbol]
        return state.last_price if self.engine.has("liquidate-on-last") else state.mark

    def scan(self) -> int:
        """Liquidate every account at or below maintenance; returns how many were liquidated."""
        engine = self.engine
        # The maintenance-halved-in-trigger defect compares with half the maintenance margin.
        factor = Decimal("0.5") if engine.has("maintenance-halved-in-trigger") else Decimal(1)
        count = 0
        for acct in list(engine.accounts.values()):
            if acct.exempt:
                continue
            for pos in acct.open_positions():
                if pos.margin_mode is not MarginMode.ISOLATED:
                    continue
                price = self._trigger_price(pos.symbol)
                brackets = engine.instruments[pos.symbol].brackets
                equity = pos.isolated_wallet + pos.upnl(price)
                if equity <= factor * maint_margin(brackets, abs(pos.qty) * price):
                    self._liquidate(acct, pos, price)
                    count += 1
            cross = engine.ledger.cross_positions(acct)
            if not cross:
                continue
            equity = acct.cross_wallet
            mm = ZERO
            for pos in cross:
                price = self._trigger_price(pos.symbol)
                equity += pos.upnl(price)
                mm += maint_margin(engine.instruments[pos.symbol].brackets, abs(pos.qty) * price)
            if equity <= factor * mm:
                engine.cancel_all(acct.account_id)
                for pos in sorted(cross, key=lambda p: p.symbol):
                    self._liquidate(acct, pos, self._trigger_price(pos.symbol))
                self._cover_cross(acct)
                count += 1
        return count

    def _bankruptcy_price(self, acct: AccountState, pos: PositionState) -> Decimal:
        sign, qty = pos.sign, abs(pos.qty)
        if pos.margin_mode is MarginMode.ISOLATED:
            collateral = pos.isolated_wallet
        else:
            collateral = acct.cross_wallet + sum(
                (
                    other.upnl(self.engine.mark(other.symbol))
                    for other in self.engine.ledger.cross_positions(acct)
                    if other is not pos
                ),
                ZERO,
            )
        return pos.entry - collateral / (sign * qty)

    def _liquidate(self, acct: AccountState, pos: PositionState, trigger: Decimal) -> None:
        engine = self.engine
        symbol = pos.symbol
        inst = engine.instruments[symbol]
        now = engine.clock.now_ms()
        isolated = pos.margin_mode is MarginMode.ISOLATED
        if isolated:
            for rec in list(acct.orders.values()):
                if rec.symbol == symbol and rec.status in ("NEW", "PARTIALLY_FILLED"):
                    engine.cancel_order(acct.account_id, symbol, rec.order_id, None)
        qty = abs(pos.qty)
        side = Side.SELL if pos.qty > 0 else Side.BUY
        bp = self._bankruptcy_price(acct, pos)
        limit: Decimal | None
        if engine.has("no-insurance-cover"):
            limit = None
        elif side is Side.SELL:
            limit = min(max(quantize_up(bp, inst.tick_size), inst.min_price), inst.max_price)
        else:
            limit = max(min(quantize_down(bp, inst.tick_size), inst.max_price), inst.min_price)
        cross_before = acct.cross_wallet
        rec = engine.new_record(
            acct,
            symbol=symbol,
            side=side,
            type_=OrderType.MARKET if limit is None else OrderType.LIMIT,
            qty=qty,
            price=limit,
            tif=None if limit is None else TimeInForce.IOC,
            reduce_only=True,
            client_id=f"autoclose-{now}-{engine.books[symbol].update_id}",
            liquidation=True,
        )
        engine.match(acct, rec, limit)
        filled, book_notional = rec.executed_qty, rec.cum_quote
        shortfall = ZERO
        remaining = qty - filled
        bp_price = engine.prices[symbol].round(bp)
        if remaining > 0:
            shortfall += self._take_over(acct, rec, side, remaining, bp_price)
        rec.status = "FILLED"
        if isolated:
            collateral_left = acct.cross_wallet - cross_before
            if collateral_left < 0 and not engine.has("no-insurance-cover"):
                # The isolated margin did not cover the loss: the fund pays, the trader's other
                # money is untouched (§8 "the Insurance Fund will balance the account back to 0").
                acct.cross_wallet -= collateral_left
                engine.insurance.cross_wallet += collateral_left
                shortfall -= collateral_left
        else:
            collateral_left, _ = engine.ledger.cross_equity_and_mm(acct)
        rate = inst.liquidation_fee_rate or ZERO
        fee = (book_notional * rate).quantize(engine.quantum, rounding=ROUND_HALF_UP)
        if engine.config.liquidation_fee_capped:
            fee = min(fee, max(collateral_left, ZERO))
        charges = 2 if engine.has("double-liquidation-fee") else 1
        if fee:
            for _ in range(charges):
                acct.cross_wallet -= fee
                engine.insurance.cross_wallet += fee
            engine.ledger.income(
                acct, IncomeType.INSURANCE_CLEAR, -fee, symbol, rec.client_order_id
            )
        self.records.append(
            LiquidationRecord(
                account_id=acct.account_id,
                symbol=symbol,
                side=side.value,
                margin_mode=pos.margin_mode,
                quantity=qty,
                filled_qty=filled,
                price=limit if limit is not None else ZERO,
                avg_price=book_notional / filled if filled else None,
                time_ms=now,
                trigger_mark=trigger,
                bankruptcy_price=bp_price,
                fee=fee,
                shortfall=shortfall,
                taken_over_qty=remaining,
            )
        )

    def _take_over(
        self, acct: AccountState, rec: OrderRecord, side: Side, qty: Decimal, price: Decimal
    ) -> Decimal:
        """The insurance fund takes ``qty`` at the bankruptcy price and offloads it at once."""
        engine = self.engine
        fund = engine.insurance
        symbol = rec.symbol
        take = engine.new_record(
            fund,
            symbol=symbol,
            side=side.opposite,
            type_=OrderType.LIMIT,
            qty=qty,
            price=price,
            tif=TimeInForce.IOC,
            liquidation=True,
        )
        trade_id = engine.next_trade_id(symbol)
        engine.apply_fill(fund, take, price, qty, maker=True, trade_id=trade_id)
        engine.apply_fill(acct, rec, price, qty, maker=False, trade_id=trade_id)
        before = fund.cross_wallet
        offload = engine.new_record(
            fund,
            symbol=symbol,
            side=side,
            type_=OrderType.MARKET,
            qty=qty,
            price=None,
            tif=None,
            reduce_only=True,
            liquidation=True,
        )
        engine.match(fund, offload, None)
        return max(before - fund.cross_wallet, ZERO)

    def _cover_cross(self, acct: AccountState) -> None:
        """Bring a negative cross wallet back to zero from the insurance fund (§8)."""
        engine = self.engine
        if acct.cross_wallet >= 0 or engine.has("no-insurance-cover"):
            return
        deficit = -acct.cross_wallet
        acct.cross_wallet = ZERO
        engine.insurance.cross_wallet -= deficit
        last = self.records[-1]
        self.records[-1] = replace(last, shortfall=last.shortfall + deficit)
