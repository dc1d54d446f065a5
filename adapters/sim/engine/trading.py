"""Order entry: the engine's request path for orders (a mixin of ``Engine``).

:class:`OrderFlow` holds what a placed or cancelled order goes through — filters, the margin
check at the worst fill the book allows, the order record — and hands a crossing order to
matching (engine/matching.py: price-time priority with self-trade prevention, fees, positions
and realized PnL on every fill, mixed in here); it leaves the rest to the engine it is mixed
into (engine/exchange.py: the update cycle, prices, the settle after every request). The
annotations below, with those of :class:`~adapters.sim.engine.matching.Matching`, are the parts
of the engine the order path reads.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from adapters.sim.engine.accounts import OPEN_STATUSES, AccountState, OrderRecord
from adapters.sim.engine.book import RestingOrder
from adapters.sim.engine.events import ExecutionType
from adapters.sim.engine.instruments import Instruments, max_notional
from adapters.sim.engine.matching import Matching, PublicTrade
from adapters.sim.engine.monitor import Monitor
from adapters.sim.engine.order_record import ZERO
from adapters.sim.engine.orders import validate_order
from harness.errors import Rejected
from harness.model import (
    Instrument,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)

__all__ = ["OrderFlow", "PublicTrade"]

_BUY = Side.BUY
_GTC, _GTX, _IOC, _FOK = TimeInForce.GTC, TimeInForce.GTX, TimeInForce.IOC, TimeInForce.FOK
_LIMIT = OrderType.LIMIT
# Enum values as plain strings, looked up (an enum's .value is a Python-level descriptor).
_VALUES: dict[object, str] = {m: m.value for e in (Side, OrderType, TimeInForce) for m in e}


class OrderFlow(Matching):
    """Placing and cancelling orders; mixed into ``Engine``, which sets these."""

    instruments: Instruments
    monitor: Monitor
    _order_seq: int
    _settling: bool
    _cancelling_all: bool
    # Defects the order path asks about on every request, looked up once by the engine.
    _round_price: bool
    _round_qty: bool
    _min_notional_inclusive: bool
    _duplicate_cid: bool
    _reduce_only_ignored: bool
    _post_only_takes: bool
    _ioc_rests: bool
    settle: Callable[[], None]
    flush_events: Callable[[], None]
    instrument: Callable[[str], Instrument]

    @property
    def order_seq(self) -> int:
        """The last order id given out."""
        return self._order_seq

    def _next_order_id(self) -> int:
        self._order_seq += 1
        return self._order_seq

    def new_record(
        self,
        acct: AccountState,
        *,
        symbol: str,
        side: Side,
        type_: OrderType,
        qty: Decimal,
        price: Decimal | None,
        tif: TimeInForce | None,
        reduce_only: bool = False,
        client_id: str | None = None,
        liquidation: bool = False,
    ) -> OrderRecord:
        return self._record(
            acct, symbol, side, type_, qty, price, tif, reduce_only, client_id, liquidation
        )

    def _record(
        self,
        acct: AccountState,
        symbol: str,
        side: Side,
        type_: OrderType,
        qty: Decimal,
        price: Decimal | None,
        tif: TimeInForce | None,
        reduce_only: bool,
        client_id: str | None,
        liquidation: bool,
    ) -> OrderRecord:
        self._order_seq = order_id = self._order_seq + 1
        now = self.clock.now_ms()
        # A generated client id is made on demand, not stored (OrderRecord.client_order_id).
        client_order_id = client_id or None
        rec = OrderRecord(
            order_id,
            client_order_id,
            acct.account_id,
            symbol,
            _VALUES[side],
            _VALUES[type_],
            _VALUES[tif] if tif else None,
            price,
            qty,
            reduce_only,
            now,
            ZERO,
            ZERO,
            "NEW",
            now,
            liquidation,
            account=acct,
        )
        acct.orders[order_id] = rec
        if client_order_id is not None:
            acct.client_ids[client_order_id] = order_id
        return rec

    def place_order(self, account_id: str, req: OrderRequest) -> OrderRecord:
        acct = self.accounts[account_id]
        symbol = req.symbol
        inst = self.instruments.get(symbol)
        if inst is None:
            raise Rejected(-1121, "Invalid symbol.")
        book = self.books[symbol]
        price, qty = validate_order(
            inst,
            req,
            reference_price=self.prices[symbol].mark,
            round_price=self._round_price,
            round_qty=self._round_qty,
            min_notional_inclusive=self._min_notional_inclusive,
            remember=not self.reference,
        )
        cid = req.client_order_id
        taken = cid is not None and acct.order_id_for(cid) is not None
        if taken and not self._duplicate_cid:
            raise Rejected(-4116, "clientOrderId is duplicated")
        reduce_only = req.reduce_only and not self._reduce_only_ignored
        pos_qty = ZERO
        if reduce_only:
            pos = acct.positions.get(symbol)
            pos_qty = pos.qty if pos else ZERO
            if pos_qty == 0 or (pos_qty > 0) == (req.side is Side.BUY):
                raise Rejected(-2022, "ReduceOnly Order is rejected.")
        tif = req.time_in_force
        side = req.side
        # Whether the order meets the book: without, there is nothing to walk or to fill.
        crossing = price is None or book.crosses(side, price)
        if crossing and tif is _GTX and not self._post_only_takes and price is not None:
            raise Rejected(
                -5022,
                "Due to the order could not be executed as maker, the Post Only order will be "
                "rejected.",
            )
        if tif is _FOK:
            fillable = book.available(side, price, exclude_account=acct.account_id)
            if reduce_only:
                fillable = min(fillable, abs(pos_qty))
            if fillable < qty:
                raise Rejected(
                    -5021,
                    "Due to the order could not be filled immediately, the FOK order has been "
                    "rejected.",
                )
        if not reduce_only and not acct._exempt:
            self._check_margin(acct, inst, side, qty, price, crossing)
        rec = self._record(
            acct,
            symbol,
            side,
            req.type,
            qty,
            price,
            tif,
            reduce_only,
            None if taken else cid,
            False,
        )
        if cid is not None and cid != rec.client_order_id:
            # duplicate-client-id-accepted: the venue keeps both orders under the same id; the
            # new one's generated id stays indexed (its own, no longer derived from the order).
            acct.client_ids[rec.client_order_id] = rec.order_id
            rec.client_order_id = cid
        events = self.events.active
        if events:
            self.publisher.order(acct, rec, ExecutionType.NEW)
        # An order that does not cross finds nothing to match: skip the walk.
        if crossing:
            self.match(acct, rec, price)
        executed = rec._executed
        remaining = qty - executed
        rests = req.type is _LIMIT and (
            tif is _GTC or tif is _GTX or (tif is _IOC and self._ioc_rests)
        )
        if remaining > 0 and rests and rec._status != "EXPIRED":
            assert price is not None  # noqa: S101 - a LIMIT order has a price
            book.add(
                RestingOrder(
                    rec.order_id,
                    acct.account_id,
                    side,
                    price,
                    remaining,
                    rec.time_ms,
                    not acct._exempt,
                )
            )
            rec.status = "PARTIALLY_FILLED" if executed else "NEW"
        elif remaining > 0:
            rec.status = "EXPIRED"
        if events and rec._status == "EXPIRED":
            self.publisher.order(acct, rec, ExecutionType.EXPIRED)
        self.monitor.on_order(acct, rec)
        self.settle()
        return rec

    def _check_margin(
        self,
        acct: AccountState,
        inst: Instrument,
        side: Side,
        qty: Decimal,
        price: Decimal | None,
        crossing: bool = True,
    ) -> None:
        """Room for the order at the worst price it can fill at (-2027, -2019).

        ``crossing`` False: the order meets nothing on the book (a passive limit), so it can
        only fill at its own price later: no walk of the book.
        """
        if acct._exempt:
            return
        symbol = inst.symbol
        pos = acct.positions.get(symbol)
        if pos is None:
            pos = acct.position(symbol, self.config.default_leverage)
        held = pos._qty
        reducing = ZERO
        if held != 0 and (held > 0) != (side is _BUY):
            reducing = min(qty, abs(held))
        increase = qty - reducing
        if increase <= 0:
            return
        ref = price if price is not None else self.prices[symbol].mark
        # Isolated margin and the fee are taken at the fill prices: a sell fills at or above its
        # limit (from the best bid down) and a market buy walks the asks. Price the check at the
        # worst fill the book allows, or a fill can take more from the cross wallet than checked.
        # (An order that does not cross has no such fill: the walk would give 0.)
        if crossing or self.reference:
            ref = max(ref, self._worst_fill(acct, symbol, side, qty, price))
        leverage = pos.leverage
        projected = (abs(held) - reducing + increase) * ref
        if projected > max_notional(inst.brackets, leverage):
            raise Rejected(-2027, "Exceeded the maximum allowable position at current leverage.")
        # The fill also debits the commission from the cross wallet: reserve it at the taker rate
        # (the worst case), or an isolated-only account can end with a negative cross wallet.
        fee = qty * ref * self._fees[symbol].taker
        required = increase * ref / leverage + fee
        if not self.ledger.available_at_least(acct, required):
            raise Rejected(-2019, "Margin is insufficient.")

    def _worst_fill(
        self, acct: AccountState, symbol: str, side: Side, qty: Decimal, limit: Decimal | None
    ) -> Decimal:
        """The highest price ``qty`` would fill at against the book now (0 if none)."""
        book = self.books[symbol]
        if side is Side.SELL:
            bid = book.best_bid()
            return bid if bid is not None and (limit is None or bid >= limit) else ZERO
        if limit is not None and not book.crosses(side, limit):
            return ZERO  # nothing to walk
        worst, left = ZERO, qty
        for order in book.iter_matchable(side, limit):
            if order.account_id != acct.account_id:
                worst, left = order.price, left - order.remaining
                if left <= 0:
                    break
        return worst

    def cancel_order(
        self, account_id: str, symbol: str, order_id: int | None, client_id: str | None
    ) -> OrderRecord:
        acct = self.accounts[account_id]
        if symbol not in self.instruments:
            raise Rejected(-1121, "Invalid symbol.")
        rec = self._find(acct, symbol, order_id, client_id)
        if rec is None or rec.status not in OPEN_STATUSES:
            raise Rejected(-2011, "Unknown order sent.")
        self.books[symbol].remove(rec.order_id)
        rec.status = "CANCELED"
        rec.update_time_ms = self.clock.now_ms()
        self.monitor.on_cancel(acct, rec, forced=self._settling)
        if self.events.active:
            self.publisher.order(acct, rec, ExecutionType.CANCELED)
            if not self._cancelling_all:
                self.flush_events()
        return rec

    def cancel_all(self, account_id: str, symbol: str | None = None) -> list[OrderRecord]:
        acct = self.accounts[account_id]
        out = []
        self._cancelling_all = True
        try:
            for rec in list(acct.orders.values()):
                if rec.status in ("NEW", "PARTIALLY_FILLED") and symbol in (None, rec.symbol):
                    out.append(self.cancel_order(account_id, rec.symbol, rec.order_id, None))
        finally:
            self._cancelling_all = False
        self.flush_events()
        return out

    def get_order(
        self, account_id: str, symbol: str, order_id: int | None, client_id: str | None
    ) -> OrderRecord:
        self.instrument(symbol)
        rec = self._find(self.accounts[account_id], symbol, order_id, client_id)
        if rec is None:
            raise Rejected(-2013, "Order does not exist.")
        return rec

    @staticmethod
    def _find(
        acct: AccountState, symbol: str, order_id: int | None, client_id: str | None
    ) -> OrderRecord | None:
        if order_id is None and client_id is not None:
            order_id = acct.order_id_for(client_id)
        if order_id is None:
            return None
        rec = acct.orders.get(order_id)
        return rec if rec is not None and rec.symbol == symbol else None
