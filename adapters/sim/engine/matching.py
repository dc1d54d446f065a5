"""Matching and fills: what a crossing order goes through once admitted (a mixin of ``Engine``).

:class:`Matching` walks the book in price-time priority with self-trade prevention (the resting
order of the same account expires), trades, and books every fill: the order record, fees,
position and realized PnL, income, the public tape (:class:`PublicTrade`). Order entry, which
calls it, is engine/trading.py (:class:`~adapters.sim.engine.trading.OrderFlow`); the
annotations below are the parts of the engine the fill path reads.
"""

from __future__ import annotations

from collections import deque
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, NamedTuple

from adapters.sim.config import SimConfig
from adapters.sim.engine.accounts import AccountState, FillRecord, OrderRecord
from adapters.sim.engine.book import OrderBook, RestingOrder
from adapters.sim.engine.decimals import commission, negated, product, same_as, signed, total
from adapters.sim.engine.events import EventBus, ExecutionType
from adapters.sim.engine.ledger import Ledger
from adapters.sim.engine.order_record import ZERO
from adapters.sim.engine.prices import PriceState
from adapters.sim.engine.publisher import Publisher
from adapters.sim.engine.records import new_fill, trade_names
from harness.clock import VirtualClock
from harness.model import FeeRates, IncomeType, Side

if TYPE_CHECKING:
    from adapters.sim.engine.marketmaker import MarketMaker

__all__ = ["Matching", "PublicTrade"]

_SIDES = {side.value: side for side in Side}


class PublicTrade(NamedTuple):
    """One trade through the book, as the venue publishes it (Binance aggTrades/trades)."""

    trade_id: int
    time_ms: int
    price: Decimal
    qty: Decimal
    buyer_maker: bool


class Matching:
    """Matching and fills; mixed into ``Engine`` (through ``OrderFlow``), which sets these."""

    config: SimConfig
    clock: VirtualClock
    accounts: dict[str, AccountState]
    books: dict[str, OrderBook]
    prices: dict[str, PriceState]
    tape: dict[str, deque[PublicTrade]]
    ledger: Ledger
    publisher: Publisher
    events: EventBus
    market_maker: MarketMaker
    quantum: Decimal
    reference: bool
    _fees: dict[str, FeeRates]
    _trade_seq: dict[str, int]
    _dirty: set[str]
    # A defect the fill path asks about on every fill, looked up once by the engine.
    _maker_taker_fee: bool
    _fee_on_mark: bool

    def match(self, acct: AccountState, rec: OrderRecord, limit: Decimal | None) -> None:
        """Take liquidity for ``rec`` up to ``limit``; self-trades expire the resting order."""
        book = self.books[rec.symbol]
        side = _SIDES[rec.side]
        for resting in book.iter_matchable(side, limit):
            executed = rec._executed
            remaining = rec.orig_qty - executed
            if executed is ZERO and not self.reference:  # kept by the fill: share the order's
                remaining = same_as(remaining, rec.orig_qty)
            if remaining <= 0:
                break
            if book.get(resting.order_id) is None:
                continue
            if resting.account_id == acct.account_id:
                self._expire(resting)
                continue
            qty = min(remaining, resting.remaining)
            if rec.reduce_only:
                qty = min(qty, self._reducible(acct, rec.symbol, side))
                if qty <= 0:
                    rec.status = "EXPIRED"
                    break
            maker_acct = self.accounts[resting.account_id]
            maker_rec = maker_acct.orders[resting.order_id]
            if maker_rec.reduce_only:
                maker_qty = self._reducible(maker_acct, rec.symbol, side.opposite)
                if maker_qty <= 0:
                    self._expire(resting)
                    continue
                qty = min(qty, maker_qty)
            self._trade(
                rec.symbol, resting.price, qty, taker=(acct, rec), maker=(maker_acct, maker_rec)
            )
            book.reduce(resting, qty)
            if maker_rec.executed_qty >= maker_rec.orig_qty:
                maker_rec.status = "FILLED"

    def _reducible(self, acct: AccountState, symbol: str, side: Side) -> Decimal:
        pos = acct.positions.get(symbol)
        if pos is None or pos.qty == 0 or (pos.qty > 0) == (side is Side.BUY):
            return ZERO
        return abs(pos.qty)

    def _expire(self, resting: RestingOrder) -> None:
        self.books[self.accounts[resting.account_id].orders[resting.order_id].symbol].remove(
            resting.order_id
        )
        rec = self.accounts[resting.account_id].orders[resting.order_id]
        rec.status = "EXPIRED"
        rec.update_time_ms = self.clock.now_ms()
        if self.events.active:
            self.publisher.order(self.accounts[resting.account_id], rec, ExecutionType.EXPIRED)

    def _trade(
        self,
        symbol: str,
        price: Decimal,
        qty: Decimal,
        *,
        taker: tuple[AccountState, OrderRecord],
        maker: tuple[AccountState, OrderRecord],
    ) -> None:
        self._trade_seq[symbol] += 1
        trade_id = self._trade_seq[symbol]
        self.apply_fill(*maker, price, qty, maker=True, trade_id=trade_id)
        self.apply_fill(*taker, price, qty, maker=False, trade_id=trade_id)
        self.prices[symbol].last_price = price
        sold = taker[1].side == "SELL"  # the taker sold: the buyer was the maker
        self.tape[symbol].append(PublicTrade(trade_id, self.clock.now_ms(), price, qty, sold))
        if self.events.active:
            self.publisher.trade(symbol, trade_id, price, qty, sold)
        self._dirty.add(symbol)
        if maker[0] is self.market_maker.account or taker[0] is self.market_maker.account:
            self.market_maker.mark_stale(symbol)

    def next_trade_id(self, symbol: str) -> int:
        self._trade_seq[symbol] += 1
        return self._trade_seq[symbol]

    def apply_fill(
        self,
        acct: AccountState,
        rec: OrderRecord,
        price: Decimal,
        qty: Decimal,
        *,
        maker: bool,
        trade_id: int,
    ) -> FillRecord:
        now = self.clock.now_ms()
        side = _SIDES[rec.side]
        # What the records keep is shared with equal objects already held (engine/decimals.py;
        # not in reference mode, which the tests compare with).
        share = not self.reference
        executed = rec._executed
        done = executed + qty
        rec.executed_qty = same_as(done, qty) if executed is ZERO and share else done
        if share:
            rec.cum_quote = total(rec.cum_quote, product(price, qty))
        else:
            rec.cum_quote += price * qty
        rec.update_time_ms = now
        rec.status = "FILLED" if rec._executed >= rec.orig_qty else "PARTIALLY_FILLED"
        fee = ZERO
        if not rec.liquidation:
            fees = self._fees[rec.symbol]
            rate = fees.taker if (not maker or self._maker_taker_fee) else fees.maker
            if self._fee_on_mark:  # the defect: the fee's notional at the mark, not the fill
                fee = (qty * self.prices[rec.symbol].mark * rate).quantize(
                    self.quantum, rounding=ROUND_HALF_UP
                )
            elif share:
                fee = commission(qty, price, rate, self.quantum)
            else:
                fee = (qty * price * rate).quantize(self.quantum, rounding=ROUND_HALF_UP)
        pos = acct.position(rec.symbol, self.config.default_leverage)
        change = signed(side.sign, qty) if share else side.sign * qty
        realized = self.ledger.update_position(acct, pos, change, price)
        acct.cross_wallet -= fee
        if share:
            trade_id, info = trade_names(trade_id)
        else:
            info = str(trade_id)
        if fee or realized:
            if fee:
                amount = negated(fee) if share else -fee
                self.ledger.income(acct, IncomeType.COMMISSION, amount, rec.symbol, info)
            if realized:
                self.ledger.income(acct, IncomeType.REALIZED_PNL, realized, rec.symbol, info)
        fill = new_fill(
            trade_id,
            rec.order_id,
            rec.symbol,
            rec.side,
            price,
            qty,
            fee,
            maker,
            realized,
            now,
            rec.liquidation,
        )
        acct.fills.append(fill)
        acct.update_ms = now
        pos.update_ms = now
        if self.events.active:
            self.publisher.fill(acct, rec, fill)
        return fill
