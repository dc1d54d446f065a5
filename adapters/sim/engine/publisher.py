"""Builds the engine's events (:mod:`adapters.sim.engine.events`) from the engine's hooks.

The engine calls a :class:`Publisher` method at each point something observable happens, and
only while :attr:`EventBus.active <adapters.sim.engine.events.EventBus.active>` (somebody
listens): order reports and trades as they happen, marks and margin calls at each update, and
:meth:`Publisher.flush` at the end of every operation, which publishes what the operation
accumulated: one depth diff (and book ticker) per changed book and one account update per
changed account. While nobody listens the books do not even record touched levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from adapters.sim.engine.events import (
    MARGIN_CALL_RATIO,
    MARGIN_CALL_REARM_RATIO,
    AccountReason,
    AccountUpdate,
    BalanceRow,
    BookTicker,
    ConfigUpdate,
    DepthDiff,
    EventBus,
    ExecutionType,
    ForceOrder,
    MarginCall,
    MarginCallPosition,
    MarkUpdate,
    OrderUpdate,
    PositionRow,
    Trade,
)
from harness.model import IncomeType, MarginMode, Side

if TYPE_CHECKING:
    from adapters.sim.engine.accounts import AccountState, FillRecord, OrderRecord, PositionState
    from adapters.sim.engine.exchange import Engine
    from adapters.sim.engine.liquidation_exec import LiquidationRecord

__all__ = ["Publisher"]

ZERO = Decimal(0)
PRICE_UNIT = Decimal("0.00000001")  # average prices as the order endpoints publish them
ADL_PREFIX = "adl-"  # client id of an auto-deleveraging counter order (liquidation_exec.py)
_REASONS = {
    IncomeType.TRANSFER: AccountReason.DEPOSIT,
    IncomeType.FUNDING_FEE: AccountReason.FUNDING_FEE,
    IncomeType.INSURANCE_CLEAR: AccountReason.INSURANCE_CLEAR,
}
_TRADING = (IncomeType.COMMISSION, IncomeType.REALIZED_PNL)
Top = tuple[Decimal, Decimal, Decimal, Decimal]
DIFFS_PER_SKIP = 40  # depth-sequence-gap: one diff in this many is never sent
MARKS_PER_SKIP = 5  # mark-stream-gaps: one update in this many (by virtual second) is not sent


@dataclass(slots=True)
class _Touched:
    """An account changed by the operation in progress."""

    reason: AccountReason
    symbols: list[str] = field(default_factory=list)
    balance_change: Decimal = ZERO


class Publisher:
    """The engine's event builder; ``engine.events`` is its :attr:`bus`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.bus = EventBus(on_active=self._activate)
        self._last_u: dict[str, int] = {}
        self._top: dict[str, Top] = {}
        self._accounts: dict[str, _Touched] = {}
        self._called: set[tuple[str, str | None]] = set()  # margin calls not yet re-armed
        # Defects (adapters/sim/defects.py) that act on what is published, not on the market.
        has = engine.has
        self._stale_marks = has("mark-stream-stale")
        self._mark_gaps = has("mark-stream-gaps")
        self._hide_force_orders = has("liquidation-not-streamed")
        self._hide_liquidation_fills = has("liquidation-fill-unreported")
        self._merge_partials = has("partial-steps-merged-on-stream")
        self._funding_as_order = has("funding-update-wrong-reason")
        self._skip_diffs = has("depth-sequence-gap")
        self._drop_removals = has("depth-diff-level-dropped")
        self._previous_mark: dict[str, Decimal] = {}
        self._held_partial: dict[tuple[str, str], ForceOrder] = {}
        self._diffs: dict[str, int] = {}

    def _activate(self, active: bool) -> None:
        """Start (or stop) recording touched levels; diffs continue from the books' ids now."""
        for symbol, book in self.engine.books.items():
            book.touched = set() if active else None
            self._last_u[symbol] = book.update_id
            self._top[symbol] = self._best(symbol)
        self._accounts.clear()
        self._called.clear()

    def _now(self) -> int:
        return self.engine.clock.now_ms()

    # ------------------------------------------------------------------ orders and trades
    def order(self, acct: AccountState, rec: OrderRecord, execution: ExecutionType) -> None:
        """An execution report without a fill: NEW, CANCELED or EXPIRED."""
        if not acct.exempt:
            self.bus.publish(self._report(rec, execution, None))

    def fill(self, acct: AccountState, rec: OrderRecord, fill: FillRecord) -> None:
        """A fill of ``rec``: its TRADE (or CALCULATED) report; the account changed."""
        if acct.exempt:
            return
        adl = rec.liquidation and rec.client_order_id.startswith(ADL_PREFIX)
        execution = ExecutionType.CALCULATED if rec.liquidation else ExecutionType.TRADE
        self.touch(acct, AccountReason.ADL if adl else AccountReason.ORDER, rec.symbol)
        if rec.liquidation and not adl and self._hide_liquidation_fills:
            return  # liquidation-fill-unreported
        self.bus.publish(self._report(rec, execution, fill))

    def _report(
        self, rec: OrderRecord, execution: ExecutionType, fill: FillRecord | None
    ) -> OrderUpdate:
        adl = rec.liquidation and rec.client_order_id.startswith(ADL_PREFIX)
        avg = None
        if rec.executed_qty:
            avg = (rec.cum_quote / rec.executed_qty).quantize(PRICE_UNIT, ROUND_HALF_EVEN)
        return OrderUpdate(
            account_id=rec.account_id,
            symbol=rec.symbol,
            order_id=rec.order_id,
            client_order_id=rec.client_order_id,
            side=Side(rec.side),
            type=rec.type,
            time_in_force=rec.time_in_force,
            price=rec.price or ZERO,
            orig_qty=rec.orig_qty,
            status=rec.status,
            execution_type=execution,
            last_qty=fill.qty if fill else ZERO,
            last_price=fill.price if fill else ZERO,
            cum_qty=rec.executed_qty,
            avg_price=avg,
            commission=fill.commission if fill else ZERO,
            realized_pnl=fill.realized_pnl if fill else ZERO,
            maker=fill.maker if fill else False,
            trade_id=fill.trade_id if fill else None,
            reduce_only=rec.reduce_only,
            liquidation=rec.liquidation and not adl,
            adl=adl,
            time_ms=self._now(),
        )

    def trade(
        self, symbol: str, trade_id: int, price: Decimal, qty: Decimal, buyer_is_maker: bool
    ) -> None:
        self.bus.publish(
            Trade(
                symbol=symbol,
                trade_id=trade_id,
                price=price,
                qty=qty,
                buyer_is_maker=buyer_is_maker,
                time_ms=self._now(),
            )
        )

    def force_order(self, rec: LiquidationRecord) -> None:
        if self._hide_force_orders:
            return  # liquidation-not-streamed
        event = ForceOrder(
            account_id=rec.account_id,
            symbol=rec.symbol,
            side=Side(rec.side),
            quantity=rec.quantity,
            price=rec.price,
            avg_price=rec.avg_price,
            filled_qty=rec.filled_qty,
            status="FILLED",
            time_ms=rec.time_ms,
            partial=rec.partial,
            trigger_mark=rec.trigger_mark,
        )
        if self._merge_partials:
            # partial-steps-merged-on-stream: a partial step waits for the next one and goes
            # out as one order with both quantities.
            key = (rec.account_id, rec.symbol)
            held = self._held_partial.pop(key, None)
            if held is not None:
                event = replace(
                    event,
                    quantity=held.quantity + event.quantity,
                    filled_qty=held.filled_qty + event.filled_qty,
                )
            if event.partial:
                self._held_partial[key] = event
                return
        self.bus.publish(event)

    def config(
        self,
        account_id: str,
        symbol: str,
        *,
        leverage: int | None = None,
        margin_mode: MarginMode | None = None,
    ) -> None:
        """A leverage or margin-mode change; the event carries the leverage in force either way
        (Binance's ``ACCOUNT_CONFIG_UPDATE`` ``ac.l``)."""
        if leverage is None:
            from adapters.sim.engine.views import leverage_of  # views imports the engine

            leverage = leverage_of(self.engine, self.engine.accounts[account_id], symbol)
        self.bus.publish(
            ConfigUpdate(
                account_id=account_id,
                symbol=symbol,
                leverage=leverage,
                margin_mode=margin_mode,
                time_ms=self._now(),
            )
        )

    # ------------------------------------------------------------------ accounts
    def touch(self, acct: AccountState, reason: AccountReason, symbol: str | None) -> None:
        """``acct`` changed in this operation (the first reason stays)."""
        if acct.exempt:
            return
        touched = self._accounts.get(acct.account_id)
        if touched is None:
            touched = self._accounts[acct.account_id] = _Touched(reason)
        if symbol and symbol not in touched.symbols:
            touched.symbols.append(symbol)

    def income(self, acct: AccountState, kind: IncomeType, amount: Decimal, symbol: str) -> None:
        """An income record: the account changed, for the record's reason.

        Commission and realized PnL come with a fill, which :meth:`fill` reports (as ORDER, or
        ADL), so they add nothing here; the rest count in ``balance_change`` (Binance ``bc``).
        """
        if acct.exempt or kind in _TRADING:
            return
        reason = _REASONS.get(kind, AccountReason.ORDER)
        if reason is AccountReason.FUNDING_FEE and self._funding_as_order:
            reason = AccountReason.ORDER  # funding-update-wrong-reason
        self.touch(acct, reason, symbol)
        self._accounts[acct.account_id].balance_change += amount

    def _account_update(self, acct: AccountState, touched: _Touched, now: int) -> AccountUpdate:
        engine = self.engine
        rows = []
        for symbol in touched.symbols:
            pos = acct.positions.get(symbol)
            if pos is None:
                continue
            upnl = engine.ledger.figures(pos).upnl if pos.qty else ZERO
            rows.append(
                PositionRow(
                    symbol=symbol,
                    qty=pos.qty,
                    entry=pos.entry,
                    upnl=engine.round_balance(upnl, ROUND_HALF_EVEN),
                    margin_mode=pos.margin_mode,
                    isolated_wallet=pos.isolated_wallet,
                )
            )
        balance = BalanceRow(
            asset="USDT",
            wallet=acct.wallet_total(),
            cross_wallet=acct.cross_wallet,
            balance_change=touched.balance_change,
        )
        return AccountUpdate(
            account_id=acct.account_id,
            reason=touched.reason,
            balances=(balance,),
            positions=tuple(rows),
            time_ms=now,
        )

    # ------------------------------------------------------------------ end of an operation
    def flush(self) -> None:
        """Publish the operation's depth diffs, book tickers and account updates."""
        now = self._now()
        for symbol, book in self.engine.books.items():
            last = self._last_u[symbol]
            touched = book.touched
            if book.update_id == last or touched is None:
                continue
            bids = sorted(
                ((p, book.level_qty(s, p)) for s, p in touched if s is Side.BUY), reverse=True
            )
            asks = sorted((p, book.level_qty(s, p)) for s, p in touched if s is Side.SELL)
            touched.clear()
            self._last_u[symbol] = book.update_id
            self._diffs[symbol] = count = self._diffs.get(symbol, 0) + 1
            if self._skip_diffs and count % DIFFS_PER_SKIP == 0:
                continue  # depth-sequence-gap: the ids advance without a frame
            if self._drop_removals:  # depth-diff-level-dropped: removed levels are not sent
                bids = [level for level in bids if level[1]]
                asks = [level for level in asks if level[1]]
            self.bus.publish(
                DepthDiff(
                    symbol=symbol,
                    first_update_id=last + 1,
                    final_update_id=book.update_id,
                    prev_final_update_id=last,
                    bids=tuple(bids),
                    asks=tuple(asks),
                    time_ms=now,
                )
            )
            top = self._best(symbol)
            if top != self._top[symbol]:
                self._top[symbol] = top
                self.bus.publish(
                    BookTicker(
                        symbol=symbol,
                        update_id=book.update_id,
                        bid=top[0],
                        bid_qty=top[1],
                        ask=top[2],
                        ask_qty=top[3],
                        time_ms=now,
                    )
                )
        if self._accounts:
            pending, self._accounts = self._accounts, {}
            for account_id, touched_account in pending.items():
                acct = self.engine.accounts[account_id]
                self.bus.publish(self._account_update(acct, touched_account, now))

    def _best(self, symbol: str) -> Top:
        book = self.engine.books[symbol]
        bids = book.levels(Side.BUY, 1)
        asks = book.levels(Side.SELL, 1)
        bid, bid_qty = bids[0] if bids else (ZERO, ZERO)
        ask, ask_qty = asks[0] if asks else (ZERO, ZERO)
        return bid, bid_qty, ask, ask_qty

    # ------------------------------------------------------------------ at an update
    def marks(self) -> None:
        """Every symbol's mark, index and funding at this update."""
        now = self._now()
        if self._mark_gaps and (now // 1000) % MARKS_PER_SKIP == 0:
            return  # mark-stream-gaps: some updates are never published
        for symbol, state in self.engine.prices.items():
            mark = state.mark
            if self._stale_marks:  # mark-stream-stale: the previous update's mark
                mark, self._previous_mark[symbol] = self._previous_mark.get(symbol, mark), mark
            self.bus.publish(
                MarkUpdate(
                    symbol=symbol,
                    mark=mark,
                    index=state.index,
                    estimated_settle=state.index,
                    funding_rate=state.last_funding_rate,
                    next_funding_ms=state.next_funding_ms,
                    time_ms=now,
                )
            )

    def margin_calls(self) -> None:
        """Margin calls of every cross bucket and isolated position near maintenance."""
        engine = self.engine
        now = self._now()
        seen: set[tuple[str, str | None]] = set()
        for acct in engine.accounts.values():
            if acct.exempt:
                continue
            cross: list[PositionState] = []
            for pos in acct.open_positions():
                if pos.margin_mode is MarginMode.ISOLATED:
                    fig = engine.ledger.figures(pos)
                    equity = pos.isolated_wallet + fig.upnl
                    isolated_key: tuple[str, str | None] = (acct.account_id, pos.symbol)
                    seen.add(isolated_key)
                    self._call(acct, isolated_key, fig.maint_margin, equity, [pos], now)
                else:
                    cross.append(pos)
            if cross:
                equity, mm = engine.ledger.cross_equity_and_mm(acct)
                cross_key: tuple[str, str | None] = (acct.account_id, None)
                seen.add(cross_key)
                self._call(acct, cross_key, mm, equity, cross, now)
        self._called &= seen

    def _call(
        self,
        acct: AccountState,
        key: tuple[str, str | None],
        maint: Decimal,
        equity: Decimal,
        positions: list[PositionState],
        now: int,
    ) -> None:
        at_risk = equity <= 0 or maint >= MARGIN_CALL_RATIO * equity
        if key in self._called:
            if equity > 0 and maint < MARGIN_CALL_REARM_RATIO * equity:
                self._called.discard(key)
            return
        if not at_risk:
            return
        self._called.add(key)
        rows = []
        for pos in positions:
            fig = self.engine.ledger.figures(pos)
            rows.append(
                MarginCallPosition(
                    symbol=pos.symbol,
                    side=Side.BUY if pos.qty > 0 else Side.SELL,
                    qty=abs(pos.qty),
                    margin_mode=pos.margin_mode,
                    isolated_wallet=pos.isolated_wallet,
                    mark=self.engine.mark(pos.symbol),
                    upnl=self.engine.round_balance(fig.upnl, ROUND_HALF_EVEN),
                    maint_margin=self.engine.round_balance(fig.maint_margin, ROUND_HALF_EVEN),
                )
            )
        self.bus.publish(
            MarginCall(
                account_id=acct.account_id,
                cross_wallet=acct.cross_wallet,
                positions=tuple(rows),
                time_ms=now,
            )
        )
