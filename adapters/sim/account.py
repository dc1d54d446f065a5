"""One account of the in-process simulator (:class:`SimAccount`) and the engine-record mapping
it shares with the venue and its control (:func:`liquidation_event`).

Every method charges its Binance call's weight at the gateway, then maps engine records to
harness domain types; :class:`~adapters.sim.venue.SimVenue` holds the default account.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from adapters.sim.engine.accounts import AccountState, FillRecord, OrderRecord, PositionState
from adapters.sim.engine.liquidation import LiquidationRecord
from adapters.sim.engine.views import balance_view, position_view
from harness.errors import Rejected
from harness.model import (
    Balance,
    ClientOrderId,
    FeeRates,
    Fill,
    IncomeRecord,
    IncomeType,
    LiquidationBand,
    LiquidationEvent,
    MarginMode,
    Order,
    OrderId,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)

if TYPE_CHECKING:
    from adapters.sim.venue import SimVenue

__all__ = ["SimAccount", "liquidation_event"]


def _parse_order_id(order_id: OrderId | None) -> int | None:
    if order_id is None:
        return None
    try:
        return int(order_id)
    except ValueError:
        # As the HTTP dialect answers a malformed orderId (binance-usdm-surface.md §3).
        raise Rejected(
            -1102, "Mandatory parameter 'orderId' was not sent, was empty/null, or malformed."
        ) from None


def liquidation_event(r: LiquidationRecord, own: str) -> LiquidationEvent:
    """An engine record as the venue publishes it; ``own`` is the viewing account."""
    return LiquidationEvent(
        symbol=r.symbol,
        side=Side(r.side),
        quantity=r.quantity,
        filled_qty=r.filled_qty,
        price=r.price,
        avg_price=r.avg_price,
        time_ms=r.time_ms,
        own=r.account_id == own,
        trigger_mark=r.trigger_mark,
        bankruptcy_price=r.bankruptcy_price,
        fee=r.fee,
        shortfall=r.shortfall,
        taken_over_qty=r.taken_over_qty,
        partial=r.partial,
        adl_qty=r.adl_qty,
    )


class SimAccount:
    """One account of the simulated venue."""

    def __init__(self, venue: SimVenue, state: AccountState, *, own_seat: bool = False) -> None:
        self._venue = venue
        self._engine = venue.engine
        self._state = state
        # Every method charges its Binance call's weight; another participant has its own seat.
        gate = venue.gateway_client
        self._gate = gate.seat(state.account_id) if own_seat else gate

    @property
    def account_id(self) -> str:
        return self._state.account_id

    def _order(self, rec: OrderRecord) -> Order:
        return Order(
            order_id=OrderId(str(rec.order_id)),
            client_order_id=ClientOrderId(rec.client_order_id),
            symbol=rec.symbol,
            side=Side(rec.side),
            type=OrderType(rec.type),
            time_in_force=TimeInForce(rec.time_in_force) if rec.time_in_force else None,
            price=rec.price,
            orig_qty=rec.orig_qty,
            executed_qty=rec.executed_qty,
            cum_quote=rec.cum_quote,
            status=OrderStatus(rec.status),
            reduce_only=rec.reduce_only,
            time_ms=rec.time_ms,
            update_time_ms=rec.update_time_ms,
        )

    async def place_order(self, request: OrderRequest) -> Order:
        self._gate.enter("place_order", self.account_id)
        rec = self._engine.place_order(self.account_id, request)
        self._gate.acknowledge(self.account_id, rec)  # lost_ack: executed, but no answer comes
        return self._order(rec)

    async def cancel_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order:
        self._gate.enter("cancel_order")
        rec = self._engine.cancel_order(
            self.account_id, symbol, _parse_order_id(order_id), client_order_id
        )
        return self._order(rec)

    async def get_order(
        self,
        symbol: str,
        *,
        order_id: OrderId | None = None,
        client_order_id: ClientOrderId | None = None,
    ) -> Order:
        self._gate.enter("get_order")
        rec = self._engine.get_order(
            self.account_id, symbol, _parse_order_id(order_id), client_order_id
        )
        return self._order(rec)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        self._gate.enter("open_orders" if symbol else "open_orders:all")
        return [
            self._order(r)
            for r in self._state.orders.values()
            if r.status in ("NEW", "PARTIALLY_FILLED") and symbol in (None, r.symbol)
        ]

    async def cancel_all(self, symbol: str) -> None:
        self._gate.enter("cancel_all")
        self._engine.instrument(symbol)
        self._engine.cancel_all(self.account_id, symbol)

    async def fills(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        self._gate.enter("fills")
        self._engine.instrument(symbol)
        return [
            self._fill(f)
            for f in self._state.fills
            if f.symbol == symbol and (since_ms is None or f.time_ms >= since_ms)
        ]

    @staticmethod
    def _fill(f: FillRecord) -> Fill:
        return Fill(
            trade_id=f.trade_id,
            order_id=OrderId(str(f.order_id)),
            symbol=f.symbol,
            side=Side(f.side),
            price=f.price,
            qty=f.qty,
            quote_qty=f.price * f.qty,
            commission=f.commission,
            commission_asset="USDT",
            maker=f.maker,
            realized_pnl=f.realized_pnl,
            time_ms=f.time_ms,
            liquidation=f.liquidation,
        )

    def _position(self, pos: PositionState) -> Position:
        return position_view(self._engine, self._state, pos)

    async def positions(self) -> list[Position]:
        self._gate.enter("positions")
        return [self._position(p) for p in self._state.open_positions()]

    async def balance(self) -> Balance:
        self._gate.enter("balance")
        return balance_view(self._engine, self._state)

    async def income(
        self,
        income_type: IncomeType | None = None,
        symbol: str | None = None,
        since_ms: int | None = None,
    ) -> list[IncomeRecord]:
        self._gate.enter("income")
        return [
            r
            for r in self._state.income
            if income_type in (None, r.income_type)
            and symbol in (None, r.symbol)
            and (since_ms is None or r.time_ms >= since_ms)
        ]

    async def commission_rates(self, symbol: str) -> FeeRates:
        self._gate.enter("commission_rates")
        self._engine.instrument(symbol)
        return self._engine.config.instruments[symbol].fees

    async def set_leverage(self, symbol: str, leverage: int) -> int:
        self._gate.enter("set_leverage")
        return self._engine.set_leverage(self.account_id, symbol, leverage)

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        self._gate.enter("set_margin_mode")
        self._engine.set_margin_mode(self.account_id, symbol, mode)

    async def add_isolated_margin(self, symbol: str, amount: Decimal) -> None:
        self._gate.enter("add_isolated_margin")
        self._engine.add_isolated_margin(self.account_id, symbol, amount)

    async def liquidation_band(self, symbol: str) -> LiquidationBand | None:
        self._gate.enter("liquidation_band")
        self._engine.instrument(symbol)
        return self._engine.liquidator.band(self._state, symbol)

    async def liquidations(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[LiquidationEvent]:
        self._gate.enter("liquidations" if symbol else "liquidations:all")
        return [
            liquidation_event(r, self.account_id)
            for r in self._engine.liquidator.records
            if r.account_id == self.account_id
            and symbol in (None, r.symbol)
            and (since_ms is None or r.time_ms >= since_ms)
        ]
