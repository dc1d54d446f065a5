"""The simulated exchange: accounts, order entry and matching, the update cycle.

Synchronous and free of I/O; time comes from an injected :class:`~harness.clock.VirtualClock`
whose driver is :meth:`Engine.advance_to`, so every way of moving time processes the market's
events in order. One *update* per ``update_interval_ms`` (1 s, like Binance ``markPrice@1s``):
scenario events due, each symbol's feeds and index, the market maker's quotes, one basis sample
(and every 5 s one premium sample), at a funding time the rate and the schedule's roll, the mark,
the funding settlement at that mark (engine/funding.py), then the liquidation scan. Between
updates, trades move the last price and the mark is recomputed (and the scan rerun) after every
request.
"""

from __future__ import annotations

import heapq
import random
import zlib
from collections import deque
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import NamedTuple

from adapters.sim.config import SimConfig
from adapters.sim.engine.accounts import (
    OPEN_STATUSES,
    AccountState,
    FillRecord,
    OrderRecord,
    PositionState,
    max_notional_for_leverage,
)
from adapters.sim.engine.book import OrderBook, RestingOrder
from adapters.sim.engine.concentration import ConcentrationMonitor
from adapters.sim.engine.decimals import commission, negated, product, same_as, signed, total
from adapters.sim.engine.events import AccountReason, ExecutionType
from adapters.sim.engine.instruments import Instruments, max_notional
from adapters.sim.engine.ledger import Ledger
from adapters.sim.engine.liqindex import TriggerIndex
from adapters.sim.engine.monitor import Monitor
from adapters.sim.engine.orders import validate_order
from adapters.sim.engine.params import ParamController
from adapters.sim.engine.prices import Feed, PriceState
from adapters.sim.engine.publisher import Publisher
from adapters.sim.engine.quiet import QuietRuns
from adapters.sim.engine.records import new_fill, trade_names
from adapters.sim.engine.stream_faults import StreamFaultState
from harness.clock import VirtualClock
from harness.errors import ConfigError, Rejected
from harness.model import (
    IncomeType,
    Instrument,
    MarginMode,
    OrderRequest,
    OrderType,
    PricePath,
    Side,
    TimeInForce,
)

__all__ = ["Engine", "PublicTrade"]

ZERO = Decimal(0)
MARKET_MAKER = "market-maker"
INSURANCE = "insurance-fund"
TAPE_LENGTH = 10_000  # public trades kept per symbol (aggTrades, klines, 24hr ticker)


_SIDES = {side.value: side for side in Side}
_BUY, _SELL = Side.BUY, Side.SELL
_GTC, _GTX, _IOC, _FOK = TimeInForce.GTC, TimeInForce.GTX, TimeInForce.IOC, TimeInForce.FOK
_LIMIT = OrderType.LIMIT
# Enum values as plain strings, looked up (an enum's .value is a Python-level descriptor).
_VALUES: dict[object, str] = {m: m.value for e in (Side, OrderType, TimeInForce) for m in e}


class PublicTrade(NamedTuple):
    """One trade through the book, as the venue publishes it (Binance aggTrades/trades)."""

    trade_id: int
    time_ms: int
    price: Decimal
    qty: Decimal
    buyer_maker: bool


class Engine:
    """One simulated venue; deterministic for a :class:`SimConfig` (seed included)."""

    def __init__(self, config: SimConfig, clock: VirtualClock) -> None:
        from adapters.sim.engine.funding import FundingEngine
        from adapters.sim.engine.gateway import Gateway
        from adapters.sim.engine.liquidation import LiquidationEngine
        from adapters.sim.engine.marketmaker import MarketMaker

        self.config = config
        self.clock = clock
        self.defects = config.defects
        # Defects the order path asks about on every request, looked up once.
        has = self.has
        self._round_price = has("price-rounded-to-tick")
        self._round_qty = has("qty-rounded-to-step")
        self._min_notional_inclusive = has("min-notional-off-by-one")
        self._duplicate_cid = has("duplicate-client-id-accepted")
        self._reduce_only_ignored = has("reduce-only-ignored")
        self._post_only_takes = has("post-only-takes")
        self._ioc_rests = has("ioc-remainder-rests")
        self._maker_taker_fee = has("maker-charged-taker-fee")
        self._mark_is_last = has("mark-is-last")
        self._mark_lags = has("mark-lags-index")
        self._upnl_on_last = has("upnl-on-last")
        self._in_update = False  # inside an update (its settle is the one quiet runs compare)
        #: True: run the reference algorithms (linear scans, no closed-form updates...), which
        #: the fast paths must match exactly; tests compare the two.
        self.reference = False
        self.trigger_index = TriggerIndex(self)  # liquidation candidates (engine/liqindex.py)
        self.quiet = QuietRuns(self)  # runs of identical updates (engine/quiet.py)
        self.quantum = Decimal(1).scaleb(-config.balance_decimals)
        self.instruments = Instruments({s: si.instrument for s, si in config.instruments.items()})
        self.books = {s: OrderBook(s) for s in config.instruments}
        self._fees = {s: si.fees for s, si in config.instruments.items()}
        for book in self.books.values():
            book.classify = self._classify
        self.tape = {s: deque[PublicTrade](maxlen=TAPE_LENGTH) for s in config.instruments}
        self.accounts: dict[str, AccountState] = {}
        self.ledger = Ledger(self)
        # Events for whoever listens (engine/events.py); every hook first checks events.active.
        self.publisher = Publisher(self)
        self.events = self.publisher.bus
        # Faults injected on streams (engine/stream_faults.py).
        self.stream_faults = StreamFaultState(hide_gaps=self.has("depth-pu-wrong"))
        self._settling = False
        self._cancelling_all = False
        self._order_seq = 0
        self._trade_seq = dict.fromkeys(config.instruments, 0)
        self._account_seq = 0
        self._update_count = 0
        self._last_update_ms = clock.now_ms()  # construction counts as the update at its time
        self._dirty: set[str] = set()
        self._events: list[tuple[int, int, Callable[[], None]]] = []
        self._event_seq = 0
        # Population name -> account ids a loaded scenario created (engine/scenario.py).
        self.scenario_accounts: dict[str, list[str]] = {}
        self.prices = {s: self._initial_prices(s) for s in config.instruments}
        self.market_maker = MarketMaker(self, self._add_account(MARKET_MAKER, "market maker", True))
        self.insurance = self._add_account(INSURANCE, "insurance fund", True)
        self.insurance.cross_wallet = config.insurance_fund
        self.market_maker.account.cross_wallet = config.market_maker_balance
        self.liquidator = LiquidationEngine(self)
        self.funding = FundingEngine(self)
        self.gateway = Gateway(self)  # the front door of both the HTTP and in-process venue
        # Dynamic parameters behind guardrails (engine/params.py); off until configured.
        self.params = ParamController(self)
        # engine/cascade.py reads engine/views.py, which imports this module: import it late.
        from adapters.sim.engine.cascade import LiquidationLatency

        self.concentration = ConcentrationMonitor(self)  # shares, levels, size advice
        self.liquidation_latency = LiquidationLatency(self)  # crossing -> liquidation delay
        self.monitor = Monitor(self)  # anomaly alerts over the order flow (engine/monitor.py)
        now = clock.now_ms()
        for symbol, state in self.prices.items():
            self.market_maker.requote(symbol)
            book = self.books[symbol]
            state.sample_basis(book.best_bid(), book.best_ask())
            state.publish_mark(state.compute_mark(now), now)
        clock.attach_driver(self.advance_to)

    # ------------------------------------------------------------------ setup
    def _initial_prices(self, symbol: str) -> PriceState:
        si = self.config.instruments[symbol]
        now = self.clock.now_ms()
        rng = random.Random(  # noqa: S311 - a seeded simulation, not cryptography
            self.config.seed * 1_000_003 + zlib.crc32(symbol.encode())
        )
        interval = si.instrument.funding_interval_hours * 3_600_000
        feeds = [
            Feed(name=f"{symbol}-src{i + 1}", weight=w, price=si.initial_price, updated_ms=now)
            for i, w in enumerate(si.feed_weights)
        ]
        state = PriceState(
            symbol=symbol,
            feeds=feeds,
            noise_bps=si.feed_noise_bps,
            rng=rng,
            quantum=Decimal(1).scaleb(-self.config.price_decimals),
            stale_ms=self.config.stale_feed_ms,
            outlier_threshold=self.config.outlier_threshold,
            basis_samples=deque(maxlen=self.config.basis_samples),
            path=PricePath(points=((0, si.initial_price),), name="steady"),
            path_start_ms=now,
            index=si.initial_price,
            last_price=si.initial_price,
            last_funding_rate=self.config.initial_funding_rate,
            interest_rate=self.config.interest_rate,
            next_funding_ms=(now // interval + 1) * interval,
            funding_interval_ms=interval,
        )
        state.update_feeds(now)
        state.index = state.compute_index(now)
        return state

    def _add_account(self, account_id: str, label: str, exempt: bool = False) -> AccountState:
        acct = AccountState(account_id=account_id, label=label, cross_wallet=ZERO, exempt=exempt)
        self.accounts[account_id] = acct
        self.trigger_index.pending.append(acct)
        return acct

    def _classify(self, order: RestingOrder) -> None:
        """Placement time and youth of an order put on a book without them (the book's hook)."""
        acct = self.accounts.get(order.account_id)
        rec = acct.orders.get(order.order_id) if acct is not None else None
        order.time_ms = rec.time_ms if rec is not None else self.clock.now_ms()
        order.young = acct is not None and not acct.exempt

    def create_account(self, wallet: Decimal, label: str = "") -> AccountState:
        if wallet < 0:
            msg = f"{wallet=} must be >= 0"
            raise ConfigError(msg)
        self._account_seq += 1
        acct = self._add_account(
            f"acct-{self._account_seq}", label or f"account {self._account_seq}"
        )
        acct.cross_wallet = wallet
        if wallet:
            self.ledger.income(acct, IncomeType.TRANSFER, wallet, "", "deposit")
        self.flush_events()
        return acct

    def account(self, account_id: str) -> AccountState:
        return self.accounts[account_id]

    def instrument(self, symbol: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None:
            raise Rejected(-1121, "Invalid symbol.")
        return inst

    def has(self, defect: str) -> bool:
        return defect in self.defects

    def round_balance(self, value: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
        return value.quantize(self.quantum, rounding=rounding)

    def _on_balance_grid(self, amount: Decimal) -> bool:
        """Whether ``amount`` is a whole number of balance quanta (False past 28 digits)."""
        try:
            return amount == self.round_balance(amount)
        except InvalidOperation:  # e.g. 1E+30: more digits than the context holds
            return False

    # ------------------------------------------------------------------ time
    def schedule(self, at_ms: int, action: Callable[[], None]) -> None:
        self._event_seq += 1
        heapq.heappush(self._events, (at_ms, self._event_seq, action))

    def advance_to(self, target_ms: int) -> None:
        """Process every scheduled event and update up to ``target_ms`` (the clock's driver)."""
        interval = self.config.update_interval_ms
        while True:
            # The first boundary after the last update, and not behind the clock: an event that
            # lands exactly on a boundary must not swallow that boundary's update.
            next_update = max(
                (self._last_update_ms // interval + 1) * interval,
                -(-self.clock.now_ms() // interval) * interval,
            )
            next_event = self._events[0][0] if self._events else None
            if next_event is not None and next_event <= min(next_update, target_ms):
                at, _, action = heapq.heappop(self._events)
                self.clock.set(max(at, self.clock.now_ms()))
                action()
                self.settle()
                continue
            if next_update > target_ms:
                return
            if self.quiet.skip(next_update, target_ms):
                continue  # a run of identical updates, taken in closed form
            self.clock.set(next_update)
            self._update()

    def _update(self) -> None:
        now = self.clock.now_ms()
        self._last_update_ms = now
        self._update_count += 1
        lagging_mark = self.has("mark-lags-index") and self._update_count % 5 != 0
        for symbol, state in self.prices.items():
            state.update_feeds(now)
            index = state.compute_index(now)
            if index != state.index:
                state.index = index
                self.market_maker.index_moved(symbol, index)
            self.market_maker.refresh(symbol)
            book = self.books[symbol]
            state.sample_basis(book.best_bid(), book.best_ask())
            # At a funding time the rate is fixed and the schedule rolls first, so the mark
            # published below carries the new rate (P1) and the settlement pays at that mark.
            settling = self.funding.on_update(symbol, now)
            if not lagging_mark:
                state.publish_mark(
                    state.compute_mark(now, mark_is_last=self.has("mark-is-last")), now
                )
            if settling:
                self.funding.settle(symbol)
        self._dirty.clear()
        if self.params.active:
            self.params.on_update(now)
        self.monitor.on_update()
        if self.events.active:
            self.publisher.marks()
            self.publisher.margin_calls()
        # Liquidations at this update trade against other accounts' orders and move the last
        # price: rescan (and remark) until no account is left at or below maintenance.
        self._in_update = True
        try:
            self.settle()
        finally:
            self._in_update = False

    def settle(self) -> None:
        """After a request or event: recompute marks that trades touched, then scan.

        Ends the operation: what it changed is published (:meth:`flush_events`).
        """
        if not self._dirty and not self._in_update and self.liquidator.clean():
            # No mark to recompute and nothing the trigger reads changed since a scan found
            # nothing (a passive order, a cancel): the scan would find nothing again.
            self.quiet.scanned(False)
            if self.events.active:
                self.publisher.flush()
            return
        now = self.clock.now_ms()
        lagging_mark = self._mark_lags
        self._settling = True
        found_nothing = False
        try:
            for _ in range(100):
                if self._dirty:
                    dirty, self._dirty = self._dirty, set()
                    if not lagging_mark:
                        for symbol in sorted(dirty):
                            state = self.prices[symbol]
                            state.publish_mark(
                                state.compute_mark(now, mark_is_last=self._mark_is_last), now
                            )
                if not self._scan():
                    found_nothing = True
                    break
        finally:
            self._settling = False
        if self._in_update:
            self.quiet.scanned(found_nothing)
        else:
            self.quiet.scanned(False)  # a request's settle: quiet runs wait for an update's
        if self.events.active:
            self.publisher.flush()

    def flush_events(self) -> None:
        """End of an operation that does not settle: publish what it changed (engine/events.py).

        A no-op while nobody listens, and inside :meth:`settle`, which publishes at its end.
        """
        if self.events.active and not self._settling:
            self.publisher.flush()

    def _scan(self) -> bool:
        return self.liquidator.scan() > 0

    # ------------------------------------------------------------------ prices
    def mark(self, symbol: str) -> Decimal:
        return self.prices[symbol].mark

    def risk_price(self, symbol: str) -> Decimal:
        """The price unrealized PnL and margin use: the mark (last under ``upnl-on-last``)."""
        state = self.prices[symbol]
        return state.last_price if self._upnl_on_last else state.mark

    def set_price_path(self, symbol: str, path: PricePath) -> None:
        self.instrument(symbol)
        self.prices[symbol].set_path(path, self.clock.now_ms())

    # ------------------------------------------------------------------ orders
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
            if share:
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

    # ------------------------------------------------------------------ settings
    def set_leverage(self, account_id: str, symbol: str, leverage: int) -> int:
        acct = self.accounts[account_id]
        inst = self.instrument(symbol)
        if not 1 <= leverage <= inst.max_leverage:
            raise Rejected(-4028, f"Leverage {leverage} is not valid")
        pos = acct.position(symbol, self.config.default_leverage)
        if abs(pos.qty) * self.mark(symbol) > max_notional_for_leverage(inst.brackets, leverage):
            raise Rejected(-2027, "Exceeded the maximum allowable position at current leverage.")
        previous = pos.leverage
        pos.leverage = leverage
        if (
            leverage < previous
            and not acct.exempt
            and not self.ledger.available_at_least(acct, ZERO)
        ):
            # Lower leverage raises the margin of open orders and cross positions (Binance -2028).
            pos.leverage = previous
            msg = "Leverage is smaller than permitted: insufficient margin balance."
            raise Rejected(-2028, msg)
        acct.leverages[symbol] = leverage
        self.monitor.on_leverage(acct, symbol, previous, leverage)
        if self.events.active:
            self.publisher.config(account_id, symbol, leverage=leverage)
        return leverage

    def set_margin_mode(self, account_id: str, symbol: str, mode: MarginMode) -> None:
        acct = self.accounts[account_id]
        self.instrument(symbol)
        pos = acct.position(symbol, self.config.default_leverage)
        if pos.margin_mode is mode:
            raise Rejected(-4046, "No need to change margin type.")
        if self._has_open_orders(acct, symbol):
            raise Rejected(-4047, "Margin type cannot be changed if there exists open orders.")
        if pos.qty != 0:
            raise Rejected(-4048, "Margin type cannot be changed if there exists position.")
        pos.margin_mode = mode
        acct.margin_modes[symbol] = mode
        if self.events.active:
            self.publisher.config(account_id, symbol, margin_mode=mode)

    def _has_open_orders(self, acct: AccountState, symbol: str) -> bool:
        if not self.reference and not acct.exempt:
            return acct.open_counts.get(symbol, 0) > 0  # kept by the order records
        return any(
            r.symbol == symbol and r.status in ("NEW", "PARTIALLY_FILLED")
            for r in acct.orders.values()
        )

    def add_isolated_margin(self, account_id: str, symbol: str, amount: Decimal) -> None:
        """Move margin between the cross wallet and an isolated position (Binance positionMargin).

        Adding needs that much available cross balance (-4050); removing must leave at least the
        position's initial margin at the mark (-4051).
        """
        acct = self.accounts[account_id]
        self.instrument(symbol)
        pos = acct.positions.get(symbol)
        if pos is None or pos.qty == 0 or pos.margin_mode is not MarginMode.ISOLATED:
            raise Rejected(-2024, "Position is not sufficient.")
        if not amount.is_finite() or amount == 0 or not self._on_balance_grid(amount):
            raise Rejected(
                -1102, "Mandatory parameter 'amount' was not sent, was empty/null, or malformed."
            )
        if amount > 0 and not self.ledger.available_at_least(acct, amount):
            raise Rejected(-4050, "Cross balance insufficient.")
        if amount < 0:
            required = abs(pos.qty) * self.mark(symbol) / pos.leverage
            if pos.isolated_wallet + amount < required:
                raise Rejected(-4051, "Isolated balance insufficient.")
        pos.isolated_wallet += amount
        acct.cross_wallet -= amount
        if self.events.active:
            self.publisher.touch(acct, AccountReason.MARGIN_TRANSFER, symbol)
        self.settle()

    def positions_of(self, account_id: str) -> list[PositionState]:
        return self.accounts[account_id].open_positions()
