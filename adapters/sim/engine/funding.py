"""Funding on the virtual clock: premium samples, the rate, settlement (perp-mechanics.md §3, §10).

The simulator's own implementation; it never calls ``harness.oracle``.

Premium (§3(a)). At every update whose time is a multiple of ``premium_sample_ms`` (5 s), after
the market maker's refresh, each symbol takes one sample
``premium = [max(0, impactBid − I) − max(0, I − impactAsk)] / I``. The impact bid (ask) is the
average price of a market sell (buy) of the impact notional, ``impact_margin`` (200 USDT) divided
by the initial margin rate at max leverage, i.e. ``200 × max leverage``, walked through the book.
A side whose whole depth cannot absorb the impact notional has no impact price and adds 0 to
that sample: there is no executable evidence of a premium (discount) on that side, and a broken
book should not move funding.

Rate (§3(a)). The interval ``(B − T, B]`` owns the samples taken in it, the one at ``B``
included. At the update at funding time ``B``: ``P̄`` = their mean (0 without samples),
``F8 = P̄ + clamp(r − P̄, −c, +c)`` with ``r`` the 8-hour interest rate and ``c`` the interest clamp,
``F = F8 / (8 / N)`` for an ``N``-hour interval, then ``F`` is capped to ``[floor, cap]`` and
rounded half-even to ``funding_rate_decimals`` (the published rate is the applied rate).
Scaling comes before capping: the cap limits what one settlement may charge (§10: Binance
switches a symbol to hourly when "the funding settlement at settlement time reaches the
cap/floor"; Hyperliquid caps 4 % per hour), so an hourly contract can reach its cap; §15.2 notes
the general cap rule is unverified.

Settlement (§3(a), (d)). The same update rolls the schedule (``last_funding_rate`` = F, the next
funding time one interval on), publishes the mark with it (so P1 restarts from the new rate) and
settles at that mark: every account holding a position in the symbol at that instant — traders,
the market maker, the insurance fund, the scenario trader — pays ``s·Q·mark·F`` (F > 0: longs
pay), from the isolated wallet for an isolated position, else from the cross wallet. Payments
are rounded to the atomic unit with ``ROUND_CEILING`` on the signed payment (payers round up,
receivers down, §11) and the residual, ``≥ 0``, goes to the insurance fund: money is conserved
exactly. Each account gets a ``FUNDING_FEE`` income record (``info`` = the funding time in ms),
the symbol's history a :class:`~harness.model.FundingEvent`, and :attr:`FundingEngine.settlements`
the totals. The engine's liquidation scan ends the update, so an account that funding pushed to
maintenance is liquidated at the same instant.

Interval switch (§10). ``schedule_interval(symbol, hours, effective_ms)`` announces now a change
to ``hours`` ∈ {1, 2, 4, 8}. ``effective_ms`` must be a funding time of the current schedule at
least ``funding_announcement_ms`` (1 h) after the announcement. The settlement at
``effective_ms`` still closes the old interval (old scaling); the next funding time is one new
interval after it. Until then :meth:`FundingEngine.info` shows the pending change; one change
may be pending at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Context, Decimal, localcontext
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING

from harness.errors import ConfigError
from harness.model import FundingEvent, FundingInfo, IncomeType, MarginMode, Side

if TYPE_CHECKING:
    from adapters.sim.engine.accounts import AccountState
    from adapters.sim.engine.book import OrderBook
    from adapters.sim.engine.exchange import Engine

__all__ = ["HOUR_MS", "INTERVAL_HOURS", "FundingEngine", "Settlement", "impact_price"]

HOUR_MS = 3_600_000
INTERVAL_HOURS = (1, 2, 4, 8)
LATE_SETTLEMENT_MS = 60_000  # the funding-paid-to-late-joiner defect settles this much later
ZERO = Decimal(0)
# Payments are products of three 8-decimal numbers: compute them without context rounding.
_EXACT = Context(prec=60)
_ISOLATED = MarginMode.ISOLATED
_SECOND = itemgetter(1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement:
    """One settlement: its inputs, account id -> payment (positive: paid) and the residual."""

    symbol: str
    funding_time_ms: int
    average_premium: Decimal
    sample_count: int
    rate: Decimal
    mark: Decimal
    payments: dict[str, Decimal]
    residual: Decimal


@dataclass(frozen=True, slots=True)
class _Pending:
    hours: int
    effective_ms: int
    announced_ms: int


@dataclass(slots=True)
class _SymbolFunding:
    cap: Decimal
    floor: Decimal
    impact_notional: Decimal
    # (time, premium) of the interval in progress.
    samples: list[tuple[int, Decimal]] = field(default_factory=list)
    # (funding time, rate, P̄, samples): fixed before the mark is published, paid after it.
    due: tuple[int, Decimal, Decimal, int] | None = None
    pending: _Pending | None = None
    history: list[FundingEvent] = field(default_factory=list)


def impact_price(book: OrderBook, resting: Side, notional: Decimal) -> Decimal | None:
    """Average price of a market order for ``notional`` of quote against the ``resting`` side.

    ``resting`` is :attr:`Side.BUY` (the bids, for the impact bid) or :attr:`Side.SELL` (the
    asks). Returns ``notional / quantity filled``, or ``None`` when the side's whole depth is
    worth less than ``notional``.
    """
    depth = 4
    while True:
        levels = book.levels(resting, depth)
        left, qty = notional, ZERO
        for price, size in levels:
            value = price * size
            if value >= left:
                return price if qty == 0 else notional / (qty + left / price)
            left -= value
            qty += size
        if len(levels) < depth:
            return None
        depth *= 4


class FundingEngine:
    """Per-symbol funding state of one :class:`~adapters.sim.engine.exchange.Engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        config = engine.config
        self._sample_ms = config.premium_sample_ms
        if self._sample_ms <= 0 or self._sample_ms % config.update_interval_ms:
            msg = (
                f"premium_sample_ms={self._sample_ms} must be a positive multiple of "
                f"update_interval_ms={config.update_interval_ms}"
            )
            raise ConfigError(msg)
        self._rate_unit = Decimal(1).scaleb(-config.funding_rate_decimals)
        self._symbols: dict[str, _SymbolFunding] = {}
        for symbol, si in config.instruments.items():
            hours = si.instrument.funding_interval_hours
            if hours not in INTERVAL_HOURS:
                msg = f"{symbol}: funding interval {hours} h must be one of {INTERVAL_HOURS}"
                raise ConfigError(msg)
            self._symbols[symbol] = _SymbolFunding(
                cap=si.funding_cap,
                floor=si.funding_floor,
                impact_notional=config.impact_margin * si.instrument.max_leverage,
            )
        self.settlements: list[Settlement] = []

    # ------------------------------------------------------------------ the update cycle
    def on_update(self, symbol: str, now: int) -> bool:
        """Sample the premium when due; at a funding time fix the rate and roll the schedule.

        Returns True when a settlement is due: call :meth:`settle` once the mark is published.
        """
        state = self.engine.prices[symbol]
        sf = self._symbols[symbol]
        if now % self._sample_ms == 0:
            sf.samples.append((now, self._premium(symbol, sf, state.index)))
        if now < state.next_funding_ms:
            return False
        funding_time = state.next_funding_ms
        count = len(sf.samples)
        premium = sum(map(_SECOND, sf.samples), ZERO) / count if count else ZERO
        sf.samples.clear()
        rate = self._rate(sf, premium, state.funding_interval_ms // HOUR_MS)
        pending = sf.pending
        if pending is not None and pending.effective_ms == funding_time:
            state.funding_interval_ms = pending.hours * HOUR_MS
            sf.pending = None
        while state.next_funding_ms <= now:
            state.next_funding_ms += state.funding_interval_ms
        state.last_funding_rate = rate
        sf.due = (funding_time, rate, premium, count)
        return True

    def sample_times(self, start: int, end: int) -> list[int]:
        """The update times in ``[start, end]`` that take a premium sample."""
        first = -(-start // self._sample_ms) * self._sample_ms
        return list(range(first, end + 1, self._sample_ms))

    def add_samples(self, symbol: str, times: list[int]) -> None:
        """The samples of ``times`` on an unchanged book and index (engine/quiet.py)."""
        sf = self._symbols[symbol]
        premium = self._premium(symbol, sf, self.engine.prices[symbol].index)
        sf.samples.extend(zip(times, repeat(premium)))

    def settle(self, symbol: str) -> None:
        """Pay the rate fixed at this update at the mark just published."""
        sf = self._symbols[symbol]
        due, sf.due = sf.due, None
        if due is None:
            return
        engine = self.engine
        funding_time, rate, premium, count = due
        event = FundingEvent(
            symbol=symbol,
            funding_rate=rate,
            funding_time_ms=funding_time,
            mark_price=engine.prices[symbol].mark,
        )
        sf.history.append(event)
        if engine.has("funding-paid-to-late-joiner"):
            engine.schedule(
                engine.clock.now_ms() + LATE_SETTLEMENT_MS,
                lambda: self._pay(event, premium, count),
            )
        else:
            self._pay(event, premium, count)

    def _premium(self, symbol: str, sf: _SymbolFunding, index: Decimal) -> Decimal:
        book = self.engine.books[symbol]
        above = below = ZERO
        # An impact bid is at most the best bid (an impact ask at least the best ask), so the
        # walk is needed only when the best price is on the far side of the index.
        best_bid = book.best_bid()
        if best_bid is not None and best_bid > index:
            bid = impact_price(book, Side.BUY, sf.impact_notional)
            above = max(ZERO, bid - index) if bid is not None else ZERO
        best_ask = book.best_ask()
        if best_ask is not None and best_ask < index:
            ask = impact_price(book, Side.SELL, sf.impact_notional)
            below = max(ZERO, index - ask) if ask is not None else ZERO
        return (above - below) / index

    def _rate(self, sf: _SymbolFunding, premium: Decimal, hours: int) -> Decimal:
        config = self.engine.config
        interest, clamp = config.interest_rate, config.funding_clamp
        if self.engine.has("funding-interest-clamp-ignored"):
            eight_hour = premium + interest
        else:
            eight_hour = premium + min(clamp, max(-clamp, interest - premium))
        rate = min(max(eight_hour * hours / 8, sf.floor), sf.cap)
        return rate.quantize(self._rate_unit, rounding=ROUND_HALF_EVEN)

    def _pay(self, event: FundingEvent, premium: Decimal, count: int) -> None:
        engine = self.engine
        symbol = event.symbol
        flipped = engine.has("funding-sign-flipped")
        on_entry = engine.has("funding-on-entry-notional")
        mark, rate, quantum = event.mark_price, event.funding_rate, engine.quantum
        payments: dict[str, Decimal] = {}
        paid: list[tuple[AccountState, Decimal]] = []  # (account, income) in account order
        # Every position pays at every settlement: the loop reads the fields behind the
        # properties (the wallets' setters stay: they keep the trigger index current).
        with localcontext(_EXACT):
            for acct in list(engine.accounts.values()):
                pos = acct.positions.get(symbol)
                if pos is None:
                    continue
                qty = pos._qty
                if qty == 0:
                    continue
                amount = qty * (pos.entry if on_entry else mark) * rate
                payment = (-amount if flipped else amount).quantize(quantum, rounding=ROUND_CEILING)
                if payment == 0:
                    continue
                if pos._mode is _ISOLATED:
                    pos.isolated_wallet -= payment
                else:
                    acct.cross_wallet -= payment
                payments[acct.account_id] = payment
                paid.append((acct, -payment))
            engine.ledger.incomes(IncomeType.FUNDING_FEE, symbol, str(event.funding_time_ms), paid)
            residual = sum(payments.values(), ZERO).quantize(quantum)
        engine.insurance.cross_wallet += residual
        self.settlements.append(
            Settlement(
                symbol=symbol,
                funding_time_ms=event.funding_time_ms,
                average_premium=premium,
                sample_count=count,
                rate=event.funding_rate,
                mark=event.mark_price,
                payments=payments,
                residual=residual,
            )
        )

    # ------------------------------------------------------------------ schedule and views
    def schedule_interval(self, symbol: str, hours: int, effective_ms: int) -> None:
        """Announce now that ``symbol`` settles every ``hours`` from ``effective_ms`` on (§10).

        Raises:
            ConfigError: ``hours`` is not 1, 2, 4 or 8, equals the current interval, a change is
                already pending, or ``effective_ms`` is not a funding time of the current
                schedule at least ``funding_announcement_ms`` after now.
        """
        engine = self.engine
        state = engine.prices[symbol]
        sf = self._symbols[symbol]
        now = engine.clock.now_ms()
        interval = state.funding_interval_ms
        current = interval // HOUR_MS
        if isinstance(hours, bool) or hours not in INTERVAL_HOURS:
            msg = f"{symbol}: a funding interval of {hours!r} h is not offered; choose 1, 2, 4 or 8"
            raise ConfigError(msg)
        if sf.pending is not None:
            msg = (
                f"{symbol}: a change to {sf.pending.hours} h effective at "
                f"{sf.pending.effective_ms} is already pending; announce the next one after it"
            )
            raise ConfigError(msg)
        if hours == current:
            msg = f"{symbol} already settles every {current} h; there is nothing to change"
            raise ConfigError(msg)
        notice = engine.config.funding_announcement_ms
        earliest = now + notice
        ahead = max(0, -(-(earliest - state.next_funding_ms) // interval))
        first = state.next_funding_ms + ahead * interval
        if effective_ms < earliest or (effective_ms - state.next_funding_ms) % interval:
            msg = (
                f"{symbol}: effective_ms={effective_ms} must be a funding time of the current "
                f"{current} h schedule at least {notice} ms after now ({now}); the earliest "
                f"is {first}"
            )
            raise ConfigError(msg)
        if engine.has("funding-interval-switch-early"):
            new = hours * HOUR_MS
            state.funding_interval_ms = new
            state.next_funding_ms = (now // new + 1) * new
            return
        sf.pending = _Pending(hours=hours, effective_ms=effective_ms, announced_ms=now)

    def info(self, symbol: str) -> FundingInfo:
        """The symbol's funding parameters and pending change (Binance ``fundingInfo``)."""
        config = self.engine.config
        state = self.engine.prices[symbol]
        sf = self._symbols[symbol]
        pending = sf.pending
        return FundingInfo(
            symbol=symbol,
            interval_hours=state.funding_interval_ms // HOUR_MS,
            interest_rate=config.interest_rate,
            clamp=config.funding_clamp,
            cap=sf.cap,
            floor=sf.floor,
            impact_margin_notional=sf.impact_notional,
            next_funding_time_ms=state.next_funding_ms,
            pending_interval_hours=None if pending is None else pending.hours,
            pending_effective_ms=None if pending is None else pending.effective_ms,
            pending_announced_ms=None if pending is None else pending.announced_ms,
        )

    def history(self, symbol: str) -> list[FundingEvent]:
        """Settled rates of ``symbol``, oldest first."""
        return list(self._symbols[symbol].history)

    def samples(self, symbol: str) -> list[tuple[int, Decimal]]:
        """``(time, premium)`` samples of the interval in progress."""
        return list(self._symbols[symbol].samples)
