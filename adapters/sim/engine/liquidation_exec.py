"""Executing liquidation steps: one batch per symbol and side, takeover, ADL, fee, records.

perp-mechanics.md §7(d) price bound, §8 insurance fund, §9 auto-deleveraging, §13.7, §13.9, §13.11.

All steps of one scan that close the same side of the same symbol form a batch. The insurance
fund sends one reduce-side IOC for the batch's total, limited at the most conservative
bankruptcy price of its members, and passes the fills on to each member pro rata (on the step
grid) at one average price rounded against the trader; the rounding dust and any units that do
not divide evenly stay with the fund. So identical accounts liquidated together get identical
outcomes, whatever their ids or order. What the book does not take, the fund takes over at each
member's bankruptcy price and offloads at once; if the fund cannot carry it (its balance below
the notional, the Binance rule of a fund position capped at 100 % of the fund), the remainder is
auto-deleveraged against opposite positions ranked by profit x effective leverage (BitMEX
ranking), at the bankruptcy price, without fees.

The liquidation fee is rate x the member's book-filled notional, capped by the collateral left
after its step, paid to the fund; a deficit is covered by the fund.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from adapters.sim.engine.accounts import AccountState, OrderRecord, PositionState
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

__all__ = ["AdlRecord", "Executor", "LiquidationRecord", "Step"]

ZERO = Decimal(0)


@dataclass(slots=True, kw_only=True)
class Step:
    """One planned liquidation step of one account's position."""

    account: AccountState
    position: PositionState
    qty: Decimal
    trigger: Decimal
    bankruptcy: Decimal
    isolated: bool
    backstop: bool = False
    limit: Decimal | None = field(default=None)


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
    adl_qty: Decimal
    partial: bool
    position_before: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class AdlRecord:
    account_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    time_ms: int
    rank: Decimal


@dataclass(slots=True)
class _FundFlow:
    """The insurance fund's cash and position over one batch.

    Its loss is what it paid for the units it disposed of beyond what it got for them; units it
    still holds (the book could not absorb them) count at the average price it took them over at,
    so they are not a loss yet.
    """

    cash: Decimal = ZERO
    position: Decimal = ZERO
    taken_qty: Decimal = ZERO
    taken_notional: Decimal = ZERO

    def trade(self, side: Side, qty: Decimal, notional: Decimal) -> None:
        """The fund traded ``qty`` for ``notional`` on ``side``."""
        self.cash -= side.sign * notional
        self.position += side.sign * qty

    def take_over(self, side: Side, qty: Decimal, notional: Decimal) -> None:
        self.trade(side, qty, notional)
        self.taken_qty += qty
        self.taken_notional += notional

    def loss(self) -> Decimal:
        value = ZERO
        if self.position and self.taken_qty:
            value = self.position * self.taken_notional / self.taken_qty
        return max(-(self.cash + value), ZERO)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Closed:
    """How one member's step closed."""

    order: OrderRecord
    share: Decimal  # filled through the book, at the batch's average price
    taken_over: Decimal  # taken by the insurance fund at the bankruptcy price
    adl: Decimal  # closed against opposite positions at the bankruptcy price
    bankruptcy: Decimal
    released: Decimal  # what the step brought to the cross wallet (isolated: share + PnL)


class Executor:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.records: list[LiquidationRecord] = []
        self.adl_records: list[AdlRecord] = []

    # ------------------------------------------------------------------ batches
    def run(self, steps: list[Step]) -> None:
        engine = self.engine
        for step in steps:
            step.limit = self._limit(step)
        batches: dict[tuple[str, Side], list[Step]] = {}
        sequential = engine.has("liquidate-by-account-id-order")
        ordered = sorted(steps, key=lambda s: s.account.account_id) if sequential else steps
        for i, step in enumerate(ordered):
            side = Side.SELL if step.position.qty > 0 else Side.BUY
            key = (f"{step.position.symbol}#{i}" if sequential else step.position.symbol, side)
            batches.setdefault(key, []).append(step)
        for (_, side), members in batches.items():
            self._batch(members[0].position.symbol, side, members)

    def _limit(self, step: Step) -> Decimal | None:
        engine = self.engine
        if engine.has("no-insurance-cover") or engine.has("liquidation-without-price-limit"):
            return None
        inst = engine.instruments[step.position.symbol]
        if step.position.qty > 0:  # selling a long: never below bankruptcy
            return min(
                max(quantize_up(step.bankruptcy, inst.tick_size), inst.min_price), inst.max_price
            )
        return max(
            min(quantize_down(step.bankruptcy, inst.tick_size), inst.max_price), inst.min_price
        )

    def _batch(self, symbol: str, side: Side, members: list[Step]) -> None:
        engine = self.engine
        fund = engine.insurance
        book_members = [m for m in members if not m.backstop]
        total = sum((m.qty for m in book_members), ZERO)
        filled, notional = ZERO, ZERO
        # liquidations-bypass-book: nothing goes through the book, the fund keeps everything.
        bypass = engine.has("liquidations-bypass-book")
        if total > 0 and not bypass:
            limits = [m.limit for m in book_members]
            limit: Decimal | None = None
            if all(x is not None for x in limits):
                chosen = [x for x in limits if x is not None]
                limit = max(chosen) if side is Side.SELL else min(chosen)
            order = engine.new_record(
                fund,
                symbol=symbol,
                side=side,
                type_=OrderType.MARKET if limit is None else OrderType.LIMIT,
                qty=total,
                price=limit,
                tif=None if limit is None else TimeInForce.IOC,
                liquidation=True,
            )
            engine.match(fund, order, limit)
            order.status = "FILLED" if order.executed_qty >= total else "EXPIRED"
            filled, notional = order.executed_qty, order.cum_quote
        step_size = engine.instruments[symbol].step_size
        price = self._average(notional, filled, side)
        leftover = filled
        shares: list[Decimal] = []
        for m in book_members:
            share = quantize_down(filled * m.qty / total, step_size) if total else ZERO
            shares.append(share)
            leftover -= share
        # The fund's cash and position over this batch, to tell its shortfall (§8).
        flow = _FundFlow()
        flow.trade(side, filled, notional)
        taken_over = ZERO
        results: list[tuple[Step, _Closed]] = []
        plan = [*zip(book_members, shares, strict=True)] + [
            (m, ZERO) for m in members if m.backstop
        ]
        for m, share in plan:
            closed = self._close(m, side, share, price)
            results.append((m, closed))
            if price is not None:
                flow.trade(side.opposite, share, share * price)
            flow.take_over(side.opposite, closed.taken_over, closed.taken_over * closed.bankruptcy)
            taken_over += closed.taken_over
        # What the fund now carries from this batch (takeovers less the leftover units it sold
        # through the book) is offloaded at once.
        net = taken_over - leftover
        if net and not bypass:
            off_side = side if net > 0 else side.opposite
            off = engine.new_record(
                fund,
                symbol=symbol,
                side=off_side,
                type_=OrderType.MARKET,
                qty=abs(net),
                price=None,
                tif=None,
                liquidation=True,
            )
            engine.match(fund, off, None)
            off.status = "FILLED" if off.executed_qty >= abs(net) else "EXPIRED"
            flow.trade(off_side, off.executed_qty, off.cum_quote)
        loss = flow.loss()
        for m, closed in results:
            share = loss * closed.taken_over / taken_over if taken_over else ZERO
            self._settle(m, side, closed, price, share)

    def _average(self, notional: Decimal, filled: Decimal, side: Side) -> Decimal | None:
        if not filled:
            return None
        rounding = ROUND_FLOOR if side is Side.SELL else ROUND_CEILING
        quantum = Decimal(1).scaleb(-self.engine.config.price_decimals)
        return (notional / filled).quantize(quantum, rounding=rounding)

    # ------------------------------------------------------------------ one member
    def _close(self, m: Step, side: Side, share: Decimal, price: Decimal | None) -> _Closed:
        """Close ``m``: its book share at ``price``, the rest taken over or deleveraged."""
        engine = self.engine
        acct, pos = m.account, m.position
        symbol = pos.symbol
        cross_before = acct.cross_wallet
        rec = engine.new_record(
            acct,
            symbol=symbol,
            side=side,
            type_=OrderType.LIMIT if m.limit else OrderType.MARKET,
            qty=m.qty,
            price=m.limit,
            tif=TimeInForce.IOC if m.limit else None,
            reduce_only=True,
            client_id=f"autoclose-{engine.clock.now_ms()}-{engine.next_trade_id(symbol)}",
            liquidation=True,
        )
        if share > 0 and price is not None:
            self._transfer(engine.insurance, acct, rec, symbol, side, share, price)
        rest = m.qty - share
        bp = engine.prices[symbol].round(m.bankruptcy)
        took = adl = ZERO
        if rest > 0:
            fund = engine.insurance
            can_carry = fund.cross_wallet > 0 and rest * bp <= fund.cross_wallet
            if can_carry and not engine.has("adl-before-insurance"):
                self._transfer(fund, acct, rec, symbol, side, rest, bp)
                took = rest
            else:
                adl = self._deleverage(acct, rec, symbol, side, rest, bp)
                if adl < rest:  # nobody left to deleverage: the fund takes it whatever it holds
                    self._transfer(fund, acct, rec, symbol, side, rest - adl, bp)
                    took = rest - adl
        rec.status = "FILLED"
        return _Closed(
            order=rec,
            share=share,
            taken_over=took,
            adl=adl,
            bankruptcy=bp,
            released=acct.cross_wallet - cross_before,
        )

    def _transfer(
        self,
        counterparty: AccountState,
        acct: AccountState,
        rec: OrderRecord,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal,
        *,
        reduce_only: bool = False,
        client_id: str | None = None,
    ) -> None:
        """``counterparty`` takes ``qty`` of ``acct``'s closing ``side`` at ``price``, no fees."""
        engine = self.engine
        counter = engine.new_record(
            counterparty,
            symbol=symbol,
            side=side.opposite,
            type_=OrderType.LIMIT,
            qty=qty,
            price=price,
            tif=TimeInForce.IOC,
            reduce_only=reduce_only,
            client_id=client_id,
            liquidation=True,
        )
        trade_id = engine.next_trade_id(symbol)
        engine.apply_fill(counterparty, counter, price, qty, maker=True, trade_id=trade_id)
        engine.apply_fill(acct, rec, price, qty, maker=False, trade_id=trade_id)

    def _deleverage(
        self,
        acct: AccountState,
        rec: OrderRecord,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal,
    ) -> Decimal:
        """Close ``qty`` against opposite positions in ranking order (§9); returns what closed."""
        engine = self.engine
        ranked = self.ranking(symbol, opposite_of=acct, closing_side=side)
        done = ZERO
        for rank, other, pos in ranked:
            if done >= qty:
                break
            take = min(qty - done, abs(pos.qty))
            adl_id = f"adl-{engine.clock.now_ms()}-{engine.next_trade_id(symbol)}"
            self._transfer(
                other, acct, rec, symbol, side, take, price, reduce_only=True, client_id=adl_id
            )
            self.adl_records.append(
                AdlRecord(
                    account_id=other.account_id,
                    symbol=symbol,
                    side=side.opposite.value,
                    quantity=take,
                    price=price,
                    time_ms=engine.clock.now_ms(),
                    rank=rank,
                )
            )
            done += take
        return done

    def ranking(
        self, symbol: str, *, opposite_of: AccountState, closing_side: Side
    ) -> list[tuple[Decimal, AccountState, PositionState]]:
        """Opposite positions by ADL rank, highest first (BitMEX: PnL% x effective leverage).

        ``PnL% = UPNL / |entry notional|``; effective leverage = |notional| / the position's
        equity (isolated margin + UPNL, or the account's cross equity). A profitable position
        ranks ``PnL% x leverage``, a losing one ``PnL% / leverage``; ties go to the larger
        position, then the older account.
        """
        engine = self.engine
        mark = engine.mark(symbol)
        wanted = 1 if closing_side is Side.SELL else -1  # a long closes by selling: take shorts
        out: list[tuple[Decimal, AccountState, PositionState]] = []
        for other in engine.accounts.values():
            if other is opposite_of or other is engine.insurance:
                continue
            pos = other.positions.get(symbol)
            if pos is None or pos.qty == 0 or pos.sign != -wanted:
                continue
            upnl = pos.upnl(mark)
            if pos.margin_mode is MarginMode.ISOLATED:
                equity = pos.isolated_wallet + upnl
            else:
                equity, _ = engine.ledger.cross_equity_and_mm(other)
            notional = abs(pos.qty) * mark
            pnl_pct = upnl / (abs(pos.qty) * pos.entry)
            leverage = notional / equity if equity > 0 else Decimal(10) ** 9
            rank = pnl_pct * leverage if pnl_pct > 0 else pnl_pct / leverage
            out.append((rank, other, pos))
        out.sort(key=lambda r: (-r[0], -abs(r[2].qty), r[1].account_id))
        return out

    # ------------------------------------------------------------------ fee, cover, record
    def _settle(
        self, m: Step, side: Side, closed: _Closed, price: Decimal | None, shortfall: Decimal
    ) -> None:
        engine = self.engine
        rec, share = closed.order, closed.share
        acct, pos = m.account, m.position
        symbol = pos.symbol
        inst = engine.instruments[symbol]
        fund = engine.insurance
        book_notional = share * price if price is not None else ZERO
        # Collateral left after the step: what the isolated release brought back (release +
        # realized PnL of this step), or the account's cross equity.
        if m.isolated:
            left = closed.released
        else:
            left, _ = engine.ledger.cross_equity_and_mm(acct)
        fee = (book_notional * (inst.liquidation_fee_rate or ZERO)).quantize(
            engine.quantum, rounding=ROUND_HALF_UP
        )
        if engine.config.liquidation_fee_capped:
            fee = min(fee, max(left, ZERO))
        if fee:
            for _ in range(2 if engine.has("double-liquidation-fee") else 1):
                acct.cross_wallet -= fee
                fund.cross_wallet += fee
            engine.ledger.income(
                acct, IncomeType.INSURANCE_CLEAR, -fee, symbol, rec.client_order_id
            )
        deficit = ZERO
        if not engine.has("no-insurance-cover"):
            if m.isolated and left < 0:
                deficit = -left  # the isolated margin did not cover the step's loss
            elif (
                not m.isolated and not engine.ledger.cross_positions(acct) and acct.cross_wallet < 0
            ):
                deficit = -acct.cross_wallet
        if deficit:
            acct.cross_wallet += deficit
            fund.cross_wallet -= deficit
        self.records.append(
            LiquidationRecord(
                account_id=acct.account_id,
                symbol=symbol,
                side=side.value,
                margin_mode=pos.margin_mode,
                quantity=m.qty,
                filled_qty=share,
                price=m.limit if m.limit is not None else ZERO,
                avg_price=price if share else None,
                time_ms=engine.clock.now_ms(),
                trigger_mark=m.trigger,
                bankruptcy_price=engine.prices[symbol].round(m.bankruptcy),
                fee=fee,
                shortfall=shortfall + deficit,
                taken_over_qty=closed.taken_over,
                adl_qty=closed.adl,
                partial=pos.qty != 0,
                position_before=(1 if side is Side.SELL else -1) * m.qty + pos.qty,
            )
        )
        if engine.events.active:
            engine.publisher.force_order(self.records[-1])
