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
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Iterable
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_DOWN, Context, Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING

from adapters.sim.engine.accounts import AccountState, OrderRecord, PositionState, maint_margin
from harness.alerts import (
    CANCEL_BURST,
    CASCADE_RISK,
    LEVERAGE_CLUSTER,
    THIN_BOOK_CLUSTER,
    Alert,
)
from harness.model import MarginMode, Side

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
    "LEVERAGE_CLUSTER_ACCOUNTS",
    "LEVERAGE_WINDOW_MS",
    "THIN_DEPTH",
    "Monitor",
]

ZERO = Decimal(0)
BPS = Decimal(10_000)
# Book totals are summed exactly (no rounding at any size).
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
_ADD, _SUB, _MUL = _EXACT.add, _EXACT.subtract, _EXACT.multiply
RATIO_PLACES = Decimal("0.000001")  # statistics are published rounded down to 6 places
CENTS = Decimal("0.01")  # notionals in evidence, rounded down

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
#: cascade-risk: the adverse mark move (bps) and the at-risk notional / depth ratio that fires.
CASCADE_BAND_BPS = Decimal(200)
CASCADE_RATIO = Decimal(1)
#: cascade-risk is evaluated at the first update at least this long (ms) after the last one:
#: a scan of every position, kept off most updates (a move of 2 % takes longer than that).
CASCADE_EVERY_MS = 5_000
#: early-warning-late defect: how far back the lagging variant sums liquidations (ms).
LATE_WINDOW_MS = 60_000


def _plain(value: Decimal | int) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _label(sign: int) -> str:
    return "long" if sign > 0 else "short"


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENTS, ROUND_DOWN)


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    return (numerator / max(denominator, Decimal(1))).quantize(RATIO_PLACES, ROUND_DOWN)


_Key = tuple[str, str]  # (account id, symbol)
_SIDE_VALUES = {side: side.value for side in Side}  # (an enum's .value is a Python property)


class _Windows:
    """Per key, the times of its events in ``(now - length, now]``, oldest first.

    One queue of every event in time order prunes them all (amortized O(1) per event), so only
    keys with an event inside the window take memory: a venue with many accounts keeps the
    windows of the ones active in the last seconds.
    """

    __slots__ = ("events", "length", "times")

    def __init__(self, length: int) -> None:
        self.length = length
        self.events: deque[tuple[int, _Key]] = deque()
        self.times: dict[_Key, deque[int]] = {}

    def _prune(self, now: int) -> None:
        events = self.events
        cutoff = now - self.length
        while events and events[0][0] <= cutoff:
            key = events.popleft()[1]
            times = self.times[key]
            times.popleft()
            if not times:
                del self.times[key]

    def add(self, key: _Key, now: int) -> int:
        """Record an event of ``key`` at ``now``; how many ``key`` has in the window."""
        events = self.events
        if events and events[0][0] <= now - self.length:
            self._prune(now)
        events.append((now, key))
        times = self.times.get(key)
        if times is None:
            times = self.times[key] = deque()
        times.append(now)
        return len(times)

    def count(self, key: _Key, now: int) -> int:
        self._prune(now)
        times = self.times.get(key)
        return len(times) if times else 0

    def first(self, key: _Key) -> int:
        """The oldest time of ``key`` in the window (it has one)."""
        return self.times[key][0]


class _Distinct:
    """Distinct keys seen in ``(now - length, now]`` (a counter over a window of events)."""

    __slots__ = ("counts", "events", "length")

    def __init__(self, length: int) -> None:
        self.length = length
        self.events: deque[tuple[int, str]] = deque()
        self.counts: Counter[str] = Counter()

    def add(self, now: int, key: str) -> int:
        self.events.append((now, key))
        self.counts[key] += 1
        while self.events[0][0] <= now - self.length:
            _, old = self.events.popleft()
            self.counts[old] -= 1
            if not self.counts[old]:
                del self.counts[old]
        return len(self.counts)


class Monitor:
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

    # ------------------------------------------------------------------ per update
    def on_update(self) -> None:
        """The cascade early warning, every ``CASCADE_EVERY_MS`` of updates (module docstring)."""
        now = self.engine.clock.now_ms()
        if self._cascade_at is not None and now - self._cascade_at < CASCADE_EVERY_MS:
            return
        self._cascade_at = now
        late = self.engine.has("early-warning-late")
        at_risk = self._liquidated_recently() if late else self.at_risk()
        for key in sorted(at_risk):
            self._cascade(*key, *at_risk[key])
        # A side with nothing at risk is below threshold: re-arm it.
        for key in [k for k in self._cascade_fired if k not in at_risk]:
            self._cascade_fired.discard(key)
            self._rearm((CASCADE_RISK, key[0], _label(key[1])))
        self.engine.quiet.evaluated()

    def evaluation_times(self, start: int, end: int, interval: int) -> list[int]:
        """The update times in ``[start, end]`` (on the ``interval`` grid) at which
        :meth:`on_update` would evaluate the early warning, as of now."""
        at = self._cascade_at
        step = -(-CASCADE_EVERY_MS // interval) * interval
        first = start if at is None else max(start, at + CASCADE_EVERY_MS)
        first = start + -(-(first - start) // interval) * interval
        return list(range(first, end + 1, step)) if first <= end else []

    def evaluated_at(self, time_ms: int) -> None:
        """Record an evaluation that repeated the last one at ``time_ms`` (engine/quiet.py)."""
        self._cascade_at = time_ms

    def _cascade(self, symbol: str, sign: int, notional: Decimal, positions: int) -> None:
        engine = self.engine
        alert_key = (CASCADE_RISK, symbol, _label(sign))
        mark = engine.prices[symbol].mark
        # Longs are sold into the bids, shorts bought from the asks, within the band. Summing
        # stops once the depth exceeds what the ratio allows: below threshold, whatever the rest.
        book_side = Side.BUY if sign > 0 else Side.SELL
        edge = mark * (1 - book_side.sign * CASCADE_BAND_BPS / BPS)
        ceiling = notional / CASCADE_RATIO
        depth = ZERO
        for order in engine.books[symbol].iter_matchable(book_side.opposite, edge):
            depth += order.price * order.remaining
            if depth > ceiling:
                self._rearm(alert_key)
                return
        ratio = _ratio(notional, depth)
        if ratio < CASCADE_RATIO:
            self._rearm(alert_key)
            return
        self._cascade_fired.add((symbol, sign))
        evidence = {
            "side": _label(sign),
            "band_bps": _plain(CASCADE_BAND_BPS),
            "mark": _plain(mark),
            "at_risk_notional": _plain(_cents(notional)),
            "at_risk_positions": str(positions),
            "depth": _plain(_cents(depth)),
        }
        self._fire(alert_key, CASCADE_RISK, symbol, None, ratio, CASCADE_RATIO, evidence)

    def at_risk(self) -> dict[tuple[str, int], tuple[Decimal, int]]:
        """(symbol, side) -> notional and count of positions the band's move would liquidate.

        Accounts are visited in account-table order: every account, or only the trigger index's
        candidates for a move of the band (engine/liqindex.py), which finds the same positions.
        """
        engine = self.engine
        index = engine.trigger_index
        if index.active:
            return self.at_risk_of(index.candidates(CASCADE_BAND_BPS / BPS))
        return self.at_risk_of(engine.accounts.values())

    def at_risk_of(
        self, accounts: Iterable[AccountState]
    ) -> dict[tuple[str, int], tuple[Decimal, int]]:
        """:meth:`at_risk` over ``accounts`` only (in that order)."""
        engine = self.engine
        out: dict[tuple[str, int], tuple[Decimal, int]] = {}
        shift = CASCADE_BAND_BPS / BPS
        for acct in accounts:
            if acct.exempt or not acct.positions:
                continue
            cross: list[PositionState] = []
            for pos in acct.positions.values():
                if pos.qty == 0:
                    continue
                if pos.margin_mode is not MarginMode.ISOLATED:
                    cross.append(pos)
                    continue
                mark = engine.prices[pos.symbol].mark
                shocked = mark * (1 - pos.sign * shift)
                brackets = engine.instruments[pos.symbol].brackets
                mm = maint_margin(brackets, abs(pos.qty) * shocked)
                if pos.isolated_wallet + pos.upnl(shocked) <= mm:
                    _tally(out, pos, mark)
            if not cross:
                continue
            # Shared collateral: the move on one symbol against the whole cross bucket.
            marks = {p.symbol: engine.prices[p.symbol].mark for p in cross}
            mms = {
                p.symbol: maint_margin(
                    engine.instruments[p.symbol].brackets, abs(p.qty) * marks[p.symbol]
                )
                for p in cross
            }
            equity = acct.cross_wallet + sum((p.upnl(marks[p.symbol]) for p in cross), ZERO)
            total_mm = sum(mms.values(), ZERO)
            for pos in cross:
                mark = marks[pos.symbol]
                shocked = mark * (1 - pos.sign * shift)
                brackets = engine.instruments[pos.symbol].brackets
                moved_equity = equity - pos.upnl(mark) + pos.upnl(shocked)
                moved_mm = (
                    total_mm - mms[pos.symbol] + maint_margin(brackets, abs(pos.qty) * shocked)
                )
                if moved_equity <= moved_mm:
                    _tally(out, pos, mark)
        return out

    def _liquidated_recently(self) -> dict[tuple[str, int], tuple[Decimal, int]]:
        """early-warning-late: liquidations that already happened, in place of the at-risk."""
        engine = self.engine
        since = engine.clock.now_ms() - LATE_WINDOW_MS
        out: dict[tuple[str, int], tuple[Decimal, int]] = {}
        for record in reversed(engine.liquidator.records):
            if record.time_ms <= since:
                break
            sign = 1 if record.side == Side.SELL.value else -1  # a long is closed by a sell
            notional, count = out.get((record.symbol, sign), (ZERO, 0))
            out[record.symbol, sign] = (notional + record.quantity * record.price, count + 1)
        return out


def _tally(
    out: dict[tuple[str, int], tuple[Decimal, int]], pos: PositionState, mark: Decimal
) -> None:
    notional, count = out.get((pos.symbol, pos.sign), (ZERO, 0))
    out[pos.symbol, pos.sign] = (notional + abs(pos.qty) * mark, count + 1)
