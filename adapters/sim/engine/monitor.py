"""The venue's anomaly monitor: streaming detectors over the order flow (DESIGN.md item 10).

Always on, like a venue's surveillance desk: the engine calls :meth:`Monitor.on_order`,
:meth:`Monitor.on_cancel` and :meth:`Monitor.on_leverage` from order entry and
:meth:`Monitor.on_update` once per update. Each detector keeps a sliding window of virtual time
(a deque per key, pruned as events arrive: O(1) amortized per event) and fires an
:class:`~harness.alerts.Alert` when its statistic reaches its threshold. A detector that fired
for a key is *disarmed* until its statistic is seen below the threshold again, so one episode
raises one alert rather than one per event. Exempt accounts (the market maker, the insurance
fund) are not watched.

Detectors, statistics and thresholds (PROTOCOL.md "Alerts"; harness.alerts.MonitorRules):

* ``cancel-burst`` — per account and symbol, the number of cancels within
  ``(t - CANCEL_WINDOW_MS, t]``; fires at ``>= CANCEL_BURST_COUNT`` (20 in 10 s). Cancels the
  liquidation engine makes for the account are not the account's flow and are not counted.
  Evidence: the cancels and adds (order placements) in the window.
* ``leverage-cluster`` — per symbol, the number of distinct accounts that *raised* their
  leverage within ``(t - LEVERAGE_WINDOW_MS, t]``; fires at ``>= LEVERAGE_CLUSTER_ACCOUNTS``
  (5 in 60 s).
* ``thin-book-cluster`` — per symbol and side, evaluated when a watched order comes to rest
  within ``CLUSTER_BAND_BPS`` of the mark: of the side's resting notional in that band, the
  share owned by watched orders placed within ``CLUSTER_WINDOW_MS``; fires when that share is
  ``>= CLUSTER_SHARE`` (0.75) while the rest of the band's depth is below ``THIN_DEPTH``
  (20 000 USDT): new orders crowding a book that was thin without them.
* ``cascade-risk`` — per symbol and position side, at an update every ``CASCADE_EVERY_MS``
  (5 s): the notional (at the mark) of watched positions that a mark move of
  ``CASCADE_BAND_BPS`` (2 %) against them would put at or below maintenance (isolated: the
  position's wallet; cross: the account's whole cross bucket, the other symbols at their
  marks), divided by the notional of the opposite book side within that band of the mark
  (the liquidity their forced orders meet, floored at 1 USDT); fires at ``>= CASCADE_RATIO``
  (1): the forced flow a small move would release exceeds the depth that must absorb it
  (perp-mechanics.md §14, ``Λ(P)`` against book depth). This is the early warning: it counts
  liquidations that *would* happen, before any does.

Statistics are published rounded down to 6 decimals (ratios, shares) and compared as published.

The cascade-risk detector is mixed in from engine/monitor_cascade.py; the sliding windows and
the rounding of published statistics are in engine/monitor_stats.py.
"""

from __future__ import annotations

from bisect import bisect_left
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING

from adapters.sim.engine.accounts import AccountState, OrderRecord
from adapters.sim.engine.monitor_cascade import (
    CASCADE_BAND_BPS,
    CASCADE_EVERY_MS,
    CASCADE_RATIO,
    LATE_WINDOW_MS,
    CascadeRisk,
)
from adapters.sim.engine.monitor_stats import (
    BPS,
    RATIO_PLACES,
    ZERO,
    _Distinct,
    _plain,
    _ratio,
    _Windows,
)
from harness.alerts import (
    CANCEL_BURST,
    LEVERAGE_CLUSTER,
    THIN_BOOK_CLUSTER,
    Alert,
)
from harness.model import Side

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = [
    "CANCEL_BURST_COUNT",
    "CANCEL_WINDOW_MS",
    "CASCADE_BAND_BPS",
    "CASCADE_EVERY_MS",
    "CASCADE_RATIO",
    "CLUSTER_BAND_BPS",
    "CLUSTER_SHARE",
    "CLUSTER_WINDOW_MS",
    "LATE_WINDOW_MS",
    "LEVERAGE_CLUSTER_ACCOUNTS",
    "LEVERAGE_WINDOW_MS",
    "RATIO_PLACES",
    "THIN_DEPTH",
    "Monitor",
]

# Book totals are summed exactly (no rounding at any size).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
_ADD, _SUB, _MUL = _EXACT.add, _EXACT.subtract, _EXACT.multiply

#: cancel-burst: sliding window (ms) and the number of cancels in it that fires.
CANCEL_WINDOW_MS = 10_000
CANCEL_BURST_COUNT = 20
#: leverage-cluster: sliding window (ms) and the number of distinct raising accounts that fires.
LEVERAGE_WINDOW_MS = 60_000
LEVERAGE_CLUSTER_ACCOUNTS = 5
#: thin-book-cluster: band around the mark (bps), how recent an order counts as new (ms), the
#: depth (USDT notional) below which the band is thin, and the share of new orders that fires.
CLUSTER_BAND_BPS = Decimal(50)
CLUSTER_WINDOW_MS = 60_000
THIN_DEPTH = Decimal(20_000)
CLUSTER_SHARE = Decimal("0.75")

_SIDE_VALUES = {side: side.value for side in Side}  # (an enum's .value is a Python property)


class Monitor(CascadeRisk):
    """The detectors of the module docstring; :attr:`alerts` in the order they fired."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.alerts: list[Alert] = []
        self._cancels = _Windows(CANCEL_WINDOW_MS)
        self._adds = _Windows(CANCEL_WINDOW_MS)
        # leverage-window-too-short: the window in seconds read as milliseconds.
        short = engine.has("leverage-window-too-short")
        self._leverage_window_ms = LEVERAGE_WINDOW_MS // 1000 if short else LEVERAGE_WINDOW_MS
        self._raises: dict[str, _Distinct] = {}
        # Keys whose detector fired and has not yet seen its statistic below threshold.
        self._disarmed: set[tuple[str, ...]] = set()
        self._cascade_fired: set[tuple[str, int]] = set()  # (symbol, sign) disarmed
        self._cascade_at: int | None = None  # when cascade-risk was last evaluated
        # The thin-book test may read the book's level totals, which class an order by its
        # placement time: not when a defect rewrites that time afterwards.
        self._level_totals = not engine.has("transact-time-at-receipt")
        self._blind_to_cancels = engine.has("monitor-blind-to-cancels")
        self._counts_new = engine.has("thin-book-counts-new-orders")
        self._edges: dict[str, tuple[Decimal, Decimal, Decimal]] = {}  # symbol -> mark, edges

    # ------------------------------------------------------------------ alerts
    def since(self, since_ms: int | None = None) -> list[Alert]:
        """Alerts fired at or after ``since_ms`` (all when None), oldest first."""
        if since_ms is None:
            return list(self.alerts)
        return self.alerts[bisect_left(self.alerts, since_ms, key=lambda a: a.time_ms) :]

    def _fire(
        self,
        key: tuple[str, ...],
        detector: str,
        symbol: str,
        account_id: str | None,
        statistic: Decimal,
        threshold: Decimal,
        evidence: dict[str, str],
    ) -> None:
        if key in self._disarmed:
            return
        self._disarmed.add(key)
        self.alerts.append(
            Alert(
                seq=len(self.alerts) + 1,
                time_ms=self.engine.clock.now_ms(),
                detector=detector,
                symbol=symbol,
                account_id=account_id,
                statistic=statistic,
                threshold=threshold,
                evidence=MappingProxyType(evidence),  # read-only: alerts are records
            )
        )

    def _rearm(self, key: tuple[str, ...]) -> None:
        self._disarmed.discard(key)

    # ------------------------------------------------------------------ order flow
    def on_order(self, acct: AccountState, rec: OrderRecord) -> None:
        """An order was placed (after matching; it may rest on the book)."""
        if acct._exempt:
            return
        engine = self.engine
        symbol = rec.symbol
        self._adds.add((acct.account_id, symbol), engine.clock.now_ms())
        resting = engine.books[symbol].get(rec.order_id)
        if resting is not None:
            self._thin_book(symbol, resting.side, resting.price)

    def on_cancel(self, acct: AccountState, rec: OrderRecord, *, forced: bool) -> None:
        """An order was cancelled; ``forced``: by the liquidation engine, not by the account."""
        if forced or acct._exempt or self._blind_to_cancels:
            return
        now = self.engine.clock.now_ms()
        key = (acct.account_id, rec.symbol)
        count = self._cancels.add(key, now)
        if count < CANCEL_BURST_COUNT:
            if self._disarmed:
                self._rearm((CANCEL_BURST, *key))
            return
        alert_key = (CANCEL_BURST, *key)
        added = self._adds.count(key, now)
        evidence = {
            "cancels": str(count),
            "adds": str(added),
            "window_ms": str(CANCEL_WINDOW_MS),
            "first_cancel_ms": str(self._cancels.first(key)),
        }
        self._fire(
            alert_key,
            CANCEL_BURST,
            rec.symbol,
            acct.account_id,
            Decimal(count),
            Decimal(CANCEL_BURST_COUNT),
            evidence,
        )

    def on_leverage(self, acct: AccountState, symbol: str, previous: int, leverage: int) -> None:
        """An account's leverage on ``symbol`` changed from ``previous`` to ``leverage``."""
        if acct.exempt or leverage <= previous:
            return
        window = self._raises.get(symbol)
        if window is None:
            window = self._raises[symbol] = _Distinct(self._leverage_window_ms)
        distinct = window.add(self.engine.clock.now_ms(), acct.account_id)
        alert_key = (LEVERAGE_CLUSTER, symbol)
        if distinct < LEVERAGE_CLUSTER_ACCOUNTS:
            self._rearm(alert_key)
            return
        evidence = {
            "accounts": ",".join(window.counts),
            "raises": str(len(window.events)),
            "window_ms": str(self._leverage_window_ms),
            "first_raise_ms": str(window.events[0][0]),
            "last_change": f"{acct.account_id} {previous}x->{leverage}x",
        }
        self._fire(
            alert_key,
            LEVERAGE_CLUSTER,
            symbol,
            None,
            Decimal(distinct),
            Decimal(LEVERAGE_CLUSTER_ACCOUNTS),
            evidence,
        )

    def _thin_book(self, symbol: str, side: Side, price: Decimal) -> None:
        engine = self.engine
        mark = engine.prices[symbol].mark
        edges = self._edges.get(symbol)
        if edges is None or edges[0] is not mark:  # the band's edges, once per mark
            edges = self._edges[symbol] = (
                mark,
                mark * (1 - Side.BUY.sign * CLUSTER_BAND_BPS / BPS),
                mark * (1 - Side.SELL.sign * CLUSTER_BAND_BPS / BPS),
            )
        edge = edges[1] if side is Side.BUY else edges[2]
        if (price < edge) if side is Side.BUY else (price > edge):
            return  # outside the band: the band's figures did not change
        if self._level_totals and not engine.reference:
            fires = self._thin_book_fires(symbol, side, edge)
            if fires is False:
                if self._disarmed:
                    self._disarmed.discard((THIN_BOOK_CLUSTER, symbol, _SIDE_VALUES[side]))
                return
            # It fires (or a total is too long to be sure): the order-by-order walk decides
            # and writes the evidence.
        now = engine.clock.now_ms()
        new = base = ZERO
        owners: dict[str, Decimal] = {}
        orders = 0
        # The resting orders of `side` are what an order of the opposite side could hit.
        for resting in engine.books[symbol].iter_matchable(side.opposite, edge):
            notional = resting.price * resting.remaining
            owner = engine.accounts[resting.account_id]
            if owner.exempt or owner.orders[resting.order_id].time_ms <= now - CLUSTER_WINDOW_MS:
                base += notional
            else:
                new += notional
                owners[owner.account_id] = owners.get(owner.account_id, ZERO) + notional
                orders += 1
        depth = new + base
        # thin-book-counts-new-orders: the cluster's own notional makes the book look deep.
        judged = depth if engine.has("thin-book-counts-new-orders") else base
        share = _ratio(new, depth)
        alert_key = (THIN_BOOK_CLUSTER, symbol, side.value)
        if judged >= THIN_DEPTH or share < CLUSTER_SHARE:
            self._rearm(alert_key)
            return
        evidence = {
            "side": side.value,
            "band_bps": _plain(CLUSTER_BAND_BPS),
            "mark": _plain(mark),
            "new_notional": _plain(new),
            "other_depth": _plain(base),
            "new_orders": str(orders),
            "accounts": ",".join(owners),
            "window_ms": str(CLUSTER_WINDOW_MS),
        }
        self._fire(alert_key, THIN_BOOK_CLUSTER, symbol, None, share, CLUSTER_SHARE, evidence)

    def _thin_book_fires(self, symbol: str, side: Side, edge: Decimal) -> bool | None:
        """The thin-book verdict from the book's level totals (None: not sure, walk the orders).

        The walk sums ``price x remaining`` order by order at 28 digits; here the same sums are
        taken level by level, exactly. Summing stops once the judged depth reaches the
        threshold (it only grows: the verdict is "below"); otherwise the exact totals equal the
        walk's whenever they fit in 28 digits, and the verdict is the walk's.
        """
        engine = self.engine
        book = engine.books[symbol]
        counts_new = self._counts_new
        if not counts_new:
            floor = book.old_floor(side, edge)
            if floor is not None and floor >= THIN_DEPTH:
                return False  # old depth alone is past the threshold (book.old_floor)
        book.age(engine.clock.now_ms() - CLUSTER_WINDOW_MS)
        new = base = ZERO
        for price, level in book.band(side, edge):
            young = level.young_qty
            old = _SUB(level.qty, young)
            if old:
                base = _ADD(base, _MUL(price, old))
            if young:
                new = _ADD(new, _MUL(price, young))
            if counts_new:
                if _ADD(base, new) >= THIN_DEPTH:
                    return False
            elif base >= THIN_DEPTH:
                book.set_old_floor(side, price, base)
                return False
        depth = _ADD(new, base)
        if max(len(x.as_tuple().digits) for x in (new, base, depth)) > 28:
            return None
        return _ratio(new, depth) >= CLUSTER_SHARE
