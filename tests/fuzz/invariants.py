"""The engine's invariants, checked after fuzzed or concurrent traffic.

* **Conservation** (tests/sim/test_conservation.py): over every account (traders, the market
  maker, the insurance fund), wallets + unrealized PnL at the marks + the commissions charged
  equal the money put in (:func:`~tests.sim.test_conservation.initial_money`), within the
  engine's documented rounding bound (at most 0.5e-8 per fill that realizes PnL, 1e-15 per fill).
* **Orders and the book agree**: an order is open (NEW/PARTIALLY_FILLED) exactly when it rests
  in its symbol's book, with its own side, price and remaining quantity; the book holds nothing
  else; executed quantity never exceeds the order's and matches its fills.
* **Every fill has both sides**: each trade id is one maker fill and one taker fill of opposite
  sides at the same price and quantity; positions net to zero per symbol.

The market maker forgets its own fills and orders when it requotes (engine/marketmaker.py), so
the fills are taken from a :class:`FillLog` hooked on the engine before any traffic, not from
the accounts' histories.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal, localcontext
from typing import Any

from adapters.sim.engine.accounts import AccountState, FillRecord
from adapters.sim.engine.exchange import Engine
from harness.model import Side
from tests.sim.test_conservation import HALF_UNIT, PER_FILL, initial_money

__all__ = ["FillLog", "assert_engine_consistent", "money_drift"]

D = Decimal
OPEN = ("NEW", "PARTIALLY_FILLED")


class FillLog:
    """Every fill the engine applies, with its account (a recording hook on ``apply_fill``)."""

    def __init__(self, engine: Engine) -> None:
        self.fills: list[tuple[str, FillRecord]] = []
        apply_fill = engine.apply_fill

        def recording(acct: AccountState, *args: Any, **kwargs: Any) -> FillRecord:
            fill = apply_fill(acct, *args, **kwargs)
            self.fills.append((acct.account_id, fill))
            return fill

        engine.apply_fill = recording  # type: ignore[method-assign]

    def trades(self) -> dict[tuple[str, int], list[tuple[str, FillRecord]]]:
        out: dict[tuple[str, int], list[tuple[str, FillRecord]]] = defaultdict(list)
        for owner, fill in self.fills:
            out[(fill.symbol, fill.trade_id)].append((owner, fill))
        return out


def money_drift(engine: Engine, deposits: Decimal, log: FillLog) -> tuple[Decimal, Decimal]:
    """``(drift, bound)``: money now minus money put in, and the rounding it may differ by."""
    fills = [f for _, f in log.fills]
    with localcontext() as ctx:
        ctx.prec = 60
        total = sum((f.commission for f in fills), D(0))
        for acct in engine.accounts.values():
            total += acct.wallet_total()
            for pos in acct.open_positions():
                total += pos.qty * (engine.mark(pos.symbol) - pos.entry)
        drift = total - initial_money(engine, deposits)
    closes = sum(1 for f in fills if f.realized_pnl)
    return drift, closes * HALF_UNIT + len(fills) * PER_FILL


def _assert_orders_match_the_book(engine: Engine, log: FillLog) -> int:
    filled: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for owner, f in log.fills:
        filled[(owner, f.order_id)] += f.qty
    resting = 0
    for acct in engine.accounts.values():
        for symbol, book in engine.books.items():
            in_book = {o.order_id: o for o in book.orders_of(acct.account_id)}
            open_ids = {
                r.order_id for r in acct.orders.values() if r.symbol == symbol and r.status in OPEN
            }
            assert set(in_book) == open_ids, (acct.account_id, symbol, set(in_book) ^ open_ids)
            resting += len(in_book)
            for order_id, order in in_book.items():
                rec = acct.orders[order_id]
                assert order.side is Side(rec.side), rec
                assert order.price == rec.price, rec
                assert order.remaining == rec.orig_qty - rec.executed_qty > 0, (rec, order)
        for rec in acct.orders.values():
            assert 0 <= rec.executed_qty <= rec.orig_qty, rec
            assert filled.get((acct.account_id, rec.order_id), D(0)) == rec.executed_qty, rec
            complete = rec.executed_qty == rec.orig_qty
            assert (rec.status == "FILLED") == complete or rec.liquidation, rec
    assert resting == sum(len(book) for book in engine.books.values()), "orphans in a book"
    return resting


def _assert_fills_are_two_sided(engine: Engine, log: FillLog) -> int:
    trades = log.trades()
    for key, owned in trades.items():
        pair = [f for _, f in owned]
        assert len(pair) == 2, (key, owned)
        assert owned[0][0] != owned[1][0], ("a self-trade", key, owned)
        maker, taker = sorted(pair, key=lambda f: not f.maker)
        assert maker.maker, (key, pair)
        assert not taker.maker, (key, pair)
        assert maker.side != taker.side, (key, pair)
        assert (maker.price, maker.qty) == (taker.price, taker.qty), (key, pair)
    for symbol in engine.instruments:
        net = sum(
            (a.positions[symbol].qty for a in engine.accounts.values() if symbol in a.positions),
            D(0),
        )
        assert net == 0, (symbol, net)
    return len(trades)


def assert_engine_consistent(engine: Engine, deposits: Decimal, log: FillLog) -> dict[str, int]:
    """Every invariant of the module docstring; returns what was checked (for the counts)."""
    drift, bound = money_drift(engine, deposits, log)
    assert abs(drift) <= bound, f"money drifted by {drift} (rounding allows {bound})"
    resting = _assert_orders_match_the_book(engine, log)
    trades = _assert_fills_are_two_sided(engine, log)
    orders = sum(len(a.orders) for a in engine.accounts.values())
    return {"orders": orders, "resting": resting, "trades": trades}
