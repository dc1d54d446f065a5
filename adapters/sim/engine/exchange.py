"""The simulated exchange: accounts, the update cycle, settings (order entry and matching:
engine/trading.py, mixed into :class:`Engine`).

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
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from adapters.sim.config import SimConfig
from adapters.sim.engine.accounts import (
    AccountState,
    PositionState,
    max_notional_for_leverage,
)
from adapters.sim.engine.book import OrderBook, RestingOrder
from adapters.sim.engine.concentration import ConcentrationMonitor
from adapters.sim.engine.events import AccountReason
from adapters.sim.engine.instruments import Instruments
from adapters.sim.engine.ledger import Ledger
from adapters.sim.engine.liqindex import TriggerIndex
from adapters.sim.engine.monitor import Monitor
from adapters.sim.engine.params import ParamController
from adapters.sim.engine.prices import Feed, PriceState
from adapters.sim.engine.publisher import Publisher
from adapters.sim.engine.quiet import QuietRuns
from adapters.sim.engine.stream_faults import StreamFaultState
from adapters.sim.engine.trading import OrderFlow, PublicTrade
from harness.clock import VirtualClock
from harness.errors import ConfigError, Rejected
from harness.model import (
    IncomeType,
    Instrument,
    MarginMode,
    PricePath,
)

__all__ = ["Engine", "PublicTrade"]

ZERO = Decimal(0)
MARKET_MAKER = "market-maker"
INSURANCE = "insurance-fund"
TAPE_LENGTH = 10_000  # public trades kept per symbol (aggTrades, klines, 24hr ticker)


class Engine(OrderFlow):
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
        self._fee_on_mark = has("fee-on-mark-price")
        self._mark_is_last = has("mark-is-last")
        self._mark_lags = has("mark-lags-index")
        self._upnl_on_last = has("upnl-on-last")
        self._realized_on_mark = has("realized-pnl-on-mark")
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
        reference = self.reference
        for symbol, state in self.prices.items():
            if reference:
                state.update_feeds_reference(now)
            else:
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
