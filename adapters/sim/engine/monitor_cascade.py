"""The monitor's ``cascade-risk`` detector: the early warning of a liquidation cascade.

Evaluated per update, every ``CASCADE_EVERY_MS`` (engine/monitor.py's module docstring has the
statistic and its threshold): the notional of watched positions that a mark move of
``CASCADE_BAND_BPS`` against them would liquidate, against the opposite book side's depth in
that band. :class:`CascadeRisk` is mixed into :class:`~adapters.sim.engine.monitor.Monitor`,
which sets the attributes annotated below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from adapters.sim.engine.accounts import AccountState, PositionState, maint_margin
from adapters.sim.engine.monitor_stats import BPS, ZERO, _cents, _label, _plain, _ratio
from harness.alerts import CASCADE_RISK
from harness.model import MarginMode, Side

if TYPE_CHECKING:
    from adapters.sim.engine.exchange import Engine

__all__ = ["CASCADE_BAND_BPS", "CASCADE_EVERY_MS", "CASCADE_RATIO", "LATE_WINDOW_MS", "CascadeRisk"]

#: cascade-risk: the adverse mark move (bps) and the at-risk notional / depth ratio that fires.
CASCADE_BAND_BPS = Decimal(200)
CASCADE_RATIO = Decimal(1)
#: cascade-risk is evaluated at the first update at least this long (ms) after the last one:
#: a scan of every position, kept off most updates (a move of 2 % takes longer than that).
CASCADE_EVERY_MS = 5_000
#: early-warning-late defect: how far back the lagging variant sums liquidations (ms).
LATE_WINDOW_MS = 60_000


class CascadeRisk:
    """The cascade-risk detector; mixed into ``Monitor``, which sets these."""

    engine: Engine
    _cascade_fired: set[tuple[str, int]]
    _cascade_at: int | None
    _fire: Callable[[tuple[str, ...], str, str, str | None, Decimal, Decimal, dict[str, str]], None]
    _rearm: Callable[[tuple[str, ...]], None]

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
