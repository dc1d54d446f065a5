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
from decimal import ROUND_DOWN, Decimal
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


class _Window:
    """Times in ``(now - length, now]``, oldest first; pruning is amortized O(1)."""

    __slots__ = ("length", "times")

    def __init__(self, length: int) -> None:
        self.length = length
        self.times: deque[int] = deque()

    def add(self, now: int) -> int:
        self.times.append(now)
        return self.count(now)

    def count(self, now: int) -> int:
        times = self.times
        while times and times[0] <= now - self.length:
            times.popleft()
        return len(times)


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
        self._cancels: dict[tuple[str, str], _Window] = {}
        self._adds: dict[tuple[str, str], _Window] = {}
        # leverage-window-too-short: the window in seconds read as milliseconds.
        short = engine.has("leverage-window-too-short")
        self._leverage_window_ms = LEVERAGE_WINDOW_MS // 1000 if short else LEVERAGE_WINDOW_MS
        self._raises: dict[str, _Distinct] = {}
        # Keys whose detector fired and has not yet seen its statistic below threshold.
        self._disarmed: set[tuple[str, ...]] = set()
        self._cascade_fired: set[tuple[str, int]] = set()  # (symbol, sign) disarmed
        self._cascade_at: int | None = None  # when cascade-risk was last evaluated

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
        if acct.exempt:
            return
        key = (acct.account_id, rec.symbol)
        window = self._adds.get(key)
        if window is None:
            window = self._adds[key] = _Window(CANCEL_WINDOW_MS)
        window.add(self.engine.clock.now_ms())
        resting = self.engine.books[rec.symbol].get(rec.order_id)
        if resting is not None:
            self._thin_book(rec.symbol, resting.side, resting.price)

    def on_cancel(self, acct: AccountState, rec: OrderRecord, *, forced: bool) -> None:
        """An order was cancelled; ``forced``: by the liquidation engine, not by the account."""
        if forced or acct.exempt or self.engine.has("monitor-blind-to-cancels"):
            return
        now = self.engine.clock.now_ms()
        key = (acct.account_id, rec.symbol)
        window = self._cancels.get(key)
        if window is None:
            window = self._cancels[key] = _Window(CANCEL_WINDOW_MS)
        count = window.add(now)
        alert_key = (CANCEL_BURST, *key)
        if count < CANCEL_BURST_COUNT:
            self._rearm(alert_key)
            return
        adds = self._adds.get(key)
        added = adds.count(now) if adds is not None else 0
        evidence = {
            "cancels": str(count),
            "adds": str(added),
            "window_ms": str(CANCEL_WINDOW_MS),
            "first_cancel_ms": str(window.times[0]),
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
        edge = mark * (1 - side.sign * CLUSTER_BAND_BPS / BPS)
        if (price < edge) if side is Side.BUY else (price > edge):
            return  # outside the band: the band's figures did not change
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
        """(symbol, side) -> notional and count of positions the band's move would liquidate."""
        engine = self.engine
        out: dict[tuple[str, int], tuple[Decimal, int]] = {}
        shift = CASCADE_BAND_BPS / BPS
        for acct in engine.accounts.values():
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
